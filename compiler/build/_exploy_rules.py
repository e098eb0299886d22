"""Refuse programs exploy's controller would bind wrongly or skip silently (missing metadata)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from exploy_dsl import DeclarationError, Program
from exploy_dsl._checks import is_finite, is_range
from exploy_dsl.authoring._robot import HEIGHT_SCAN_KEYS, SE2_RANGE_KEYS
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._wires import (
    BASE_STATE,
    BOOLEAN_COMMAND,
    FLOAT_COMMAND,
    HEIGHT_SCAN,
    IMU,
    JOINT_POS_COMMAND,
    JOINT_STATE,
    JOINT_TARGET,
    JOINT_TARGET_MEMBERS,
    SE2_COMMAND,
    SE3_COMMAND,
)

# Sizes exploy's components copy into or out of these wires (control/src/components.cpp).
_BASE_SIZES = {"lin_vel_b_rt_w_in_b": 3, "ang_vel_b_rt_w_in_b": 3, "w_Q_b": 4, "pos_b_rt_w_in_w": 3}
_FIXED_SIZES = ((SE2_COMMAND, 3), (SE3_COMMAND, 7), (FLOAT_COMMAND, 1), (BOOLEAN_COMMAND, 1))


@dataclass(frozen=True, slots=True)
class WireSpec:
    """A wire as exploy's controller sees it: name, direction, file shape and dtype."""

    name: str
    direction: str  # "input" or "output"
    shape: tuple[int, ...]
    dtype: str


def check_program(program: Program) -> None:
    """Raise DeclarationError listing every wire exploy would skip or bind wrongly."""
    wires = [WireSpec(p.name, "input", p.file_shape, p.dtype) for p in program.inputs]
    wires += [WireSpec(p.name, "output", p.file_shape, p.dtype) for p in program.outputs]
    problems = exploy_problems(wires, declared_metadata(program))
    rate = program.update_rate
    if rate != int(rate):
        problems.append(
            f"update_rate 1/sim_dt = {rate!r} Hz is not a whole number; exploy's controller "
            f"truncates it to {int(rate)} Hz and would tick at the wrong rate. Fix: choose "
            "sim_dt = 1/N seconds for a whole N, e.g. sim_dt=0.005 for 200 Hz"
        )
    if problems:
        raise DeclarationError(
            f"program {program.name!r} would not be bound by exploy's controller as intended "
            f"(it skips such wires without an error): {' | '.join(problems)}"
        )


def declared_metadata(program: Program) -> dict[str, Any]:
    """The file's metadata keys a matcher may read, decoded as exploy decodes them (JSON)."""
    result: dict[str, Any] = {}
    for key, value in program.metadata.items():
        result[key] = decode(value) if isinstance(value, str) else value
    for group in program.groups:
        if group.metadata is not None:
            result[group.name] = group.metadata
    for port in (*program.inputs, *program.outputs):
        if port.metadata is not None:
            result[port.name] = port.metadata
    return result


def exploy_problems(wires: Iterable[WireSpec], metadata: Mapping[str, Any]) -> list[str]:
    """One sentence with a fix per problem; empty when exploy binds every standard wire."""
    wires = list(wires)
    problems: list[str] = []
    inputs = [w for w in wires if w.direction == "input"]
    outputs = [w for w in wires if w.direction == "output"]
    problems += _joint_state(inputs, metadata)
    problems += _base(inputs, metadata)
    problems += _commands(inputs, metadata)
    problems += _height_scan(inputs, metadata)
    problems += _joint_targets(outputs, metadata)
    for wire in inputs:
        m = IMU.match(wire.name)
        if m:
            problems += _size(wire, 4 if m[2] == "w_Q_b" else 3)
    return problems


