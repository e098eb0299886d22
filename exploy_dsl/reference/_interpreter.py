"""Run a program tick by tick from its traced stages in NumPy (DESIGN.md section 3)."""

from __future__ import annotations

import contextvars
import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx

from exploy_dsl._errors import ActorError, RuntimeInputError
from exploy_dsl.authoring._actor import (
    Actor,
    ActorPort,
    ActorSignature,
    bind_signature,
    check_forward_arity,
    default_names,
    is_torch_module,
)
from exploy_dsl.authoring._program import Program
from exploy_dsl.authoring._torch_export import stateful_reason
from exploy_dsl.authoring._trace import StageGraph, TracedProgram, trace
from exploy_dsl.contract._tick import StageKind, is_policy_step, run_tick
from exploy_dsl.contract._wires import ACTIONS, OBS, STEP_COUNT
from exploy_dsl.reference._graph_interpreter import GraphInterpreter, GraphInterpreterError
from exploy_dsl.runtime._runtime import _cast

# An actor as NumPy: its inputs by the actor's own names -> its outputs by those names.
ActorFn = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]
# One planned tick: (inputs, memory, step_count) -> (outputs, memory after the tick).
_TickFn = Callable[
    [Mapping[str, Any], Mapping[str, np.ndarray], int],
    tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
]


def reference_actor(
    actor: object, expected: ActorSignature, *, prepared: bool = False
) -> tuple[ActorFn, ActorSignature]:
    """The actor the reference runs (the original network) and the signature it is called with.

    ``actor`` is an ``exploy_dsl.Actor`` (its torch module when it has one, else its original
    ONNX graph), a torch module, an ``onnx.ModelProto`` or a function of NumPy arrays (called
    with the actor's inputs in signature order, returning its outputs in order). The signature
    has the actor's own names and the shapes the program expects (``expected``).
    """
    was_prepared = prepared or isinstance(actor, Actor)
    if isinstance(actor, Actor):
        own = actor.signature
        actor = actor.reference
    elif isinstance(actor, onnx.ModelProto):
        own = bind_signature(expected, actor, "given to the reference interpreter")
    else:
        own = default_names(expected)
    signature = _bind(own, expected)
    if isinstance(actor, onnx.ModelProto):
        return _onnx_actor(actor, signature), signature
    if is_torch_module(actor):
        if not was_prepared:
            check_forward_arity(actor, signature, "reference interpreter")
            _refuse_internal_state(actor, signature)
        return _torch_actor(actor, signature), signature
    if callable(actor):
        return _positional(actor, signature), signature
    raise ActorError(
        f"reference actor must be an exploy_dsl.Actor, a torch module, an onnx.ModelProto or a "
        f"function, got {type(actor).__name__}."
    )


def _bind(own: ActorSignature, expected: ActorSignature) -> ActorSignature:
    """``own``'s names with ``expected``'s shapes; an actor of other sizes is an ActorError."""

    def ports(mine: tuple[ActorPort, ...], wanted: tuple[ActorPort, ...]) -> tuple[ActorPort, ...]:
        by_value = {p.binds: p for p in mine}
        bound = []
        for want in wanted:
            have = by_value.get(want.binds)
            if have is None or have.size != want.size:
                got = "nothing" if have is None else f"{have.size} values"
                raise ActorError(
                    f"reference actor: the program's {want.binds} has {want.size} values, the "
                    f"actor's takes or gives {got}. Fix: pass the actor the program was "
                    "compiled with."
                )
            bound.append(dataclasses.replace(want, name=have.name, actor_shape=have.actor_shape))
        return tuple(bound)

    return ActorSignature(ports(own.inputs, expected.inputs), ports(own.outputs, expected.outputs))


def _positional(fn: Callable[..., Any], signature: ActorSignature) -> ActorFn:
    in_names = [p.name for p in signature.inputs]
    out_names = [p.name for p in signature.outputs]

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = fn(*(feeds[name] for name in in_names))
        values = result if isinstance(result, (tuple, list)) and len(out_names) > 1 else (result,)
        if len(values) != len(out_names):
            raise ActorError(
                f"reference actor returned {len(values)} values; expected {len(out_names)} "
                f"({', '.join(out_names)}). Fix: return the actor's outputs, in that order."
            )
        return {
            port.name: _actor_output(value, port)
            for port, value in zip(signature.outputs, values, strict=True)
        }

    return run


