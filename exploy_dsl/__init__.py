"""exploy-dsl: declare robot deployment logic once, as spox functions over named ports."""

from __future__ import annotations

import spox.opset.ai.onnx.v20 as op

from ._errors import (
    ActorError,
    CompileError,
    DeclarationError,
    ExployDslError,
    FileContractError,
    RuntimeInputError,
    StageError,
)
from ._ports import Input, Memory, Output, Port
from ._program import Group, Program
from ._script import call_script
from ._trace import ObsTerm, StageGraph, Term, TracedProgram, term, trace

__version__ = "0.1.0"

__all__ = [
    "ActorError",
    "CompileError",
    "DeclarationError",
    "ExployDslError",
    "FileContractError",
    "Group",
    "Input",
    "Memory",
    "ObsTerm",
    "Output",
    "Port",
    "Program",
    "RuntimeInputError",
    "StageError",
    "StageGraph",
    "Term",
    "TracedProgram",
    "__version__",
    "call_script",
    "op",
    "term",
    "trace",
]
