"""Rewrite ``vectorize_concat``: one op on concatenated operands, not one op per element.

``projected_gravity`` computes three values, each from products of single quaternion
components (``y*w - x*z``, ...): a dozen ops on one float each, then a Concat. Where
consecutive inputs of a Concat come from the same arithmetic op on operands of their own
shape, the op runs once on the concatenated operands; those Concats are vectorized in turn,
and a Concat of single-axis Slices of one tensor becomes one Gather (or one Slice when the
elements are in order). Add and Sub mix: ``a - b`` is ``a + b * -1``, the Mul by a vector of
signs put on the concatenated ``b``.

Exact: Add, Sub, Mul, Div and Neg round each element alone (IEEE 754), whatever the vector
they sit in; gathering moves values; a sign flip rounds nothing. Other elementwise ops (Tanh,
Exp, ...) are left alone: onnxruntime's vectorized kernels for them may round an element
differently by its position.
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
    static_shape,
    uses,
)
from exploy_dsl.contract._graphs import graphs

_BINARY = ("Add", "Sub", "Mul", "Div")
_DEFAULT = ("", "ai.onnx")


def vectorize_concat(model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> int:
    """Vectorize every Concat's runs of like ops, where that leaves fewer nodes; the nodes
    saved."""
    saved = 0
    known = constants(model)
    names = Names(model)
    for graph in list(graphs(model.graph)):
        for name in [n.output[0] for n in graph.node if _is_concat(n)]:
            backup = onnx.GraphProto()
            backup.CopyFrom(graph)
            before = _count(graph)
            pending = [name]
            while pending:
                current = pending.pop()
                _drop_unread(graph)  # the ops a run replaced no longer read their operands
                made = producers(graph)
                if current in made and uses(graph)[current]:
                    node = graph.node[made[current][0]]
                    if _is_concat(node):
                        _vectorize(graph, node, known, types, names, pending.append)
            _drop_unread(graph)
            if _count(graph) < before:
                saved += before - _count(graph)
            else:
                graph.CopyFrom(backup)
    return saved


def _is_concat(node: onnx.NodeProto) -> bool:
    return node.op_type == "Concat" and node.domain in _DEFAULT


def _count(graph: onnx.GraphProto) -> int:
    return sum(1 for n in graph.node if n.op_type != "Constant")


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Remove the nodes of ``graph`` whose values nothing reads any more."""
    while True:
        used = uses(graph)
        dead = [i for i, n in enumerate(graph.node) if not any(used[o] for o in n.output if o)]
        if not dead:
            return
        for i in reversed(dead):
            del graph.node[i]


def _vectorize(
    graph: onnx.GraphProto,
    concat: onnx.NodeProto,
    known: dict[str, np.ndarray],
    types: dict[str, onnx.TypeProto],
    names: Names,
    later: Callable[[str], None],
) -> None:
    """Replace each run of like inputs of ``concat`` by one op (its operand Concats go to
    ``later``)."""
    out_shape = static_shape(types, concat.output[0])
    if out_shape is None:
        return
    rank = len(out_shape)
    axis = next(a.i for a in concat.attribute if a.name == "axis")
    axis = axis + rank if axis < 0 else axis
    made = producers(graph)
    used = uses(graph)
    outputs = {o.name for o in graph.output}
    inputs = list(concat.input)
    found = [static_shape(types, x) for x in inputs]
    shapes = [s for s in found if s is not None and len(s) == rank and isinstance(s[axis], int)]
    if len(shapes) != len(inputs):
        return
    sizes = [int(s[axis]) for s in shapes]

    def producer(name: str) -> onnx.NodeProto | None:
        if name not in made:
            return None
        node = graph.node[made[name][0]]
        return node if node.domain in _DEFAULT else None

    def kind(i: int) -> str | None:
        """What input ``i`` can join a run as: its op, or "Slice:<source>"."""
        node = producer(inputs[i])
        if node is None:
            return None
        if node.op_type == "Slice":
            source = _slice_source(node, known, axis, rank, sizes[i])
            return None if source is None else f"Slice:{node.input[0]}"
        single = used[inputs[i]] == 1 and inputs[i] not in outputs
        if not single or node.op_type not in (*_BINARY, "Neg"):
            return None
        if any(x in known or static_shape(types, x) != shapes[i] for x in node.input):
            return None  # a constant (affine_concat folds those) or a broadcast operand
        return "AddSub" if node.op_type in ("Add", "Sub") else node.op_type

    kinds = [kind(i) for i in range(len(inputs))]
    replaced: list[str] = []
    new_nodes: list[onnx.NodeProto] = []
    i = 0
    while i < len(inputs):
        j = i + 1
        while j < len(inputs) and kinds[i] is not None and kinds[j] == kinds[i]:
            j += 1
        run = list(range(i, j))
        if len(run) < 2 or kinds[i] is None:
            replaced.append(inputs[i])
            i += 1
            continue
        full = list(shapes[i])
        full[axis] = sum(sizes[k] for k in run)
        nodes = [graph.node[made[inputs[k]][0]] for k in run]  # each has a kind: a producer
        result = names.fresh(f"{concat.output[0]}_vector")
        if str(kinds[i]).startswith("Slice:"):
            taken = [
                _slice_source(n, known, axis, rank, sizes[k])
                for n, k in zip(nodes, run, strict=True)
            ]
            indices = np.concatenate([t for t in taken if t is not None])
            new_nodes += _gather(nodes[0].input[0], indices, axis, result, names)
        else:
            new_nodes += _elementwise(nodes, axis, full, result, names, types, later)
        replaced.append(result)
        i = j
    if len(replaced) == len(inputs):
        return
    at = index_of(graph, concat)
    if len(replaced) == 1:
        new_nodes[-1].output[0] = concat.output[0]  # the last node made the whole value
    else:
        new_nodes.append(helper.make_node("Concat", replaced, [concat.output[0]], axis=axis))
    del graph.node[at]
    for k, node in enumerate(new_nodes):
        graph.node.insert(at + k, node)


