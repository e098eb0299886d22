"""The articulation that receives joint targets is explicit, checked and shown (issue 11, 9)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import onnx
import pytest

from compiler import compile_program
from compiler.cli._main import main
from compiler.tools._explain import render_explain
from compiler.tools._inspect import render_inspect
from exploy_dsl import ArticulationWarning, DeclarationError, Program, read_contract
from tests._support import Compiled, mlp_actor

NAMES = ["hip", "knee"]
WARNING = (
    r"joint targets output\.joint_targets\.legs\.\*: exploy's controller sends them to "
    r"articulation 'legs' \(the <name> of the wires\), but their joints \(hip, knee\) are read "
    r"from articulation 'robot' \(obj\.robot\.joints\); a robot that looks joints up by "
    r"articulation will not find them\. Fix: program\.joint_targets\(articulation='robot', "
    r"\.\.\.\) \(wires output\.joint_targets\.robot\.\*\)"
)


def legged(declare_targets: Any, *, joints_first: bool = True) -> Program:
    """A 2-joint program whose joints belong to 'robot'; ``declare_targets(p)`` adds targets."""
    p = Program("legged", decimation=2, sim_dt=0.005)
    if joints_first:
        joints = p.joints("robot", names=NAMES)
    targets = declare_targets(p)
    if not joints_first:
        joints = p.joints("robot", names=NAMES)
    last = p.memory("actions", 2)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [("q", v[joints.pos])]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {targets.pos: v[last], targets.vel: 0.0, targets.effort: 0.0}

    return p


def by_position(p: Program) -> Any:
    return p.joint_targets("legs", names=NAMES, stiffness=1.0, damping=0.1)


def stated(articulation: str) -> Any:
    def declare(p: Program) -> Any:
        return p.joint_targets(articulation=articulation, names=NAMES, stiffness=1, damping=0)

    return declare


def test_articulation_names_the_wires() -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    targets = p.joint_targets(articulation="robot", names=NAMES, stiffness=1.0, damping=0.1)
    assert targets.articulation == "robot" and targets.group == "output.joint_targets.robot"
    assert [targets.pos.name, targets.vel.name, targets.effort.name] == [
        "output.joint_targets.robot.pos",
        "output.joint_targets.robot.vel",
        "output.joint_targets.robot.effort",
    ]
    assert p.stated_articulations == {"output.joint_targets.robot"}


def test_the_quadruped_states_its_articulation_and_keeps_its_wires(
    compiled: dict[str, Compiled],
) -> None:
    quadruped = compiled["quadruped"]
    targets = quadruped.program_file.module.targets
    assert targets.articulation == "joint_pos"
    assert quadruped.program_file.program.stated_articulations == {"output.joint_targets.joint_pos"}
    names = [o.name for o in quadruped.model.graph.output]
    assert names[2:5] == [f"output.joint_targets.joint_pos.{m}" for m in ("pos", "vel", "effort")]


def test_a_name_and_another_articulation_are_refused() -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    with pytest.raises(
        DeclarationError,
        match=r"joint_targets\('legs', articulation='robot'\): exploy's controller takes the "
        r"articulation from the wire names .* Fix: pass only articulation='robot'",
    ):
        p.joint_targets("legs", articulation="robot", names=NAMES, stiffness=1.0, damping=0.1)


def test_joint_targets_without_an_articulation_are_refused() -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    with pytest.raises(
        DeclarationError,
        match=r"joint_targets\(\) needs articulation=\.\.\.: the articulation that receives the "
        r"targets",
    ):
        p.joint_targets(names=NAMES, stiffness=1.0, damping=0.1)


@pytest.mark.parametrize("joints_first", [True, False])
def test_an_unstated_articulation_other_than_the_joints_warns(joints_first: bool) -> None:
    p = legged(by_position, joints_first=joints_first)
    with pytest.warns(ArticulationWarning, match=WARNING):
        model = compile_program(p, mlp_actor(2, 2).model)
    assert model.graph.output[2].name == "output.joint_targets.legs.pos"  # it still compiles


def test_hand_declared_targets_are_checked_too() -> None:
    def by_hand(p: Program) -> Any:
        group = p.group(
            "output.joint_targets.legs",
            metadata={
                "type": "joint_targets",
                "names": NAMES,
                "stiffness": [1, 1],
                "damping": [0, 0],
            },
        )
        return type("T", (), {m: group.output(m, 2) for m in ("pos", "vel", "effort")})

    with pytest.warns(ArticulationWarning, match=WARNING):
        compile_program(legged(by_hand), mlp_actor(2, 2).model)


@pytest.mark.parametrize("articulation", ["robot", "legs"])
def test_a_matching_or_stated_articulation_does_not_warn(articulation: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = compile_program(legged(stated(articulation)), mlp_actor(2, 2).model)
    assert model.graph.output[2].name == f"output.joint_targets.{articulation}.pos"


def test_targets_of_joints_the_program_does_not_read_do_not_warn() -> None:
    p = Program("arm", decimation=1, sim_dt=0.01)
    x = p.input("x", 2)
    targets = p.joint_targets("arm", names=["j1", "j2"], stiffness=1.0, damping=0.1)
    last = p.memory("a", 2)
    p.observations(lambda v: [("x", v[x])])
    p.process_actions(n_actions=2)(lambda v, a: {last: a})
    p.apply_actions(lambda v: {targets.pos: 0.0, targets.vel: 0.0, targets.effort: 0.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile_program(p, mlp_actor(2, 2).model)


def test_explain_and_inspect_show_the_articulation_and_the_mismatch() -> None:
    model = compile_program(legged(stated("legs")), mlp_actor(2, 2).model)
    contract = read_contract(model)
    explained = render_explain(contract, "f.onnx")
    assert (
        "joint targets output.joint_targets.legs.pos/.vel/.effort: exploy sets these gains each "
        "tick\n  sent to articulation 'legs' (exploy's controller passes the <name> of the wires "
        "to the robot as the articulation)\n  NOTE: these joints are read from articulation "
        "'robot' (obj.robot.joints)\n"
    ) in explained
    inspected = render_inspect(contract, "f.onnx")
    assert (
        "joint targets (articulation that receives them):\n  output.joint_targets.legs.* -> "
        "articulation 'legs' (exploy's controller passes the <name> of the wires to the robot as "
        "the articulation); NOTE: its joints are read from articulation 'robot' "
        "(obj.robot.joints)\n"
    ) in inspected
    matching = read_contract(compile_program(legged(stated("robot")), mlp_actor(2, 2).model))
    assert "NOTE" not in render_explain(matching, "f.onnx")
    assert "-> articulation 'robot' (exploy's" in render_inspect(matching, "f.onnx")


def test_compile_prints_the_warning_and_still_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = """\
from exploy_dsl import Program

program = Program("legged", decimation=2, sim_dt=0.005)
joints = program.joints("robot", names=["hip", "knee"])
targets = program.joint_targets("legs", names=["hip", "knee"], stiffness=1.0, damping=0.1)
last = program.memory("actions", 2)
program.observations(lambda v: [("q", v[joints.pos])])
program.process_actions(n_actions=2)(lambda v, actions: {last: actions})
program.apply_actions(lambda v: {targets.pos: v[last], targets.vel: 0.0, targets.effort: 0.0})
"""
    (tmp_path / "legged.py").write_text(source)
    onnx.save(mlp_actor(2, 2).model, str(tmp_path / "actor.onnx"))
    out = tmp_path / "legged.onnx"
    args = ["compile", str(tmp_path / "legged.py"), "--actor", str(tmp_path / "actor.onnx")]
    assert main([*args, "-o", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout == f"wrote {out}\n"
    (line,) = stderr.splitlines()
    assert line.startswith("exploy-dsl compile: warning: joint targets output.joint_targets.legs")
    assert re.search(WARNING, line), line
    assert out.is_file()
