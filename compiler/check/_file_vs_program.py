"""Compare what a file stores (wires, initial values, rates, metadata) with the program."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from compiler.build._metadata import metadata
from compiler.build._reproducible import STAMP_KEY
from compiler.check._element_names import ElementNames
from exploy_dsl import Actor, FileContract, TracedProgram, Wire
from exploy_dsl.contract._codec import decode, same_value

# Own metadata keys that follow from the program alone; other exploy_dsl.* keys describe the
# actor or the tools (versions, sources) and may differ between two faithful compiles.
_PROGRAM_OWN_KEYS = ("exploy_dsl.program", "exploy_dsl.memory", "exploy_dsl.observation")
_NOT_FROM_PROGRAM = ("model_source", STAMP_KEY)
_COMPARED_AS_RATES = ("decimation", "sim_dt", "update_rate")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One way the file differs from the program: ``what`` differs for ``name``."""

    what: str  # e.g. "memory initial value", "decimation", "metadata", "output"
    name: str  # the memory, key or wire concerned
    detail: str  # file value against program value, and where

    def __str__(self) -> str:
        return f"{self.what} {self.name!r}: {self.detail}"


def compare_file_with_program(
    contract: FileContract, traced: TracedProgram, actor: Actor
) -> tuple[Mismatch, ...]:
    """Every difference between the file's contract and the program's declarations."""
    program = traced.program
    found: list[Mismatch] = []
    compiled_from = _program_name(contract)
    if compiled_from is not None and compiled_from != program.name:
        found.append(
            Mismatch(
                "program",
                program.name,
                f"the file was compiled from program {compiled_from!r}. Fix: check that "
                "PROGRAM.py is the file this one was compiled from",
            )
        )
    if contract.decimation != program.decimation:
        found.append(
            Mismatch(
                "decimation",
                "decimation",
                f"file {contract.decimation}, program {program.decimation}",
            )
        )
    for key, value, expected in (
        ("sim_dt", contract.sim_dt, program.sim_dt),
        ("update_rate", contract.update_rate, program.update_rate),
    ):
        if not math.isclose(value, expected, rel_tol=1e-9):
            found.append(Mismatch("rate", key, f"file {value!r}, program {expected!r}"))
    found += _wires(
        "input",
        contract.inputs,
        [Wire(p.name, p.file_shape, p.dtype) for p in program.inputs],
    )
    declared_outputs = [
        Wire("actions", (program.batch, traced.n_actions), "float32"),
        Wire("obs", (program.batch, traced.n_obs), "float32"),
        *(Wire(p.name, p.file_shape, p.dtype) for p in program.outputs),
    ]
    found += _wires("output", (contract.actions, contract.obs, *contract.outputs), declared_outputs)
    found += _wires(
        "memory",
        contract.memory,
        [Wire(m.wire_in, m.file_shape, m.dtype) for m in program.memories],
    )
    found += _initial_values(contract, traced)
    found += _metadata(contract, traced, actor)
    return tuple(found)


def _wires(kind: str, file: Sequence[Wire], declared: Sequence[Wire]) -> list[Mismatch]:
    found: list[Mismatch] = []
    by_name = {w.name: w for w in file}
    names = {w.name for w in declared}
    for wire in declared:
        got = by_name.get(wire.name)
        if got is None:
            found.append(Mismatch(kind, wire.name, "declared by the program, missing in the file"))
        elif (got.shape, got.dtype) != (wire.shape, wire.dtype):
            found.append(
                Mismatch(
                    kind,
                    wire.name,
                    f"file {got.dtype}{list(got.shape)}, program {wire.dtype}{list(wire.shape)}",
                )
            )
    for wire in file:
        if wire.name not in names:
            found.append(Mismatch(kind, wire.name, "in the file, not declared by the program"))
    common_file = [w.name for w in file if w.name in names]
    common_declared = [w.name for w in declared if w.name in by_name]
    if common_file != common_declared:
        found.append(
            Mismatch(
                f"{kind} order",
                kind + "s",
                f"file {common_file}, program {common_declared} (exploy binds by name, but the "
                "order is part of the contract)",
            )
        )
    return found


def _initial_values(contract: FileContract, traced: TracedProgram) -> list[Mismatch]:
    names = ElementNames(traced, contract.metadata)
    found: list[Mismatch] = []
    for mem in traced.program.memories:
        stored = contract.initial_values.get(mem.wire_in)
        if stored is None or stored.shape != mem.init.shape:
            continue  # reported as a memory wire mismatch
        differs = np.flatnonzero((stored != mem.init).reshape(-1))
        if differs.size == 0:
            continue
        shown = ", ".join(
            f"{_where(names.name(mem.wire_out, int(i)), int(i))}: file "
            f"{stored.reshape(-1)[i]:.6g}, program {mem.init.reshape(-1)[i]:.6g}"
            for i in differs[:3]
        )
        more = f" and {differs.size - 3} more" if differs.size > 3 else ""
        found.append(
            Mismatch(
                "memory initial value",
                mem.name,
                f"the initializer {mem.wire_in!r} differs from the program's init at "
                f"{differs.size} element(s): {shown}{more}",
            )
        )
    return found


def _metadata(contract: FileContract, traced: TracedProgram, actor: Actor) -> list[Mismatch]:
    expected = {
        key: value
        for key, value in metadata(traced, actor).items()
        if (_from_program(key) or key in _PROGRAM_OWN_KEYS) and key not in _COMPARED_AS_RATES
    }
    file = {
        k: v
        for k, v in contract.metadata.items()
        if (_from_program(k) or k in expected) and k not in _COMPARED_AS_RATES
    }
    found: list[Mismatch] = []
    for key, value in expected.items():
        got = file.get(key)
        if got is None:
            found.append(Mismatch("metadata", key, f"missing in the file; program: {value}"))
        elif not same_value(decode(got), decode(value)):
            found.append(Mismatch("metadata", key, f"file {_short(got)}, program {_short(value)}"))
    for key in file:
        if key not in expected:
            found.append(
                Mismatch("metadata", key, f"in the file ({_short(file[key])}), not in the program")
            )
    return found


def _program_name(contract: FileContract) -> str | None:
    recorded = decode(contract.metadata.get("exploy_dsl.program", "null"))
    name = recorded.get("name") if isinstance(recorded, dict) else None
    return name if isinstance(name, str) else None


def _where(name: str | None, index: int) -> str:
    return f"{name} (index {index})" if name else f"index {index}"


def _from_program(key: str) -> bool:
    return not key.startswith("exploy_dsl.") and key not in _NOT_FROM_PROGRAM


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
