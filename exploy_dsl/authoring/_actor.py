"""The actor's calling convention: its named inputs and outputs and what each is bound to.

One type, used by everything that calls an actor: the compiler (export, size checks,
stitching), the reference interpreter and the actor-alone check. An actor input is bound to
``obs`` (or, for recurrent actors, a memory it reads); an output to ``actions`` (or a memory
it writes). Today's programs bind one input to ``obs`` and one output to ``actions``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import onnx

from exploy_dsl._errors import ActorError
from exploy_dsl.authoring._ports import Memory, Port
from exploy_dsl.authoring._torch_state import torch_module_name
from exploy_dsl.contract._wires import ACTIONS, OBS, is_actor_input, is_memory, memory_name

Exporter = Literal["dynamo", "torchscript"]
EXPORTERS: tuple[Exporter, ...] = ("dynamo", "torchscript")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ActorPort:
    """One input or output of the actor graph: its name there, its shape, what it is bound to.

    ``binds`` is a value of the tick: ``obs``, ``actions``, ``memory.<name>`` (recurrent
    state), an input port, or ``actor_input:<name>`` (observation terms the observations
    stage gathers for this input). ``shape`` and ``dtype`` are those of that value;
    ``actor_shape`` is the actor's own shape when it differs (same elements, reshaped).
    An empty ``name`` is not known yet: it is matched when the actor is loaded.
    ``batch_axis`` is where the envs are (1 for a recurrent state ``[layers, batch, hidden]``).
    """

    name: str
    shape: tuple[int, ...]
    binds: str
    dtype: str = "float32"
    actor_shape: tuple[int, ...] | None = None
    batch_axis: int = 0

    @property
    def size(self) -> int:
        return self.shape[-1]

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, slots=True)
class ActorSignature:
    """The actor's inputs and outputs, in the actor's own order, each bound to a tick value."""

    inputs: tuple[ActorPort, ...]
    outputs: tuple[ActorPort, ...]
    dropped: tuple[str, ...] = ()  # actor outputs nothing reads (e.g. SB3's values, log_prob)
    actions_position: int | None = None  # the program picks the action output by position

    @classmethod
    def feedforward(
        cls,
        n_obs: int,
        n_actions: int,
        *,
        batch: int = 1,
        input_name: str = OBS,
        output_name: str = ACTIONS,
    ) -> ActorSignature:
        """``[batch, n_obs] -> [batch, n_actions]``: obs in, actions out, no state."""
        return cls(
            (ActorPort(input_name, (batch, n_obs), OBS),),
            (ActorPort(output_name, (batch, n_actions), ACTIONS),),
        )

    @property
    def obs(self) -> ActorPort | None:
        """The input fed the whole observation, if one is."""
        return next((p for p in self.inputs if p.binds == OBS), None)

    @property
    def actions(self) -> ActorPort:
        return next(p for p in self.outputs if p.binds == ACTIONS)

    @property
    def state(self) -> tuple[tuple[ActorPort, ActorPort], ...]:
        """``(input, output)`` pairs that carry a memory from one policy step to the next."""
        outs = {p.binds: p for p in self.outputs if is_memory(p.binds)}
        return tuple((p, outs[p.binds]) for p in self.inputs if p.binds in outs)

    @property
    def is_recurrent(self) -> bool:
        return bool(self.state)

    @property
    def n_obs(self) -> int:
        """Observation values the actor takes (the whole obs, or the terms bound to it)."""
        return sum(p.size for p in self.inputs if p.binds == OBS or is_actor_input(p.binds))

    @property
    def n_actions(self) -> int:
        return self.actions.size

    def feeds(
        self, env: Mapping[str, V], reshape: Callable[[V, tuple[int, ...]], V] | None = None
    ) -> dict[str, V]:
        """The actor's inputs by its own names, taken from the tick's values.

        ``reshape(value, shape)`` brings a value to the actor's own shape where it differs.
        """
        feeds = {}
        for p in self.inputs:
            value = env[p.binds]
            if p.actor_shape is not None and reshape is not None:
                value = reshape(value, p.actor_shape)
            feeds[p.name] = value
        return feeds

    def results(
        self, outputs: Mapping[str, V], reshape: Callable[[V, tuple[int, ...]], V] | None = None
    ) -> dict[str, V]:
        """The actor's outputs (by its own names) as tick values (``actions``, memory)."""
        values = {}
        for p in self.outputs:
            value = outputs[p.name]
            if p.actor_shape is not None and reshape is not None:
                value = reshape(value, p.shape)
            values[p.binds] = value
        return values


