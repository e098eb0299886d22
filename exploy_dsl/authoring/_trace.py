"""Trace each stage function into its own ONNX graph, checking what it reads and writes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import spox
import spox.opset.ai.onnx.v20 as op
from spox import Tensor, Var, argument

from exploy_dsl._checks import check_numbers, check_range
from exploy_dsl._errors import ExployDslError, StageError
from exploy_dsl.authoring._actor import ActorPort, ActorSignature
from exploy_dsl.authoring._models import ModelCall, begin_model_calls, end_model_calls
from exploy_dsl.authoring._operators import constant_like, operators
from exploy_dsl.authoring._ports import Input, Memory, Output, Port, with_batch
from exploy_dsl.authoring._program import Program, Stage
from exploy_dsl.authoring._source import describe
from exploy_dsl.authoring._values import Values, graph_name, resolve
from exploy_dsl.contract._batch import BATCH_DIM, Batch
from exploy_dsl.contract._tick import USER_STAGES, spec
from exploy_dsl.contract._wires import ACTIONS, OBS, actor_input, memory_key, stage_output
from exploy_dsl.library._history import (
    FRAME_BUFFER,
    STARTED,
    History,
    as_history,
    buffer_memory,
    frame_slices,
    push,
    started_memory,
)
from exploy_dsl.library._normalizer import Normalizer
from exploy_dsl.library._records import (
    LibraryStep,
    begin_library_steps,
    caller,
    end_library_steps,
    library_writes,
)

_TERM_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


@dataclass(frozen=True, slots=True)
class Term:
    """An observation term: ``clip`` is applied first, then ``scale`` (as Isaac Lab does)."""

    name: str
    value: Any
    scale: float | Sequence[float] | None = None
    clip: tuple[float, float] | None = None
    history: int | History | None = None
    at: str | None = field(default=None, compare=False)  # the user's file:line, from term()

    def __post_init__(self) -> None:
        # Checked when the term is made, inside the user's stage, so the error names its line.
        what = f"term {self.name!r}"
        if self.clip is not None:
            clip = check_range(
                self.clip, f"{what} clip", fix="e.g. clip=(-1.0, 1.0)", error=StageError
            )
            object.__setattr__(self, "clip", clip)
        if self.scale is not None:
            check_numbers(
                self.scale,
                f"{what} scale",
                fix="e.g. scale=2.0, or one factor per element",
                error=StageError,
            )


def term(
    name: str,
    value: Any,
    *,
    scale: float | Sequence[float] | None = None,
    clip: tuple[float, float] | None = None,
    history: int | History | None = None,
) -> Term:
    """An observation term whose scale and clip are recorded in the file (see ``explain``).

    ``history=N`` keeps the term (after its clip and scale) over the last N policy steps, in
    Isaac Lab's layout: oldest frame first, the N frames side by side; after a reset every
    frame holds the first observation. ``history=exploy_dsl.History(N, order="newest_first")``
    reverses the frames. Its memory is generated (``memory.history.<name>``).
    """
    return Term(name, value, scale, clip, history, caller())


@dataclass(frozen=True, slots=True)
class ObsTerm:
    """Where one term sits in ``obs``, with the scale and clip the program declared for it."""

    name: str
    start: int
    size: int  # every value of the term in obs (all its frames)
    scale: tuple[float, ...] | None
    clip: tuple[float, float] | None
    history: History | None = None
    frames: tuple[tuple[int, int], ...] = ()  # with history: each frame's slice, oldest first

    @property
    def frame_size(self) -> int:
        return self.frames[0][1] - self.frames[0][0] if self.frames else self.size

    def element_names(self) -> dict[int, str]:
        """Index in obs -> ``name[i]``, or ``name[t-k][i]`` for the frame k steps ago."""
        if not self.frames:
            return {self.start + i: f"{self.name}[{i}]" for i in range(self.size)}
        names = {}
        last = len(self.frames) - 1
        for j, (begin, end) in enumerate(self.frames):
            when = "t" if j == last else f"t-{last - j}"
            names.update({begin + i: f"{self.name}[{when}][{i}]" for i in range(end - begin)})
        return names


@dataclass(frozen=True, slots=True, eq=False)
class ObsFold:
    """The affine map ``a * obs + c`` moved from the observation into the actor's first layer.

    ``a`` and ``c`` are float64 ``[n_obs]``: the term scales over the normalizer's denominator,
    and minus its mean over it. ``parts`` says what was folded ("scales", "normalizer").
    """

    a: np.ndarray
    c: np.ndarray
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class StageGraph:
    """One traced stage: a standalone ONNX graph over the ports it reads and writes."""

    kind: str
    label: str
    location: str
    model: onnx.ModelProto
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    models: tuple[ModelCall, ...] = ()  # models it calls (call_model), inlined in ``model``
    steps: tuple[LibraryStep, ...] = ()  # library steps it calls (clip, low_pass, ...)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The model's output names, aligned with ``writes`` (memory writes end in ``.out``)."""
        return tuple(stage_output(w) for w in self.writes)


