"""Stitch traced stages and the actor into one graph with the two modes of DESIGN.md section 3."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
import onnx
import spox
import spox.opset.ai.onnx.v20 as op
from spox import Tensor, Var, argument

from exploy_dsl import Actor, TracedProgram
from exploy_dsl.contract._tick import StageKind, run_tick
from exploy_dsl.contract._wires import STEP_COUNT


class _SpoxTick:
    """The tick's stages as spox Vars: each stage graph and the actor inlined."""

    def __init__(self, traced: TracedProgram, actor: Actor) -> None:
        self._traced = traced
        self._actor = actor

    def run(self, kind: StageKind, env: Mapping[str, Var]) -> dict[str, Var]:
        if kind == "actor":
            signature = self._actor.signature
            outputs = spox.inline(self._actor.model)(**signature.feeds(env, _reshape))
            return signature.results(outputs, _reshape)
        stage = self._traced.stage(kind)
        feeds = {name: env[name] for name in stage.reads}
        return dict(zip(stage.writes, spox.inline(stage.model)(**feeds).values(), strict=True))

    def zeros(self, name: str) -> Var:
        shape = self._traced.output_shapes()[name]
        return op.const(np.zeros(shape, np.float32))


def _reshape(value: Var, shape: tuple[int, ...]) -> Var:
    return op.reshape(value, op.const(np.array(shape, np.int64)))


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
        env[port.name] = graph_inputs[port.wire] = argument(Tensor(port.np_dtype, port.file_shape))
    for mem in program.memories:
        var = argument(Tensor(mem.np_dtype, mem.file_shape))
        env[mem.key] = graph_inputs[mem.wire_in] = var
    engine = _SpoxTick(traced, actor)
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


def _restore_output_shapes(model: onnx.ModelProto, traced: TracedProgram) -> None:
    """Pin every graph output to its declared static shape (If outputs may lose it)."""
    shapes = traced.output_shapes()
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        tensor_type.shape.Clear()
        for dim in shapes[value.name]:
            tensor_type.shape.dim.add().dim_value = dim
