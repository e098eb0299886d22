"""exploy-dsl: declare robot deployment logic once, as spox functions over named ports."""

from __future__ import annotations

import typing as _typing

from exploy_dsl._errors import (
    ActorError,
    ArticulationWarning,
    CompileError,
    DeclarationError,
    ExployDslError,
    ExployDslWarning,
    FileContractError,
    GraphInterpreterError,
    MissingDependencyError,
    NonFiniteConstantError,
    OnnxRuntimeLoadError,
    OutputPathError,
    RuntimeInputError,
    SelfTestError,
    SimError,
    StageError,
    TraceFileError,
    UsageError,
    VerificationError,
    WriteError,
)
from exploy_dsl._lazy import lazy_exports as _lazy_exports

if _typing.TYPE_CHECKING:
    import spox.opset.ai.onnx.v20 as op

    from exploy_dsl.authoring._actor import Actor, ActorPort, ActorSignature
    from exploy_dsl.authoring._models import call_model
    from exploy_dsl.authoring._ports import Input, Memory, Output, Port
    from exploy_dsl.authoring._program import Group, Program
    from exploy_dsl.authoring._robot import BaseState, Imu, Joints, JointTargets
    from exploy_dsl.authoring._script import call_script
    from exploy_dsl.authoring._trace import ObsTerm, StageGraph, Term, TracedProgram, term, trace
    from exploy_dsl.contract._reader import FileContract, Wire, load_model, read_contract
    from exploy_dsl.library._actions import (
        JointPositionAction,
        LowPass,
        RateLimit,
        argmax,
        clip,
        joint_position_action,
        low_pass,
        rate_limit,
        scale_offset,
        unscale_action,
    )
    from exploy_dsl.library._history import History
    from exploy_dsl.library._normalizer import Normalizer, normalizer
    from exploy_dsl.library._rotations import (
        atan2,
        heading,
        projected_gravity,
        quat_apply,
        quat_apply_inverse,
        quat_conjugate,
        quat_mul,
        wrap_to_pi,
        yaw_quat,
    )
    from exploy_dsl.library._time import phase_clock
    from exploy_dsl.reference._interpreter import ReferenceInterpreter
    from exploy_dsl.runtime._runtime import Runtime

# Public name -> the module defining it. Loaded on first use (PEP 562), so that a deploy host
# importing exploy_dsl for the Runtime loads neither spox nor onnx, and authoring does not load
# onnxruntime.
_LAZY = {
    "op": "spox.opset.ai.onnx.v20",
    "Actor": "exploy_dsl.authoring._actor",
    "ActorPort": "exploy_dsl.authoring._actor",
    "ActorSignature": "exploy_dsl.authoring._actor",
    "call_model": "exploy_dsl.authoring._models",
    "Input": "exploy_dsl.authoring._ports",
    "Memory": "exploy_dsl.authoring._ports",
    "Output": "exploy_dsl.authoring._ports",
    "Port": "exploy_dsl.authoring._ports",
    "Group": "exploy_dsl.authoring._program",
    "Program": "exploy_dsl.authoring._program",
    "BaseState": "exploy_dsl.authoring._robot",
    "Imu": "exploy_dsl.authoring._robot",
    "Joints": "exploy_dsl.authoring._robot",
    "JointTargets": "exploy_dsl.authoring._robot",
    "call_script": "exploy_dsl.authoring._script",
    "ObsTerm": "exploy_dsl.authoring._trace",
    "StageGraph": "exploy_dsl.authoring._trace",
    "Term": "exploy_dsl.authoring._trace",
    "TracedProgram": "exploy_dsl.authoring._trace",
    "term": "exploy_dsl.authoring._trace",
    "trace": "exploy_dsl.authoring._trace",
    "FileContract": "exploy_dsl.contract._reader",
    "Wire": "exploy_dsl.contract._reader",
    "load_model": "exploy_dsl.contract._reader",
    "read_contract": "exploy_dsl.contract._reader",
    "History": "exploy_dsl.library._history",
    "JointPositionAction": "exploy_dsl.library._actions",
    "LowPass": "exploy_dsl.library._actions",
    "Normalizer": "exploy_dsl.library._normalizer",
    "RateLimit": "exploy_dsl.library._actions",
    "argmax": "exploy_dsl.library._actions",
    "atan2": "exploy_dsl.library._rotations",
    "clip": "exploy_dsl.library._actions",
    "heading": "exploy_dsl.library._rotations",
    "joint_position_action": "exploy_dsl.library._actions",
    "low_pass": "exploy_dsl.library._actions",
    "normalizer": "exploy_dsl.library._normalizer",
    "phase_clock": "exploy_dsl.library._time",
    "projected_gravity": "exploy_dsl.library._rotations",
    "quat_apply": "exploy_dsl.library._rotations",
    "quat_apply_inverse": "exploy_dsl.library._rotations",
    "quat_conjugate": "exploy_dsl.library._rotations",
    "quat_mul": "exploy_dsl.library._rotations",
    "rate_limit": "exploy_dsl.library._actions",
    "scale_offset": "exploy_dsl.library._actions",
    "unscale_action": "exploy_dsl.library._actions",
    "wrap_to_pi": "exploy_dsl.library._rotations",
    "yaw_quat": "exploy_dsl.library._rotations",
    "ReferenceInterpreter": "exploy_dsl.reference._interpreter",
    "Runtime": "exploy_dsl.runtime._runtime",
}


__getattr__, __dir__ = _lazy_exports("exploy_dsl", _LAZY, globals(), modules=frozenset({"op"}))


for _error in [v for v in tuple(globals().values()) if isinstance(v, type)]:
    if issubclass(_error, (ExployDslError, ExployDslWarning)):
        _error.__module__ = "exploy_dsl"  # tracebacks and warnings show the public name


__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorError",
    "ActorPort",
    "ActorSignature",
    "ArticulationWarning",
    "BaseState",
    "CompileError",
    "DeclarationError",
    "ExployDslError",
    "ExployDslWarning",
    "FileContract",
    "FileContractError",
    "GraphInterpreterError",
    "Group",
    "History",
    "Imu",
    "Input",
    "JointPositionAction",
    "JointTargets",
    "Joints",
    "LowPass",
    "Memory",
    "MissingDependencyError",
    "NonFiniteConstantError",
    "Normalizer",
    "ObsTerm",
    "OnnxRuntimeLoadError",
    "Output",
    "OutputPathError",
    "Port",
    "Program",
    "RateLimit",
    "ReferenceInterpreter",
    "Runtime",
    "RuntimeInputError",
    "SelfTestError",
    "SimError",
    "StageError",
    "StageGraph",
    "Term",
    "TraceFileError",
    "TracedProgram",
    "UsageError",
    "VerificationError",
    "Wire",
    "WriteError",
    "__version__",
    "argmax",
    "atan2",
    "call_model",
    "call_script",
    "clip",
    "heading",
    "joint_position_action",
    "load_model",
    "low_pass",
    "normalizer",
    "op",
    "phase_clock",
    "projected_gravity",
    "quat_apply",
    "quat_apply_inverse",
    "quat_conjugate",
    "quat_mul",
    "rate_limit",
    "read_contract",
    "scale_offset",
    "term",
    "trace",
    "unscale_action",
    "wrap_to_pi",
    "yaw_quat",
]
