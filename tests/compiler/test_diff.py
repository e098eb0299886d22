"""``exploy-dsl diff``: contract differences between two real files, and which ones break."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest

from compiler import compile_program
from compiler.cli._main import main
from compiler.tools._diff import diff_contracts
from exploy_dsl import Program, read_contract, term
from tests._support import Compiled, mlp_actor

NAMES = ["FL_hip", "FL_knee", "FR_hip", "FR_knee"]


def legged(names: list[str], *, kp: float = 20.0, decimation: int = 2, init: float = 0.0) -> Any:
    """A 4-joint program in the robot vocabulary, compiled with a fixed ONNX actor."""
    p = Program("legged", decimation=decimation, sim_dt=0.005)
    joints = p.joints("robot", names=names)
    targets = p.joint_targets(articulation="robot", names=names, stiffness=kp, damping=0.5)
    last = p.memory("actions", 4, init=init)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [("q", v[joints.pos]), term("dq", v[joints.vel], scale=0.1)]

    @p.process_actions(n_actions=4)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {targets.pos: v[last], targets.vel: 0.0, targets.effort: 0.0}

    return compile_program(p, mlp_actor(8, 4, seed=3).model)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    folder = tmp_path_factory.mktemp("diff")
    made: dict[str, str] = {}

    def get(label: str, names: list[str] = NAMES, **options: Any) -> str:
        if label not in made:
            path = folder / f"{label}.onnx"
            onnx.save(legged(names, **options), str(path))
            made[label] = str(path)
        return made[label]

    return get


def diff(capsys: pytest.CaptureFixture[str], a: str, b: str) -> tuple[int, str]:
    code = main(["diff", a, b])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_a_file_against_itself_has_no_difference(
    capsys: pytest.CaptureFixture[str], files: Callable[..., str]
) -> None:
    code, out = diff(capsys, files("base"), files("base"))
    assert code == 0
    assert out.splitlines()[-1] == "no differences in the contract."


def test_a_changed_joint_order_breaks_and_names_the_joints(
    capsys: pytest.CaptureFixture[str], files: Callable[..., str]
) -> None:
    swapped = [NAMES[2], NAMES[1], NAMES[0], NAMES[3]]
    code, out = diff(capsys, files("base"), files("swapped", swapped))
    assert code == 1
    assert (
        "BREAKS  joint order: obj.robot.joints joint_names reordered, moved: FL_hip 0->2, "
        "FR_hip 2->0" in out
    )
    assert "output.joint_targets.robot names reordered, moved: FL_hip 0->2, FR_hip 2->0" in out
    assert out.splitlines()[-1] == "2 difference(s); 2 break(s) a controller set up for A."


def test_gains_and_rates_break(
    capsys: pytest.CaptureFixture[str], files: Callable[..., str]
) -> None:
    code, out = diff(capsys, files("base"), files("stiff", kp=25.0, decimation=4))
    assert code == 1
    assert "BREAKS  rate: decimation changed from 2 to 4" in out
    assert (
        "BREAKS  gains: output.joint_targets.robot stiffness changed: FL_hip 20 -> 25, "
        "FL_knee 20 -> 25, FR_hip 20 -> 25, FR_knee 20 -> 25" in out
    )


def test_an_initial_value_change_is_benign(
    capsys: pytest.CaptureFixture[str], files: Callable[..., str]
) -> None:
    code, out = diff(capsys, files("base"), files("init", init=0.5))
    assert code == 0
    assert "benign  memory: initial value of 'memory.actions' changed at 4 element(s): " in out
    assert "[0] 0 -> 0.5" in out


def edited(path: str, edit: Callable[[onnx.ModelProto], None], out: Path) -> str:
    model = onnx.load(path)
    edit(model)
    onnx.save(model, str(out))
    return str(out)


def rename_input(model: onnx.ModelProto) -> None:
    model.graph.input[1].name = "obj.robot.joints.position"
    for node in model.graph.node:
        node.input[:] = [
            "obj.robot.joints.position" if n == "obj.robot.joints.pos" else n for n in node.input
        ]


def set_description(model: onnx.ModelProto) -> None:
    model.metadata_props.add(key="description", value="trained on rough terrain")


def drop_obs_scale(model: onnx.ModelProto) -> None:
    for prop in model.metadata_props:
        if prop.key == "exploy_dsl.observation":
            layout = json.loads(prop.value)
            layout["terms"][1]["scale"] = None
            prop.value = json.dumps(layout)


def test_contract_level_differences_are_classified(
    files: Callable[..., str], tmp_path: Path
) -> None:
    base = read_contract(onnx.load(files("base")))
    renamed = read_contract(onnx.load(edited(files("base"), rename_input, tmp_path / "r.onnx")))
    found = [str(d) for d in diff_contracts(base, renamed)]
    assert (
        "BREAKS  input: 'obj.robot.joints.pos' was removed (renamed to "
        "'obj.robot.joints.position'?): a controller set up for A binds a wire B does not have."
    ) in found
    benign = read_contract(onnx.load(edited(files("base"), set_description, tmp_path / "d.onnx")))
    assert [str(d) for d in diff_contracts(base, benign)] == [
        "benign  metadata: key 'description' was added (trained on rough terrain)."
    ]
    scale = read_contract(onnx.load(edited(files("base"), drop_obs_scale, tmp_path / "s.onnx")))
    assert [str(d) for d in diff_contracts(base, scale)] == [
        "benign  observation: term 'dq': scale [0.1] -> none."
    ]


def test_a_file_needing_a_newer_onnxruntime_breaks(
    compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    example = compiled["quadruped"]
    older = compile_program(
        example.program_file.program, example.actor.model, target="onnxruntime==1.16"
    )
    a, b = read_contract(older), read_contract(example.model)
    (runtime,) = [d for d in diff_contracts(a, b) if d.topic == "runtime"]
    assert runtime.breaks
    assert "needs onnxruntime >= 1.16 -> >= 1.18" in runtime.text
    (back,) = [d for d in diff_contracts(b, a) if d.topic == "runtime"]
    assert not back.breaks


def test_an_unreadable_file_is_a_user_error(
    capsys: pytest.CaptureFixture[str], files: Callable[..., str], tmp_path: Path
) -> None:
    code = main(["diff", files("base"), str(tmp_path / "missing.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "missing.onnx' does not exist" in err
