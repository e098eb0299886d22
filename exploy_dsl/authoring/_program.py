"""The Program builder: declarations of ports, groups and the three stages."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from exploy_dsl._checks import check_int, check_number, check_range
from exploy_dsl._errors import DeclarationError
from exploy_dsl.authoring._actor import ActorDeclaration, ActorState, Binding, state_names
from exploy_dsl.authoring._names import (
    ENV_METADATA_KEYS,
    RESERVED_METADATA_KEYS,
    check_name,
    check_wire_name,
)
from exploy_dsl.authoring._ports import (
    DType,
    Input,
    Memory,
    Output,
    Port,
    normalize_batch_axis,
    normalize_dtype,
    normalize_init,
    normalize_metadata,
    normalize_shape,
    rebatched,
)
from exploy_dsl.authoring._robot import RobotVocabulary
from exploy_dsl.contract._batch import DYNAMIC, Batch, check_batch
from exploy_dsl.contract._wires import OBS

F = TypeVar("F", bound=Callable[..., Any])

# ctx.step_count is an int32 (DESIGN.md section 2); decimation is compared against it.
INT32_MAX = 2**31 - 1
_CLIP = "e.g. clip=(-100.0, 100.0)"


@dataclass(frozen=True, slots=True)
class Stage:
    """A user stage function with the options given to its decorator."""

    kind: str
    fn: Callable[..., Any]
    clip: tuple[float, float] | None = None
    n_actions: int | None = None
    # observations only: history of every term, the normalizer, and whether the normalizer and
    # constant term scales are folded into the actor's first layer (exploy_dsl/library).
    history: Any = None
    normalizer: Any = None
    fold_into_actor: bool = False

    @property
    def location(self) -> str:
        """``file:line`` of the stage's ``def``, for error messages."""
        code = getattr(self.fn, "__code__", None)
        if code is None:
            return "<unknown>"
        return f"{code.co_filename}:{code.co_firstlineno}"

    @property
    def label(self) -> str:
        return f"{self.kind} stage {getattr(self.fn, '__name__', '?')!r}"


