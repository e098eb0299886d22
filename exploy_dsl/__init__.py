"""exploy-dsl: declare robot deployment logic once, as spox functions over named ports."""

from __future__ import annotations

import spox.opset.ai.onnx.v20 as op

from ._contract import FileContract, Wire, load_model, read_contract
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
from ._reference import ReferenceInterpreter
from ._robot import BaseState, Imu, Joints, JointTargets
from ._runtime import Runtime
from ._script import call_script
from ._trace import ObsTerm, StageGraph, Term, TracedProgram, term, trace

__version__ = "0.1.0"

__all__ = [
    "ActorError",
    "BaseState",
    "CompileError",
    "DeclarationError",
    "ExployDslError",
    "FileContract",
    "FileContractError",
    "Group",
    "Imu",
    "Input",
    "JointTargets",
    "Joints",
    "Memory",
    "ObsTerm",
    "Output",
    "Port",
    "Program",
    "ReferenceInterpreter",
    "Runtime",
    "RuntimeInputError",
    "StageError",
    "StageGraph",
    "Term",
    "TracedProgram",
    "Wire",
    "__version__",
    "call_script",
    "load_model",
    "op",
    "read_contract",
    "term",
    "trace",
]
