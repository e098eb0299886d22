"""Files that break the contract are refused by Runtime and by ``exploy-dsl inspect``, by name."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest

from compiler.cli._main import main
from exploy_dsl import FileContractError, Runtime
from tests._support import Compiled

Edit = Callable[[onnx.ModelProto], None]


def drop_key(key: str) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        kept = [p for p in model.metadata_props if p.key != key]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)

    return edit


def set_key(key: str, value: str) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        (prop,) = [p for p in model.metadata_props if p.key == key]
        prop.value = value

    return edit


def symbolic_dim(model: onnx.ModelProto) -> None:
    (value,) = [v for v in model.graph.input if v.name == "obj.robot.joints.vel"]
    value.type.tensor_type.shape.dim[0].dim_param = "batch"


def unknown_rank(model: onnx.ModelProto) -> None:
    (value,) = [v for v in model.graph.output if v.name == "output.joint_targets.joint_pos.pos"]
    value.type.tensor_type.ClearField("shape")


def memory_in_without_out(model: onnx.ModelProto) -> None:
    kept = [o for o in model.graph.output if o.name != "memory.actions.out"]
    del model.graph.output[:]
    model.graph.output.extend(kept)


def double_input(model: onnx.ModelProto) -> None:
    (value,) = [v for v in model.graph.input if v.name == "obj.robot.base.w_Q_b"]
    value.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE


def int64_output(model: onnx.ModelProto) -> None:
    (value,) = [v for v in model.graph.output if v.name == "output.joint_targets.joint_pos.vel"]
    value.type.tensor_type.elem_type = onnx.TensorProto.INT64


def short_initial_value(model: onnx.ModelProto) -> None:
    (init,) = [i for i in model.graph.initializer if i.name == "memory.actions.in"]
    init.CopyFrom(onnx.numpy_helper.from_array(np.zeros((1, 11), np.float32), init.name))


CASES = [
    (drop_key("update_rate"), r"lacks required metadata key\(s\) 'update_rate'"),
    (drop_key("exploy_version"), r"lacks required metadata key\(s\) 'exploy_version'"),
    (symbolic_dim, r"input 'obj\.robot\.joints\.vel' has a symbolic dimension 'batch'"),
    (unknown_rank, r"output 'output\.joint_targets\.joint_pos\.pos' has no shape"),
    (memory_in_without_out, r"memory input 'memory\.actions\.in' has no output "
     r"'memory\.actions\.out'"),
    (double_input, r"input 'obj\.robot\.base\.w_Q_b' has dtype DOUBLE; only float32, int32 and "
     r"bool"),
    (int64_output, r"output 'output\.joint_targets\.joint_pos\.vel' has dtype INT64"),
    (short_initial_value, r"initial value of memory 'memory\.actions\.in' is float32\[1, 11\] "
     r"but the wire is float32\[1, 12\]"),
    (set_key("update_rate", "nan"), r"update_rate=nan; expected .* finite positive rates"),
    (set_key("exploy_version", '"v1.2"'), r"'exploy_version' must be a JSON string .*MAJOR"),
    (set_key("base_names", '["robot"]'), r"'base_names' must be a JSON object"),
    (set_key("obs_term_names", '"a,b"'), r"'obs_term_names' must be a JSON list of str"),
]  # fmt: skip
IDS = [
    "no-update_rate", "no-exploy_version", "symbolic-dim", "unknown-rank", "memory-in-no-out",
    "float64-input", "int64-output", "init-shape", "nan-rate", "bad-version", "base_names-list",
    "obs_term_names-str",
]  # fmt: skip


@pytest.fixture(scope="module")
def broken(
    compiled: dict[str, Compiled], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[Edit], str]:
    folder = tmp_path_factory.mktemp("broken")

    def make(edit: Edit) -> str:
        model = onnx.ModelProto()
        model.CopyFrom(compiled["quadruped"].model)
        edit(model)
        path = folder / f"{getattr(edit, '__name__', 'edit')}-{id(edit)}.onnx"
        onnx.save(model, str(path))
        return str(path)

    return make


@pytest.mark.parametrize(("edit", "match"), CASES, ids=IDS)
def test_runtime_refuses_the_file_naming_the_key_or_wire(
    broken: Callable[[Edit], str], edit: Edit, match: str
) -> None:
    with pytest.raises(FileContractError, match=match):
        Runtime(broken(edit))


@pytest.mark.parametrize(("edit", "match"), CASES, ids=IDS)
def test_inspect_refuses_the_file_in_one_line(
    broken: Callable[[Edit], str], capsys: pytest.CaptureFixture[str], edit: Edit, match: str
) -> None:
    path = broken(edit)
    assert main(["inspect", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("exploy-dsl inspect: error: ")
    assert "Traceback" not in err
    assert re.search(match, err), err


def test_a_refused_file_prints_no_traceback_from_the_installed_command(
    broken: Callable[[Edit], str],
) -> None:
    path = broken(symbolic_dim)
    done = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "inspect", path],
        capture_output=True,
        text=True,
        cwd=str(Path(path).parent),
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "symbolic dimension 'batch'" in done.stderr
