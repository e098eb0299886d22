"""lift_weights: the actor's weights are initializers of the branch that reads them.

The bytes of every output are compared with the file compiled without rewrites by
tests/compiler/test_rewrites.py; here: where the weights end up, that the main graph's
initializers stay the memory initial values, and the cases the step must leave alone.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.build._rewrite_graph import constant_value
from compiler.build._rewrite_lift import LIFT_MIN_ELEMENTS, lift_weights
from exploy_dsl.contract._graphs import graphs
from tests._support import Compiled, run, session


def _subgraph_constants(model: onnx.ModelProto) -> list[tuple[onnx.GraphProto, onnx.NodeProto]]:
    found = []
    for graph in graphs(model.graph):
        if graph is model.graph:
            continue
        found += [(graph, n) for n in graph.node if n.op_type == "Constant"]
    return found


@pytest.mark.parametrize("name", ["quadruped", "tutorial"])
def test_the_actor_weights_are_initializers_of_the_policy_branch(
    compiled: dict[str, Compiled], name: str
) -> None:
    example = compiled[name]
    (if_node,) = [n for n in example.model.graph.node if n.op_type == "If"]
    then = next(a.g for a in if_node.attribute if a.name == "then_branch")
    weights = [numpy_helper.to_array(t) for t in then.initializer]
    actor = example.actor
    large = [a for a in (actor.w1, actor.b1, actor.w2, actor.b2) if a.size >= LIFT_MIN_ELEMENTS]
    assert large, "the example actor has no weight large enough to move"
    for array in large:  # the same bytes, in the branch that reads them
        assert any(w.shape == array.shape and w.tobytes() == array.tobytes() for w in weights)
    for sub, node in _subgraph_constants(example.model):
        value = constant_value(node)
        assert (
            value is None
            or value.size < LIFT_MIN_ELEMENTS
            or node.output[0] in {o.name for o in sub.output}
        )
    main = {t.name for t in example.model.graph.initializer}
    assert all(n.startswith("memory.") and n.endswith(".in") for n in main)


def _branch_model(*, returned: bool) -> onnx.ModelProto:
    """``If(c)``: then = ``(x @ V) @ W`` with V a Constant of the branch and W one of an If
    nested in it, times K (8 elements); else = x. With ``returned`` the then branch also
    returns a large Constant directly."""
    rng = np.random.default_rng(1)
    v = rng.normal(size=(8, 8)).astype(np.float32)
    w = rng.normal(size=(8, 8)).astype(np.float32)
    k = np.full((8,), 3.0, np.float32)
    inner = helper.make_graph(
        [
            helper.make_node("Constant", [], ["W"], value=numpy_helper.from_array(w)),
            helper.make_node("MatMul", ["xv", "W"], ["xw"]),
        ],
        "inner",
        [],
        [helper.make_tensor_value_info("xw", TensorProto.FLOAT, [1, 8])],
    )
    inner_else = helper.make_graph(
        [helper.make_node("Neg", ["xv"], ["nx"])],
        "inner_else",
        [],
        [helper.make_tensor_value_info("nx", TensorProto.FLOAT, [1, 8])],
    )
    then_nodes = [
        helper.make_node("Constant", [], ["V"], value=numpy_helper.from_array(v)),
        helper.make_node("MatMul", ["x", "V"], ["xv"]),
        helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner_else),
        helper.make_node("Constant", [], ["K"], value=numpy_helper.from_array(k)),
        helper.make_node("Mul", ["y", "K"], ["then_y"]),
    ]
    then_outputs = [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, [1, 8])]
    else_nodes = [helper.make_node("Identity", ["x"], ["else_y"])]
    else_outputs = [helper.make_tensor_value_info("else_y", TensorProto.FLOAT, [1, 8])]
    outputs = [helper.make_tensor_value_info("y_out", TensorProto.FLOAT, [1, 8])]
    if returned:
        big = np.linspace(-1, 1, 100, dtype=np.float32)
        then_nodes.append(
            helper.make_node("Constant", [], ["B"], value=numpy_helper.from_array(big))
        )
        then_outputs.append(helper.make_tensor_value_info("B", TensorProto.FLOAT, [100]))
        else_nodes.append(
            helper.make_node("Constant", [], ["B0"], value=numpy_helper.from_array(-big))
        )
        else_outputs.append(helper.make_tensor_value_info("B0", TensorProto.FLOAT, [100]))
        outputs.append(helper.make_tensor_value_info("b_out", TensorProto.FLOAT, [100]))
    then = helper.make_graph(then_nodes, "then", [], then_outputs)
    orelse = helper.make_graph(else_nodes, "else", [], else_outputs)
    if_node = helper.make_node(
        "If", ["c"], [o.name for o in outputs], then_branch=then, else_branch=orelse
    )
    inputs = [
        helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
    ]
    graph = helper.make_graph([if_node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


@pytest.mark.parametrize("returned", [False, True])
def test_branch_weights_move_at_every_depth_and_the_outputs_keep_their_bytes(
    returned: bool,
) -> None:
    model = _branch_model(returned=returned)
    lifted = onnx.ModelProto()
    lifted.CopyFrom(model)
    # V (the branch's) and W (the nested If's) move; K (8 elements) and B (returned) stay.
    assert lift_weights(lifted) == 2
    onnx.checker.check_model(lifted, full_check=True)
    held = {g.name: [t.name for t in g.initializer] for g in graphs(lifted.graph)}
    assert held == {"g": [], "then": ["V"], "inner": ["W"], "inner_else": [], "else": []}
    left = {n.output[0] for _, n in _subgraph_constants(lifted)}
    assert left == ({"K", "B", "B0"} if returned else {"K"})
    x = np.random.default_rng(0).normal(size=(1, 8)).astype(np.float32)
    for c in (True, False):
        feeds = {"c": np.array(c), "x": x}
        want, got = run(session(model), feeds), run(session(lifted), feeds)
        assert list(want) == list(got)
        for name in want:
            assert want[name].tobytes() == got[name].tobytes(), (c, name)
