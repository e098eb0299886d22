"""The interpreter's generated plans against onnx.reference, bit for bit.

GraphInterpreter compiles a graph into one Python function with kernels that have their
constant inputs worked in (Gemm weights, clip bounds, slice bounds); ReferenceInterpreter runs
the stages and the actor through those plans, once per tick under one ``np.errstate``. Here
every example program is stepped over many ticks against the same tick (``run_tick``) whose
graphs are all run by ``onnx.reference.ReferenceEvaluator``: the outputs must be the same bytes.
Single kernels are checked the same way, and against onnxruntime where it has the op.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import prepare_actor, random_stream
from compiler.cli._program_file import load_program_file
from exploy_dsl import ReferenceInterpreter, TracedProgram, trace
from exploy_dsl.authoring._actor import ActorSignature
from exploy_dsl.contract._tick import StageKind, is_policy_step, run_tick
from exploy_dsl.contract._wires import ACTIONS, OBS, STEP_COUNT
from exploy_dsl.reference._graph_interpreter import GraphInterpreter, GraphInterpreterError
from exploy_dsl.reference._interpreter import reference_actor
from tests._support import EXAMPLES, example_files
from tests.exploy_dsl.test_graph_interpreter import (
    IR_VERSION,
    Case,
    assert_matches_ort,
    case,
    f32,
    make_model,
    make_single_node_model,
    scalar,
)

TICKS = 160


def assert_same_bytes(ours: Any, theirs: Any, name: str) -> None:
    theirs = np.asarray(theirs)
    assert isinstance(ours, np.ndarray), f"{name}: got {type(ours).__name__}"
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), name
    assert ours.tobytes() == theirs.tobytes(), f"{name}: {ours} != onnx.reference {theirs}"


def elu_mlp(sizes: tuple[int, ...], seed: int = 0) -> onnx.ModelProto:
    """An MLP as torch.onnx writes one: Gemm(transB=1) with [out, in] weights, then Elu."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "obs"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        inits += [
            numpy_helper.from_array(
                (rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32), f"w{i}"
            ),
            numpy_helper.from_array((0.1 * rng.normal(size=b)).astype(np.float32), f"b{i}"),
        ]
        out = "actions" if i == len(sizes) - 2 else f"g{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out], transB=1))
        if out != "actions":
            nodes.append(helper.make_node("Elu", [out], [f"h{i}"], alpha=1.0))
            x = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "elu_mlp",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, sizes[-1]])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


# --- the tick, every graph in onnx.reference ----------------------------------------------------


