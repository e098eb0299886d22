"""Rewrite ``affine_concat``: a Concat of scaled and offset terms becomes one affine map.

The observation concatenates terms such as ``2 * lin_vel``, ``q - q0``, ``0.05 * qd``: one op
per term on a few values each. Each input of a Concat (nested Concats on the same axis are
flattened into it) is peeled of the constant Mul, Add, Sub and Neg it ends with; the raw
values are concatenated, then multiplied once by the vector of scales and offset once by the
vector of offsets.

Only what keeps every float bit is folded: per element ``x = raw * a + b`` computed as the
original computed it, i.e. at most one Add or Sub of a constant, outside at most one Mul by a
constant (negations and factors of -1 and 1 fold into either freely, a sign flip rounds
nothing). ``(x - c) * s`` keeps its Sub, and two scales stay two Muls: folding them (``c * s``,
``s1 * s2``) would round differently. Elements without an offset get ``-0.0``, the exact
identity of addition (``-0.0 + -0.0`` stays ``-0.0``); without a scale ``1``. NaN and inf
stay element by element what they were: nothing is mixed across elements.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from compiler.build._rewrite_graph import (
    Names,
    constant_node,
    constants,
    index_of,
    producers,
    remove_dead,
    static_shape,
    uses,
)
from exploy_dsl.contract._graphs import graphs

_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


def affine_concat(model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> int:
    """Fold the scales and offsets of every Concat's inputs; the nodes saved."""
    saved = 0
    known = constants(model)
    names = Names(model)
    for graph in list(graphs(model.graph)):
        # Outermost first: an inner Concat is then flattened into the one that reads it.
        for node in reversed([n for n in graph.node if _is_concat(n)]):
            if uses(graph)[node.output[0]]:
                saved += _fuse(graph, node, known, types, names)
    if saved:
        remove_dead(model)
    return saved


class _Peeled:
    """One input of the Concat: ``raw * scale + offset``, element by element on the axis."""

    def __init__(self, raw: str, size: int, dtype: np.dtype) -> None:
        self.raw = raw
        self.scale = np.ones(size, dtype)
        self.offset: np.ndarray | None = None
        self.nodes = 0  # ops peeled off
        self.scaled = False  # a Mul by something else than +-1 is folded: no Add may follow

    def negate(self) -> None:
        self.scale = -self.scale
        if self.offset is not None:
            self.offset = -self.offset


def _fuse(
    graph: onnx.GraphProto,
    concat: onnx.NodeProto,
    known: dict[str, np.ndarray],
    types: dict[str, onnx.TypeProto],
    names: Names,
) -> int:
    shape = static_shape(types, concat.output[0])
    elem = types[concat.output[0]].tensor_type.elem_type if concat.output[0] in types else 0
    if shape is None or elem not in _FLOATS:
        return 0
    rank = len(shape)
    axis = next(a.i for a in concat.attribute if a.name == "axis")
    axis = axis + rank if axis < 0 else axis
    made = producers(graph)
    used = uses(graph)
    outputs = {o.name for o in graph.output}

    def single(name: str) -> bool:
        return name in made and used[name] == 1 and name not in outputs

    inputs: list[str] = []
    flattened = 0
    pending = list(concat.input)
    while pending:
        name = pending.pop(0)
        inner = graph.node[made[name][0]] if single(name) else None
        if inner is not None and inner.op_type == "Concat" and _axis(inner, rank) == axis:
            pending = [*inner.input, *pending]
            flattened += 1
        else:
            inputs.append(name)
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    peeled: list[_Peeled] = []
    for name in inputs:
        dims = static_shape(types, name)
        if dims is None or len(dims) != rank or not isinstance(dims[axis], int):
            return 0
        peeled.append(_peel(graph, name, dims, axis, made, single, known, dtype))
    ops = flattened + sum(p.nodes for p in peeled)
    scale = np.concatenate([p.scale for p in peeled])
    offset = np.concatenate(
        [p.offset if p.offset is not None else np.full(p.scale.size, -0.0, dtype) for p in peeled]
    )
    needs_mul = bool((scale != 1).any())
    needs_add = any(p.offset is not None for p in peeled)
    if ops <= needs_mul + needs_add:
        return 0
    result = concat.output[0]
    vector = [1] * rank
    vector[axis] = scale.size
    new: list[onnx.NodeProto] = []
    current = names.fresh(f"{result}_raw") if needs_mul or needs_add else result
    new.append(helper.make_node("Concat", [p.raw for p in peeled], [current], axis=axis))
    for needed, op_type, values in (("mul", "Mul", scale), ("add", "Add", offset)):
        if not (needs_mul if needed == "mul" else needs_add):
            continue
        const = names.fresh(f"{result}_{needed}")
        new.append(constant_node(values.astype(dtype).reshape(vector), const))
        last = op_type == "Add" or not needs_add
        target = result if last else names.fresh(f"{result}_scaled")
        new.append(helper.make_node(op_type, [current, const], [target]))
        current = target
    at = index_of(graph, concat)
    del graph.node[at]
    for offset_in, node in enumerate(new):
        graph.node.insert(at + offset_in, node)
    return ops - needs_mul - needs_add