@dataclass(frozen=True, slots=True, eq=False)
class Actor:
    """An actor ready to be stitched: one ONNX graph with its signature.

    ``module`` keeps the torch module it was exported from, if any, so the reference
    interpreter and the actor-alone check run the original network; ``exporter`` says which
    torch exporter made ``model`` (None for an actor given as ONNX). ``original`` is the graph
    as given or exported when ``model`` was converted to another opset: the reference runs the
    original, so a conversion mistake shows up as a parity failure.
    """

    model: onnx.ModelProto
    signature: ActorSignature
    source: str
    exporter: Exporter | None = None
    module: Any = None
    original: onnx.ModelProto | None = None
    lifted: tuple[Memory, ...] = ()  # state found inside a torch module, now program memory

    @property
    def reference(self) -> Any:
        """What the reference interpreter runs: the torch module, else the original graph."""
        if self.module is not None:
            return self.module
        return self.original if self.original is not None else self.model

    @property
    def n_obs(self) -> int:
        return self.signature.n_obs

    @property
    def n_actions(self) -> int:
        return self.signature.n_actions


def describe_binding(binds: str) -> str:
    """What a tick value is, for messages: 'the observation', 'memory h', 'input x', ..."""
    if binds == OBS:
        return "the observation"
    if binds == ACTIONS:
        return "the actions"
    if is_memory(binds):
        return f"memory {memory_name(binds)!r}"
    if is_actor_input(binds):
        return "observation terms"
    return f"input {binds!r}"


def default_names(signature: ActorSignature) -> ActorSignature:
    """Names for ports not named yet: the observation input ``obs``, the action output
    ``actions`` (what a torch module is exported with)."""

    def named(port: ActorPort, default: str) -> ActorPort:
        return port if port.name else dataclasses.replace(port, name=default)

    return dataclasses.replace(
        signature,
        inputs=tuple(named(p, OBS) for p in signature.inputs),
        outputs=tuple(named(p, ACTIONS) for p in signature.outputs),
    )


_DTYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.BOOL: "bool",
}


def _wire(value: onnx.ValueInfoProto) -> tuple[list[int | str], str]:
    tensor = value.type.tensor_type
    dims: list[int | str] = [
        int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
        for d in tensor.shape.dim
    ]
    elem = int(tensor.elem_type)
    dtype = _DTYPE_NAMES.get(elem) or onnx.TensorProto.DataType.Name(elem)
    return dims, dtype


