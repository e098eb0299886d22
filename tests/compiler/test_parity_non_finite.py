"""check never passes on NaN or infinity: non-finite values are compared explicitly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from compiler import check_parity, compile_program
from compiler.check._compare import SignalComparator, Tolerance, compare
from compiler.check._inputs import InputStream
from compiler.check._parity import finite_since_reset
from compiler.cli._main import main
from tests._support import mlp_actor
from tests.compiler import _mutations as plant
from tests.compiler.test_parity import tiny_program

NAN, INF = float("nan"), float("inf")
TOL = Tolerance(1e-5, 1e-5)


@pytest.mark.parametrize(
    ("reference", "compiled", "bad"),
    [
        (INF, INF, False),  # the same infinity is equal
        (-INF, -INF, False),
        (INF, -INF, True),  # rtol * |inf| must not accept the other sign
        (INF, 1e30, True),
        (1.0, INF, True),
        (NAN, 1.0, True),
        (1.0, NAN, True),
        (NAN, NAN, True),  # on finite inputs NaN is a finding even where both agree
        (1.0, 1.0 + 1e-6, False),
    ],
)
def test_non_finite_values_are_compared_explicitly(
    reference: float, compiled: float, bad: bool
) -> None:
    flags, _ = compare(np.array([[reference]]), np.array([[compiled]]), TOL)
    assert bool(flags[0, 0]) is bad


def test_nan_against_nan_is_no_finding_when_a_nan_was_fed_in() -> None:
    flags, err = compare(np.array([[NAN]]), np.array([[NAN]]), TOL, finite_inputs=False)
    assert not flags[0, 0] and err[0, 0] == 0.0


def test_an_infinite_reference_never_passes_a_finite_file() -> None:
    # The reported bug: err > atol + rtol * |ref| is never true against inf, so "OK".
    comparator = SignalComparator({"y": 2}, TOL)
    comparator.add({"y": np.array([INF, NAN])}, {"y": np.array([0.5, 0.5])})
    (errors,) = comparator.finish()
    assert not errors.ok and errors.max_abs == INF and errors.first_reference == INF


def test_a_nan_input_poisons_only_its_episode() -> None:
    x = np.zeros((6, 1, 3), np.float32)
    x[2, 0, 1] = NAN
    reset = np.array([True, False, False, False, True, False])
    stream = InputStream({"x": x}, reset, "test")
    assert finite_since_reset(stream).tolist() == [True, True, False, False, True, True]


@pytest.fixture(scope="module")
def nan_file() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """A file whose inlined actor weight holds a NaN, and that same actor as ONNX.

    compile refuses such an actor, so the file is planted: what an older exploy-dsl wrote.
    """
    actor = mlp_actor(5, 2, seed=3)
    model = plant.set_constant_element(
        compile_program(tiny_program(), actor.model), actor.w1, 0, NAN
    )
    bad = onnx.ModelProto.FromString(actor.model.SerializeToString())
    w1 = actor.w1.copy()
    w1[0, 0] = NAN
    bad.graph.initializer[0].CopyFrom(numpy_helper.from_array(w1, "w1"))
    return model, bad


def test_check_flags_a_nan_output_on_finite_inputs(
    nan_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = nan_file
    report = check_parity(model, tiny_program(), actor, steps=10)
    assert not report.ok
    first = report.runs[0].first
    assert first is not None and (first.tick, first.output) == (0, "actions")
    text = report.render()
    assert "actions[0]: reference nan, compiled nan (NaN computed from finite inputs)" in text
    # Fed the file's own (NaN) actions, the stages are not blamed for the actor's NaN.
    assert "  stages fed the file's own actions: ok" in text
    assert report.verdict().endswith(
        "the actor computes nan from finite observations, in the file and as given (first call "
        "k=0 (our runtime), tick 0, actions[0]): its weights hold NaN or infinity (a diverged "
        "checkpoint?)"
    )


def test_the_check_command_exits_1_on_a_nan_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    nan_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = nan_file
    program = tmp_path / "tiny.py"
    program.write_text(
        "from tests.compiler.test_parity import tiny_program\nprogram = tiny_program()\n"
    )
    onnx.save(model, str(tmp_path / "nan.onnx"))
    onnx.save(actor, str(tmp_path / "actor.onnx"))
    args = [str(tmp_path / "nan.onnx"), str(program), "--actor", str(tmp_path / "actor.onnx")]
    assert main(["check", *args, "--steps", "10"]) == 1
    out = capsys.readouterr().out
    assert "result: OK" not in out and "NaN computed from finite inputs" in out
