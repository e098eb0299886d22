"""Bind a compiled file's wires to a MuJoCo model by name, from the file's metadata alone.

Inputs: joint state by ``joint_names`` (MJCF hinge and slide joints of those names), the base
from the free joint of the body ``base_names`` names, other bodies from their kinematics, IMU
wires from MJCF sensors on the site named like the IMU, commands from given values, and any
other wire from MJCF sensors named like it. Outputs: joint targets applied as exploy's
controller does (``effort + stiffness * (pos - q) + damping * (vel - qd)``) through a torque
actuator per joint, any other output as the control of actuators named like it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exploy_dsl._errors import SimError
from exploy_dsl.contract._batch import NOT_FOR_ROBOT
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._reader import FileContract, Wire
from exploy_dsl.contract._wires import (
    BASE_STATE,
    BOOLEAN_COMMAND,
    FLOAT_COMMAND,
    HEIGHT_SCAN,
    IMU,
    JOINT_POS_COMMAND,
    JOINT_STATE,
    JOINT_TARGET,
    SE2_COMMAND,
    SE3_COMMAND,
)
from exploy_dsl.sim._commands import command_values
from exploy_dsl.sim._mujoco import require_mujoco

Reader = Callable[[Any], np.ndarray]  # MjData -> the wire's values (any shape of its size)
_COMMANDS = (SE2_COMMAND, FLOAT_COMMAND, BOOLEAN_COMMAND, SE3_COMMAND, JOINT_POS_COMMAND)
# exploy's IMU fields and the MJCF sensor that measures each, on the IMU's site.
_IMU_SENSORS = {
    "w_Q_b": ("FRAMEQUAT", '<framequat objtype="site" objname="{site}"/>'),
    "ang_vel_b_rt_w_in_b": ("GYRO", '<gyro site="{site}"/>'),
    "lin_vel_b_rt_w_in_b": ("VELOCIMETER", '<velocimeter site="{site}"/>'),
}


@dataclass(frozen=True, slots=True)
class Joints:
    """MJCF joints in the file's order: where their state is, and their limits."""

    names: tuple[str, ...]
    ids: np.ndarray
    qpos: np.ndarray  # qpos addresses
    dof: np.ndarray  # qvel addresses
    limited: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """``output.joint_targets.<name>``: one torque actuator per joint, the file's gains."""

    group: str
    joints: Joints
    actuators: np.ndarray
    torque_per_ctrl: np.ndarray  # gain * gear of each actuator
    stiffness: np.ndarray
    damping: np.ndarray
    low: np.ndarray  # joint torque limits (-inf/inf when unlimited)
    high: np.ndarray


@dataclass(frozen=True, slots=True)
class ActuatorOutput:
    """An output outside exploy's vocabulary, written as control to actuators named like it."""

    wire: str
    actuators: np.ndarray
    low: np.ndarray  # ctrl limits (-inf/inf when unlimited)
    high: np.ndarray


@dataclass(frozen=True, slots=True)
class BaseBody:
    """The floating body whose height and tilt tell whether the robot fell."""

    name: str
    body_id: int
    qpos: int
    dof: int


@dataclass(frozen=True, slots=True)
class Applied:
    """What one tick sent to the actuators: joint torques commanded, and limit hits."""

    commanded: np.ndarray  # per actuated joint (Binding.actuated order), before the limits
    hits: np.ndarray  # bool per actuated joint: the torque (or control) was clipped
    targets: np.ndarray  # the .pos target per actuated joint (NaN outside joint targets)