def bind_signature(expected: ActorSignature, model: onnx.ModelProto, source: str) -> ActorSignature:
    """Match an ONNX actor's inputs and outputs to what the program binds them to.

    Named ports are found by name; the one unnamed input (the observation) and the one
    unnamed output (the actions) take what is left, or a position for ``actions``. Every
    actor input must be bound; outputs nothing reads are dropped (and listed). Observation
    and action sizes are the actor's (``check_actor_sizes`` compares them with the program);
    state and port inputs must match exactly, or in element count (then reshaped).
    """
    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in initializers]
    graph_outputs = list(model.graph.output)
    in_names = [v.name for v in graph_inputs]
    out_names = [v.name for v in graph_outputs]
    named_in = {p.name for p in expected.inputs if p.name}
    named_out = {p.name for p in expected.outputs if p.name}
    if expected.is_recurrent or len(expected.inputs) > 1 or len(graph_inputs) > 1:
        where = f"actor {source} (inputs {in_names}, outputs {out_names})"
    else:
        where = f"actor {source}"

    def pick(
        ports: list[onnx.ValueInfoProto],
        want: ActorPort,
        named: set[str],
        kind: str,
        actions: str | int | None = None,
    ) -> onnx.ValueInfoProto:
        names = [v.name for v in ports]
        if want.name and actions is None:
            if want.name not in names:
                raise ActorError(
                    f"{where} has no {kind} {want.name!r}, which the program binds to "
                    f"{describe_binding(want.binds)}. Fix: use the actor's own {kind} names in "
                    "program.actor(...)."
                )
            return ports[names.index(want.name)]
        if isinstance(actions, int):
            if actions >= len(ports):
                raise ActorError(
                    f"{where}: program.actor(actions={actions}) picks output {actions}, but the "
                    f"actor has {len(ports)} outputs {names}."
                )
            return ports[actions]
        rest = [v for v in ports if v.name not in named]
        if len(rest) != 1:
            fix = (
                "Fix: say which output is the action vector: program.actor(actions=NAME or "
                "POSITION); the other outputs are dropped."
                if kind == "output"
                else "Fix: bind each input with program.actor(inputs={...}, state=[...]), or "
                "export the feed-forward policy alone (obs -> actions)."
            )
            raise ActorError(
                f"{where} has {len(ports)} {kind}s {names}; the program binds "
                f"{describe_binding(want.binds)} to one of {[v.name for v in rest]} and cannot "
                f"tell which. {fix}"
            )
        return rest[0]

    def port(value: onnx.ValueInfoProto, want: ActorPort, kind: str) -> ActorPort:
        dims, dtype = _wire(value)
        if dtype != want.dtype:
            raise ActorError(
                f"{where} {kind} {value.name!r} is {dtype}; the program binds it to "
                f"{describe_binding(want.binds)}, which is {want.dtype}. Fix: export the actor "
                f"with a {want.dtype} {kind}, or bind a {dtype} value."
            )
        sized = want.binds in (OBS, ACTIONS) or is_actor_input(want.binds)
        if sized:
            # Observation and action sizes are the actor's; check_actor_sizes compares them.
            if len(dims) != 2 or not isinstance(dims[1], int):
                raise ActorError(
                    f"{where} {kind} {value.name!r} has shape {dims}; expected [batch, n] with a "
                    "static n. Fix: export with a fixed feature size."
                )
            return dataclasses.replace(want, name=value.name, shape=(want.shape[0], dims[1]))
        concrete = [
            d if isinstance(d, int) else (want.shape[i] if i < len(want.shape) else -1)
            for i, d in enumerate(dims)
        ]
        if tuple(concrete) == want.shape:
            return dataclasses.replace(want, name=value.name, actor_shape=None)
        if all(d > 0 for d in concrete) and int(np.prod(concrete)) == want.elements:
            return dataclasses.replace(want, name=value.name, actor_shape=tuple(concrete))
        raise ActorError(
            f"{where} {kind} {value.name!r} has shape {dims}, but the program binds it to "
            f"{describe_binding(want.binds)} of shape {list(want.shape)}. Fix: declare "
            f"{describe_binding(want.binds)} with the actor's shape (a recurrent state "
            "[layers, 1, hidden] is program.memory(name, (layers, hidden), batch_axis=1))."
        )

    # Named ports first, so that a name the actor lacks is reported as such.
    found = {
        i: port(pick(graph_inputs, want, named_in, "input"), want, "input")
        for i, want in sorted(enumerate(expected.inputs), key=lambda iw: not iw[1].name)
    }
    inputs = tuple(found[i] for i in range(len(expected.inputs)))
    unbound = [n for n in in_names if n not in {p.name for p in inputs}]
    if unbound:
        raise ActorError(
            f"{where}: input(s) {', '.join(map(repr, unbound))} are bound to nothing. Fix: bind "
            "them with program.actor(inputs={name: terms or a port}) or program.actor(state=...)."
        )
    outputs = []
    for want in expected.outputs:
        actions = expected.actions_position if want.binds == ACTIONS else None
        outputs.append(
            port(pick(graph_outputs, want, named_out, "output", actions), want, "output")
        )
    used = {p.name for p in outputs}
    return ActorSignature(inputs, tuple(outputs), tuple(n for n in out_names if n not in used))


def is_torch_module(obj: object) -> bool:
    """A ``torch.nn.Module`` (or ScriptModule), told without importing torch."""
    return any(
        c.__module__.startswith("torch") and c.__name__ in ("Module", "ScriptModule")
        for c in type(obj).__mro__
    )


