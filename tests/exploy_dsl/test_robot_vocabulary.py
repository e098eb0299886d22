"""exploy's robot vocabulary on Program: standard wire names, required metadata, loud mistakes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from compiler import compile_program
from exploy_dsl import DeclarationError, Program, Runtime, read_contract
from tests._support import mlp_actor, random_feeds

NAMES = ["hip", "knee", "ankle"]


def program() -> Program:
    return Program("robot_words", decimation=2, sim_dt=0.01)


def metadata_of(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


# -- joints -------------------------------------------------------------------------------------


def test_joints_declare_pos_and_vel_with_the_joint_order() -> None:
    p = program()
    joints = p.joints("robot", names=NAMES)
    assert (joints.pos.name, joints.vel.name) == ("obj.robot.joints.pos", "obj.robot.joints.vel")  # type: ignore[union-attr]
    assert joints.pos.file_shape == (1, 3) and joints.names == tuple(NAMES)  # type: ignore[union-attr]
    (group,) = p.groups
    assert (group.name, group.metadata) == ("obj.robot.joints", {"joint_names": NAMES})
    assert p.joints("arm", names=["j0"], vel=False).vel is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"joints\('robot'\) needs names=\[\.\.\.\].*skips obj\.robot\.joints.*Fix: pass"),
        ({"names": "hip"}, r"names must be a list of joint names, got str"),
        ({"names": []}, r"names must be a non-empty list"),
        ({"names": ["hip", "knee", "hip"]}, r"lists 'hip' more than once"),
        ({"names": NAMES, "pos": False, "vel": False}, r"declares nothing"),
    ],
)
def test_joints_mistakes_are_named(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DeclarationError, match=match):
        program().joints("robot", **kwargs)


def test_an_articulation_name_with_a_dot_is_refused() -> None:
    with pytest.raises(DeclarationError, match=r"articulation 'my\.robot' must .*\(no dots\)"):
        program().joints("my.robot", names=NAMES)


# -- base, imu ----------------------------------------------------------------------------------


def test_base_declares_its_fields_and_records_base_names() -> None:
    p = program()
    base = p.base("robot", "trunk", position=True)
    assert [port.name for port in p.inputs] == [
        "obj.robot.trunk.lin_vel_b_rt_w_in_b",
        "obj.robot.trunk.ang_vel_b_rt_w_in_b",
        "obj.robot.trunk.w_Q_b",
        "obj.robot.trunk.pos_b_rt_w_in_w",
    ]
    assert base.orientation.file_shape == (1, 4)  # type: ignore[union-attr]
    assert p.metadata == {"base_names": {"robot": "trunk"}}


def test_base_names_merge_over_articulations_and_program_metadata() -> None:
    p = Program("two", decimation=1, sim_dt=0.01, metadata={"base_names": {"arm": "root"}})
    only_quat = p.base("robot", lin_vel=False, ang_vel=False)
    assert only_quat.lin_vel is None and only_quat.orientation is not None
    p.base("dog", "body", orientation=False)
    assert p.metadata["base_names"] == {"arm": "root", "robot": "base", "dog": "body"}


def test_a_second_base_for_one_articulation_is_refused() -> None:
    p = program()
    p.base("robot", "base", lin_vel=False, ang_vel=False)
    with pytest.raises(DeclarationError, match=r"already names 'base' the base of 'robot'"):
        p.base("robot", "pelvis")


def test_base_names_given_as_a_non_dict_is_refused() -> None:
    p = Program("bad", decimation=1, sim_dt=0.01, metadata={"base_names": "robot"})
    with pytest.raises(DeclarationError, match=r"'base_names' is str, expected a dict"):
        p.base("robot")


def test_imu_declares_the_three_readings() -> None:
    p = program()
    imu = p.imu("pelvis_imu", lin_vel=False)
    assert [port.name for port in p.inputs] == [
        "sensor.imu.pelvis_imu.w_Q_b",
        "sensor.imu.pelvis_imu.ang_vel_b_rt_w_in_b",
    ]
    assert imu.lin_vel is None and imu.ang_vel.file_shape == (1, 3)  # type: ignore[union-attr]


# -- commands -----------------------------------------------------------------------------------

RANGES = {"lin_vel_x": (-1, 1), "lin_vel_y": (-0.5, 0.5), "ang_vel_z": (-1.0, 1.0)}


def test_se2_command_ranges_are_stored_as_float_lists() -> None:
    command = program().se2_velocity_command("base_velocity", ranges=RANGES)
    assert command.name == "cmd.se2_velocity.base_velocity" and command.file_shape == (1, 3)
    assert json.dumps(command.metadata) == (
        '{"ranges": {"lin_vel_x": [-1.0, 1.0], "lin_vel_y": [-0.5, 0.5], "ang_vel_z": [-1.0, 1.0]}}'
    )


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        (None, r"needs ranges.*Fix: pass ranges="),
        ({"lin_vel_x": (-1, 1)}, r"exactly the keys lin_vel_x, lin_vel_y, ang_vel_z, got"),
        (
            {**RANGES, "ang_vel_z": (1, -1)},
            r"ranges\['ang_vel_z'\] must be a pair \(lo, hi\) of finite numbers with lo <= hi, "
            r"got \(1, -1\)",
        ),
        (
            {**RANGES, "lin_vel_x": 1.0},
            r"ranges\['lin_vel_x'\] must be a pair \(lo, hi\) of finite numbers",
        ),
    ],
)
def test_se2_command_range_mistakes_are_named(ranges: Any, match: str) -> None:
    with pytest.raises(DeclarationError, match=match):
        program().se2_velocity_command("base_velocity", ranges=ranges)


def test_the_other_commands_have_exploys_names_shapes_and_dtypes() -> None:
    p = program()
    speed = p.float_command("speed", range=(0, 2))
    switch = p.boolean_command("stand")
    pose = p.se3_pose_command("goal")
    arm = p.joint_position_command("arm", names=NAMES)
    assert (speed.name, speed.file_shape, speed.metadata) == (
        "cmd.float.speed",
        (1, 1),
        {"range": [0.0, 2.0]},
    )
    assert (switch.name, switch.dtype) == ("cmd.boolean.stand", "bool")
    assert (pose.name, pose.file_shape) == ("cmd.se3_pose.goal", (1, 7))
    assert (arm.name, arm.file_shape, arm.metadata) == (
        "cmd.joint_pos.arm",
        (1, 3),
        {"joint_names": NAMES},
    )
    assert p.float_command("gain").metadata is None


def test_a_joint_position_command_needs_names() -> None:
    with pytest.raises(DeclarationError, match=r"needs names=\[\.\.\.\].*skips cmd\.joint_pos"):
        program().joint_position_command("arm")


# -- height scan --------------------------------------------------------------------------------


def test_height_scan_records_its_grid_as_group_metadata() -> None:
    p = program()
    scan = p.height_scan(
        "scanner", shape=187, pattern_type="grid_pattern", resolution=0.1, size_x=1.6,
        size_y=1.0, offset_x=0.2,
    )  # fmt: skip
    assert (scan.name, scan.file_shape) == ("sensor.ray_caster.scanner.height", (1, 187))
    assert p.groups[0].metadata == {
        "pattern_type": "grid_pattern",
        "resolution": 0.1,
        "size_x": 1.6,
        "size_y": 1.0,
        "offset_x": 0.2,
    }


def test_height_scan_names_what_is_missing() -> None:
    with pytest.raises(DeclarationError, match=r"needs shape, resolution, size_y: .*skips"):
        program().height_scan("scanner", pattern_type="grid_pattern", size_x=1.0)
    with pytest.raises(DeclarationError, match=r"resolution must be a finite number > 0"):
        program().height_scan(
            "s", shape=4, pattern_type="grid", resolution=0, size_x=1.0, size_y=1.0
        )


# -- joint targets ------------------------------------------------------------------------------


def test_joint_targets_declare_three_outputs_and_broadcast_scalar_gains() -> None:
    p = program()
    targets = p.joint_targets("legs", names=NAMES, stiffness=20, damping=[0.5, 0.6, 0.7])
    assert [o.name for o in p.outputs] == [
        "output.joint_targets.legs.pos",
        "output.joint_targets.legs.vel",
        "output.joint_targets.legs.effort",
    ]
    assert targets.stiffness == (20.0, 20.0, 20.0)
    assert p.groups[0].metadata == {
        "type": "joint_targets",
        "names": NAMES,
        "stiffness": [20.0, 20.0, 20.0],
        "damping": [0.5, 0.6, 0.7],
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"names": NAMES, "damping": 0.0}, r"needs stiffness: .*skips the group"),
        ({"stiffness": 1.0}, r"needs names, damping: "),
        ({"names": NAMES, "stiffness": [1.0, 2.0], "damping": 0}, r"has 2 values for 3 joints"),
        (
            {"names": NAMES, "stiffness": 1.0, "damping": float("nan")},
            r"damping\[0\] must be a finite number >= 0, got nan",
        ),
        (
            {"names": NAMES, "stiffness": [1, -2, 3], "damping": 0},
            r"stiffness\[1\] must be a finite number >= 0, got -2\.",
        ),
        ({"names": NAMES, "stiffness": "20", "damping": 0}, r"stiffness has 2 values"),
    ],
)
def test_joint_target_mistakes_are_named(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DeclarationError, match=match):
        program().joint_targets("legs", **kwargs)


def test_numpy_gains_are_accepted() -> None:
    targets = program().joint_targets(
        "legs", names=NAMES, stiffness=np.array([1.0, 2.0, 3.0]), damping=np.float32(0.5)
    )
    assert targets.stiffness == (1.0, 2.0, 3.0) and targets.damping == (0.5, 0.5, 0.5)


# -- a whole program in the vocabulary, compiled and run ----------------------------------------


def test_a_vocabulary_program_compiles_runs_and_keeps_exploys_encodings() -> None:
    p = program()
    joints = p.joints("robot", names=NAMES)
    base = p.base("robot")
    imu = p.imu("torso", orientation=False, lin_vel=False)
    cmd = p.se2_velocity_command("twist", ranges=RANGES)
    stand = p.boolean_command("stand")
    targets = p.joint_targets(articulation="robot", names=NAMES, stiffness=10.0, damping=0.1)
    last = p.memory("last_actions", 3)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [
            ("q", v[joints.pos]),
            ("w", v[base.ang_vel] + v[imu.ang_vel]),
            ("cmd", v[cmd]),
        ]

    @p.process_actions(n_actions=3)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {targets.pos: v[joints.pos], targets.vel: 0.0, targets.effort: 0.0}

    model = compile_program(p, mlp_actor(9, 3).model)
    meta = metadata_of(model)
    assert meta["base_names"] == '{"robot": "base"}'
    assert json.loads(meta["obj.robot.joints"]) == {"joint_names": NAMES}
    assert json.loads(meta["output.joint_targets.robot"])["stiffness"] == [10.0] * 3
    assert json.loads(meta["cmd.se2_velocity.twist"])["ranges"]["lin_vel_x"] == [-1.0, 1.0]
    contract = read_contract(model)
    assert {w.name: w.dtype for w in contract.inputs}[stand.name] == "bool"
    runtime = Runtime(model)
    feeds = random_feeds(contract.inputs, np.random.default_rng(0))
    out = runtime.step(feeds)
    np.testing.assert_array_equal(out[targets.pos.name], feeds[joints.pos.name])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    ["obj.robot.joints.pos", "cmd.float.speed", "output.joint_targets.legs.effort"],
)
def test_wire_patterns_match_the_whole_name_as_exploys_regex_match(name: str) -> None:
    from exploy_dsl.contract._wires import FLOAT_COMMAND, JOINT_STATE, JOINT_TARGET

    assert any(p.match(name) for p in (JOINT_STATE, FLOAT_COMMAND, JOINT_TARGET))
    assert not any(p.match(name + "\n") for p in (JOINT_STATE, FLOAT_COMMAND, JOINT_TARGET))