@dataclass(frozen=True, slots=True, eq=False)
class Binding:
    """How every wire of a file meets a MuJoCo model; ``read`` and ``apply`` run a tick."""

    readers: Mapping[str, Reader]
    wires: Mapping[str, Wire]
    targets: tuple[TargetGroup, ...]
    actuator_outputs: tuple[ActuatorOutput, ...]
    base: BaseBody | None
    actuated: Joints  # every joint an output drives, in output order
    sensed: Joints  # every joint the file reads or commands (for joint-limit hits)
    commands: Mapping[str, np.ndarray]
    lines: tuple[str, ...] = field(default=())  # what is bound to what, for a person

    def read(self, data: Any) -> dict[str, np.ndarray]:
        """Every input of the file from the simulation's current state."""
        return {
            name: np.asarray(read(data))
            .reshape(self.wires[name].shape)
            .astype(self.wires[name].np_dtype)
            for name, read in self.readers.items()
        }

    def apply(self, outputs: Mapping[str, np.ndarray], data: Any) -> Applied:
        """Set ``data.ctrl`` from the file's outputs, as exploy's controller commands a robot."""
        commanded, hits, targets = [], [], []
        for group in self.targets:
            q = data.qpos[group.joints.qpos]
            qd = data.qvel[group.joints.dof]
            pos = outputs[f"{group.group}.pos"].reshape(-1).astype(np.float64)
            vel = outputs[f"{group.group}.vel"].reshape(-1).astype(np.float64)
            effort = outputs[f"{group.group}.effort"].reshape(-1).astype(np.float64)
            torque = effort + group.stiffness * (pos - q) + group.damping * (vel - qd)
            clipped = np.clip(torque, group.low, group.high)
            data.ctrl[group.actuators] = clipped / group.torque_per_ctrl
            commanded.append(torque)
            hits.append(clipped != torque)
            targets.append(pos)
        for out in self.actuator_outputs:
            ctrl = outputs[out.wire].reshape(-1).astype(np.float64)
            clipped = np.clip(ctrl, out.low, out.high)
            data.ctrl[out.actuators] = clipped
            commanded.append(ctrl)
            hits.append(clipped != ctrl)
            targets.append(np.full(ctrl.shape, np.nan))
        if not commanded:
            empty = np.zeros(0)
            return Applied(empty, empty.astype(bool), empty)
        return Applied(np.concatenate(commanded), np.concatenate(hits), np.concatenate(targets))


