"""Plot the worst signals of a parity check, reference against compiled (matplotlib, optional)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType

import numpy as np

from compiler.build._write import save_figure
from compiler.check._compare import Tolerance
from compiler.check._report import ParityReport, RunReport
from exploy_dsl import MissingDependencyError, UsageError

MAX_SIGNALS = 4


def require_matplotlib() -> ModuleType:
    """matplotlib's pyplot on the Agg backend, or a clear error saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError(
            "--plot needs matplotlib, which is not installed. "
            "Fix: pip install matplotlib, or drop --plot."
        ) from None
    return plt


def plot_report(
    report: ParityReport, path: str | os.PathLike[str], *, max_signals: int = MAX_SIGNALS
) -> None:
    """Draw the ``max_signals`` elements with the largest error over ticks, both sides."""
    plt = require_matplotlib()
    run = _worst_run(report)
    if run is None:
        raise UsageError("nothing to plot: no parity run was made (see the report).")
    signals = _worst_signals(run, report.tolerances or report.tolerance, max_signals)
    ticks = np.arange(run.ticks)
    fig, axes = plt.subplots(len(signals), 1, figsize=(10, 2.4 * len(signals)), sharex=True)
    axes = np.atleast_1d(axes)
    resets = np.flatnonzero(report.stream.reset[1:]) + 1
    for ax, (name, flat, label) in zip(axes, signals, strict=True):
        reference, compiled = run.history[name]
        ax.plot(ticks, reference[:, flat], color="tab:blue", lw=1.4, label="reference")
        ax.plot(ticks, compiled[:, flat], color="tab:orange", lw=1.0, ls="--", label="compiled")
        for tick in resets:
            ax.axvline(tick, color="grey", lw=0.6, ls=":")
        if run.first is not None:
            ax.axvline(run.first.tick, color="tab:red", lw=0.8)
        ax.set_title(label, fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[0].legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("tick (dotted: reset, red: first divergence)", fontsize=8)
    verdict = "OK" if run.ok else "FAIL"
    fig.suptitle(f"{report.file}, {run.label}: {verdict}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, plt, path)


def _worst_run(report: ParityReport) -> RunReport | None:
    runs = [run for run in report.runs if run.history]
    failing = [run for run in runs if not run.ok]
    chosen = failing or runs
    return chosen[0] if chosen else None


def _worst_signals(
    run: RunReport, tolerance: Tolerance | Mapping[str, Tolerance], count: int
) -> list[tuple[str, int, str]]:
    """(output, flat element, title) of the worst elements, out-of-tolerance ones first.

    An element's score is its largest error as a multiple of its tolerance; each output's
    best-scoring element comes before any output's second, so one wide port cannot fill the
    figure while another diverges.
    """
    candidates = []
    for out in run.outputs:
        reference, compiled = run.history[out.name]
        if reference.size == 0:
            continue
        tol = tolerance if isinstance(tolerance, Tolerance) else tolerance[out.name]
        with np.errstate(invalid="ignore"):
            err = np.nan_to_num(np.abs(compiled - reference), nan=np.inf)
            score = (err / (tol.atol + tol.rtol * np.abs(reference))).max(axis=0)
        for rank, flat in enumerate(np.argsort(-score, kind="stable")[:count]):
            worst = float(err[:, flat].max())
            candidates.append((score[flat] <= 1.0, rank, -score[flat], out.name, int(flat), worst))
    candidates.sort(key=lambda c: c[:3])
    return [
        (name, flat, f"{run.element(name, flat)}  (max |diff| {worst:.3g})")
        for *_, name, flat, worst in candidates[:count]
    ]