@dataclass(frozen=True, slots=True, eq=False)
class TracedProgram:
    """A sealed snapshot of a program with its stages traced, in the order of one tick.

    What the compiler stitches and the reference interpreter runs. ``program`` is a sealed
    copy: ports declared on the original after ``trace()`` are not part of it.
    """

    program: Program
    graphs: Mapping[str, StageGraph]  # by stage kind, in SCHEDULE order
    obs_terms: tuple[ObsTerm, ...]
    obs_clip: tuple[float, float] | None
    n_obs: int
    n_actions: int
    actor_signature: ActorSignature  # the actor the program calls (see Program.actor)
    obs_history: History | None = None  # observations(history=...): every term's history
    normalizer: Normalizer | None = None
    obs_fold: ObsFold | None = None  # what compile folds into the actor's first layer
    # The program as declared, before generated (history) and lifted (actor) memory: what
    # is traced again at another batch (``Program.with_batch``).
    declared: Program | None = None

    def at_batch(self, batch: Batch) -> TracedProgram:
        """The same program traced at ``batch`` (itself when it has that batch)."""
        if self.program.batch_spec == batch:
            return self
        declared = self.declared if self.declared is not None else self.program
        return trace(declared.with_batch(batch))

    @property
    def clocks(self) -> tuple[dict[str, Any], ...]:
        """Phase clocks the stages use (``exploy_dsl.phase_clock``), with their stage."""
        return tuple(
            {"stage": g.kind, **step.params}
            for g in self.graphs.values()
            for step in g.steps
            if step.step == "phase_clock"
        )

    def obs_element_names(self) -> list[str]:
        """The name of every element of ``obs``, in order (``joint_pos[t-1][3]``)."""
        names: dict[int, str] = {}
        for t in self.obs_terms:
            names.update(t.element_names())
        return [names.get(i, f"obs[{i}]") for i in range(self.n_obs)]

    @property
    def stages(self) -> tuple[StageGraph, ...]:
        """The traced user stages in the order a tick runs them."""
        return tuple(self.graphs.values())

    def stage(self, kind: str) -> StageGraph:
        return self.graphs[kind]

    @property
    def output_wires(self) -> tuple[str, ...]:
        """Declared output wires, in declaration order (after ``actions`` and ``obs``)."""
        return tuple(p.wire for p in self.program.outputs)

    @property
    def memory_wires(self) -> tuple[tuple[str, str], ...]:
        """``(memory.<name>, memory.<name>.out)`` per memory, in declaration order."""
        return tuple((memory_key(m.name), m.wire_out) for m in self.program.memories)

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every output of the file in contract order, with its static shape."""
        batch = self.program.batch
        shapes: dict[str, tuple[int, ...]] = {
            ACTIONS: (batch, self.n_actions),
            OBS: (batch, self.n_obs),
        }
        shapes.update({p.wire: p.file_shape for p in self.program.outputs})
        shapes.update({m.wire_out: m.file_shape for m in self.program.memories})
        return shapes

    def output_wire_shapes(self) -> dict[str, tuple[int | str, ...]]:
        """``output_shapes`` as the file declares them: a dynamic batch is named ``batch``."""
        program = self.program
        if not program.dynamic_batch:
            return dict(self.output_shapes())
        shapes: dict[str, tuple[int | str, ...]] = {
            ACTIONS: (BATCH_DIM, self.n_actions),
            OBS: (BATCH_DIM, self.n_obs),
        }
        shapes.update({p.wire: p.wire_shape for p in program.outputs})
        shapes.update({m.wire_out: m.wire_shape for m in program.memories})
        return shapes


def trace(program: Program) -> TracedProgram:
    """Trace the stages of ``program`` (a sealed snapshot of it); StageError names the stage."""
    if not isinstance(program, Program):
        raise StageError(f"expected an exploy_dsl.Program, got {type(program).__name__}.")
    program = program.sealed()
    declared = program
    stages = program.stages
    for stage_spec in USER_STAGES:
        if stage_spec.kind not in stages:
            raise StageError(
                f"program {program.name!r} has no {stage_spec.kind} stage. Fix: add "
                f"{stage_spec.decorator} above a `def {stage_spec.kind}{stage_spec.signature}`."
            )
    if not program.outputs:
        raise StageError(
            f"program {program.name!r} declares no outputs; the file would command nothing. "
            "Fix: declare what the robot receives, e.g. program.joint_targets(...) or "
            "program.output(...), and write it in apply_actions."
        )
    obs_stage = stages["observations"]
    obs_graph, terms, n_obs, program, fold = _trace_observations(program, obs_stage)
    proc = stages["process_actions"]
    n_actions = proc.n_actions or 0
    graphs = {
        "observations": obs_graph,
        "process_actions": _trace_writes(program, proc, n_actions=n_actions),
        "apply_actions": _trace_writes(program, stages["apply_actions"]),
    }
    apply_graph = graphs["apply_actions"]
    unwritten = [p.name for p in program.outputs if p.name not in apply_graph.writes]
    if unwritten:
        raise StageError(
            f"{apply_graph.label} ({apply_graph.location}) never writes output(s) "
            f"{', '.join(map(repr, unwritten))}; every output needs a value at every tick. "
            "Fix: return a value for each of them from apply_actions."
        )
    for state in program.actor_declaration.state:
        writers = [g.label for g in graphs.values() if state.memory.key in g.writes]
        if writers:
            raise StageError(
                f"memory {state.memory.name!r} is the actor's recurrent state (program.actor("
                f"state=...)) but {', '.join(writers)} also writes it; the actor alone writes "
                "its state. Fix: keep the state out of the stages, or use another memory."
            )
    _check_stateful_steps(graphs)
    ordered: dict[str, StageGraph] = {s.kind: graphs[s.kind] for s in USER_STAGES}
    signature = _expected_signature(program, terms, n_obs, n_actions)
    return TracedProgram(
        program,
        ordered,
        terms,
        obs_stage.clip,
        n_obs,
        n_actions,
        signature,
        obs_stage.history,
        obs_stage.normalizer,
        fold,
        declared,
    )


def _call(stage: Stage, values: Values, *extra: Var) -> Any:
    """Run the user's function with operator overloading on; report failures at the user line."""
    begin_model_calls()  # the calls are taken by _build, with the stage's graph
    begin_library_steps()  # likewise the library steps (and the memory the stateful ones write)
    with operators():
        try:
            return stage.fn(values, *extra)
        except ExployDslError as exc:
            where = describe(exc.__traceback__, stage.location)
            raise type(exc)(f"{stage.label} at {where}: {exc}") from None
        except Exception as exc:
            where = describe(exc.__traceback__, stage.location)
            raise StageError(f"{stage.label} failed at {where}: {_explain(exc)}") from exc


