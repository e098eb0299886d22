"""Refuse NaN or infinity in the actor's weights and in every constant of every stage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import onnx
import onnx.numpy_helper

from compiler.build._actor import Actor
from exploy_dsl import NonFiniteConstantError, TracedProgram

_FLOATS = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
}


def check_finite(traced: TracedProgram, actor: Actor) -> None:
    """A diverged checkpoint (or an ``inf`` written in a stage) would command NaN: refuse it.

    NaN is refused anywhere; infinity too, except in a tensor that holds nothing but zeros and
    infinities: the masks attention layers are exported with (``-inf`` fill values).

    Looks at every initializer and every tensor attribute (``Constant`` values,
    ``ConstantOfShape`` fills), in subgraphs and local functions too.
    """
    for name, values in _tensors(actor.model):
        _refuse(
            values,
            f"actor {actor.source}: weight {name!r}",
            "a robot would be commanded NaN. Fix: use a checkpoint from before training "
            "diverged (check it with torch.isfinite(p).all() for every parameter)",
        )
    for stage in traced.stages:
        for name, values in _tensors(stage.model):
            _refuse(
                values,
                f"{stage.label} ({stage.location}): constant {name!r}",
                "the file would compute NaN from it. Fix: write a finite value (a clip or "
                "a limit that should not bite takes a large finite bound such as 1e6)",
            )


def _refuse(values: np.ndarray, what: str, fix: str) -> None:
    flat = values.reshape(-1).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size == 0 or _is_mask(flat):
        return
    kinds = sorted({"NaN" if np.isnan(flat[i]) else "infinity" for i in bad})
    where = ", ".join(
        str([int(k) for k in np.unravel_index(int(i), values.shape)])
        if values.ndim > 1
        else f"[{i}]"
        for i in bad[:3]
    )
    raise NonFiniteConstantError(
        f"{what} holds {' and '.join(kinds)} at {bad.size} of {flat.size} element(s) "
        f"(first at {where}); {fix}."
    )


def _is_mask(flat: np.ndarray) -> bool:
    """An attention or padding mask: infinities among zeros only (``masked_fill(-inf)``, a
    causal mask), never NaN. A diverged weight has NaN, or infinities among ordinary values."""
    if np.isnan(flat).any():
        return False
    finite = flat[np.isfinite(flat)]
    return not finite.any()


def _tensors(model: onnx.ModelProto) -> Iterator[tuple[str, np.ndarray]]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        yield from _node_tensors(function.node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, np.ndarray]]:
    for init in graph.initializer:
        if init.data_type in _FLOATS:
            yield init.name, onnx.numpy_helper.to_array(init)
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[tuple[str, np.ndarray]]:
    for node in nodes:
        label = node.output[0] if node.output else node.name
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type in _FLOATS:
                yield label, onnx.numpy_helper.to_array(attr.t)
            elif attr.type == onnx.AttributeProto.FLOAT:
                yield label, np.array(attr.f)
            elif attr.type == onnx.AttributeProto.FLOATS:
                yield label, np.array(attr.floats)
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _graph_tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for graph in attr.graphs:
                    yield from _graph_tensors(graph)
