"""Parity check: the reference interpreter and the compiled file, same inputs, tick by tick."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import onnx

from compiler.build._actor import Exporter, exporter_of_source, prepare_actor
from compiler.build._compile import DEFAULT_OPSET
from compiler.build._reproducible import weights_sha256
from compiler.check._actor_check import DEFAULT_SAMPLES, check_actor
from compiler.check._compare import SignalComparator, SignalErrors, Tolerance, first_divergence
from compiler.check._element_names import ElementNames
from compiler.check._file_vs_program import Mismatch, compare_file_with_program
from compiler.check._inputs import InputStream, random_stream
from compiler.check._progress import Progress
from compiler.check._report import Divergence, OutputReport, ParityReport, RunReport
from exploy_dsl import (
    Actor,
    ExployDslError,
    FileContract,
    Program,
    ReferenceInterpreter,
    Runtime,
    TracedProgram,
    load_model,
    read_contract,
    trace,
)
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._wires import in_to_out

DEFAULT_STEPS = 300
DEFAULT_TOLERANCE = 1e-5
# Our runtime's first call after a reset is k = 0; exploy's C++ controller's is k = 1.
START_CONVENTIONS = (0, 1)


def check_parity(
    file: str | os.PathLike[str] | bytes | onnx.ModelProto,
    program: Program | TracedProgram,
    actor: object,
    *,
    steps: int | None = None,
    seed: int = 0,
    atol: float = DEFAULT_TOLERANCE,
    rtol: float = DEFAULT_TOLERANCE,
    inputs: InputStream | None = None,
    first_ticks: Sequence[int] = START_CONVENTIONS,
    keep_history: bool = False,
    progress: Progress | None = None,
    actor_samples: int = DEFAULT_SAMPLES,
) -> ParityReport:
    """Check that ``file`` does what ``program`` with ``actor`` says, tick by tick.

    Feeds the reference interpreter (stages in NumPy, the actor as its torch module when it has
    one) and the file in onnxruntime (``exploy_dsl.Runtime``, memory initial values from the
    file) the same stream: ``inputs``, or ``steps`` (default 300) seeded random ticks with
    random episode lengths. Both sides reset together. Every output and memory is compared at
    every tick, once per start convention in ``first_ticks``. Also compares the file's stored
    wires, initial values, rates and metadata with the program, and the exported actor with
    its torch module. ``actor`` is what ``compile_program`` takes, or a ``compiler.Actor``.
    """
    tolerance = _tolerance(atol, rtol)
    label = repr(str(file)) if isinstance(file, (str, os.PathLike)) else "model"
    model = load_model(file)
    contract = read_contract(model, label)
    traced = program if isinstance(program, TracedProgram) else trace(program)
    stream = _stream(traced.program, inputs, steps, seed)
    if not first_ticks or any(
        isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in first_ticks
    ):
        raise ExployDslError(
            f"first_ticks must be ticks >= 0 (0: our runtime, 1: exploy's controller), got "
            f"{first_ticks!r}."
        )
    traced, loaded = prepare_actor(  # as compile_program prepared them for this file
        actor,
        traced,
        opset=contract.opset,
        exporter=recorded_exporter(contract),
        stage_opset=DEFAULT_OPSET,
    )
    static = compare_file_with_program(contract, traced, loaded)
    actor_report = check_actor(loaded, tolerance, samples=actor_samples, seed=seed)
    names = ElementNames(traced, contract.metadata)
    skipped = _why_not_run(static)
    bar = progress or Progress(0, "", enabled=False)
    runs = []
    for first_tick in first_ticks:
        if skipped is not None:
            runs.append(RunReport(first_tick, stream.ticks, (), None, skipped))
            continue
        runs.append(
            _run(model, traced, loaded, stream, first_tick, tolerance, names, keep_history, bar)
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


def recorded_exporter(contract: FileContract) -> Exporter:
    """The torch exporter the file was compiled with (its ``exploy_dsl.actor`` source)."""
    recorded = decode(contract.metadata.get("exploy_dsl.actor", "{}"))
    source = recorded.get("source") if isinstance(recorded, dict) else None
    return exporter_of_source(source if isinstance(source, str) else "")


def _tolerance(atol: float, rtol: float) -> Tolerance:
    for name, value in (("atol", atol), ("rtol", rtol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ExployDslError(
                f"{name} must be a number >= 0, got {value!r}. Fix: e.g. {name}=1e-5."
            )
        if not np.isfinite(value):
            raise ExployDslError(f"{name} must be finite, got {value!r}.")
    return Tolerance(float(atol), float(rtol))


def _stream(
    program: Program, inputs: InputStream | None, steps: int | None, seed: int
) -> InputStream:
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ExployDslError(f"steps must be an int >= 1, got {steps!r}.")
    if inputs is None:
        return random_stream(program, steps if steps is not None else DEFAULT_STEPS, seed)
    return inputs.head(steps) if steps is not None else inputs


def _why_not_run(static: Sequence[Mismatch]) -> str | None:
    inputs = [m.name for m in static if m.what == "input"]
    if inputs:
        return (
            f"the file's inputs differ from the program's ({', '.join(inputs)}), so the two "
            "cannot be fed the same stream"
        )
    return None


def _run(
    model: onnx.ModelProto,
    traced: TracedProgram,
    actor: Actor,
    stream: InputStream,
    first_tick: int,
    tolerance: Tolerance,
    names: ElementNames,
    keep_history: bool,
    progress: Progress,
) -> RunReport:
    runtime = Runtime(model, first_tick=first_tick)
    reference = ReferenceInterpreter(traced, actor, first_tick=first_tick)
    shapes = _shared_outputs(runtime, reference)
    comparator = SignalComparator(
        {name: int(np.prod(shape)) for name, shape in shapes.items()},
        tolerance,
        keep_history=keep_history,
    )
    episode = np.cumsum(stream.reset)
    since_reset = np.zeros(stream.ticks, np.int64)
    for tick in range(stream.ticks):
        if stream.reset[tick]:
            runtime.reset()
            reference.reset()
        else:
            since_reset[tick] = since_reset[tick - 1] + 1
        feeds = stream.at(tick)
        comparator.add(reference.step(feeds), runtime.step(feeds))
        if tick % 64 == 63:
            progress.update(64)
    progress.update(stream.ticks % 64)
    errors = comparator.finish()
    first = _divergence(errors, names, episode, since_reset + first_tick, traced)
    outputs = tuple(
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
    return RunReport(first_tick, stream.ticks, outputs, first, None, comparator.history, names)


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
