"""What the library's steps record while a stage traces: parameters a deployer must know."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from spox import Var

from exploy_dsl.authoring._ports import Memory
from exploy_dsl.authoring._source import is_library

# Constant parameters up to this many elements are recorded by value, larger ones by hash.
MAX_RECORDED = 64


@dataclass(frozen=True, slots=True, eq=False)
class LibraryStep:
    """One call of a library step inside a stage (``clip``, ``low_pass``, ...).

    ``params`` is JSON (the file's ``exploy_dsl.stages`` entry of the stage); ``at`` is the
    user's ``file:line`` (base name); ``writes`` is the memory a stateful step updates.
    """

    step: str
    params: Mapping[str, Any]
    at: str | None
    writes: tuple[tuple[Memory, Var], ...] = field(default=())

    def record(self) -> dict[str, Any]:
        """The JSON entry the stage summary stores."""
        entry: dict[str, Any] = {"step": self.step}
        entry.update(self.params)
        if self.at is not None:
            entry["at"] = self.at
        return entry


_STEPS: ContextVar[list[LibraryStep] | None] = ContextVar("exploy_dsl_library_steps", default=None)


def begin_library_steps() -> None:
    """Start recording the library steps of the stage about to be traced."""
    _STEPS.set([])


def end_library_steps() -> tuple[LibraryStep, ...]:
    """The steps recorded since ``begin_library_steps``, in call order; stops recording."""
    steps = _STEPS.get()
    _STEPS.set(None)
    return tuple(steps or ())


def tracing() -> bool:
    """Whether a stage is being traced (so a stateful step has somewhere to put its write)."""
    return _STEPS.get() is not None


def record_step(step: LibraryStep) -> None:
    steps = _STEPS.get()
    if steps is not None:
        steps.append(step)


def library_writes() -> tuple[tuple[LibraryStep, Memory, Var], ...]:
    """The memory writes of the stateful steps recorded so far in the current stage."""
    steps = _STEPS.get() or []
    return tuple((s, memory, var) for s in steps for memory, var in s.writes)


def caller() -> str | None:
    """``file:line`` (base name) of the innermost frame outside exploy_dsl, spox, onnx, numpy."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_library(filename):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def constant_record(value: object) -> Any:
    """A constant parameter as JSON: a number, a list, or its shape and sha256 when large.

    float32 values are written in their shortest repr (0.1, not 0.10000000149011612).
    """
    if isinstance(value, Var):
        return "computed"
    arr = np.asarray(value)
    if arr.size > MAX_RECORDED:
        return {
            "shape": list(arr.shape),
            "sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest(),
        }
    if arr.dtype.kind == "f":
        kind = arr.dtype.type
        flat = [float(str(kind(x))) for x in arr.reshape(-1)]
    elif arr.dtype.kind == "b":
        flat = [bool(x) for x in arr.reshape(-1)]
    else:
        flat = [int(x) for x in arr.reshape(-1)]
    if arr.ndim == 0:
        return flat[0]
    return np.asarray(flat, dtype=object).reshape(arr.shape).tolist()