_INFERENCE = re.compile(r"-- for (\w+): inputs \[(.*?)\](?: & attributes \[(.*)\])?$")


def _explain(exc: Exception) -> str:
    """One line for an exception from user code; spox shape errors say op and input types."""
    message = " ".join(str(exc).split())
    match = _INFERENCE.search(message)
    if type(exc).__name__ == "InferenceError" and match:
        reason = message.split("[ShapeInferenceError]")[-1].split("--")[0].strip().rstrip(".")
        attributes = f" with attributes {match.group(3)}" if match.group(3) else ""
        return (
            f"{match.group(1)} cannot combine its inputs ({match.group(2)}){attributes}: "
            f"{reason}. "
            "Fix: make the shapes agree (slice, reshape or expand one side)."
        )
    return f"{type(exc).__name__}: {message}"


def _trace_observations(
    program: Program, stage: Stage
) -> tuple[StageGraph, tuple[ObsTerm, ...], int, Program, ObsFold | None]:
    """The observation graph, its terms, its size, the program (with any generated history
    memory) and what is folded into the actor (``fold_into_actor``)."""
    values = Values(program, stage.label)
    result = _call(stage, values)
    items: list[Any]
    if isinstance(result, Mapping):
        items = list(result.items())
    elif isinstance(result, (list, tuple)):
        items = list(result)
    else:
        raise StageError(
            f"{stage.label} ({stage.location}) returned {type(result).__name__}; expected a list "
            "of (name, value) pairs or exploy_dsl.term(...) items, in observation order."
        )
    if not items:
        raise StageError(f"{stage.label} ({stage.location}) returned no observation terms.")
    for step, memory, _ in library_writes():
        raise StageError(
            f"{stage.label} ({stage.location}) calls {step.step} {memory.name!r}"
            f"{f' at {step.at}' if step.at else ''}, which keeps its state in memory; the "
            "observations stage writes no memory. Fix: filter in process_actions or "
            f"apply_actions, and read the filtered value here with v[{memory.name!r}]."
        )
    where = f"{stage.label} ({stage.location})"
    group: History | None = stage.history
    fold = stage.fold_into_actor
    if fold:
        _check_foldable(program, where)
    with operators():
        # Each term after its clip (and its scale, unless the scale is folded into the actor).
        entries: list[tuple[str, Var, int, Any, Any, History | None]] = []
        for item in items:
            t = item if isinstance(item, Term) else _as_term(item, stage)
            if not isinstance(t.name, str) or not _TERM_NAME.match(t.name):
                raise StageError(
                    f"{where}: term name {t.name!r} must be letters, "
                    "digits and '_' (it becomes an entry of obs_term_names)."
                )
            if any(existing[0] == t.name for existing in entries):
                raise StageError(
                    f"{where}: term {t.name!r} appears twice; "
                    "obs_term_names must be unique. Fix: rename one of them."
                )
            var = _term_var(program, t, stage)
            size = int(var.unwrap_tensor().shape[1])  # type: ignore[index,arg-type]
            clip = t.clip
            scale = _term_scale(t, size, stage)
            own = _term_history(t, group, where)
            if clip is not None:
                var = op.clip(var, op.const(np.float32(clip[0])), op.const(np.float32(clip[1])))
            if scale is not None and not fold:
                factor = (
                    np.asarray(scale, np.float32).reshape(1, -1) if len(scale) > 1 else scale[0]
                )
                var = var * factor  # type: ignore[operator]
            entries.append((t.name, var, size, scale, clip, own))
        frame_major = group if group is not None and group.layout == "frame_major" else None
        frame_size = sum(e[2] for e in entries)
        generated = []
        if frame_major is not None:
            generated.append(
                buffer_memory(FRAME_BUFFER, frame_major.length, frame_size, program.batch)
            )
        generated += [
            buffer_memory(f"history.{name}", h.length, size, program.batch)
            for name, _, size, _, _, h in entries
            if h is not None
        ]
        writes: dict[str, Var] = {}
        # Never read unless history is generated (a graph holds only what its outputs use).
        started = op.const(np.zeros((program.batch, 1), np.bool_))
        if generated:
            generated.append(started_memory(program.batch))
            program = program.with_generated_memories(generated, f"{where} history")
            values.rebind(program)
            started = values[memory_key(STARTED)]
            if program.batch_spec == 1:
                writes[memory_key(STARTED)] = op.const(np.ones((1, 1), np.bool_))
            else:  # one env's, repeated
                writes[memory_key(STARTED)] = values.expand_batch(
                    op.const(np.ones((1, 1), np.bool_))
                )
        terms: list[ObsTerm] = []
        if frame_major is not None:
            h = frame_major
            frame = (
                op.concat([e[1] for e in entries], axis=-1) if len(entries) > 1 else entries[0][1]
            )
            buffer = values[memory_key(FRAME_BUFFER)]
            obs = writes[memory_key(FRAME_BUFFER)] = push(buffer, frame, started, h, frame_size)
            offset = 0
            for name, _, size, scale, clip, _ in entries:
                spread = frame_slices(h, offset, size, frame_size)
                first = min(begin for begin, _ in spread)
                terms.append(ObsTerm(name, first, h.length * size, scale, clip, h, spread))
                offset += size
            n_obs = h.length * frame_size
        else:
            parts: list[Var] = []
            start = 0
            for name, var, size, scale, clip, own in entries:
                slices: tuple[tuple[int, int], ...] = ()
                total = size
                if own is not None:
                    key = memory_key(f"history.{name}")
                    var = writes[key] = push(values[key], var, started, own, size)
                    slices = frame_slices(own, start, size, size)
                    total = own.length * size
                parts.append(var)
                terms.append(ObsTerm(name, start, total, scale, clip, own, slices))
                start += total
            obs = op.concat(parts, axis=-1) if len(parts) > 1 else op.identity(parts[0])
            n_obs = start
        scales = _scale_vector(terms, n_obs)
        if stage.clip is not None:
            obs = _obs_clip(obs, stage.clip, scales if fold else None, where)
        normalizer = stage.normalizer
        if normalizer is not None:
            if normalizer.size != n_obs:
                raise StageError(
                    f"{where}: the normalizer has {normalizer.size} values but the observation "
                    f"has {n_obs} ({', '.join(f'{t.name}:{t.size}' for t in terms)}). Fix: use "
                    "the normalizer saved with this policy, or the observation it was trained on."
                )
            if not fold:
                obs = normalizer.apply(obs, program.batch)
        obs_fold = _fold(scales, normalizer, where) if fold else None
        outputs = {OBS: obs}
        outputs.update(_gathered_actor_inputs(program, obs, terms, stage))
        outputs.update(writes)
    graph = _build(stage, values.arguments, outputs)
    return graph, tuple(terms), n_obs, program, obs_fold


