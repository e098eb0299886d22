"""What a simulated run gives a deployer: the trajectory, the verdict and a one-screen summary."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from exploy_dsl.contract._wires import SE2_COMMAND
from exploy_dsl.sim._commands import SE2_COMPONENTS

# Tracking is measured after the start transient: the first second (at most half the run).
TRACKING_SKIP_S = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class SimResult:
    """One closed-loop run of a compiled file on a MuJoCo model, tick by tick.

    Arrays are ticks first. ``inputs`` and ``reset`` are the file's input stream, in the form
    of ``exploy-dsl check --trace`` (``save_trace(path)`` writes it with the compiler's
    ``save_trace``). ``stopped`` says why a run ended early (NaN from the file, MuJoCo
    unstable), None when it ran its time.
    """

    file: str
    robot: str
    sim_dt: float
    decimation: int
    first_tick: int
    settle_steps: int
    start: str
    notes: tuple[str, ...]
    binding: tuple[str, ...]
    planned_ticks: int
    inputs: Mapping[str, np.ndarray]
    reset: np.ndarray
    commands: Mapping[str, np.ndarray]
    base_name: str | None
    base_pos: np.ndarray  # [T, 3], world frame
    base_tilt: np.ndarray  # [T], radians between the base's z axis and the world's
    base_lin_vel_b: np.ndarray  # [T, 3], base frame
    base_ang_vel_b: np.ndarray  # [T, 3], base frame
    joint_names: tuple[str, ...]  # the joints the outputs drive
    joint_pos: np.ndarray  # [T, N]
    joint_targets: np.ndarray  # [T, N] the .pos target (NaN where there is none)
    joint_torque: np.ndarray  # [T, N] the actuator torque MuJoCo applied
    torque_hits: np.ndarray  # [T, N] the commanded torque (or control) was clipped
    limit_names: tuple[str, ...]  # the joints the file reads or commands
    limit_hits: np.ndarray  # [T, M] the joint was at (or beyond) a limit of its range
    stopped: str | None
    fall_height: float | None  # a base below this height has fallen (m)
    fall_tilt: float  # a base tilted beyond this has fallen (radians)

    @property
    def ticks(self) -> int:
        return int(self.reset.shape[0])

    @property
    def seconds(self) -> float:
        return self.ticks * self.sim_dt

    @property
    def fell_at(self) -> int | None:
        """The first tick at which the base was below the fall height or tilted too far."""
        if self.base_name is None or self.ticks == 0 or self.fall_height is None:
            return None
        down = (self.base_pos[:, 2] < self.fall_height) | (self.base_tilt > self.fall_tilt)
        hits = np.flatnonzero(down)
        return int(hits[0]) if hits.size else None

    @property
    def ok(self) -> bool:
        """The run went its full time, finite, and the base (if any) stayed up."""
        return self.stopped is None and self.fell_at is None

    def tracking(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per se2 velocity command: (commanded, achieved mean, RMS error), in the base frame.

        Achieved is the base's (lin x, lin y, ang z) velocity, measured after the first
        second of the run (at most half of it).
        """
        found: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if self.base_name is None or self.ticks == 0:
            return found
        skip = min(round(TRACKING_SKIP_S / self.sim_dt), self.ticks // 2)
        achieved = np.concatenate(
            [self.base_lin_vel_b[skip:, :2], self.base_ang_vel_b[skip:, 2:]], axis=1
        )
        for wire, value in self.commands.items():
            if SE2_COMMAND.match(wire) and value.size == 3:
                commanded = value.reshape(-1).astype(np.float64)
                error = np.sqrt(np.mean((achieved - commanded) ** 2, axis=0))
                found[wire] = (commanded, achieved.mean(axis=0), error)
        return found

    def summary(self) -> str:
        """What a deployer reads first: did it stay up, track, hit limits, stay finite."""
        rate = 1.0 / self.sim_dt
        lines = [
            f"sim {self.file} on {self.robot}: {self.seconds:.2f} s simulated ({self.ticks} of "
            f"{self.planned_ticks} ticks at {rate:g} Hz, policy {rate / self.decimation:g} Hz), "
            f"first call k={self.first_tick}, {self.settle_steps} settling step(s)",
            f"  start: {self.start}",
            *(f"  note: {note}" for note in self.notes),
        ]
        lines += ["  binding:", *(f"    {line}" for line in self.binding)]
        lines.append(f"  {self._base_line()}")
        for wire, (commanded, mean, error) in self.tracking().items():
            parts = ", ".join(
                f"{c} {cmd:+.2f} -> {got:+.2f} (rms err {err:.2f})"
                for c, cmd, got, err in zip(SE2_COMPONENTS, commanded, mean, error, strict=True)
            )
            lines.append(f"  tracking {wire} (commanded -> achieved mean): {parts}")
        lines.append("  " + _hits("joint-limit hits", self.limit_names, self.limit_hits))
        lines.append("  " + _hits("torque-limit hits", self.joint_names, self.torque_hits))
        lines.append(f"  NaN/inf: {self.stopped or 'none'}")
        lines.append(f"verdict: {self.verdict()}")
        return "\n".join(lines) + "\n"

    def verdict(self) -> str:
        fell = self.fell_at
        if self.stopped is not None:
            return f"FAIL: stopped at tick {self.ticks} ({self.stopped.split(':')[0]})"
        if fell is not None:
            return f"FELL at t = {fell * self.sim_dt:.2f} s (tick {fell})"
        if self.base_name is None:
            return "ran its time, finite (no floating base: falls not assessed)"
        return "stayed up, finite"

    def save_trace(self, path: str | os.PathLike[str]) -> None:
        """Write the run's input stream for ``exploy-dsl check FILE PROGRAM --trace PATH``."""
        from compiler import InputStream, save_trace  # the trace format's one writer

        save_trace(InputStream(self.inputs, self.reset, f"sim of {self.robot}"), path)

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Base height, velocity against command, joint targets against positions, torques."""
        from exploy_dsl.sim._plot import plot_result

        plot_result(self, path)

    def _base_line(self) -> str:
        if self.base_name is None:
            return "base: none (the model has no single floating body)"
        if self.ticks == 0:
            return f"base {self.base_name!r}: no tick ran"
        z = self.base_pos[:, 2]
        tilt = np.degrees(self.base_tilt)
        state = "FELL" if self.fell_at is not None else "stayed up"
        threshold = f"{self.fall_height:.3f} m" if self.fall_height is not None else "-"
        return (
            f"base {self.base_name!r}: {state}; height {z[-1]:.3f} m at the end (min "
            f"{z.min():.3f}, start {z[0]:.3f}), tilt max {tilt.max():.1f} deg (a fall: below "
            f"{threshold} or beyond {math.degrees(self.fall_tilt):.0f} deg)"
        )


def _hits(what: str, names: tuple[str, ...], hits: np.ndarray) -> str:
    if hits.size == 0 or not hits.any():
        return f"{what}: none"
    counts = hits.sum(axis=0)
    order = np.argsort(-counts, kind="stable")
    shown = [f"{names[i]} {int(counts[i])} ticks" for i in order if counts[i]]
    more = f", ... ({len(shown)} joints)" if len(shown) > 6 else ""
    return f"{what}: {', '.join(shown[:6])}{more}"
