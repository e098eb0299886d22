"""exploy-dsl: declare robot deployment logic once, as spox functions over named ports."""

from __future__ import annotations

import spox.opset.ai.onnx.v20 as op

from exploy_dsl._errors import (
    ActorError,
    CompileError,
    DeclarationError,
    ExployDslError,
    FileContractError,
    RuntimeInputError,
    StageError,
)
from exploy_dsl.authoring._actor import Actor, ActorPort, ActorSignature
from exploy_dsl.authoring._ports import Input, Memory, Output, Port
from exploy_dsl.authoring._program import Group, Program
from exploy_dsl.authoring._robot import BaseState, Imu, Joints, JointTargets
from exploy_dsl.authoring._script import call_script
from exploy_dsl.authoring._trace import ObsTerm, StageGraph, Term, TracedProgram, term, trace
from exploy_dsl.contract._reader import FileContract, Wire, load_model, read_contract
from exploy_dsl.reference._interpreter import ReferenceInterpreter
from exploy_dsl.runtime._runtime import Runtime

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorError",
    "ActorPort",
    "ActorSignature",
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
