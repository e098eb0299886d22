"""Observation history: a term kept over the last N policy steps, in Isaac Lab's layout by default.

Isaac Lab (``ObservationManager`` with ``history_length``, ``flatten_history_dim=True``, and its
``CircularBuffer``) keeps one buffer per term, appends the term after its clip and scale, and
flattens it oldest frame first: the term's N frames sit side by side in ``obs`` (term-major), and
right after a reset the first append fills every frame with that first observation. Here the
buffer is generated memory (``memory.history.<term>``, plus one ``memory.history_started``
flag), so no one writes it by hand and the file restores it on every reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Var

from exploy_dsl._errors import DeclarationError
from exploy_dsl.authoring._ports import Memory, normalize_init

ORDERS = ("oldest_first", "newest_first")
LAYOUTS = ("term_major", "frame_major")
# Generated memory: memory.history.<term> (memory.history.obs for whole frames) and one flag.
BUFFER_PREFIX = "history"
FRAME_BUFFER = "history.obs"
STARTED = "history_started"
RESET_RULE = "after a reset the first policy step fills every frame with its observation"


@dataclass(frozen=True, slots=True)
class History:
    """Keep a term (or every term) over the last ``length`` policy steps.

    ``order``: ``"oldest_first"`` (Isaac Lab's, the default) or ``"newest_first"``.
    ``layout`` (for ``program.observations(history=...)`` only): ``"term_major"`` (Isaac Lab's:
    each term's frames side by side) or ``"frame_major"`` (whole observation frames one after
    the other, as frame-stacking deployments do).
    """

    length: int
    order: str = "oldest_first"
    layout: str = "term_major"

    def __post_init__(self) -> None:
        if isinstance(self.length, bool) or not isinstance(self.length, int) or self.length < 1:
            raise DeclarationError(
                f"History length must be an int >= 1 (policy steps kept), got {self.length!r}. "
                "Fix: e.g. History(3) keeps the last 3 policy steps."
            )
        if self.order not in ORDERS:
            raise DeclarationError(
                f"History order must be one of {', '.join(map(repr, ORDERS))}, got "
                f"{self.order!r}. Fix: order='oldest_first' is Isaac Lab's."
            )
        if self.layout not in LAYOUTS:
            raise DeclarationError(
                f"History layout must be one of {', '.join(map(repr, LAYOUTS))}, got "
                f"{self.layout!r}. Fix: layout='term_major' is Isaac Lab's."
            )

    def record(self) -> dict[str, Any]:
        return {"length": self.length, "order": self.order, "layout": self.layout}


def as_history(value: object, what: str) -> History | None:
    """``None``, an int N or a ``History``, as a History (None when there is none)."""
    if value is None or isinstance(value, History):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return History(value)
    raise DeclarationError(
        f"{what} must be an int N (policy steps) or exploy_dsl.History(N, ...), got "
        f"{type(value).__name__} {value!r}."
    )


def buffer_memory(name: str, frames: int, size: int, batch: int) -> Memory:
    """The generated float32 memory holding ``frames`` frames of ``size`` values."""
    shape = (frames * size,)
    init = normalize_init(None, shape, batch, "float32", f"memory {name!r}")
    return Memory(name, shape, "float32", None, batch, 0, init=init)


def started_memory(batch: int) -> Memory:
    """False after a reset, True once a policy step has filled the history."""
    init = normalize_init(None, (1,), batch, "bool", f"memory {STARTED!r}")
    return Memory(STARTED, (1,), "bool", None, batch, 0, init=init)


def push(buffer: Var, frame: Var, started: Var, history: History, size: int) -> Var:
    """The buffer after this policy step: shifted by one frame, or filled after a reset."""
    n = history.length
    if n == 1:
        return frame
    filled = op.tile(frame, op.const(np.array([1, n], np.int64)))
    keep = (n - 1) * size
    if history.order == "oldest_first":
        older = _columns(buffer, size, n * size)
        shifted = op.concat([older, frame], axis=-1)
    else:
        newer = _columns(buffer, 0, keep)
        shifted = op.concat([frame, newer], axis=-1)
    return op.where(started, shifted, filled)


def frame_slices(
    history: History, start: int, size: int, stride: int
) -> tuple[tuple[int, int], ...]:
    """Where each frame of a term sits in ``obs``, oldest first (``stride``: frame-to-frame)."""
    starts = [start + j * stride for j in range(history.length)]
    if history.order == "newest_first":
        starts.reverse()
    return tuple((s, s + size) for s in starts)


def _columns(value: Var, start: int, stop: int) -> Var:
    return op.slice(
        value,
        op.const(np.array([start], np.int64)),
        op.const(np.array([stop], np.int64)),
        op.const(np.array([-1], np.int64)),
    )