def _joint_state(inputs: list[WireSpec], metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for wire in inputs:
        m = JOINT_STATE.match(wire.name)
        if not m:
            continue
        group, art = m[1], m[2]
        names = _dict(metadata.get(group)).get("joint_names")
        fix = (
            f"Fix: declare the joints with program.joints({art!r}, names=JOINT_NAMES), or give "
            f"group {group!r} metadata {{'joint_names': [...]}}."
        )
        if not _str_list(names):
            problems.append(
                f"input {wire.name!r} is exploy joint state but group metadata {group!r} has no "
                f"'joint_names' list (got {metadata.get(group)!r}). {fix}"
            )
            continue
        problems += _float(wire)
        problems += _size(wire, len(names), f"{group} joint_names has {len(names)} joints")
    return problems


def _base(inputs: list[WireSpec], metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    base_names = metadata.get("base_names")
    if base_names is not None and not (
        isinstance(base_names, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in base_names.items())
    ):
        problems.append(
            f"program metadata 'base_names' must be a JSON object "
            f'{{"<articulation>": "<base body>"}}, got {base_names!r}; exploy ignores it '
            "otherwise. Fix: program.base('robot', 'base') writes it."
        )
        base_names = {}
    base_names = base_names or {}
    for wire in inputs:
        m = BASE_STATE.match(wire.name)
        if not m or m[2] == "joints":
            continue
        art, body, field = m[1], m[2], m[3]
        if art not in base_names:
            problems.append(
                f"input {wire.name!r} is exploy base state but 'base_names' has no entry for "
                f"articulation {art!r}; exploy binds base inputs only for the bodies named "
                f"there. Fix: declare it with program.base({art!r}, {body!r}), or add "
                f"metadata={{'base_names': {{{art!r}: {body!r}}}}} to the Program."
            )
            continue
        problems += _float(wire)
        problems += _size(wire, _BASE_SIZES[field])
    return problems


def _commands(inputs: list[WireSpec], metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for wire in inputs:
        for pattern, size in _FIXED_SIZES:
            if pattern.match(wire.name):
                problems += _size(wire, size)
        if BOOLEAN_COMMAND.match(wire.name):
            if wire.dtype != "bool":
                problems.append(
                    f"input {wire.name!r} is an exploy boolean command, which exploy reads only "
                    f"as bool, but it is {wire.dtype}. Fix: program.boolean_command(...) or "
                    "dtype='bool'."
                )
            continue
        if SE2_COMMAND.match(wire.name):
            problems += _float(wire)
            problems += _se2_ranges(wire, metadata.get(wire.name))
        elif FLOAT_COMMAND.match(wire.name):
            problems += _float(wire)
            value = _dict(metadata.get(wire.name)).get("range")
            if value is not None and not _range_list(value):
                problems.append(
                    f"input {wire.name!r} metadata 'range' must be a list [lo, hi] of two "
                    f"finite numbers, got {value!r}. Fix: program.float_command(name, "
                    "range=(lo, hi))."
                )
        elif SE3_COMMAND.match(wire.name):
            problems += _float(wire)
        elif JOINT_POS_COMMAND.match(wire.name):
            problems += _float(wire)
            names = _dict(metadata.get(wire.name)).get("joint_names")
            if not _str_list(names):
                problems.append(
                    f"input {wire.name!r} is an exploy joint position command but has no "
                    "'joint_names' metadata; exploy skips it. Fix: "
                    "program.joint_position_command(name, names=JOINT_NAMES)."
                )
            else:
                problems += _size(wire, len(names), f"its joint_names has {len(names)} joints")
    return problems


def _se2_ranges(wire: WireSpec, meta: Any) -> list[str]:
    example = (
        "Fix: program.se2_velocity_command(name, ranges={'lin_vel_x': (lo, hi), "
        "'lin_vel_y': (lo, hi), 'ang_vel_z': (lo, hi)})."
    )
    if not isinstance(meta, dict) or "ranges" not in meta:
        return [
            f"input {wire.name!r} is an exploy se2 velocity command without a metadata object "
            f"holding 'ranges' (got {meta!r}); exploy drops the ranges (older controllers skip "
            f"the command). {example}"
        ]
    ranges = meta["ranges"]
    if not isinstance(ranges, dict) or any(not _range_list(ranges.get(k)) for k in SE2_RANGE_KEYS):
        return [
            f"input {wire.name!r} metadata 'ranges' must map {', '.join(SE2_RANGE_KEYS)} each to "
            f"a list [lo, hi] of two finite numbers, got {ranges!r}. {example}"
        ]
    return []


def _height_scan(inputs: list[WireSpec], metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for wire in inputs:
        m = HEIGHT_SCAN.match(wire.name)
        if not m:
            continue
        meta = _dict(metadata.get(m[1]))
        missing = [k for k in HEIGHT_SCAN_KEYS if k not in meta]
        if missing:
            problems.append(
                f"input {wire.name!r} is an exploy height scan but group metadata {m[1]!r} lacks "
                f"{', '.join(missing)}; exploy skips the scan. Fix: program.height_scan("
                f"{m[2]!r}, shape=..., pattern_type=..., resolution=..., size_x=..., size_y=...)."
            )
        problems += _float(wire)
    return problems


def _joint_targets(outputs: list[WireSpec], metadata: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    groups: dict[str, dict[str, WireSpec]] = {}
    for wire in outputs:
        m = JOINT_TARGET.match(wire.name)
        if m:
            groups.setdefault(m[1], {})[m[3]] = wire
    for group, members in groups.items():
        name = group.split(".")[-1]
        fix = (
            f"Fix: declare them with program.joint_targets({name!r}, names=JOINT_NAMES, "
            "stiffness=..., damping=...)."
        )
        absent = [k for k in JOINT_TARGET_MEMBERS if k not in members]
        if absent:
            problems.append(
                f"joint-target group {group!r} has no output(s) "
                f"{', '.join(f'{group}.{k}' for k in absent)}; exploy writes joint targets "
                f"only when pos, vel and effort are all present. {fix}"
            )
        meta = _dict(metadata.get(group))
        names = meta.get("names")
        lacking = [k for k in ("names", "stiffness", "damping") if k not in meta]
        if lacking:
            problems.append(
                f"joint-target group {group!r} metadata lacks {', '.join(lacking)} (got "
                f"{metadata.get(group)!r}); exploy skips the group and never commands the "
                f"joints. {fix}"
            )
            continue
        if not _str_list(names):
            problems.append(f"joint-target group {group!r} 'names' must be a list of str. {fix}")
            continue
        for key in ("stiffness", "damping"):
            gains = meta[key]
            if (
                not isinstance(gains, list)
                or len(gains) != len(names)
                or not all(is_finite(g) for g in gains)
            ):
                problems.append(
                    f"joint-target group {group!r} {key!r} must be a list of {len(names)} finite "
                    f"numbers (one per name), got {gains!r}. {fix}"
                )
        for wire in members.values():
            problems += _float(wire)
            problems += _size(wire, len(names), f"{group} names has {len(names)} joints")
    return problems


def _size(wire: WireSpec, expected: int, why: str = "") -> list[str]:
    if len(wire.shape) == 2 and wire.shape[1] == expected:
        return []
    because = f" ({why})" if why else ""
    return [
        f"{wire.direction} {wire.name!r} has shape {list(wire.shape)}; exploy's controller "
        f"expects [batch, {expected}]{because}. Fix: declare it with shape {expected}."
    ]


def _float(wire: WireSpec) -> list[str]:
    if wire.dtype == "float32":
        return []
    return [
        f"{wire.direction} {wire.name!r} is {wire.dtype}; exploy reads and writes it only as "
        "float32. Fix: declare it float32."
    ]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_list(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _range_list(value: Any) -> bool:
    """A range as exploy reads it from JSON metadata: ``[lo, hi]``, finite, lo <= hi."""
    return isinstance(value, list) and is_range(value, strict=False, finite=True)
