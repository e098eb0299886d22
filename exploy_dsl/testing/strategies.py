"""Hypothesis strategies for a program's inputs (needs hypothesis: ``pip install hypothesis``).

``tick_inputs(program)`` draws one tick's inputs inside what the program declares: a command's
``ranges``/``range``, unit quaternions for ``*.w_Q_b``, bool and int32 in kind, finite floats
(within ``magnitude``) elsewhere. ``episodes(program)`` draws a stream of ticks with resets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from exploy_dsl.authoring._domains import input_domain
from exploy_dsl.authoring._ports import Input
from exploy_dsl.authoring._program import Program


def tick_inputs(program: Program, *, magnitude: float = 10.0) -> st.SearchStrategy[dict[str, Any]]:
    """One tick's inputs, by wire name, each of its file shape and dtype."""
    return st.fixed_dictionaries({p.name: _port(p, magnitude) for p in program.inputs})


def episodes(
    program: Program, *, max_ticks: int = 40, magnitude: float = 10.0
) -> st.SearchStrategy[list[tuple[bool, dict[str, Any]]]]:
    """A stream of ``(reset, inputs)`` ticks, about one reset in eight; the first tick starts
    an episode."""
    reset = st.sampled_from([False] * 7 + [True])
    steps = st.lists(
        st.tuples(reset, tick_inputs(program, magnitude=magnitude)), min_size=1, max_size=max_ticks
    )
    return steps.map(lambda ticks: [(True, ticks[0][1]), *ticks[1:]])


def _float32_inside(lo: float, hi: float) -> tuple[float, float]:
    """Bounds hypothesis takes at width 32: float32 values inside [lo, hi]."""
    low, high = np.float32(lo), np.float32(hi)
    if low < lo:
        low = np.nextafter(low, np.float32(np.inf))
    if high > hi:
        high = np.nextafter(high, np.float32(-np.inf))
    return float(low), float(max(low, high))


def _port(port: Input, magnitude: float) -> st.SearchStrategy[np.ndarray]:
    domain = input_domain(port)
    shape, n = port.file_shape, port.shape[-1]
    count = int(np.prod(shape)) // n  # rows of the last axis

    def rows(element: st.SearchStrategy[Any]) -> st.SearchStrategy[np.ndarray]:
        return st.lists(element, min_size=count, max_size=count).map(
            lambda values: np.asarray(values).reshape(shape).astype(port.np_dtype)
        )

    if domain.kind == "bool":
        return rows(st.tuples(*(st.booleans() for _ in range(n))))
    if domain.kind == "quaternion":
        component = st.floats(-1.0, 1.0, allow_nan=False, width=32)
        unit = st.tuples(*(component for _ in range(4))).filter(
            lambda q: float(np.linalg.norm(q)) > 1e-3
        )
        return rows(unit.map(lambda q: tuple(np.asarray(q) / np.linalg.norm(q))))
    if domain.kind == "int":
        lows = domain.low if domain.low is not None else np.full(n, -5)
        highs = domain.high if domain.high is not None else np.full(n, 5)
        return rows(
            st.tuples(*(st.integers(int(lo), int(hi)) for lo, hi in zip(lows, highs, strict=True)))
        )
    lows = domain.low if domain.low is not None else np.full(n, -magnitude)
    highs = domain.high if domain.high is not None else np.full(n, magnitude)
    return rows(
        st.tuples(
            *(
                st.floats(*_float32_inside(lo, hi), allow_nan=False, width=32)
                for lo, hi in zip(lows, highs, strict=True)
            )
        )
    )