def _mixed(nodes: list[onnx.NodeProto]) -> bool:
    return len({n.op_type for n in nodes}) > 1


def _elementwise(
    nodes: list[onnx.NodeProto],
    axis: int,
    full: list[int | str],
    result: str,
    names: Names,
    types: dict[str, onnx.TypeProto],
    later: Callable[[str], None],
) -> list[onnx.NodeProto]:
    """``op(concat(a_i), concat(b_i))`` for the run; a Sub in a run of Adds as ``a + b*-1``."""
    made: list[onnx.NodeProto] = []
    arity = len(nodes[0].input)
    operands = []
    elem = types[nodes[0].output[0]]
    for slot in range(arity):
        joined = names.fresh(f"{result}_in{slot}")
        made.append(helper.make_node("Concat", [n.input[slot] for n in nodes], [joined], axis=axis))
        types[joined] = _with_shape(elem, full)
        later(joined)
        operands.append(joined)
    op_type = nodes[0].op_type
    if _mixed(nodes):
        sizes = [_size(types, n.output[0], axis) for n in nodes]
        dtype = helper.tensor_dtype_to_np_dtype(elem.tensor_type.elem_type)
        signs = np.concatenate(
            [
                np.full(s, -1.0 if n.op_type == "Sub" else 1.0)
                for n, s in zip(nodes, sizes, strict=True)
            ]
        ).astype(dtype)
        sign_name, signed = names.fresh(f"{result}_signs"), names.fresh(f"{result}_signed")
        vector = [1] * len(full)
        vector[axis] = signs.size
        made.append(constant_node(signs.reshape(vector), sign_name))
        made.append(helper.make_node("Mul", [operands[1], sign_name], [signed]))
        operands[1], op_type = signed, "Add"
    made.append(helper.make_node(op_type, operands, [result]))
    types[result] = _with_shape(elem, full)
    return made


def _gather(
    source: str, indices: np.ndarray, axis: int, result: str, names: Names
) -> list[onnx.NodeProto]:
    """``source`` at ``indices`` along ``axis``: one Slice when they count up by one."""
    if (np.diff(indices) == 1).all():
        consts = [names.fresh(f"{result}_{what}") for what in ("starts", "ends", "axes")]
        values = [indices[:1], indices[-1:] + 1, np.array([axis])]
        return [
            *(constant_node(v.astype(np.int64), c) for v, c in zip(values, consts, strict=True)),
            helper.make_node("Slice", [source, *consts], [result]),
        ]
    const = names.fresh(f"{result}_indices")
    return [
        constant_node(indices.astype(np.int64), const),
        helper.make_node("Gather", [source, const], [result], axis=axis),
    ]


def _slice_source(
    node: onnx.NodeProto,
    known: dict[str, np.ndarray],
    axis: int,
    rank: int,
    count: int,
) -> np.ndarray | None:
    """The indices along ``axis`` a Slice takes of its input (one axis, step 1, constant
    bounds, in range), or None."""
    if len(node.input) < 4 or any(x not in known for x in node.input[1:4]):
        return None
    starts, ends, axes = (np.asarray(known[x]).reshape(-1) for x in node.input[1:4])
    steps = known.get(node.input[4]) if len(node.input) > 4 and node.input[4] else None
    if starts.size != 1 or ends.size != 1 or axes.size != 1:
        return None
    if steps is not None and np.asarray(steps).reshape(-1).tolist() != [1]:
        return None
    if int(axes[0]) % rank != axis:
        return None
    start, end = int(starts[0]), int(ends[0])
    if start < 0 or end < start or end - start != count:  # count: the Slice's output size
        return None  # negative or clamped bounds: left as they are
    return np.arange(start, end)


def _size(types: dict[str, onnx.TypeProto], name: str, axis: int) -> int:
    shape = static_shape(types, name)
    return int(shape[axis]) if shape is not None else 0  # type: ignore[arg-type]


def _with_shape(like: onnx.TypeProto, shape: list[int | str]) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(like.tensor_type.elem_type, shape)
