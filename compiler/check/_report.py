"""The parity report: what was compared, what differs, where it first diverged, as text."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.check._actor_check import ActorReport
from compiler.check._compare import Tolerance
from compiler.check._element_names import ElementNames
from compiler.check._file_vs_program import Mismatch
from compiler.check._inputs import InputStream

CONVENTIONS = {0: "our runtime", 1: "exploy's C++ controller"}


@dataclass(frozen=True, slots=True)
class OutputReport:
    """Errors of one output over a run; ``worst`` names the element with the largest error."""

    name: str
    max_abs: float
    max_rel: float
    worst_tick: int
    worst: str
    bad_ticks: int

    @property
    def ok(self) -> bool:
        return self.bad_ticks == 0


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first tick out of tolerance: where in the episode, which element, both values."""

    tick: int
    episode: int  # 1-based
    step_count: int  # ctx.step_count the file saw at that tick
    policy_step: bool
    output: str
    element: str  # e.g. "obs[37] = actions[1]" or "...effort[4] = FR_thigh"
    reference: float
    compiled: float
    also: tuple[str, ...]  # other outputs out of tolerance at the same tick

    def describe(self) -> str:
        mode = "policy step" if self.policy_step else "apply-only step"
        others = f"; also out of tolerance: {', '.join(self.also)}" if self.also else ""
        return (
            f"tick {self.tick} (episode {self.episode}, ctx.step_count {self.step_count}, "
            f"{mode}), {self.element}: reference {self.reference:.7g}, compiled "
            f"{self.compiled:.7g} (|diff| {abs(self.compiled - self.reference):.3g}){others}"
        )


@dataclass(frozen=True, slots=True)
class RunReport:
    """One run of the stream under one start convention (``first_tick`` 0 or 1)."""

    first_tick: int
    ticks: int
    outputs: tuple[OutputReport, ...]
    first: Divergence | None
    skipped: str | None = None
    # Per output (reference, compiled) [ticks, size], kept only for plots.
    history: dict[str, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False
    )
    names: ElementNames | None = field(default=None, repr=False, compare=False)

    def element(self, output: str, flat: int) -> str:
        """The element's label (``x[4] = FR_thigh``), or ``x[4]`` without names."""
        return self.names.label(output, flat) if self.names else f"{output}[{flat}]"

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.first is None

    @property
    def label(self) -> str:
        who = CONVENTIONS.get(self.first_tick)
        return f"first call k={self.first_tick}" + (f" ({who})" if who else "")


@dataclass(frozen=True, slots=True)
class ParityReport:
    """Everything ``exploy-dsl check`` found; ``ok`` when parity holds everywhere."""

    file: str
    program: str
    stream: InputStream = field(repr=False, compare=False)  # what both sides were fed
    tolerance: Tolerance
    static: tuple[Mismatch, ...]
    actor: ActorReport
    runs: tuple[RunReport, ...]
    notes: tuple[str, ...] = ()  # hints that do not decide the result (e.g. another actor)

    @property
    def ticks(self) -> int:
        return self.stream.ticks

    @property
    def ok(self) -> bool:
        return not self.static and self.actor.ok and all(run.ok for run in self.runs)

    def render(self) -> str:
        """The report as text a person can act on."""
        tol = self.tolerance
        lines = [
            f"exploy-dsl check: {self.file} against program {self.program}",
            f"inputs: {self.stream.source}, {self.ticks} ticks in {self.stream.episodes} "
            "episode(s) (both sides reset together); "
            f"tolerance |compiled - reference| <= {tol.atol:g} + {tol.rtol:g} * |reference|",
            "",
        ]
        if self.static:
            lines.append(f"file against program: {len(self.static)} difference(s)")
            lines += [f"  - {m}" for m in self.static]
        else:
            lines.append(
                "file against program: ok (wires, memory initial values, decimation, rates, "
                "obs_term_names, metadata)"
            )
        lines.append(_actor_line(self.actor))
        lines += [f"note: {note}" for note in self.notes]
        for run in self.runs:
            lines.append("")
            lines += _run_lines(run)
        lines.append("")
        lines.append(self.verdict())
        return "\n".join(lines) + "\n"

    def verdict(self) -> str:
        if self.ok:
            return "result: OK, parity holds"
        causes: list[str] = []
        if self.static:
            causes.append(f"the file differs from the program in {len(self.static)} place(s)")
        failed = [run for run in self.runs if not run.ok]
        if any(run.skipped for run in failed):
            causes.append("parity not run (the file's inputs differ from the program's)")
        for run in failed:
            if run.first is not None:
                causes.append(
                    f"{run.label} diverges at tick {run.first.tick} on {run.first.output}"
                )
        if self.actor.status == "fail":
            causes.append(
                "the exported actor differs from the torch module: an exporter problem, "
                "which the parity runs inherit"
            )
        elif self.actor.status == "ok" and any(run.first for run in failed):
            causes.append(
                "the exported actor matches the torch module, so the difference lies in the "
                "file's stages or stitching"
            )
        return "result: FAIL: " + "; ".join(causes)


def _actor_line(actor: ActorReport) -> str:
    if actor.status == "skipped" or actor.errors is None:
        return f"actor alone: skipped: {actor.reason}"
    errors = actor.errors
    head = f"actor alone: {'ok' if actor.status == 'ok' else 'FAIL'}: {actor.reason}"
    stats = f"max abs {errors.max_abs:.3g}, max rel {errors.max_rel:.3g}"
    if errors.first_tick is None:
        return f"{head}; {stats}"
    return (
        f"{head}; {stats}; first out of tolerance: sample {errors.first_tick}, "
        f"{errors.name}[{errors.first_element}]: torch {errors.first_reference:.7g}, "
        f"onnx {errors.first_compiled:.7g}"
    )


def _run_lines(run: RunReport) -> list[str]:
    if run.skipped is not None:
        return [f"parity, {run.label}: not run: {run.skipped}"]
    lines = [f"parity, {run.label}: {'ok' if run.ok else 'FAIL'}"]
    if run.first is not None:
        lines.append(f"  first divergence: {run.first.describe()}")
    width = max([len("output"), *(len(o.name) for o in run.outputs)])
    lines.append(f"  {'output':<{width}}  {'max abs':>9}  {'max rel':>9}  worst element")
    for out in run.outputs:
        where = f"tick {out.worst_tick}, {out.worst}" if out.max_abs > 0 else "-"
        mark = "" if out.ok else f"  FAIL on {out.bad_ticks}/{run.ticks} ticks"
        lines.append(
            f"  {out.name:<{width}}  {out.max_abs:>9.3g}  {out.max_rel:>9.3g}  {where}{mark}"
        )
    return lines
