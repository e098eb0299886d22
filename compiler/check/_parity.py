"""Parity check: the reference interpreter and the compiled file, same inputs, tick by tick."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import onnx
from tqdm import tqdm

from compiler.build._actor import Exporter, exporter_of_source, prepare_actor
from compiler.build._compile import DEFAULT_OPSET
from compiler.build._fold import fold_observation
from compiler.build._reproducible import weights_sha256
from compiler.check._actor_check import DEFAULT_SAMPLES, check_actor
from compiler.check._compare import SignalComparator, SignalErrors, Tolerance, first_divergence
from compiler.check._element_names import ElementNames
from compiler.check._file_vs_program import Mismatch, compare_file_with_program
from compiler.check._inputs import InputStream, check_seed, random_stream
from compiler.check._report import Diagnosis, Divergence, OutputReport, ParityReport, RunReport
from compiler.check._tolerances import ToleranceSpec, check_tolerance, resolve
from exploy_dsl import (
    Actor,
    ActorError,
    ExployDslError,
    FileContract,
    Program,
    ReferenceInterpreter,
    Runtime,
    TracedProgram,
    UsageError,
    load_model,
    read_contract,
    trace,
)
from exploy_dsl._checks import check_int
from exploy_dsl.contract._batch import DYNAMIC
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._wires import ACTIONS, in_to_out, is_memory, memory_name, memory_out
from exploy_dsl.reference._interpreter import reference_actor

DEFAULT_STEPS = 300
DEFAULT_DYNAMIC_ENVS = 4  # the envs a dynamic-batch file is checked with
DEFAULT_TOLERANCE = 1e-5
# Our runtime's first call after a reset is k = 0; exploy's C++ controller's is k = 1.
START_CONVENTIONS = (0, 1)


class ProgressBar(Protocol):
    """What check_parity advances by ticks run, e.g. a ``tqdm`` bar (closed when done)."""

    def update(self, n: int = 1) -> object: ...
    def close(self) -> None: ...


_FIRST_TICKS = "e.g. first_ticks=(0, 1) (0: our runtime's first call, 1: exploy's controller's)"


def check_parity(
    file: str | os.PathLike[str] | bytes | onnx.ModelProto,
    program: Program | TracedProgram,
    actor: object,
    *,
    steps: int | None = None,
    seed: int = 0,
    atol: float = DEFAULT_TOLERANCE,
    rtol: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, ToleranceSpec] | None = None,
    inputs: InputStream | None = None,
    first_ticks: Sequence[int] = START_CONVENTIONS,
    keep_history: bool = False,
    progress: ProgressBar | None = None,
    actor_samples: int = DEFAULT_SAMPLES,
    batch: int | None = None,
) -> ParityReport:
    """Check that ``file`` does what ``program`` with ``actor`` says, tick by tick.

    Feeds the reference interpreter (stages in NumPy, the actor as its torch module when it has
    one) and the file in onnxruntime (``exploy_dsl.Runtime``, memory initial values from the
    file) the same stream: ``inputs``, or ``steps`` (default 300) seeded random ticks with
    random episode lengths. Both sides reset together. Every output and memory is compared at
    every tick, once per start convention in ``first_ticks``, within ``atol + rtol * |ref|``;
    ``tolerances`` overrides that per output: ``{"output.joint_targets.*.effort": (atol,
    rtol)}`` (a wire name or a glob; an exact name wins, else the last matching glob).

    A third side tells the actor from the stages: the program's stages fed the file's own
    ``actions`` (exact stage parity), and the given actor run on those observations against
    the file's ``actions``. When both hold, end-to-end differences beyond tolerance are the
    actor's float32 rounding amplified downstream (e.g. by high PD gains) and do not fail.

    Also compares the file's stored wires, initial values, rates and metadata with the
    program, and the exported actor with its torch module. ``actor`` is what
    ``compile_program`` takes, or a ``compiler.Actor``.

    A batched file (``compile --batch``) is checked at its batch, a dynamic-batch one at
    ``batch`` envs (default 4), every env fed its own inputs: the program is traced at that
    batch (``Program.with_batch``), so the program given is the one the robot file is
    compiled from.
    """
    tolerance = Tolerance(check_tolerance("atol", atol), check_tolerance("rtol", rtol))
    seed = check_seed(seed)
    label = repr(str(file)) if isinstance(file, (str, os.PathLike)) else "model"
    model = load_model(file)
    contract = read_contract(model, label)
    envs = run_batch(contract, batch)
    traced = at_file_batch(program, envs)
    stream = _stream(traced.program, inputs, steps, seed)
    if not first_ticks:
        raise UsageError(f"first_ticks must name at least one start tick, got {first_ticks!r}.")
    for k in first_ticks:
        check_int(k, "each of first_ticks", minimum=0, fix=_FIRST_TICKS, error=UsageError)
    traced, loaded = prepare_actor(  # as compile_program prepared them for this file
        actor,
        traced,
        opset=contract.opset,
        exporter=recorded_exporter(contract),
        stage_opset=DEFAULT_OPSET,
    )
    outputs = _output_names(traced)
    per_output = resolve(tolerance, tolerances, outputs)
    # The exported actor against its torch module, before the observation is folded into it.
    actor_report = check_actor(loaded, per_output["actions"], samples=actor_samples, seed=seed)
    loaded = fold_observation(traced, loaded)
    # A dynamic-batch file stores one env's shapes and initial values: compared with the
    # program at that batch; it runs at ``envs``.
    stored = (
        dataclasses.replace(traced, program=traced.program.with_batch(DYNAMIC))
        if contract.batch == DYNAMIC
        else traced
    )
    static = compare_file_with_program(contract, stored, loaded)
    names = ElementNames(traced, contract.metadata)
    skipped = _why_not_run(static, contract)
    bar: ProgressBar = progress if progress is not None else tqdm(disable=True)
    runs = []
    for first_tick in first_ticks:
        if skipped is not None:
            runs.append(RunReport(first_tick, stream.ticks, (), None, skipped))
            continue
        runs.append(
            _run(
                model,
                traced,
                loaded,
                stream,
                first_tick,
                per_output,
                names,
                keep_history,
                bar,
                envs if contract.batch == DYNAMIC else None,
            )
        )
    bar.close()
    return ParityReport(
        label,
        repr(traced.program.name),
        stream,
        tolerance,
        static,
        actor_report,
        tuple(runs),
        _actor_notes(contract, loaded),
        per_output,
        envs,
    )


def _actor_notes(contract: FileContract, actor: Actor) -> tuple[str, ...]:
    """A hint when the actor given to check is not the one whose weights the file records."""
    try:
        recorded = contract.json_metadata("exploy_dsl.hashes").get("actor_weights")
    except (ExployDslError, AttributeError):
        return ()
    given = weights_sha256(actor.model)
    if not isinstance(recorded, str) or recorded == given:
        return ()
    return (
        f"the actor given to check ({actor.source}, weights sha256 {given[:12]}...) is not the "
        f"one the file was compiled with (sha256 {recorded[:12]}...); if parity fails at the "
        "first policy step, pass the actor the file was compiled with: --actor PATH",
    )


def run_batch(contract: FileContract, batch: int | None, what: str = "batch") -> int:
    """The envs a check runs: a file's own batch, or ``batch`` (default 4) when it is
    dynamic; another batch for a file with a fixed one is a UsageError."""
    if contract.batch == DYNAMIC and batch is None:
        batch = DEFAULT_DYNAMIC_ENVS
    return contract.at_batch(batch, what).envs


def at_file_batch(program: Program | TracedProgram, envs: int) -> TracedProgram:
    """``program`` traced at ``envs`` envs (as it is, when it has that batch already)."""
    if isinstance(program, Program) and program.batch_spec != envs:
        program = program.with_batch(envs)
    traced = program if isinstance(program, TracedProgram) else trace(program)
    return traced.at_batch(envs)


def recorded_exporter(contract: FileContract) -> Exporter:
    """The torch exporter the file was compiled with (its ``exploy_dsl.actor`` source)."""
    recorded = decode(contract.metadata.get("exploy_dsl.actor", "{}"))
    source = recorded.get("source") if isinstance(recorded, dict) else None
    return exporter_of_source(source if isinstance(source, str) else "")


def _output_names(traced: TracedProgram) -> list[str]:
    """Every signal the check compares, in file order (what tolerance patterns may name)."""
    return list(traced.output_shapes())


def _stream(
    program: Program, inputs: InputStream | None, steps: int | None, seed: int
) -> InputStream:
    if steps is not None:
        steps = check_int(steps, "steps", fix="e.g. steps=300", error=UsageError)
    if inputs is None:
        return random_stream(program, steps if steps is not None else DEFAULT_STEPS, seed)
    return inputs.head(steps) if steps is not None else inputs


def _why_not_run(static: Sequence[Mismatch], contract: FileContract) -> str | None:
    inputs = [m.name for m in static if m.what == "input"]
    if inputs:
        return (
            f"the file's inputs differ from the program's ({', '.join(inputs)}), so the two "
            "cannot be fed the same stream"
        )
    non_finite = [
        wire
        for wire, value in contract.initial_values.items()
        if value.dtype.kind == "f" and not np.isfinite(value).all()
    ]
    if non_finite:
        return (
            f"the file's memory initial value(s) {', '.join(non_finite)} hold NaN or infinity, "
            "so no runtime loads it"
        )
    return None


class _FileActions:
    """The actor of the replay side: returns the file's own actor outputs of the current tick.

    Those are the file's ``actions`` and, for a recurrent actor, the state it wrote to memory
    (``memory.<name>.out``). It also runs the given actor on the inputs the program's stages
    computed, so the actor is compared with the file's on the same input, apart from the
    stages. Called positionally, in the order of the program's actor signature.
    """

    def __init__(self, actor: Actor, traced: TracedProgram) -> None:
        self._actor, own = reference_actor(actor, traced.actor_signature)
        self._own_inputs = [p.name for p in own.inputs]
        self._own_actions = own.actions.name
        self._binds = [p.binds for p in traced.actor_signature.outputs]
        self.compiled: Mapping[str, np.ndarray] = {}
        self.own: np.ndarray | None = None

    def __call__(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...] | np.ndarray:
        self.own = self._actor(dict(zip(self._own_inputs, inputs, strict=True)))[self._own_actions]
        values = tuple(
            self.compiled[ACTIONS if b == ACTIONS else memory_out_of(b)] for b in self._binds
        )
        return values if len(values) > 1 else values[0]


def memory_out_of(binds: str) -> str:
    """The file output holding what the actor writes to ``memory.<name>``."""
    if not is_memory(binds):
        raise ActorError(f"the actor writes {binds!r}, which is neither actions nor memory.")
    return memory_out(memory_name(binds))


def _run(
    model: onnx.ModelProto,
    traced: TracedProgram,
    actor: Actor,
    stream: InputStream,
    first_tick: int,
    tolerances: Mapping[str, Tolerance],
    names: ElementNames,
    keep_history: bool,
    progress: ProgressBar,
    envs: int | None = None,
) -> RunReport:
    runtime = Runtime(model, first_tick=first_tick, batch=envs)
    reference = ReferenceInterpreter(traced, actor, first_tick=first_tick)
    shapes = _shared_outputs(runtime, reference)
    sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
    comparator = SignalComparator(sizes, tolerances, keep_history=keep_history)
    # The replay needs the file's actor outputs in the program's shapes; else only end to end.
    actor_writes = [b for b in (p.binds for p in traced.actor_signature.outputs) if b != ACTIONS]
    replayable = ACTIONS in shapes and all(memory_out_of(b) in shapes for b in actor_writes)
    file_actions = _FileActions(actor, traced) if replayable else None
    replay = (
        ReferenceInterpreter(traced, file_actions, first_tick=first_tick)
        if file_actions is not None
        else None
    )
    stages = SignalComparator(sizes, tolerances)
    actor_side = SignalComparator({"actions": sizes.get("actions", 0)}, tolerances)
    policy_ticks: list[int] = []
    episode = np.cumsum(stream.reset)
    since_reset = np.zeros(stream.ticks, np.int64)
    finite = finite_since_reset(stream)
    actions_finite = True
    for tick in range(stream.ticks):
        if stream.reset[tick]:
            runtime.reset()
            reference.reset()
            if replay is not None:
                replay.reset()
        else:
            since_reset[tick] = since_reset[tick - 1] + 1
        feeds = stream.at(tick)
        # The reference first: when a stage cannot run on these inputs, its error names the
        # stage and the user's line, where onnxruntime's would name a node of the file.
        expected = reference.step(feeds)
        compiled = runtime.step(feeds)
        comparator.add(expected, compiled, finite_inputs=bool(finite[tick]))
        if replay is not None and file_actions is not None:
            file_actions.compiled, file_actions.own = compiled, None
            # The stages are fed the file's actions: a NaN there is the actor's, not theirs.
            actions_finite = bool(np.isfinite(compiled["actions"]).all()) and (
                actions_finite or bool(stream.reset[tick]) or tick == 0
            )
            stages.add(
                replay.step(feeds), compiled, finite_inputs=bool(finite[tick]) and actions_finite
            )
            if file_actions.own is not None:
                actor_side.add(
                    {"actions": file_actions.own},
                    {"actions": compiled["actions"]},
                    finite_inputs=bool(finite[tick]),
                )
                policy_ticks.append(tick)
        if tick % 64 == 63:
            progress.update(64)
    progress.update(stream.ticks % 64)
    step_count = since_reset + first_tick
    errors = comparator.finish()
    first = _divergence(errors, names, episode, step_count, traced)
    diagnosis = None
    if replay is not None:
        stage_errors = stages.finish()
        (actor_errors,) = actor_side.finish()
        actor_errors = _at_ticks(actor_errors, policy_ticks)
        diagnosis = Diagnosis(
            _output_reports(stage_errors, names),
            _divergence(stage_errors, names, episode, step_count, traced),
            len(policy_ticks),
            actor_errors.max_abs,
            _divergence((actor_errors,), names, episode, step_count, traced),
        )
    return RunReport(
        first_tick,
        stream.ticks,
        _output_reports(errors, names),
        first,
        None,
        comparator.history,
        names,
        diagnosis,
    )


def finite_since_reset(stream: InputStream) -> np.ndarray:
    """Per tick: every float input finite at this tick and at every tick since the reset.

    A NaN fed in stays in memory; only after the next reset is a NaN again a finding.
    """
    finite = np.ones(stream.ticks, bool)
    for value in stream.inputs.values():
        if value.dtype.kind == "f":
            finite &= np.isfinite(value.reshape(stream.ticks, -1)).all(axis=1)
    result = np.empty(stream.ticks, bool)
    ok = True
    for tick in range(stream.ticks):
        ok = bool(finite[tick]) and (ok or bool(stream.reset[tick]) or tick == 0)
        result[tick] = ok
    return result


def _at_ticks(errors: SignalErrors, ticks: Sequence[int]) -> SignalErrors:
    """Errors counted over policy steps, their sample indices turned back into ticks."""
    if not ticks:
        return errors
    first = None if errors.first_tick is None else ticks[errors.first_tick]
    return dataclasses.replace(errors, worst_tick=ticks[errors.worst_tick], first_tick=first)


def _output_reports(
    errors: Sequence[SignalErrors], names: ElementNames
) -> tuple[OutputReport, ...]:
    return tuple(
        OutputReport(
            e.name,
            e.max_abs,
            e.max_rel,
            e.worst_tick,
            names.label(e.name, e.worst_element),
            e.bad_ticks,
        )
        for e in errors
    )


def _shared_outputs(
    runtime: Runtime, reference: ReferenceInterpreter
) -> dict[str, tuple[int, ...]]:
    """Outputs both sides produce with the same shape (any other difference is static)."""
    contract = runtime.contract
    file = {w.name: w.shape for w in (contract.actions, contract.obs, *contract.outputs)}
    file.update({in_to_out(w.name): w.shape for w in contract.memory})
    declared = reference.traced.output_shapes()
    return {name: shape for name, shape in declared.items() if file.get(name) == shape}


def _divergence(
    errors: Sequence[SignalErrors],
    names: ElementNames,
    episode: np.ndarray,
    step_count: np.ndarray,
    traced: TracedProgram,
) -> Divergence | None:
    at_first = first_divergence(errors)
    if not at_first:
        return None
    head = at_first[0]
    tick = int(head.first_tick or 0)
    k = int(step_count[tick])
    return Divergence(
        tick,
        int(episode[tick]),
        k,
        k % traced.program.decimation == 0,
        head.name,
        names.label(head.name, head.first_element),
        head.first_reference,
        head.first_compiled,
        tuple(e.name for e in at_first[1:]),
    )
