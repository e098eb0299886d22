"""How exploy_dsl.sim binds a file to a MuJoCo model: values it reads and writes, its refusals."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import onnx
import pytest

from compiler import compile_program
from compiler.cli._main import main
from exploy_dsl import MissingDependencyError, Program, SimError, UsageError, op, read_contract
from exploy_dsl.sim import bind, parse_command_args, simulate
from tests._support import EXAMPLES, mlp_actor

QUADRUPED_XML = EXAMPLES / "robots" / "quadruped.xml"
XML = QUADRUPED_XML.read_text()
JOINTS = [f"{leg}_{part}" for leg in ("FL", "FR", "RL", "RR") for part in ("hip", "thigh", "calf")]


def build(
    *,
    decimation: int = 4,
    stiffness: float = 0.0,
    damping: float = 0.0,
    declare: Callable[[Program], Any] | None = None,
    targets: Callable[[Any, Any, Any], dict[str, Any]] | None = None,
) -> onnx.ModelProto:
    """A 12-joint program on the quadruped's names; ``targets(v, joints, extra)`` sets outputs."""
    program = Program("probe", decimation=decimation, sim_dt=0.005)
    joints = program.joints("robot", names=JOINTS)
    program.base("robot", "base", position=True)
    extra = declare(program) if declare is not None else None
    out = program.joint_targets(
        articulation="robot", names=JOINTS, stiffness=stiffness, damping=damping
    )
    last = program.memory("actions", 12)

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("q", v[joints.pos])]

    @program.process_actions(n_actions=12)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        given = targets(v, joints, extra) if targets is not None else {}
        return {
            out.pos: given.get("pos", v[joints.pos]),
            out.vel: given.get("vel", 0.0),
            out.effort: given.get("effort", 0.0),
        }

    return compile_program(program, mlp_actor(12, 12).model)


@pytest.fixture(scope="module")
def plain() -> onnx.ModelProto:
    return build()


def model_of(xml: str) -> Any:
    return mujoco.MjModel.from_xml_string(xml)


def at_home(model: Any) -> Any:
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    return data


def test_base_and_joint_state_are_read_from_mujoco_in_the_contracts_frames(
    plain: onnx.ModelProto,
) -> None:
    model = model_of(XML)
    binding = bind(read_contract(plain), model)
    data = at_home(model)
    data.qpos[3:7] = np.array([0.9, 0.1, -0.3, 0.2]) / np.linalg.norm([0.9, 0.1, -0.3, 0.2])
    data.qvel[:6] = [0.4, -0.2, 0.1, 0.3, 0.5, -0.7]
    data.qpos[7:] += np.linspace(-0.1, 0.1, 12)
    data.qvel[6:] = np.linspace(1, 2, 12)
    mujoco.mj_step1(model, data)

    inputs = binding.read(data)

    local = np.zeros(6)
    mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, model.body("base").id, local, 1)
    np.testing.assert_allclose(inputs["obj.robot.base.w_Q_b"], [data.qpos[3:7]], rtol=1e-6)
    np.testing.assert_allclose(inputs["obj.robot.base.pos_b_rt_w_in_w"], [data.qpos[:3]], rtol=1e-6)
    np.testing.assert_allclose(inputs["obj.robot.base.lin_vel_b_rt_w_in_b"], [local[3:]], atol=1e-6)
    np.testing.assert_allclose(inputs["obj.robot.base.ang_vel_b_rt_w_in_b"], [local[:3]], atol=1e-6)
    order = [model.joint(n).qposadr[0] for n in JOINTS]
    np.testing.assert_allclose(inputs["obj.robot.joints.pos"], [data.qpos[order]], rtol=1e-6)
    assert inputs["obj.robot.joints.vel"].dtype == np.float32


