"""Stitch traced stages and the actor into one graph with the two modes of DESIGN.md section 3."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import onnx
import spox
import spox.opset.ai.onnx.v20 as op
from spox import Tensor, Var, argument

from exploy_dsl import Actor, CompileError, Memory, TracedProgram
from exploy_dsl.contract._tick import StageKind, run_tick
from exploy_dsl.contract._wires import STEP_COUNT


class _SpoxTick:
    """The tick's stages as spox Vars: each stage graph and the actor inlined.

    ``envs`` is the number of envs (int64 ``[1]``) when the program has a batch other than 1:
    the apply-only step's zeros are then one env's, expanded, and with a dynamic batch the
    actor's reshapes keep the batch axis free.
    """

    def __init__(self, traced: TracedProgram, actor: Actor, envs: Var | None) -> None:
        self._traced = traced
        self._actor = actor
        self._envs = envs

    def run(self, kind: StageKind, env: Mapping[str, Var]) -> dict[str, Var]:
        if kind == "actor":
            signature = self._actor.signature
            if not self._traced.program.dynamic_batch:
                outputs = spox.inline(self._actor.model)(**signature.feeds(env, _reshape))
                return signature.results(outputs, _reshape)
            feeds = {
                p.name: env[p.binds]
                if p.actor_shape is None
                else _reshape(env[p.binds], p.actor_shape, p.batch_axis)
                for p in signature.inputs
            }
            outputs = spox.inline(self._actor.model)(**feeds)
            return {
                p.binds: outputs[p.name]
                if p.actor_shape is None
                else _reshape(outputs[p.name], p.shape, p.batch_axis)
                for p in signature.outputs
            }
        stage = self._traced.stage(kind)
        feeds = {name: env[name] for name in stage.reads}
        return dict(zip(stage.writes, spox.inline(stage.model)(**feeds).values(), strict=True))

    def zeros(self, name: str) -> Var:
        shape = self._traced.output_shapes()[name]
        if self._envs is None:
            return op.const(np.zeros(shape, np.float32))
        one = op.const(np.zeros((1, *shape[1:]), np.float32))
        rest = op.const(np.array(shape[1:], np.int64))
        return op.expand(one, op.concat([self._envs, rest], axis=0))


def _reshape(value: Var, shape: tuple[int, ...], batch_axis: int | None = None) -> Var:
    """``value`` reshaped to ``shape``; with ``batch_axis``, that axis is left to the data
    (a dynamic batch: ``shape`` is one env's)."""
    dims = np.array(shape, np.int64)
    if batch_axis is not None:
        dims[batch_axis] = -1
    return op.reshape(value, op.const(dims))


def stitch(traced: TracedProgram, actor: Actor) -> onnx.ModelProto:
    """Build the file's graph: ``If(step % decimation == 0, policy step, apply-only step)``.

    Each branch is one tick (``contract/_tick.py``) run on spox Vars. Outputs come in contract
    order: ``actions``, ``obs``, declared outputs, memory outs. Memory initial values are
    added by ``compile_program`` as initializers.
    """
    program = traced.program
    step = argument(Tensor(np.int32, ()))
    env: dict[str, Var] = {STEP_COUNT: step}  # stages read the tick as v.tick / v.time
    graph_inputs: dict[str, Var] = {STEP_COUNT: step}
    for port in program.inputs:
        env[port.name] = graph_inputs[port.wire] = argument(Tensor(port.np_dtype, port.wire_shape))
    for mem in program.memories:
        var = argument(Tensor(mem.np_dtype, mem.wire_shape))
        env[mem.key] = graph_inputs[mem.wire_in] = var
    engine = _SpoxTick(traced, actor, _envs(traced, env))
    names = list(traced.output_shapes())

    def branch(policy_step: bool) -> Callable[[], list[Var]]:
        def tick() -> list[Var]:
            values = run_tick(
                engine,
                env,
                policy_step=policy_step,
                outputs=traced.output_wires,
                memories=traced.memory_wires,
            )
            return [values[name] for name in names]

        return tick

    # The file's mode switch, DESIGN.md section 2: Mod(ctx.step_count, decimation) == 0.
    is_policy_step = op.equal(
        op.mod(step, op.const(np.int32(program.decimation))), op.const(np.int32(0))
    )
    results = op.if_(is_policy_step, then_branch=branch(True), else_branch=branch(False))
    graph_outputs = dict(zip(names, results, strict=True))
    with warnings.catch_warnings():
        # spox warns when an inlined actor uses another opset version than the stages.
        warnings.simplefilter("ignore")
        model = spox.build(inputs=graph_inputs, outputs=graph_outputs)
    model.graph.name = program.name
    _restore_output_shapes(model, traced)
    return model


def _envs(traced: TracedProgram, env: Mapping[str, Var]) -> Var | None:
    """The number of envs as int64 ``[1]``: None at batch 1 (the robot's file is unchanged),
    a constant at a fixed batch, read from the first input or memory when it is dynamic."""
    program = traced.program
    if program.batch_spec == 1:
        return None
    if not program.dynamic_batch:
        return op.const(np.array([program.batch], np.int64))
    carrier = next((p for p in (*program.inputs, *program.memories)), None)
    if carrier is None:
        raise CompileError(
            f"program {program.name!r} has a dynamic batch but no input or memory to take the "
            "number of envs from. Fix: compile it with a fixed batch (--batch N)."
        )
    key = carrier.key if isinstance(carrier, Memory) else carrier.name
    axis = carrier.batch_axis
    return op.shape(env[key], start=axis, end=axis + 1)


def _restore_output_shapes(model: onnx.ModelProto, traced: TracedProgram) -> None:
    """Pin every graph output to its declared shape (If outputs may lose it); a dynamic
    batch is the symbolic dimension ``batch``."""
    shapes = traced.output_wire_shapes()
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        tensor_type.shape.Clear()
        for dim in shapes[value.name]:
            if isinstance(dim, str):
                tensor_type.shape.dim.add().dim_param = dim
            else:
                tensor_type.shape.dim.add().dim_value = dim
