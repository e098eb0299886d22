"""Walking ONNX models: the default-domain opset, and every node down into If/Loop subgraphs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # onnx is not imported here: the runtime's contract reader uses this module
    import onnx

DEFAULT_DOMAINS = ("", "ai.onnx")
# AttributeProto.AttributeType (onnx/onnx.proto): a graph, a list of graphs.
GRAPH, GRAPHS = 5, 10


class _OpsetId(Protocol):
    @property
    def domain(self) -> str: ...
    @property
    def version(self) -> int: ...


class _HasOpsets(Protocol):
    @property
    def opset_import(self) -> Iterable[_OpsetId]: ...


def is_default_domain(domain: str) -> bool:
    return domain in DEFAULT_DOMAINS


def default_opset(model: _HasOpsets, missing: int = 1) -> int:
    """The model's ONNX (default-domain) opset version; ``missing`` when none is imported.

    ``model`` is an ``onnx.ModelProto`` or the contract reader's parsed model.
    """
    return next(
        (int(o.version) for o in model.opset_import if is_default_domain(o.domain)), missing
    )


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The graphs held by a node's attributes (If branches, Loop/Scan bodies)."""
    for attr in node.attribute:
        if attr.type == GRAPH:
            yield attr.g
        elif attr.type == GRAPHS:
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
