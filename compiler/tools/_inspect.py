"""Render a compiled file's contract as text a deployer reads."""

from __future__ import annotations

import numpy as np

from compiler.build._articulation import target_articulations
from exploy_dsl.contract._batch import describe_batch
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._reader import FileContract, Wire
from exploy_dsl.contract._self_test import SELF_TEST_KEY


def _values(arr: np.ndarray) -> str:
    flat = arr.reshape(-1)
    text = np.array2string(flat, precision=4, separator=", ", max_line_width=10_000)
    return text if flat.size <= 24 else text[:200] + " ...]"


def _actor_state(contract: FileContract) -> set[str]:
    record = decode(contract.metadata.get("exploy_dsl.actor", "{}"))
    state = record.get("state") if isinstance(record, dict) else None
    return {s for s in state if isinstance(s, str)} if isinstance(state, list) else set()


def _shown(key: str, value: str) -> str:
    """A metadata value as a person reads it; the self-test's arrays are summarised."""
    if key != SELF_TEST_KEY:
        return value
    record = decode(value)
    if not isinstance(record, dict):
        return value[:120]
    fields = ", ".join(f"{k}: {record.get(k)!r}" for k in ("source", "ticks", "atol", "rtol"))
    size = f"{len(value) / 1024:.1f} KiB"
    return f"{{{fields}, ...}}  (the self-test: inputs and outputs of each tick, {size})"


def one_env_init(value: np.ndarray, wire: Wire, contract: FileContract) -> tuple[np.ndarray, str]:
    """A batched file's initial value shown for one env, when every env starts from it."""
    if contract.batch == 1:
        return value, ""
    if wire.batch_axis is not None:
        return value, " (each env)"  # a dynamic batch stores one env's value
    shape = list(wire.shape)
    if contract.batch not in shape:
        return value, ""
    first = np.take(value, [0], axis=shape.index(contract.batch))
    if not np.array_equal(np.broadcast_to(first, value.shape), value):
        return value, ""
    return first, " (each env)"


def render_inspect(contract: FileContract, source: str) -> str:
    lines = [f"file: {source}", f"opset {contract.opset}, IR version {contract.ir_version}"]
    lines.append(
        f"decimation: {contract.decimation} (policy every {contract.decimation} ticks), "
        f"sim_dt: {contract.sim_dt} s, update_rate: {contract.update_rate} Hz, "
        f"policy rate: {contract.update_rate / contract.decimation:g} Hz"
    )
    if contract.batch != 1:
        lines.append(f"batch: {describe_batch(contract.batch)}")
    lines.append("inputs:")
    lines.append("  ctx.step_count  int32 []  (tick counter; policy step when % decimation == 0)")
    lines += [f"  {w.name}  {w.dtype} {w.declared_shape}" for w in contract.inputs]
    lines.append("outputs:")
    lines.append(f"  actions  {contract.actions.dtype} {contract.actions.declared_shape}")
    lines.append(f"  obs  {contract.obs.dtype} {contract.obs.declared_shape}")
    lines += [f"  {w.name}  {w.dtype} {w.declared_shape}" for w in contract.outputs]
    lines.append("memory (in -> out, initial value):")
    if not contract.memory:
        lines.append("  (none)")
    state = _actor_state(contract)
    for wire, name in zip(contract.memory, contract.memory_names, strict=True):
        init, envs = one_env_init(contract.initial_values[wire.name], wire, contract)
        note = "  (the actor's recurrent state)" if name in state else ""
        lines.append(
            f"  memory.{name}  {wire.dtype} {wire.declared_shape}  init{envs} {_values(init)}{note}"
        )
    targets = target_articulations(contract.metadata)
    if targets:
        lines.append("joint targets (articulation that receives them):")
        lines += [f"  {t.describe()}" for t in targets]
    lines.append("metadata:")
    lines += [f"  {key} = {_shown(key, value)}" for key, value in contract.metadata.items()]
    return "\n".join(lines) + "\n"