@dataclass(frozen=True, slots=True, eq=False)
class Group:
    """A named set of ports ``<group>.<member>`` that shares one metadata entry."""

    name: str
    metadata: dict[str, Any] | None
    program: Program

    def input(
        self,
        member: str,
        shape: int | tuple[int, ...],
        dtype: DType | Any = "float32",
        metadata: dict[str, Any] | None = None,
    ) -> Input:
        return self.program.input(self._member(member), shape, dtype, metadata)

    def output(
        self,
        member: str,
        shape: int | tuple[int, ...],
        dtype: DType | Any = "float32",
        metadata: dict[str, Any] | None = None,
    ) -> Output:
        return self.program.output(self._member(member), shape, dtype, metadata)

    def memory(
        self,
        member: str,
        shape: int | tuple[int, ...],
        dtype: DType | Any = "float32",
        init: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> Memory:
        return self.program.memory(self._member(member), shape, dtype, init, metadata)

    @property
    def members(self) -> tuple[Port, ...]:
        prefix = self.name + "."
        return tuple(p for p in self.program.ports if p.name.startswith(prefix))

    def _member(self, member: str) -> str:
        check_name(member, f"member of group {self.name!r}")
        return f"{self.name}.{member}"


class Program(RobotVocabulary):
    """A deployment program: ports, groups and stages, declared once.

    The one mutable object of exploy-dsl. Declare ports first, then decorate the stage
    functions; ``exploy_dsl.trace(program)`` turns it into graphs that the compiler stitches
    and the reference interpreter runs.
    """

    def __init__(
        self,
        name: str,
        *,
        decimation: int,
        sim_dt: float,
        metadata: dict[str, Any] | None = None,
        batch: Batch = 1,
    ) -> None:
        self.name = check_name(name, "program")
        self.decimation = check_int(
            decimation,
            f"program {name!r}: decimation",
            fix="e.g. decimation=4 runs the policy every 4th tick (ticks per policy step)",
        )
        if decimation > INT32_MAX:
            raise DeclarationError(
                f"program {name!r}: decimation {decimation} is beyond int32 range (at most "
                f"{INT32_MAX}): the file's tick counter ctx.step_count is an int32 and the "
                "policy step is ctx.step_count % decimation == 0. Fix: use a decimation that "
                "fits in int32 (ticks per policy step, e.g. 4)."
            )
        self.sim_dt = check_number(
            sim_dt,
            f"program {name!r}: sim_dt",
            minimum=0,
            inclusive=False,
            fix="e.g. sim_dt=0.005 (seconds per tick) for a 200 Hz control loop",
        )
        spec = check_batch(batch, f"program {name!r}: batch")
        # Ports are declared at ``batch`` (1, one env's, when the batch is dynamic).
        self.batch = 1 if spec == DYNAMIC else spec
        self.dynamic_batch = spec == DYNAMIC
        meta = normalize_metadata(metadata, f"program {name!r}") or {}
        for key in meta:
            if key in RESERVED_METADATA_KEYS or key.startswith("exploy_dsl."):
                raise DeclarationError(
                    f"program {name!r} metadata key {key!r} is written by the compiler. "
                    "Fix: remove it from the metadata (or choose another key)."
                )
        self.metadata: dict[str, Any] = meta
        self._ports: dict[str, Port] = {}
        self._groups: dict[str, Group] = {}
        self._stages: dict[str, Stage] = {}
        self._actor = ActorDeclaration()
        self._sealed = False
        # Ports this program's ports were made from by with_batch: a stage may read the user's.
        self._aliases: dict[str, tuple[Port, ...]] = {}
        # Joint-target groups declared with joint_targets(articulation=...): stated, not implied.
        self._stated_articulations: set[str] = set()

    def sealed(self) -> Program:
        """A copy that refuses further declarations: what ``trace`` and the compiler work on.

        Ports and stages are immutable and shared; the dicts holding them are copied, so a port
        declared on this program later is never half part of a traced one.
        """
        copy = object.__new__(type(self))
        copy.name, copy.decimation, copy.sim_dt = self.name, self.decimation, self.sim_dt
        copy.batch, copy.dynamic_batch = self.batch, self.dynamic_batch
        copy._aliases = dict(self._aliases)
        copy.metadata = json.loads(json.dumps(self.metadata))
        copy._ports = dict(self._ports)
        copy._groups = {n: Group(g.name, g.metadata, copy) for n, g in self._groups.items()}
        copy._stages = dict(self._stages)
        copy._actor = self._actor
        copy._stated_articulations = set(self._stated_articulations)
        copy._sealed = True
        return copy

    # -- declarations -------------------------------------------------------------------------

    def input(
        self,
        name: str,
        shape: int | tuple[int, ...],
        dtype: DType | Any = "float32",
        metadata: dict[str, Any] | None = None,
    ) -> Input:
        """Declare an input the robot provides at every tick, e.g. ``obj.robot.joints.pos``."""
        what = f"input {name!r}"
        self._check_new(name, what)
        check_wire_name(name, "input")
        port = Input(
            name,
            normalize_shape(shape, what),
            normalize_dtype(dtype, what),
            normalize_metadata(metadata, what),
            self.batch,
            dynamic_batch=self.dynamic_batch,
        )
        self._ports[name] = port
        return port

    def output(
        self,
        name: str,
        shape: int | tuple[int, ...],
        dtype: DType | Any = "float32",
        metadata: dict[str, Any] | None = None,
    ) -> Output:
        """Declare an output apply_actions writes at every tick, e.g. joint targets."""
        what = f"output {name!r}"
        self._check_new(name, what)
        check_wire_name(name, "output")
        port = Output(
            name,
            normalize_shape(shape, what),
            normalize_dtype(dtype, what),
            normalize_metadata(metadata, what),
            self.batch,
            dynamic_batch=self.dynamic_batch,
        )
        self._ports[name] = port
        return port

    def memory(
        self,
        name: str,
        shape: int | tuple[int, ...],
        dtype: DType | Any = "float32",
        init: Any = None,
        metadata: dict[str, Any] | None = None,
        *,
        batch_axis: int = 0,
    ) -> Memory:
        """Declare state kept between calls: wires ``memory.<name>.in``/``.out``.

        ``init`` is the value after every reset (default zeros); it is stored in the file.
        ``batch_axis`` places the batch dimension in the file shape: a recurrent actor's state
        ``[layers, 1, hidden]`` is ``memory("h", (layers, hidden), batch_axis=1)``.
        """
        what = f"memory {name!r}"
        self._check_new(name, what)
        shape_t = normalize_shape(shape, what)
        dtype_n = normalize_dtype(dtype, what)
        axis = normalize_batch_axis(batch_axis, shape_t, what)
        port = Memory(
            name,
            shape_t,
            dtype_n,
            normalize_metadata(metadata, what),
            self.batch,
            axis,
            self.dynamic_batch,
            init=normalize_init(init, shape_t, self.batch, dtype_n, what, axis),
        )
        self._ports[name] = port
        return port

    def group(self, name: str, metadata: dict[str, Any] | None = None) -> Group:
        """Declare a group; its members are named ``<group>.<member>``."""
        what = f"group {name!r}"
        self._check_new(name, what)
        group = Group(name, normalize_metadata(metadata, what), self)
        self._groups[name] = group
        return group

    # -- stages -------------------------------------------------------------------------------

    @overload
    def observations(self, fn: F, /) -> F: ...
    @overload
    def observations(
        self,
        *,
        clip: tuple[float, float] | None = None,
        history: Any = None,
        normalize: Any = None,
        fold_into_actor: bool = False,
    ) -> Callable[[F], F]: ...
    def observations(  # type: ignore[misc]
        self,
        fn: F | None = None,
        /,
        *,
        clip: tuple[float, float] | None = None,
        history: Any = None,
        normalize: Any = None,
        fold_into_actor: bool = False,
    ) -> F | Callable[[F], F]:
        """Decorate ``fn(v) -> [(term_name, value), ...]``; terms are concatenated in order.

        ``clip=(lo, hi)`` clips the concatenated observation (as rsl_rl's ``clip_obs``).
        ``history=N`` (or ``exploy_dsl.History(N, order=..., layout=...)``) keeps every term
        over the last N policy steps, as Isaac Lab's group ``history_length`` does.
        ``normalize=exploy_dsl.normalizer(...)`` normalizes the clipped observation (rsl_rl's
        empirical normalizer); ``fold_into_actor=True`` moves it and the constant term scales
        into the actor's first layer at compile time (refused when that is not exact).
        """
        from exploy_dsl.library._history import as_history
        from exploy_dsl.library._normalizer import check_normalizer

        clip_t = None if clip is None else check_range(clip, "observations clip", fix=_CLIP)
        history_t = as_history(history, "observations(history=...)")
        norm = check_normalizer(normalize, "observations(normalize=...)")
        if not isinstance(fold_into_actor, bool):
            raise DeclarationError(
                f"observations(fold_into_actor=...) must be True or False, got {fold_into_actor!r}."
            )

        def register(f: F) -> F:
            fn = _check_stage_fn(f, 1, "observations")
            self._register(
                Stage("observations", fn, clip_t, None, history_t, norm, fold_into_actor)
            )
            return f

        return register(fn) if fn is not None else register

    def process_actions(
        self, fn: Callable[..., Any] | None = None, /, *, n_actions: int | None = None
    ) -> Callable[[F], F]:
        """Decorate ``fn(v, actions) -> {memory: value}``, run once per policy step.

        ``n_actions`` is the size of the actor's output this stage consumes. It is required:
        the stage is traced (and its ``actions`` argument shaped) before any actor is known.
        """
        if fn is not None or n_actions is None:
            name = getattr(fn, "__name__", None) if fn is not None else None
            where = f" on {name!r}" if name else ""
            raise DeclarationError(
                f"@program.process_actions{'' if fn is not None else '()'}{where} is missing "
                "n_actions, the size of the actor's output: the stage is traced with an "
                "`actions` argument of that size before any actor is known, so it cannot be "
                "taken from the actor. Fix: @program.process_actions(n_actions=N), e.g. "
                "n_actions=12 for 12 joint targets."
            )
        n_actions = check_int(
            n_actions,
            "process_actions(n_actions=...)",
            fix="pass the size of the actor's output, e.g. n_actions=12",
        )

        def register(f: F) -> F:
            fn = _check_stage_fn(f, 2, "process_actions")
            self._register(Stage("process_actions", fn, n_actions=n_actions))
            return f

        return register

    def apply_actions(self, fn: F, /) -> F:
        """Decorate ``fn(v) -> {output_or_memory: value}``, run at every tick."""
        self._register(Stage("apply_actions", _check_stage_fn(fn, 1, "apply_actions")))
        return fn

    # -- the actor ----------------------------------------------------------------------------

    def actor(
        self,
        *,
        inputs: Mapping[str, Any] | None = None,
        state: Sequence[Memory] | Mapping[Memory, tuple[str, str]] | None = None,
        actions: str | int | None = None,
    ) -> None:
        """Say how the actor is called: which values feed its inputs, its recurrent state.

        Without a call, the actor takes the whole observation and returns the actions.

        - ``inputs``: actor input name -> ``"obs"`` (the whole observation), observation term
          names (``["ref_pos", "ref_vel"]``, gathered from ``obs`` in that order), or a port
          (an input or memory, read as it is). Every actor input must be bound.
        - ``state``: memories the actor reads and writes (an LSTM's h and c). For a torch
          module ``forward(obs, h, c) -> (actions, h, c)`` list them in forward's order; an
          ONNX actor binds memory ``h`` to its input ``h_in`` and output ``h_out`` unless a
          mapping ``{memory: ("h_in", "h_out")}`` says otherwise. The memory's declared
          shape and initial value (zeros by default) are those of the state after a reset;
          the state is written on policy steps only.
        - ``actions``: the actor output that is the action vector, by name or position, when
          the actor has other outputs (SB3's values and log_prob are then dropped).
        """
        what = f"program {self.name!r} actor"
        self._check_open(what)
        self._actor = ActorDeclaration(
            _actor_inputs(self, inputs, what),
            _actor_state(self, state, what),
            _actor_actions(actions, what),
        )

    @property
    def actor_declaration(self) -> ActorDeclaration:
        return self._actor

    # -- queries ------------------------------------------------------------------------------

    @property
    def ports(self) -> tuple[Port, ...]:
        return tuple(self._ports.values())

    @property
    def inputs(self) -> tuple[Input, ...]:
        return tuple(p for p in self._ports.values() if isinstance(p, Input))

    @property
    def outputs(self) -> tuple[Output, ...]:
        return tuple(p for p in self._ports.values() if isinstance(p, Output))

    @property
    def memories(self) -> tuple[Memory, ...]:
        return tuple(p for p in self._ports.values() if isinstance(p, Memory))

    @property
    def groups(self) -> tuple[Group, ...]:
        return tuple(self._groups.values())

    @property
    def stages(self) -> dict[str, Stage]:
        return dict(self._stages)

    @property
    def update_rate(self) -> float:
        """Ticks per second, ``1/sim_dt``; within 1e-9 of a whole number, that number.

        exploy's controller truncates the stored rate to an int, so 199.99999999999997 must
        never reach a file that means 200.
        """
        rate = 1.0 / self.sim_dt
        nearest = round(rate)
        return float(nearest) if abs(rate - nearest) <= 1e-9 * rate else rate

    @property
    def stated_articulations(self) -> frozenset[str]:
        """Joint-target groups whose articulation was stated (``joint_targets(articulation=)``)."""
        return frozenset(self._stated_articulations)

    def port(self, name: str) -> Port | None:
        return self._ports.get(name)

    def owns(self, port: Port) -> bool:
        """Whether ``port`` is this program's, or the one it was made from by ``with_batch``
        (a stage written for the program reads the ports its author declared)."""
        return self._ports.get(port.name) is port or any(
            alias is port for alias in self._aliases.get(port.name, ())
        )

    @property
    def batch_spec(self) -> Batch:
        """The batch the file gets: an int (1, the robot's, by default) or ``"dynamic"``."""
        return DYNAMIC if self.dynamic_batch else self.batch

    def with_batch(self, batch: Batch) -> Program:
        """A sealed copy for ``batch`` envs evaluated in one call (``"dynamic"``: any number).

        Every port gets the batch dimension (at a memory's ``batch_axis``); each memory starts
        from one env's initial value in every env. The stages are the same functions and read
        the same ports: ``v[joints.pos]`` is ``[batch, 12]`` once traced. ``ctx.step_count``
        stays one scalar, so all envs step in lockstep. The robot file is batch 1.
        """
        spec = check_batch(batch, f"program {self.name!r}: with_batch")
        copy = self.sealed()
        if spec == self.batch_spec:
            return copy
        size = 1 if spec == DYNAMIC else spec
        dynamic = spec == DYNAMIC
        what = f"program {self.name!r} at batch {spec}"
        for name, port in self._ports.items():
            copy._ports[name] = rebatched(port, size, dynamic, what)
            copy._aliases[name] = (*self._aliases.get(name, ()), port)
        copy.batch, copy.dynamic_batch = size, dynamic
        declaration = self._actor

        def mine(port: Any) -> Any:
            return copy._ports[port.name] if isinstance(port, Port) else port

        copy._actor = ActorDeclaration(
            None
            if declaration.inputs is None
            else tuple((n, mine(b)) for n, b in declaration.inputs),
            tuple(
                ActorState(mine(s.memory), s.input_name, s.output_name) for s in declaration.state
            ),
            declaration.actions,
        )
        return copy

    def __repr__(self) -> str:
        batch = f"batch={self.batch_spec!r}, " if self.batch_spec != 1 else ""
        return (
            f"Program({self.name!r}, decimation={self.decimation}, sim_dt={self.sim_dt}, {batch}"
            f"{len(self.inputs)} inputs, {len(self.outputs)} outputs, {len(self.memories)} memory)"
        )

    # -- internals ----------------------------------------------------------------------------

    def with_memories(self, memories: Sequence[Memory]) -> Program:
        """A sealed copy with more memory (an actor's state lifted out of a torch module)."""
        copy = self.sealed()
        for memory in memories:
            memory = copy._adopt(memory)
            if memory.name in copy._ports:
                raise DeclarationError(
                    f"memory {memory.name!r}, where the actor's own state goes, is already "
                    f"declared as {copy._ports[memory.name]!r}. Fix: rename that port."
                )
            copy._ports[memory.name] = memory
        return copy

    def with_generated_memories(self, memories: Sequence[Memory], what: str) -> Program:
        """A sealed copy with memory the library generates (observation history): the same
        name rules as a declared port, so a clash is a DeclarationError naming ``what``."""
        copy = self.sealed()
        for memory in memories:
            copy._check_free(memory.name, f"{what}: generated memory {memory.name!r}")
            copy._ports[memory.name] = copy._adopt(memory)
        return copy

    def _adopt(self, memory: Memory) -> Memory:
        """A generated memory made at ``self.batch`` marked dynamic when this program is."""
        if memory.dynamic_batch == self.dynamic_batch:
            return memory
        adopted = rebatched(memory, self.batch, self.dynamic_batch, f"program {self.name!r}")
        assert isinstance(adopted, Memory)
        return adopted

    def _check_open(self, what: str) -> None:
        if self._sealed:
            raise DeclarationError(
                f"{what}: program {self.name!r} here is the sealed copy a trace or compile "
                "works on; it takes no more declarations. Fix: declare on the original Program "
                "(before compiling) and trace or compile it again."
            )

    def _check_new(self, name: str, what: str) -> None:
        self._check_open(what)
        self._check_free(name, what)

    def _check_free(self, name: str, what: str) -> None:
        check_name(name, what)
        if name in self._ports or name in self._groups:
            existing = self._ports.get(name) or self._groups[name]
            raise DeclarationError(
                f"{what} is declared twice (already declared as {existing!r}). "
                "Fix: every port and group name must be unique; rename one of them."
            )
        for group in self._groups:
            if group.startswith(name + "."):
                raise DeclarationError(
                    f"{what} clashes with group {group!r}: a port name may not be a prefix of a "
                    "group name. Fix: rename one of them."
                )
        for other in self._ports:
            if other.startswith(name + ".") or name.startswith(other + "."):
                raise DeclarationError(
                    f"{what} clashes with {self._ports[other]!r}: one name may not be a "
                    "dot-prefix of another (their metadata keys would collide). "
                    "Fix: rename one of them."
                )
        if name in RESERVED_METADATA_KEYS or name in ENV_METADATA_KEYS:
            raise DeclarationError(
                f"{what}: {name!r} is a top level metadata key of the file contract. "
                "Fix: choose another name."
            )
        if name in self.metadata:
            raise DeclarationError(
                f"{what} collides with program metadata key {name!r}: both would be written "
                "as the same metadata key. Fix: rename the port or the metadata key."
            )

    def _register(self, stage: Stage) -> None:
        self._check_open(stage.label)
        if stage.kind in self._stages:
            raise DeclarationError(
                f"program {self.name!r} already has a {stage.kind} stage "
                f"({self._stages[stage.kind].location}); got a second one at {stage.location}. "
                "Fix: keep one function per stage."
            )
        self._stages[stage.kind] = stage


def _check_stage_fn(fn: Any, n_args: int, kind: str) -> Callable[..., Any]:
    if not callable(fn):
        raise DeclarationError(
            f"@program.{kind} must decorate a function, got {type(fn).__name__}. "
            f"Fix: write `@program.{kind}` directly above `def ...`."
        )
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn  # builtins etc.: trust the call
    positional = [
        p
        for p in params.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(positional) != n_args and not any(p.kind == p.VAR_POSITIONAL for p in params.values()):
        expected = "(v, actions)" if n_args == 2 else "(v)"
        raise DeclarationError(
            f"{kind} stage {getattr(fn, '__name__', '?')!r} takes {len(positional)} required "
            f"arguments; expected {n_args}: def {getattr(fn, '__name__', 'stage')}{expected}."
        )
    return fn


def _actor_inputs(
    program: Program, inputs: Mapping[str, Any] | None, what: str
) -> tuple[tuple[str, Binding], ...] | None:
    if inputs is None:
        return None
    if not isinstance(inputs, Mapping) or not inputs:
        raise DeclarationError(
            f"{what}: inputs must be a non-empty dict of actor input name -> binding, got "
            f"{inputs!r}. Fix: e.g. inputs={{'obs': 'obs', 'ref_obs': ['ref_pos', 'ref_vel']}}."
        )
    bound: list[tuple[str, Binding]] = []
    for name, value in inputs.items():
        if not isinstance(name, str) or not name:
            raise DeclarationError(f"{what}: actor input name {name!r} must be a str.")
        if isinstance(value, Port):
            if program.port(value.name) is not value or isinstance(value, Output):
                raise DeclarationError(
                    f"{what}: input {name!r} is bound to {value!r}, which is not an input or "
                    f"memory of program {program.name!r}. Fix: bind a port this program declared."
                )
            bound.append((name, value))
        elif isinstance(value, str):
            bound.append((name, value if value == OBS else (value,)))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            bound.append((name, tuple(value)))
        else:
            raise DeclarationError(
                f"{what}: input {name!r} is bound to {value!r}; expected 'obs', a list of "
                "observation term names, or a declared input/memory port."
            )
    return tuple(bound)


def _actor_state(
    program: Program,
    state: Sequence[Memory] | Mapping[Memory, tuple[str, str]] | None,
    what: str,
) -> tuple[ActorState, ...]:
    if state is None:
        return ()
    items: list[tuple[Any, Any]]
    if isinstance(state, Mapping):
        items = list(state.items())
    elif isinstance(state, (list, tuple)):
        items = [(m, None) for m in state]
    else:
        raise DeclarationError(
            f"{what}: state must be a list of memories (or a dict memory -> (input, output) "
            f"names), got {type(state).__name__}. Fix: e.g. state=[h, c]."
        )
    found: list[ActorState] = []
    for memory, names in items:
        if not isinstance(memory, Memory) or program.port(memory.name) is not memory:
            raise DeclarationError(
                f"{what}: state {memory!r} is not a memory of program {program.name!r}. "
                "Fix: declare it with program.memory(name, shape, batch_axis=...) and pass it."
            )
        if memory.dtype != "float32":
            raise DeclarationError(f"{what}: state memory {memory.name!r} must be float32.")
        if names is None:
            names = state_names(memory)
        if (
            not isinstance(names, tuple)
            or len(names) != 2
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise DeclarationError(
                f"{what}: state memory {memory.name!r} maps to {names!r}; expected the actor's "
                "(input name, output name), e.g. ('h_in', 'h_out')."
            )
        if any(s.memory is memory for s in found):
            raise DeclarationError(f"{what}: state memory {memory.name!r} is listed twice.")
        found.append(ActorState(memory, names[0], names[1]))
    return tuple(found)


def _actor_actions(actions: object, what: str) -> str | int | None:
    if actions is None or (isinstance(actions, str) and actions):
        return actions
    if isinstance(actions, int) and not isinstance(actions, bool) and actions >= 0:
        return actions
    raise DeclarationError(
        f"{what}: actions must be the name or position (int >= 0) of the actor output that is "
        f"the action vector, got {actions!r}."
    )
