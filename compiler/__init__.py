"""exploy-dsl compiler: stitch a traced program and its actor into one two-mode ONNX file."""

from __future__ import annotations

from ._actor import Actor, load_actor
from ._compile import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_actor_sizes, compile_program
from ._inputs import InputStream, load_trace, random_stream, save_trace
from ._parity import check_parity
from ._report import ParityReport
from ._write import write_atomic

__all__ = [
    "DEFAULT_IR_VERSION",
    "DEFAULT_OPSET",
    "Actor",
    "InputStream",
    "ParityReport",
    "check_actor_sizes",
    "check_parity",
    "compile_program",
    "load_actor",
    "load_trace",
    "random_stream",
    "save_trace",
    "write_atomic",
]
