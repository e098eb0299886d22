"""exploy-dsl compiler: stitch a traced program and its actor into one two-mode ONNX file."""

from __future__ import annotations

from ._actor import Actor, load_actor
from ._compile import DEFAULT_IR_VERSION, DEFAULT_OPSET, check_actor_sizes, compile_program
from ._write import write_atomic

__all__ = [
    "DEFAULT_IR_VERSION",
    "DEFAULT_OPSET",
    "Actor",
    "check_actor_sizes",
    "compile_program",
    "load_actor",
    "write_atomic",
]
