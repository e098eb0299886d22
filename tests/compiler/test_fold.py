"""fold_into_actor: the normalizer and term scales move into the actor's first layer, exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import check_parity, compile_program, random_stream
from compiler.tools._explain import render_explain
from exploy_dsl import CompileError, Program, Runtime, StageError, normalizer, read_contract, term
from exploy_dsl import trace as trace_program
from tests._support import mlp_actor

# Module-level torch (a torch.nn.Module class, checkpoints): without torch the whole module
# skips, as the no-torch suite of `make test` needs to collect it.
torch = pytest.importorskip("torch")

N_OBS = 3 * 2 + 3  # x with a 2-step history, y


def program(*, fold: bool, clip: Any = (-4.0, 4.0), norm_clip: Any = None) -> Program:
    p = Program("fold", decimation=2, sim_dt=0.01)
    x = p.input("x", 3)
    y = p.input("y", 3)
    out = p.output("out", 2)
    last = p.memory("last", 2)
    rng = np.random.default_rng(7)
    norm = normalizer(rng.normal(size=N_OBS), std=rng.uniform(0.05, 2.0, N_OBS), clip=norm_clip)

    @p.observations(clip=clip, normalize=norm, fold_into_actor=fold)
    def observations(v: Any) -> list[Any]:
        return [
            term("x", v[x], scale=2.0, history=2),
            term("y", v[y], scale=(0.5, -3.0, 1.0), clip=(-1.0, 1.0)),
        ]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: v[last]}

    return p


def gemm_actor(*, with_c: bool = True, trans_b: int = 1) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, N_OBS) if trans_b else (N_OBS, 8)).astype(np.float32)
    w2 = rng.normal(size=(8, 2)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(w2, "w2")]
    inputs = ["obs", "w"]
    if with_c:
        inits.append(numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [
        helper.make_node("Gemm", inputs, ["h"], transB=trans_b, alpha=0.5, beta=2.0),
        helper.make_node("Tanh", ["h"], ["t"]),
        helper.make_node("MatMul", ["t", "w2"], ["actions"]),
    ]
    return _model(nodes, inits)


def _model(nodes: list[Any], inits: list[Any]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, N_OBS])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 2])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def actions_of(model: onnx.ModelProto, stream: Any) -> np.ndarray:
    runtime = Runtime(model)
    result = []
    for tick in range(stream.ticks):
        if stream.reset[tick]:
            runtime.reset()
        result.append(runtime.step(stream.at(tick))["actions"])
    return np.array(result)


ACTORS = {
    "matmul_add": lambda: mlp_actor(N_OBS, 2, seed=4).model,
    "gemm": gemm_actor,
    "gemm_without_c": lambda: gemm_actor(with_c=False),
    "gemm_not_transposed": lambda: gemm_actor(trans_b=0),
}


@pytest.mark.parametrize("kind", list(ACTORS))
def test_the_folded_file_acts_as_the_unfolded_one(kind: str) -> None:
    actor = ACTORS[kind]()
    folded_p, plain_p = program(fold=True), program(fold=False)
    folded = compile_program(folded_p, actor)
    plain = compile_program(plain_p, actor)
    stream = random_stream(plain_p, 120, seed=3)
    report = check_parity(folded, folded_p, actor, inputs=stream)  # reference: original actor
    assert report.ok, report.render()
    np.testing.assert_allclose(
        actions_of(folded, stream), actions_of(plain, stream), rtol=1e-4, atol=1e-5
    )
    # The folded file's obs is neither scaled nor normalized; the actor's weights do both.
    runtime = Runtime(folded)
    x = np.array([[0.1, 0.2, 0.3]], np.float32)
    obs = runtime.step({"x": x, "y": np.full((1, 3), 0.5, np.float32)})["obs"][0]
    np.testing.assert_allclose(obs, [0.1, 0.2, 0.3] * 2 + [0.5] * 3, rtol=1e-6)


def test_a_torch_actor_is_folded_and_checked_alone_before_the_fold() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(N_OBS, 8), torch.nn.ELU(), torch.nn.Linear(8, 2))
    p = program(fold=True)
    model = compile_program(p, net.eval(), exporter="torchscript")
    report = check_parity(model, p, net, steps=80)
    assert report.ok, report.render()
    assert report.actor.status == "ok"


def test_the_fold_is_recorded_and_explained() -> None:
    p = program(fold=True)
    contract = read_contract(compile_program(p, mlp_actor(N_OBS, 2).model))
    layout = contract.json_metadata("exploy_dsl.observation")
    assert layout["folded_into_actor"] == ["scales", "normalizer"]
    assert all(t["scale_folded"] for t in layout["terms"])
    assert contract.json_metadata("exploy_dsl.normalizer")["folded"] is True
    text = render_explain(contract, "fold.onnx")
    assert "scale 2 (folded into the actor)" in text
    assert "folded into the actor's first layer: obs is NOT normalized" in text


def _refused(actor: onnx.ModelProto, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        compile_program(program(fold=True), actor)


def test_an_actor_whose_first_op_is_not_linear_is_refused() -> None:
    w = numpy_helper.from_array(np.ones((N_OBS, 2), np.float32), "w")
    nodes = [
        helper.make_node("Tanh", ["obs"], ["t"]),
        helper.make_node("MatMul", ["t", "w"], ["actions"]),
    ]
    _refused(_model(nodes, [w]), "first op on 'obs' is Tanh, not Gemm or MatMul\\+Add.*Fix")


def test_an_observation_feeding_two_ops_is_refused() -> None:
    w = numpy_helper.from_array(np.ones((N_OBS, 2), np.float32), "w")
    s = numpy_helper.from_array(np.ones((N_OBS, 2), np.float32), "s")
    nodes = [
        helper.make_node("MatMul", ["obs", "w"], ["a"]),
        helper.make_node("MatMul", ["obs", "s"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["actions"]),
    ]
    _refused(_model(nodes, [w, s]), "feeds 2 ops \\(MatMul, MatMul\\)")


def test_a_matmul_without_a_bias_add_cannot_take_the_mean() -> None:
    w = numpy_helper.from_array(np.ones((N_OBS, 2), np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["obs", "w"], ["m"]),
        helper.make_node("Tanh", ["m"], ["actions"]),
    ]
    _refused(_model(nodes, [w]), "followed by Tanh, not one Add of a constant bias")


def test_weights_that_are_not_constants_are_refused() -> None:
    nodes = [
        helper.make_node(
            "Constant", [], ["w"], value=numpy_helper.from_array(np.ones((N_OBS, 2), np.float32))
        ),
        helper.make_node("Gemm", ["obs", "w"], ["actions"]),
    ]
    _refused(_model(nodes, []), "'w' of the actor's first layer is not a constant initializer")


def test_a_clipped_normalizer_cannot_be_folded() -> None:
    with pytest.raises(StageError, match="clip after the normalizer is not affine"):
        trace_program(program(fold=True, norm_clip=(-5.0, 5.0)))
