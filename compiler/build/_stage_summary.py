"""A readable record of each stage: what it reads and writes, its ops, constants and code."""

from __future__ import annotations

import inspect
import os
import textwrap
from collections import Counter
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper

from compiler.build._reproducible import sha256_hex, weights_sha256
from exploy_dsl import TracedProgram
from exploy_dsl.authoring._models import ModelCall, ModelPort
from exploy_dsl.authoring._trace import StageGraph
from exploy_dsl.contract._graphs import iter_nodes

# Constants up to this many elements are written out; larger ones by shape and hash.
MAX_LISTED = 64


def stage_summaries(traced: TracedProgram) -> dict[str, Any]:
    """``{kind: {function, file, line, reads, writes, ops, constants, source}}`` per stage.

    ``file`` is the base name only (an absolute path would make the file machine-specific).
    A stage that calls models (``call_model``) also has ``models``: one entry per call; one
    that calls library steps (``clip``, ``low_pass``, ...) has ``steps``: each step's
    parameters (bounds, scale, offset, filter alpha) and the user's ``file:line``.
    """
    stages = traced.program.stages
    result: dict[str, Any] = {}
    for graph in traced.stages:
        fn = stages[graph.kind].fn
        code = getattr(fn, "__code__", None)
        result[graph.kind] = {
            "function": getattr(fn, "__name__", "?"),
            "file": os.path.basename(code.co_filename) if code is not None else None,
            "line": code.co_firstlineno if code is not None else None,
            "reads": list(graph.reads),
            "writes": list(graph.writes),
            "ops": _ops(graph),
            "constants": [_constant(c) for c in _constants(graph.model.graph)],
            "source": _source(fn),
        }
        if graph.models:
            result[graph.kind]["models"] = [_model(call) for call in graph.models]
        if graph.steps:
            result[graph.kind]["steps"] = [step.record() for step in graph.steps]
    return result


def _model(call: ModelCall) -> dict[str, Any]:
    """Where a called model came from, its signature and a sha256 of its weights."""
    return {
        "source": call.source,
        "inputs": [_model_port(p) for p in call.inputs],
        "outputs": [_model_port(p) for p in call.outputs],
        "weights_sha256": weights_sha256(call.model),
    }


def _model_port(port: ModelPort) -> dict[str, Any]:
    return {"name": port.name, "dtype": port.dtype, "shape": list(port.shape)}


def _ops(graph: StageGraph) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for node in iter_nodes(graph.model.graph):
        if node.op_type not in ("Constant", "Identity"):
            counts[node.op_type] += 1
    return dict(sorted(counts.items()))


def _constants(graph: onnx.GraphProto) -> list[np.ndarray]:
    values = [onnx.numpy_helper.to_array(init) for init in graph.initializer]
    for node in iter_nodes(graph):
        if node.op_type != "Constant":
            continue
        for attr in node.attribute:
            if attr.name == "value":
                values.append(onnx.numpy_helper.to_array(attr.t))
            elif attr.name in ("value_float", "value_floats"):
                floats = attr.f if attr.name == "value_float" else attr.floats
                values.append(np.asarray(floats, dtype=np.float32))
            elif attr.name in ("value_int", "value_ints"):
                ints = attr.i if attr.name == "value_int" else attr.ints
                values.append(np.asarray(ints, dtype=np.int64))
    return values


def _constant(value: np.ndarray) -> dict[str, Any]:
    entry: dict[str, Any] = {"dtype": str(value.dtype), "shape": list(value.shape)}
    if value.size <= MAX_LISTED:
        flat = value.reshape(-1)
        if value.dtype.kind == "f":
            entry["values"] = [_json_float(float(str(value.dtype.type(x)))) for x in flat]
        else:
            entry["values"] = flat.tolist()
    else:
        entry["sha256"] = sha256_hex(np.ascontiguousarray(value).tobytes())
    return entry


def _json_float(x: float) -> float | str:
    """A float JSON can hold; an infinity (a mask fill, an unbounded clip) as "inf"/"-inf"."""
    return x if np.isfinite(x) else str(x)


def _source(fn: Any) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
