"""A batched build for evaluation: the actor at the batch, and every env checked alone.

``compile --batch N|dynamic`` traces the same program with a batch dimension on every port.
Two things could make such a file silently wrong, and both are checked here before it is
written: an ONNX actor exported for batch 1 (its batch is freed only when that runs, env by
env, as the original does), and a stage that assumes batch 1 or mixes envs (a reduction or a
slice over axis 0): the batched file, fed different inputs in every env, must give each env
what the batch-1 file gives that env alone.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from exploy_dsl import ActorError, ExployDslError, Program, StageError, TracedProgram
from exploy_dsl.authoring._actor import (
    ActorPort,
    ActorSignature,
    bind_signature,
    describe_binding,
)
from exploy_dsl.contract._batch import BATCH_DIM, DYNAMIC, Batch
from exploy_dsl.contract._tick import SCHEDULE
from exploy_dsl.contract._wires import ACTIONS, OBS, STEP_COUNT, in_to_out

if TYPE_CHECKING:
    import onnxruntime as ort

    from compiler.check._element_names import ElementNames

# A dynamic-batch file is run at these batches; the examples a torch module is exported
# from have 2 envs (torch specializes a dimension of size 1).
DYNAMIC_BATCHES = (1, 3)
EXAMPLE_ENVS = 2
# Envs compared with the batch-1 file: the first, the last and a few between.
COMPARED_ENVS = 6
ATOL = RTOL = 1e-4  # kernels differ by batch (GEMV against GEMM): float32 rounding only
_REEXPORT = (
    "Fix: re-export the actor with a dynamic batch axis, e.g. torch.onnx.export(..., "
    "dynamic_axes={'obs': {0: 'batch'}, 'actions': {0: 'batch'}}) (dynamo: dynamic_shapes="
    "({0: torch.export.Dim('batch')},)), or pass the torch module, which is exported at the batch"
)


def example_shape(shape: tuple[int, ...], axis: int, dynamic: bool) -> tuple[int, ...]:
    """The shape of the examples a torch module is run and exported on."""
    if not dynamic:
        return shape
    return (*shape[:axis], EXAMPLE_ENVS, *shape[axis + 1 :])


def _at_batch(shape: tuple[int, ...], axis: int, batch: int) -> tuple[int, ...]:
    return (*shape[:axis], batch, *shape[axis + 1 :])


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [
        int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value.type.tensor_type.shape.dim
    ]


def fit_actor_batch(
    model: onnx.ModelProto, expected: ActorSignature, batch: Batch, source: str
) -> onnx.ModelProto:
    """The ONNX actor as the file runs it at ``batch``: unchanged when its batch dimensions
    are symbolic (or already ``batch``); with a fixed batch (an export for batch 1), its
    inputs and outputs get a symbolic batch when the graph then runs env by env as the
    original does on each env alone; otherwise an ActorError says how to re-export it."""
    if batch == 1:
        return model
    try:  # an actor of this batch (or a symbolic one)
        bound = bind_signature(expected, model, source)
    except ActorError as exc:
        one = ActorSignature(
            tuple(_one_env(p) for p in expected.inputs),
            tuple(_one_env(p) for p in expected.outputs),
            expected.dropped,
            expected.actions_position,
        )
        try:  # an actor exported for batch 1, the robot's
            bound = bind_signature(one, model, source)
        except ActorError:
            raise exc from None
    values = {v.name: v for v in (*model.graph.input, *model.graph.output)}
    fixed = []
    for port in (*bound.inputs, *bound.outputs):
        dims = _dims(values[port.name])
        axis = port.batch_axis
        if axis >= len(dims):
            raise ActorError(
                f"actor {source} {port.name!r} has shape {dims}, without the batch axis "
                f"{axis} that {describe_binding(port.binds)} has. {_REEXPORT}."
            )
        if isinstance(dims[axis], int) and (batch == DYNAMIC or dims[axis] != batch):
            fixed.append(f"{port.name!r} {dims}")
    if not fixed:
        return model
    freed = copy.deepcopy(model)
    for port in (*bound.inputs, *bound.outputs):
        value = next(v for v in (*freed.graph.input, *freed.graph.output) if v.name == port.name)
        dim = value.type.tensor_type.shape.dim[port.batch_axis]
        dim.Clear()
        dim.dim_param = BATCH_DIM
    del freed.graph.value_info[:]  # intermediate shapes of the fixed batch
    what = f"actor {source} has a fixed batch ({', '.join(fixed)})"
    for envs in (batch,) if batch != DYNAMIC else DYNAMIC_BATCHES[1:]:
        _same_per_env(model, freed, bound, envs, what)
    return freed


def _one_env(port: ActorPort) -> ActorPort:
    return dataclasses.replace(port, shape=_at_batch(port.shape, port.batch_axis, 1))


def _same_per_env(
    original: onnx.ModelProto,
    freed: onnx.ModelProto,
    signature: ActorSignature,
    envs: int,
    what: str,
) -> None:
    """``freed`` at ``envs`` envs gives each env what ``original`` gives it alone."""
    from exploy_dsl.runtime._session import open_session, ort_message

    rng = np.random.default_rng(0)
    feeds = {}
    for port in signature.inputs:
        shape = _at_batch(port.actor_shape or port.shape, port.batch_axis, envs)
        if port.dtype == "bool":
            feeds[port.name] = rng.random(shape) < 0.5
        elif port.dtype == "int32":
            feeds[port.name] = rng.integers(0, 2, shape).astype(np.int32)
        else:
            feeds[port.name] = rng.normal(size=shape).astype(np.float32)
    names = [p.name for p in signature.outputs]
    try:
        batched = open_session(freed.SerializeToString()).run(names, feeds)
        alone = open_session(original.SerializeToString())
        for env in _envs(envs):
            one = {
                p.name: np.take(feeds[p.name], [env], axis=p.batch_axis) for p in signature.inputs
            }
            for port, got, want in zip(
                signature.outputs, batched, alone.run(names, one), strict=True
            ):
                mine = np.take(got, [env], axis=port.batch_axis)
                if mine.shape != want.shape or not np.allclose(mine, want, atol=ATOL, rtol=RTOL):
                    raise ActorError(
                        f"{what}, and with its batch freed it does not compute env {env} of "
                        f"{envs} as it computes that env alone (output {port.name!r}): it "
                        f"assumes batch 1 inside. {_REEXPORT}."
                    )
    except ActorError:
        raise
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors: the graph needs batch 1
        raise ActorError(
            f"{what}, and with its batch freed it does not run at {envs} envs in onnxruntime "
            f"({ort_message(exc)}). {_REEXPORT}."
        ) from None


def _envs(batch: int) -> list[int]:
    """The envs compared: all of a small batch, else the first, the last and some between."""
    if batch <= COMPARED_ENVS:
        return list(range(batch))
    between = np.linspace(1, batch - 2, COMPARED_ENVS - 2).round().astype(int).tolist()
    return sorted({0, batch - 1, *between})


@dataclass(frozen=True, slots=True)
class _Difference:
    tick: int
    wire: str
    env: int
    index: int
    batched: float
    alone: float


def check_envs(
    data: bytes, traced: TracedProgram, robot: bytes, robot_traced: TracedProgram
) -> None:
    """The batched file ``data`` gives every env what the batch-1 file ``robot`` gives it.

    Both run ``2 * decimation + 2`` ticks from their initial memory (policy and apply-only
    steps, memory carried) on seeded random inputs that differ in every env; the envs
    compared are all of a small batch, else the first, the last and some between. A
    difference names the stage that writes the wire, the tick, the env and the element.
    """
    from compiler.check._element_names import ElementNames
    from compiler.check._inputs import random_stream
    from exploy_dsl.runtime._session import open_session

    program = traced.program
    ticks = 2 * program.decimation + 2
    batches = DYNAMIC_BATCHES[1:] if program.dynamic_batch else (program.batch,)
    session = open_session(data)
    alone = open_session(robot)
    names = [o.name for o in session.get_outputs()]
    for envs in batches:
        at = program.with_batch(envs) if program.dynamic_batch else program
        stream = random_stream(at, ticks, seed=envs)
        memory = {m.wire_in: np.array(m.init) for m in at.memories}
        found = _first_difference(session, alone, names, traced, at, stream.inputs, memory, ticks)
        if found is not None:
            raise _refusal(found, envs, traced, ElementNames(robot_traced, {}))


def _first_difference(
    session: ort.InferenceSession,
    alone: ort.InferenceSession,
    names: Sequence[str],
    traced: TracedProgram,
    program: Program,
    inputs: Mapping[str, np.ndarray],
    memory: dict[str, np.ndarray],
    ticks: int,
) -> _Difference | None:
    axes = {p.wire: p.batch_axis for p in program.inputs}
    axes.update({m.wire_in: m.batch_axis for m in program.memories})
    out_axes = {in_to_out(m.wire_in): m.batch_axis for m in program.memories}
    envs = _envs(program.batch)
    own = {env: {w: np.take(v, [env], axis=axes[w]) for w, v in memory.items()} for env in envs}

    for tick in range(ticks):
        step = np.array(tick, np.int32)
        kinds = {wire: writer_kind(traced, wire, tick) for wire in names}
        order = sorted(names, key=lambda w: _WRITE_ORDER.get(kinds[w] or "", len(SCHEDULE)))
        feeds = {name: value[tick] for name, value in inputs.items()}
        ran = session.run(names, {**feeds, **memory, STEP_COUNT: step})
        results = dict(zip(names, ran, strict=True))
        for env in envs:
            one = {w: np.take(v, [env], axis=axes[w]) for w, v in feeds.items()}
            ran = alone.run(names, {**one, **own[env], STEP_COUNT: step})
            mine = dict(zip(names, ran, strict=True))
            for wire in order:  # the first stage of the tick whose value differs
                got = np.take(results[wire], [env], axis=out_axes.get(wire, 0))
                want = mine[wire]
                close = got.shape == want.shape and np.allclose(
                    got, want, atol=ATOL, rtol=RTOL, equal_nan=True
                )
                if not close:
                    if got.shape != want.shape:
                        return _Difference(tick, wire, env, 0, float("nan"), float("nan"))
                    err = np.abs(got.astype(np.float64) - want) - RTOL * np.abs(want)
                    index = int(np.argmax(err.reshape(-1)))
                    return _Difference(
                        tick,
                        wire,
                        env,
                        index,
                        float(got.reshape(-1)[index]),
                        float(want.reshape(-1)[index]),
                    )
            own[env] = {w: mine[in_to_out(w)] for w in memory}
        memory = {w: results[in_to_out(w)] for w in memory}
    return None


_WRITE_ORDER: dict[str, int] = {kind: i for i, kind in enumerate(s.kind for s in SCHEDULE)}


def writer_kind(traced: TracedProgram, wire: str, tick: int) -> str | None:
    """The stage of the tick (a SCHEDULE kind) whose write ``wire`` holds at ``tick``."""
    if wire == OBS:
        return "observations"
    if wire == ACTIONS:
        return "actor"
    policy = tick % traced.program.decimation == 0
    key = wire[: -len(".out")] if wire.endswith(".out") else wire
    kinds = [s.kind for s in SCHEDULE if policy or s.rate == "tick"]
    for kind in reversed(kinds):
        if kind == "actor":
            if policy and any(key == p.binds for p in traced.actor_signature.outputs):
                return kind
        elif kind in traced.graphs and key in traced.stage(kind).writes:
            return kind
    return None


def _writer(traced: TracedProgram, wire: str, tick: int) -> str:
    kind = writer_kind(traced, wire, tick)
    if kind is None:
        return "a stage"
    if kind == "actor":
        return "the actor"
    graph = traced.stage(kind)
    return f"{graph.label} ({graph.location})"


def _refusal(
    found: _Difference, envs: int, traced: TracedProgram, names: ElementNames
) -> ExployDslError:
    writer = _writer(traced, found.wire, found.tick)
    if np.isnan(found.batched) and np.isnan(found.alone):
        what = "a value of another shape"
    else:
        what = f"{found.batched:.6g} where the batch-1 file gives that env alone {found.alone:.6g}"
    message = (
        f"the file of program {traced.program.name!r} at batch {traced.program.batch_spec!r}, run "
        f"with {envs} envs fed different inputs, gives env {found.env} at tick {found.tick} "
        f"{names.label(found.wire, found.index)} = {what}: {writer} assumes batch 1 or mixes "
        "envs (a reduction, slice or reshape over the batch axis, a constant of batch 1 "
        "indexed by env). Nothing was written. Fix: keep the batch axis first and never index "
        "or reduce it, e.g. op.reshape(x, op.const(np.array([-1, n])))."
    )
    error = ActorError if writer == "the actor" else StageError
    return error(message)
