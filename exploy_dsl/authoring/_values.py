"""The read-only view ``v`` a stage receives: ports (or their names) to traced spox Vars."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from spox import Tensor, Var, argument

from exploy_dsl._errors import StageError
from exploy_dsl.authoring._ports import Memory, Output, Port
from exploy_dsl.contract._wires import is_memory, memory_key, memory_name

if TYPE_CHECKING:
    from ._program import Program


def graph_name(port: Port) -> str:
    """The name a port's value has inside a stage graph (memory is ``memory.<name>``)."""
    return memory_key(port.name) if isinstance(port, Memory) else port.name


def resolve(program: Program, key: object, context: str) -> Port:
    """Find the declared port a stage refers to by object or by name, or explain the mistake."""
    if isinstance(key, Port):
        if program.port(key.name) is not key:
            raise StageError(
                f"{context}: {key!r} is not a port of program {program.name!r} "
                "(declared on another Program?). Fix: use the ports this program declared."
            )
        return key
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

    def __getitem__(self, key: object) -> Var:
        port = resolve(self._program, key, f"v[{key!r}]")
        if isinstance(port, Output):
            raise StageError(
                f"v[{key!r}] reads output {port.name!r}; outputs are write-only. "
                "Fix: to use a value in a later tick, write it to a memory and read that."
            )
        name = graph_name(port)
        if name not in self._args:
            self._args[name] = argument(Tensor(port.np_dtype, port.file_shape))
        return self._args[name]

    def __iter__(self) -> Iterator[object]:
        return iter(p for p in self._program.ports if not isinstance(p, Output))

    def __len__(self) -> int:
        return sum(1 for p in self._program.ports if not isinstance(p, Output))

    @property
    def arguments(self) -> dict[str, Var]:
        """Arguments in first-read order, keyed by graph name."""
        return dict(self._args)