def _term_history(t: Term, group: History | None, where: str) -> History | None:
    """The term's own history, or the group's term-major one; a clash is an error."""
    try:
        own = as_history(t.history, f"term {t.name!r} history")
    except ExployDslError as exc:
        raise StageError(f"{where}: {exc}") from None
    if own is not None and own.layout != "term_major":
        raise StageError(
            f"{where}: term {t.name!r} history has layout {own.layout!r}; a term's own frames "
            "are always side by side. Fix: pass layout= to program.observations(history=...)."
        )
    if own is not None and group is not None:
        raise StageError(
            f"{where}: term {t.name!r} has its own history and observations(history=...) gives "
            "every term one (Isaac Lab lets the group's override the term's silently). Fix: "
            "keep one of them."
        )
    if group is not None and group.layout == "term_major":
        return group
    return own


def _scale_vector(terms: Sequence[ObsTerm], n_obs: int) -> np.ndarray:
    """Each element's term scale (1 without one), float64 ``[n_obs]``."""
    scales = np.ones(n_obs, np.float64)
    for t in terms:
        if t.scale is None:
            continue
        frame = np.broadcast_to(np.asarray(t.scale, np.float64), (t.frame_size,))
        for begin, end in t.frames or ((t.start, t.start + t.size),):
            scales[begin:end] = frame
    return scales