def test_imu_inputs_come_from_mjcf_sensors_on_the_imu_site() -> None:
    file = build(declare=lambda p: p.imu("imu"))
    model = model_of(XML)
    binding = bind(read_contract(file), model)
    data = at_home(model)
    data.qpos[3:7] = [0.8, 0.0, 0.6, 0.0]
    data.qvel[:6] = [0.4, -0.2, 0.1, 0.3, 0.5, -0.7]
    mujoco.mj_step1(model, data)

    inputs = binding.read(data)

    for wire, sensor in (("w_Q_b", "imu_quat"), ("ang_vel_b_rt_w_in_b", "imu_gyro")):
        expected = data.sensordata[model.sensor(sensor).adr[0] :][: model.sensor(sensor).dim[0]]
        np.testing.assert_allclose(inputs[f"sensor.imu.imu.{wire}"], [expected], rtol=1e-6)
    # The site sits at the base's origin: the IMU sees the base's own state.
    np.testing.assert_allclose(
        inputs["sensor.imu.imu.lin_vel_b_rt_w_in_b"],
        inputs["obj.robot.base.lin_vel_b_rt_w_in_b"],
        atol=1e-6,
    )
    missing = XML.replace('<gyro name="imu_gyro" site="imu"/>', "")
    with pytest.raises(
        SimError,
        match=r"input 'sensor.imu.imu.ang_vel_b_rt_w_in_b' needs an MJCF gyro sensor on site "
        r"'imu'.* Fix: .*<gyro site=\"imu\"/> to <sensor>",
    ):
        bind(read_contract(file), model_of(missing))


def test_joint_targets_are_applied_as_exploys_controller_does_within_the_actuator_limits() -> None:
    def targets(v: Any, joints: Any, extra: Any) -> dict[str, Any]:
        return {"pos": v[joints.pos] + 0.5, "vel": 0.25, "effort": np.linspace(-2, 2, 12)}

    file = build(stiffness=10.0, damping=2.0, targets=targets)
    geared = XML.replace(
        '<motor name="FL_hip" joint="FL_hip"/>', '<motor name="FL_hip" joint="FL_hip" gear="2"/>'
    )
    limited = geared.replace(
        '<motor name="RR_calf" joint="RR_calf"/>',
        '<motor name="RR_calf" joint="RR_calf" ctrlrange="-4 4"/>',
    )
    model = model_of(limited)
    binding = bind(read_contract(file), model)
    from exploy_dsl import Runtime

    data = at_home(model)
    data.qvel[6:] = np.linspace(-1, 1, 12)
    mujoco.mj_step1(model, data)
    outputs = Runtime(file, first_tick=1).step(binding.read(data))

    applied = binding.apply(outputs, data)

    qd = data.qvel[[model.joint(n).dofadr[0] for n in JOINTS]]
    torque = np.linspace(-2, 2, 12) + 10.0 * 0.5 + 2.0 * (0.25 - qd)
    np.testing.assert_allclose(applied.commanded, torque, rtol=1e-5)
    expected = np.clip(torque, -25, 25)
    expected[-1] = min(expected[-1], 4.0)
    ctrl = {n: data.ctrl[model.actuator(n).id] for n in JOINTS}
    assert ctrl["FL_hip"] == pytest.approx(expected[0] / 2.0, rel=1e-5)  # gear 2: half the control
    assert ctrl["RR_calf"] == pytest.approx(4.0)
    assert applied.hits.tolist() == [False] * 11 + [True]
    np.testing.assert_allclose([ctrl[n] for n in JOINTS[1:-1]], expected[1:-1], rtol=1e-5)


