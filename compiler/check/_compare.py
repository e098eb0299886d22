"""Compare reference and compiled signals tick by tick, in blocks: errors, first divergence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_BLOCK = 512  # ticks compared at once: NumPy per block, not per tick


@dataclass(frozen=True, slots=True)
class Tolerance:
    """``|compiled - reference| <= atol + rtol * |reference|`` element by element."""

    atol: float = 1e-5
    rtol: float = 1e-5


@dataclass(frozen=True, slots=True)
class SignalErrors:
    """Error statistics of one output over a run (flat element indices within the wire)."""

    name: str
    max_abs: float
    max_rel: float  # |compiled - reference| / |reference| over elements where reference != 0
    worst_tick: int
    worst_element: int
    bad_ticks: int
    first_tick: int | None  # the first tick out of tolerance, None when the signal holds
    first_element: int
    first_reference: float
    first_compiled: float

    @property
    def ok(self) -> bool:
        return self.first_tick is None


class SignalComparator:
    """Collects both sides' values tick by tick and compares them a block at a time.

    With ``keep_history`` every value is kept (for plots): ``history[name] = (reference,
    compiled)``, each ``[ticks, size]`` float64.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        tolerance: Tolerance | Mapping[str, Tolerance],
        *,
        keep_history: bool = False,
    ) -> None:
        self._names = tuple(sizes)
        self._tol = (
            {n: tolerance for n in self._names}
            if isinstance(tolerance, Tolerance)
            else {n: tolerance[n] for n in self._names}
        )
        self._ref = {n: np.zeros((_BLOCK, size), np.float64) for n, size in sizes.items()}
        self._got = {n: np.zeros((_BLOCK, size), np.float64) for n, size in sizes.items()}
        self._finite = np.ones(_BLOCK, bool)  # whether that tick's inputs were all finite
        self._row = 0  # next free row of the block
        self._tick = 0  # tick of row 0 of the block
        self._stats = {n: _Running() for n in self._names}
        self._kept: dict[str, list[tuple[np.ndarray, np.ndarray]]] | None = (
            {n: [] for n in self._names} if keep_history else None
        )

    def add(
        self,
        reference: Mapping[str, np.ndarray],
        compiled: Mapping[str, np.ndarray],
        *,
        finite_inputs: bool = True,
    ) -> None:
        """One tick of both sides, by output name.

        On ``finite_inputs`` a NaN on either side is a divergence even where both sides agree:
        a NaN computed from finite inputs is a wrong file (e.g. a diverged actor), not parity.
        """
        row = self._row
        for name in self._names:
            self._ref[name][row] = reference[name].reshape(-1)
            self._got[name][row] = compiled[name].reshape(-1)
        self._finite[row] = finite_inputs
        self._row += 1
        if self._row == _BLOCK:
            self._flush()

    def finish(self) -> tuple[SignalErrors, ...]:
        """Statistics of every signal, in the order of ``sizes``."""
        self._flush()
        return tuple(self._stats[name].result(name) for name in self._names)

    @property
    def history(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every value seen so far (only with ``keep_history``), by output name."""
        if self._kept is None:
            return {}
        return {
            name: (
                np.concatenate([r for r, _ in parts]) if parts else np.zeros((0, 0)),
                np.concatenate([g for _, g in parts]) if parts else np.zeros((0, 0)),
            )
            for name, parts in self._kept.items()
        }

    def _flush(self) -> None:
        rows = self._row
        if rows == 0:
            return
        for name in self._names:
            ref, got = self._ref[name][:rows], self._got[name][:rows]
            self._stats[name].update(ref, got, self._finite[:rows], self._tick, self._tol[name])
            if self._kept is not None:
                self._kept[name].append((ref.copy(), got.copy()))
        self._tick += rows
        self._row = 0


class _Running:
    """Running statistics of one signal across blocks."""

    def __init__(self) -> None:
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.worst = (0, 0)
        self.bad_ticks = 0
        self.first: tuple[int, int, float, float] | None = None

    def update(
        self, ref: np.ndarray, got: np.ndarray, finite: np.ndarray, tick0: int, tol: Tolerance
    ) -> None:
        bad, err = compare(ref, got, tol, finite[:, None])
        with np.errstate(invalid="ignore", over="ignore"):
            scale = np.abs(ref)
            rel = np.divide(
                err, scale, out=np.zeros_like(err), where=np.isfinite(scale) & (scale > 0)
            )
        if err.size == 0:
            return
        worst = np.unravel_index(int(np.argmax(err)), err.shape)
        if err[worst] > self.max_abs:
            self.max_abs = float(err[worst])
            self.worst = (tick0 + int(worst[0]), int(worst[1]))
        self.max_rel = max(self.max_rel, float(rel.max()))
        bad_rows = np.flatnonzero(bad.any(axis=1))
        self.bad_ticks += int(bad_rows.size)
        if self.first is None and bad_rows.size:
            row = int(bad_rows[0])
            # The element furthest out of tolerance at the first bad tick (non-finite first).
            with np.errstate(invalid="ignore", over="ignore"):
                excess = np.where(
                    np.isfinite(ref[row]), err[row] - tol.rtol * np.abs(ref[row]), np.inf
                )
            excess = np.where(bad[row], np.nan_to_num(excess, nan=np.inf), -np.inf)
            col = int(np.argmax(excess))
            self.first = (tick0 + row, col, float(ref[row, col]), float(got[row, col]))

    def result(self, name: str) -> SignalErrors:
        first_tick, first_element, first_ref, first_got = self.first or (None, 0, 0.0, 0.0)
        return SignalErrors(
            name,
            self.max_abs,
            self.max_rel,
            self.worst[0],
            self.worst[1],
            self.bad_ticks,
            first_tick,
            first_element,
            first_ref,
            first_got,
        )


def compare(
    ref: np.ndarray, got: np.ndarray, tol: Tolerance, finite_inputs: np.ndarray | bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(bad, err)`` element by element, with non-finite values compared explicitly.

    Finite against finite: out of tolerance when ``err > atol + rtol * |ref|``. Infinity
    must meet the same infinity (a tolerance relative to an infinite reference would accept
    anything). NaN is bad against anything but NaN, and against NaN too where the inputs were
    finite. ``err`` is ``|got - ref|``, 0 where both are equal, infinity where either is NaN.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(got) & np.isnan(ref)
        same = (got == ref) | both_nan
        err = np.where(same, 0.0, np.nan_to_num(np.abs(got - ref), nan=np.inf, posinf=np.inf))
        finite = np.isfinite(ref) & np.isfinite(got)
        out_of_tolerance = err > tol.atol + tol.rtol * np.abs(np.where(finite, ref, 0.0))
        bad = np.where(finite, out_of_tolerance, ~same) | (both_nan & finite_inputs)
    err = np.where(both_nan & finite_inputs, np.inf, err)
    return bad, err


def first_divergence(errors: Sequence[SignalErrors]) -> tuple[SignalErrors, ...]:
    """The signals out of tolerance at the earliest bad tick, in output order."""
    ticks = [e.first_tick for e in errors if e.first_tick is not None]
    if not ticks:
        return ()
    earliest = min(ticks)
    return tuple(e for e in errors if e.first_tick == earliest)
