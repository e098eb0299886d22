"""Runtime, run and check refuse what compile refuses, in one line, and keep onnxruntime quiet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from compiler import check_parity
from compiler.cli._main import main
from exploy_dsl import FileContractError, OnnxRuntimeLoadError, Runtime
from tests._support import EXAMPLES, Compiled
from tests.compiler import _mutations as plant

QUADRUPED = str(EXAMPLES / "quadruped.py")
TARGET = "memory.joint_pos.processed_actions.in"


def with_custom_op(model: onnx.ModelProto) -> onnx.ModelProto:
    """The file's top-level Mod as an op of a custom domain: what an older compile let through."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    (mod,) = [n for n in mutated.graph.node if n.op_type == "Mod"]
    mod.op_type, mod.domain = "FancyMod", "my.ops"
    mutated.opset_import.append(onnx.helper.make_opsetid("my.ops", 1))
    return mutated


def cli_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


# -- a file onnxruntime cannot load -------------------------------------------------------------


def test_the_runtime_turns_an_onnxruntime_load_error_into_one_line(
    compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    path = tmp_path / "custom.onnx"
    onnx.save(with_custom_op(compiled["quadruped"].model), str(path))
    with pytest.raises(
        OnnxRuntimeLoadError,
        match=rf"^onnxruntime {ort.__version__} cannot load '.*custom\.onnx': Fatal error: "
        r"my\.ops:FancyMod\(-1\) is not a registered function/op\. Fix: recompile it with this "
        r"exploy-dsl, whose compile refuses files onnxruntime cannot run",
    ):
        Runtime(path)
    assert issubclass(OnnxRuntimeLoadError, FileContractError)


def test_run_and_check_report_an_unloadable_file_in_one_line(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    path = tmp_path / "custom.onnx"
    onnx.save(with_custom_op(compiled["quadruped"].model), str(path))
    actor = tmp_path / "actor.onnx"
    onnx.save(compiled["quadruped"].actor.model, str(actor))
    for args in (["run", str(path)], ["check", str(path), QUADRUPED, "--actor", str(actor)]):
        err = cli_error(capsys, *args)
        assert err.startswith(f"exploy-dsl {args[0]}: error: onnxruntime ")
        assert "my.ops:FancyMod(-1) is not a registered function/op" in err


# -- a memory initial value that is NaN ---------------------------------------------------------


def test_the_runtime_refuses_a_nan_initial_value_naming_the_memory(
    compiled: dict[str, Compiled],
) -> None:
    broken = plant.set_initial_value(compiled["quadruped"].model, TARGET, 4, float("nan"))
    with pytest.raises(
        FileContractError,
        match=r"^model: the initial value of memory 'joint_pos\.processed_actions' "
        r"\('memory\.joint_pos\.processed_actions\.in'\) holds NaN or infinity at 1 element\(s\) "
        r"\(\[4\] = nan\); a robot would start from it\. Fix: give the memory a finite init",
    ):
        Runtime(broken)


def test_run_refuses_and_check_reports_a_nan_initial_value(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    example = compiled["quadruped"]
    path = tmp_path / "nan.onnx"
    onnx.save(plant.set_initial_value(example.model, TARGET, 0, float("inf")), str(path))
    assert "holds NaN or infinity at 1 element(s) ([0] = inf)" in cli_error(
        capsys, "run", str(path)
    )
    report = check_parity(path, example.program_file.program, example.actor.model, steps=8)
    assert not report.ok
    assert all(
        run.skipped == f"the file's memory initial value(s) {TARGET} hold NaN or infinity, so "
        "no runtime loads it"
        for run in report.runs
    )
    assert "differs from the program's init at 1 element(s): FL_hip (index 0): file inf, " in (
        report.render()
    )
    assert report.verdict().endswith(f"parity not run ({report.runs[0].skipped})")


# -- onnxruntime's initializer-as-input warning -------------------------------------------------


def test_onnxruntime_warns_about_memory_initializers_in_a_default_session(
    capfd: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    # The warning this project silences: memory initial values are initializers of inputs.
    ort.InferenceSession(
        compiled["quadruped"].model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert "appears in graph inputs" in capfd.readouterr().err


def test_runtime_run_and_check_create_their_sessions_quietly(
    capfd: pytest.CaptureFixture[str], compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    example = compiled["quadruped"]
    runtime = Runtime(example.path)
    runtime.step({w.name: np.zeros(w.shape, np.float32) for w in runtime.contract.inputs})
    assert main(["run", str(example.path), "--ticks", "2"]) == 0
    report = check_parity(example.model, example.program_file.program, example.actor.model, steps=4)
    assert report.ok
    assert capfd.readouterr().err == ""
