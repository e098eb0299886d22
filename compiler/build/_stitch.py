"""Stitch traced stages and the actor into one graph with the two modes of DESIGN.md section 3."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import spox
import spox.opset.ai.onnx.v20 as op
from spox import Tensor, Var, argument

from exploy_dsl import TracedProgram
from exploy_dsl.authoring._trace import StageGraph

from compiler.build._actor import Actor

STEP_COUNT = "ctx.step_count"


def stitch(traced: TracedProgram, actor: Actor) -> onnx.ModelProto:
    """Build the file's graph: ``If(step % decimation == 0, policy step, apply-only step)``.

    Outputs come in contract order: ``actions``, ``obs``, declared outputs, memory outs.
    Memory initial values are added later as initializers (see ``_assemble``).
    """
    program = traced.program
    step = argument(Tensor(np.int32, ()))
    env: dict[str, Var] = {}
    graph_inputs: dict[str, Var] = {STEP_COUNT: step}
    for port in program.inputs:
        env[port.name] = graph_inputs[port.wire] = argument(Tensor(port.np_dtype, port.file_shape))
    for mem in program.memories:
        var = argument(Tensor(mem.np_dtype, mem.file_shape))
        env[f"memory.{mem.name}"] = graph_inputs[mem.wire_in] = var

    output_names = [p.name for p in program.outputs]
    memory_names = [f"memory.{m.name}" for m in program.memories]
    batch = program.batch

    def run(stage: StageGraph, values: dict[str, Var]) -> dict[str, Var]:
        feeds = {name: values[name] for name in stage.reads}
        return dict(zip(stage.writes, spox.inline(stage.model)(**feeds).values(), strict=True))

    def apply(values: dict[str, Var]) -> list[Var]:
        written = run(traced.apply_actions, values)
        memory = {name: written.get(name, values[name]) for name in memory_names}
        return [written[name] for name in output_names] + [memory[name] for name in memory_names]

    def policy_step() -> list[Var]:
        obs = run(traced.observations, env)["obs"]
        (actions,) = spox.inline(actor.model)(**{actor.input_name: obs}).values()
        values = dict(env)
        values.update(run(traced.process_actions, {**env, "actions": actions}))
        return [actions, obs, *apply(values)]

    def apply_only_step() -> list[Var]:
        zeros_actions = op.const(np.zeros((batch, traced.n_actions), np.float32))
        zeros_obs = op.const(np.zeros((batch, traced.n_obs), np.float32))
        return [zeros_actions, zeros_obs, *apply(env)]

    is_policy_step = op.equal(
        op.mod(step, op.const(np.int32(program.decimation))), op.const(np.int32(0))
    )
    results = op.if_(is_policy_step, then_branch=policy_step, else_branch=apply_only_step)
    names = ["actions", "obs", *output_names, *(m.wire_out for m in program.memories)]
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
    program = traced.program
    shapes: dict[str, tuple[int, ...]] = {
        "actions": (program.batch, traced.n_actions),
        "obs": (program.batch, traced.n_obs),
    }
    shapes.update({p.wire: p.file_shape for p in program.outputs})
    shapes.update({m.wire_out: m.file_shape for m in program.memories})
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        tensor_type.shape.Clear()
        for dim in shapes[value.name]:
            tensor_type.shape.dim.add().dim_value = dim
