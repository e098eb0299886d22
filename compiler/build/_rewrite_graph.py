"""What the build's rewrites share: reading constants, counting uses, renaming, dead nodes.

Names are unique across the whole stitched model (spox prefixes every inlined name), so a
value is found by its name alone, in any graph; a subgraph reads an outer value by that name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from exploy_dsl.contract._graphs import graphs, subgraphs

# Ops whose two calls on equal inputs may differ: never merged, never moved.
NONDETERMINISTIC = frozenset(
    {
        "Bernoulli",
        "Multinomial",
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Dropout",  # in training mode it draws a mask
    }
)


def node_count(model: onnx.ModelProto) -> int:
    """Nodes of the file, every branch included, Constants left out (they cost nothing)."""
    return sum(
        1 for graph in graphs(model.graph) for node in graph.node if node.op_type != "Constant"
    )


def producers(graph: onnx.GraphProto) -> dict[str, tuple[int, int]]:
    """Value name -> (index of the node in ``graph`` that makes it, output position)."""
    return {
        name: (i, k)
        for i, node in enumerate(graph.node)
        for k, name in enumerate(node.output)
        if name
    }


def uses(graph: onnx.GraphProto) -> Counter[str]:
    """How often each name is read in ``graph``: by its nodes, by nodes of its subgraphs (as
    an outer value), and as one of its outputs."""
    counted: Counter[str] = Counter(o.name for o in graph.output)
    for node in graph.node:
        counted.update(name for name in node.input if name)
        for sub in subgraphs(node):
            for inner in graphs(sub):
                counted.update(name for n in inner.node for name in n.input if name)
                counted.update(o.name for o in inner.output)
    return counted


def rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Every read of ``old`` in ``graph`` and its subgraphs (node inputs, outputs) reads ``new``."""
    for inner in graphs(graph):
        for node in inner.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        for value in inner.output:
            if value.name == old:
                value.name = new


def rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """The value ``old`` (made by a node of ``graph``) is called ``new`` everywhere."""
    rename_uses(graph, old, new)
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for value in graph.value_info:
        if value.name == old:
            value.name = new


class Names:
    """Fresh value names for one model: never one already used anywhere in it."""

    def __init__(self, model: onnx.ModelProto) -> None:
        taken: set[str] = set()
        for graph in graphs(model.graph):
            taken.update(v.name for v in (*graph.input, *graph.output, *graph.value_info))
            taken.update(t.name for t in graph.initializer)
            for node in graph.node:
                taken.update(node.input)
                taken.update(node.output)
        self._taken = taken

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self._taken:
            i += 1
            name = f"{base}_{i}"
        self._taken.add(name)
        return name


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Name -> value of every constant: Constant node outputs (in any graph) and the top
    graph's initializers that are not graph inputs (memory initial values are inputs)."""
    inputs = {v.name for v in model.graph.input}
    found = {
        t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name not in inputs
    }
    for graph in graphs(model.graph):
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = constant_value(node)
                if value is not None:
                    found[node.output[0]] = value
    return found


def constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The tensor a Constant node holds (None for a sparse value or a string)."""
    (attr,) = node.attribute
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    if attr.name == "value_float":
        return np.array(attr.f, np.float32)
    if attr.name == "value_floats":
        return np.array(list(attr.floats), np.float32)
    if attr.name == "value_int":
        return np.array(attr.i, np.int64)
    if attr.name == "value_ints":
        return np.array(list(attr.ints), np.int64)
    return None


def constant_node(value: np.ndarray, output: str) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [output], value=numpy_helper.from_array(np.ascontiguousarray(value))
    )


def value_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Name -> inferred type (element type and shape) of every value onnx can infer."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types: dict[str, onnx.TypeProto] = {}
    for graph in graphs(inferred.graph):
        for value in (*graph.input, *graph.output, *graph.value_info):
            if value.type.HasField("tensor_type"):
                types[value.name] = value.type
        for init in graph.initializer:
            types[init.name] = helper.make_tensor_type_proto(init.data_type, list(init.dims))
    return types


def static_shape(types: dict[str, onnx.TypeProto], name: str) -> tuple[int | str, ...] | None:
    """The shape of ``name``: ints for static dims, the symbol (or '?') for the others."""
    tensor = types.get(name)
    if tensor is None or not tensor.tensor_type.HasField("shape"):
        return None
    return tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in tensor.tensor_type.shape.dim
    )


def remove_dead(model: onnx.ModelProto) -> int:
    """Drop nodes none of whose outputs is read, in every graph, until none is left."""
    removed = 0
    while True:
        found = 0
        for graph in reversed(list(graphs(model.graph))):  # inner graphs first
            used = uses(graph)
            dead = [i for i, n in enumerate(graph.node) if not any(used[o] for o in n.output if o)]
            for i in reversed(dead):
                del graph.node[i]
            found += len(dead)
        removed += found
        if not found:
            return removed


def drop_dead(model: onnx.ModelProto, types: object = None) -> int:
    """The rewrite step ``drop_dead``: ``remove_dead`` (``types`` unused)."""
    return remove_dead(model)


def attributes_equal(a: onnx.NodeProto, b: onnx.NodeProto) -> bool:
    """Same attributes with the same values (graph attributes never count as equal)."""

    def key(node: onnx.NodeProto) -> list[tuple[str, bytes]] | None:
        if any(
            at.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for at in node.attribute
        ):
            return None
        return sorted((at.name, _bytes(at)) for at in node.attribute)

    left, right = key(a), key(b)
    return left is not None and left == right


def _bytes(attribute: onnx.AttributeProto) -> bytes:
    plain = onnx.AttributeProto()
    plain.CopyFrom(attribute)
    plain.doc_string = ""
    return plain.SerializeToString(deterministic=True)


def insert_after(
    graph: onnx.GraphProto, anchor: onnx.NodeProto, new: Iterable[onnx.NodeProto]
) -> None:
    """Put ``new`` right after ``anchor`` in ``graph``'s node list (order = topological)."""
    at = index_of(graph, anchor) + 1
    for offset, node in enumerate(new):
        graph.node.insert(at + offset, node)


def index_of(graph: onnx.GraphProto, node: onnx.NodeProto) -> int:
    return next(i for i, n in enumerate(graph.node) if n is node)


def remove_node(graph: onnx.GraphProto, node: onnx.NodeProto) -> None:
    """Remove exactly ``node`` (by identity, not by equal content)."""
    del graph.node[index_of(graph, node)]


def local_names(graph: onnx.GraphProto) -> set[str]:
    """Values made by the nodes of ``graph`` itself."""
    return {name for node in graph.node for name in node.output if name}


def nodes_of(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    for graph in graphs(model.graph):
        yield from graph.node
