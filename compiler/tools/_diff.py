"""Compare the contracts of two compiled files and say which differences break a deployment.

A difference BREAKS when a controller set up for file A would bind, feed or drive the robot
differently with file B: a wire added, removed or renamed, a shape or dtype changed, a joint
order, gain or rate changed, metadata exploy's matchers read changed (base_names, command
ranges, height-scan geometry), or B needs a newer onnxruntime than A. It is benign when it
stays inside the file or is informational: memory layout and initial values (exploy copies
memory out -> in generically), the observation layout and the actor (obs and actions are not
bound; but a changed history layout BREAKS: a policy reads its frames by position), the
normalizer and clocks, wire order (binding is by name), descriptions, hashes, tool versions,
the stamp.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.build._targets import oldest_onnxruntime
from exploy_dsl import FileContract, Wire
from exploy_dsl.contract._batch import BATCH_KEY, NOT_FOR_ROBOT
from exploy_dsl.contract._codec import decode, encode_as_read
from exploy_dsl.contract._recorded import check_recorded
from exploy_dsl.contract._wires import (
    JOINT_GROUP,
    JOINT_POS_COMMAND,
    JOINT_TARGET_GROUP,
    memory_key,
    memory_name,
)

_JOINT_ORDERS = (
    (JOINT_GROUP, "joint_names"),
    (JOINT_POS_COMMAND, "joint_names"),
    (JOINT_TARGET_GROUP, "names"),
)
_GAINS = ("stiffness", "damping")
# Metadata exploy's controller reads: base_names, and the key of every wire or group its
# matchers bind (obj.*, sensor.*, cmd.*, output.*).
_BOUND_PREFIXES = ("obj.", "sensor.", "cmd.", "output.")
_RATES = ("decimation", "update_rate", "sim_dt")
_REPORTED_ELSEWHERE = (
    *_RATES,
    "exploy_version",
    "obs_term_names",
    "exploy_dsl.observation",
    "exploy_dsl.memory",
    "exploy_dsl.actor",
    "exploy_dsl.normalizer",
    "exploy_dsl.clocks",
    BATCH_KEY,
)


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference between file A and file B."""

    breaks: bool
    topic: str  # "input", "joint order", "gains", "rate", "memory", "observation", ...
    text: str

    def __str__(self) -> str:
        return f"{'BREAKS' if self.breaks else 'benign'}  {self.topic}: {self.text}"


def diff_contracts(
    a: FileContract, b: FileContract, *, sources: tuple[str, str] = ("A", "B")
) -> list[Difference]:
    """Every difference between the contracts of ``a`` and ``b``, breaking ones first.

    ``sources`` names the two files in errors (a metadata key of the wrong form).
    """
    check_recorded(a.metadata, sources[0])
    check_recorded(b.metadata, sources[1])
    found: list[Difference] = []
    found += _wires("input", a.inputs, b.inputs, breaks=True)
    found += _wires("output", a.outputs, b.outputs, breaks=True)
    found += _wires("memory", a.memory, b.memory, breaks=False)
    found += _wires("output", (a.actions, a.obs), (b.actions, b.obs), breaks=False)
    found += _rates(a, b)
    found += _batch(a, b)
    found += _runtime(a, b)
    found += _initial_values(a, b)
    found += _observation(a, b)
    found += _actor(a, b)
    found += _library(a, b)
    found += _metadata(a, b)
    return sorted(found, key=lambda d: not d.breaks)


def _actor(a: FileContract, b: FileContract) -> list[Difference]:
    """The actor's signature; its recurrent state (names, shapes) breaks: a tool, a log or a
    warm-start that feeds or reads the state of A would carry the wrong tensors to B."""
    old = _decoded(a.metadata, "exploy_dsl.actor") or {}
    new = _decoded(b.metadata, "exploy_dsl.actor") or {}
    found: list[Difference] = []

    def ports(record: Any) -> dict[str, Any]:
        entries = record.get("inputs", []) + record.get("outputs", [])
        return {f"{p['name']} ({p['binds']})": f"{p['dtype']}{p['shape']}" for p in entries}

    def state(record: Any) -> dict[str, Any]:
        shapes = {
            p["binds"]: p["shape"]
            for p in record.get("inputs", [])
            if p["binds"].startswith("memory.")
        }
        return {name: shapes.get(f"memory.{name}") for name in record.get("state", [])}

    old_state, new_state = state(old), state(new)
    if old_state != new_state:
        found.append(
            Difference(
                True,
                "actor state",
                f"the actor's recurrent state changed: {_fmt(old_state)} -> {_fmt(new_state)}; "
                "a hidden size or state name differs, so state saved, logged or fed for A does "
                "not fit B.",
            )
        )
    old_ports, new_ports = ports(old), ports(new)
    if old_ports != new_ports and old_ports and new_ports:
        changed = [
            f"{name}: {old_ports.get(name, 'none')} -> {new_ports.get(name, 'none')}"
            for name in sorted({*old_ports, *new_ports})
            if old_ports.get(name) != new_ports.get(name)
        ]
        found.append(
            Difference(
                False,
                "actor",
                f"the actor's signature changed ({_short('; '.join(changed))}); the file's wires "
                "are compared above.",
            )
        )
    if old.get("source") != new.get("source") and old and new:
        found.append(
            Difference(
                False, "actor", f"actor source {old.get('source')!r} -> {new.get('source')!r}."
            )
        )
    return found


