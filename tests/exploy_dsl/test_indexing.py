"""Indexing on Vars (``x[:, a:b]``, ``x[..., i]``): NumPy results, plain ONNX, user-line errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import spox.opset.ai.onnx.v20 as op

from compiler import check_parity, compile_program
from exploy_dsl import Program, StageError, term, trace
from tests._support import mlp_actor
from tests.exploy_dsl._stage_harness import evaluate, op_types, stage_model, stage_program

X = np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5) - 20.0  # batch 2, per sample [6, 5]


class Index:
    """``Index[...]`` captures an index expression, so one can apply it to NumPy and to Vars."""

    def __class_getitem__(cls, key: Any) -> Any:
        return key


CASES = [
    Index[:, 1:4],
    Index[:, -2:],
    Index[:, :, -1],
    Index[..., 0],
    Index[..., -1],
    Index[..., 1:3],
    Index[:, 1],
    Index[:, ::2],
    Index[:, ::-1],
    Index[:, 4:0:-2],
    Index[:, -1:-7:-1, 1:-1:3],
    Index[:, :, [4, 0, 2]],
    Index[:, [-1, 0]],
    Index[:, 2:5, [1, 1]],
    Index[0],
    Index[-1, 2],
    Index[:, 0:100],
    Index[..., ::-3],
    Index[0, ..., 3],
]


def flat(var: Any) -> Any:
    """``var`` as ``[1, n]``, the shape of an output port (the harness's batch is 1)."""
    return op.reshape(var, op.const(np.array([1, -1], np.int64)))


@pytest.mark.parametrize("key", CASES, ids=repr)
def test_indexing_gives_numpys_result_in_both_engines(key: Any) -> None:
    x = X[:1]
    expected = x[key].reshape(1, -1)
    reference, onnxruntime, model = evaluate(
        lambda v: flat(v[key]), {"x": x}, {"out": ((expected.shape[1],), "float32")}
    )
    np.testing.assert_array_equal(reference["out"], expected)
    np.testing.assert_array_equal(onnxruntime["out"], expected)
    assert op_types(model) <= {"Constant", "Identity", "Slice", "Gather", "Squeeze", "Reshape"}


@pytest.mark.parametrize("key", [Index[:, 1:4, -1], Index[..., -2], Index[:, [5, 0]]], ids=repr)
def test_indexing_keeps_the_batch_axis_first(key: Any) -> None:
    expected = X[key]
    reference, onnxruntime, _ = evaluate(
        lambda v: v[key], {"x": X}, {"out": (expected.shape[1:], "float32")}
    )
    np.testing.assert_array_equal(reference["out"], expected)
    np.testing.assert_array_equal(onnxruntime["out"], expected)


def test_the_nodes_are_slice_gather_and_squeeze() -> None:
    _, _, model = evaluate(lambda v: v[:, 1:5:2, 3], {"x": X}, {"out": ((2,), "float32")})
    ops = [n.op_type for n in model.graph.node if n.op_type not in ("Constant", "Identity")]
    assert ops == ["Slice", "Squeeze"]
    _, _, model = evaluate(lambda v: v[:, [0, 3]], {"x": X}, {"out": ((2, 5), "float32")})
    assert [n.op_type for n in model.graph.node if n.op_type == "Gather"] == ["Gather"]
    _, _, model = evaluate(lambda v: v[:, :, :], {"x": X}, {"out": ((6, 5), "float32")})
    assert op_types(model) == {"Identity"}  # a full slice adds nothing


# -- in a program: observation terms, parity ---------------------------------------------------


def program() -> Program:
    p = Program("sliced", decimation=2, sim_dt=0.01)
    state = p.input("state", 7)
    last = p.memory("last", 3)
    out = p.output("out", 3)

    @p.observations
    def observations(v: Any) -> Any:
        return [
            term("head", v[state][:, 0:3], scale=2.0),
            term("tail", v[state][:, -2:]),
            term("odd", v[state][:, 1::2]),
            term("last_one", v[state][..., -1:]),
            term("reversed", v[last][:, ::-1]),
        ]

    @p.process_actions(n_actions=3)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {out: v[last][:, [2, 0, 1]] + v[state][:, 4:5]}

    return p


def test_sliced_terms_have_their_sizes_and_parity_holds(tmp_path: Any) -> None:
    traced = trace(program())
    assert [(t.name, t.start, t.size) for t in traced.obs_terms] == [
        ("head", 0, 3), ("tail", 3, 2), ("odd", 5, 3), ("last_one", 8, 1), ("reversed", 9, 3),
    ]  # fmt: skip
    actor = mlp_actor(traced.n_obs, 3).model
    path = tmp_path / "sliced.onnx"
    compile_program(traced, actor, output=path)
    report = check_parity(path, traced, actor, steps=120)
    assert report.ok, report.render()


# -- mistakes, reported at the user's line -----------------------------------------------------


def failing(key: Any) -> Program:
    p = Program("bad", decimation=1, sim_dt=0.01)
    state = p.input("state", 4)
    m = p.memory("m", 1)
    out = p.output("out", 1)

    @p.observations
    def observations(v: Any) -> Any:
        return [("s", v[state][key])]

    @p.process_actions(n_actions=1)
    def process_actions(v: Any, actions: Any) -> Any:
        return {m: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {out: v[m]}

    return p


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (Index[:, 4], r"indexing \[:, 4\]: index 4 is out of range for axis 1 of size 4 \(shape "
         r"\[1, 4\]\)\. Fix: an index in \[-4, 3\]"),
        (Index[:, -5], r"index -5 is out of range for axis 1 of size 4"),
        (Index[:, 3:1], r"slice 3:1 selects nothing on axis 1 of size 4"),
        (Index[:, 5:], r"slice 5: selects nothing"),
        (Index[:, ::0], r"a slice step cannot be zero"),
        (Index[:, :, 0], r"too many indices for a value of shape \[1, 4\] \(3 given, 2 axes\)"),
        (Index[..., 0, ...], r"a single ellipsis"),
        (Index[:, 1.5], r"cannot index with float 1\.5"),
        (Index[:, None], r"None \(np\.newaxis\) is not supported"),
        (Index[:, [0, 9]], r"index 9 is out of range for axis 1 of size 4"),
        (Index[:, []], r"a list index must be a non-empty 1-D list of ints"),
        (Index[0, [0, 1]], r"a list index together with an integer index is not supported"),
        (Index[:, 0.5:2], r"slice bounds must be Python ints"),
    ],
)  # fmt: skip
def test_a_wrong_index_is_a_stage_error_at_the_users_line(key: Any, message: str) -> None:
    with pytest.raises(
        StageError,
        match=r"^observations stage 'observations' at .*test_indexing\.py:\d+(:23)? "
        r"\(`return \[\(\"s\", v\[state\]\[key\]\)\]`\): ",
    ):
        trace(failing(key))
    with pytest.raises(StageError, match=message):
        trace(failing(key))


def test_a_var_index_points_at_op_gather() -> None:
    program = stage_program(
        lambda x, i: x[:, i],
        {"x": ((4,), "float32"), "i": ((1,), "int32")},
        {"out": ((1,), "float32")},
    )
    with pytest.raises(StageError, match=r"indexing with a Var is not supported .* op\.gather"):
        stage_model(program)


def test_indexing_is_only_on_while_a_stage_traces() -> None:
    x = op.const(np.zeros((1, 4), np.float32))
    with pytest.raises(TypeError, match="not subscriptable"):
        x[:, 0]
