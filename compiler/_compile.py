"""Compile a program and its actor into the file of DESIGN.md sections 2 and 3."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnx
import onnx.checker
import onnx.numpy_helper

from exploy_dsl import ActorError, CompileError, Program, TracedProgram, trace

from ._actor import Actor, Exporter, load_actor
from ._metadata import metadata
from ._opset import retarget
from ._stitch import stitch
from ._write import write_atomic

DEFAULT_OPSET = 20
DEFAULT_IR_VERSION = 10


def compile_program(
    program: Program | TracedProgram,
    actor: object,
    *,
    opset: int = DEFAULT_OPSET,
    ir_version: int = DEFAULT_IR_VERSION,
    exporter: Exporter = "dynamo",
    model_source: dict[str, Any] | None = None,
    output: str | os.PathLike[str] | None = None,
) -> onnx.ModelProto:
    """Trace, check sizes, stitch, add initializers and metadata, verify; optionally write.

    The file is written only once everything succeeded, and atomically.
    """
    traced = program if isinstance(program, TracedProgram) else trace(program)
    loaded = load_actor(
        actor, n_obs=traced.n_obs, batch=traced.program.batch, opset=opset, exporter=exporter
    )
    check_actor_sizes(traced, loaded)
    model = stitch(traced, loaded)
    model = retarget(model, traced, opset=opset, ir_version=ir_version)
    for mem in traced.program.memories:
        model.graph.initializer.append(onnx.numpy_helper.from_array(mem.init, name=mem.wire_in))
    for key, value in metadata(traced, loaded, model_source).items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "exploy-dsl"
    import exploy_dsl

    model.producer_version = exploy_dsl.__version__
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise CompileError(
            f"the compiled file for program {traced.program.name!r} fails onnx.checker "
            f"(opset {opset}, IR {ir_version}): {' '.join(str(exc).split())[:500]}"
        ) from None
    if output is not None:
        write_atomic(model.SerializeToString(deterministic=True), Path(output))
    return model


def check_actor_sizes(traced: TracedProgram, actor: Actor) -> None:
    if actor.n_obs != traced.n_obs:
        raise ActorError(
            f"observation size mismatch: the observations stage produces {traced.n_obs} values "
            f"({', '.join(f'{t.name}:{t.size}' for t in traced.obs_terms)}) but actor "
            f"{actor.source} takes {actor.n_obs}. Fix: change the observation terms or use an "
            f"actor with input size {traced.n_obs}."
        )
    if actor.n_actions != traced.n_actions:
        raise ActorError(
            f"action size mismatch: actor {actor.source} outputs {actor.n_actions} values but "
            f"process_actions expects n_actions={traced.n_actions}. Fix: set "
            f"@program.process_actions(n_actions={actor.n_actions}) or use a matching actor."
        )
