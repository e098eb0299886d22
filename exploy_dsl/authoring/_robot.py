"""exploy's robot vocabulary: Program methods that declare the wires its C++ controller binds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exploy_dsl._checks import check_number, check_range, is_number
from exploy_dsl._errors import DeclarationError
from exploy_dsl.contract._wires import ALNUM

if TYPE_CHECKING:
    from ._ports import Input, Output
    from ._program import Group

SE2_RANGE_KEYS = ("lin_vel_x", "lin_vel_y", "ang_vel_z")
HEIGHT_SCAN_KEYS = ("pattern_type", "resolution", "size_x", "size_y")


@dataclass(frozen=True, slots=True, eq=False)
class Joints:
    """Joint state ``obj.<art>.joints.pos`` / ``.vel``; ``names`` is the joint order."""

    articulation: str
    names: tuple[str, ...]
    pos: Input | None
    vel: Input | None

    @property
    def group(self) -> str:
        return f"obj.{self.articulation}.joints"

    @property
    def size(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True, eq=False)
class BaseState:
    """Base state of one articulation, ``obj.<art>.<body>.<field>``; absent fields are None."""

    articulation: str
    body: str
    lin_vel: Input | None
    ang_vel: Input | None
    orientation: Input | None  # w_Q_b, (w, x, y, z)
    position: Input | None


@dataclass(frozen=True, slots=True, eq=False)
class Imu:
    """An IMU ``sensor.imu.<name>.<field>``; absent fields are None."""

    name: str
    orientation: Input | None  # w_Q_b, (w, x, y, z)
    ang_vel: Input | None
    lin_vel: Input | None


@dataclass(frozen=True, slots=True, eq=False)
class JointTargets:
    """Outputs ``output.joint_targets.<name>.pos/.vel/.effort`` and the gains exploy applies."""

    name: str
    names: tuple[str, ...]
    stiffness: tuple[float, ...]
    damping: tuple[float, ...]
    pos: Output
    vel: Output
    effort: Output

    @property
    def group(self) -> str:
        return f"output.joint_targets.{self.name}"

    @property
    def articulation(self) -> str:
        """The articulation exploy's controller sends these targets to: the wires' ``<name>``."""
        return self.name


class RobotVocabulary:
    """Declarations with exploy's standard wire names and the metadata its matchers require.

    Mixed into Program: ``program.joints("robot", names=JOINT_NAMES)`` and friends declare
    ordinary ports and groups, so no program spells a standard wire name by hand, and a
    missing joint order or gain is an error here rather than a component exploy skips.
    """

    if TYPE_CHECKING:
        name: str
        metadata: dict[str, Any]
        _stated_articulations: set[str]

        def group(self, name: str, metadata: dict[str, Any] | None = None) -> Group: ...
        def input(
            self,
            name: str,
            shape: int | tuple[int, ...],
            dtype: Any = "float32",
            metadata: dict[str, Any] | None = None,
        ) -> Input: ...

    def joints(
        self,
        articulation: str,
        *,
        names: Sequence[str] | None = None,
        pos: bool = True,
        vel: bool = True,
    ) -> Joints:
        """Joint positions and velocities ``obj.<articulation>.joints.{pos,vel}`` ``[1, N]``.

        ``names`` is the joint order of both tensors (group metadata ``joint_names``).
        """
        what = f"joints({articulation!r})"
        art = _segment(articulation, what, "articulation")
        if names is None:
            raise DeclarationError(
                f"{what} needs names=[...]: exploy's controller reads the joint order from "
                f"'joint_names' and skips obj.{art}.joints without it. "
                "Fix: pass names=JOINT_NAMES in the order the policy was trained with."
            )
        joint_names = _names(names, what, "names")
        if not pos and not vel:
            raise DeclarationError(f"{what}: pos=False and vel=False declares nothing.")
        group = self.group(f"obj.{art}.joints", metadata={"joint_names": list(joint_names)})
        n = len(joint_names)
        return Joints(
            art,
            joint_names,
            group.input("pos", n) if pos else None,
            group.input("vel", n) if vel else None,
        )

    def base(
        self,
        articulation: str = "robot",
        body: str = "base",
        *,
        lin_vel: bool = True,
        ang_vel: bool = True,
        orientation: bool = True,
        position: bool = False,
    ) -> BaseState:
        """Base state ``obj.<art>.<body>.{lin_vel_b_rt_w_in_b, ang_vel_b_rt_w_in_b, w_Q_b,
        pos_b_rt_w_in_w}``; records ``base_names[<art>] = <body>`` in the program metadata,
        which exploy's base matchers need.
        """
        what = f"base({articulation!r}, {body!r})"
        art = _segment(articulation, what, "articulation")
        body_name = _segment(body, what, "body")
        fields = {
            "lin_vel_b_rt_w_in_b": (lin_vel, 3),
            "ang_vel_b_rt_w_in_b": (ang_vel, 3),
            "w_Q_b": (orientation, 4),
            "pos_b_rt_w_in_w": (position, 3),
        }
        if not any(wanted for wanted, _ in fields.values()):
            raise DeclarationError(f"{what}: every field is False; it declares nothing.")
        self._add_base_name(art, body_name, what)
        ports = {
            field: self.input(f"obj.{art}.{body_name}.{field}", size) if wanted else None
            for field, (wanted, size) in fields.items()
        }
        return BaseState(
            art,
            body_name,
            ports["lin_vel_b_rt_w_in_b"],
            ports["ang_vel_b_rt_w_in_b"],
            ports["w_Q_b"],
            ports["pos_b_rt_w_in_w"],
        )

    def imu(
        self, name: str, *, orientation: bool = True, ang_vel: bool = True, lin_vel: bool = True
    ) -> Imu:
        """IMU readings ``sensor.imu.<name>.{w_Q_b, ang_vel_b_rt_w_in_b, lin_vel_b_rt_w_in_b}``."""
        what = f"imu({name!r})"
        imu = _segment(name, what, "IMU name")
        if not (orientation or ang_vel or lin_vel):
            raise DeclarationError(f"{what}: every field is False; it declares nothing.")
        prefix = f"sensor.imu.{imu}"
        return Imu(
            imu,
            self.input(f"{prefix}.w_Q_b", 4) if orientation else None,
            self.input(f"{prefix}.ang_vel_b_rt_w_in_b", 3) if ang_vel else None,
            self.input(f"{prefix}.lin_vel_b_rt_w_in_b", 3) if lin_vel else None,
        )

    def se2_velocity_command(self, name: str, *, ranges: dict[str, Any] | None = None) -> Input:
        """Velocity command ``cmd.se2_velocity.<name>`` ``[1, 3]`` (vx, vy, wz).

        ``ranges`` maps lin_vel_x, lin_vel_y and ang_vel_z to ``(lo, hi)``; stored as lists.
        """
        what = f"se2_velocity_command({name!r})"
        cmd = _segment(name, what, "command name")
        example = "ranges={'lin_vel_x': (-1, 1), 'lin_vel_y': (-0.5, 0.5), 'ang_vel_z': (-1, 1)}"
        if ranges is None:
            raise DeclarationError(
                f"{what} needs ranges: exploy's controller limits the command to them (older "
                f"controllers skip the command without them). Fix: pass {example}."
            )
        if not isinstance(ranges, dict) or set(ranges) != set(SE2_RANGE_KEYS):
            got = sorted(ranges) if isinstance(ranges, dict) else type(ranges).__name__
            raise DeclarationError(
                f"{what}: ranges must have exactly the keys {', '.join(SE2_RANGE_KEYS)}, "
                f"got {got}. Fix: pass {example}."
            )
        metadata = {"ranges": {k: _range(ranges[k], f"{what} ranges[{k!r}]") for k in ranges}}
        return self.input(f"cmd.se2_velocity.{cmd}", 3, metadata=metadata)

    def float_command(self, name: str, *, range: Sequence[float] | None = None) -> Input:
        """A scalar command ``cmd.float.<name>`` ``[1, 1]``, optionally with ``range=(lo, hi)``."""
        what = f"float_command({name!r})"
        cmd = _segment(name, what, "command name")
        metadata = None if range is None else {"range": _range(range, f"{what} range")}
        return self.input(f"cmd.float.{cmd}", 1, metadata=metadata)

    def boolean_command(self, name: str) -> Input:
        """A switch ``cmd.boolean.<name>`` ``[1, 1]`` of dtype bool (exploy reads nothing else)."""
        cmd = _segment(name, f"boolean_command({name!r})", "command name")
        return self.input(f"cmd.boolean.{cmd}", 1, dtype="bool")

    def se3_pose_command(self, name: str) -> Input:
        """A pose command ``cmd.se3_pose.<name>`` ``[1, 7]``: x, y, z, qw, qx, qy, qz."""
        cmd = _segment(name, f"se3_pose_command({name!r})", "command name")
        return self.input(f"cmd.se3_pose.{cmd}", 7)

    def joint_position_command(self, name: str, *, names: Sequence[str] | None = None) -> Input:
        """Joint position command ``cmd.joint_pos.<name>`` ``[1, N]`` in the order ``names``."""
        what = f"joint_position_command({name!r})"
        cmd = _segment(name, what, "command name")
        if names is None:
            raise DeclarationError(
                f"{what} needs names=[...]: exploy's controller skips cmd.joint_pos.{cmd} "
                "without 'joint_names'. Fix: pass names=JOINT_NAMES (the command's joint order)."
            )
        joint_names = _names(names, what, "names")
        return self.input(
            f"cmd.joint_pos.{cmd}", len(joint_names), metadata={"joint_names": list(joint_names)}
        )

    def height_scan(
        self,
        sensor: str,
        *,
        shape: int | tuple[int, ...] | None = None,
        pattern_type: str | None = None,
        resolution: float | None = None,
        size_x: float | None = None,
        size_y: float | None = None,
        articulation_name: str | None = None,
        offset_x: float | None = None,
        offset_y: float | None = None,
    ) -> Input:
        """Height scan ``sensor.ray_caster.<sensor>.height`` with its grid in group metadata.

        ``shape`` is the number of scan points (or their grid shape) the policy reads;
        ``pattern_type``, ``resolution``, ``size_x`` and ``size_y`` are required by exploy,
        ``articulation_name``, ``offset_x`` and ``offset_y`` are optional.
        """
        what = f"height_scan({sensor!r})"
        name = _segment(sensor, what, "sensor name")
        given = {
            "pattern_type": pattern_type,
            "resolution": resolution,
            "size_x": size_x,
            "size_y": size_y,
        }
        missing = [k for k, v in given.items() if v is None]
        if shape is None or missing:
            missing = ["shape", *missing] if shape is None else missing
            raise DeclarationError(
                f"{what} needs {', '.join(missing)}: exploy's controller skips a height scan "
                "without pattern_type, resolution, size_x and size_y, and the file needs the "
                "number of points. Fix: e.g. height_scan('scanner', shape=187, "
                "pattern_type='grid_pattern', resolution=0.1, size_x=1.6, size_y=1.0)."
            )
        if not isinstance(pattern_type, str) or not pattern_type:
            raise DeclarationError(
                f"{what}: pattern_type must be a non-empty str, got {pattern_type!r}."
            )
        metadata: dict[str, Any] = {"pattern_type": pattern_type}
        for key in ("resolution", "size_x", "size_y"):
            metadata[key] = _number(given[key], f"{what} {key}", positive=True)
        if articulation_name is not None:
            metadata["articulation_name"] = _segment(articulation_name, what, "articulation_name")
        for key, offset in (("offset_x", offset_x), ("offset_y", offset_y)):
            if offset is not None:
                metadata[key] = _number(offset, f"{what} {key}")
        group = self.group(f"sensor.ray_caster.{name}", metadata=metadata)
        return group.input("height", shape)

    def joint_targets(
        self,
        name: str | None = None,
        *,
        articulation: str | None = None,
        names: Sequence[str] | None = None,
        stiffness: float | Sequence[float] | None = None,
        damping: float | Sequence[float] | None = None,
    ) -> JointTargets:
        """Outputs ``output.joint_targets.<art>.pos/.vel/.effort`` ``[1, N]`` with gains.

        exploy's controller sets, at every tick and for each joint i of ``names``, the
        position, velocity and effort targets and the P/D gains ``stiffness[i]``,
        ``damping[i]``. A number is used for every joint. All three are required.

        ``articulation`` is the articulation that receives the targets: exploy's controller
        passes the ``<art>`` of the wire names to the robot as the articulation of every
        joint, so it names the wires too. A positional ``name`` is the same thing, unstated:
        the compiler warns (ArticulationWarning) when the joints are read from another
        articulation (``obj.<other>.joints``) and ``articulation=`` was not given.
        """
        chosen = articulation if articulation is not None else name
        what = f"joint_targets({chosen!r})"
        if name is not None and articulation is not None and name != articulation:
            raise DeclarationError(
                f"joint_targets({name!r}, articulation={articulation!r}): exploy's controller "
                "takes the articulation from the wire names output.joint_targets.<name>.*, so "
                "the two must be one name. Fix: pass only "
                f"articulation={articulation!r} (wires output.joint_targets.{articulation}.*)."
            )
        if chosen is None:
            raise DeclarationError(
                "joint_targets() needs articulation=...: the articulation that receives the "
                "targets, which exploy's controller reads from the wire names "
                "output.joint_targets.<articulation>.*. Fix: e.g. "
                "program.joint_targets(articulation='robot', names=JOINT_NAMES, ...)."
            )
        target = _segment(chosen, what, "articulation" if articulation is not None else "name")
        if names is None or stiffness is None or damping is None:
            given = (("names", names), ("stiffness", stiffness), ("damping", damping))
            missing = [k for k, v in given if v is None]
            raise DeclarationError(
                f"{what} needs {', '.join(missing)}: exploy's controller applies each joint's "
                "stiffness and damping at every step and skips the group without names, "
                "stiffness and damping. Fix: pass names=JOINT_NAMES, stiffness=..., damping=... "
                "(numbers or one per joint; 0.0 when the torque is computed in the graph)."
            )
        joint_names = _names(names, what, "names")
        n = len(joint_names)
        kp = _gains(stiffness, n, f"{what} stiffness")
        kd = _gains(damping, n, f"{what} damping")
        group = self.group(
            f"output.joint_targets.{target}",
            metadata={
                "type": "joint_targets",
                "names": list(joint_names),
                "stiffness": list(kp),
                "damping": list(kd),
            },
        )
        if articulation is not None:
            self._stated_articulations.add(group.name)
        return JointTargets(
            target,
            joint_names,
            kp,
            kd,
            group.output("pos", n),
            group.output("vel", n),
            group.output("effort", n),
        )

    def _add_base_name(self, articulation: str, body: str, what: str) -> None:
        current = self.metadata.get("base_names", {})
        if not isinstance(current, dict):
            raise DeclarationError(
                f"{what}: program metadata 'base_names' is {type(current).__name__}, expected "
                'a dict {"<articulation>": "<base body>"}. Fix: drop it from Program(metadata=) '
                "and let program.base() write it."
            )
        known = current.get(articulation)
        if known is not None and known != body:
            raise DeclarationError(
                f"{what}: base_names already names {known!r} the base of {articulation!r}; an "
                "articulation has one base. Fix: use body="
                f"{known!r}, or declare other bodies' inputs by name (obj.<art>.<body>.<field>)."
            )
        self.metadata["base_names"] = {**current, articulation: body}


def _segment(name: object, what: str, role: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(ALNUM, name):
        raise DeclarationError(
            f"{what}: {role} {name!r} must be letters, digits and '_' (no dots): exploy's "
            f"controller matches that part of the wire name with {ALNUM}. "
            "Fix: rename it, e.g. 'robot'."
        )
    return name


def _names(names: object, what: str, arg: str) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise DeclarationError(
            f"{what}: {arg} must be a list of joint names, got {type(names).__name__} "
            f"{names!r}. Fix: pass e.g. {arg}=['FL_hip', 'FL_thigh', ...]."
        )
    result = tuple(names)
    bad = [n for n in result if not isinstance(n, str) or not n]
    if not result or bad:
        raise DeclarationError(
            f"{what}: {arg} must be a non-empty list of non-empty str, got {list(result)!r}."
        )
    twice = sorted({n for n in result if result.count(n) > 1})
    if twice:
        raise DeclarationError(
            f"{what}: {arg} lists {', '.join(map(repr, twice))} more than once; each joint "
            "appears once in the order. Fix: remove the duplicate."
        )
    return result


def _number(value: object, what: str, *, positive: bool = False) -> float:
    return check_number(value, what, minimum=0 if positive else None, inclusive=not positive)


def _range(pair: object, what: str) -> list[float]:
    # lo == hi is a fixed command, which a policy may well be trained for.
    return list(check_range(pair, what, strict=False, finite=True))


def _gains(value: object, n: int, what: str) -> tuple[float, ...]:
    if is_number(value):
        values: list[object] = [value] * n
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        values = list(value)
    else:
        try:
            values = list(value)  # type: ignore[call-overload]  # NumPy arrays
        except TypeError:
            raise DeclarationError(
                f"{what} must be a number or one number per joint, got {type(value).__name__}."
            ) from None
    if len(values) != n:
        raise DeclarationError(
            f"{what} has {len(values)} values for {n} joints; exploy applies gain i to joint i. "
            f"Fix: give {n} values, or one number for all joints."
        )
    return tuple(check_number(v, f"{what}[{i}]", minimum=0) for i, v in enumerate(values))
