"""exploy-dsl compiler: stitch a traced program and its actor into one two-mode ONNX file."""

from __future__ import annotations

import typing as _typing

from exploy_dsl._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    from compiler.build._actor import check_actor_sizes, load_actor, prepare_actor
    from compiler.build._compile import DEFAULT_IR_VERSION, DEFAULT_OPSET, compile_program
    from compiler.build._write import write_atomic
    from compiler.check._inputs import InputStream, load_trace, random_stream, save_trace
    from compiler.check._parity import check_parity
    from compiler.check._report import ParityReport
    from exploy_dsl import Actor

# Public name -> the module defining it, loaded on first use (PEP 562): the `exploy-dsl`
# command imports this package, and `exploy-dsl --help`, `inspect` or `run` need none of it.
_LAZY = {
    "DEFAULT_IR_VERSION": "compiler.build._compile",
    "DEFAULT_OPSET": "compiler.build._compile",
    "Actor": "exploy_dsl",
    "InputStream": "compiler.check._inputs",
    "ParityReport": "compiler.check._report",
    "check_actor_sizes": "compiler.build._actor",
    "check_parity": "compiler.check._parity",
    "compile_program": "compiler.build._compile",
    "load_actor": "compiler.build._actor",
    "load_trace": "compiler.check._inputs",
    "prepare_actor": "compiler.build._actor",
    "random_stream": "compiler.check._inputs",
    "save_trace": "compiler.check._inputs",
    "write_atomic": "compiler.build._write",
}


__getattr__, __dir__ = _lazy_exports("compiler", _LAZY, globals())

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
