"""Replay a file's embedded self-test on the session a deployment will use, before it starts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from exploy_dsl._errors import FileContractError, SelfTestError
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._reader import FileContract
from exploy_dsl.contract._self_test import SELF_TEST_KEY, SelfTestRecord, decode_self_test
from exploy_dsl.contract._wires import JOINT_TARGET, STEP_COUNT, in_to_out


@dataclass(frozen=True, slots=True)
class SelfTestReport:
    """A self-test that passed: how many ticks, and the largest difference seen."""

    ticks: int
    first_tick: int
    source: str
    max_abs_diff: float
    worst: str  # the output of the largest difference ("" when every value was equal)
    atol: float
    rtol: float

    def __str__(self) -> str:
        where = f" on {self.worst}" if self.worst else ""
        return (
            f"self-test ok: {self.ticks} ticks ({self.source}, first call k={self.first_tick}) "
            f"reproduced within atol {self.atol:g}, rtol {self.rtol:g} "
            f"(max |diff| {self.max_abs_diff:.3g}{where})"
        )


def record_of(contract: FileContract, label: str) -> SelfTestRecord:
    """The file's self-test, checked against its wires; a SelfTestError when it has none."""
    text = contract.metadata.get(SELF_TEST_KEY)
    if text is None:
        raise SelfTestError(
            f"{label} carries no self-test (metadata key {SELF_TEST_KEY!r}). Fix: compile it "
            "with `exploy-dsl compile ... --self-test random` (or --self-test sim.npz)."
        )
    record = decode_self_test(text, label)
    wires = {
        "inputs": {w.name: w for w in contract.inputs},
        "outputs": {w.name: w for w in (contract.actions, contract.obs, *contract.outputs)}
        | {in_to_out(w.name): w for w in contract.memory},
    }
    for part, arrays in (("inputs", record.inputs), ("outputs", record.outputs)):
        expected = wires[part]
        if set(arrays) != set(expected):
            raise FileContractError(
                f"{label}: the self-test's {part} {sorted(arrays)} are not the file's "
                f"{sorted(expected)}. Fix: recompile the file with --self-test."
            )
        for name, array in arrays.items():
            wire = expected[name]
            if array.shape[1:] != wire.shape or array.dtype != wire.np_dtype:
                raise FileContractError(
                    f"{label}: the self-test's {name!r} is {array.dtype}{list(array.shape[1:])} "
                    f"per tick; the wire is {wire.dtype}{list(wire.shape)}. Fix: recompile it."
                )
    return record


def run_self_test(
    session: ort.InferenceSession,
    contract: FileContract,
    label: str,
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> SelfTestReport:
    """Replay the record through ``session``; raise SelfTestError at the first difference.

    Memory is fed back and reset as the record says, on a state of its own: the caller's
    tick counter and memory are not touched.
    """
    record = record_of(contract, label)
    atol = record.atol if atol is None else atol
    rtol = record.rtol if rtol is None else rtol
    names = [o.name for o in session.get_outputs()]
    memory: dict[str, np.ndarray] = {}
    tick = record.first_tick
    worst, worst_name = 0.0, ""
    for t in range(record.ticks):
        if record.reset[t]:
            memory = {k: v.copy() for k, v in contract.initial_values.items()}
            tick = record.first_tick
        feeds = {name: array[t] for name, array in record.inputs.items()}
        feeds[STEP_COUNT] = np.array(tick, np.int32)
        feeds.update(memory)
        try:
            values = dict(zip(names, session.run(names, feeds), strict=True))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind types
            raise SelfTestError(
                f"self-test of {label} failed: onnxruntime {ort.__version__} cannot run tick {t} "
                f"({' '.join(str(exc).split())[:300]}). Do not start the robot on this install."
            ) from None
        for name, expected in record.outputs.items():
            got = values[name]
            diff = _difference(got, expected[t])
            allowed = atol + rtol * np.abs(expected[t].astype(np.float64))
            bad = np.flatnonzero((diff > allowed).reshape(-1))
            if bad.size:
                i = int(bad[0])
                mode = "policy step" if tick % contract.decimation == 0 else "apply-only step"
                raise SelfTestError(
                    f"self-test of {label} failed at tick {t} (ctx.step_count {tick}, {mode}): "
                    f"{name}[{i}]{_element(contract, name, i)} is "
                    f"{got.reshape(-1)[i]:.7g} but the file recorded "
                    f"{expected[t].reshape(-1)[i]:.7g} at compile time (|diff| "
                    f"{diff.reshape(-1)[i]:.3g} > atol {atol:g} + rtol {rtol:g} * |recorded|). "
                    f"This onnxruntime ({ort.__version__}, {', '.join(session.get_providers())}) "
                    "does not compute what the compiling machine did: do not start the robot "
                    f"on it. Fix: install the onnxruntime the file was compiled with "
                    f"({_compiled_with(contract)}), or another execution provider."
                )
            finite = np.isfinite(diff)
            if finite.any() and float(diff[finite].max()) > worst:
                worst, worst_name = float(diff[finite].max()), name
        for wire in contract.memory:
            memory[wire.name] = values[in_to_out(wire.name)]
        tick += 1
    return SelfTestReport(
        record.ticks, record.first_tick, record.source, worst, worst_name, atol, rtol
    )


def _difference(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|got - expected| as float64; inf where exactly one is NaN or they are unequal infinities."""
    if got.dtype == np.bool_ or expected.dtype == np.bool_:
        return (got != expected).astype(np.float64) * np.inf
    a, b = got.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff[same] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff


def _element(contract: FileContract, wire: str, index: int) -> str:
    match = JOINT_TARGET.match(wire)
    if match is None:
        return ""
    group = decode(contract.metadata.get(match.group(1), "{}"))
    names = group.get("names") if isinstance(group, dict) else None
    if isinstance(names, list) and names:
        return f" = {names[index % len(names)]}"  # joint targets are [batch, len(names)]
    return ""


def _compiled_with(contract: FileContract) -> str:
    tools = decode(contract.metadata.get("exploy_dsl.tools", "{}"))
    version = tools.get("onnxruntime") if isinstance(tools, dict) else None
    return f"onnxruntime {version}" if isinstance(version, str) else "see exploy_dsl.tools"
