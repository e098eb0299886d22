"""Time in stages: a phase clock over ``v.time`` (tick times ``sim_dt``), as gait policies use."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Var

from exploy_dsl._errors import StageError
from exploy_dsl.authoring._values import Values
from exploy_dsl.library._records import LibraryStep, caller, record_step

CLOCK_FORMULA = (
    "phase = ((ctx.step_count * sim_dt + offset) mod period) / period; "
    "[sin(2 pi phase), cos(2 pi phase)]"
)


def phase_clock(v: Any, period: float, *, offset: float = 0.0) -> Var:
    """``[sin(2 pi phase), cos(2 pi phase)]``, float32 ``[batch, 2]``, from the time since reset.

    ``phase = ((t + offset) mod period) / period`` with ``t = v.time = ctx.step_count * sim_dt``
    seconds, ``period`` in seconds. The first policy step after a reset is at ``t = 0`` on our
    runtime (first call k = 0) and at ``t = decimation * sim_dt`` on exploy's controller (first
    call k = 1); ``offset=-decimation * sim_dt`` makes the latter start at phase 0 (README,
    "Time"). The clock is recorded in the file (``exploy_dsl.clocks``) and shown by explain.
    """
    if not isinstance(v, Values):
        raise StageError(
            f"phase_clock(v, period=...) takes the `v` a stage receives, got "
            f"{type(v).__name__}. Fix: call it inside a stage, e.g. phase_clock(v, period=0.8)."
        )
    for name, value, positive in (("period", period, True), ("offset", offset, False)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (positive and value <= 0)
        ):
            need = "a finite number of seconds > 0" if positive else "a finite number of seconds"
            raise StageError(
                f"phase_clock {name} must be {need}, got {value!r}. "
                "Fix: e.g. phase_clock(v, period=0.8) for a 0.8 s gait cycle."
            )
    t = v.time
    if offset:
        t = op.add(t, op.const(np.float32(offset)))
    cycles = op.div(t, op.const(np.float32(period)))
    phase = op.sub(cycles, op.floor(cycles))
    angle = op.mul(phase, op.const(np.float32(2.0 * math.pi)))
    record_step(
        LibraryStep(
            "phase_clock",
            {"period": float(period), "offset": float(offset), "formula": CLOCK_FORMULA},
            caller(),
        )
    )
    return op.concat([op.sin(angle), op.cos(angle)], axis=-1)
