"""Run one function of Vars as a traced stage, in the reference interpreter and in onnxruntime."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx

from exploy_dsl import Program, trace
from exploy_dsl.reference._graph_interpreter import GraphInterpreter
from tests._support import run, session

Spec = tuple[tuple[int, ...], str]  # per-sample shape, dtype


def stage_program(
    fn: Callable[..., Any],
    inputs: Mapping[str, Spec],
    outputs: Mapping[str, Spec],
    *,
    batch: int = 1,
) -> Program:
    """A program whose apply_actions writes ``fn(*inputs)`` to ``outputs`` (in order)."""
    p = Program("harness", decimation=1, sim_dt=0.01, batch=batch)
    ins = [p.input(name, shape, dtype) for name, (shape, dtype) in inputs.items()]
    outs = [p.output(name, shape, dtype) for name, (shape, dtype) in outputs.items()]
    m = p.memory("m", 1)

    @p.observations
    def observations(v: Any) -> Any:
        return [("m", v[m])]

    @p.process_actions(n_actions=1)
    def process_actions(v: Any, actions: Any) -> Any:
        return {m: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        result = fn(*(v[port] for port in ins))
        values = result if isinstance(result, tuple) else (result,)
        return dict(zip(outs, values, strict=True))

    return p


def stage_model(program: Program) -> onnx.ModelProto:
    return trace(program).stage("apply_actions").model


def run_both(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(reference interpreter, onnxruntime) outputs of a stage graph, by output name.

    The reference must run every node from its own NumPy table (no onnx.reference fallback).
    """
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == (), interpreter.fallback_ops
    reference = interpreter.run(feeds)
    return reference, run(session(model), feeds)


def evaluate(
    fn: Callable[..., Any],
    feeds: Mapping[str, np.ndarray],
    outputs: Mapping[str, Spec],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], onnx.ModelProto]:
    """Trace ``fn`` over inputs shaped like ``feeds`` (batch first) and run it both ways."""
    batch = next(iter(feeds.values())).shape[0]
    inputs = {name: (tuple(a.shape[1:]), str(a.dtype)) for name, a in feeds.items()}
    model = stage_model(stage_program(fn, inputs, outputs, batch=batch))
    reference, onnxruntime = run_both(model, feeds)
    return reference, onnxruntime, model


def op_types(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}