def test_commands_are_given_by_name_inside_their_ranges() -> None:
    def declare(p: Program) -> Any:
        p.se2_velocity_command(
            "base_velocity",
            ranges={"lin_vel_x": (-1, 1), "lin_vel_y": (-0.5, 0.5), "ang_vel_z": (-1, 1)},
        )
        p.boolean_command("stand")
        p.float_command("height", range=(0.2, 0.4))

    contract = read_contract(build(declare=declare))
    model = model_of(XML)
    given = parse_command_args(["base_velocity=0.5,-0.25,1", "stand=true", "cmd.float.height=0.3"])
    binding = bind(contract, model, commands=given)
    inputs = binding.read(at_home(model))
    np.testing.assert_allclose(inputs["cmd.se2_velocity.base_velocity"], [[0.5, -0.25, 1.0]])
    assert inputs["cmd.boolean.stand"].tolist() == [[True]]
    assert inputs["cmd.float.height"].dtype == np.float32

    refusals = [
        ({"base_velocity": [2, 0, 0], "height": [0.3]},
         r"lin_vel_x = 2 is outside its declared range \[-1, 1\]"),
        ({"height": [0.5]},
         r"--command height: \[0\] = 0.5 is outside its declared range \[0.2, 0.4\]"),
        ({}, r"input 'cmd.float.height' \(float command\) has no value: zero is outside its "
         r"declared range \[0\] \[0.2, 0.4\]. Fix: give it, e.g. --command height=0.3"),
        ({"height": [0.3], "speed": [1]}, r"--command speed: the file has no such command; its "
         r"commands are base_velocity \(cmd.se2_velocity.base_velocity\), stand"),
        ({"height": [0.3], "base_velocity": [1, 0]},
         r"has 2 value\(s\); .* takes 3 \(lin_vel_x, lin_vel_y, ang_vel_z\)"),
        ({"height": [0.3], "stand": ["maybe"]}, r"'maybe' is not a boolean"),
        ({"height": ["fast"]}, r"'fast' is not a finite number"),
    ]  # fmt: skip
    for commands, message in refusals:
        with pytest.raises(SimError, match=message):
            bind(contract, model, commands=commands)
    with pytest.raises(UsageError, match=r"--command 'speed' is not NAME=V,...; e.g."):
        parse_command_args(["speed"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('name="FL_hip" class="hip"', 'name="FL_hip_joint" class="hip"'),
            r"lacks joint\(s\) FL_hip of obj.robot.joints. The file's joints: FL_hip, FL_thigh, "
            r".*; the model's hinge/slide joints: FL_hip_joint, FL_thigh, .* Fix: name the MJCF",
        ),
        (
            ('<site name="imu" pos="0 0 0"/>', '<site name="imu"/><body name="tail" pos="-0.2 0 0">'
             '<joint name="tail" axis="0 1 0"/><geom size="0.01" mass="0.01"/></body>'),
            r"the file reads 12 joints but .* has 13 hinge/slide joints. The file's: FL_calf, .*; "
            r"the model's: tail, FL_hip",
        ),
        (
            ('<motor name="RR_calf" joint="RR_calf"/>', ""),
            r"joint target 'RR_calf' of 'output.joint_targets.robot' has no actuator in .* \(none "
            r"drives it\). The file's joints: FL_hip, .*; the model's actuators: FL_hip -> joint "
            r"FL_hip, .* Fix: add <motor name='RR_calf' joint='RR_calf'/>",
        ),
        (
            ('<motor name="RR_calf" joint="RR_calf"/>', '<motor name="RR_calf" joint="RR_calf"/>'
             '<motor name="spare" joint="RR_calf"/>'),
            r"the file commands 12 joint targets but .* has 13 actuators; nothing of the file "
            r"drives spare -> joint RR_calf",
        ),
        (
            ('<motor name="FR_thigh" joint="FR_thigh"/>',
             '<position name="FR_thigh" joint="FR_thigh" kp="20"/>'),
            r"actuator 'FR_thigh' of joint 'FR_thigh' .* is not a torque motor .* effort \+ "
            r"stiffness \* \(pos - q\) \+ damping \* \(vel - qd\). Fix: make it <motor",
        ),
        (
            ("<freejoint name=\"root\"/>", ""),
            r"body 'base' of .*, the file's base \(base_names\['robot'\]\), has no free joint;.* "
            r"Fix: add <freejoint/>",
        ),
        (
            ('body name="base"', 'body name="trunk"'),
            r"the file's base \(base_names\['robot'\]\) is body 'base', which .* lacks; its "
            r"bodies: trunk, FL_hip_link",
        ),
    ],
    ids=[
        "joint-name", "joint-count", "no-actuator", "actuator-count", "servo", "no-free-joint",
        "no-base",
    ],
)  # fmt: skip
def test_each_binding_error_names_both_sides(
    plain: onnx.ModelProto, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in XML
    # Without keyframes (their qpos would not fit a changed model), and with a renamed joint's
    # motor following it, so that the change alone is what the binding meets.
    xml = re.sub(r"<keyframe>.*</keyframe>", "", XML.replace(old, new), flags=re.S)
    xml = (
        xml.replace('joint="FL_hip"/>', 'joint="FL_hip_joint"/>') if "FL_hip_joint" in new else xml
    )
    with pytest.raises(SimError, match=message):
        bind(read_contract(plain), model_of(xml), label="the robot")


def test_a_timestep_that_is_not_sim_dt_is_refused_or_set_on_request(
    plain: onnx.ModelProto, tmp_path: Path
) -> None:
    robot = tmp_path / "fast.xml"
    robot.write_text(XML.replace('timestep="0.005"', 'timestep="0.002"'))
    with pytest.raises(
        SimError,
        match=r"MuJoCo's timestep of .*fast.xml' is 0.002 s but the file's sim_dt is 0.005 s "
        r"\(update_rate 200 Hz\).* Fix: <option timestep=\"0.005\"/> in the MJCF, or "
        r".*--set-timestep",
    ):
        simulate(plain, robot, seconds=0.05)
    result = simulate(plain, robot, seconds=0.05, set_timestep=True)
    assert result.notes == (
        "MuJoCo's timestep set to the file's sim_dt 0.005 s (the model had 0.002 s)",
    )
    assert result.ticks == 10


def test_inputs_and_outputs_outside_the_vocabulary_need_mjcf_names(tmp_path: Path) -> None:
    file = build(declare=lambda p: p.input("foo", 2))
    with pytest.raises(
        SimError,
        match=r"input 'foo' \(2 value\(s\)\) is not exploy robot state the simulation knows, and "
        r".* has no MJCF sensors for it. Fix: declare a sensor named 'foo' of 2 value\(s\), or "
        r"sensors 'foo\[0\]' .. 'foo\[1\]'",
    ):
        bind(read_contract(file), model_of(XML))
    one = XML.replace("<sensor>", '<sensor><jointpos name="foo[0]" joint="FL_hip"/>')
    with pytest.raises(SimError, match=r"found sensors of 1 value\(s\)"):
        bind(read_contract(file), model_of(one))
    two = one.replace("<sensor>", '<sensor><jointvel name="foo[1]" joint="FL_hip"/>')
    binding = bind(read_contract(file), model_of(two))
    assert "foo <- MJCF sensor(s) 'foo[0]' .. 'foo[1]'" in binding.lines

    scan = build(
        declare=lambda p: p.height_scan(
            "scan", shape=(3, 3), pattern_type="grid", resolution=0.1, size_x=0.2, size_y=0.2
        )
    )
    with pytest.raises(SimError, match=r"input 'sensor.ray_caster.scan.height' is a height scan; "):
        bind(read_contract(scan), model_of(XML))


def test_an_output_without_actuators_is_refused(compiled: dict[str, Any]) -> None:
    tutorial = EXAMPLES / "robots" / "tutorial.xml"
    text = tutorial.read_text().replace('"out[1]"', '"other"')
    with pytest.raises(
        SimError,
        match=r"output 'out' \(2 value\(s\)\) is not exploy's joint targets, and .* has no "
        r"actuators named 'out\[0\]', 'out\[1\]' to receive it; its actuators: out\[0\], other",
    ):
        bind(read_contract(compiled["tutorial"].model), model_of(text))


def test_a_file_that_outputs_nan_stops_the_run_and_the_command_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "nan.onnx"
    onnx.save(build(targets=lambda v, j, e: {"effort": op.sqrt(v[j.pos] - 10.0)}), str(file))

    result = simulate(file, QUADRUPED_XML)

    assert result.ticks == 1 and not result.ok
    assert result.stopped is not None
    assert result.stopped.startswith("output output.joint_targets.robot.effort[0] = nan at tick 0")
    assert main(["sim", str(file), str(QUADRUPED_XML)]) == 1
    assert (
        "verdict: FAIL: stopped at tick 1 (output output.joint_targets.robot.effort[0] = nan"
        in capsys.readouterr().out
    )


def test_a_limp_file_lets_the_robot_fall_and_the_summary_says_when(
    plain: onnx.ModelProto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = simulate(plain, QUADRUPED_XML, seconds=2.0)  # effort 0, gains 0: no torque at all

    assert result.fell_at is not None and not result.ok
    assert result.verdict() == f"FELL at t = {result.fell_at * 0.005:.2f} s (tick {result.fell_at})"
    assert "joint-limit hits: " in result.summary() and "base 'base': FELL;" in result.summary()
    file = tmp_path / "limp.onnx"
    onnx.save(plain, str(file))
    assert main(["sim", str(file), str(QUADRUPED_XML), "--seconds", "2"]) == 1
    assert "verdict: FELL at t =" in capsys.readouterr().out


def test_settling_holds_the_initial_targets_and_needs_an_apply_only_step(
    tmp_path: Path,
) -> None:
    stiff = build(
        stiffness=20.0,
        damping=0.5,
        targets=lambda v, j, e: {
            "pos": np.array(
                [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5], np.float32
            )
        },
    )
    result = simulate(stiff, QUADRUPED_XML, seconds=0.5, settle_physics=100)
    assert result.ok and result.settle_steps == 100
    assert result.base_pos[0, 2] < 0.3  # the robot landed while settling

    every_tick = build(decimation=1)
    with pytest.raises(
        SimError, match=r"settle_physics=5 needs an apply-only step .* decimation 1"
    ):
        simulate(every_tick, QUADRUPED_XML, settle_physics=5)


def test_other_refusals_of_a_run(
    plain: onnx.ModelProto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SimError, match=r"has no keyframe 'stand'; its keyframes: 'home', 'crouch'"):
        simulate(plain, QUADRUPED_XML, keyframe="stand")
    with pytest.raises(SimError, match=r"robot model '.*nowhere.xml' does not exist"):
        simulate(plain, tmp_path / "nowhere.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body><geom/></worldbody></mujoco>")
    with pytest.raises(SimError, match=r"MuJoCo cannot load robot model '.*broken.xml': "):
        simulate(plain, broken)
    with pytest.raises(UsageError, match=r"seconds must be a finite number > 0, got 0"):
        simulate(plain, QUADRUPED_XML, seconds=0)
    with pytest.raises(UsageError, match=r"seconds must be a finite number > 0, got inf"):
        simulate(plain, QUADRUPED_XML, seconds=math.inf)  # an OverflowError traceback before
    file = tmp_path / "p.onnx"
    onnx.save(plain, str(file))
    assert main(["sim", str(file), str(QUADRUPED_XML), "--plot", str(file)]) == 2
    # The line names the command: --command's dest once overwrote it ("exploy-dsl []: error").
    err = capsys.readouterr().err
    assert err.startswith("exploy-dsl sim: error: ") and "--plot" in err
    assert main(["sim", str(file), str(QUADRUPED_XML), "--command", "nope=1"]) == 2
    assert capsys.readouterr().err.startswith("exploy-dsl sim: error: --command nope: ")


def test_a_missing_mujoco_is_a_clear_error(
    plain: onnx.ModelProto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mujoco", None)  # what `import mujoco` meets when absent
    with pytest.raises(
        MissingDependencyError,
        match=r"exploy_dsl.sim needs MuJoCo, which is not installed. Fix: pip install mujoco\.",
    ):
        simulate(plain, QUADRUPED_XML)
