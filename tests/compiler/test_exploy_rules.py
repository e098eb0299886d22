"""The compile-time check that makes exploy's silent skips loud, for hand-declared ports too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from compiler import compile_program
from compiler.build._exploy_rules import check_program
from compiler.cli._program_file import load_program_file
from exploy_dsl import DeclarationError, Program
from tests._support import EXAMPLES, mlp_actor

NAMES = ["hip", "knee"]
GAINS = {"type": "joint_targets", "names": NAMES, "stiffness": [1.0, 1.0], "damping": [0.0, 0.0]}
RANGES = {"lin_vel_x": [-1.0, 1.0], "lin_vel_y": [-1.0, 1.0], "ang_vel_z": [-1.0, 1.0]}


def with_stages(p: Program) -> Program:
    """Trivial stages over the first float input, so the program traces and compiles."""
    source = next(port for port in p.inputs if port.dtype == "float32")
    memory = p.memory("last", 2)
    if not p.outputs:
        p.output("plain_out", 2)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [("x", v[source])]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {memory: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: 0.0 for out in p.outputs}

    return p


def new(metadata: dict[str, Any] | None = None) -> Program:
    return Program("hand", decimation=1, sim_dt=0.01, metadata=metadata)


def joints_without_names(p: Program) -> None:
    p.input("obj.robot.joints.pos", 2)


def joints_with_wrong_count(p: Program) -> None:
    p.group("obj.robot.joints", metadata={"joint_names": ["a", "b", "c"]}).input("pos", 2)


def targets_without_gains(p: Program) -> None:
    group = p.group("output.joint_targets.legs", metadata={"names": NAMES, "damping": [0, 0]})
    for member in ("pos", "vel", "effort"):
        group.output(member, 2)


def targets_without_effort(p: Program) -> None:
    group = p.group("output.joint_targets.legs", metadata=GAINS)
    group.output("pos", 2)
    group.output("vel", 2)


def targets_with_short_damping(p: Program) -> None:
    group = p.group("output.joint_targets.legs", metadata={**GAINS, "damping": [0.0]})
    for member in ("pos", "vel", "effort"):
        group.output(member, 2)


def base_without_base_names(p: Program) -> None:
    p.input("obj.robot.base.lin_vel_b_rt_w_in_b", 3)


def se2_with_scalar_ranges(p: Program) -> None:
    bad = {"lin_vel_x": 1.0, "lin_vel_y": [-1.0, 1.0], "ang_vel_z": [-1.0, 1.0]}
    p.input("cmd.se2_velocity.twist", 3, metadata={"ranges": bad})


def se2_without_metadata(p: Program) -> None:
    p.input("cmd.se2_velocity.twist", 3)


def boolean_as_float(p: Program) -> None:
    p.input("cmd.boolean.stand", 1)


def joint_pos_command_without_names(p: Program) -> None:
    p.input("cmd.joint_pos.arm", 2)


def height_scan_without_grid(p: Program) -> None:
    p.group("sensor.ray_caster.scan", metadata={"pattern_type": "grid"}).input("height", 10)


@pytest.mark.parametrize(
    ("declare", "match"),
    [
        (joints_without_names, r"'obj\.robot\.joints\.pos' is exploy joint state but group "
         r"metadata 'obj\.robot\.joints' has no 'joint_names'.*Fix: declare the joints with "
         r"program\.joints\('robot'"),
        (joints_with_wrong_count, r"'obj\.robot\.joints\.pos' has shape \[1, 2\]; .*expects "
         r"\[batch, 3\] \(obj\.robot\.joints joint_names has 3 joints\)"),
        (targets_without_gains, r"group 'output\.joint_targets\.legs' metadata lacks stiffness"),
        (targets_without_effort, r"has no output\(s\) output\.joint_targets\.legs\.effort; .*"
         r"only when pos, vel and effort are all present"),
        (targets_with_short_damping, r"'damping' must be a list of 2 finite numbers"),
        (base_without_base_names, r"'obj\.robot\.base\.lin_vel_b_rt_w_in_b' is exploy base "
         r"state but 'base_names' has no entry for articulation 'robot'.*program\.base\("),
        (se2_with_scalar_ranges, r"'ranges' must map lin_vel_x, lin_vel_y, ang_vel_z each to a "
         r"list \[lo, hi\]"),
        (se2_without_metadata, r"se2 velocity command without a metadata object holding "
         r"'ranges'"),
        (boolean_as_float, r"'cmd\.boolean\.stand' is an exploy boolean command, .* bool, but "
         r"it is float32"),
        (joint_pos_command_without_names, r"'cmd\.joint_pos\.arm' .* no 'joint_names'"),
        (height_scan_without_grid, r"lacks resolution, size_x, size_y; exploy skips the scan"),
    ],
)  # fmt: skip
def test_a_silent_drop_is_a_declaration_error(
    declare: Callable[[Program], None], match: str
) -> None:
    p = new()
    declare(p)
    p.input("plain", 2)
    with pytest.raises(DeclarationError, match=match):
        check_program(p)


def test_compile_program_runs_the_check_before_the_actor_is_loaded() -> None:
    p = new()
    joints_without_names(p)
    with_stages(p)
    with pytest.raises(DeclarationError, match=r"would not be bound by exploy's controller"):
        compile_program(p, "no/such/actor.onnx")


def test_correct_hand_declarations_pass_and_compile() -> None:
    p = new(metadata={"base_names": {"robot": "base"}})
    p.group("obj.robot.joints", metadata={"joint_names": NAMES}).input("pos", 2)
    p.input("obj.robot.base.w_Q_b", 4)
    p.input("cmd.se2_velocity.twist", 3, metadata={"ranges": RANGES})
    p.input("cmd.boolean.stand", 1, dtype="bool")
    group = p.group("output.joint_targets.robot", metadata=GAINS)
    for member in ("pos", "vel", "effort"):
        group.output(member, 2)
    with_stages(p)
    check_program(p)
    model = compile_program(p, mlp_actor(2, 2).model)
    assert [o.name for o in model.graph.output][2:5] == [
        "output.joint_targets.robot.pos",
        "output.joint_targets.robot.vel",
        "output.joint_targets.robot.effort",
    ]


def test_a_body_of_a_listed_articulation_is_not_mistaken_for_its_base() -> None:
    p = new(metadata={"base_names": {"robot": "base"}})
    p.input("obj.robot.foot.w_Q_b", 4)  # BodyOrientation: exploy binds it without base_names
    check_program(p)


@pytest.mark.parametrize("name", ["tutorial", "quadruped"])
def test_the_examples_pass(name: str) -> None:
    check_program(load_program_file(EXAMPLES / f"{name}.py").program)


def test_a_tick_rate_exploy_would_truncate_is_refused() -> None:
    p = Program("odd_rate", decimation=1, sim_dt=0.003)
    p.input("x", 2)
    with pytest.raises(DeclarationError, match=r"update_rate 1/sim_dt = 333\.33.* truncates it "):
        check_program(with_stages(p))


@pytest.mark.parametrize("sim_dt", [0.005, 0.002, 0.0025, 1 / 120, 1 / 300, 0.001])
def test_whole_tick_rates_are_stored_as_whole_numbers(sim_dt: float) -> None:
    p = Program("rate", decimation=1, sim_dt=sim_dt)
    assert p.update_rate == round(1 / sim_dt)
    assert repr(p.update_rate).endswith(".0")