def refuse_rsl_rl_model(module: Any) -> None:
    """rsl_rl's models take a TensorDict of observation groups, not the observation tensor.

    Told by the class or any base (a framework's subclass of ``MLPModel`` is one too).
    """
    from_rsl_rl = any(c.__module__.split(".")[0] == "rsl_rl" for c in type(module).__mro__)
    if from_rsl_rl and hasattr(module, "as_onnx"):
        raise ActorError(
            f"torch actor {torch_module_name(module)} is an rsl_rl model: its forward() takes a "
            "TensorDict of observation groups, not the observation vector. Fix: export it with "
            "rsl_rl's own exporter and pass the file: model.as_onnx(...) (recurrent ones give "
            "obs, h_in, c_in -> actions, h_out, c_out; declare the state with "
            "program.actor(state=[h, c])) or model.as_jit()."
        )
    if from_rsl_rl and callable(getattr(module, "act_inference", None)):
        # rsl_rl < 4: ActorCritic, ActorCriticRecurrent, StudentTeacher; forward() raises.
        name = torch_module_name(module)
        if hasattr(module, "memory_a") or hasattr(module, "memory_s"):
            fix = (
                "export it with Isaac Lab's or legged_gym's exporter (export_policy_as_onnx: "
                "obs, h_in, c_in -> actions, h_out, c_out), pass the file and declare the state "
                "with program.actor(state=[h, c])"
            )
        else:
            fix = (
                f"pass its policy network, {name}.actor (what act_inference runs), and, if the "
                "run normalized observations, the normalizer as observations(normalize="
                "Normalizer.from_rsl_rl(checkpoint)); or pass the ONNX file of Isaac Lab's or "
                "legged_gym's exporter"
            )
        raise ActorError(
            f"torch actor {name} is an rsl_rl (< 4) actor-critic: its forward() is not the "
            f"policy (act_inference is, on observation groups). Fix: {fix}."
        )


def check_forward_arity(module: Any, signature: ActorSignature, who: str) -> None:
    """Refuse a torch module whose ``forward`` needs other arguments than the signature gives.

    A recurrent network with explicit state (``forward(obs, h)``) in a program that declares
    no state would otherwise fail inside torch with a TypeError that names neither the
    program nor the fix. TorchScript and modules whose signature Python cannot read pass.
    """
    import inspect

    refuse_rsl_rl_model(module)
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError, AttributeError):
        return
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in positional if p.default is p.empty]
    given = [p.name for p in signature.inputs]
    if len(required) <= len(given) <= len(positional):
        return
    takes = f"forward({', '.join(p.name for p in positional)})"
    declared = f"({', '.join(given)})"
    if len(required) > len(given):
        fix = (
            "declare the extra arguments with program.actor(inputs=..., state=...) (inputs in "
            "order, then each recurrent state, e.g. state=[program.memory('h', (1, 64), "
            "batch_axis=1)]), or pass a module whose forward takes the observation alone"
        )
    else:
        fix = "make program.actor(...) declare as many inputs and states as forward takes"
    raise ActorError(
        f"{who}: torch actor {torch_module_name(module)}'s {takes} needs {len(required)} "
        f"argument(s), the program gives {len(given)} {declared}. Fix: {fix}."
    )


# What an actor input may be bound to in ``Program.actor(inputs=...)``: the whole observation
# (OBS), observation terms by name (gathered from ``obs`` in that order), or a port read as is.
Binding = str | tuple[str, ...] | Port


@dataclass(frozen=True, slots=True)
class ActorState:
    """A memory the actor reads through input ``input_name`` and writes through ``output_name``."""

    memory: Memory
    input_name: str
    output_name: str


@dataclass(frozen=True, slots=True)
class ActorDeclaration:
    """How the program calls its actor (``Program.actor``): inputs, recurrent state, actions.

    ``inputs`` is None for the default: one input, fed the whole observation.
    ``actions`` names the actor output that is the action vector (a name, a position, or None
    for the one output that is not state).
    """

    inputs: tuple[tuple[str, Binding], ...] | None = None
    state: tuple[ActorState, ...] = ()
    actions: str | int | None = None


def state_names(memory: Memory) -> tuple[str, str]:
    """The actor input/output names a state memory binds by default: ``h`` -> ``h_in``/``h_out``.

    Isaac Lab's and rsl_rl's recurrent exports name them so (``h_in``, ``c_in`` -> ``h_out``,
    ``c_out``).
    """
    last = memory.name.rsplit(".", 1)[-1]
    return f"{last}_in", f"{last}_out"
