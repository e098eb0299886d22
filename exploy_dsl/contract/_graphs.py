"""Walking ONNX models: the default-domain opset, and every node down into If/Loop subgraphs."""

from __future__ import annotations

from collections.abc import Iterator

import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")


def is_default_domain(domain: str) -> bool:
    return domain in DEFAULT_DOMAINS


def default_opset(model: onnx.ModelProto, missing: int = 1) -> int:
    """The model's ONNX (default-domain) opset version; ``missing`` when none is imported."""
    return next(
        (int(o.version) for o in model.opset_import if is_default_domain(o.domain)), missing
    )


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The graphs held by a node's attributes (If branches, Loop/Scan bodies)."""
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph inside it, outer first."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from graphs(sub)


def iter_nodes(graph: onnx.GraphProto, recurse: bool = True) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and, with ``recurse``, of its subgraphs, in graph order."""
    for node in graph.node:
        yield node
        if recurse:
            for sub in subgraphs(node):
                yield from iter_nodes(sub)