class EvaluatorTick:
    """A TickEngine whose stage graphs and actor are run by onnx.reference."""

    def __init__(
        self, traced: TracedProgram, actor: onnx.ModelProto, signature: ActorSignature
    ) -> None:
        assert traced.obs_fold is None  # the examples keep their observation scales
        self._stages = {}
        for stage in traced.stages:
            writes = dict(zip(stage.output_names, stage.writes, strict=True))
            outputs = [writes[o.name] for o in stage.model.graph.output]
            inputs = [i.name for i in stage.model.graph.input]
            self._stages[stage.kind] = (ReferenceEvaluator(stage.model), inputs, outputs)
        self._actor = ReferenceEvaluator(actor)
        self._actor_outputs = [o.name for o in actor.graph.output]
        self._signature = signature
        shapes = traced.output_shapes()
        self._zeros = {n: np.zeros(shapes[n], np.float32) for n in (ACTIONS, OBS)}

    def run(self, kind: StageKind, env: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if kind == "actor":
            feeds = self._signature.feeds(env, np.reshape)
            values = self._actor.run(None, feeds)
            outputs = dict(zip(self._actor_outputs, values, strict=True))
            return self._signature.results(outputs, np.reshape)
        evaluator, inputs, writes = self._stages[kind]
        values = evaluator.run(None, {name: env[name] for name in inputs})
        return dict(zip(writes, values, strict=True))

    def zeros(self, name: str) -> np.ndarray:
        return self._zeros[name]


def assert_ticks_match_onnx_reference(traced: TracedProgram, actor: onnx.ModelProto) -> None:
    program = traced.program
    ours = ReferenceInterpreter(traced, actor)
    _, signature = reference_actor(actor, traced.actor_signature)
    engine = EvaluatorTick(traced, actor, signature)
    initial = {m.key: m.init for m in program.memories}
    stream = random_stream(program, TICKS, seed=3)
    memory, tick = dict(initial), 0
    for t in range(stream.ticks):
        if stream.reset[t]:
            ours.reset()
            memory, tick = dict(initial), 0
        inputs = stream.at(t)
        env = {**inputs, **memory, STEP_COUNT: np.asarray(tick, np.int32)}
        with np.errstate(all="ignore"):
            expected = run_tick(
                engine,
                env,
                policy_step=is_policy_step(tick, program.decimation),
                outputs=traced.output_wires,
                memories=traced.memory_wires,
            )
        got = ours.step(inputs)
        assert list(got) == list(expected)
        for name, value in expected.items():
            assert_same_bytes(got[name], value, f"tick {t} (ctx.step_count {tick}): {name}")
        memory = {key: expected[out].copy() for key, out in traced.memory_wires}
        tick += 1


@pytest.mark.parametrize(
    ("stem", "sizes"),
    [("quadruped", (48, 512, 256, 128, 12)), ("quadruped", (48, 64, 64, 12)), ("tutorial", None)],
    ids=["quadruped-realistic", "quadruped-small", "tutorial"],
)
def test_ticks_match_onnx_reference_with_an_onnx_actor(
    stem: str, sizes: tuple[int, ...] | None
) -> None:
    traced = trace(load_program_file(EXAMPLES / f"{stem}.py").program)
    sizes = sizes or (traced.n_obs, 32, traced.n_actions)
    assert_ticks_match_onnx_reference(traced, elu_mlp(sizes, seed=len(sizes)))


@pytest.mark.torch
@pytest.mark.parametrize("path", example_files(), ids=[p.stem for p in example_files()])
def test_every_example_ticks_like_onnx_reference_with_its_own_actor(path: Path) -> None:
    loaded = load_program_file(path)
    module = loaded.default_actor()
    if module is None:
        pytest.skip(f"{path.stem} has no actor() of its own")
    traced, actor = prepare_actor(module, trace(loaded.program), opset=20, exporter="torchscript")
    assert_ticks_match_onnx_reference(traced, actor.model)


# --- kernels with constants worked in ---------------------------------------------------------


W34 = f32(3, 4)
W43 = f32(4, 3)
X23 = f32(2, 3)
X46 = f32(4, 6)
SPECIAL = np.array(
    [[-np.inf, -30.0, -1.0, -1e-30, -0.0, 0.0, 1e-30, 0.5, 30.0, 200.0, np.inf, np.nan]]
)

BOUND_CASES = [
    case("Gemm", ("a", X23), ("b", W43), ("c", f32(4)), id="transB", transB=1, consts=["b", "c"]),
    case("Gemm", ("a", X23), ("b", W34), id="no-c", consts=["b"]),
    case("Gemm", ("a", X23), ("b", W43), ("c", f32(4)), id="c-fed", transB=1, consts=["b"]),
    case(
        "Gemm",
        ("a", f32(3, 2)),
        ("b", W34),
        ("c", f32(2, 1)),
        id="transA-alpha-beta",
        transA=1,
        alpha=0.5,
        beta=-2.0,
        consts=["b", "c"],
    ),
    case("Gemm", ("a", X23), ("b", W34), ("c", f32(4)), id="beta0", beta=0.0, consts=["b", "c"]),
    case(
        "Gemm",
        ("a", X23.astype(np.float64)),
        ("b", W34.astype(np.float64)),
        ("c", f32(4).astype(np.float64)),
        id="float64-alpha",
        alpha=0.25,
        consts=["b", "c"],
    ),
    case(
        "Gemm",
        ("a", np.arange(6, dtype=np.int32).reshape(2, 3)),
        ("b", np.arange(-6, 6, dtype=np.int32).reshape(3, 4)),
        ("c", np.array([1, -2, 3, 4], np.int32)),
        id="int32-alpha",
        alpha=0.5,
        consts=["b", "c"],
    ),
    case(
        "Clip",
        ("x", X23),
        ("lo", scalar(-0.5, np.float32)),
        ("hi", scalar(0.5, np.float32)),
        id="both",
        consts=["lo", "hi"],
    ),
    case("Clip", ("x", X23), ("lo", None), ("hi", scalar(0.5, np.float32)), consts=["hi"]),
    case("Clip", ("x", X23), ("lo", scalar(-0.5, np.float32)), id="only-min", consts=["lo"]),
    case(
        "Clip",
        ("x", np.arange(-6, 6, dtype=np.int32).reshape(3, 4)),
        ("lo", scalar(-3, np.int32)),
        ("hi", scalar(4, np.int32)),
        id="int",
        consts=["lo", "hi"],
    ),
    # onnx.reference clips with np.clip: with both bounds its clip ufunc, which keeps other
    # signed zeros than maximum-then-minimum would.
    *(
        case(
            "Clip",
            ("x", SPECIAL.astype(np.float32)),
            ("lo", scalar(lo, np.float32)),
            ("hi", scalar(hi, np.float32)),
            id=f"zero-bounds-{lo}-{hi}",
            consts=["lo", "hi"],
        )
        for lo, hi in ((-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0), (0.0, 0.0))
    ),
    case(  # +inf left out: onnxruntime's Clip without max gives FLT_MAX, onnx.reference inf
        "Clip",
        ("x", SPECIAL[:, SPECIAL[0] != np.inf].astype(np.float32)),
        ("lo", scalar(-0.0, np.float32)),
        id="only-min-negative-zero",
        consts=["lo"],
    ),
    case(
        "Clip",
        ("x", SPECIAL.astype(np.float32)),
        ("lo", scalar(-1.0, np.float32)),
        ("hi", scalar(1.0, np.float32)),
        id="bounds-fed",
    ),
    # Constant bounds: with positive steps the plan indexes directly (Python's clamping), else
    # through the kernel that works the index out per shape.
    *(
        case(
            "Slice",
            ("x", X46),
            ("starts", np.array(starts, np.int64)),
            ("ends", np.array(ends, np.int64)),
            *([("axes", np.array(axes, np.int64))] if axes is not None else []),
            *([("steps", np.array(steps, np.int64))] if steps is not None else []),
            id=label,
            consts=["starts", "ends", "axes", "steps"],
        )
        for label, starts, ends, axes, steps in (
            ("columns", [1], [3], [1], None),
            ("no-axes", [0, 1], [1, 4], None, None),
            ("negative-start", [-3], [6], [1], [2]),
            ("int-max-end", [2], [2**63 - 1], [1], None),
            ("int32-max-end", [1], [2**31 - 1], [0], None),
            ("end-past-dim", [-10], [100], [1], [3]),
            ("negative-end", [0], [-1], [0], None),
            ("empty", [5], [2], [1], None),
            ("negative-axis", [1], [3], [-1], None),
            ("negative-step", [-1], [0], [1], [-2]),
        )
    ),
    case("Concat", ("a", X23), ("b", f32(2, 1)), ("c", f32(2, 4)), axis=1),
    case("Elu", ("x", SPECIAL.astype(np.float32)), id="special-values"),
    case("Elu", ("x", SPECIAL.astype(np.float32)), id="alpha", alpha=0.3),
    case("Elu", ("x", SPECIAL), id="float64"),
    case("Elu", ("x", SPECIAL.astype(np.float16)), id="float16"),
    case("Elu", ("x", scalar(-0.5, np.float32)), id="0-d"),
    case("Relu", ("x", SPECIAL.astype(np.float32)), id="special-values"),
    case("Relu", ("x", np.arange(-3, 3, dtype=np.int8)), id="int8"),
    case("Relu", ("x", scalar(-0.5, np.float64)), id="0-d"),
]


NOT_IN_ONNXRUNTIME = {
    "Gemm-int32-alpha",
    "Elu-float64",
    "Elu-float16",
    "Relu-int8",
}  # CPU kernels it lacks


@pytest.mark.parametrize("c", BOUND_CASES, ids=[c.id for c in BOUND_CASES])
def test_kernels_with_constants_match_onnx_reference_bit_for_bit(c: Case) -> None:
    model, feeds = make_single_node_model(c)
    evaluator = ReferenceEvaluator(model)
    with np.errstate(all="ignore"):  # expm1 overflows in onnx.reference's Elu
        (expected,) = evaluator.run(None, feeds)
    for fold in (True, False):
        interpreter = GraphInterpreter(model, fold_constants=fold)
        assert interpreter.fallback_ops == ()
        assert_same_bytes(interpreter.run(feeds)["out"], expected, c.id)
    if c.id not in NOT_IN_ONNXRUNTIME:
        assert_matches_ort(model, feeds)


# --- the generated function -------------------------------------------------------------------


def chain() -> onnx.ModelProto:
    n = helper.make_node
    return make_model(
        [
            n("Neg", ["x"], ["neg"]),
            n("Identity", ["neg"], ["same"]),
            n("Reshape", ["same", "shape"], ["reshaped"], name="bad_reshape"),
            n("Relu", ["reshaped"], ["y"]),
            n("Identity", ["x"], ["x_out"]),
            n("Identity", ["w"], ["w_out"]),
        ],
        {"x": X23, "shape": np.array([3, 2], np.int64)},
        ["y", "x_out", "w_out"],
        initializers={"w": f32(2)},
    )


def test_a_failure_names_its_node_past_identities_and_constants() -> None:
    interpreter = GraphInterpreter(chain())
    with pytest.raises(GraphInterpreterError, match=r"#2 Reshape 'bad_reshape' failed") as info:
        interpreter.run({"x": X23, "shape": np.array([4, 4], np.int64)})
    assert info.value.node == "#2 Reshape 'bad_reshape'"
    assert info.value.reason is not None and info.value.reason.startswith("ValueError: ")
    with pytest.raises(GraphInterpreterError, match=r"#2 Reshape 'bad_reshape' failed") as info:
        interpreter.run_args(X23, np.array([4, 4], np.int64))  # the positional plan: the same
    assert info.value.node == "#2 Reshape 'bad_reshape'"


def test_run_unchecked_gives_the_outputs_in_order() -> None:
    model = chain()
    interpreter = GraphInterpreter(model)
    feeds = {"x": X23, "shape": np.array([3, 2], np.int64), "unrelated": X23}
    with np.errstate(all="ignore"):
        y, x_out, w_out = interpreter.run_unchecked(feeds)
    np.testing.assert_array_equal(y, np.maximum(-X23, 0).reshape(3, 2), strict=True)
    assert x_out is X23  # an Identity of an input is the input, as with run()
    w = numpy_helper.to_array(model.graph.initializer[0])
    np.testing.assert_array_equal(w_out, w, strict=True)
    w_out[0] = 99.0  # a copy: the plan's constant is not touched
    np.testing.assert_array_equal(interpreter.run_unchecked(feeds)[2], w, strict=True)
    with pytest.raises(GraphInterpreterError, match=r"input 'shape' failed: KeyError"):
        interpreter.run_unchecked({"x": X23})
    assert interpreter.required_inputs == ("x", "shape")  # w is an initializer
    positional = interpreter.run_args(X23, np.array([3, 2], np.int64))
    for got, want in zip(positional, (y, X23, w), strict=True):
        assert_same_bytes(got, want, "run_args")


def test_run_unchecked_reads_an_overridable_initializer_from_the_feeds_or_its_default() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "bias"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ones(3, np.float32), "bias")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=IR_VERSION
    )
    interpreter = GraphInterpreter(model)
    bias = f32(3)
    (default,) = interpreter.run_unchecked({"x": X23})
    (fed,) = interpreter.run_unchecked({"x": X23, "bias": bias})
    np.testing.assert_array_equal(default, X23 + 1, strict=True)
    np.testing.assert_array_equal(fed, X23 + bias, strict=True)


def test_an_unused_output_of_a_split_is_not_an_output() -> None:
    x = f32(2, 6)
    model = make_model(
        [
            helper.make_node("Split", ["x"], ["a", "", "c"], axis=1, num_outputs=3),
            helper.make_node("Sub", ["c", "a"], ["y"]),
        ],
        {"x": x},
        ["y"],
    )
    # onnxruntime 1.32 crashes on a Split with an empty output name: onnx.reference instead.
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert_same_bytes(GraphInterpreter(model).run({"x": x})["y"], expected, "y")


def test_a_ufunc_of_0d_values_gives_a_0d_array() -> None:
    # NumPy gives a scalar for a ufunc of 0-d arrays; outputs are arrays nevertheless.
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        {"a": scalar(1.5, np.float32), "b": scalar(2.0, np.float32)},
        ["y"],
    )
    (y,) = GraphInterpreter(model).run_unchecked(
        {"a": scalar(1.5, np.float32), "b": scalar(2.0, np.float32)}
    )
    assert type(y) is np.ndarray and y.shape == () and y.dtype == np.float32 and y == 3.5
