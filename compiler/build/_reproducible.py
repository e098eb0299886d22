"""Byte-reproducible files: content hashes, tool versions, debug-info stripping, the stamp."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import os

import numpy as np
import onnx
import onnx.numpy_helper

import exploy_dsl
from exploy_dsl import Actor, CompileError, TracedProgram
from exploy_dsl.contract._graphs import graphs, subgraphs

# exploy's exporter writes the export date under this very key; exploy-dsl only with --stamp.
STAMP_KEY = "date_exported (YYMMDD.HHMMSS)"
_TOOLS = ("onnx", "onnxruntime", "spox", "onnxscript", "numpy")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stage_hashes(traced: TracedProgram) -> dict[str, str]:
    """sha256 of each traced stage graph, serialized deterministically."""
    return {
        stage.kind: sha256_hex(stage.model.SerializeToString(deterministic=True))
        for stage in traced.stages
    }


def weights_sha256(model: onnx.ModelProto) -> str:
    """sha256 over the actor's weights (initializers, then Constant values, in graph order).

    Each tensor contributes its dtype, shape and little-endian bytes; names do not count, so
    renaming a weight keeps the hash and changing one value changes it.
    """
    digest = hashlib.sha256()
    for array in _weights(model.graph):
        header = f"{array.dtype.str}:{list(array.shape)};".encode()
        digest.update(header)
        digest.update(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def _weights(graph: onnx.GraphProto) -> list[np.ndarray]:
    arrays = [onnx.numpy_helper.to_array(init) for init in graph.initializer]
    for node in graph.node:
        if node.op_type == "Constant":
            arrays += [
                onnx.numpy_helper.to_array(a.t)
                for a in node.attribute
                if a.type == onnx.AttributeProto.TENSOR
            ]
        for sub in subgraphs(node):
            arrays += _weights(sub)
    return arrays


def tool_versions(actor: Actor) -> dict[str, str]:
    """Versions of the tools that built the file (torch only when it exported the actor)."""
    versions = {"exploy_dsl": exploy_dsl.__version__}
    tools = (*_TOOLS, "torch") if actor.module is not None else _TOOLS
    for name in tools:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def strip_debug_info(model: onnx.ModelProto) -> None:
    """Drop doc strings and node metadata (exporters store stack traces with absolute paths)."""
    model.doc_string = ""

    for graph in graphs(model.graph):
        graph.doc_string = ""
        for value in (*graph.input, *graph.output, *graph.value_info):
            value.doc_string = ""
        for node in graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
            for attr in node.attribute:
                attr.doc_string = ""
    for function in model.functions:
        function.doc_string = ""
        for node in function.node:
            node.doc_string = ""
            del node.metadata_props[:]


def export_date() -> str:
    """The stamp's date as exploy writes it (``%y%m%d.%H%M%S``, UTC); ``SOURCE_DATE_EPOCH``
    (the reproducible-builds convention) replaces the clock when it is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise CompileError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time in seconds. "
                "Fix: unset it or set it to an integer."
            ) from None
    else:
        moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%y%m%d.%H%M%S")
