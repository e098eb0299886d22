"""Compile a program and its actor into the file of DESIGN.md sections 2 and 3."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import onnx
import onnx.checker
import onnx.numpy_helper
import onnx.shape_inference

from compiler.build._actor import Exporter, prepare_actor
from compiler.build._articulation import target_articulations
from compiler.build._batch import check_envs
from compiler.build._exploy_rules import check_program, declared_metadata
from compiler.build._finite import check_finite
from compiler.build._fold import fold_observation
from compiler.build._metadata import metadata
from compiler.build._opset import Part, retarget
from compiler.build._reproducible import export_date, strip_debug_info
from compiler.build._rewrite import apply_rewrites
from compiler.build._self_test import record_self_test
from compiler.build._stitch import stitch
from compiler.build._targets import Target, parse_target, resolve_versions
from compiler.build._verify import serialized, verify_in_onnxruntime, verify_rewrites
from compiler.build._write import write_atomic
from compiler.check._inputs import InputStream
from exploy_dsl import (
    ArticulationWarning,
    CompileError,
    Program,
    TracedProgram,
    UsageError,
    trace,
)
from exploy_dsl._checks import is_int
from exploy_dsl.contract._batch import NOT_FOR_ROBOT, Batch, check_batch
from exploy_dsl.contract._codec import to_json
from exploy_dsl.contract._self_test import SELF_TEST_KEY

DEFAULT_OPSET = 20
DEFAULT_IR_VERSION = 10


def compile_program(
    program: Program | TracedProgram,
    actor: object,
    *,
    opset: int | None = None,
    ir_version: int | None = None,
    target: str | None = None,
    exporter: Exporter = "dynamo",
    model_source: dict[str, Any] | None = None,
    stamp: bool = False,
    output: str | os.PathLike[str] | None = None,
    self_test: InputStream | None = None,
    batch: Batch | None = None,
    rewrites: bool = True,
) -> onnx.ModelProto:
    """Trace, check sizes and finiteness, stitch, add initializers and metadata, verify with
    onnx.checker and onnxruntime (one tick of each mode); optionally write.

    ``target="onnxruntime==1.16"`` picks the highest opset and IR version that onnxruntime
    release runs (explicit ``opset``/``ir_version`` must not exceed them); without a target
    they default to 20 and 10. The same program and actor give the same bytes; ``stamp``
    adds the export date (the one thing that differs between runs). The file is written
    only once everything succeeded, and atomically. ``self_test`` (a few ticks of inputs)
    embeds those inputs and the file's own outputs on them, for ``Runtime.self_test()``.

    ``batch`` (default: the program's, 1) builds a file for evaluating many envs in one call:
    an int N or ``"dynamic"`` (a symbolic ``batch`` dimension). Every input, output and
    memory gets the batch dimension; ``ctx.step_count`` stays one scalar, so the envs step in
    lockstep. Before it is written, the batched file is run with different inputs in every
    env against the batch-1 file fed each env alone. Such a file is not for exploy's
    controller (batch 1); ``self_test`` is for robot files and is refused with it.

    ``rewrites=False`` leaves out the build's rewrites (``compiler/build/_rewrite.py``):
    fewer, fused nodes computing the same bits.
    """
    _check_arguments(opset, ir_version, output, self_test)
    chosen = parse_target(target) if target is not None else None
    opset, ir_version = resolve_versions(
        chosen, opset, ir_version, (DEFAULT_OPSET, DEFAULT_IR_VERSION)
    )
    spec = None if batch is None else check_batch(batch, "compile batch", error=UsageError)
    if isinstance(program, Program) and spec is not None and spec != program.batch_spec:
        program = program.with_batch(spec)
    traced = program if isinstance(program, TracedProgram) else trace(program)
    if spec is not None:
        traced = traced.at_batch(spec)
    batched = traced.program.batch_spec != 1
    if batched and self_test is not None:
        raise UsageError(
            f"a self-test is for a robot file; program {traced.program.name!r} is compiled at "
            f"batch {traced.program.batch_spec!r} ({NOT_FOR_ROBOT}). Fix: drop --self-test, or "
            "compile the robot file (batch 1) with it."
        )
    model, data, built = _build(
        traced,
        actor,
        opset,
        ir_version,
        chosen,
        exporter,
        model_source,
        stamp,
        warn=True,
        rewrites=rewrites,
    )
    if batched:
        # The robot's file of the same program and actor: what each env must compute alone.
        robot = traced.at_batch(1)
        _, robot_data, robot_built = _build(
            robot,
            actor,
            opset,
            ir_version,
            chosen,
            exporter,
            None,
            False,
            warn=False,
            rewrites=rewrites,
        )
        check_envs(data, built, robot_data, robot_built)
    if self_test is not None:
        value = record_self_test(data, self_test, built)
        model.metadata_props.add(key=SELF_TEST_KEY, value=value)
        data = serialized(model)
    if output is not None:
        write_atomic(data, Path(output))
    return model


def _check_arguments(opset: object, ir_version: object, output: object, self_test: object) -> None:
    """Arguments of the wrong type, named before they fail deep inside the build."""
    for value, what, example in ((opset, "opset", 20), (ir_version, "ir_version", 10)):
        if value is not None and not is_int(value):
            raise UsageError(
                f"{what} must be an int, got {type(value).__name__} {value!r}. "
                f"Fix: e.g. {what}={example}."
            )
    if output is not None and not isinstance(output, (str, os.PathLike)):
        raise UsageError(
            f"output must be a path (str or os.PathLike), got {type(output).__name__} "
            f"{output!r}. Fix: e.g. output='policy.onnx'."
        )
    if self_test is not None and not isinstance(self_test, InputStream):
        raise UsageError(
            f"self_test must be an InputStream, got {type(self_test).__name__} {self_test!r}. "
            "Fix: pass compiler.load_trace(path, program) or compiler.random_stream(program, "
            "24)."
        )


def _build(
    traced: TracedProgram,
    actor: object,
    opset: int,
    ir_version: int,
    chosen: Target | None,
    exporter: Exporter,
    model_source: dict[str, Any] | None,
    stamp: bool,
    *,
    warn: bool,
    rewrites: bool,
) -> tuple[onnx.ModelProto, bytes, TracedProgram]:
    """The verified file (model and bytes) and the program as it carries it."""
    check_program(traced.program)
    for targets in target_articulations(declared_metadata(traced.program)):
        if warn and targets.differs and targets.group not in traced.program.stated_articulations:
            warnings.warn(targets.warning(), ArticulationWarning, stacklevel=3)
    if model_source is not None and not isinstance(model_source, dict):
        raise CompileError(
            f"model_source must be a dict (stored as a JSON object), got "
            f"{type(model_source).__name__}. Fix: e.g. model_source={{'run': 'wandb/abc123'}}."
        )
    if model_source is not None:
        try:
            to_json(model_source)
        except (TypeError, ValueError) as exc:
            raise CompileError(
                f"model_source cannot be stored as JSON: {exc}. Fix: use only str keys and str, "
                "int, float (finite), bool, None, list or dict values."
            ) from None
    # Stages are written with exploy_dsl.op (ONNX opset 20); the actor joins them at that opset.
    traced, loaded = prepare_actor(
        actor, traced, opset=opset, exporter=exporter, stage_opset=DEFAULT_OPSET
    )
    check_finite(traced, loaded)
    loaded = fold_observation(traced, loaded)  # fold_into_actor: normalizer and scales
    model = stitch(traced, loaded)
    plain = serialized(model)
    build = apply_rewrites(model, opset) if rewrites else []
    parts = [Part(f"{s.label} ({s.location})", s.model) for s in traced.stages]
    parts += [
        Part(f"the actor ({loaded.source})", loaded.model),
        Part("the compiler's two-mode switch (If/Mod/Equal)", model, recurse=False),
    ]
    retarget(model, parts, opset=opset, ir_version=ir_version, target=chosen)
    strip_debug_info(model)
    for mem in traced.program.memories:
        model.graph.initializer.append(onnx.numpy_helper.from_array(mem.init, name=mem.wire_in))
    props = metadata(
        traced,
        loaded,
        model_source,
        stamp=export_date() if stamp else None,
        target=chosen.spec if chosen is not None else None,
        rewrites=build,
    )
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "exploy-dsl"
    import exploy_dsl

    model.producer_version = exploy_dsl.__version__
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise CompileError(
            f"the compiled file for program {traced.program.name!r} fails onnx.checker "
            f"(opset {opset}, IR {ir_version}): {' '.join(str(exc).split())[:500]}"
        ) from None
    data = serialized(model)
    verify_in_onnxruntime(data, traced, opset, ir_version)
    if build:
        verify_rewrites(plain, data, traced)
    return model, data, traced