def _wires(topic: str, a: Sequence[Wire], b: Sequence[Wire], *, breaks: bool) -> list[Difference]:
    found: list[Difference] = []
    in_a, in_b = {w.name: w for w in a}, {w.name: w for w in b}
    removed = [w for w in a if w.name not in in_b]
    added = [w for w in b if w.name not in in_a]
    why_removed = (
        "a controller set up for A binds a wire B does not have"
        if breaks
        else "exploy copies memory generically; the program's state changed"
    )
    for wire in removed:
        twin = [
            w.name
            for w in added
            if (w.declared_shape, w.dtype) == (wire.declared_shape, wire.dtype)
        ]
        renamed = f" (renamed to {twin[0]!r}?)" if len(twin) == 1 else ""
        found.append(
            Difference(breaks, topic, f"{wire.name!r} was removed{renamed}: {why_removed}.")
        )
    for wire in added:
        why = (
            "a controller set up for A does not bind it (exploy's strict mode refuses the file)"
            if breaks
            else "exploy copies memory generically; the program's state changed"
        )
        found.append(
            Difference(
                breaks,
                topic,
                f"{wire.name!r} {wire.dtype}{wire.declared_shape} was added: {why}.",
            )
        )
    for name, old in in_a.items():
        new = in_b.get(name)
        if new is not None and (old.declared_shape, old.dtype) != (new.declared_shape, new.dtype):
            found.append(
                Difference(
                    breaks,
                    topic,
                    f"{name!r} changed from {old.dtype}{old.declared_shape} to "
                    f"{new.dtype}{new.declared_shape}"
                    + ("." if breaks else " (not bound by exploy's controller)."),
                )
            )
    common_a = [w.name for w in a if w.name in in_b]
    common_b = [w.name for w in b if w.name in in_a]
    if common_a != common_b:
        found.append(
            Difference(
                False,
                topic,
                f"the order of the {topic}s changed (wires are bound by name): "
                f"{common_a} -> {common_b}.",
            )
        )
    return found


def _rates(a: FileContract, b: FileContract) -> list[Difference]:
    found = []
    for key in _RATES:
        old, new = a.metadata.get(key), b.metadata.get(key)
        if old != new:
            found.append(
                Difference(
                    True,
                    "rate",
                    f"{key} changed from {old} to {new}: the policy or the control loop would "
                    "run at another rate than the robot was set up for.",
                )
            )
    return found


def _batch(a: FileContract, b: FileContract) -> list[Difference]:
    """Another batch BREAKS: a batched file is for evaluation, the robot's is batch 1."""
    if a.batch == b.batch:
        return []
    why = (
        "B is the robot's file (batch 1)"
        if b.batch == 1
        else f"B is for evaluation: {NOT_FOR_ROBOT}"
    )
    return [Difference(True, "batch", f"the batch changed from {a.batch} to {b.batch}: {why}.")]


def _runtime(a: FileContract, b: FileContract) -> list[Difference]:
    if (a.opset, a.ir_version) == (b.opset, b.ir_version):
        return []
    old_rt, new_rt = (
        oldest_onnxruntime(a.opset, a.ir_version),
        oldest_onnxruntime(b.opset, b.ir_version),
    )
    text = (
        f"opset/IR changed from {a.opset}/{a.ir_version} to {b.opset}/{b.ir_version} (needs "
        f"onnxruntime >= {old_rt or '?'} -> >= {new_rt or '?'})"
    )
    newer = _version_key(new_rt) > _version_key(old_rt)
    if newer:
        return [Difference(True, "runtime", f"{text}: a robot that runs A may fail to load B.")]
    return [Difference(False, "runtime", f"{text}.")]


def _version_key(version: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".")) if version else (999,)