def bind(
    contract: FileContract,
    model: Any,
    *,
    commands: Mapping[str, Any] | None = None,
    label: str = "the robot model",
) -> Binding:
    """Bind every input and output of ``contract`` to ``model``; a SimError names what is not.

    ``commands`` gives command values by short name or wire (see ``command_values``).
    """
    if contract.batch != 1:
        raise SimError(
            f"the file has batch {contract.batch}: the simulation drives one robot, and "
            f"{NOT_FOR_ROBOT}. Fix: simulate the robot's file (compile without --batch)."
        )
    mujoco = require_mujoco()
    names = _Names(mujoco, model, label)
    for wire in (*contract.inputs, *contract.outputs):
        if not wire.shape or wire.shape[0] != 1:
            raise SimError(
                f"wire {wire.name!r} has shape {list(wire.shape)}; the simulation drives one "
                "robot, so every wire needs batch 1. Fix: compile the program with batch 1."
            )
    metadata = contract.metadata
    values = command_values(contract, commands)
    readers: dict[str, Reader] = {}
    lines: list[str] = []
    sensed_names: list[str] = []
    joint_groups: dict[str, Joints] = {}
    base_names = decode(metadata.get("base_names", "{}"))
    base_names = base_names if isinstance(base_names, dict) else {}
    for wire in contract.inputs:
        name = wire.name
        if (match := JOINT_STATE.match(name)) is not None:
            group, member = match.group(1), match.group(3)
            if group not in joint_groups:
                joint_groups[group] = names.joints(_joint_names(metadata, group, wire), group)
            joints = joint_groups[group]
            sensed_names += [n for n in joints.names if n not in sensed_names]
            readers[name] = _joint_reader(joints, member)
            lines.append(f"{name} <- {len(joints.names)} MJCF joints ({member})")
        elif (match := BASE_STATE.match(name)) is not None:
            art, body, field_name = match.groups()
            if base_names.get(art) == body:
                floating = names.base(body, f"base_names[{art!r}]")
                readers[name] = _base_reader(floating, field_name, mujoco)
                lines.append(f"{name} <- free joint of body {body!r}")
            else:
                body_id = names.body(body, f"the body input {name!r} reads")
                readers[name] = _body_reader(mujoco, model, body_id, field_name)
                lines.append(f"{name} <- kinematics of body {body!r}")
        elif (match := IMU.match(name)) is not None:
            site, imu_field = match.groups()
            readers[name] = names.imu_sensor(site, imu_field, name)
            lines.append(f"{name} <- MJCF sensor on site {site!r}")
        elif any(p.match(name) for p in _COMMANDS):
            value = values[name]
            readers[name] = _constant(value)
            shown = ", ".join(f"{x:g}" if x.dtype.kind == "f" else str(x) for x in value.ravel())
            lines.append(f"{name} = [{shown}] (command)")
        elif HEIGHT_SCAN.match(name):
            raise SimError(
                f"input {name!r} is a height scan; exploy_dsl.sim has no ray caster to provide "
                f"it. Fix: declare MJCF sensors named {name!r} (one of its size) or "
                f"'{name}[0]', '{name}[1]', ... whose values are the scan."
            )
        else:
            readers[name], found = names.named_sensors(name, _size(wire))
            lines.append(f"{name} <- MJCF sensor(s) {found}")
    targets: list[TargetGroup] = []
    actuator_outputs: list[ActuatorOutput] = []
    seen_groups: set[str] = set()
    for wire in contract.outputs:
        match = JOINT_TARGET.match(wire.name)
        if match is not None:
            group = match.group(1)
            if group in seen_groups:
                continue
            seen_groups.add(group)
            target = _target_group(names, contract, group)
            targets.append(target)
            sensed_names += [n for n in target.joints.names if n not in sensed_names]
            kp = "file's stiffness/damping" if np.any(target.stiffness) else "effort"
            lines.append(
                f"{group}.pos/.vel/.effort -> {len(target.actuators)} torque actuators ({kp})"
            )
        else:
            out = names.named_actuators(wire.name, _size(wire))
            actuator_outputs.append(out)
            shown = ", ".join(repr(model.actuator(int(a)).name) for a in out.actuators)
            lines.append(f"{wire.name} -> control of MJCF actuator(s) {shown}")
    names.check_counts(joint_groups, targets, actuator_outputs)
    base = names.assessed_base(base_names)
    actuated = _concat([t.joints for t in targets] + [names.joints_of(a) for a in actuator_outputs])
    sensed = names.joints(sensed_names, "the file") if sensed_names else actuated
    return Binding(
        readers,
        {w.name: w for w in contract.inputs},
        tuple(targets),
        tuple(actuator_outputs),
        base,
        actuated,
        sensed,
        values,
        tuple(lines),
    )


def _constant(value: np.ndarray) -> Reader:
    return lambda data: value


def _size(wire: Wire) -> int:
    return int(np.prod(wire.shape, dtype=np.int64))


def _joint_names(metadata: Mapping[str, str], group: str, wire: Wire) -> list[str]:
    meta = decode(metadata.get(group, "{}"))
    names = meta.get("joint_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != _size(wire):
        raise SimError(
            f"input {wire.name!r} has no joint order: metadata {group!r} lacks 'joint_names' "
            f"of {_size(wire)} names. Fix: recompile the program (Program.joints names them)."
        )
    return [str(n) for n in names]


def _joint_reader(joints: Joints, member: str) -> Reader:
    if member == "pos":
        return lambda data: data.qpos[joints.qpos]
    return lambda data: data.qvel[joints.dof]


def _base_reader(base: BaseBody, field_name: str, mujoco: Any) -> Reader:
    p, v = base.qpos, base.dof
    if field_name == "pos_b_rt_w_in_w":
        return lambda data: data.qpos[p : p + 3]
    if field_name == "w_Q_b":
        return lambda data: data.qpos[p + 3 : p + 7]  # MuJoCo's order is w, x, y, z too
    if field_name == "ang_vel_b_rt_w_in_b":
        return lambda data: data.qvel[v + 3 : v + 6]  # a free joint's angular part: body frame
    # A free joint's linear velocity is in the world frame: rotate it into the body's.
    body = base.body_id
    return lambda data: data.xmat[body].reshape(3, 3).T @ data.qvel[v : v + 3]


def _body_reader(mujoco: Any, model: Any, body: int, field_name: str) -> Reader:
    if field_name == "pos_b_rt_w_in_w":
        return lambda data: data.xpos[body]
    if field_name == "w_Q_b":
        return lambda data: data.xquat[body]

    def velocity(data: Any) -> np.ndarray:
        res = np.zeros(6)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, body, res, 1)
        return res[:3] if field_name == "ang_vel_b_rt_w_in_b" else res[3:]

    return velocity