def _actor_output(value: object, port: ActorPort) -> np.ndarray:
    """One output of a reference actor as float32 of the port's shape, or an ActorError."""
    shape = list(port.shape)
    expected = f"a float32 array of shape {shape} ({port.binds})"
    if not isinstance(value, np.ndarray):
        text = " ".join(repr(value).split())
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ActorError(
            f"reference actor returned {type(value).__name__} {shown} for {port.name!r}; "
            f"expected {expected}. Fix: return only the actions, as a NumPy array "
            "(e.g. `return np.asarray(actions, np.float32)`)."
        )
    if value.dtype.kind != "f":
        raise ActorError(
            f"reference actor returned dtype {value.dtype} for {port.name!r}; expected "
            f"{expected}. Fix: return the values as floats."
        )
    if list(value.shape) != shape:
        size = int(np.prod(shape))
        hint = (
            f"reshape it to {shape} (the batch axis first)"
            if value.size == size
            else f"use an actor with {shape[-1]} outputs, or declare the size the actor has"
        )
        raise ActorError(
            f"reference actor returned shape {list(value.shape)} for {port.name!r}; expected "
            f"{expected}. Fix: {hint}."
        )
    return value.astype(np.float32, copy=False)


def _refuse_internal_state(module: Any, signature: ActorSignature) -> None:
    """A torch module handed over as is must not keep state: a reset would not reset it."""
    examples = [
        np.zeros(p.shape, np.bool_ if p.dtype == "bool" else p.dtype) for p in signature.inputs
    ]
    reason = stateful_reason(module, examples)
    if reason is not None:
        raise ActorError(
            f"reference actor {type(module).__name__} {reason}: state between calls, which "
            "the reference interpreter would not reset with the program's memory. Fix: "
            "pass compiler.prepare_actor(module, traced)[1] (what check does: the state becomes "
            "memory), or the actor's ONNX export."
        )


def _torch_actor(module: Any, signature: ActorSignature) -> ActorFn:
    # A torch module exists only where torch was imported by whoever built it.
    torch = sys.modules["torch"]
    module = module.eval()
    # Only a feed-forward actor picks its action output among several.
    position = signature.actions_position if len(signature.outputs) == 1 else None

    def call(*arrays: np.ndarray) -> Any:
        # Each input in its own dtype (a bool mask stays bool), floats as float32.
        tensors = [
            torch.from_numpy(
                np.ascontiguousarray(a, dtype=np.float32 if a.dtype.kind == "f" else a.dtype)
            )
            for a in arrays
        ]
        with torch.inference_mode():
            out = module(*tensors)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if position is not None and (len(outs) > 1 or position > 0):  # as compile does
            if position >= len(outs):
                raise ActorError(
                    f"reference actor: program.actor(actions={position}) picks output "
                    f"{position}, but the torch module returns {len(outs)} values. Fix: give "
                    f"the position of the action vector, 0 to {len(outs) - 1}."
                )
            outs = (outs[position],)
        arrays = tuple(o.detach().cpu().numpy() if isinstance(o, torch.Tensor) else o for o in outs)
        return arrays if len(arrays) != 1 else arrays[0]  # refused by _positional if wrong

    return _positional(call, signature)


def _onnx_actor(model: onnx.ModelProto, signature: ActorSignature) -> _OnnxActor:
    # The same NumPy interpreter as the stages; initializers listed as inputs are not inputs.
    try:
        interpreter = GraphInterpreter(model)
    except GraphInterpreterError as exc:
        raise ActorError(
            f"reference actor ONNX model cannot be run by the reference interpreter: {exc}. "
            "Fix: export the actor with standard ONNX ops."
        ) from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = {name for name in interpreter.input_names if name not in initializers}
    wanted_in = {p.name for p in signature.inputs}
    wanted_out = [p.name for p in signature.outputs]
    if inputs != wanted_in or not set(wanted_out) <= set(interpreter.output_names):
        raise ActorError(  # the signature was read from this graph: a bug, said plainly
            f"reference actor ONNX model has inputs {sorted(inputs)} and outputs "
            f"{list(interpreter.output_names)}; its signature says {sorted(wanted_in)} -> "
            f"{wanted_out}."
        )
    return _OnnxActor(interpreter, wanted_out)