def _initial_values(a: FileContract, b: FileContract) -> list[Difference]:
    found = []
    for name, old in a.initial_values.items():
        new = b.initial_values.get(name)
        if new is None or new.shape != old.shape or np.array_equal(old, new):
            continue
        where = np.flatnonzero(old.reshape(-1) != new.reshape(-1))
        shown = ", ".join(
            f"[{i}] {_num(old.reshape(-1)[i])} -> {_num(new.reshape(-1)[i])}" for i in where[:6]
        )
        more = f" (+{where.size - 6} more)" if where.size > 6 else ""
        found.append(
            Difference(
                False,
                "memory",
                f"initial value of {memory_key(memory_name(name))!r} changed at {where.size} "
                "element(s): "
                f"{shown}{more}. The file holds it; check the first ticks after a reset.",
            )
        )
    return found


def _observation(a: FileContract, b: FileContract) -> list[Difference]:
    found = []
    names_a, names_b = (
        _decoded(a.metadata, "obs_term_names"),
        _decoded(b.metadata, "obs_term_names"),
    )
    if names_a != names_b:
        found.append(
            Difference(False, "observation", f"obs_term_names changed: {names_a} -> {names_b}.")
        )
    layout_a = _decoded(a.metadata, "exploy_dsl.observation") or {}
    layout_b = _decoded(b.metadata, "exploy_dsl.observation") or {}
    terms_a = {t["name"]: t for t in layout_a.get("terms", []) if isinstance(t, dict)}
    terms_b = {t["name"]: t for t in layout_b.get("terms", []) if isinstance(t, dict)}
    for name, old in terms_a.items():
        new = terms_b.get(name)
        if new is None:
            continue
        changes = [
            f"{field} {_fmt(old.get(field))} -> {_fmt(new.get(field))}"
            for field in ("start", "size", "scale", "clip")
            if old.get(field) != new.get(field)
        ]
        if changes:
            found.append(Difference(False, "observation", f"term {name!r}: {', '.join(changes)}."))
    found += _history(layout_a, layout_b, terms_a, terms_b)
    if layout_a.get("clip") != layout_b.get("clip"):
        found.append(
            Difference(
                False,
                "observation",
                f"clip of obs changed from {_fmt(layout_a.get('clip'))} to "
                f"{_fmt(layout_b.get('clip'))}.",
            )
        )
    return found


def _history(
    layout_a: dict[str, Any],
    layout_b: dict[str, Any],
    terms_a: dict[str, Any],
    terms_b: dict[str, Any],
) -> list[Difference]:
    """A changed history layout BREAKS: the frames a policy was trained on (their number,
    order, term- or frame-major) would reach it in another place, with no error anywhere."""
    found = []
    why = (
        "a policy trained for A's layout reads B's frames in the wrong places, silently; "
        "check the policy was trained with B's layout"
    )
    group_a, group_b = layout_a.get("history"), layout_b.get("history")
    if group_a != group_b:
        found.append(
            Difference(
                True,
                "observation history",
                f"history of the observation changed: {_fmt(group_a)} -> {_fmt(group_b)}: {why}.",
            )
        )
    for name in [*terms_a, *(n for n in terms_b if n not in terms_a)]:
        old = (terms_a.get(name) or {}).get("history")
        new = (terms_b.get(name) or {}).get("history")
        if old == new or name not in terms_a or name not in terms_b:
            continue
        fields = [
            f"{field} {_fmt((old or {}).get(field))} -> {_fmt((new or {}).get(field))}"
            for field in ("length", "order", "layout", "frames")
            if (old or {}).get(field) != (new or {}).get(field)
        ]
        found.append(
            Difference(
                True,
                "observation history",
                f"term {name!r} history changed ({_short('; '.join(fields))}): {why}.",
            )
        )
    return found


def _library(a: FileContract, b: FileContract) -> list[Difference]:
    """The normalizer and the phase clocks: part of the policy, like its weights."""
    found = []
    for key, what in (("exploy_dsl.normalizer", "normalizer"), ("exploy_dsl.clocks", "clock")):
        old, new = _decoded(a.metadata, key), _decoded(b.metadata, key)
        if old == new:
            continue
        if key == "exploy_dsl.normalizer" and isinstance(old, dict) and isinstance(new, dict):
            changed = [k for k in {**old, **new} if old.get(k) != new.get(k)]
            text = f"the observation normalizer changed ({', '.join(changed)})"
        else:
            text = f"{what} {_short(_fmt(old))} -> {_short(_fmt(new))}"
        found.append(Difference(False, what, f"{text}; it belongs with the actor's weights."))
    return found


