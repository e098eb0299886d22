"""Set the file's opset and IR version, refusing ops whose meaning differs at that opset."""

from __future__ import annotations

from collections.abc import Iterator

import onnx
import onnx.defs

from exploy_dsl import CompileError, TracedProgram

_DEFAULT_DOMAINS = ("", "ai.onnx")


def iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of its subgraphs (If branches, Loop bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_nodes(attr.g)
            for sub in attr.graphs:
                yield from iter_nodes(sub)


def stage_of(traced: TracedProgram, op_type: str) -> str:
    """Which stage (or the actor) uses ``op_type``, for error messages."""
    for stage in traced.stages:
        if any(n.op_type == op_type for n in iter_nodes(stage.model.graph)):
            return f"{stage.label} ({stage.location})"
    return "the actor"


def _since(op_type: str, opset: int) -> int | None:
    try:
        return int(onnx.defs.get_schema(op_type, opset, "").since_version)
    except onnx.defs.SchemaError:
        return None


def retarget(
    model: onnx.ModelProto, traced: TracedProgram, *, opset: int, ir_version: int
) -> onnx.ModelProto:
    """Label the model with ``opset``/``ir_version`` where every op means the same there.

    Stages are built with ONNX opset 20 operators; an op is kept when its definition at
    ``opset`` is the very one it was built with.
    """
    if not 1 <= ir_version <= onnx.IR_VERSION:
        raise CompileError(
            f"IR version {ir_version} is not supported by onnx {onnx.__version__} "
            f"(1..{onnx.IR_VERSION}). Fix: choose --ir between 7 and {onnx.IR_VERSION}."
        )
    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise CompileError(
            f"opset {opset} is not supported (7..{newest} with onnx {onnx.__version__})."
        )
    built = next(o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS)
    seen: set[str] = set()
    for node in iter_nodes(model.graph):
        if node.domain not in _DEFAULT_DOMAINS or node.op_type in seen:
            continue
        seen.add(node.op_type)
        have = _since(node.op_type, max(built, 20))
        want = _since(node.op_type, opset)
        if want is None:
            raise CompileError(
                f"op {node.op_type} used by {stage_of(traced, node.op_type)} does not exist at "
                f"opset {opset}. Fix: choose a newer opset/target or avoid {node.op_type}."
            )
        if have != want and not _same_for_our_dtypes(node.op_type, have, want):
            raise CompileError(
                f"op {node.op_type} used by {stage_of(traced, node.op_type)} changed between "
                f"opset {min(have or 0, want)} and {max(have or 0, want)}; it cannot be written "
                f"at opset {opset}. Fix: choose opset >= {have} or avoid {node.op_type}."
            )
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            entry.version = opset
    model.ir_version = ir_version
    return model


# Ops whose later versions only added element types (bfloat16, float8, int4, ...) that never
# cross our file boundary or appear in stages: relabelling them keeps their float32/int meaning.
_TYPE_ONLY_CHANGES: dict[str, frozenset[int]] = {}


def _same_for_our_dtypes(op_type: str, a: int | None, b: int) -> bool:
    versions = _TYPE_ONLY_CHANGES.get(op_type)
    return a is not None and versions is not None and {a, b} <= versions
