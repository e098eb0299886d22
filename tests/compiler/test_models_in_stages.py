"""Models inside a stage (``call_model``): compiled, run, checked, hashed, explained or refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import check_parity, compile_program
from compiler.cli._program_file import load_program_file
from compiler.tools._explain import render_explain
from exploy_dsl import Program, Runtime, StageError, call_model, op, read_contract, trace
from tests._support import EXAMPLES, mlp_actor

torch = pytest.importorskip("torch")

N_FOO = 4


def program(model: Any, *, extra: Callable[[Any], Any] | None = None) -> Program:
    """obs = [model(foo) + 1, m]; m <- actions; y = m + 2 (exploy's tutorial, trimmed)."""
    p = Program("with_model", decimation=3, sim_dt=0.01)
    foo = p.input("foo", N_FOO)
    m = p.memory("m", 2)
    y = p.output("y", 2)

    @p.observations
    def observations(v: Any) -> Any:
        features = call_model(model, v[foo]) if extra is None else extra(v[foo])
        return [("foo", features + 1.0), ("m", v[m])]

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> Any:
        return {m: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: v[m] + 2.0}

    return p


def linear(seed: int = 0) -> Any:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Linear(N_FOO, N_FOO)


def onnx_linear(
    w: np.ndarray,
    b: np.ndarray,
    *,
    opset: int = 20,
    elem: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    """``x @ w + b`` as an ONNX model ``[1, n] -> [1, m]``."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "lin",
        [helper.make_tensor_value_info("x", elem, [1, w.shape[0]])],
        [helper.make_tensor_value_info("y", elem, [1, w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(N_FOO, N_FOO)).astype(np.float32),
        rng.normal(size=N_FOO).astype(np.float32),
    )


def stage_info(model: onnx.ModelProto, key: str) -> Any:
    return json.loads({p.key: p.value for p in model.metadata_props}[key])


def run_obs(path: Path, foos: np.ndarray) -> np.ndarray:
    """The file's ``obs[0:4]`` at each policy step (k = 0, 3, 6, ...) for the given ``foo``s."""
    runtime = Runtime(path)
    got = []
    for foo in foos:
        for tick in range(3):
            outputs = runtime.step({"foo": foo.reshape(1, N_FOO)})
            if tick == 0:
                got.append(outputs["obs"][0, :N_FOO])
    return np.array(got)


# --- compiled, run in onnxruntime, checked -------------------------------------------------


def test_a_torch_linear_in_the_observation_is_compiled_and_keeps_parity(tmp_path: Path) -> None:
    module = linear()
    p = program(module)
    path = tmp_path / "m.onnx"
    compile_program(p, mlp_actor(N_FOO + 2, 2).model, output=path)
    report = check_parity(path, p, mlp_actor(N_FOO + 2, 2).model, steps=300)
    assert report.ok, report.render()

    foos = np.random.default_rng(3).normal(size=(20, N_FOO)).astype(np.float32)
    with torch.no_grad():
        expected = (module(torch.from_numpy(foos)) + 1.0).numpy()  # torch, not our graph
    np.testing.assert_allclose(run_obs(path, foos), expected, atol=1e-6, rtol=0)


def test_an_onnx_model_file_in_the_observation_is_compiled_and_keeps_parity(
    tmp_path: Path,
) -> None:
    w, b = weights()
    onnx.save(onnx_linear(w, b, opset=17), str(tmp_path / "lin.onnx"))  # converted to 20
    p = program(str(tmp_path / "lin.onnx"))
    path = tmp_path / "m.onnx"
    model = compile_program(p, mlp_actor(N_FOO + 2, 2).model, output=path)
    onnx.checker.check_model(model, full_check=True)
    report = check_parity(path, p, mlp_actor(N_FOO + 2, 2).model, steps=300)
    assert report.ok, report.render()

    foos = np.random.default_rng(4).normal(size=(20, N_FOO)).astype(np.float32)
    expected = foos.astype(np.float64) @ w + b + 1.0
    np.testing.assert_allclose(run_obs(path, foos), expected, atol=1e-5, rtol=0)


def test_the_same_weights_as_torch_module_and_as_onnx_file_give_the_same_observation(
    tmp_path: Path,
) -> None:
    module = linear(5)
    w = module.weight.detach().numpy().T.copy()
    b = module.bias.detach().numpy().copy()
    onnx.save(onnx_linear(w, b), str(tmp_path / "lin.onnx"))
    actor = mlp_actor(N_FOO + 2, 2).model
    compile_program(program(module), actor, output=tmp_path / "t.onnx")
    compile_program(program(tmp_path / "lin.onnx"), actor, output=tmp_path / "o.onnx")
    foos = np.random.default_rng(5).normal(size=(10, N_FOO)).astype(np.float32)
    np.testing.assert_allclose(
        run_obs(tmp_path / "t.onnx", foos), run_obs(tmp_path / "o.onnx", foos), atol=1e-6
    )


def test_a_model_with_a_symbolic_batch_and_two_outputs_returns_a_tuple_of_static_vars(
    tmp_path: Path,
) -> None:
    w, b = weights(1)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
            helper.make_node("Tanh", ["y"], ["t"]),
        ],
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", N_FOO])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N_FOO]),
            helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", N_FOO]),
        ],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])

    def both(foo: Any) -> Any:
        y, t = call_model(model, foo)
        assert y.unwrap_tensor().shape == (1, N_FOO)
        return y * t

    p = program(None, extra=both)
    path = tmp_path / "m.onnx"
    compile_program(p, mlp_actor(N_FOO + 2, 2).model, output=path)
    foos = np.random.default_rng(6).normal(size=(5, N_FOO)).astype(np.float32)
    y = foos.astype(np.float64) @ w + b
    np.testing.assert_allclose(run_obs(path, foos), y * np.tanh(y) + 1.0, atol=1e-5)


