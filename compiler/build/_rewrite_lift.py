"""The actor's weights as initializers of the main graph (not graph inputs).

Inlined into the If's policy branch, an actor's weights are Constant nodes of that branch, and
onnxruntime creates a session for such a file much more slowly than for the same weights held
as initializers of the main graph (which a subgraph reads by name, as any outer value). Only
large tensors move (``LIFT_MIN_ELEMENTS``): scalars and small vectors are as cheap either way.

Only the constants of a main-graph node's own branches move, not those of an If nested deeper
(a model in a stage): onnxruntime 1.32 prepacks a Gemm or MatMul weight read from the graph
just above, as it does a local one, but not one read from two levels up, and its unpacked
kernel sums in another order (other float bits). The bits are what ``tests/compiler``'s
``test_lift_weights.py`` checks, and what compile re-checks on every file.

A moved tensor keeps its name and bytes; it is not a graph input, so a controller cannot feed
it and onnxruntime gives it no default to override (DESIGN.md section 2: a graph input carries
an initializer only when it is ``memory.*.in``). A Constant that a branch returns stays, since
onnxruntime refuses a branch returning an outer value directly.
"""

from __future__ import annotations

import onnx

from exploy_dsl.contract._graphs import subgraphs

# Smaller tensors stay Constant nodes of their branch (measured: no faster session either way).
LIFT_MIN_ELEMENTS = 64


def lift_weights(model: onnx.ModelProto, types: object = None) -> int:
    """Move every large Constant tensor of a main-graph node's branches to the main graph's
    initializers; returns how many moved."""
    taken = {v.name for v in model.graph.input} | {t.name for t in model.graph.initializer}
    moved: list[onnx.TensorProto] = []
    for node in model.graph.node:
        for sub in subgraphs(node):
            _lift(sub, taken, moved)
    model.graph.initializer.extend(moved)
    return len(moved)


def _lift(graph: onnx.GraphProto, taken: set[str], moved: list[onnx.TensorProto]) -> None:
    """Move ``graph``'s own large constants (not those of its subgraphs) into ``moved``."""
    returned = {v.name for v in graph.output}
    keep: list[onnx.NodeProto] = []
    for node in graph.node:
        tensor = _large_tensor(node)
        if tensor is None or node.output[0] in returned or node.output[0] in taken:
            keep.append(node)
            continue
        lifted = onnx.TensorProto()
        lifted.CopyFrom(tensor)
        lifted.name = node.output[0]
        taken.add(lifted.name)
        moved.append(lifted)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def _large_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The dense tensor a default-domain Constant holds, if it has enough elements."""
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
        return None
    if len(node.attribute) != 1 or node.attribute[0].name != "value":
        return None
    tensor = node.attribute[0].t
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    elements = 1
    for dim in tensor.dims:
        elements *= dim
    return tensor if elements >= LIFT_MIN_ELEMENTS else None
