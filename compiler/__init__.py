"""exploy-dsl compiler: stitch a traced program and its actor into one two-mode ONNX file."""

from __future__ import annotations

from compiler.build._actor import check_actor_sizes, load_actor, prepare_actor
from compiler.build._compile import DEFAULT_IR_VERSION, DEFAULT_OPSET, compile_program
from compiler.build._write import write_atomic
from compiler.check._inputs import InputStream, load_trace, random_stream, save_trace
from compiler.check._parity import check_parity
from compiler.check._report import ParityReport
from exploy_dsl import Actor

for _public in (InputStream, ParityReport):
    _public.__module__ = "compiler"  # tracebacks and reprs show the public name

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
    "prepare_actor",
    "random_stream",
    "save_trace",
    "write_atomic",
]