def _is_concat(node: onnx.NodeProto) -> bool:
    return node.op_type == "Concat" and node.domain in ("", "ai.onnx")


def _axis(node: onnx.NodeProto, rank: int) -> int:
    axis = next(a.i for a in node.attribute if a.name == "axis")
    return axis + rank if axis < 0 else axis


def _peel(
    graph: onnx.GraphProto,
    name: str,
    dims: tuple[int | str, ...],
    axis: int,
    made: dict[str, tuple[int, int]],
    single: Callable[[str], bool],
    known: dict[str, np.ndarray],
    dtype: np.dtype,
) -> _Peeled:
    """Peel the constant scale and offset ``name`` ends with, keeping every bit."""
    size = int(dims[axis])
    out = _Peeled(name, size, dtype)
    while single(out.raw):  # read once, by the next op outward (or the Concat)
        node = graph.node[made[out.raw][0]]
        if node.domain not in ("", "ai.onnx"):
            break
        if node.op_type == "Neg":
            out.negate()
            out.raw = node.input[0]
            out.nodes += 1
            continue
        if node.op_type not in ("Mul", "Add", "Sub") or len(node.input) != 2:
            break
        sides = [known.get(x) for x in node.input]
        if (sides[0] is None) == (sides[1] is None):
            break
        slot = 0 if sides[0] is not None else 1
        value = _per_element(sides[slot], dims, axis, dtype)  # type: ignore[arg-type]
        if value is None:
            break
        other = node.input[1 - slot]
        if node.op_type == "Mul":
            if np.isin(value, (1, -1)).all():
                out.scale = out.scale * value
            elif not out.scaled and np.isin(out.scale, (1, -1)).all():
                out.scale = out.scale * value
                out.scaled = True
            else:
                break
        elif out.offset is not None or out.scaled:
            break  # a second offset, or one inside a scale: folding would round
        elif node.op_type == "Add":
            out.offset = out.scale * value
        elif slot == 1:  # other - c
            out.offset = out.scale * -value
        else:  # c - other
            out.offset = out.scale * value
            out.scale = -out.scale
        out.raw = other
        out.nodes += 1
    return out


def _per_element(
    value: np.ndarray, dims: tuple[int | str, ...], axis: int, dtype: np.dtype
) -> np.ndarray | None:
    """A constant operand as one value per element along ``axis``, or None when it varies
    along another axis, broadcasts the operand to a larger shape, or has another dtype."""
    if value.dtype != dtype or value.ndim > len(dims):
        return None
    full = (1,) * (len(dims) - value.ndim) + value.shape
    for i, (have, want) in enumerate(zip(full, dims, strict=True)):
        if have == 1:
            continue
        if i != axis or have != want:
            return None
    return np.broadcast_to(value.reshape(-1), (int(dims[axis]),)).astype(dtype)
