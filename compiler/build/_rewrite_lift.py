"""The actor's weights as initializers of the branch that uses them, not Constant nodes.

Inlined into the If's policy branch, an actor's weights are Constant nodes of that branch.
onnxruntime turns each into an initializer of the branch when it creates a session, copying the
tensor; holding them as the branch's own initializers (``GraphProto.initializer`` of the
subgraph) saves that work. Only large tensors move (``LIFT_MIN_ELEMENTS``): scalars and small
vectors are as cheap either way.

Each tensor stays in the graph that reads it, with its name and bytes. Moving the weights up to
the main graph instead was measured: sessions were created faster still, but every policy step
was slower (each becomes an implicit input of the branch), and onnxruntime 1.32 does not
prepack a Gemm or MatMul weight read from two graph levels up, so its other kernel would round
differently. The main graph's initializers stay the memory initial values, on
``memory.*.in`` only (DESIGN.md section 2). A Constant that a branch returns stays a node, so
every branch output is still made by a node of its branch.
"""

from __future__ import annotations

import onnx

from exploy_dsl.contract._graphs import subgraphs

# Smaller tensors stay Constant nodes (moving them too was measured: a few percent at most).
LIFT_MIN_ELEMENTS = 64


def lift_weights(model: onnx.ModelProto, types: object = None) -> int:
    """Every large Constant tensor of a subgraph becomes an initializer of that subgraph;
    returns how many did."""
    return sum(_lift(sub) for node in model.graph.node for sub in subgraphs(node))


def _lift(graph: onnx.GraphProto) -> int:
    """Lift ``graph``'s large constants, and those of the subgraphs of its nodes."""
    returned = {v.name for v in graph.output}
    keep: list[onnx.NodeProto] = []
    moved = 0
    for node in graph.node:
        moved += sum(_lift(sub) for sub in subgraphs(node))
        tensor = _large_tensor(node)
        if tensor is None or node.output[0] in returned:
            keep.append(node)
            continue
        lifted = graph.initializer.add()
        lifted.CopyFrom(tensor)
        lifted.name = node.output[0]
        moved += 1
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
    return moved


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