def _obs_clip(obs: Var, clip: tuple[float, float], scales: np.ndarray | None, where: str) -> Var:
    """Clip the observation; with folded scales, ``clip(s*u) = s*clip(u, lo/s, hi/s)``."""
    lo, hi = clip
    if scales is None or (scales == 1.0).all():
        return op.clip(obs, op.const(np.float32(lo)), op.const(np.float32(hi)))
    if (scales == 0).any():
        raise StageError(
            f"{where}: fold_into_actor with a term scale of 0 and a clip of the observation: "
            "the clip cannot be moved before a zero scale. Fix: drop the zero-scale term, or "
            "fold_into_actor=False."
        )
    lower = np.where(scales > 0, lo / scales, hi / scales).astype(np.float32).reshape(1, -1)
    upper = np.where(scales > 0, hi / scales, lo / scales).astype(np.float32).reshape(1, -1)
    return op.min([op.max([obs, op.const(lower)]), op.const(upper)])


def _fold(scales: np.ndarray, normalizer: Normalizer | None, where: str) -> ObsFold | None:
    """The affine map compile folds into the actor: ``a = s / d``, ``c = -mean / d``."""
    parts = [] if (scales == 1.0).all() else ["scales"]
    a, c = scales.copy(), np.zeros_like(scales)
    if normalizer is not None:
        if normalizer.clip is not None:
            raise StageError(
                f"{where}: fold_into_actor with a clipped normalizer: a clip after the "
                "normalizer is not affine, so it cannot move into the actor's first layer. "
                "Fix: drop the normalizer's clip, or fold_into_actor=False."
            )
        d = normalizer.denominator.astype(np.float64)
        a, c = a / d, -normalizer.mean.astype(np.float64) / d
        parts.append("normalizer")
    return ObsFold(a, c, tuple(parts)) if parts else None


def _check_foldable(program: Program, where: str) -> None:
    inputs = program.actor_declaration.inputs
    if inputs is not None and not (len(inputs) == 1 and inputs[0][1] == OBS):
        raise StageError(
            f"{where}: fold_into_actor needs an actor that takes the whole observation, but "
            "program.actor(inputs=...) binds it otherwise. Fix: fold_into_actor=False."
        )