def test_calling_a_torch_module_leaves_it_as_it_was() -> None:
    module = linear().train()
    before = copy.deepcopy(module.state_dict())
    trace(program(module))
    assert module.training
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


# --- provenance: hashes and explain --------------------------------------------------------


def test_changing_one_weight_changes_the_stage_hash_and_the_file(tmp_path: Path) -> None:
    actor = mlp_actor(N_FOO + 2, 2).model
    module = linear()
    first = compile_program(program(module), actor)
    with torch.no_grad():
        module.weight[1, 2] += 1e-3
    second = compile_program(program(module), actor)
    old, new = (stage_info(m, "exploy_dsl.hashes")["stages"] for m in (first, second))
    assert old["observations"] != new["observations"]
    assert old["process_actions"] == new["process_actions"]
    assert old["apply_actions"] == new["apply_actions"]
    assert first.SerializeToString() != second.SerializeToString()
    models = [stage_info(m, "exploy_dsl.stages")["observations"]["models"] for m in (first, second)]
    assert models[0][0]["weights_sha256"] != models[1][0]["weights_sha256"]
    # The same weights give the same bytes: the export is reproducible.
    assert compile_program(program(module), actor).SerializeToString() == (
        second.SerializeToString()
    )


def test_the_stage_summary_records_each_model_and_explain_shows_it(tmp_path: Path) -> None:
    w, b = weights()
    onnx.save(onnx_linear(w, b), str(tmp_path / "encoder.onnx"))
    actor = mlp_actor(N_FOO + 2, 2).model

    def twice(foo: Any) -> Any:
        return call_model(linear(), foo) + call_model(str(tmp_path / "encoder.onnx"), foo)

    model = compile_program(program(None, extra=twice), actor)
    stages = stage_info(model, "exploy_dsl.stages")
    assert "models" not in stages["process_actions"]
    torch_entry, file_entry = stages["observations"]["models"]
    assert torch_entry["source"] == "torch module Linear"
    assert torch_entry["inputs"] == [{"name": "input_0", "dtype": "float32", "shape": [1, 4]}]
    assert torch_entry["outputs"] == [{"name": "output_0", "dtype": "float32", "shape": [1, 4]}]
    assert file_entry["source"] == "encoder.onnx"  # the base name: no machine-specific path
    assert len(file_entry["weights_sha256"]) == 64

    text = render_explain(read_contract(model), "m.onnx")
    assert (
        "  calls model torch module Linear: float32[1, 4] -> float32[1, 4], inlined (its "
        "weights are constants of this stage)\n"
        f"    weights sha256: {torch_entry['weights_sha256']}\n"
    ) in text
    assert "  calls model encoder.onnx: float32[1, 4] -> float32[1, 4]" in text


