"""Rewrite ``hoist_shared``: what both branches of the If compute runs once, after it.

apply_actions runs at every tick, so the policy branch and the apply-only branch both hold
it, on different memory (the value process_actions just wrote, or the one read). Matching the
two branches output by output, from the outputs back to the inputs, finds those nodes: same
op, same attributes, inputs that match again. A matched node moves after the If; where the
branches differ (the memory), the If returns that value instead, once per pair of values.
Exact: each tick computes the same ops on the same values; only where they sit changes.

A node stays in the branches when a node that does not move still reads it there (moving it
would compute it twice), or when moving it would make the If return more values than before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import onnx
from onnx import helper

from compiler.build._rewrite_graph import (
    NONDETERMINISTIC,
    Names,
    attributes_equal,
    insert_after,
    local_names,
    producers,
    remove_dead,
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Outer:
    name: str  # the same value from outside the If in both branches


@dataclasses.dataclass(frozen=True, slots=True)
class _Hole:
    then: str  # where the branches differ: the If returns this pair as one output
    other: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Shared:
    pair: tuple[int, int]  # (node index in then, node index in else)
    output: int


_Value = _Outer | _Hole | _Shared


def hoist_shared(model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> int:
    """Move the work both branches of each top-level If do after it; the nodes moved."""
    moved = 0
    names = Names(model)
    for index in [i for i, n in enumerate(model.graph.node) if n.op_type == "If"]:
        moved += _hoist(model.graph, model.graph.node[index], types, names)
    if moved:
        remove_dead(model)
    return moved


class _Matcher:
    """Match the values of the two branches (then, else), memoized by pair of names."""

    def __init__(self, then: onnx.GraphProto, other: onnx.GraphProto) -> None:
        self.branches = (then, other)
        self.made = (producers(then), producers(other))
        self.memo: dict[tuple[str, str], _Value] = {}
        self.pairs: dict[tuple[int, int], list[_Value | None]] = {}  # inputs, in post-order
        self.paired: tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]] = ({}, {})

    def resolve(self, side: int, name: str) -> str:
        """Look through Identity nodes of a branch to the value they pass on."""
        graph, made = self.branches[side], self.made[side]
        while name in made:
            node = graph.node[made[name][0]]
            if node.op_type != "Identity":
                break
            name = node.input[0]
        return name

    def match(self, then: str, other: str) -> _Value:
        then, other = self.resolve(0, then), self.resolve(1, other)
        key = (then, other)
        if key not in self.memo:
            self.memo[key] = self._match(then, other)
        return self.memo[key]

    def _match(self, then: str, other: str) -> _Value:
        a, b = self.made[0].get(then), self.made[1].get(other)
        if a is None and b is None:
            return _Outer(then) if then == other else _Hole(then, other)
        if a is None or b is None or a[1] != b[1]:
            return _Hole(then, other)
        pair = (a[0], b[0])
        node_a, node_b = self.branches[0].node[a[0]], self.branches[1].node[b[0]]
        if not _same_op(node_a, node_b) or self.paired[0].get(a[0], pair) != pair:
            return _Hole(then, other)
        if self.paired[1].get(b[0], pair) != pair:
            return _Hole(then, other)
        if pair not in self.pairs:
            self.paired[0][a[0]], self.paired[1][b[0]] = pair, pair
            inputs = [
                None if not x else self.match(x, y)
                for x, y in zip(node_a.input, node_b.input, strict=True)
            ]
            self.pairs[pair] = inputs
        return _Shared(pair, a[1])


def _same_op(a: onnx.NodeProto, b: onnx.NodeProto) -> bool:
    return (
        a.op_type == b.op_type
        and a.domain == b.domain
        and a.op_type not in NONDETERMINISTIC
        and len(a.input) == len(b.input)
        and len(a.output) == len(b.output)
        and [bool(x) for x in a.input] == [bool(y) for y in b.input]
        and attributes_equal(a, b)
    )


def _hoist(
    top: onnx.GraphProto,
    if_node: onnx.NodeProto,
    types: dict[str, onnx.TypeProto],
    names: Names,
) -> int:
    branches = {a.name: a.g for a in if_node.attribute}
    then, other = branches["then_branch"], branches["else_branch"]
    matcher = _Matcher(then, other)
    roots = [matcher.match(t.name, e.name) for t, e in zip(then.output, other.output, strict=True)]
    moved = set(matcher.pairs)
    while True:
        demoted = _escaping(matcher, moved, roots) or _costly(matcher, moved, roots)
        if demoted is None:
            break
        moved.discard(demoted)
    moved = {p for p in moved if _reachable(p, matcher, moved, roots)}
    if not any(_is_work(matcher, p) for p in moved) and not any(
        isinstance(r, _Outer) for r in roots
    ):
        return 0
    holes, _ = _holes(matcher, moved, roots)
    holes |= {r for r in (_value(r, matcher, moved) for r in roots) if isinstance(r, _Hole)}
    if any(h.then not in types or h.other not in types for h in holes):
        return 0  # a value onnx cannot type would become a branch output without a type
    _rebuild(top, if_node, matcher, moved, roots, types, names)
    return sum(1 for p in moved if _is_work(matcher, p))


def _is_work(matcher: _Matcher, pair: tuple[int, int]) -> bool:
    return matcher.branches[0].node[pair[0]].op_type != "Constant"


def _value(v: _Value | None, matcher: _Matcher, moved: set[tuple[int, int]]) -> _Value | None:
    """``v`` once the pairs outside ``moved`` stay in the branches (they become holes)."""
    if isinstance(v, _Shared) and v.pair not in moved:
        a, b = v.pair
        return _Hole(
            matcher.branches[0].node[a].output[v.output],
            matcher.branches[1].node[b].output[v.output],
        )
    return v


def _escaping(
    matcher: _Matcher, moved: set[tuple[int, int]], roots: Sequence[_Value]
) -> tuple[int, int] | None:
    """A moved pair whose value a node staying in a branch still reads (Constants may be
    copied, so they never escape)."""
    for side in (0, 1):
        graph = matcher.branches[side]
        staying_reads: set[str] = set()
        moved_nodes = {p[side] for p in moved}
        for i, node in enumerate(graph.node):
            if i not in moved_nodes:
                staying_reads.update(node.input)
                for attr in node.attribute:
                    for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                        staying_reads.update(n for x in sub.node for n in x.input)
        for k, value in enumerate(graph.output):
            root = _value(roots[k], matcher, moved)
            if isinstance(root, _Hole):
                staying_reads.add(matcher.resolve(side, value.name))
        for pair in sorted(moved):
            node = graph.node[pair[side]]
            if node.op_type != "Constant" and staying_reads & set(node.output):
                return pair
    return None


def _holes(
    matcher: _Matcher, moved: set[tuple[int, int]], roots: Sequence[_Value]
) -> tuple[set[_Hole], int]:
    """The distinct holes the moved pairs read, and how many outputs the If then has."""
    inner: set[_Hole] = set()
    for pair in moved:
        for v in matcher.pairs[pair]:
            value = _value(v, matcher, moved)
            if isinstance(value, _Hole):
                inner.add(value)
    as_roots = [r for r in (_value(r, matcher, moved) for r in roots) if isinstance(r, _Hole)]
    return inner, len(as_roots) + len(inner - set(as_roots))


def _costly(
    matcher: _Matcher, moved: set[tuple[int, int]], roots: Sequence[_Value]
) -> tuple[int, int] | None:
    """While the If would return more values than before, the moved pair reading most holes."""
    _, outputs = _holes(matcher, moved, roots)
    if outputs <= len(roots):
        return None
    reading = [
        (sum(isinstance(_value(v, matcher, moved), _Hole) for v in matcher.pairs[p]), p)
        for p in moved
        if _is_work(matcher, p)
    ]
    return max(reading)[1] if reading else None


def _reachable(
    pair: tuple[int, int],
    matcher: _Matcher,
    moved: set[tuple[int, int]],
    roots: Sequence[_Value],
) -> bool:
    """Whether an output still needs ``pair`` after the demotions."""
    stack = [r for r in roots if isinstance(r, _Shared) and r.pair in moved]
    seen: set[tuple[int, int]] = set()
    while stack:
        current = stack.pop().pair  # type: ignore[union-attr]
        if current == pair:
            return True
        if current in seen:
            continue
        seen.add(current)
        stack += [v for v in matcher.pairs[current] if isinstance(v, _Shared) and v.pair in moved]
    return False


def _rebuild(
    top: onnx.GraphProto,
    if_node: onnx.NodeProto,
    matcher: _Matcher,
    moved: set[tuple[int, int]],
    roots: Sequence[_Value],
    types: dict[str, onnx.TypeProto],
    names: Names,
) -> None:
    then, other = matcher.branches
    wires = list(if_node.output)
    if_outputs: list[str] = []
    branch_outputs: tuple[list[str], list[str]] = ([], [])
    hole_names: dict[_Hole, str] = {}

    listed: tuple[set[str], set[str]] = (set(), set())

    def inside(side: int, name: str) -> str:
        """``name`` as a value of the branch, listed once: an Identity when it comes from
        outside the branch or is listed already (onnxruntime needs both)."""
        graph = matcher.branches[side]
        if name in local_names(graph) and name not in listed[side]:
            listed[side].add(name)
            return name
        local = names.fresh(f"{name}_passed")
        graph.node.append(helper.make_node("Identity", [name], [local]))
        types[local] = types[name]
        listed[side].add(local)
        return local

    def add_output(hole: _Hole, wire: str) -> None:
        """One If output per distinct pair of values; a second wire copies the first."""
        if hole in hole_names:
            after.append(helper.make_node("Identity", [hole_names[hole]], [wire]))
            return
        if_outputs.append(wire)
        branch_outputs[0].append(inside(0, hole.then))
        branch_outputs[1].append(inside(1, hole.other))
        hole_names[hole] = wire

    shared_names: dict[tuple[tuple[int, int], int], str] = {}
    after: list[onnx.NodeProto] = []
    for wire, root in zip(wires, roots, strict=True):
        value = _value(root, matcher, moved)
        if isinstance(value, _Hole) and value not in hole_names:
            add_output(value, wire)
        elif isinstance(value, _Shared):
            shared_names.setdefault((value.pair, value.output), wire)
    holes, _ = _holes(matcher, moved, roots)
    for hole in sorted(holes - set(hole_names), key=lambda h: (h.then, h.other)):
        add_output(hole, names.fresh(f"{if_node.output[0]}_shared"))

    def ref(v: _Value | None) -> str:
        value = _value(v, matcher, moved)
        if value is None:
            return ""
        if isinstance(value, _Outer):
            return value.name
        if isinstance(value, _Hole):
            return hole_names[value]
        return shared_names[(value.pair, value.output)]

    for pair in matcher.pairs:  # post-order: inputs before the nodes that read them
        if pair not in moved:
            continue
        original = then.node[pair[0]]
        copy = onnx.NodeProto()
        copy.CopyFrom(original)
        for k, name in enumerate(original.output):
            key = (pair, k)
            if key not in shared_names:
                shared_names[key] = names.fresh(f"{name}_shared") if name else ""
            copy.output[k] = shared_names[key]
        for k, v in enumerate(matcher.pairs[pair]):
            copy.input[k] = ref(v)
        after.append(copy)
    for wire, root in zip(wires, roots, strict=True):
        value = _value(root, matcher, moved)
        if isinstance(value, _Hole) and hole_names[value] != wire:
            add_output(value, wire)  # the same pair on a second wire: a copy of the first
        elif isinstance(value, _Outer):
            after.append(helper.make_node("Identity", [value.name], [wire]))
        elif isinstance(value, _Shared) and shared_names[(value.pair, value.output)] != wire:
            after.append(helper.make_node("Identity", [ref(value)], [wire]))
    for side, graph in enumerate((then, other)):
        outputs = [_output(name, types) for name in branch_outputs[side]]
        del graph.output[:]
        graph.output.extend(outputs)
    del if_node.output[:]
    if_node.output.extend(if_outputs)
    insert_after(top, if_node, after)


def _output(name: str, types: dict[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    value = onnx.ValueInfoProto()
    value.name = name
    if name in types:
        value.type.CopyFrom(types[name])
    return value
