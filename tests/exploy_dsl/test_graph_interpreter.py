"""GraphInterpreter against onnxruntime on real single-node and small multi-node ONNX models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from exploy_dsl import ExployDslError
from exploy_dsl.reference._graph_interpreter import GraphInterpreter, GraphInterpreterError
from exploy_dsl.reference._numpy_ops import OPS

RTOL = 1e-6
ATOL = 1e-6
IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 13; opsets 6-22 all fit in IR 10


def words(text: str) -> list[str]:
    return text.split()


REQUIRED_OPS = words(
    "Add Sub Mul Div Neg Abs Sqrt Exp Log Pow Sin Cos Tanh Sigmoid Relu Elu Clip Min Max Concat "
    "Slice Gather Reshape Squeeze Unsqueeze Transpose Expand Where Equal Less Greater Not And Or "
    "Cast Constant Identity MatMul Gemm ReduceSum ReduceMean Softmax"
)
EXTRA_OPS = words(
    "Mod Floor Ceil Round Sign Reciprocal Shape Size LessOrEqual GreaterOrEqual Xor Flatten Tile "
    "ConstantOfShape Range LeakyRelu Selu Softplus ReduceMax ReduceMin ReduceProd ArgMax ArgMin "
    "Atan Asin Acos Tan Sinh Cosh Erf HardSigmoid Einsum Split CumSum"
)

_rng = np.random.default_rng(20240601)


def f32(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray[Any, Any]:
    return _rng.uniform(low, high, shape).astype(np.float32)


def i64(*values: int) -> np.ndarray[Any, Any]:
    return np.array(values, dtype=np.int64)


def scalar(value: Any, dtype: Any) -> np.ndarray[Any, Any]:
    return np.array(value, dtype=dtype)


def boolean(*shape: int) -> np.ndarray[Any, Any]:
    return _rng.uniform(size=shape) > 0.5


@dataclass(frozen=True)
class Case:
    id: str
    op: str
    # (name, value); value None means an omitted optional input (empty name in the node).
    inputs: tuple[tuple[str, np.ndarray[Any, Any] | None], ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    opset: int = 20
    n_outputs: int = 1
    consts: frozenset[str] = frozenset()  # inputs stored as initializers instead of graph inputs


def case(
    op: str,
    *inputs: tuple[str, np.ndarray[Any, Any] | None],
    id: str = "",
    opset: int = 20,
    n_outputs: int = 1,
    consts: Sequence[str] = (),
    **attrs: Any,
) -> Case:
    return Case(
        id=f"{op}-{id}" if id else op,
        op=op,
        inputs=tuple(inputs),
        attrs=attrs,
        opset=opset,
        n_outputs=n_outputs,
        consts=frozenset(consts),
    )


def value_info(name: str, value: np.ndarray[Any, Any]) -> onnx.ValueInfoProto:
    elem = helper.np_dtype_to_tensor_dtype(value.dtype)
    return helper.make_tensor_value_info(name, elem, value.shape)


def make_single_node_model(c: Case) -> tuple[onnx.ModelProto, dict[str, np.ndarray[Any, Any]]]:
    node_inputs = [name if value is not None else "" for name, value in c.inputs]
    outputs = ["out"] if c.n_outputs == 1 else [f"out{i}" for i in range(c.n_outputs)]
    feeds = {n: v for n, v in c.inputs if v is not None and n not in c.consts}
    inits = [numpy_helper.from_array(v, n) for n, v in c.inputs if v is not None and n in c.consts]
    graph = helper.make_graph(
        [helper.make_node(c.op, node_inputs, outputs, **c.attrs)],
        c.id,
        [value_info(n, v) for n, v in feeds.items()],
        [helper.make_value_info(o, onnx.TypeProto()) for o in outputs],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", c.opset)], ir_version=IR_VERSION
    )
    return checked(model), feeds


def checked(model: onnx.ModelProto) -> onnx.ModelProto:
    """Validate the model and fill in the graph output types by strict shape inference.

    (``onnx.checker.check_model`` is not used: it insists on output shapes, which are unknown
    for ops like Reshape fed at run time; onnxruntime validates the graph again when loading.)
    """
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def run_ort(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> dict[str, Any]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, dict(feeds)), strict=True))


def assert_same(ours: Any, theirs: Any, name: str = "") -> None:
    assert isinstance(ours, np.ndarray), f"{name}: got {type(ours).__name__}, not an ndarray"
    assert ours.dtype == theirs.dtype, f"{name}: dtype {ours.dtype} != onnxruntime {theirs.dtype}"
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} != onnxruntime {theirs.shape}"
    if ours.dtype.kind in "fc":
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, strict=True, err_msg=name)
    else:
        np.testing.assert_array_equal(ours, theirs, strict=True, err_msg=name)


def assert_matches_ort(
    model: onnx.ModelProto, feeds: Mapping[str, Any], interpreter: GraphInterpreter | None = None
) -> dict[str, Any]:
    interpreter = interpreter or GraphInterpreter(model)
    ours = interpreter.run(feeds)
    theirs = run_ort(model, feeds)
    assert set(ours) == set(theirs)
    for name, expected in theirs.items():
        assert_same(ours[name], expected, name)
    return ours


X23 = f32(2, 3)
X234 = f32(2, 3, 4)
POS = f32(2, 3, low=0.1, high=3.0)
UNIT = f32(2, 3, low=-0.95, high=0.95)
INT_A = np.array([-7, 7, -7, 7, 0, 5, -1, 9], dtype=np.int64)
INT_B = np.array([2, 2, -2, -2, 3, -5, 4, -4], dtype=np.int64)
BIG = np.iinfo(np.int64).max

CASES: list[Case] = [
    # elementwise arithmetic
    case("Add", ("a", X23), ("b", f32(3)), id="broadcast"),
    case("Add", ("a", INT_A), ("b", INT_B), id="int64"),
    case("Sub", ("a", X23), ("b", f32(2, 1)), id="broadcast"),
    case("Mul", ("a", X23), ("b", f32(1, 3))),
    case("Div", ("a", X23), ("b", f32(2, 3, low=0.5, high=2.0))),
    case("Div", ("a", INT_A), ("b", INT_B), id="int64-truncates"),
    case("Div", ("a", INT_A.astype(np.int32)), ("b", INT_B.astype(np.int32)), id="int32"),
    case("Neg", ("x", X23)),
    case("Abs", ("x", X23)),
    case("Abs", ("x", INT_A), id="int64"),
    case("Sqrt", ("x", POS)),
    case("Exp", ("x", X23)),
    case("Log", ("x", POS)),
    case("Pow", ("x", POS), ("y", f32(2, 3)), id="float"),
    case("Pow", ("x", X23), ("y", i64(2, 3, 0)), id="float-base-int-exponent"),
    case("Pow", ("x", X23), ("y", scalar(2.0, np.float32)), id="square"),
    case("Pow", ("x", i64(2, -3, 4)), ("y", i64(3, 3, 0)), id="int64"),
    case("Mod", ("a", INT_A), ("b", INT_B), id="int-python-sign"),
    case("Mod", ("a", INT_A), ("b", INT_B), id="int-fmod", fmod=1),
    case("Mod", ("a", X23 * 3), ("b", f32(2, 3, low=0.5, high=1.5)), id="float-fmod", fmod=1),
    case("Floor", ("x", X23)),
    case("Ceil", ("x", X23)),
    case("Round", ("x", np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4, 2.6], np.float32))),
    case("Sign", ("x", np.array([-2.0, 0.0, 3.0, -0.0], np.float32))),
    case("Sign", ("x", INT_A), id="int64"),
    case("Reciprocal", ("x", POS)),
    case("Sum", ("a", X23), ("b", f32(3)), ("c", f32(2, 1))),
    case("Mean", ("a", X23), ("b", f32(3)), ("c", f32(2, 1))),
    case("Min", ("a", X23), ("b", f32(3)), ("c", f32(2, 1)), id="variadic"),
    case("Min", ("a", X23), id="single"),
    case("Max", ("a", X23), ("b", f32(3)), ("c", f32(2, 1)), id="variadic"),
    case("Max", ("a", INT_A), ("b", INT_B), id="int64"),
    # trigonometric and friends
    case("Sin", ("x", X23)),
    case("Cos", ("x", X23)),
    case("Tan", ("x", UNIT)),
    case("Asin", ("x", UNIT)),
    case("Acos", ("x", UNIT)),
    case("Atan", ("x", X23)),
    case("Sinh", ("x", X23)),
    case("Cosh", ("x", X23)),
    case("Tanh", ("x", X23 * 3)),
    case("Asinh", ("x", X23)),
    case("Acosh", ("x", POS + 1)),
    case("Atanh", ("x", UNIT)),
    case("Erf", ("x", np.linspace(-4, 4, 41, dtype=np.float32))),
    # activations
    case("Sigmoid", ("x", np.linspace(-20, 20, 41, dtype=np.float32))),
    case("Relu", ("x", X23)),
    case("Elu", ("x", X23), id="default"),
    case("Elu", ("x", X23), id="alpha", alpha=0.5),
    case("Selu", ("x", X23)),
    case("Selu", ("x", X23), id="attrs", alpha=1.5, gamma=2.0),
    case("LeakyRelu", ("x", X23)),
    case("LeakyRelu", ("x", X23), id="alpha", alpha=0.3),
    case("HardSigmoid", ("x", X23 * 4)),
    case("HardSigmoid", ("x", X23 * 4), id="attrs", alpha=0.3, beta=0.4),
    case("Softplus", ("x", np.linspace(-30, 30, 61, dtype=np.float32))),
    case("Softsign", ("x", X23)),
    case("Clip", ("x", X23), ("min", scalar(-0.5, np.float32)), id="only-min"),
    case("Clip", ("x", X23), ("min", None), ("max", scalar(0.5, np.float32)), id="only-max"),
    case(
        "Clip",
        ("x", X23),
        ("min", scalar(-0.5, np.float32)),
        ("max", scalar(0.5, np.float32)),
        id="both",
    ),
    case("Clip", ("x", X23), id="no-bounds"),
    case(
        "Clip", ("x", INT_A), ("min", scalar(-3, np.int64)), ("max", scalar(4, np.int64)), id="int"
    ),
    case("Clip", ("x", X23), id="opset6-attrs", opset=6, min=-0.25, max=0.75),
    # Clip-6's bounds default to the float range: infinities become +-FLT_MAX.
    case(
        "Clip", ("x", np.array([[np.inf, -np.inf, 1.0]], np.float32)), id="opset6-no-attrs", opset=6
    ),
    case(
        "Clip",
        ("x", np.array([[np.inf, -np.inf, 1.0]], np.float32)),
        id="opset6-only-min",
        opset=6,
        min=0.0,
    ),
    case("Softmax", ("x", X234), id="default-axis"),
    case("Softmax", ("x", X234), id="axis0", axis=0),
    case("Softmax", ("x", X234), id="axis1", axis=1),
    case("Softmax", ("x", X234 * 10), id="opset11-coerced-2d", opset=11, axis=1),
    case("Softmax", ("x", X234), id="opset11-default", opset=11),
    case("LogSoftmax", ("x", X234), axis=-1),
    # comparison and logic
    case("Equal", ("a", INT_A), ("b", np.abs(INT_A))),
    case("Equal", ("a", X23), ("b", np.where(X23 > 0, X23, 0)), id="float"),
    case("Less", ("a", X23), ("b", f32(3))),
    case("LessOrEqual", ("a", INT_A), ("b", INT_B)),
    case("Greater", ("a", X23), ("b", f32(3))),
    case("GreaterOrEqual", ("a", INT_A), ("b", INT_B)),
    case("Not", ("x", boolean(2, 3))),
    case("And", ("a", boolean(2, 3)), ("b", boolean(3))),
    case("Or", ("a", boolean(2, 3)), ("b", boolean(3))),
    case("Xor", ("a", boolean(2, 3)), ("b", boolean(3))),
    case("Where", ("c", boolean(2, 3)), ("x", X23), ("y", f32(3))),
    case("IsNaN", ("x", np.array([1.0, np.nan, np.inf], np.float32))),
    case("IsInf", ("x", np.array([1.0, np.nan, np.inf, -np.inf], np.float32))),
    case(
        "IsInf",
        ("x", np.array([1.0, np.nan, np.inf, -np.inf], np.float32)),
        id="negative-only",
        detect_positive=0,
    ),
    # casts, constants, identity
    case("Cast", ("x", np.array([-2.7, -0.5, 0.5, 2.7], np.float32)), id="to-int32", to=6),
    case("Cast", ("x", INT_A), id="int64-to-float", to=TensorProto.FLOAT),
    case("Cast", ("x", np.array([0.0, -0.5, 2.0], np.float32)), id="to-bool", to=9),
    case("Cast", ("x", boolean(4)), id="bool-to-float", to=TensorProto.FLOAT),
    case("Cast", ("x", X23), id="to-double", to=TensorProto.DOUBLE),
    case("Cast", ("x", X23), id="to-float16", to=TensorProto.FLOAT16),
    case("CastLike", ("x", INT_A), ("like", scalar(0, np.float32))),
    case("Constant", id="tensor", value=numpy_helper.from_array(X23, "value")),
    case("Constant", id="value-floats", value_floats=[1.5, -2.0]),
    case("Constant", id="value-int", value_int=7),
    case("Constant", id="value-ints", value_ints=[1, 2, 3]),
    case("Identity", ("x", X23)),
    case("Identity", ("x", X23), id="of-initializer", consts=["x"]),
    case("ConstantOfShape", ("shape", i64(2, 3)), id="default-value"),
    case(
        "ConstantOfShape",
        ("shape", i64(3, 1)),
        id="int-value",
        value=helper.make_tensor("value", TensorProto.INT64, [1], [7]),
    ),
    case(
        "Range",
        ("start", scalar(1.0, np.float32)),
        ("limit", scalar(4.2, np.float32)),
        ("delta", scalar(0.5, np.float32)),
        id="float",
    ),
    case(
        "Range",
        ("start", scalar(10, np.int64)),
        ("limit", scalar(-3, np.int64)),
        ("delta", scalar(-4, np.int64)),
        id="int-negative-delta",
    ),
    case(
        "Range",
        ("start", scalar(5, np.int32)),
        ("limit", scalar(2, np.int32)),
        ("delta", scalar(1, np.int32)),
        id="empty",
    ),
    # linear algebra
    case("MatMul", ("a", X23), ("b", f32(3, 4)), id="2d"),
    case("MatMul", ("a", X234), ("b", f32(4, 5)), id="batched"),
    case("MatMul", ("a", f32(3)), ("b", f32(2, 3, 4)), id="1d-lhs"),
    case("Gemm", ("a", X23), ("b", f32(4, 3)), ("c", f32(4)), id="transB", transB=1),
    case(
        "Gemm",
        ("a", f32(3, 2)),
        ("b", f32(3, 4)),
        ("c", f32(2, 1)),
        id="transA-alpha-beta",
        transA=1,
        alpha=0.5,
        beta=-2.0,
    ),
    case("Gemm", ("a", X23), ("b", f32(3, 4)), id="no-c"),
    case("Einsum", ("a", X23), ("b", f32(3, 4)), id="matmul", equation="ij,jk->ik"),
    case("Einsum", ("a", X234), ("b", f32(2, 4, 5)), id="batched", equation="bij,bjk->bik"),
    case("Einsum", ("a", X234), id="transpose", equation="ijk->kji"),
    case("Einsum", ("a", f32(5)), ("b", f32(5)), id="implicit-dot", equation="i,i"),
    case("Einsum", ("a", X23), ("b", f32(3, 4)), id="implicit", equation="ij,jk"),
    # reductions
    case("ReduceSum", ("x", X234), ("axes", i64(1)), id="axes-input"),
    case("ReduceSum", ("x", X234), ("axes", i64(0, -1)), id="axes-no-keepdims", keepdims=0),
    case("ReduceSum", ("x", X234), id="all"),
    case("ReduceSum", ("x", X234), id="all-no-keepdims", keepdims=0),
    case("ReduceSum", ("x", X234), id="noop-empty-axes", noop_with_empty_axes=1),
    case("ReduceSum", ("x", X234), ("axes", i64()), id="empty-axes-input"),
    case("ReduceSum", ("x", X234), ("axes", i64(2)), id="const-axes", consts=["axes"]),
    case("ReduceSum", ("x", INT_A.reshape(2, 4).astype(np.int32)), ("axes", i64(1)), id="int32"),
    case("ReduceSum", ("x", X234), id="opset11-axes-attr", opset=11, axes=[1, 2], keepdims=0),
    case("ReduceMean", ("x", X234), ("axes", i64(-1)), id="axes-input"),
    case("ReduceMean", ("x", X234), ("axes", i64(0, 2)), id="no-keepdims", keepdims=0),
    case("ReduceMean", ("x", X234), id="all"),
    case("ReduceMean", ("x", INT_A.reshape(2, 4).astype(np.int32)), ("axes", i64(1)), id="int32"),
    case("ReduceMean", ("x", X234), id="opset13-axes-attr", opset=13, axes=[1]),
    case("ReduceMean", ("x", X234), id="opset13-all", opset=13, keepdims=0),
    case("ReduceMax", ("x", X234), ("axes", i64(1)), id="axes-input"),
    case("ReduceMax", ("x", X234), id="all-no-keepdims", keepdims=0),
    case("ReduceMax", ("x", INT_A.reshape(2, 4)), ("axes", i64(0)), id="int64"),
    case("ReduceMin", ("x", X234), ("axes", i64(-1)), id="axes-input", keepdims=0),
    case("ReduceMin", ("x", X234), id="opset13-axes-attr", opset=13, axes=[0]),
    case("ReduceProd", ("x", X234), ("axes", i64(2)), id="axes-input"),
    case("ReduceProd", ("x", INT_A.reshape(2, 4)), id="int64-all", keepdims=0),
    case("ReduceL1", ("x", X234), ("axes", i64(1))),
    # noop_with_empty_axes skips the reduction but keeps the elementwise part (Abs, Square, ...)
    case("ReduceL1", ("x", X234), id="noop-is-abs", noop_with_empty_axes=1),
    case("ReduceSumSquare", ("x", X234), id="noop-is-square", noop_with_empty_axes=1),
    case("ReduceL2", ("x", X234), ("axes", i64(1))),
    case("ReduceSumSquare", ("x", X234), ("axes", i64(1))),
    case("ReduceLogSum", ("x", POS), ("axes", i64(1))),
    case("ReduceLogSumExp", ("x", X234 * 30), ("axes", i64(1))),
    case("ArgMax", ("x", X234), id="axis1", axis=1),
    case("ArgMax", ("x", X234), id="no-keepdims", axis=-1, keepdims=0),
    case(
        "ArgMax",
        ("x", np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32)),
        id="select-last",
        axis=1,
        select_last_index=1,
    ),
    case("ArgMin", ("x", X234), id="default"),
    case(
        "ArgMin",
        ("x", np.array([[1, 0, 0, 3], [2, 2, 5, 2]], np.int64)),
        id="select-last",
        axis=1,
        keepdims=0,
        select_last_index=1,
    ),
    case("CumSum", ("x", X234), ("axis", scalar(1, np.int64)), id="plain"),
    case("CumSum", ("x", X234), ("axis", scalar(-1, np.int32)), id="exclusive", exclusive=1),
    case("CumSum", ("x", X234), ("axis", scalar(0, np.int64)), id="reverse", reverse=1),
    case(
        "CumSum",
        ("x", INT_A.reshape(2, 4)),
        ("axis", scalar(1, np.int64)),
        id="int-exclusive-reverse",
        exclusive=1,
        reverse=1,
    ),
    # shape and data movement
    case("Concat", ("a", X23), ("b", f32(2, 1)), ("c", f32(2, 4)), axis=1),
    case("Concat", ("a", X23), ("b", f32(1, 3)), id="negative-axis", axis=-2),
    case(
        "Slice",
        ("x", X234),
        ("starts", i64(0, 1)),
        ("ends", i64(2, 3)),
        ("axes", i64(0, 2)),
        id="axes",
    ),
    case("Slice", ("x", X234), ("starts", i64(1)), ("ends", i64(2)), id="no-axes"),
    case(
        "Slice",
        ("x", X234),
        ("starts", i64(-1, 2)),
        ("ends", i64(-BIG, 0)),
        ("axes", i64(2, 1)),
        ("steps", i64(-1, -2)),
        id="negative-steps-huge-ends",
    ),
    case(
        "Slice",
        ("x", X234),
        ("starts", i64(BIG, -100)),
        ("ends", i64(-BIG, BIG)),
        ("axes", i64(-1, -2)),
        ("steps", i64(-3, 2)),
        id="clamped-starts",
    ),
    case(
        "Slice",
        ("x", X234),
        ("starts", i64(3)),
        ("ends", i64(1)),
        ("axes", i64(2)),
        id="empty",
    ),
    case(
        "Slice",
        ("x", X234),
        ("starts", i64(0, -2)),
        ("ends", i64(BIG, BIG)),
        ("axes", i64(0, 2)),
        ("steps", i64(1, 1)),
        id="const-params",
        consts=["starts", "ends", "axes", "steps"],
    ),
    case("Slice", ("x", X234), id="opset9-attrs", opset=9, starts=[1], ends=[BIG], axes=[2]),
    case("Gather", ("x", X234), ("idx", i64(2, -1, 0)), id="axis1", axis=1),
    case("Gather", ("x", X234), ("idx", scalar(-1, np.int64)), id="scalar-index"),
    case("Gather", ("x", X234), ("idx", np.array([[0, 3], [1, 1]], np.int32)), id="2d", axis=2),
    case("Reshape", ("x", X234), ("shape", i64(0, -1)), id="zero-copies-dim"),
    case("Reshape", ("x", X234), ("shape", i64(4, 3, 2)), id="const", consts=["shape"]),
    case(
        "Reshape",
        ("x", np.zeros((0, 3), np.float32)),
        ("shape", i64(3, 0)),
        id="allowzero",
        allowzero=1,
    ),
    case("Reshape", ("x", X234), ("shape", i64(-1)), id="flat"),
    case("Squeeze", ("x", f32(1, 3, 1, 2)), ("axes", i64(0, -2)), id="axes"),
    case("Squeeze", ("x", f32(1, 3, 1, 2)), id="all"),
    case("Squeeze", ("x", f32(1, 3, 1, 2)), id="opset11-attr", opset=11, axes=[2]),
    case("Unsqueeze", ("x", X23), ("axes", i64(0, -1)), id="negative"),
    case("Unsqueeze", ("x", X23), ("axes", i64(1)), id="middle"),
    case("Unsqueeze", ("x", scalar(2.0, np.float32)), ("axes", i64(0)), id="scalar"),
    case("Transpose", ("x", X234), id="default"),
    case("Transpose", ("x", X234), id="perm", perm=[1, 2, 0]),
    case("Expand", ("x", f32(3, 1)), ("shape", i64(2, 1, 4)), id="bidirectional"),
    case("Expand", ("x", X23), ("shape", i64(1, 1)), id="smaller-shape"),
    case("Flatten", ("x", X234), id="default"),
    case("Flatten", ("x", X234), id="axis0", axis=0),
    case("Flatten", ("x", X234), id="negative", axis=-1),
    case("Tile", ("x", X23), ("repeats", i64(2, 3))),
    case("Split", ("x", f32(7, 2)), ("split", i64(2, 4, 1)), id="split-input", n_outputs=3),
    case("Split", ("x", f32(2, 7)), id="num-outputs-uneven", axis=1, num_outputs=3, n_outputs=3),
    case("Split", ("x", f32(6, 2)), id="opset13-equal", opset=13, n_outputs=3),
    case(
        "Split", ("x", f32(2, 5)), id="opset11-attr", opset=11, axis=-1, split=[3, 2], n_outputs=2
    ),
    case("Shape", ("x", X234), id="full"),
    case("Shape", ("x", X234), id="start-end", start=1, end=-1),
    case("Shape", ("x", X234), id="negative-start", start=-2),
    case("Size", ("x", X234)),
    case("NonZero", ("x", np.array([[1, 0, 2], [0, 0, 3]], np.int64))),
]


def test_every_listed_op_is_in_the_table_and_tested() -> None:
    tested = {c.op for c in CASES}
    for op in (*REQUIRED_OPS, *EXTRA_OPS):
        assert op in OPS, op
        assert op in tested, op


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_single_node_matches_onnxruntime(c: Case) -> None:
    model, feeds = make_single_node_model(c)
    for fold in (True, False):
        interpreter = GraphInterpreter(model, fold_constants=fold)
        assert interpreter.fallback_ops == ()
        assert_matches_ort(model, feeds, interpreter)


FLOAT_OPS: list[tuple[str, dict[str, Any]]] = [
    ("Neg", {}),
    ("Abs", {}),
    ("Exp", {}),
    ("Sin", {}),
    ("Cos", {}),
    ("Tan", {}),
    ("Atan", {}),
    ("Sinh", {}),
    ("Cosh", {}),
    ("Tanh", {}),
    ("Erf", {}),
    ("Sigmoid", {}),
    ("Relu", {}),
    ("Elu", {"alpha": 0.7}),
    ("Selu", {}),
    ("LeakyRelu", {"alpha": 0.1}),
    ("HardSigmoid", {}),
    ("Softplus", {}),
    ("Softsign", {}),
    ("Floor", {}),
    ("Ceil", {}),
    ("Round", {}),
    ("Sign", {}),
    ("Reciprocal", {}),
    ("Softmax", {}),
    ("LogSoftmax", {"axis": 0}),
    ("ReduceMean", {"keepdims": 0}),
    ("ReduceSum", {}),
    ("ReduceL2", {}),
    ("ReduceLogSumExp", {}),
    ("Identity", {}),
    ("Clip", {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op, attrs", FLOAT_OPS, ids=[op for op, _ in FLOAT_OPS])
def test_float_dtype_is_preserved(op: str, attrs: dict[str, Any], dtype: Any) -> None:
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4) + dtype(0.05)
    model, feeds = make_single_node_model(case(op, ("x", x), **attrs))
    out = GraphInterpreter(model).run(feeds)["out"]
    assert out.dtype == dtype
    if dtype is np.float32:
        assert_matches_ort(model, feeds)


@pytest.mark.parametrize(
    "op, inputs",
    [
        ("Pow", {"x": f32(3, low=0.5), "y": scalar(2.5, np.float64)}),
        ("Pow", {"x": f32(3, low=0.5), "y": i64(1, 2, 3)}),
        ("Add", {"x": f32(3), "y": scalar(1.5, np.float32)}),
        ("Gemm", {"x": f32(2, 3), "y": f32(3, 2)}),
        (
            "Range",
            {
                "x": scalar(0.0, np.float32),
                "y": scalar(1.0, np.float32),
                "z": scalar(0.25, np.float32),
            },
        ),
    ],
    ids=["pow-double-exponent", "pow-int-exponent", "add-scalar", "gemm", "range"],
)
def test_float32_results_stay_float32(op: str, inputs: dict[str, Any]) -> None:
    model, feeds = make_single_node_model(case(op, *inputs.items()))
    out = GraphInterpreter(model).run(feeds)["out"]
    assert out.dtype == np.float32
    if op != "Pow" or inputs["y"].dtype != np.float64:
        assert_matches_ort(model, feeds)


# --- property tests against onnxruntime ---------------------------------------------------------

_BOUNDS = st.one_of(st.integers(-7, 7), st.sampled_from([BIG, -BIG, int(np.iinfo(np.int64).min)]))


@st.composite
def slice_specs(
    draw: st.DrawFn,
) -> tuple[tuple[int, ...], list[int], list[int], list[int], list[int]]:
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=rank, max_size=rank)))
    axes = draw(
        st.lists(
            st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda a: a % rank
        )
    )
    starts = [draw(_BOUNDS) for _ in axes]
    ends = [draw(_BOUNDS) for _ in axes]
    steps = [draw(st.sampled_from([-3, -2, -1, 1, 2, 3])) for _ in axes]
    return shape, starts, ends, axes, steps


@settings(max_examples=150, deadline=None)
@given(spec=slice_specs())
def test_slice_matches_onnxruntime(
    spec: tuple[tuple[int, ...], list[int], list[int], list[int], list[int]],
) -> None:
    shape, starts, ends, axes, steps = spec
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    c = case(
        "Slice",
        ("x", x),
        ("starts", i64(*starts)),
        ("ends", i64(*ends)),
        ("axes", i64(*axes)),
        ("steps", i64(*steps)),
    )
    model, feeds = make_single_node_model(c)
    assert_matches_ort(model, feeds)


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from([("Div", {}), ("Mod", {}), ("Mod", {"fmod": 1})]),
    dtype=st.sampled_from([np.int32, np.int64]),
    pairs=st.lists(
        st.tuples(st.integers(-1000, 1000), st.integers(-50, 50).filter(bool)),
        min_size=1,
        max_size=12,
    ),
)
def test_integer_division_matches_onnxruntime(
    op: tuple[str, dict[str, Any]], dtype: Any, pairs: list[tuple[int, int]]
) -> None:
    a = np.array([p[0] for p in pairs], dtype=dtype)
    b = np.array([p[1] for p in pairs], dtype=dtype)
    model, feeds = make_single_node_model(case(op[0], ("a", a), ("b", b), **op[1]))
    assert_matches_ort(model, feeds)


_REDUCE_OPS = [
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSumExp",
]


@settings(max_examples=150, deadline=None)
@given(
    op=st.sampled_from(_REDUCE_OPS),
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    data=st.data(),
    keepdims=st.sampled_from([0, 1]),
    noop=st.sampled_from([0, 1]),
    dtype=st.sampled_from([np.float32, np.int64]),
)
def test_reductions_match_onnxruntime(
    op: str, shape: list[int], data: st.DataObject, keepdims: int, noop: int, dtype: Any
) -> None:
    if dtype is np.int64 and op in ("ReduceL2", "ReduceLogSumExp"):
        dtype = np.float32
    rank = len(shape)
    axes: list[int] = data.draw(
        st.lists(st.integers(-rank, rank - 1), max_size=rank, unique_by=lambda a: a % rank)
    )
    explicit_empty_axes: bool = data.draw(st.booleans())
    x = np.random.default_rng(rank).uniform(-3, 3, shape).astype(dtype)
    inputs: list[tuple[str, np.ndarray[Any, Any] | None]] = [("x", x)]
    if axes or explicit_empty_axes:
        inputs.append(("axes", i64(*axes)))
    c = case(op, *inputs, keepdims=keepdims, noop_with_empty_axes=noop)
    model, feeds = make_single_node_model(c)
    assert_matches_ort(model, feeds)


# --- multi-node graphs ------------------------------------------------------------------------


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, np.ndarray[Any, Any]],
    outputs: Sequence[str],
    initializers: Mapping[str, np.ndarray[Any, Any]] | None = None,
    functions: Sequence[onnx.FunctionProto] = (),
    opset: int = 20,
    extra_opsets: Sequence[onnx.OperatorSetIdProto] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "g",
        [value_info(n, v) for n, v in inputs.items()],
        [helper.make_value_info(o, onnx.TypeProto()) for o in outputs],
        initializer=[numpy_helper.from_array(v, n) for n, v in (initializers or {}).items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), *extra_opsets],
        functions=list(functions),
        ir_version=IR_VERSION,
    )
    return checked(model)


def test_mlp_with_shape_arithmetic_matches_onnxruntime() -> None:
    n = helper.make_node
    nodes = [
        n("Shape", ["obs"], ["obs_shape"]),
        n("Gather", ["obs_shape", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch", "axes0"], ["batch_1d"]),
        n("Concat", ["batch_1d", "minus_one"], ["flat_shape"], axis=0),
        n("Reshape", ["obs", "flat_shape"], ["flat"]),
        n("Sub", ["flat", "mean"], ["centred"]),
        n("Div", ["centred", "std"], ["normed"]),
        n("Clip", ["normed", "lo", "hi"], ["clipped"]),
        n("Gemm", ["clipped", "w1", "b1"], ["h1"], transB=1),
        n("Elu", ["h1"], ["a1"]),
        n("MatMul", ["a1", "w2"], ["h2"]),
        n("Add", ["h2", "b2"], ["h2b"]),
        n("Tanh", ["h2b"], ["action"]),
        n("Softmax", ["h2b"], ["probs"], axis=-1),
        n("ReduceMean", ["probs", "axes1"], ["mean_prob"], keepdims=0),
        n("Constant", [], ["scale"], value=numpy_helper.from_array(scalar(0.25, np.float32))),
        n("Mul", ["action", "scale"], ["scaled"]),
    ]
    inits = {
        "zero": scalar(0, np.int64),
        "axes0": i64(0),
        "axes1": i64(1),
        "minus_one": i64(-1),
        "mean": f32(6),
        "std": f32(6, low=0.5, high=2.0),
        "lo": scalar(-3.0, np.float32),
        "hi": scalar(3.0, np.float32),
        "w1": f32(8, 6),
        "b1": f32(8),
        "w2": f32(8, 4),
        "b2": f32(4),
    }
    model = make_model(
        nodes, {"obs": f32(5, 2, 3)}, ["scaled", "probs", "mean_prob"], initializers=inits
    )
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == ()
    assert interpreter.input_names == ("obs",)
    assert interpreter.output_names == ("scaled", "probs", "mean_prob")
    for _ in range(3):  # the plan is reused across runs
        assert_matches_ort(model, {"obs": f32(5, 2, 3)}, interpreter)


def test_unsorted_nodes_are_planned_in_dependency_order() -> None:
    n = helper.make_node
    nodes = [n("Relu", ["t"], ["y"]), n("Neg", ["x"], ["t"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [value_info("x", X23)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    out = GraphInterpreter(model).run({"x": X23})["y"]
    np.testing.assert_array_equal(out, np.maximum(-X23, 0))


def test_model_local_function_is_inlined() -> None:
    swish = helper.make_function(
        "local",
        "Swish",
        ["x"],
        ["y"],
        [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
        opset_imports=[helper.make_opsetid("", 20)],
    )
    model = make_model(
        [
            helper.make_node("Swish", ["x"], ["h"], domain="local"),
            helper.make_node("Add", ["h", "x"], ["y"]),
        ],
        {"x": X23},
        ["y"],
        functions=[swish],
        extra_opsets=[helper.make_opsetid("local", 1)],
    )
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == ()
    assert_matches_ort(model, {"x": X23}, interpreter)


# --- fallback through onnx.reference ------------------------------------------------------------


@pytest.mark.parametrize(
    "op, attrs",
    [("HardSwish", {}), ("Celu", {"alpha": 0.5}), ("Trilu", {"upper": 0})],
)
def test_op_outside_the_table_falls_back_to_reference_evaluator(
    op: str, attrs: dict[str, Any]
) -> None:
    assert op not in OPS
    model, feeds = make_single_node_model(case(op, ("x", f32(3, 3, low=-4, high=4)), **attrs))
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == (op,)
    assert_matches_ort(model, feeds, interpreter)


def test_fallback_node_inside_a_numpy_graph() -> None:
    n = helper.make_node
    model = make_model(
        [
            n("Mul", ["x", "x"], ["sq"]),
            n("Celu", ["sq"], ["c"], alpha=2.0),
            n("Sub", ["c", "x"], ["y"]),
        ],
        {"x": X23},
        ["y"],
    )
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == ("Celu",)
    assert_matches_ort(model, {"x": X23}, interpreter)


def _branch(name: str, op: str, inputs: Sequence[str]) -> onnx.GraphProto:
    return helper.make_graph(
        [helper.make_node(op, list(inputs), [f"{name}_out"])],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None)],
    )


@pytest.mark.parametrize("flag", [True, False])
def test_if_subgraph_reads_outer_names(flag: bool) -> None:
    n = helper.make_node
    model = make_model(
        [
            n("Mul", ["x", "two"], ["x2"]),  # computed before the If, read inside both branches
            n(
                "If",
                ["cond"],
                ["picked"],
                then_branch=_branch("then", "Add", ["x2", "offset"]),
                else_branch=_branch("else", "Sub", ["x2", "offset"]),
            ),
            n("Relu", ["picked"], ["y"]),
        ],
        {"cond": np.array(flag), "x": X23},
        ["y"],
        initializers={"two": scalar(2.0, np.float32), "offset": f32(3)},
    )
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == ("If",)
    assert_matches_ort(model, {"cond": np.array(flag), "x": X23}, interpreter)


def test_loop_body_reads_outer_name() -> None:
    n = helper.make_node
    body = helper.make_graph(
        [
            n("Identity", ["cond_in"], ["cond_out"]),
            n("Add", ["acc_in", "step"], ["acc_out"]),  # "step" lives in the outer graph
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None),
        ],
    )
    model = make_model(
        [
            n("Abs", ["x"], ["step"]),
            # The reference Loop never iterates when the optional cond input is omitted, so
            # pass it explicitly.
            n("Loop", ["trips", "keep_going", "x"], ["acc"], body=body),
        ],
        {"x": X23},
        ["acc"],
        initializers={"trips": scalar(4, np.int64), "keep_going": np.array(True)},
    )
    interpreter = GraphInterpreter(model)
    assert interpreter.fallback_ops == ("Loop",)
    assert_matches_ort(model, {"x": X23}, interpreter)


# --- errors and output ownership ----------------------------------------------------------------


def test_missing_feed_names_the_input_and_lists_expected_ones() -> None:
    model = make_model([helper.make_node("Add", ["a", "b"], ["y"])], {"a": X23, "b": X23}, ["y"])
    interpreter = GraphInterpreter(model)
    with pytest.raises(
        GraphInterpreterError, match=r"missing feed\(s\) \['b'\].*expects inputs \['a', 'b'\]"
    ):
        interpreter.run({"a": X23})
    # One of ours, so the CLI prints it as one line instead of a traceback.
    assert issubclass(GraphInterpreterError, ExployDslError)


def test_unknown_feed_is_rejected() -> None:
    model = make_model([helper.make_node("Neg", ["a"], ["y"])], {"a": X23}, ["y"])
    with pytest.raises(GraphInterpreterError, match=r"unknown feed 'c'.*\['a'\]"):
        GraphInterpreter(model).run({"a": X23, "c": X23})


def test_runtime_failure_names_the_node() -> None:
    model = make_model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="bad_reshape")],
        {"x": X23, "shape": i64(4, 4)},
        ["y"],
    )
    with pytest.raises(GraphInterpreterError, match=r"Reshape 'bad_reshape' failed") as info:
        GraphInterpreter(model).run({"x": X23, "shape": i64(4, 4)})
    assert info.value.node == "#0 Reshape 'bad_reshape'"
    assert info.value.reason is not None and info.value.reason.startswith("ValueError: ")


def test_undefined_name_is_reported_at_construction() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "ghost"], ["y"])],
        "g",
        [value_info("x", X23)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    with pytest.raises(GraphInterpreterError, match="'ghost'"):
        GraphInterpreter(model)


def test_sparse_constant_is_densified() -> None:
    # onnxruntime hands back a SparseTensor object here, so compare with the dense expectation.
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.5, -2.0], np.float32), "values"),
        numpy_helper.from_array(i64(1, 4), "indices"),
        [2, 3],
    )
    model, _ = make_single_node_model(case("Constant", sparse_value=sparse))
    out = GraphInterpreter(model).run({})["out"]
    expected = np.array([[0, 1.5, 0], [0, -2.0, 0]], np.float32)
    np.testing.assert_array_equal(out, expected, strict=True)


def test_outputs_do_not_alias_constants() -> None:
    model = make_model(
        [helper.make_node("Identity", ["w"], ["y"])], {}, ["y"], initializers={"w": i64(1, 2)}
    )
    interpreter = GraphInterpreter(model)
    first = interpreter.run({})["y"]
    first[0] = 100
    np.testing.assert_array_equal(interpreter.run({})["y"], i64(1, 2))


def test_overridable_initializer_can_be_fed() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "bias"], ["y"])],
        "g",
        [value_info("x", X23), value_info("bias", f32(3))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones(3, np.float32), "bias")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=IR_VERSION
    )
    interpreter = GraphInterpreter(model)
    assert_matches_ort(model, {"x": X23}, interpreter)
    assert_matches_ort(model, {"x": X23, "bias": f32(3)}, interpreter)
