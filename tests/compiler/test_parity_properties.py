"""Random programs from a small grammar compile to files that keep parity with their program."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spox import Var

from compiler import check_parity, compile_program, random_stream
from exploy_dsl import Program
from tests._support import assert_same_bits, mlp_actor

# A small, fixed budget: the same examples on every run, so CI is stable and fast.
BUDGET = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TICKS = 30
# Memory writes are clipped so that feedback through memory cannot grow without bound over
# the run (an overflow to inf at slightly different ticks would be a float32 artefact).
MEMORY_BOUND = 10.0

# -- the grammar --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A float32 value ``[1, size]`` built from ports; ``realize`` turns it into spox ops."""

    size: int

    def realize(self, leaves: list[Var]) -> Var:
        raise NotImplementedError


@dataclass(frozen=True)
class Leaf(Expr):
    index: int  # into the leaves a stage may read: inputs, memory, (actions)

    def realize(self, leaves: list[Var]) -> Var:
        return leaves[self.index]


@dataclass(frozen=True)
class Slice(Expr):
    child: Expr
    start: int

    def realize(self, leaves: list[Var]) -> Var:
        ends = (op.const([self.start]), op.const([self.start + self.size]), op.const([1]))
        return op.slice(self.child.realize(leaves), *ends)


@dataclass(frozen=True)
class Concat(Expr):
    left: Expr
    right: Expr

    def realize(self, leaves: list[Var]) -> Var:
        return op.concat([self.left.realize(leaves), self.right.realize(leaves)], axis=1)


@dataclass(frozen=True)
class Unary(Expr):
    kind: str  # tanh | abs
    child: Expr

    def realize(self, leaves: list[Var]) -> Var:
        fn = op.tanh if self.kind == "tanh" else op.abs
        return fn(self.child.realize(leaves))


@dataclass(frozen=True)
class Clip(Expr):
    child: Expr
    lo: float
    hi: float

    def realize(self, leaves: list[Var]) -> Var:
        lo, hi = op.const(np.float32(self.lo)), op.const(np.float32(self.hi))
        return op.clip(self.child.realize(leaves), lo, hi)


@dataclass(frozen=True)
class WithConstant(Expr):
    kind: str  # add | mul | sub (x - c) | rsub (c - x)
    child: Expr
    constant: tuple[float, ...]  # one value, or one per element

    def realize(self, leaves: list[Var]) -> Var:
        x = self.child.realize(leaves)
        c = op.const(np.asarray(self.constant, np.float32).reshape(1, -1))
        if self.kind == "add":
            return op.add(x, c)
        if self.kind == "mul":
            return op.mul(x, c)
        return op.sub(x, c) if self.kind == "sub" else op.sub(c, x)


@dataclass(frozen=True)
class Binary(Expr):
    kind: str  # add | sub
    left: Expr
    right: Expr

    def realize(self, leaves: list[Var]) -> Var:
        fn = op.add if self.kind == "add" else op.sub
        return fn(self.left.realize(leaves), self.right.realize(leaves))


SMALL = st.integers(-20, 20).map(lambda i: i / 10)


@st.composite
def exprs(draw: st.DrawFn, leaves: tuple[int, ...], size: int, depth: int) -> Expr:
    """An expression of ``size`` over leaves of the given sizes, at most ``depth`` deep."""
    kinds = ["leaf"] if depth == 0 else ["leaf", "unary", "clip", "constant", "binary"]
    if depth > 0 and size > 1:
        kinds.append("concat")
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        index = draw(st.integers(0, len(leaves) - 1))
        leaf = Leaf(leaves[index], index)
        if leaves[index] == size:
            return leaf
        if leaves[index] > size:
            start = draw(st.integers(0, leaves[index] - size))
            return Slice(size, leaf, start)
        return Concat(size, leaf, draw(exprs(leaves, size - leaves[index], 0)))
    if kind == "concat":
        left = draw(st.integers(1, size - 1))
        return Concat(
            size, draw(exprs(leaves, left, depth - 1)), draw(exprs(leaves, size - left, depth - 1))
        )
    child = draw(exprs(leaves, size, depth - 1))
    if kind == "unary":
        return Unary(size, draw(st.sampled_from(["tanh", "abs"])), child)
    if kind == "clip":
        lo = draw(st.integers(-20, 0).map(lambda i: i / 10))
        hi = draw(st.integers(1, 20).map(lambda i: i / 10))
        return Clip(size, child, lo, hi)
    if kind == "constant":
        count = draw(st.sampled_from([1, size]))
        values = tuple(draw(st.lists(SMALL, min_size=count, max_size=count)))
        return WithConstant(
            size, draw(st.sampled_from(["add", "mul", "sub", "rsub"])), child, values
        )
    right = draw(exprs(leaves, size, depth - 1))
    return Binary(size, draw(st.sampled_from(["add", "sub"])), child, right)


