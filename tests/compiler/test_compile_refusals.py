"""compile refuses what would reach a robot wrong: NaN weights, files onnxruntime cannot run."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import check_parity, compile_program, load_actor, write_atomic
from compiler.cli._main import main
from compiler.tools._explain import render_explain
from exploy_dsl import (
    ActorError,
    CompileError,
    NonFiniteConstantError,
    Program,
    UsageError,
    VerificationError,
    op,
    read_contract,
)
from tests._support import mlp_actor
from tests.compiler.test_parity import tiny_program

NAN, INF = float("nan"), float("inf")


def actor_of(nodes: list[onnx.NodeProto], *, domains: dict[str, int] | None = None) -> Any:
    """A ``[1, 5] -> [1, 2]`` ONNX actor made of ``nodes`` from ``obs`` to ``actions``."""
    graph = helper.make_graph(
        nodes,
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 5])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 2])],
    )
    opsets = [helper.make_opsetid("", 20)]
    opsets += [helper.make_opsetid(d, v) for d, v in (domains or {}).items()]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def with_weight(index: int, value: float) -> onnx.ModelProto:
    """The seeded tiny actor with element ``index`` of its first weight set to ``value``."""
    actor = mlp_actor(5, 2, seed=3)
    w1 = actor.w1.copy()
    w1.reshape(-1)[index] = value
    model = onnx.ModelProto.FromString(actor.model.SerializeToString())
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(w1, "w1"))
    return model


# -- NaN and infinity in constants (a diverged checkpoint) ------------------------------------


def test_a_nan_in_the_actors_weights_is_refused_naming_the_tensor(tmp_path: Path) -> None:
    target = tmp_path / "policy.onnx"
    with pytest.raises(
        NonFiniteConstantError,
        match=r"^actor ModelProto: weight 'w1' holds NaN at 1 of 80 element\(s\) \(first at "
        r"\[1, 2\]\); a robot would be commanded NaN\. Fix: use a checkpoint from before "
        r"training diverged",
    ):
        compile_program(tiny_program(), with_weight(18, NAN), output=target)
    assert not target.exists()


def test_an_infinite_actor_weight_is_refused_too() -> None:
    with pytest.raises(NonFiniteConstantError, match=r"weight 'w1' holds infinity at 1 of 80"):
        compile_program(tiny_program(), with_weight(0, -INF))


@pytest.mark.torch
def test_a_nan_in_a_torch_actors_parameters_is_refused() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(5, 2))
    with torch.no_grad():
        net[0].bias[1] = float("nan")
    with pytest.raises(
        NonFiniteConstantError,
        match=r"actor torch module Sequential \(torchscript export\): weight '.*bias' holds NaN "
        r"at 1 of 2 element\(s\) \(first at \[1\]\)",
    ):
        compile_program(tiny_program(), net, exporter="torchscript")


def test_an_infinite_stage_constant_is_refused_naming_the_stage() -> None:
    program = Program("inf", decimation=2, sim_dt=0.01)
    x = program.input("x", 3)
    m = program.memory("m", 2)
    y = program.output("y", 2)

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("x", v[x]), ("m", v[m])]

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {m: actions}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {y: op.min([v[m], op.const(np.array([INF, 1.0], np.float32))])}

    with pytest.raises(
        NonFiniteConstantError,
        match=r"^apply_actions .*test_compile_refusals\.py:\d+\): constant '.*' holds infinity "
        r"at 1 of 2 element\(s\) \(first at \[0\]\); .*Fix: write a finite value \(a clip or a "
        r"limit that should not bite takes a large finite bound such as 1e6\)",
    ):
        compile_program(program, mlp_actor(5, 2).model)


def test_an_unbounded_clip_in_a_stage_compiles_runs_and_is_explained() -> None:
    # Scalar infinities pass as a mask fill (like an exported masked_fill(-inf)); the stage
    # summary then failed to encode them as JSON: a traceback instead of a file.
    program = Program("unbounded", decimation=2, sim_dt=0.01)
    x = program.input("x", 3)
    m = program.memory("m", 2)
    y = program.output("y", 2)
    low, high = op.const(np.float32(-INF)), op.const(np.float32(INF))

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("x", op.clip(v[x], low, high)), ("m", v[m])]

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {m: actions}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {y: v[m]}

    model = compile_program(program, mlp_actor(5, 2).model)
    assert check_parity(model, program, mlp_actor(5, 2).model, steps=8).ok
    text = render_explain(read_contract(model), "unbounded.onnx")
    assert "  constant float32 -inf\n  constant float32 inf\n" in text


def test_the_cli_refuses_a_nan_actor_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    program = tmp_path / "tiny.py"
    program.write_text(
        "from tests.compiler.test_parity import tiny_program\nprogram = tiny_program()\n"
    )
    onnx.save(with_weight(3, NAN), str(tmp_path / "actor.onnx"))
    out = tmp_path / "out.onnx"
    args = [str(program), "--actor", str(tmp_path / "actor.onnx"), "-o", str(out)]
    assert main(["compile", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weight 'w1' holds NaN" in err and not out.exists()


# -- the file must run in onnxruntime before it is written --------------------------------------


def test_an_actor_with_a_custom_op_is_refused_before_writing(tmp_path: Path) -> None:
    custom = actor_of(
        [
            helper.make_node("Slice", ["obs", "s", "e", "a"], ["part"]),
            helper.make_node("FancyPolicy", ["part"], ["actions"], domain="my.ops"),
        ],
        domains={"my.ops": 1},
    )
    for name, value in (("s", [0]), ("e", [2]), ("a", [1])):
        custom.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
    target = tmp_path / "policy.onnx"
    with pytest.raises(
        VerificationError,
        match=r"^onnxruntime cannot load the compiled file of program 'tiny' \(onnxruntime "
        r"[\d.]+, opset 20, IR 10\): .*my\.ops:FancyPolicy.* is not a registered function/op\. "
        r"Nothing was written\. Fix: an actor op from a custom domain cannot run in "
        r"onnxruntime: export the actor with standard ONNX ops only",
    ):
        compile_program(tiny_program(), custom, output=target)
    assert not target.exists()


def test_a_file_that_fails_on_its_first_policy_step_is_refused(tmp_path: Path) -> None:
    # onnx.checker cannot see an index out of range; running the tick does.
    gather = actor_of([helper.make_node("Gather", ["obs", "idx"], ["actions"], axis=1)])
    gather.graph.initializer.append(numpy_helper.from_array(np.array([0, 7], np.int64), "idx"))
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"yesterday's policy")
    with pytest.raises(
        VerificationError,
        match=r"^the compiled file of program 'tiny' fails in onnxruntime .* at tick 0 \(policy "
        r"step, zero inputs, initial memory\): .*Nothing was written",
    ):
        compile_program(tiny_program(), gather, output=target)
    assert target.read_bytes() == b"yesterday's policy"


def test_verification_errors_are_compile_errors() -> None:
    assert issubclass(VerificationError, CompileError)
    assert issubclass(NonFiniteConstantError, CompileError)


# -- file mode and external weights ------------------------------------------------------------


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set the process umask for a test; the previous one comes back afterwards."""
    previous = os.umask(0o022)

    def set_to(value: int) -> None:
        os.umask(value)

    try:
        yield set_to
    finally:
        os.umask(previous)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_an_ordinary_write_gives(
    tmp_path: Path, umask: Any, mask: int, mode: int
) -> None:
    umask(mask)
    target = write_atomic(b"x", tmp_path / "policy.onnx")
    assert stat.S_IMODE(target.stat().st_mode) == mode
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert stat.S_IMODE(plain.stat().st_mode) == mode  # what open() gives, for comparison


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_an_overwritten_file_keeps_its_mode(tmp_path: Path, umask: Any) -> None:
    umask(0o077)
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    compile_program(tiny_program(), mlp_actor(5, 2).model, output=target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@pytest.mark.torch
def test_an_onnx_actor_without_its_external_weights_file_is_refused(tmp_path: Path) -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(5, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))
    path = tmp_path / "policy.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(1, 5),), str(path), dynamo=True, external_data=True, verbose=False
        )
    data = tmp_path / "policy.onnx.data"
    assert data.is_file()
    assert load_actor(path, n_obs=5).n_actions == 2  # with its .data file it loads
    data.unlink()
    with pytest.raises(
        ActorError,
        match=r"actor '.*policy\.onnx' keeps its weights \(e\.g\. '.*'\) in the external file "
        r"'.*policy\.onnx\.data', which is missing\. Fix: copy the \.data file along with the "
        r"\.onnx file, or re-export with torch\.onnx\.export\(\.\.\., external_data=False\)\.",
    ):
        load_actor(path, n_obs=5)


@pytest.mark.parametrize(
    ("argument", "match"),
    [
        ({"opset": "20"}, r"^opset must be an int, got str '20'\. Fix: e\.g\. opset=20\.$"),
        ({"ir_version": 10.0}, r"^ir_version must be an int, got float 10\.0"),
        ({"output": 3}, r"^output must be a path \(str or os\.PathLike\), got int 3"),
        ({"self_test": "trace.npz"}, r"^self_test must be an InputStream, got str 'trace\.npz'"),
    ],
)
def test_compile_program_names_an_argument_of_the_wrong_type(
    argument: dict[str, Any], match: str
) -> None:
    # They failed deep in the build: TypeError/AttributeError tracebacks.
    with pytest.raises(UsageError, match=match):
        compile_program(tiny_program(), mlp_actor(5, 2).model, **argument)