def _concat(parts: list[Joints]) -> Joints:
    if not parts:
        empty = np.zeros(0, np.int64)
        return Joints((), empty, empty, empty, empty.astype(bool), empty * 1.0, empty * 1.0)
    return Joints(
        tuple(n for p in parts for n in p.names),
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.qpos for p in parts]),
        np.concatenate([p.dof for p in parts]),
        np.concatenate([p.limited for p in parts]),
        np.concatenate([p.low for p in parts]),
        np.concatenate([p.high for p in parts]),
    )


def _target_group(names: _Names, contract: FileContract, group: str) -> TargetGroup:
    meta = decode(contract.metadata.get(group, "{}"))
    meta = meta if isinstance(meta, dict) else {}
    joint_names = meta.get("names")
    outputs = {w.name for w in contract.outputs}
    missing = [m for m in ("pos", "vel", "effort") if f"{group}.{m}" not in outputs]
    if not isinstance(joint_names, list) or missing:
        raise SimError(
            f"joint targets {group!r} need metadata 'names' and outputs .pos, .vel and .effort "
            f"(missing: {missing or ['names']}). Fix: recompile the program."
        )
    n = len(joint_names)
    gains = {}
    for key in ("stiffness", "damping"):
        value = np.asarray(meta.get(key, []), dtype=np.float64).reshape(-1)
        if value.shape != (n,) or not np.isfinite(value).all():
            raise SimError(
                f"joint targets {group!r}: metadata {key!r} must be {n} finite numbers. "
                "Fix: recompile the program."
            )
        gains[key] = value
    joints = names.joints([str(x) for x in joint_names], group)
    actuators, per_ctrl, low, high = names.torque_actuators(joints, group)
    return TargetGroup(
        group, joints, actuators, per_ctrl, gains["stiffness"], gains["damping"], low, high
    )