@dataclass(frozen=True)
class Spec:
    decimation: int
    inputs: tuple[int, ...]
    memories: tuple[tuple[float, ...], ...]  # initial values (their length is the size)
    outputs: tuple[Expr, ...]  # apply_actions, over inputs + memory
    observations: tuple[Expr, ...]  # over inputs + memory
    n_actions: int
    process: tuple[tuple[int, Expr], ...]  # memory index <- expr over inputs + memory + actions
    apply_memory: tuple[tuple[int, Expr], ...]  # memory index <- expr over inputs + memory
    seed: int

    @property
    def n_obs(self) -> int:
        return sum(e.size for e in self.observations)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    inputs = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    memory_sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))
    memories = tuple(tuple(draw(st.lists(SMALL, min_size=n, max_size=n))) for n in memory_sizes)
    leaves = inputs + tuple(memory_sizes)
    n_actions = draw(st.integers(1, 3))
    sizes = st.integers(1, 4)
    observations = tuple(
        draw(st.lists(sizes.flatmap(lambda n: exprs(leaves, n, 2)), min_size=1, max_size=3))
    )
    outputs = tuple(
        draw(st.lists(sizes.flatmap(lambda n: exprs(leaves, n, 2)), min_size=1, max_size=2))
    )
    indices = range(len(memories))
    written = draw(st.lists(st.sampled_from(indices), min_size=1, unique=True))
    with_actions = (*leaves, n_actions)
    process = tuple((m, draw(exprs(with_actions, memory_sizes[m], 2))) for m in written)
    kept = draw(st.lists(st.sampled_from(indices), unique=True))
    apply_memory = tuple((m, draw(exprs(leaves, memory_sizes[m], 2))) for m in kept)
    return Spec(
        draw(st.integers(1, 5)),
        inputs,
        memories,
        outputs,
        observations,
        n_actions,
        process,
        apply_memory,
        draw(st.integers(0, 1000)),
    )


def build(spec: Spec) -> Program:
    program = Program("random", decimation=spec.decimation, sim_dt=0.01)
    inputs = [program.input(f"in{i}", n) for i, n in enumerate(spec.inputs)]
    memories = [
        program.memory(f"m{i}", len(init), init=list(init)) for i, init in enumerate(spec.memories)
    ]
    outputs = [program.output(f"out{i}", e.size) for i, e in enumerate(spec.outputs)]
    ports = [*inputs, *memories]

    def bounded(value: Var) -> Var:
        return op.clip(
            value, op.const(np.float32(-MEMORY_BOUND)), op.const(np.float32(MEMORY_BOUND))
        )

    @program.observations
    def observations(v: Any) -> list[Any]:
        leaves = [v[p] for p in ports]
        return [(f"t{i}", e.realize(leaves)) for i, e in enumerate(spec.observations)]

    @program.process_actions(n_actions=spec.n_actions)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        leaves = [*(v[p] for p in ports), actions]
        return {memories[m]: bounded(e.realize(leaves)) for m, e in spec.process}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        leaves = [v[p] for p in ports]
        written: dict[Any, Any] = {
            o: e.realize(leaves) for o, e in zip(outputs, spec.outputs, strict=True)
        }
        written.update({memories[m]: bounded(e.realize(leaves)) for m, e in spec.apply_memory})
        return written

    return program


@BUDGET
@given(specs())
def test_random_programs_keep_parity(spec: Spec) -> None:
    program = build(spec)
    actor = mlp_actor(spec.n_obs, spec.n_actions, seed=spec.seed).model
    model = compile_program(program, actor)
    report = check_parity(model, program, actor, steps=TICKS, seed=spec.seed)
    assert report.ok, report.render()
    assert report.stream.episodes > 1 or TICKS < 8
    # The build's rewrites (on by default) change no bit: the same file without them agrees.
    plain = compile_program(program, actor, rewrites=False)
    stream = random_stream(program, TICKS, seed=spec.seed)
    assert_same_bits(model, plain, stream.inputs, stream.reset)
