"""Step a program (reference interpreter) or a compiled file (onnxruntime), read results by name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from exploy_dsl._errors import RuntimeInputError
from exploy_dsl.authoring._actor import is_torch_module
from exploy_dsl.authoring._domains import input_domain
from exploy_dsl.authoring._ports import Input, Memory, Port
from exploy_dsl.authoring._program import Program
from exploy_dsl.authoring._trace import TracedProgram, trace
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._tick import is_policy_step
from exploy_dsl.contract._wires import ACTIONS, OBS, is_memory_out, memory_name


@dataclass(frozen=True, slots=True)
class TickResult:
    """One tick's results: ``outputs`` by wire, ``memory`` by memory name (its value after the
    tick), ``obs`` by observation term, the ``actions``; ``result[port]`` reads any of them."""

    tick: int
    policy_step: bool
    actions: np.ndarray
    obs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]
    memory: Mapping[str, np.ndarray]
    raw: Mapping[str, np.ndarray]  # every output of the file, by wire name

    def __getitem__(self, key: Port | str) -> np.ndarray:
        if isinstance(key, Memory):
            return self.memory[key.name]
        name = key.name if isinstance(key, Port) else key
        for table in (self.outputs, self.memory, self.raw):
            if name in table:
                return table[name]
        raise KeyError(
            f"{name!r} is not an output, memory or file output of this tick; outputs: "
            f"{', '.join(self.outputs)}; memory: {', '.join(self.memory)}."
        )


def neutral_inputs(program: Program) -> dict[str, np.ndarray]:
    """A value for every input that means "nothing happens": zeros (inside a declared range,
    else the range's nearest bound), the identity quaternion (1, 0, 0, 0), False."""
    values: dict[str, np.ndarray] = {}
    for port in program.inputs:
        domain = input_domain(port)
        shape = port.file_shape
        if domain.kind == "bool":
            values[port.name] = np.zeros(shape, np.bool_)
        elif domain.kind == "quaternion":
            q = np.zeros(shape, np.float32)
            q[..., 0] = 1.0
            values[port.name] = q
        else:
            zero = np.zeros(shape, np.float64)
            if domain.low is not None and domain.high is not None:
                zero = np.clip(zero, domain.low, domain.high)
            values[port.name] = zero.astype(port.np_dtype)
    return values


class ProgramRunner:
    """Steps ``program`` with the reference interpreter, from its stages, never from a file.

    ``actor`` is what ``compile`` takes (a torch module, an ONNX model or file, or a NumPy
    function); None is an actor that always returns zeros (and keeps a recurrent state at
    zeros), for tests of the observation and the action stages alone. Inputs not given to
    ``step`` take their ``neutral_inputs`` value.
    """

    def __init__(self, program: Program | TracedProgram, actor: Any = None, *, first_tick: int = 0):
        from exploy_dsl.reference._interpreter import ReferenceInterpreter

        self.traced = program if isinstance(program, TracedProgram) else trace(program)
        if actor is None:
            outputs = self.traced.actor_signature.outputs
            actor = _zeros_actor(tuple(p.shape for p in outputs))
        elif isinstance(actor, (str, os.PathLike)) or is_torch_module(actor):
            # As compile prepares it: exported, and any state kept inside lifted into memory.
            self.traced, actor = _prepared(actor, self.traced)
        self._interpreter = ReferenceInterpreter(self.traced, actor, first_tick=first_tick)
        self._neutral = neutral_inputs(self.traced.program)
        self._terms = {t.name: (t.start, t.size) for t in self.traced.obs_terms}
        self._decimation = self.traced.program.decimation

    def reset(self) -> None:
        """Memory back to its initial values, the tick back to the first tick."""
        self._interpreter.reset()

    def step(self, inputs: Mapping[Any, Any] | None = None) -> TickResult:
        """One tick with ``inputs`` (by port or wire name; the rest neutral)."""
        tick = self._interpreter.tick
        feeds = _feeds(self._neutral, inputs)
        raw = self._interpreter.step(feeds)
        return _result(tick, is_policy_step(tick, self._decimation), raw, self._terms)


class FileRunner:
    """Steps a compiled file in onnxruntime (``exploy_dsl.Runtime``), results read by name.

    Observation terms come from the file's recorded layout; inputs not given take neutral
    values (zeros, the identity quaternion, False; declared ranges are not in the file).
    """

    def __init__(self, source: Any, *, first_tick: int = 0, batch: int | None = None) -> None:
        from exploy_dsl.runtime._runtime import Runtime

        self.runtime = Runtime(source, first_tick=first_tick, batch=batch)
        contract = self.runtime.contract
        self._neutral = {}
        for wire in contract.inputs:
            value = np.zeros(wire.shape, wire.np_dtype)
            if wire.name.endswith("w_Q_b") and wire.shape[-1] == 4:
                value[..., 0] = 1.0
            self._neutral[wire.name] = value
        layout = decode(contract.metadata.get("exploy_dsl.observation", "{}"))
        terms = layout.get("terms", []) if isinstance(layout, dict) else []
        self._terms = {t["name"]: (int(t["start"]), int(t["size"])) for t in terms}
        self._decimation = contract.decimation

    def reset(self) -> None:
        self.runtime.reset()

    def step(self, inputs: Mapping[Any, Any] | None = None) -> TickResult:
        tick = self.runtime.tick
        raw = self.runtime.step(_feeds(self._neutral, inputs))
        return _result(tick, is_policy_step(tick, self._decimation), raw, self._terms)


def _feeds(
    neutral: Mapping[str, np.ndarray], inputs: Mapping[Any, Any] | None
) -> dict[str, np.ndarray]:
    feeds = dict(neutral)
    for key, value in (inputs or {}).items():
        name = key.name if isinstance(key, Input) else key
        if not isinstance(name, str) or name not in neutral:
            raise RuntimeInputError(
                f"step(): {key!r} is not an input of the program; its inputs are "
                f"{', '.join(neutral)}."
            )
        array = np.asarray(value)
        expected = neutral[name].shape
        if array.shape != expected and array.size == int(np.prod(expected)):
            array = array.reshape(expected)  # one sample given without the batch axis
        feeds[name] = array.astype(neutral[name].dtype, copy=False)
    return feeds


def _result(
    tick: int,
    policy: bool,
    raw: Mapping[str, np.ndarray],
    terms: Mapping[str, tuple[int, int]],
) -> TickResult:
    obs = raw[OBS]
    return TickResult(
        tick,
        policy,
        raw[ACTIONS],
        {name: obs[:, start : start + size] for name, (start, size) in terms.items()},
        {k: v for k, v in raw.items() if k not in (ACTIONS, OBS) and not is_memory_out(k)},
        {memory_name(k): v for k, v in raw.items() if is_memory_out(k)},
        raw,
    )


def _zeros_actor(shapes: tuple[tuple[int, ...], ...]) -> Any:
    def zeros(*inputs: np.ndarray) -> Any:
        values = tuple(np.zeros(shape, np.float32) for shape in shapes)
        return values if len(values) > 1 else values[0]

    return zeros


def _prepared(actor: Any, traced: TracedProgram) -> tuple[TracedProgram, Any]:
    """The program and actor as compile prepares them (the testing kit may use the compiler)."""
    from compiler import prepare_actor

    return prepare_actor(actor, traced, opset=20)