def _metadata(a: FileContract, b: FileContract) -> list[Difference]:
    found: list[Difference] = []
    keys = [*a.metadata, *(k for k in b.metadata if k not in a.metadata)]
    for key in keys:
        if key in _REPORTED_ELSEWHERE:
            continue
        old, new = a.metadata.get(key), b.metadata.get(key)
        if old == new:
            continue
        bound = key == "base_names" or key.startswith(_BOUND_PREFIXES)
        if old is None or new is None:
            state = "added" if old is None else "removed"
            value = _short(new if old is None else old)
            found.append(
                Difference(bound, "metadata", f"key {key!r} was {state} ({value})" + _why(bound))
            )
            continue
        old_v, new_v = _decoded(a.metadata, key), _decoded(b.metadata, key)
        if key in _PROVENANCE:
            found += _PROVENANCE[key](old_v, new_v)
            continue
        found += _joint_order(key, old_v, new_v)
        found += _gains(key, old_v, new_v)
        rest_old, rest_new = _without_reported(key, old_v), _without_reported(key, new_v)
        if rest_old != rest_new:
            found.append(
                Difference(
                    bound,
                    "metadata",
                    f"{key!r} changed: {_short(encode_as_read(rest_old))} -> "
                    f"{_short(encode_as_read(rest_new))}" + _why(bound),
                )
            )
    return found


def _hashes(old: Any, new: Any) -> list[Difference]:
    old, new = (v if isinstance(v, dict) else {} for v in (old, new))
    stages_a, stages_b = old.get("stages") or {}, new.get("stages") or {}
    changed = [k for k in {**stages_a, **stages_b} if stages_a.get(k) != stages_b.get(k)]
    found = [
        Difference(False, "program", f"stage {kind!r} changed (its graph hash differs).")
        for kind in changed
    ]
    if old.get("actor_weights") != new.get("actor_weights"):
        found.append(Difference(False, "actor", "the actor's weights changed (hash differs)."))
    return found


def _tools(old: Any, new: Any) -> list[Difference]:
    old, new = (v if isinstance(v, dict) else {} for v in (old, new))
    changed = [
        f"{name} {old.get(name, 'none')} -> {new.get(name, 'none')}"
        for name in {**old, **new}
        if old.get(name) != new.get(name)
    ]
    return [Difference(False, "tools", f"built with other versions: {', '.join(changed)}.")]


def _stages(old: Any, new: Any) -> list[Difference]:
    return []  # the stage hashes say which stage changed; explain shows what it does


_PROVENANCE = {
    "exploy_dsl.hashes": _hashes,
    "exploy_dsl.tools": _tools,
    "exploy_dsl.stages": _stages,
}


def _why(bound: bool) -> str:
    return ": exploy's controller reads it." if bound else "."


def _joint_order(key: str, old: Any, new: Any) -> list[Difference]:
    field = _order_field(key)
    if field is None or not isinstance(old, dict) or not isinstance(new, dict):
        return []
    before, after = old.get(field), new.get(field)
    if before == after or not isinstance(before, list) or not isinstance(after, list):
        return []
    if sorted(map(str, before)) == sorted(map(str, after)):
        moved = [
            f"{name} {i}->{after.index(name)}"
            for i, name in enumerate(before)
            if after.index(name) != i
        ]
        text = (
            f"{key} {field} reordered, moved: {', '.join(moved)} (now {after}); the policy's "
            "action and observation entries would drive other joints."
        )
    else:
        gone = [n for n in before if n not in after]
        new_names = [n for n in after if n not in before]
        text = f"{key} {field} changed: removed {gone}, added {new_names} (now {after})."
    return [Difference(True, "joint order", text)]


def _gains(key: str, old: Any, new: Any) -> list[Difference]:
    if _order_field(key) != "names" or not isinstance(old, dict) or not isinstance(new, dict):
        return []
    raw = new.get("names")
    names: list[Any] = raw if isinstance(raw, list) else []
    found = []
    for gain in _GAINS:
        before, after = old.get(gain), new.get(gain)
        if before == after:
            continue
        if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
            changed = [
                f"{names[i] if i < len(names) else i} {_num(x)} -> {_num(y)}"
                for i, (x, y) in enumerate(zip(before, after, strict=True))
                if x != y
            ]
            detail = ", ".join(changed)
        else:
            detail = f"{_fmt(before)} -> {_fmt(after)}"
        found.append(
            Difference(
                True,
                "gains",
                f"{key} {gain} changed: {detail}; exploy sets these P/D gains on the motors.",
            )
        )
    return found


def _order_field(key: str) -> str | None:
    return next((field for pattern, field in _JOINT_ORDERS if pattern.match(key)), None)


def _without_reported(key: str, value: Any) -> Any:
    field = _order_field(key)
    if field is None or not isinstance(value, dict):
        return value
    skip = {field, *(_GAINS if field == "names" else ())}
    return {k: v for k, v in value.items() if k not in skip}


def _decoded(metadata: dict[str, str], key: str) -> Any:
    text = metadata.get(key)
    return None if text is None else decode(text)


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "none"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(value: Any) -> str:
    return "none" if value is None else json.dumps(value)


def _num(value: Any) -> str:
    return f"{float(value):g}" if isinstance(value, (int, float, np.number)) else repr(value)
