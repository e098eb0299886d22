"""Command inputs of a simulated run: values given by name, checked against declared ranges."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from exploy_dsl._errors import SimError, UsageError
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._reader import FileContract, Wire
from exploy_dsl.contract._wires import (
    BOOLEAN_COMMAND,
    FLOAT_COMMAND,
    JOINT_POS_COMMAND,
    SE2_COMMAND,
    SE3_COMMAND,
)

SE2_COMPONENTS = ("lin_vel_x", "lin_vel_y", "ang_vel_z")
_KINDS = (
    (SE2_COMMAND, "se2 velocity"),
    (FLOAT_COMMAND, "float"),
    (BOOLEAN_COMMAND, "boolean"),
    (SE3_COMMAND, "se3 pose"),
    (JOINT_POS_COMMAND, "joint position"),
)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_ARG = re.compile(r"^([A-Za-z0-9_.]+)=(.*)$")


@dataclass(frozen=True, slots=True)
class Command:
    """One command input of the file: its wire, kind, short name and declared range."""

    wire: Wire
    name: str  # the <c> of cmd.<kind>.<c>
    kind: str  # "se2 velocity", "float", "boolean", "se3 pose", "joint position"
    low: np.ndarray | None  # per element, None without a declared range
    high: np.ndarray | None
    labels: tuple[str, ...]  # what each element is (lin_vel_x, ...), for messages

    @property
    def size(self) -> int:
        return int(np.prod(self.wire.shape[1:], dtype=np.int64))

    def default(self) -> np.ndarray | None:
        """Zeros (False) when inside the declared range; None when the value must be given."""
        if self.kind in ("se3 pose", "joint position"):
            return None
        value = np.zeros(self.size)
        low = self.low if self.low is not None else -np.inf
        high = self.high if self.high is not None else np.inf
        if np.any(value < low) or np.any(value > high):
            return None
        return value


def commands_of(contract: FileContract) -> dict[str, Command]:
    """The file's command inputs by short name, with the ranges their metadata declares."""
    found: dict[str, Command] = {}
    for wire in contract.inputs:
        for pattern, kind in _KINDS:
            match = pattern.match(wire.name)
            if match is None:
                continue
            meta = decode(contract.metadata.get(wire.name, "{}"))
            meta = meta if isinstance(meta, dict) else {}
            low, high = _range(kind, meta, wire)
            labels = _labels(kind, meta, wire)
            found[match.group(1)] = Command(wire, match.group(1), kind, low, high, labels)
    return found


def parse_command_args(texts: Sequence[str]) -> dict[str, list[str]]:
    """``--command NAME=V,...`` arguments (repeatable) as {NAME: [V, ...]}."""
    parsed: dict[str, list[str]] = {}
    for text in texts:
        match = _ARG.match(text.strip())
        if match is None or not match.group(2).strip():
            raise UsageError(
                f"--command {text!r} is not NAME=V,...; e.g. --command base_velocity=0.5,0,0 "
                "or --command stand=true."
            )
        name, values = match.group(1), [v.strip() for v in match.group(2).split(",")]
        if name in parsed:
            raise UsageError(f"--command {name} is given twice. Fix: give it once.")
        parsed[name] = values
    return parsed


def command_values(
    contract: FileContract, given: Mapping[str, Any] | None
) -> dict[str, np.ndarray]:
    """Every command input's value, by wire: given ones checked, the others their default.

    ``given`` maps a command's short name (``base_velocity``) or wire name to its values: a
    sequence of numbers, booleans or strings (``"0.5"``, ``"true"``). A value outside the
    declared range, a name the file lacks and a command without a default (an se3 pose, a
    joint position command, or a range that excludes zero) are SimErrors.
    """
    commands = commands_of(contract)
    by_wire = {c.wire.name: c for c in commands.values()}
    values: dict[str, np.ndarray] = {}
    for key, raw in (given or {}).items():
        command = commands.get(key) or by_wire.get(key)
        if command is None:
            known = ", ".join(f"{c.name} ({c.wire.name})" for c in commands.values()) or "none"
            raise SimError(
                f"--command {key}: the file has no such command; its commands are {known}."
            )
        if command.wire.name in values:
            raise SimError(f"--command {key} is given twice (by name and by wire). Fix: once.")
        values[command.wire.name] = _checked(command, raw)
    for command in commands.values():
        if command.wire.name in values:
            continue
        default = command.default()
        if default is None:
            raise SimError(
                f"input {command.wire.name!r} ({command.kind} command) has no value: "
                + (
                    f"zero is outside its declared range {_ranges(command)}. "
                    if command.low is not None
                    else "it has no neutral value. "
                )
                + f"Fix: give it, e.g. --command {command.name}={_example(command)}."
            )
        values[command.wire.name] = default
    return {
        name: np.asarray(v).reshape(by_wire[name].wire.shape).astype(by_wire[name].wire.np_dtype)
        for name, v in values.items()
    }


