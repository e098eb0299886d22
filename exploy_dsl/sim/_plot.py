"""Plot a simulated run: base height, velocity against command, joints, torques (matplotlib)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from exploy_dsl._errors import MissingDependencyError
from exploy_dsl.sim._commands import SE2_COMPONENTS

if TYPE_CHECKING:
    from exploy_dsl.sim._result import SimResult


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # headless: a robot's build machine has no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError(
            "--plot needs matplotlib, which is not installed. "
            "Fix: pip install matplotlib, or drop --plot."
        ) from None
    return plt


def plot_result(result: SimResult, path: str | os.PathLike[str]) -> None:
    plt = _pyplot()
    seconds = np.arange(result.ticks) * result.sim_dt
    panels = ["joints", "torque"]
    if result.base_name is not None:
        panels = ["height", "velocity", *panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels, strict=True):
        _PANELS[panel](ax, result, seconds)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, loc="upper right", ncol=4)
        if result.fell_at is not None:
            ax.axvline(result.fell_at * result.sim_dt, color="tab:red", lw=0.8)
    axes[-1].set_xlabel("time (s)" + (", red: fell" if result.fell_at is not None else ""))
    fig.suptitle(f"{result.file} on {result.robot}: {result.verdict()}", fontsize=10)
    fig.tight_layout()
    from compiler.build._write import save_figure  # the project's one atomic writer

    save_figure(fig, plt, path)


def _height(ax: Any, result: SimResult, t: np.ndarray) -> None:
    ax.plot(t, result.base_pos[:, 2], color="tab:blue", label="base height (m)")
    if result.fall_height is not None:
        ax.axhline(result.fall_height, color="grey", ls=":", lw=0.8, label="fall below")
    ax.set_title(f"base {result.base_name!r}: height", fontsize=9, loc="left")


def _velocity(ax: Any, result: SimResult, t: np.ndarray) -> None:
    measured = np.concatenate([result.base_lin_vel_b[:, :2], result.base_ang_vel_b[:, 2:]], axis=1)
    commanded = next(iter(result.tracking().values()), None)
    for i, (label, colour) in enumerate(zip(SE2_COMPONENTS, ("C0", "C1", "C2"), strict=True)):
        ax.plot(t, measured[:, i], color=colour, lw=1.0, label=label)
        if commanded is not None:
            ax.axhline(commanded[0][i], color=colour, ls="--", lw=0.8)
    title = "base velocity (base frame)" + (", dashed: command" if commanded is not None else "")
    ax.set_title(title, fontsize=9, loc="left")


def _colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


def _joints(ax: Any, result: SimResult, t: np.ndarray) -> None:
    for i, name in enumerate(result.joint_names):
        colour = _colour(i)
        ax.plot(t, result.joint_pos[:, i], color=colour, lw=1.0, label=name)
        if np.isfinite(result.joint_targets[:, i]).any():
            ax.plot(t, result.joint_targets[:, i], color=colour, lw=0.8, ls="--")
    ax.set_title("joint positions (rad or m); dashed: .pos targets", fontsize=9, loc="left")


def _torque(ax: Any, result: SimResult, t: np.ndarray) -> None:
    for i, name in enumerate(result.joint_names):
        ax.plot(t, result.joint_torque[:, i], color=_colour(i), lw=0.8, label=name)
    ax.set_title("actuator torque applied by MuJoCo (N m or N)", fontsize=9, loc="left")


# Twelve joints and more: matplotlib's ten default colours would repeat within one panel.
_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd",
)  # fmt: skip
_PANELS = {"height": _height, "velocity": _velocity, "joints": _joints, "torque": _torque}
