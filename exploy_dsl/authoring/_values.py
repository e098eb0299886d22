"""The read-only view ``v`` a stage receives: ports (or their names) to traced spox Vars."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Tensor, Var, argument

from exploy_dsl._errors import StageError
from exploy_dsl.authoring._ports import Memory, Output, Port
from exploy_dsl.contract._wires import STEP_COUNT, is_memory, memory_key, memory_name

if TYPE_CHECKING:
    from ._program import Program


def graph_name(port: Port) -> str:
    """The name a port's value has inside a stage graph (memory is ``memory.<name>``)."""
    return memory_key(port.name) if isinstance(port, Memory) else port.name


def resolve(program: Program, key: object, context: str) -> Port:
    """Find the declared port a stage refers to by object or by name, or explain the mistake.

    A library step that keeps its state in memory (``joint_position_action``, ``low_pass``,
    ...) stands for that memory: ``v[joint_pos]`` reads the held target.
    """
    held = getattr(key, "memory", None)
    if isinstance(held, Memory) and not isinstance(key, Port):
        key = held
    if isinstance(key, Port):
        if not program.owns(key):
            raise StageError(
                f"{context}: {key!r} is not a port of program {program.name!r} "
                "(declared on another Program?). Fix: use the ports this program declared."
            )
        return program.port(key.name)  # type: ignore[return-value]
    if isinstance(key, str):
        name = memory_name(key) if is_memory(key) else key
        port = program.port(name)
        if port is None or (is_memory(key) and not isinstance(port, Memory)):
            names = [p.name for p in program.ports]
            close = difflib.get_close_matches(name, names, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise StageError(
                f"{context}: {key!r} is not declared in program {program.name!r}.{hint} "
                "Fix: declare it with program.input/output/memory before the stage uses it."
            )
        return port
    raise StageError(
        f"{context}: key {key!r} of type {type(key).__name__} is not a port; "
        "index with a declared port or its name."
    )


class Values(Mapping[object, Var]):
    """Hands out one graph argument per port on first read and records what was read."""

    def __init__(self, program: Program, label: str) -> None:
        self._program = program
        self._label = label
        self._args: dict[str, Var] = {}
        self._derived: dict[str, Var] = {}

    @property
    def tick(self) -> Var:
        """The tick ``ctx.step_count`` as int32 ``[batch, 1]``: 0 at our runtime's first call
        after a reset, 1 at exploy's controller's (see README "Time")."""
        if "tick" not in self._derived:
            if STEP_COUNT not in self._args:
                self._args[STEP_COUNT] = argument(Tensor(np.int32, ()))
            column = op.reshape(self._args[STEP_COUNT], op.const(np.array([1, 1], np.int64)))
            batch = self._program.batch
            if self._program.dynamic_batch or batch > 1:
                column = self.expand_batch(column)
            self._derived["tick"] = column
        return self._derived["tick"]

    def batch_size(self) -> Var:
        """int64 ``[1]``: the number of envs. With a dynamic batch it is read from the first
        declared input or memory (so the stage reads that port)."""
        if "batch" not in self._derived:
            program = self._program
            if not program.dynamic_batch:
                self._derived["batch"] = op.const(np.array([program.batch], np.int64))
            else:
                carrier = next((p for p in program.ports if not isinstance(p, Output)), None)
                if carrier is None:
                    raise StageError(
                        f"{self._label}: program {program.name!r} has a dynamic batch but no "
                        "input or memory to take the number of envs from. Fix: compile it "
                        "with a fixed batch (--batch N)."
                    )
                axis = carrier.batch_axis
                self._derived["batch"] = op.shape(self[carrier], start=axis, end=axis + 1)
        return self._derived["batch"]

    def expand_batch(self, value: Var, axis: int = 0) -> Var:
        """``value`` (size 1 on the batch axis ``axis``) repeated for every env."""
        dims = value.unwrap_tensor().shape or ()
        rank = len(dims)
        if self._program.dynamic_batch:
            before = op.const(np.ones(axis, np.int64))
            after = op.const(np.ones(rank - axis - 1, np.int64))
            shape = op.concat([before, self.batch_size(), after], axis=0)
            expanded = op.expand(value, shape)
            if not all(isinstance(d, int) for d in dims):
                return expanded
            # Expand to a computed shape loses every dimension; the others are known.
            known = np.array([int(d) for d in dims if isinstance(d, int)], np.int64)
            known[axis] = -1
            return op.reshape(expanded, op.const(known))
        target = np.ones(rank, np.int64)
        target[axis] = self._program.batch
        return op.expand(value, op.const(target))

    @property
    def time(self) -> Var:
        """``tick * sim_dt`` in seconds, float32 ``[batch, 1]``: the time since the reset."""
        if "time" not in self._derived:
            seconds = op.cast(self.tick, to=np.float32)
            self._derived["time"] = op.mul(seconds, op.const(np.float32(self._program.sim_dt)))
        return self._derived["time"]

    def rebind(self, program: Program) -> None:
        """Resolve ports on ``program`` from now on (the same one with generated memory)."""
        self._program = program

    @property
    def program(self) -> Program:
        """The (sealed) program this stage is traced for: its rates, batch and ports."""
        return self._program

    def __getitem__(self, key: object) -> Var:
        port = resolve(self._program, key, f"v[{key!r}]")
        if isinstance(port, Output):
            raise StageError(
                f"v[{key!r}] reads output {port.name!r}; outputs are write-only. "
                "Fix: to use a value in a later tick, write it to a memory and read that."
            )
        name = graph_name(port)
        if name not in self._args:
            self._args[name] = argument(Tensor(port.np_dtype, port.wire_shape))
        return self._args[name]

    def __iter__(self) -> Iterator[object]:
        return iter(p for p in self._program.ports if not isinstance(p, Output))

    def __len__(self) -> int:
        return sum(1 for p in self._program.ports if not isinstance(p, Output))

    @property
    def arguments(self) -> dict[str, Var]:
        """Arguments in first-read order, keyed by graph name."""
        return dict(self._args)