def _checked(command: Command, raw: Any) -> np.ndarray:
    items = list(raw) if isinstance(raw, (list, tuple, np.ndarray)) else [raw]
    if len(items) != command.size:
        raise SimError(
            f"--command {command.name} has {len(items)} value(s); {command.wire.name!r} takes "
            f"{command.size} ({', '.join(command.labels)}). "
            f"Fix: e.g. --command {command.name}={_example(command)}."
        )
    if command.kind == "boolean":
        return np.array([_bool(command, v) for v in items])
    value = np.array([_float(command, v) for v in items])
    if command.low is not None and command.high is not None:
        outside = np.flatnonzero((value < command.low) | (value > command.high))
        if outside.size:
            i = int(outside[0])
            raise SimError(
                f"--command {command.name}: {command.labels[i]} = {value[i]:g} is outside its "
                f"declared range [{command.low[i]:g}, {command.high[i]:g}] "
                f"({command.wire.name!r}); the policy was not trained there. "
                "Fix: give a value inside the range."
            )
    return value


def _float(command: Command, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise SimError(
            f"--command {command.name}: {value!r} is not a finite number. "
            f"Fix: e.g. --command {command.name}={_example(command)}."
        )
    return number


def _bool(command: Command, value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise SimError(
        f"--command {command.name}: {value!r} is not a boolean; {command.wire.name!r} is a "
        f"boolean command. Fix: --command {command.name}=true (or false)."
    )


def _range(kind: str, meta: dict[str, Any], wire: Wire) -> tuple[np.ndarray | None, ...]:
    pairs: list[Any] | None = None
    if kind == "se2 velocity" and isinstance(meta.get("ranges"), dict):
        pairs = [meta["ranges"].get(c) for c in SE2_COMPONENTS]
    elif kind == "float" and meta.get("range") is not None:
        pairs = [meta["range"]]
    if pairs is None or not all(_pair(p) for p in pairs):
        return None, None
    low = np.array([float(p[0]) for p in pairs])
    high = np.array([float(p[1]) for p in pairs])
    return low, high


def _pair(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    )


def _labels(kind: str, meta: dict[str, Any], wire: Wire) -> tuple[str, ...]:
    size = int(np.prod(wire.shape[1:], dtype=np.int64))
    if kind == "se2 velocity" and size == 3:
        return SE2_COMPONENTS
    if kind == "se3 pose" and size == 7:
        return ("x", "y", "z", "qw", "qx", "qy", "qz")
    names = meta.get("joint_names")
    if kind == "joint position" and isinstance(names, list) and len(names) == size:
        return tuple(str(n) for n in names)
    return tuple(f"[{i}]" for i in range(size))


def _ranges(command: Command) -> str:
    if command.low is None or command.high is None:
        return "(none declared)"
    return ", ".join(
        f"{label} [{lo:g}, {hi:g}]"
        for label, lo, hi in zip(command.labels, command.low, command.high, strict=True)
    )


def _example(command: Command) -> str:
    if command.kind == "boolean":
        return "true"
    if command.kind == "se3 pose":
        return "0,0,0,1,0,0,0"
    if command.low is not None and command.high is not None:
        middle = (command.low + command.high) / 2.0
        return ",".join(f"{v:g}" for v in middle)
    return ",".join("0" for _ in range(command.size))