def test_a_stage_without_models_records_no_models_key() -> None:
    p = program(None, extra=lambda foo: foo * 2.0)
    stages = stage_info(compile_program(p, mlp_actor(N_FOO + 2, 2).model), "exploy_dsl.stages")
    assert all("models" not in info for info in stages.values())


# --- refusals ------------------------------------------------------------------------------


class Counter(torch.nn.Module):  # type: ignore[misc]
    """Keeps a call counter in a buffer: a state an export would freeze."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x: Any) -> Any:
        self.calls += 1
        return x + self.calls


class Noisy(torch.nn.Module):  # type: ignore[misc]
    def forward(self, x: Any) -> Any:
        return x + torch.randn_like(x)


class Branchy(torch.nn.Module):  # type: ignore[misc]
    """A data-dependent branch: the tracer keeps the one branch its example input took."""

    def forward(self, x: Any) -> Any:
        if x.sum() > 0:
            return x * 2.0
        return x - 1.0


class Zeta(torch.nn.Module):  # type: ignore[misc]
    def forward(self, x: Any) -> Any:
        return torch.special.zeta(x + 2.0, x * 0.0 + 1.0)


class Wide(torch.nn.Module):  # type: ignore[misc]
    def forward(self, x: Any) -> Any:
        return x @ torch.ones(3, 3)


def nan_linear() -> Any:
    module = linear()
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    return module


def two_inputs() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "pair",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, N_FOO]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, N_FOO]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, N_FOO])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def inf_onnx() -> onnx.ModelProto:
    w, b = weights()
    b[2] = np.inf
    return onnx_linear(w, b)


REFUSALS: dict[str, tuple[Callable[[], Any], str]] = {
    "two inputs, one Var": (
        two_inputs,
        r"model ModelProto 'pair' takes 2 input\(s\) \(a float32\[1, 4\], b float32\[1, 4\]\), "
        r"got 1 Var\(s\) float32\[1, 4\]\. Fix: pass one Var per model input",
    ),
    "shape": (
        lambda: onnx_linear(weights()[0][:3, :3].copy(), weights()[1][:3].copy()),
        r"model ModelProto 'lin' input 0 'x' has shape \[1, 3\], got a float32\[1, 4\] Var\. "
        r"Fix: call it on a Var of that dtype and shape",
    ),
    "dtype": (
        lambda: onnx_linear(*(a.astype(np.float64) for a in weights()), elem=TensorProto.DOUBLE),
        r"model ModelProto 'lin' input 0 'x' is float64\[1, 4\], got a float32\[1, 4\] Var\. "
        r"Fix: call it on a Var of that dtype",
    ),
    "NaN weight in a torch module": (
        nan_linear,
        r"model torch module Linear has 1 NaN/inf value\(s\) in weight '.*' float32\[4, 4\].* "
        r"Fix: check the training checkpoint",
    ),
    "inf weight in an ONNX model": (
        inf_onnx,
        r"model ModelProto 'lin' has 1 NaN/inf value\(s\) in weight 'b' float32\[4\]",
    ),
    "buffer changed by forward": (
        Counter,
        r"model torch module Counter changes its tensor state 'calls' when called: .* would freeze "
        r"that state as a constant\. Fix: pass a stateless module",
    ),
    "output changes between calls": (
        Noisy,
        r"model torch module Noisy returns different values for the same input on two calls",
    ),
    "cannot be exported": (
        Zeta,
        r"model torch module Zeta cannot be exported to ONNX by torch.onnx.export: "
        r"UnsupportedOperatorError: .*Fix: export it to ONNX yourself .* pass the \.onnx file",
    ),
    "export differs from the module": (
        Branchy,
        r"model torch module Branchy: its ONNX export does not compute what the module does: on "
        r"random input \d, output 0\[\d, \d\] is .* in the export and .* in torch",
    ),
    "torch module fails on the Var": (
        Wide,
        r"model torch module Wide fails on inputs float32\[1, 4\] \(the Vars it is called on\)",
    ),
    "not a model": (
        lambda: {"weights": [1.0]},
        r"call_model got a dict, not a model\. Fix: pass an onnx.ModelProto, a path to an "
        r"\.onnx file or a torch.nn.Module",
    ),
    "missing file": (
        lambda: "no/such/encoder.onnx",
        r"model 'no/such/encoder.onnx': no such file\. Fix: check the path",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_model_that_cannot_be_carried_is_refused_naming_stage_line_model_and_fix(
    case: str,
) -> None:
    make, message = REFUSALS[case]
    # The stage, then the user's line (this file's call_model line), then the model's problem.
    # The column follows the line on Python 3.11+.
    where = r"observations stage .observations. at .*test_models_in_stages\.py:\d+(:\d+)? \(`feat"
    with pytest.raises(StageError, match=where + r".*`\): " + message):
        trace(program(make()))


def test_a_var_that_is_not_a_var_is_refused() -> None:
    with pytest.raises(StageError, match=r"call_model input 0 is ndarray; pass Vars"):
        trace(program(None, extra=lambda foo: call_model(linear(), np.zeros((1, 4)))))


def test_a_model_inside_apply_actions_runs_at_every_tick(tmp_path: Path) -> None:
    w, b = weights(2)
    lin = onnx_linear(w[:2, :2].copy(), b[:2].copy())
    p = Program("apply_model", decimation=2, sim_dt=0.01)
    x = p.input("x", 2)
    m = p.memory("m", 2)
    y = p.output("y", 2)

    @p.observations
    def observations(v: Any) -> Any:
        return [("x", v[x])]

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> Any:
        return {m: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: op.tanh(call_model(lin, v[x])) + v[m]}

    path = tmp_path / "a.onnx"
    compile_program(p, mlp_actor(2, 2).model, output=path)
    report = check_parity(path, p, mlp_actor(2, 2).model, steps=200)
    assert report.ok, report.render()


def test_the_tutorial_module_example_computes_exploys_observation(tmp_path: Path) -> None:
    example = load_program_file(EXAMPLES / "tutorial_module.py")
    actor = mlp_actor(10, 2).model
    path = tmp_path / "tutorial_module.onnx"
    compile_program(example.program, actor, output=path)
    report = check_parity(path, example.program, actor, steps=300)
    assert report.ok, report.render()

    rng = np.random.default_rng(7)
    feeds = {
        "foo": rng.normal(size=(1, 4)).astype(np.float32),
        "bar_baz_group.bar": rng.normal(size=(1, 2)).astype(np.float32),
        "bar_baz_group.baz": rng.normal(size=(1, 2)).astype(np.float32),
    }
    obs = Runtime(path).step(feeds)["obs"]
    with torch.no_grad():  # exploy's EnvironmentWithTorchModule.compute_obs, in torch
        foo, bar, baz = (torch.from_numpy(feeds[k]) for k in feeds)
        expected = torch.cat(
            [example.module.module(foo) + 1.0, bar + 2.0 * baz, baz, torch.zeros(1, 2)], dim=-1
        ).numpy()
    np.testing.assert_allclose(obs, expected, atol=1e-6, rtol=0)