class _Names:
    """Look-ups in one MuJoCo model whose errors list both the file's and the model's side."""

    def __init__(self, mujoco: Any, model: Any, label: str) -> None:
        self.mujoco = mujoco
        self.model = model
        self.label = label
        self.used_actuators: set[int] = set()
        obj = mujoco.mjtObj
        self.obj_joint, self.obj_body, self.obj_site = (
            obj.mjOBJ_JOINT,
            obj.mjOBJ_BODY,
            obj.mjOBJ_SITE,
        )
        self.obj_actuator, self.obj_sensor = obj.mjOBJ_ACTUATOR, obj.mjOBJ_SENSOR
        kinds = mujoco.mjtJoint
        self.one_dof = {int(kinds.mjJNT_HINGE), int(kinds.mjJNT_SLIDE)}
        self.free = int(kinds.mjJNT_FREE)

    def _id(self, obj: Any, name: str) -> int:
        return int(self.mujoco.mj_name2id(self.model, obj, name))

    def model_joints(self) -> list[str]:
        m = self.model
        return [m.joint(i).name for i in range(m.njnt) if int(m.jnt_type[i]) in self.one_dof]

    def joints(self, joint_names: list[str], owner: str) -> Joints:
        m = self.model
        ids = [self._id(self.obj_joint, n) for n in joint_names]
        missing = [n for n, i in zip(joint_names, ids, strict=True) if i < 0]
        if missing:
            raise SimError(
                f"{self.label} lacks joint(s) {', '.join(missing)} of {owner}. The file's "
                f"joints: {', '.join(joint_names)}; the model's hinge/slide joints: "
                f"{', '.join(self.model_joints()) or 'none'}. Fix: name the MJCF joints as "
                "the file does (the order does not matter)."
            )
        wrong = [
            n
            for n, i in zip(joint_names, ids, strict=True)
            if int(m.jnt_type[i]) not in self.one_dof
        ]
        if wrong:
            raise SimError(
                f"joint(s) {', '.join(wrong)} of {self.label} are not hinge or slide joints; "
                f"{owner} commands one value per joint. Fix: make them hinge or slide joints."
            )
        idx = np.array(ids, np.int64)
        limited = np.asarray(m.jnt_limited[idx], bool)
        ranges = np.asarray(m.jnt_range[idx], np.float64).reshape(-1, 2)
        return Joints(
            tuple(joint_names),
            idx,
            np.asarray(m.jnt_qposadr[idx], np.int64),
            np.asarray(m.jnt_dofadr[idx], np.int64),
            limited,
            np.where(limited, ranges[:, 0], -np.inf),
            np.where(limited, ranges[:, 1], np.inf),
        )

    def body(self, body: str, what: str) -> int:
        found = self._id(self.obj_body, body)
        if found < 0:
            bodies = [self.model.body(i).name for i in range(1, self.model.nbody)]
            raise SimError(
                f"{what} is body {body!r}, which {self.label} lacks; its bodies: "
                f"{', '.join(bodies) or 'none'}. Fix: name the MJCF body {body!r}."
            )
        return found

    def base(self, body: str, origin: str) -> BaseBody:
        m = self.model
        body_id = self.body(body, f"the file's base ({origin})")
        joint = int(m.body_jntadr[body_id])
        if int(m.body_jntnum[body_id]) < 1 or int(m.jnt_type[joint]) != self.free:
            raise SimError(
                f"body {body!r} of {self.label}, the file's base ({origin}), has no free joint; "
                "a base's position, orientation and velocity are those of its free joint. "
                f"Fix: add <freejoint/> as the first element of <body name={body!r}>."
            )
        return BaseBody(body, body_id, int(m.jnt_qposadr[joint]), int(m.jnt_dofadr[joint]))

    def assessed_base(self, base_names: Mapping[str, Any]) -> BaseBody | None:
        """The body to watch for a fall: the file's base, else the model's one floating body."""
        m = self.model
        for body in base_names.values():
            if isinstance(body, str) and self._id(self.obj_body, body) >= 0:
                try:
                    return self.base(body, "base_names")
                except SimError:
                    continue
        free = [i for i in range(m.njnt) if int(m.jnt_type[i]) == self.free]
        if len(free) == 1:
            body_id = int(m.jnt_bodyid[free[0]])
            return BaseBody(
                m.body(body_id).name,
                body_id,
                int(m.jnt_qposadr[free[0]]),
                int(m.jnt_dofadr[free[0]]),
            )
        return None

    def imu_sensor(self, site: str, field_name: str, wire: str) -> Reader:
        m, mujoco = self.model, self.mujoco
        kind, example = _IMU_SENSORS[field_name]
        sensor_type = int(getattr(mujoco.mjtSensor, f"mjSENS_{kind}"))
        site_id = self._id(self.obj_site, site)
        for i in range(m.nsensor):
            if (
                int(m.sensor_type[i]) == sensor_type
                and int(m.sensor_objtype[i]) == int(self.obj_site)
                and int(m.sensor_objid[i]) == site_id >= 0
            ):
                start, size = int(m.sensor_adr[i]), int(m.sensor_dim[i])
                return lambda data: data.sensordata[start : start + size]
        where = "" if site_id >= 0 else f" (it has no site {site!r} either)"
        raise SimError(
            f"input {wire!r} needs an MJCF {kind.lower()} sensor on site {site!r}, which "
            f"{self.label} lacks{where}. Fix: add <site name={site!r}/> to the IMU's body and "
            f"{example.format(site=site)} to <sensor>."
        )

    def named_sensors(self, wire: str, size: int) -> tuple[Reader, str]:
        m = self.model
        whole = self._id(self.obj_sensor, wire)
        slices: list[tuple[int, int]] = []
        if whole >= 0:
            slices = [(int(m.sensor_adr[whole]), int(m.sensor_dim[whole]))]
            shown = repr(wire)
        else:
            i = 0
            while (found := self._id(self.obj_sensor, f"{wire}[{i}]")) >= 0:
                slices.append((int(m.sensor_adr[found]), int(m.sensor_dim[found])))
                i += 1
            shown = f"'{wire}[0]' .. '{wire}[{len(slices) - 1}]'"
        total = sum(n for _, n in slices)
        if not slices or total != size:
            got = f"; found sensors of {total} value(s)" if slices else ""
            raise SimError(
                f"input {wire!r} ({size} value(s)) is not exploy robot state the simulation "
                f"knows, and {self.label} has no MJCF sensors for it{got}. Fix: declare a "
                f"sensor named {wire!r} of {size} value(s), or sensors '{wire}[0]' .. "
                f'\'{wire}[{size - 1}]\' (e.g. <jointpos name="{wire}[0]" joint="..."/>).'
            )
        index = np.concatenate([np.arange(a, a + n) for a, n in slices])
        return (lambda data: data.sensordata[index]), shown

    def named_actuators(self, wire: str, size: int) -> ActuatorOutput:
        m = self.model
        names = [wire] if size == 1 else [f"{wire}[{i}]" for i in range(size)]
        ids = [self._id(self.obj_actuator, n) for n in names]
        if size == 1 and ids[0] < 0:
            ids = [self._id(self.obj_actuator, f"{wire}[0]")]
        if any(i < 0 for i in ids):
            actuators = [m.actuator(i).name for i in range(m.nu)]
            raise SimError(
                f"output {wire!r} ({size} value(s)) is not exploy's joint targets, and "
                f"{self.label} has no actuators named {', '.join(map(repr, names))} to receive "
                f"it; its actuators: {', '.join(actuators) or 'none'}. Fix: name MJCF actuators "
                "so, or declare the output with Program.joint_targets."
            )
        idx = np.array(ids, np.int64)
        self.used_actuators |= set(ids)
        limited = np.asarray(m.actuator_ctrllimited[idx], bool)
        ranges = np.asarray(m.actuator_ctrlrange[idx], np.float64).reshape(-1, 2)
        return ActuatorOutput(
            wire,
            idx,
            np.where(limited, ranges[:, 0], -np.inf),
            np.where(limited, ranges[:, 1], np.inf),
        )

    def joints_of(self, out: ActuatorOutput) -> Joints:
        """The joints an output's actuators drive (for the plot and the limit counts)."""
        m = self.model
        joint_trn = int(self.mujoco.mjtTrn.mjTRN_JOINT)
        names = []
        for a in out.actuators:
            if int(m.actuator_trntype[a]) != joint_trn:
                return _concat([])
            names.append(m.joint(int(m.actuator_trnid[a][0])).name)
        return self.joints(names, repr(out.wire))

    def torque_actuators(
        self, joints: Joints, group: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The torque actuator of each joint: by the joint's name, else the one driving it."""
        m, mujoco = self.model, self.mujoco
        joint_trn = int(mujoco.mjtTrn.mjTRN_JOINT)
        ids, per_ctrl, low, high = [], [], [], []
        for name, joint in zip(joints.names, joints.ids, strict=True):
            driving = [
                a
                for a in range(m.nu)
                if int(m.actuator_trntype[a]) == joint_trn and int(m.actuator_trnid[a][0]) == joint
            ]
            named = self._id(self.obj_actuator, name)
            chosen = named if named in driving else (driving[0] if len(driving) == 1 else -1)
            if chosen < 0:
                listed = ", ".join(
                    f"{m.actuator(a).name} -> {self._target(a)}" for a in range(m.nu)
                )
                why = "none drives it" if not driving else f"{len(driving)} drive it, none named so"
                raise SimError(
                    f"joint target {name!r} of {group!r} has no actuator in {self.label} "
                    f"({why}). The file's joints: {', '.join(joints.names)}; the model's "
                    f"actuators: {listed or 'none'}. Fix: add <motor name={name!r} "
                    f"joint={name!r}/> to <actuator>."
                )
            self._check_torque_actuator(chosen, name)
            gain = float(m.actuator_gainprm[chosen][0]) * float(m.actuator_gear[chosen][0])
            lo, hi = -np.inf, np.inf
            if bool(m.actuator_ctrllimited[chosen]):
                ends = sorted(float(c) * gain for c in m.actuator_ctrlrange[chosen])
                lo, hi = max(lo, ends[0]), min(hi, ends[1])
            if bool(m.actuator_forcelimited[chosen]):
                gear = float(m.actuator_gear[chosen][0])
                ends = sorted(float(f) * gear for f in m.actuator_forcerange[chosen])
                lo, hi = max(lo, ends[0]), min(hi, ends[1])
            if bool(m.jnt_actfrclimited[joint]):
                lo = max(lo, float(m.jnt_actfrcrange[joint][0]))
                hi = min(hi, float(m.jnt_actfrcrange[joint][1]))
            ids.append(chosen)
            per_ctrl.append(gain)
            low.append(lo)
            high.append(hi)
        self.used_actuators |= set(ids)
        return (np.array(ids, np.int64), np.array(per_ctrl), np.array(low), np.array(high))

    def _target(self, actuator: int) -> str:
        m = self.model
        if int(m.actuator_trntype[actuator]) == int(self.mujoco.mjtTrn.mjTRN_JOINT):
            return f"joint {m.joint(int(m.actuator_trnid[actuator][0])).name}"
        return "not a joint"

    def _check_torque_actuator(self, actuator: int, joint: str) -> None:
        m, mujoco = self.model, self.mujoco
        name = m.actuator(actuator).name or f"#{actuator}"
        gain = float(m.actuator_gainprm[actuator][0]) * float(m.actuator_gear[actuator][0])
        if (
            int(m.actuator_gaintype[actuator]) != int(mujoco.mjtGain.mjGAIN_FIXED)
            or int(m.actuator_biastype[actuator]) != int(mujoco.mjtBias.mjBIAS_NONE)
            or int(m.actuator_dyntype[actuator]) != int(mujoco.mjtDyn.mjDYN_NONE)
            or gain == 0.0
        ):
            raise SimError(
                f"actuator {name!r} of joint {joint!r} in {self.label} is not a torque motor "
                "(it has a bias, dynamics or a zero gain, as <position>/<velocity> servos do); "
                "the file's joint targets are applied as exploy's controller applies them, as "
                "a torque effort + stiffness * (pos - q) + damping * (vel - qd). Fix: make it "
                f"<motor name={name!r} joint={joint!r} .../> (its ctrlrange is the torque limit)."
            )

    def check_counts(
        self,
        joint_groups: Mapping[str, Joints],
        targets: list[TargetGroup],
        outputs: list[ActuatorOutput],
    ) -> None:
        """The file and the model must agree on how many joints and actuators there are."""
        m = self.model
        if joint_groups:
            file_joints = sorted({n for j in joint_groups.values() for n in j.names})
            model_joints = self.model_joints()
            if len(file_joints) != len(model_joints):
                raise SimError(
                    f"the file reads {len(file_joints)} joints but {self.label} has "
                    f"{len(model_joints)} hinge/slide joints. The file's: "
                    f"{', '.join(file_joints)}; the model's: {', '.join(model_joints)}. Fix: "
                    "make the model's joints those the policy was trained with."
                )
        if targets:
            wanted = [n for t in targets for n in t.joints.names]
            others = [a for a in range(m.nu) if a not in self.used_actuators]
            if others:
                listed = ", ".join(f"{m.actuator(a).name} -> {self._target(a)}" for a in others)
                raise SimError(
                    f"the file commands {len(wanted)} joint targets but {self.label} has "
                    f"{m.nu} actuators; nothing of the file drives {listed}. The file's "
                    f"joint targets: {', '.join(wanted)}. Fix: remove those actuators or "
                    "compile a file that commands them."
                )
