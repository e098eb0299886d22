"""Rewrite ``wire_outputs``: drop Identity nodes, so every output comes from its producer.

Stage graphs end in an Identity per written value, spox's If adds one per branch output, and
the top graph one per wire. None computes anything. An Identity stays only where ONNX or
onnxruntime needs a node: a top-level output that is a graph input or another output (two
wires need two names; within a branch, onnxruntime 1.32 returns wrong values when a branch
lists one value twice), and a branch output that is a value from outside the branch
(onnxruntime refuses a subgraph returning an outer value directly). Exact: values move, none
is computed differently.
"""

from __future__ import annotations

import onnx

from compiler.build._rewrite_graph import local_names, remove_node, rename_uses, rename_value
from exploy_dsl.contract._graphs import graphs


def wire_outputs(model: onnx.ModelProto, types: object = None) -> int:
    """Remove every Identity that is not needed; the number removed (``types`` unused)."""
    removed = 0
    for graph in list(graphs(model.graph)):
        removed += _wire(graph, top=graph is model.graph)
    return removed


def _wire(graph: onnx.GraphProto, *, top: bool) -> int:
    removed = 0
    kept: set[str] = set()  # outputs of the Identities that must stay
    while True:
        node = next(
            (
                n
                for n in graph.node
                if n.op_type == "Identity"
                and n.domain in ("", "ai.onnx")
                and n.output[0] not in kept
            ),
            None,
        )
        if node is None:
            return removed
        source, target = node.input[0], node.output[0]
        outputs = [o.name for o in graph.output]
        if target not in outputs:
            rename_uses(graph, target, source)
        elif source not in local_names(graph):
            kept.add(target)  # an input, initializer or outer value: a node must make the output
            continue
        elif source in outputs:
            # Two outputs, one value: the second needs its own node (a top-level output has its
            # own name; onnxruntime mixes up a branch listing one value twice).
            kept.add(target)
            continue
        elif top:
            rename_value(graph, source, target)  # the producer now makes the wire itself
        else:
            rename_uses(graph, target, source)
        remove_node(graph, node)
        removed += 1
