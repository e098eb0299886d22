"""The parity report: what was compared, what differs, where it first diverged, as text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from compiler.check._actor_check import ActorReport
from compiler.check._compare import Tolerance
from compiler.check._element_names import ElementNames
from compiler.check._file_vs_program import Mismatch
from compiler.check._inputs import InputStream
from compiler.check._tolerances import describe

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
            f"{self.compiled:.7g} ({self._difference()}){others}"
        )

    @property
    def non_finite(self) -> bool:
        return not (math.isfinite(self.reference) and math.isfinite(self.compiled))

    @property
    def both_non_finite(self) -> bool:
        return not (math.isfinite(self.reference) or math.isfinite(self.compiled))

    def _difference(self) -> str:
        if math.isnan(self.reference) and math.isnan(self.compiled):
            return "NaN computed from finite inputs"
        if self.non_finite:
            return "a non-finite value must be matched exactly"
        return f"|diff| {abs(self.compiled - self.reference):.3g}"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What tells the actor from the stages in one run.

    ``stages``: the program's stages fed the file's own actions against the file (everything
    but the actor, compared exactly). ``actor_*``: the given actor on the observations those
    stages computed against the file's ``actions``, at the ``policy_steps`` of the run.
    """

    stages: tuple[OutputReport, ...]
    stages_first: Divergence | None
    policy_steps: int
    actor_max_abs: float
    actor_first: Divergence | None

    @property
    def ok(self) -> bool:
        return self.stages_first is None and self.actor_first is None


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
    diagnosis: Diagnosis | None = None

    def element(self, output: str, flat: int) -> str:
        """The element's label (``x[4] = FR_thigh``), or ``x[4]`` without names."""
        return self.names.label(output, flat) if self.names else f"{output}[{flat}]"

    @property
    def ok(self) -> bool:
        """Parity holds: end to end, or (with a diagnosis) stages and actor each hold.

        End-to-end differences beyond tolerance while stages and actor each hold are the
        actor's rounding amplified downstream (``amplified``), not a divergence of the file.
        """
        if self.skipped is not None:
            return False
        if self.diagnosis is None:
            return self.first is None
        return self.diagnosis.ok

    @property
    def amplified(self) -> bool:
        """End to end beyond tolerance, explained by the actor's rounding amplified downstream."""
        return self.ok and self.first is not None

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
    tolerances: dict[str, Tolerance] = field(default_factory=dict)  # per output, resolved
    envs: int = 1  # a batched file: the envs run side by side, each fed its own inputs

    def tolerance_for(self, output: str) -> Tolerance:
        return self.tolerances.get(output, self.tolerance)

    @property
    def ticks(self) -> int:
        return self.stream.ticks

    @property
    def ok(self) -> bool:
        return not self.static and self.actor.ok and all(run.ok for run in self.runs)

    def render(self) -> str:
        """The report as text a person can act on."""
        lines = [
            f"exploy-dsl check: {self.file} against program {self.program}",
            f"inputs: {self.stream.source}, {self.ticks} ticks in {self.stream.episodes} "
            "episode(s) (both sides reset together); "
            + (
                f"{self.envs} envs in lockstep, each fed its own inputs (an element [e, i] is "
                "env e's); "
                if self.envs != 1
                else ""
            )
            + f"tolerance {describe(self.tolerance, self.tolerances)}",
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
            amplified = [run for run in self.runs if run.amplified]
            if amplified:
                return (
                    "result: OK, parity holds (the stages match exactly on the file's own "
                    "actions and the actor matches on the same observations; end-to-end "
                    "differences beyond tolerance are the actor's float32 rounding amplified "
                    "downstream)"
                )
            return "result: OK, parity holds"
        causes: list[str] = []
        if self.static:
            causes.append(f"the file differs from the program in {len(self.static)} place(s)")
        failed = [run for run in self.runs if not run.ok]
        skipped = [run.skipped for run in failed if run.skipped]
        if skipped:
            causes.append(f"parity not run ({skipped[0]})")
        for run in failed:
            if run.first is not None:
                causes.append(
                    f"{run.label} diverges at tick {run.first.tick} on {run.first.output}"
                )
        stages = [
            (r.label, r.diagnosis.stages_first)
            for r in failed
            if r.diagnosis is not None and r.diagnosis.stages_first is not None
        ]
        actors = [
            (r.label, r.diagnosis.actor_first)
            for r in failed
            if r.diagnosis is not None and r.diagnosis.actor_first is not None
        ]
        if stages:
            label, first = stages[0]
            causes.append(
                "fed the file's own actions, the program's stages still diverge from the file "
                f"({label}, tick {first.tick} on {first.output}), so the difference lies in the "
                "file's stages or stitching"
            )
        elif actors and actors[0][1].both_non_finite:
            label, first = actors[0]
            causes.append(
                f"the actor computes {first.compiled:g} from finite observations, in the file "
                f"and as given ({label}, tick {first.tick}, {first.element}): its weights hold "
                "NaN or infinity (a diverged checkpoint?)"
            )
        elif actors:
            label, first = actors[0]
            causes.append(
                "the program's stages match the file on the file's own actions, but on the same "
                f"observations the actor differs from the file's ({label}, tick {first.tick}, "
                f"{first.element}), so the difference lies in the actor inside the file"
            )
        if self.actor.status == "fail":
            causes.append(
                "the exported actor differs from the torch module: an exporter problem, "
                "which the parity runs inherit"
            )
        elif self.actor.status == "ok" and actors and not stages:
            causes.append(
                "the exported actor matches the torch module alone, so the file holds another "
                "actor than the one given (see the note) or its stitching changed the actor"
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
    if run.first is not None and not run.amplified:
        lines.append(f"  first divergence: {run.first.describe()}")
    elif run.first is not None:
        lines.append(f"  end to end, first beyond tolerance: {run.first.describe()}")
    lines += _table(run, run.outputs, "over" if run.amplified else "FAIL")
    diagnosis = run.diagnosis
    if diagnosis is None:
        return lines
    if diagnosis.stages_first is None:
        worst = max((o.max_abs for o in diagnosis.stages), default=0.0)
        lines.append(f"  stages fed the file's own actions: ok (max abs {worst:.3g})")
    else:
        lines.append(
            f"  stages fed the file's own actions: FAIL, first divergence: "
            f"{diagnosis.stages_first.describe()}"
        )
    if diagnosis.actor_first is None:
        lines.append(
            f"  actor on the same observations: ok (max abs {diagnosis.actor_max_abs:.3g} over "
            f"{diagnosis.policy_steps} policy steps)"
        )
    else:
        lines.append(
            f"  actor on the same observations: FAIL, first divergence: "
            f"{diagnosis.actor_first.describe()}"
        )
    if run.amplified:
        over = [o.name for o in run.outputs if not o.ok]
        lines.append(
            f"  end to end beyond tolerance on {', '.join(over)}: the actor's float32 rounding "
            "amplified downstream (the stages are exact on the file's own actions and the actor "
            "matches on the same observations), not a divergence of the file"
        )
    return lines


def _table(run: RunReport, outputs: tuple[OutputReport, ...], word: str) -> list[str]:
    width = max([len("output"), *(len(o.name) for o in outputs)])
    lines = [f"  {'output':<{width}}  {'max abs':>9}  {'max rel':>9}  worst element"]
    for out in outputs:
        where = f"tick {out.worst_tick}, {out.worst}" if out.max_abs > 0 else "-"
        mark = "" if out.ok else f"  {word} on {out.bad_ticks}/{run.ticks} ticks"
        lines.append(
            f"  {out.name:<{width}}  {out.max_abs:>9.3g}  {out.max_rel:>9.3g}  {where}{mark}"
        )
    return lines