def _gathered_actor_inputs(
    program: Program, obs: Var, terms: list[ObsTerm], stage: Stage
) -> dict[str, Var]:
    """For each actor input bound to observation terms: those terms' slices of ``obs``."""
    inputs = program.actor_declaration.inputs or ()
    by_name = {t.name: t for t in terms}
    gathered: dict[str, Var] = {}
    for name, binding in inputs:
        if not isinstance(binding, tuple):
            continue
        unknown = [t for t in binding if t not in by_name]
        if unknown:
            raise StageError(
                f"program.actor(inputs=...) binds actor input {name!r} to observation term(s) "
                f"{', '.join(map(repr, unknown))}, which {stage.label} ({stage.location}) does not "
                f"return; its terms are {', '.join(by_name)}. Fix: name terms it returns."
            )
        scattered = [
            t
            for t in binding
            if by_name[t].history and by_name[t].history.layout == "frame_major"  # type: ignore[union-attr]
        ]
        if scattered:
            raise StageError(
                f"program.actor(inputs=...) binds actor input {name!r} to term(s) "
                f"{', '.join(map(repr, scattered))}, whose frames are spread over obs by "
                "observations(history=History(..., layout='frame_major')). Fix: bind 'obs', or "
                "use layout='term_major'."
            )
        parts = [
            op.slice(
                obs,
                op.const(np.array([by_name[t].start], np.int64)),
                op.const(np.array([by_name[t].start + by_name[t].size], np.int64)),
                op.const(np.array([-1], np.int64)),
            )
            for t in binding
        ]
        gathered[actor_input(name)] = op.concat(parts, axis=-1) if len(parts) > 1 else parts[0]
    return gathered


def _expected_signature(
    program: Program, terms: tuple[ObsTerm, ...], n_obs: int, n_actions: int
) -> ActorSignature:
    """The actor the program calls, as its declaration says (names not yet known are '')."""
    declaration = program.actor_declaration
    batch = program.batch
    by_name = {t.name: t for t in terms}
    if declaration.inputs is None:
        inputs = [ActorPort("", (batch, n_obs), OBS)]
    else:
        inputs = []
        for name, binding in declaration.inputs:
            if isinstance(binding, Port):
                key = binding.key if isinstance(binding, Memory) else binding.name
                inputs.append(
                    ActorPort(
                        name, binding.file_shape, key, binding.dtype, batch_axis=binding.batch_axis
                    )
                )
            elif binding == OBS:
                inputs.append(ActorPort(name, (batch, n_obs), OBS))
            else:
                size = sum(by_name[t].size for t in binding)
                inputs.append(ActorPort(name, (batch, size), actor_input(name)))
    outputs = [
        ActorPort(
            declaration.actions if isinstance(declaration.actions, str) else "",
            (batch, n_actions),
            ACTIONS,
        )
    ]
    for state in declaration.state:
        memory = state.memory
        axis = memory.batch_axis
        inputs.append(ActorPort(state.input_name, memory.file_shape, memory.key, batch_axis=axis))
        outputs.append(ActorPort(state.output_name, memory.file_shape, memory.key, batch_axis=axis))
    position = declaration.actions if isinstance(declaration.actions, int) else None
    return ActorSignature(tuple(inputs), tuple(outputs), actions_position=position)


def _as_term(item: object, stage: Stage) -> Term:
    if isinstance(item, tuple) and len(item) == 2:
        return Term(item[0], item[1])  # type: ignore[arg-type]
    raise StageError(
        f"{stage.label} ({stage.location}): observation item {item!r} is not a (name, value) "
        "pair. Fix: return e.g. [('base_lin_vel', v[lin_vel] * 2.0), ...]."
    )


def _term_var(program: Program, t: Term, stage: Stage) -> Var:
    where = f"at {t.at}" if t.at else stage.location
    context = f"{stage.label} ({where}) term {t.name!r}"
    var = t.value if isinstance(t.value, Var) else None
    if var is None:
        try:
            arr = np.asarray(t.value, dtype=np.float32)
        except (TypeError, ValueError):
            raise StageError(
                f"{context} is {type(t.value).__name__}; expected a Var or an array."
            ) from None
        var = constant_like(np.atleast_2d(arr), np.dtype(np.float32), context)
    tensor = var.unwrap_tensor()
    if np.dtype(tensor.dtype) != np.float32:
        raise StageError(
            f"{context} has dtype {np.dtype(tensor.dtype)}; observation terms are float32. "
            "Fix: op.cast(x, to=np.float32)."
        )
    shape = tensor.shape
    batch: int | str = BATCH_DIM if program.dynamic_batch else program.batch
    if (
        shape is None
        or len(shape) != 2
        # At a batch other than 1, an unknown or symbolic batch dimension (a model's or
        # script's own) is checked by running the file against the robot's, env by env.
        or not (shape[0] == batch or (program.batch_spec != 1 and not isinstance(shape[0], int)))
        or not isinstance(shape[1], int)
    ):
        raise StageError(
            f"{context} has shape {_fmt_shape(shape)}; "
            f"expected [{batch}, n] with a static n. {_reshape_fix(program)}"
        )
    return var


