"""Render the constants of a compiled file that a deployer must trust, as text a person reads."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from compiler.build._articulation import target_articulations
from compiler.build._rewrite import BUILD_KEY, REWRITES
from compiler.build._targets import oldest_onnxruntime
from compiler.tools._inspect import one_env_init
from exploy_dsl import FileContract
from exploy_dsl.authoring._actor import describe_binding
from exploy_dsl.contract._batch import describe_batch
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._recorded import check_recorded
from exploy_dsl.contract._tick import USER_STAGE_KINDS, spec
from exploy_dsl.contract._wires import JOINT_GROUP, JOINT_TARGET_GROUP, STEP_COUNT

_SHOWN_VALUES = 12


def render_explain(contract: FileContract, source: str) -> str:
    """Rates, observation layout, actor, action processing, gains, memory, bound metadata."""
    check_recorded(contract.metadata, source)
    meta = {key: decode(value) for key, value in contract.metadata.items()}
    lines: list[str] = []
    program = meta.get("exploy_dsl.program")
    name = program.get("name") if isinstance(program, dict) else None
    runtime = oldest_onnxruntime(contract.opset, contract.ir_version)
    lines.append(f"{source}: program {name or '(not recorded)'!s}")
    lines.append(
        f"format: opset {contract.opset}, IR version {contract.ir_version}"
        + (f" (runs on onnxruntime >= {runtime})" if runtime else "")
    )
    if contract.batch != 1:
        lines.append(f"batch: {describe_batch(contract.batch)}")
    lines += _rates(contract)
    lines += _observation(contract, meta)
    lines += _time(contract, meta)
    lines += _actor(contract, meta)
    stages = meta.get("exploy_dsl.stages")
    for kind in USER_STAGE_KINDS:
        lines += _stage(kind, stages.get(kind) if isinstance(stages, dict) else None)
    lines += _joints(meta)
    lines += _memory(contract)
    lines += _build(meta)
    lines += _bound(meta)
    return "\n".join(lines) + "\n"


def _rates(contract: FileContract) -> list[str]:
    policy_hz = contract.update_rate / contract.decimation
    return [
        "",
        "rates:",
        f"  tick: {_g(contract.update_rate)} Hz (sim_dt {_g(contract.sim_dt)} s); the file is "
        "called once per tick",
        f"  policy step: every {contract.decimation} ticks ({_g(policy_hz)} Hz), when "
        f"ctx.step_count % {contract.decimation} == 0; apply_actions runs at every tick",
        "  exploy's controller counts from 1 after a reset: its first call is an apply-only "
        "step, so memory initial values are used",
    ]


def _observation(contract: FileContract, meta: dict[str, Any]) -> list[str]:
    layout = meta.get("exploy_dsl.observation")
    obs = contract.obs
    lines = ["", f"observation obs {obs.declared_shape}:"]
    if not isinstance(layout, dict):
        names = meta.get("obs_term_names")
        lines.append(f"  terms (no layout recorded): {names}")
        return lines
    terms = [t for t in layout.get("terms", []) if isinstance(t, dict)]
    width = max((len(str(t.get("name"))) for t in terms), default=4)
    for t in terms:
        start, size = int(t.get("start", 0)), int(t.get("size", 0))
        parts = []
        if t.get("clip") is not None:
            parts.append(f"clip {_values(t['clip'])}")
        if t.get("scale") is not None:
            scale = t["scale"]
            folded = " (folded into the actor)" if t.get("scale_folded") else ""
            parts.append(f"scale {_g(scale[0]) if len(scale) == 1 else _values(scale)}{folded}")
        history = t.get("history")
        if isinstance(history, dict):
            parts.append(
                f"kept {history.get('length')} policy steps, {history.get('order')}, "
                f"{history.get('layout', 'term_major')}"
            )
        detail = ", then ".join(parts) if parts else "as computed"
        slot = f"obs[{start}:{start + size}]"
        if isinstance(history, dict) and history.get("layout") == "frame_major":
            slot = "see frames"
        lines.append(f"  {slot:<12} {t.get('name')!s:<{width}}  {detail}")
        if isinstance(history, dict):
            frames = history.get("frames", [])
            shown = [
                f"{'t' if j == len(frames) - 1 else f't-{len(frames) - 1 - j}'} obs[{a}:{b}]"
                for j, (a, b) in enumerate(frames)
            ]
            lines.append(f"  {'':<12} {'':<{width}}  frames: {', '.join(shown)}")
    clip = layout.get("clip")
    lines.append(
        f"  the concatenation is clipped to {_values(clip)}"
        if clip is not None
        else "  the concatenation is not clipped"
    )
    group = layout.get("history")
    if isinstance(group, dict):
        if "length" in group:
            lines.append(
                f"  history (every term): {group['length']} policy steps, {group.get('order')}, "
                f"{group.get('layout')}"
            )
        lines.append(f"  history after a reset: {group.get('reset')}")
    lines += _normalizer(meta, layout)
    return lines


def _normalizer(meta: dict[str, Any], layout: dict[str, Any]) -> list[str]:
    norm = meta.get("exploy_dsl.normalizer")
    if not isinstance(norm, dict):
        return []
    stat = norm.get("statistic", "std")
    where = (
        "folded into the actor's first layer: obs is NOT normalized (nor scaled where a "
        "term says so), the actor's weights do it"
        if norm.get("folded")
        else "applied to the clipped observation: obs is normalized"
    )
    lines = [
        f"  normalizer: {norm.get('formula')}, eps {_g(norm.get('eps'))}, {norm.get('size')} "
        f"values, {where}",
        f"    from {norm.get('source')}; count {norm.get('count')}; sha256 {norm.get('sha256')}",
    ]
    if norm.get("clip") is not None:
        lines.append(f"    then clipped to {_values(norm['clip'])}")
    if "mean" in norm:
        lines.append(f"    mean {_values(norm['mean'])}")
        lines.append(f"    {stat} {_values(norm.get(stat, []))}")
    else:
        lines.append("    (statistics too large to store; compare them by the hash)")
    folded = layout.get("folded_into_actor")
    if folded:
        lines.append(f"  folded into the actor's first layer: {', '.join(folded)}")
    return lines


def _time(contract: FileContract, meta: dict[str, Any]) -> list[str]:
    stages = meta.get("exploy_dsl.stages")
    readers = [
        kind
        for kind, info in (stages.items() if isinstance(stages, dict) else ())
        if isinstance(info, dict) and STEP_COUNT in info.get("reads", [])
    ]
    clocks = meta.get("exploy_dsl.clocks")
    if not readers and not clocks:
        return []
    policy_dt = contract.decimation * contract.sim_dt
    lines = [
        "",
        f"time: stages read the tick ({', '.join(readers) or 'none'}): v.tick = ctx.step_count, "
        f"v.time = ctx.step_count * {_g(contract.sim_dt)} s",
        "  the first policy step after a reset sees t = 0 on a runtime counting from 0, "
        f"t = {_g(policy_dt)} s (decimation * sim_dt) on exploy's controller (first call k = 1)",
    ]
    for clock in clocks if isinstance(clocks, list) else []:
        period, offset = clock.get("period"), clock.get("offset", 0.0)
        lines.append(
            f"  phase clock in {clock.get('stage')}: period {_g(period)} s, offset {_g(offset)} s: "
            f"{clock.get('formula')}"
        )
    return lines


def _actor(contract: FileContract, meta: dict[str, Any]) -> list[str]:
    actor = meta.get("exploy_dsl.actor")
    hashes = meta.get("exploy_dsl.hashes")
    source = actor.get("source") if isinstance(actor, dict) else None
    weights = hashes.get("actor_weights") if isinstance(hashes, dict) else None
    lines = [
        "",
        f"actor: {source or '(not recorded)'}, obs {list(contract.obs.shape)} -> actions "
        f"{list(contract.actions.shape)}",
    ]
    if isinstance(actor, dict) and "inputs" in actor:
        for kind, arrow in (("inputs", "<-"), ("outputs", "->")):
            for p in actor.get(kind, []):
                lines.append(
                    f"  {kind[:-1]} {p['name']} {p['dtype']}{p['shape']} {arrow} "
                    f"{describe_binding(p['binds'])}"
                )
        if actor.get("dropped_outputs"):
            lines.append(
                f"  dropped outputs (computed, never used): {', '.join(actor['dropped_outputs'])}"
            )
        if actor.get("state"):
            lines.append(
                f"  recurrent state: {', '.join(actor['state'])} (memory, written on policy "
                "steps only, zeros after a reset unless its initial value says otherwise)"
            )
        for memory, origin in actor.get("lifted_state", {}).items():
            lines.append(f"  memory {memory} was lifted from the torch module's {origin}")
    lines.append(f"  weights sha256: {weights or '(not recorded)'}")
    return lines


def _stage(kind: str, info: Any) -> list[str]:
    lines = ["", f"{kind} ({spec(kind).when}):"]
    if not isinstance(info, dict):
        return [*lines, "  (not recorded in this file)"]
    where = f"{info.get('file')}:{info.get('line')}" if info.get("file") else "unknown file"
    lines.append(f"  function {info.get('function')} ({where})")
    lines.append(f"  reads: {', '.join(info.get('reads', [])) or 'nothing'}")
    lines.append(f"  writes: {', '.join(info.get('writes', [])) or 'nothing'}")
    ops = info.get("ops", {})
    lines.append(f"  ops: {', '.join(f'{op} x{n}' for op, n in ops.items()) or 'none'}")
    floats, others = [], 0
    for const in info.get("constants", []):
        if str(const.get("dtype", "")).startswith("float"):
            floats.append(const)
        else:
            others += 1
    for const in floats:
        shape = const.get("shape", [])
        if "values" not in const:
            value = f"sha256 {str(const.get('sha256'))[:16]}..."
        elif not shape:
            value = _g(const["values"][0])
        else:
            value = _values(const["values"])
        lines.append(f"  constant {const.get('dtype')}{shape if shape else ''} {value}")
    if others:
        lines.append(f"  plus {others} integer constant(s) (indices, axes, shapes)")
    for model in info.get("models", []):
        lines += _model(model)
    steps = [step for step in info.get("steps", []) if isinstance(step, dict)]
    if steps:
        lines.append("  library steps, in call order:")
        lines += [f"    {_step(kind, step)}" for step in steps]
    source = info.get("source")
    if source:
        lines.append("  source:")
        lines += [f"  | {line}".rstrip() for line in str(source).rstrip().splitlines()]
    return lines


def _model(model: Any) -> list[str]:
    if not isinstance(model, dict):
        return []

    def ports(key: str) -> str:
        return ", ".join(
            f"{p.get('dtype')}{p.get('shape')}" for p in model.get(key, []) if isinstance(p, dict)
        )

    return [
        f"  calls model {model.get('source')}: {ports('inputs')} -> {ports('outputs')}, "
        "inlined (its weights are constants of this stage)",
        f"    weights sha256: {model.get('weights_sha256') or '(not recorded)'}",
    ]


def _step(kind: str, step: dict[str, Any]) -> str:
    """One library step of a stage, with the parameters a deployer must know."""
    name = step.get("step")
    at = f" ({step['at']})" if step.get("at") else ""
    per = "tick" if spec(kind).rate == "tick" else "policy step"
    if name == "clip":
        low, high = step.get("low"), step.get("high")
        text = f"clip to [{_param(low, '-inf')}, {_param(high, 'inf')}]"
    elif name == "scale_offset":
        scale, offset = _param(step.get("scale"), "1"), _param(step.get("offset"), "0")
        text = f"scale and offset: x * {scale} + {offset}"
    elif name == "joint_position_action":
        scale, offset = _param(step.get("scale"), "1"), _param(step.get("offset"), "0")
        low, high = step.get("clip_low"), step.get("clip_high")
        clipped = (
            f", clipped to [{_param(low, '-inf')}, {_param(high, 'inf')}]"
            if low is not None or high is not None
            else ""
        )
        text = (
            f"joint position action, held in memory.{step.get('memory')}: target = actions * "
            f"{scale} + {offset}{clipped}, once per {per}, held until the next; target = "
            f"{_param(step.get('init'), '0')} after a reset"
        )
    elif name == "phase_clock":
        text = (
            f"phase clock, period {_g(step.get('period'))} s, offset "
            f"{_g(step.get('offset', 0.0))} s: [sin, cos] of the phase from ctx.step_count"
        )
    elif name == "low_pass":
        alpha = step.get("alpha")
        keep = _g(1.0 - float(alpha)) if isinstance(alpha, (int, float)) else "(1 - alpha)"
        text = (
            f"low-pass filter (EMA), state memory.{step.get('memory')}: y = {_g(alpha)} * x + "
            f"{keep} * y_prev, once per {per}; y_prev = {_param(step.get('init'), '0')} after "
            "a reset"
        )
    elif name == "rate_limit":
        text = (
            f"rate limit, state memory.{step.get('memory')}: y = y_prev + clip(x - y_prev, -d, "
            f"d), d = {_param(step.get('max_delta'), '?')} per {per}; y_prev = "
            f"{_param(step.get('init'), '0')} after a reset"
        )
    elif name == "unscale_action":
        text = (
            f"unscale_action (SB3) from [-1, 1] to [{_param(step.get('low'), '?')}, "
            f"{_param(step.get('high'), '?')}]: low + 0.5 (x + 1) (high - low), clipped to it"
        )
    elif name == "argmax":
        text = f"argmax over axis {step.get('axis')} (an int32 index, the first on ties)"
    else:
        rest = {k: v for k, v in step.items() if k not in ("step", "at")}
        text = f"{name} {json.dumps(rest)}"
    return text + at


def _param(value: Any, missing: str) -> str:
    if value is None:
        return missing
    if isinstance(value, dict):
        return f"{value.get('shape')} values, sha256 {str(value.get('sha256'))[:16]}..."
    if isinstance(value, str):
        return f"a value computed in the stage ({value})" if value != "computed" else "computed"
    if isinstance(value, list):
        return _values(value)
    return _g(value)


def _joints(meta: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, value in meta.items():
        if JOINT_GROUP.match(key) and isinstance(value, dict):
            names = value.get("joint_names", [])
            lines += ["", f"joint state {key}.pos/.vel: {len(names)} joints, in this order:"]
            lines.append(f"  {', '.join(map(str, names))}")
    for key, value in meta.items():
        if not (JOINT_TARGET_GROUP.match(key) and isinstance(value, dict)):
            continue
        names = [str(n) for n in value.get("names", [])]
        kp, kd = value.get("stiffness", []), value.get("damping", [])
        lines += ["", f"joint targets {key}.pos/.vel/.effort: exploy sets these gains each tick"]
        lines += [f"  {line}" for line in _articulation(key, meta)]
        width = max((len(n) for n in names), default=5)
        lines.append(f"  {'joint':<{width}}  stiffness  damping")
        for i, joint in enumerate(names):
            p = _g(kp[i]) if i < len(kp) else "?"
            d = _g(kd[i]) if i < len(kd) else "?"
            lines.append(f"  {joint:<{width}}  {p:<9}  {d}")
    return lines


def _articulation(group: str, meta: dict[str, Any]) -> list[str]:
    found = next((t for t in target_articulations(meta) if t.group == group), None)
    if found is None:
        return []
    lines = [
        f"sent to articulation {found.articulation!r} (exploy's controller passes the <name> "
        "of the wires to the robot as the articulation)"
    ]
    if found.differs:
        sources = ", ".join(f"{a!r} (obj.{a}.joints)" for a in found.read_from)
        lines.append(f"NOTE: these joints are read from articulation {sources}")
    return lines


def _memory(contract: FileContract) -> list[str]:
    lines = ["", "memory (value after a reset; memory.X.out feeds memory.X.in next tick):"]
    if not contract.memory:
        return [*lines, "  (none)"]
    for wire, name in zip(contract.memory, contract.memory_names, strict=True):
        init, envs = one_env_init(contract.initial_values[wire.name], wire, contract)
        lines.append(
            f"  {name}  {wire.dtype}{wire.declared_shape}{envs}  {_values(init.reshape(-1))}"
        )
    return lines


def _build(meta: dict[str, Any]) -> list[str]:
    """The build's rewrites that changed the file (compiler/build/_rewrite.py)."""
    build = meta.get(BUILD_KEY)
    if not isinstance(build, dict):
        return []
    steps = [s for s in build.get("rewrites", []) if isinstance(s, dict)]
    if not steps:
        return ["", "build rewrites: none (compiled with --no-rewrites)"]
    summaries = {r.name: r.summary for r in REWRITES}
    header = "build rewrites (each keeps every output bit for bit; a NaN stays a NaN), in order:"
    lines = ["", header]
    for step in steps:
        before, after = step.get("nodes", ["?", "?"])
        name = str(step.get("step"))
        lines.append(
            f"  {name}: {before} -> {after} nodes; {summaries.get(name, '(unknown step)')}"
        )
    return lines


def _bound(meta: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if isinstance(meta.get("base_names"), dict):
        pairs = ", ".join(f"{art} -> {body}" for art, body in meta["base_names"].items())
        lines.append(f"  base_names: {pairs}")
    for key, value in meta.items():
        if not key.startswith(("cmd.", "sensor.")) or not isinstance(value, dict):
            continue
        if isinstance(value.get("ranges"), dict):
            ranges = ", ".join(f"{k} {_values(v)}" for k, v in value["ranges"].items())
            lines.append(f"  {key} ranges: {ranges}")
        else:
            lines.append(f"  {key}: {json.dumps(value)}")
    return ["", "bound metadata (read by exploy's matchers):", *lines] if lines else []


def _g(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _values(values: Any) -> str:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    shown = ", ".join(_g(x) for x in flat[:_SHOWN_VALUES])
    more = f", ... ({flat.size} values)" if flat.size > _SHOWN_VALUES else ""
    return f"[{shown}{more}]"
