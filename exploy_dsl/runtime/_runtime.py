"""Run a compiled file tick by tick, as a deployed loop does, from the file alone."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from exploy_dsl._checks import check_int
from exploy_dsl._errors import FileContractError, RuntimeInputError
from exploy_dsl.contract._reader import FileContract, model_bytes, read_contract
from exploy_dsl.contract._wires import STEP_COUNT, in_to_out, is_memory
from exploy_dsl.runtime._session import checked_feeds_run, load_session

if TYPE_CHECKING:
    import onnx

    from exploy_dsl.runtime._self_test import SelfTestReport


class Runtime:
    """Owns the tick counter and the memory; ``step(inputs)`` returns named outputs.

    ``first_tick=0`` is our convention (the first call after a reset is a policy step);
    exploy's C++ controller adds 1 before each call, i.e. ``first_tick=1``. ``batch`` is the
    number of envs a dynamic-batch file runs (``compile --batch dynamic``; required there);
    a batched file steps every env at once, on one tick counter, and ``reset()`` resets all.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | onnx.ModelProto,
        *,
        threads: int = 1,
        first_tick: int = 0,
        batch: int | None = None,
    ) -> None:
        threads = check_int(
            threads, "Runtime(threads=...)", fix="e.g. threads=1", error=RuntimeInputError
        )
        first_tick = check_int(
            first_tick,
            "Runtime(first_tick=...)",
            minimum=0,
            fix="first_tick=0 (our runtime) or 1 (exploy's C++ controller)",
            error=RuntimeInputError,
        )
        data = model_bytes(source)
        label = repr(str(source)) if isinstance(source, (str, os.PathLike)) else "model"
        self.contract: FileContract = read_contract(data, label).at_batch(
            batch, "the batch (Runtime(batch=N), exploy-dsl run --batch N)"
        )
        self._label = label
        _refuse_non_finite_initial_values(self.contract, label)
        self._session = load_session(data, label, threads=threads)
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._run = checked_feeds_run(self._session)
        self._first_tick = first_tick
        self._inputs = {w.name: w for w in self.contract.inputs}
        # What step() needs, prepared once: the declared inputs in file order with their shape
        # and dtype, one feeds dict reused by every call (its tick array written in place), and
        # which output index is fed back into which memory input.
        self._specs = tuple((w.name, w.shape, w.np_dtype) for w in self.contract.inputs)
        self._tick_feed = np.zeros((), np.int32)
        self._feeds: dict[str, np.ndarray] = {STEP_COUNT: self._tick_feed}
        index = {name: i for i, name in enumerate(self._output_names)}
        self._memory_slots = tuple((w.name, index[in_to_out(w.name)]) for w in self.contract.memory)
        self.tick = first_tick
        self.memory: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the initial memory values stored in the file and the first tick."""
        self.tick = self._first_tick
        self.memory = {k: v.copy() for k, v in self.contract.initial_values.items()}

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self._inputs)

    def self_test(self, *, atol: float | None = None, rtol: float | None = None) -> SelfTestReport:
        """Replay the file's embedded self-test on this session; call it before the motors start.

        Raises SelfTestError when the file has none, or when an output differs from what the
        compiling machine recorded by more than the file's tolerance (``atol``/``rtol`` override
        it). The runtime's tick counter and memory are left as they were.
        """
        from exploy_dsl.runtime._self_test import run_self_test

        return run_self_test(self._session, self.contract, self._label, atol=atol, rtol=rtol)

    def step(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One call of the file: feeds inputs, memory and the tick; advances both."""
        if type(inputs) is not dict and not isinstance(inputs, Mapping):
            self._check(inputs)  # raises: not a mapping
        specs = self._specs
        if len(inputs) != len(specs):
            self._check(inputs)  # raises: an unknown or a missing input
        feeds = self._feeds
        for name, shape, dtype in specs:
            try:
                value = inputs[name]
            except KeyError:
                self._check(inputs)  # raises: with as many inputs, one is unknown
                raise
            if type(value) is not np.ndarray or value.dtype is not dtype or value.shape != shape:
                value = self._input(name, value)
            feeds[name] = value
        memory = self.memory
        if len(memory) != len(self._memory_slots):  # memory edited by hand: feed what is there
            for name, _ in self._memory_slots:
                feeds.pop(name, None)
        feeds.update(memory)
        self._tick_feed[()] = self.tick
        try:
            values = self._run(self._output_names, feeds, None)
        except Exception as exc:
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            # onnxruntime's own exceptions; a data-dependent failure (an index out of range).
            reason = " ".join(str(exc).split())
            raise RuntimeInputError(
                f"{self._label} failed in onnxruntime at ctx.step_count {self.tick}: {reason}. "
                "Fix: keep what the program's stages compute valid for every input value "
                "(e.g. clip an index read from an input into range); `exploy-dsl check` names "
                "the stage."
            ) from None
        for name, index in self._memory_slots:
            memory[name] = values[index]
        self.tick += 1
        return dict(zip(self._output_names, values, strict=True))

    def _check(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Every input checked and cast, in file order; the first mistake is raised."""
        if not isinstance(inputs, Mapping):
            raise RuntimeInputError(
                f"step() takes a dict of input name -> array, got {type(inputs).__name__}."
            )
        unknown = [k for k in inputs if k not in self._inputs]
        if unknown:
            hint = ""
            if any(k == STEP_COUNT or is_memory(str(k)) for k in unknown):
                hint = " The runtime feeds ctx.step_count and memory itself."
            raise RuntimeInputError(
                f"unknown input(s) {', '.join(map(repr, unknown))}; the file's inputs are "
                f"{', '.join(self._inputs)}.{hint}"
            )
        missing = [k for k in self._inputs if k not in inputs]
        if missing:
            raise RuntimeInputError(
                f"missing input(s) {', '.join(map(repr, missing))}; every input is needed at "
                "every tick."
            )
        return {name: self._input(name, inputs[name]) for name in self._inputs}

    def _input(self, name: str, given: Any) -> np.ndarray:
        """One input as it is fed: an array of the wire's shape and dtype, or an error."""
        wire = self._inputs[name]
        try:
            value = np.asarray(given)
        except (ValueError, TypeError) as exc:  # a ragged list, an object NumPy cannot read
            raise RuntimeInputError(
                f"input {name!r} cannot be read as an array ({exc}); expected "
                f"{wire.dtype}{list(wire.shape)}."
            ) from None
        if value.shape != wire.shape:
            raise RuntimeInputError(
                f"input {name!r} has shape {list(value.shape)}; expected {list(wire.shape)}."
            )
        return _cast(value, wire.np_dtype, name)


def _refuse_non_finite_initial_values(contract: FileContract, label: str) -> None:
    """A robot would start from these values: compile refuses them, so does the runtime."""
    for wire, value in contract.initial_values.items():
        if value.dtype.kind != "f" or np.isfinite(value).all():
            continue
        bad = np.flatnonzero(~np.isfinite(value.reshape(-1)))
        name = wire[len("memory.") : -len(".in")]
        shown = ", ".join(f"[{i}] = {value.reshape(-1)[i]}" for i in bad[:3])
        raise FileContractError(
            f"{label}: the initial value of memory {name!r} ({wire!r}) holds NaN or infinity "
            f"at {bad.size} element(s) ({shown}); a robot would start from it. Fix: give the "
            "memory a finite init in the program and recompile (compile refuses this)."
        )


def _cast(value: np.ndarray, dtype: np.dtype[Any], name: str) -> np.ndarray:
    if value.dtype == dtype:
        return value
    safe = (dtype.kind == "f" and value.dtype.kind in "fiu") or (
        dtype.kind == "i" and value.dtype.kind in "iu" and np.can_cast(value, dtype, "same_kind")
    )
    if not safe:
        raise RuntimeInputError(
            f"input {name!r} has dtype {value.dtype}; expected {dtype}. Fix: pass a {dtype} array."
        )
    return value.astype(dtype)