def _reshape_fix(program: Program) -> str:
    """How to fix a value of the wrong shape; at a batch other than 1, keep the batch axis."""
    if program.batch_spec == 1:
        return "Fix: reshape the term, e.g. op.reshape(x, op.const(np.array([1, -1])))."
    return (
        f"The program is traced at batch {program.batch_spec!r}: a shape written for batch 1 "
        "(a reshape to [1, ...], a slice or reduction over axis 0) mixes or drops envs. Fix: "
        "keep the batch axis first and never index it, e.g. "
        "op.reshape(x, op.const(np.array([-1, n])))."
    )


def _term_scale(t: Term, size: int, stage: Stage) -> tuple[float, ...] | None:
    if t.scale is None:
        return None
    scale = check_numbers(t.scale, f"term {t.name!r} scale", error=StageError)
    if len(scale) not in (1, size):
        raise StageError(
            f"{stage.label} ({stage.location}): term {t.name!r} scale has {len(scale)} entries; "
            f"expected 1 or {size} (one factor per element)."
        )
    return scale


# What the kinds of value a stage may write (contract/_tick.py) mean as declared ports.
_PORT_KINDS: dict[str, type[Port]] = {"memory": Memory, "output": Output}


def _trace_writes(program: Program, stage: Stage, n_actions: int | None = None) -> StageGraph:
    allowed = tuple(_PORT_KINDS[w] for w in spec(stage.kind).writes if w in _PORT_KINDS)
    values = Values(program, stage.label)
    extra: list[Var] = []
    if n_actions is not None:
        batch: int | str = BATCH_DIM if program.dynamic_batch else program.batch
        extra.append(argument(Tensor(np.float32, (batch, n_actions))))
    result = _call(stage, values, *extra)
    if result is None:  # only what library steps write (joint_position_action, filters)
        result = {}
    if not isinstance(result, Mapping):
        raise StageError(
            f"{stage.label} ({stage.location}) returned {type(result).__name__}; expected a dict "
            "mapping declared ports (or their names) to values."
        )
    allowed_names = " and ".join(a.kind for a in allowed)
    outputs: dict[str, Var] = {}
    with operators():
        for key, value in result.items():
            if isinstance(getattr(key, "memory", None), Memory) and not isinstance(key, Port):
                raise StageError(
                    f"{stage.label} ({stage.location}) returns the {type(key).__name__} of memory "
                    f"{key.memory.name!r} as a key: the value would be stored as is, without "
                    f"what the step computes (its scale and offset, its filter). Fix: call it, "
                    "e.g. joint_pos(v, actions), and leave it out of the returned dict."
                )
            port = resolve(program, key, f"{stage.label} ({stage.location}) writes")
            if not isinstance(port, allowed):
                fix = (
                    "outputs are written by apply_actions"
                    if isinstance(port, Output)
                    else "inputs come from the robot and cannot be written"
                    if isinstance(port, Input)
                    else "declare it as memory"
                )
                raise StageError(
                    f"{stage.label} ({stage.location}) writes {port.kind} {port.name!r}; "
                    f"this stage may only write {allowed_names}. Fix: {fix}."
                )
            name = graph_name(port)
            if name in outputs:
                raise StageError(
                    f"{stage.label} ({stage.location}) writes {port.name!r} twice "
                    "(by object and by name?)."
                )
            outputs[name] = _written_var(values, port, value, stage)
        for step, held, var in library_writes():
            memory = resolve(program, held, f"{stage.label} ({stage.location}) {step.step}")
            name = graph_name(memory)
            if name in outputs:
                written = "twice" if step.step in ("low_pass", "rate_limit") else "again"
                raise StageError(
                    f"{stage.label} ({stage.location}) writes memory {memory.name!r} {written}: "
                    f"{step.step} {memory.name!r}{f' at {step.at}' if step.at else ''} keeps its "
                    "state there, so the stage may neither return it nor call that filter "
                    "twice. Fix: call the filter once, and return other memory."
                )
            outputs[name] = _written_var(values, memory, var, stage)
    if not outputs and stage.kind == "process_actions":
        raise StageError(
            f"{stage.label} ({stage.location}) writes no memory, so the actor's actions are "
            "lost before apply_actions runs. Fix: return e.g. {target: DEFAULT_POS + 0.25 * "
            "actions} with a memory port apply_actions reads."
        )
    if not outputs and stage.kind == "apply_actions":
        never = ", ".join(repr(p.name) for p in program.outputs)
        raise StageError(
            f"{stage.label} ({stage.location}) returned no values, so output(s) {never} "
            "are never written; every output needs a value at every tick. Fix: return a value "
            "for each of them, e.g. {targets.pos: v[target], ...}."
        )
    args = dict(values.arguments)
    if n_actions is not None:
        args[ACTIONS] = extra[0]
    return _build(stage, args, outputs)


