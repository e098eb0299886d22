"""Rewrite ``split_gathers``: one Gather and one Split, not a Gather per operand.

``vectorize_concat`` leaves projected gravity as products of gathered quaternion components:
four Gathers of ``q`` (the factors of ``yw``, ``yz``, ``xx`` and of ``xz``, ``xw``, ``yy``),
each a kernel call on a few floats. Three or more Gathers of one tensor along one axis, each
with constant 1-D indices, become one Gather of the indices put end to end and one Split of
its result back into the pieces, each piece under the name the Gather gave it.

Exact: both only move values, none is computed. Split takes its sizes as an input from
Split-13 on (an attribute before), so the step runs only in files of opset 13 or newer
(its ``min_opset`` in ``REWRITES``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from compiler.build._rewrite_graph import Names, constant_node, constants, static_shape, uses
from exploy_dsl.contract._graphs import graphs

_DEFAULT = ("", "ai.onnx")


def split_gathers(model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> int:
    """Merge every group of three or more such Gathers; the nodes saved."""
    known = constants(model)
    names = Names(model)
    saved = 0
    for graph in graphs(model.graph):
        groups: dict[tuple[str, int], list[onnx.NodeProto]] = {}
        for node in graph.node:
            key = _key(node, known, types)
            if key is not None:
                groups.setdefault(key, []).append(node)
        for (source, axis), group in groups.items():
            if len(group) >= 3:
                _merge(graph, source, axis, group, known, names)
                saved += len(group) - 2
    return saved


def _key(
    node: onnx.NodeProto, known: dict[str, np.ndarray], types: dict[str, onnx.TypeProto]
) -> tuple[str, int] | None:
    """(source, axis) of a Gather that can join a group: constant, non-empty 1-D indices and
    an axis that counts from the front (negative ones only where the rank is known)."""
    if node.op_type != "Gather" or node.domain not in _DEFAULT or len(node.input) != 2:
        return None
    indices = known.get(node.input[1])
    if indices is None or indices.ndim != 1 or indices.size == 0:
        return None
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    if axis < 0:
        shape = static_shape(types, node.input[0])
        if shape is None:
            return None
        axis += len(shape)
    return node.input[0], int(axis)


def _merge(
    graph: onnx.GraphProto,
    source: str,
    axis: int,
    group: list[onnx.NodeProto],
    known: dict[str, np.ndarray],
    names: Names,
) -> None:
    taken = [np.asarray(known[n.input[1]], np.int64) for n in group]
    base = names.fresh(f"{group[0].output[0]}_gathered")
    indices, sizes = names.fresh(f"{base}_indices"), names.fresh(f"{base}_sizes")
    new = [
        constant_node(np.concatenate(taken), indices),
        constant_node(np.array([t.size for t in taken], np.int64), sizes),
        helper.make_node("Gather", [source, indices], [base], axis=axis),
        helper.make_node("Split", [base, sizes], [n.output[0] for n in group], axis=axis),
    ]
    at = next(i for i, n in enumerate(graph.node) if n is group[0])
    for node in group:
        del graph.node[next(i for i, n in enumerate(graph.node) if n is node)]
    for k, node in enumerate(new):
        graph.node.insert(at + k, node)
    read = uses(graph)
    for name in {n.input[1] for n in group}:  # the Gathers' own index Constants, now unread
        if not read[name]:
            dead = [n for n in graph.node if n.op_type == "Constant" and list(n.output) == [name]]
            for node in dead:
                graph.node.remove(node)
