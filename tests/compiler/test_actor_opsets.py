"""Ready ONNX actors exported at another opset are converted, compiled and run correctly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import compile_program
from exploy_dsl import Runtime
from tests._support import Compiled


def old_style_actor(opset: int, seed: int = 3) -> onnx.ModelProto:
    """48 -> 12 with ops whose definitions changed over the opsets (Gemm, Clip, Softmax)."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(size=(48, 16)).astype(np.float32) * 0.2, "w1")
    b1 = numpy_helper.from_array(rng.normal(size=16).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(size=(16, 12)).astype(np.float32) * 0.3, "w2")
    clip = (
        [helper.make_node("Clip", ["h"], ["c"], min=-0.5, max=0.5)]
        if opset < 11
        else [
            helper.make_node(
                "Constant", [], ["lo"], value=numpy_helper.from_array(np.float32(-0.5))
            ),
            helper.make_node(
                "Constant", [], ["hi"], value=numpy_helper.from_array(np.float32(0.5))
            ),
            helper.make_node("Clip", ["h", "lo", "hi"], ["c"]),
        ]
    )
    nodes = [
        helper.make_node("Gemm", ["obs", "w1", "b1"], ["g"], transB=0),
        helper.make_node("Relu", ["g"], ["h"]),
        *clip,
        helper.make_node("MatMul", ["c", "w2"], ["m"]),
        helper.make_node("Softmax", ["m"], ["actions"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "old_actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 48])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 12])],
        [w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset <= 14 else 8
    return model


@pytest.mark.parametrize("opset", [9, 11, 13, 17, 18])
def test_an_actor_at_another_opset_compiles_and_computes_the_same(
    compiled: dict[str, Compiled], opset: int
) -> None:
    actor = old_style_actor(opset)
    onnx.checker.check_model(actor, full_check=True)
    program = compiled["quadruped"].program_file.program
    model = compile_program(program, actor)
    runtime = Runtime(model)
    reference = ReferenceEvaluator(actor)
    rng = np.random.default_rng(opset)
    feeds = {w.name: rng.normal(size=w.shape).astype(w.np_dtype) for w in runtime.contract.inputs}
    out = runtime.step(feeds)  # tick 0: a policy step
    expected = reference.run(None, {"obs": out["obs"]})[0]
    np.testing.assert_allclose(out["actions"], expected, rtol=1e-5, atol=1e-6)