def _written_var(values: Values, port: Port, value: object, stage: Stage) -> Var:
    context = f"{stage.label} ({stage.location}) write to {port.name!r}"
    program = values.program
    if not isinstance(value, Var):
        arr = np.asarray(value) if not isinstance(value, (bool, int, float)) else value
        try:
            broadcast = np.broadcast_to(arr, port.file_shape)
        except ValueError:
            raise StageError(
                f"{context}: constant of shape {list(np.shape(arr))} does not fit "
                f"{list(port.wire_shape)}."
            ) from None
        if program.batch_spec != 1:
            # One env's constant, repeated: a batched file does not hold N copies of it.
            one = with_batch(port.shape, 1, port.batch_axis)
            try:
                single = np.broadcast_to(arr, one)
            except ValueError:
                single = None  # a value per env: kept as it is
            if single is not None:
                constant = constant_like(np.array(single), port.np_dtype, context)
                return values.expand_batch(constant, port.batch_axis)
        return constant_like(np.array(broadcast), port.np_dtype, context)
    tensor = value.unwrap_tensor()
    if np.dtype(tensor.dtype) != port.np_dtype:
        np_name = "bool_" if port.dtype == "bool" else port.dtype
        raise StageError(
            f"{context}: value has dtype {np.dtype(tensor.dtype)}, the {port.kind} is "
            f"{port.dtype}. Fix: op.cast(x, to=np.{np_name})."
        )
    shape = tensor.shape
    expected = port.wire_shape
    if (
        shape is None
        or len(shape) != len(expected)
        or any(isinstance(d, int) and d != e for d, e in zip(shape, expected, strict=True))
        or (program.batch_spec != 1 and not port.fits(shape))
    ):
        fix = (
            "Fix: compute a value of exactly that shape (op.expand / op.reshape / slicing)."
            if program.batch_spec == 1
            else _reshape_fix(program)
        )
        raise StageError(
            f"{context}: value has shape {_fmt_shape(shape)}, the {port.kind} is declared "
            f"{list(expected)}. {fix}"
        )
    return value


def _build(
    stage: Stage,
    args: dict[str, Var],
    outputs: dict[str, Var],
) -> StageGraph:
    # Identity on every output keeps names distinct when one Var is written to two ports or
    # is an argument passed straight through.
    wrapped = {stage_output(name): op.identity(var) for name, var in outputs.items()}
    try:
        model = spox.build(inputs=args, outputs=wrapped)
    except Exception as exc:
        raise StageError(
            f"{stage.label} ({stage.location}) cannot be built: {' '.join(str(exc).split())}. "
            "A stage may only use values read from `v` (and `actions`) plus constants; a Var "
            "kept from another stage or a previous trace cannot be captured."
        ) from exc
    model.graph.name = stage.kind
    return StageGraph(
        stage.kind,
        stage.label,
        stage.location,
        model,
        tuple(args),
        tuple(outputs),
        models=end_model_calls(),
        steps=end_library_steps(),
    )


def _check_stateful_steps(graphs: Mapping[str, StageGraph]) -> None:
    """A filter's state is updated by one stage: two would update it twice a policy step."""
    users: dict[str, StageGraph] = {}
    for graph in graphs.values():
        for step in graph.steps:
            for memory, _ in step.writes:
                first = users.setdefault(memory.name, graph)
                if first is not graph:
                    raise StageError(
                        f"{step.step} {memory.name!r} is called in {first.label} and in "
                        f"{graph.label}{f' (at {step.at})' if step.at else ''}; its state would "
                        "be updated twice per policy step. Fix: call it in one stage, and read "
                        f"its last value elsewhere with v[{memory.name!r}]."
                    )


def _fmt_shape(shape: object) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"  # type: ignore[attr-defined]