class _OnnxActor:
    """An ONNX actor run by the graph interpreter: ``actor(feeds)`` like any ActorFn."""

    def __init__(self, interpreter: GraphInterpreter, outputs: list[str]) -> None:
        self._interpreter = interpreter
        names = interpreter.output_names
        self._outputs = tuple((name, names.index(name)) for name in outputs)

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            results = self._interpreter.run(dict(feeds))
        except GraphInterpreterError as exc:
            raise _actor_failed(exc) from exc
        return {name: _float32(results[name]) for name, _ in self._outputs}

    def unchecked(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``self(feeds)`` for feeds the tick built (arrays), inside its ``np.errstate``."""
        try:
            values = self._interpreter.run_unchecked(feeds)
        except GraphInterpreterError as exc:
            raise _actor_failed(exc) from exc
        return {name: _float32(values[i]) for name, i in self._outputs}


def _float32(value: Any) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == np.float32:
        return value
    return np.asarray(value, dtype=np.float32)


def _actor_failed(exc: GraphInterpreterError) -> GraphInterpreterError:
    return GraphInterpreterError(
        f"reference actor ONNX model failed in the reference interpreter: {exc}",
        node=exc.node,
        reason=exc.reason,
    )


def _reshape(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return value.reshape(shape)


def _frozen(value: np.ndarray) -> np.ndarray:
    value.setflags(write=False)
    return value


def _wrong_actor_output(value: np.ndarray | None, port: ActorPort) -> None:
    got = "nothing" if value is None else f"shape {list(value.shape)}"
    raise ActorError(
        f"reference actor returned {got} for {port.name!r}; expected shape "
        f"{list(port.shape)} ({port.binds})."
    )


class _NumpyTick:
    """The tick's parts in NumPy: each stage graph planned once, the actor as given; the tick
    itself is written from them by ``_TickWriter``."""

    def __init__(self, traced: TracedProgram, actor: ActorFn, signature: ActorSignature) -> None:
        self._stages = {g.kind: _Stage(g) for g in traced.stages}
        self._actor = actor
        self._signature = signature
        shapes = traced.output_shapes()
        # fold_into_actor: the observation left the stage without its normalizer and scales;
        # the original actor gets them here, as the program without the fold would give them.
        fold = traced.obs_fold
        self._fold = (
            None
            if fold is None
            else (
                fold.a.astype(np.float32).reshape(1, -1),
                fold.c.astype(np.float32).reshape(1, -1),
            )
        )
        # The apply-only step's actions and obs: the same zeros every tick, so read-only.
        self._zeros = {n: _frozen(np.zeros(shapes[n], np.float32)) for n in (ACTIONS, OBS)}
        # The actor is called inside np.errstate(all="ignore"); an actor that is not ours (torch,
        # a function) runs under the caller's error state, as it would outside the tick.
        self.foreign_actor = not isinstance(actor, _OnnxActor)
        self.caller_errors: dict[str, str] = {}

        # The actor as the planned tick calls it: the values it reads, positionally.
        signature = self._signature
        reads = [p.binds for p in signature.inputs]
        self.actor_reads = tuple(dict.fromkeys([OBS, *reads] if fold is not None else reads))
        self.actor_writes = tuple(p.binds for p in signature.outputs)
        self.actor_args = self._direct_actor() or self._actor_through_run

    def _actor_through_run(self, *values: np.ndarray) -> tuple[np.ndarray, ...]:
        outputs = self._run_actor(dict(zip(self.actor_reads, values, strict=True)))
        return tuple(outputs[name] for name in self.actor_writes)

    def _direct_actor(self) -> Callable[..., tuple[np.ndarray, ...]] | None:
        """``actor_args`` for our ONNX actor read as it is (no fold, no reshaped input): its
        plan's ``run_args`` on the tick's values, then the checks ``run`` makes."""
        actor, signature = self._actor, self._signature
        if not isinstance(actor, _OnnxActor) or self._fold is not None:
            return None
        if any(p.actor_shape is not None for p in signature.inputs):
            return None
        ports = {p.name: i for i, p in enumerate(signature.inputs)}
        graph = actor._interpreter
        positions = tuple(ports[name] for name in graph.required_inputs)
        in_order = positions == tuple(range(len(positions)))
        run_args = graph.run_args
        outputs = tuple(
            (graph.output_names.index(p.name), p.shape, p.actor_shape is not None, p)
            for p in signature.outputs
        )

        def call(*values: np.ndarray) -> tuple[np.ndarray, ...]:
            try:
                found = run_args(*values) if in_order else run_args(*[values[i] for i in positions])
            except GraphInterpreterError as exc:
                raise _actor_failed(exc) from exc
            results = []
            for index, shape, reshape, port in outputs:
                value = _float32(found[index])
                if reshape:
                    value = value.reshape(shape)
                if value.shape != shape:
                    _wrong_actor_output(value, port)
                results.append(value)
            return tuple(results)

        return call

    def _run_actor(self, env: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The actor on the tick's values (any actor, a fold, reshaped ports): its writes."""
        if self._fold is not None:
            a, c = self._fold
            env = {**env, OBS: env[OBS] * a + c}
        feeds = self._signature.feeds(env, _reshape)
        if isinstance(self._actor, _OnnxActor):
            outputs = self._actor.unchecked(feeds)
        else:
            with np.errstate(**self.caller_errors):  # type: ignore[arg-type]
                outputs = self._actor(feeds)
        for port in self._signature.outputs:
            value = outputs.get(port.name)
            if value is not None and port.actor_shape is not None:
                value = outputs[port.name] = value.reshape(port.shape)
            if value is None or value.shape != port.shape:
                _wrong_actor_output(value, port)
        return self._signature.results(outputs)

    def zeros(self, name: str) -> np.ndarray:
        return self._zeros[name]


class _Stage:
    """One stage graph, planned once: ``run_args`` of its ``reads`` gives its ``writes``."""

    def __init__(self, stage: StageGraph) -> None:
        # Errors name the stage and the user's line; spox's node names mean nothing to a user.
        self._where = f"{stage.label} ({stage.location})"
        try:
            self._graph = GraphInterpreter(stage.model)
        except GraphInterpreterError as exc:
            raise GraphInterpreterError(
                f"{self._where} cannot be planned by the reference interpreter: {exc}",
                node=exc.node,
                reason=exc.reason,
            ) from exc
        # Memory writes leave the graph as memory.<name>.out; the env keeps them as memory.<name>.
        order = {name: write for name, write in zip(stage.output_names, stage.writes, strict=True)}
        self.writes = tuple(order[name] for name in self._graph.output_names)
        self.reads = self._graph.required_inputs  # run_args' parameters, in order
        self.run_args = self._graph.run_args

    def failed(self, exc: GraphInterpreterError, tick: int) -> GraphInterpreterError:
        """The error of a failing node, said as the stage's at tick ``tick``."""
        return GraphInterpreterError(
            f"{self._where} failed at ctx.step_count {tick} in the reference interpreter: "
            f"{exc.reason or exc}{f' (in its node {exc.node})' if exc.node else ''}. "
            "Fix: keep what the stage "
            "computes valid for every input value it may get (e.g. clip an index read from "
            "an input into range).",
            node=exc.node,
            reason=exc.reason,
        )


def _numpy_error_state() -> contextvars.ContextVar[Any] | None:
    """Where NumPy (>= 2) keeps its floating-point error state, if it does so here."""
    try:
        from numpy._core import _ufunc_config
    except ImportError:
        return None
    state = getattr(_ufunc_config, "_extobj_contextvar", None)
    return state if isinstance(state, contextvars.ContextVar) else None


class _ErrorsIgnored:
    """``np.errstate(all="ignore")`` around each tick, without its cost per tick.

    NumPy 2 keeps its error state (what to do on each error, the buffer size, the callback) as
    one immutable value in a context variable. The ignoring state made from the caller's state
    is kept and set per tick for as long as the caller's state is the same object; when it
    changes (np.seterr, np.setbufsize, an outer errstate) it is made again, by np.errstate
    itself. Where NumPy keeps it otherwise, each tick enters np.errstate.
    """

    def __init__(self) -> None:
        self._state = _numpy_error_state()
        self._seen: object = None
        self._ignoring: object = None

    def enter(self) -> object:
        state = self._state
        if state is None:
            errstate = np.errstate(all="ignore")
            errstate.__enter__()
            return errstate
        current = state.get()
        if current is not self._seen:
            with np.errstate(all="ignore"):
                self._ignoring = state.get()
            self._seen = current
        return state.set(self._ignoring)

    def exit(self, token: object) -> None:
        if self._state is None:
            token.__exit__(None, None, None)  # type: ignore[attr-defined]
        else:
            self._state.reset(token)  # type: ignore[arg-type]


class _TickWriter:
    """A TickEngine over names of local variables: ``run_tick`` through it writes one tick (a
    policy step or an apply-only step) as lines of Python, each stage one call of its plan
    (``run_args``) on the locals it reads, so the schedule stays ``run_tick``'s."""

    def __init__(self, tick: _NumpyTick) -> None:
        self._tick = tick
        self.namespace: dict[str, Any] = {"GraphInterpreterError": GraphInterpreterError}
        self.lines: list[str] = []
        self.read: set[str] = set()  # the locals some stage reads

    def bind(self, value: object) -> str:
        """A global of the function for ``value``."""
        name = f"g{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def zeros(self, name: str) -> str:
        return self.bind(self._tick.zeros(name))

    def run(self, kind: StageKind, env: Mapping[str, str]) -> dict[str, str]:
        tick = self._tick
        if kind == "actor":
            fn, reads, writes = tick.actor_args, tick.actor_reads, tick.actor_writes
            failed = None  # the actor's errors name the actor already
        else:
            stage = tick._stages[kind]
            fn, reads, writes, failed = stage.run_args, stage.reads, stage.writes, stage.failed
        missing = [name for name in reads if name not in env]
        if missing:  # a traced program's stages read only what the tick holds: a bug, said so
            raise GraphInterpreterError(f"the {kind} stage reads {missing}, which the tick lacks")
        args = [env[name] for name in reads]
        self.read.update(args)
        index = len(self.lines)
        targets = [f"w{index}_{k}" for k in range(len(writes))]
        call = f"{self.bind(fn)}({', '.join(args)})"
        if targets:
            call = f"{''.join(t + ', ' for t in targets)}= {call}"
        if failed is None:
            self.lines.append(call)
        else:
            self.lines += [
                "try:",
                f"    {call}",
                "except GraphInterpreterError as exc:",
                f"    raise {self.bind(failed)}(exc, step_count) from exc",
            ]
        return dict(zip(writes, targets, strict=True))


class ReferenceInterpreter:
    """Steps a program like the file would be stepped: same inputs, same output names.

    Never looks at a compiled file: the three stages run as their own traced graphs (op by op,
    NumPy, planned once here), the actor as the original torch module when there is one.
    ``step(inputs)`` returns ``actions``, ``obs``, every declared output and every
    ``memory.<name>.out``; the interpreter owns the tick counter and the memory. ``first_tick``
    is the tick of the first call after a reset: 0 for our runtime, 1 for exploy's controller.
    ``batch`` runs the program at that many envs (``Program.with_batch``): each env its own
    inputs and memory, all on one tick counter.
    """

    def __init__(
        self,
        program: Program | TracedProgram,
        actor: object,
        *,
        first_tick: int = 0,
        batch: int | None = None,
    ) -> None:
        if batch is not None and isinstance(program, Program):
            program = program.with_batch(batch)
        self.traced = program if isinstance(program, TracedProgram) else trace(program)
        if batch is not None:
            self.traced = self.traced.at_batch(batch)
        prog = self.traced.program
        actor_fn, signature = reference_actor(actor, self.traced.actor_signature)
        self._tick = _NumpyTick(self.traced, actor_fn, signature)
        self._decimation = prog.decimation
        self._inputs = {p.name: (p.file_shape, p.np_dtype) for p in prog.inputs}
        self._input_keys = frozenset(self._inputs)
        self._input_specs = tuple((name, *spec) for name, spec in self._inputs.items())
        self._memories = {m.key: m.init for m in prog.memories}
        self._output_wires = self.traced.output_wires
        self._memory_wires = self.traced.memory_wires
        self._first_tick = first_tick
        self.tick = first_tick
        self.memory: dict[str, np.ndarray] = {}
        self._ticks = {policy: self._write_tick(policy) for policy in (True, False)}
        self._errors = _ErrorsIgnored()
        self.reset()

    def _write_tick(self, policy_step: bool) -> _TickFn:
        """One kind of tick as one generated function ``(inputs, memory, step_count) ->
        (outputs, memory)``: inputs checked, the stages' plans called on locals, memory outs
        copied (a stage may pass an input, the caller's buffer, straight into memory)."""
        writer = _TickWriter(self._tick)
        env = {name: f"i{k}" for k, (name, _, _) in enumerate(self._input_specs)}
        env.update({key: f"m{k}" for k, key in enumerate(self._memories)})
        env[STEP_COUNT] = "step"
        result = run_tick(
            writer,
            env,
            policy_step=policy_step,
            outputs=self._output_wires,
            memories=self._memory_wires,
        )
        keys, convert = writer.bind(self._input_keys), writer.bind(self._convert)
        lines = [
            "def tick(inputs, memory, step_count):",
            f"  if inputs.keys() != {keys}:",
            f"    {writer.bind(self._wrong_keys)}(inputs)",
        ]
        for name, shape, dtype in self._input_specs:
            var, s, d = env[name], writer.bind(shape), writer.bind(dtype)
            lines += [
                f"  {var} = inputs[{name!r}]",
                f"  if type({var}) is not ndarray or {var}.shape != {s} or {var}.dtype != {d}:",
                f"    {var} = {convert}({name!r}, {var}, {s}, {d})",
            ]
        lines += [f"  {env[key]} = memory[{key!r}]" for key in self._memories]
        if "step" in writer.read:  # ctx.step_count, as stages read it (v.tick / v.time)
            lines.append(f"  step = asarray(step_count, {writer.bind(np.dtype(np.int32))})")
        lines += [f"  {line}" for line in writer.lines]
        outputs = "".join(f"{name!r}: {var}, " for name, var in result.items())
        memory = "".join(f"{key!r}: {result[out]}.copy(), " for key, out in self._memory_wires)
        lines.append(f"  return {{{outputs}}}, {{{memory}}}")
        namespace = {**writer.namespace, "ndarray": np.ndarray, "asarray": np.asarray}
        kind = "policy step" if policy_step else "apply-only step"
        source = "\n".join(lines) + "\n"
        exec(compile(source, f"<exploy_dsl reference {kind}>", "exec"), namespace)
        tick: _TickFn = namespace["tick"]
        return tick

    def reset(self) -> None:
        """Memory back to the program's initial values, tick back to the first tick."""
        self.tick = self._first_tick
        self.memory = {name: init.copy() for name, init in self._memories.items()}

    def step(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One tick (DESIGN.md section 3): policy step when ``tick % decimation == 0``."""
        if type(inputs) is not dict and not isinstance(inputs, Mapping):
            raise RuntimeInputError(
                f"reference step() takes a dict of input name -> array, got "
                f"{type(inputs).__name__}."
            )
        tick = self._tick
        if tick.foreign_actor:
            tick.caller_errors = np.geterr()  # type: ignore[assignment]
        run = self._ticks[is_policy_step(self.tick, self._decimation)]
        errors = self._errors
        token = errors.enter()  # np.errstate(all="ignore"), once for every stage of the tick
        try:
            result, self.memory = run(inputs, self.memory, self.tick)
        finally:
            errors.exit(token)
        self.tick += 1
        return result

    def _wrong_keys(self, inputs: Mapping[str, Any]) -> None:
        missing = [k for k in self._inputs if k not in inputs]
        unknown = [k for k in inputs if k not in self._inputs]
        raise RuntimeInputError(
            f"reference step: missing input(s) {missing}, unknown input(s) {unknown}; "
            f"expected exactly {list(self._inputs)}."
        )

    @staticmethod
    def _convert(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        value = np.asarray(value)
        if value.shape != shape:
            raise RuntimeInputError(
                f"reference step: input {name!r} has shape {list(value.shape)}; "
                f"expected {list(shape)}."
            )
        return _cast(value, dtype, name)  # the same casting rules as the runtime
