"""The build's rewrites (compiler/build/_rewrite*.py): fewer nodes, the same bits.

Each rewritten file is run side by side with the same program compiled with
``rewrites=False`` and must give the same bytes on every output at every tick; parity with the
program is checked by the rest of the suite, which compiles with the rewrites on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import spox.opset.ai.onnx.v20 as op
from onnx import TensorProto, helper, numpy_helper

from compiler import check_parity, compile_program, random_stream
from compiler.build._rewrite import BUILD_KEY, REWRITES
from compiler.build._rewrite_graph import node_count, value_types
from compiler.build._rewrite_hoist import hoist_shared
from compiler.build._rewrite_wire import wire_outputs
from compiler.cli._main import main
from compiler.cli._program_file import load_program_file
from compiler.tools._explain import render_explain
from exploy_dsl import Program, VerificationError, read_contract, term
from exploy_dsl.contract._graphs import graphs
from tests._support import Compiled, assert_same_bits, example_files, mlp_actor, run, session

STEP_NAMES = {r.name for r in REWRITES}


def _plain(example: Compiled) -> onnx.ModelProto:
    return compile_program(example.program_file.program, example.actor.model, rewrites=False)


def _branches(model: onnx.ModelProto) -> tuple[onnx.NodeProto, onnx.GraphProto, onnx.GraphProto]:
    (if_node,) = [n for n in model.graph.node if n.op_type == "If"]
    by_name = {a.name: a.g for a in if_node.attribute}
    return if_node, by_name["then_branch"], by_name["else_branch"]


def _ops(graph: onnx.GraphProto) -> list[str]:
    return [n.op_type for n in graph.node if n.op_type != "Constant"]


def _same_bits_on_a_stream(a: onnx.ModelProto, b: onnx.ModelProto, program: Program) -> None:
    stream = random_stream(program, 96, seed=3)
    assert_same_bits(a, b, stream.inputs, stream.reset)


# -- the same bits --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quadruped", "tutorial"])
def test_the_reference_examples_compute_the_same_bits_as_without_rewrites(
    compiled: dict[str, Compiled], name: str
) -> None:
    example = compiled[name]
    plain = _plain(example)
    assert node_count(example.model) < node_count(plain)
    _same_bits_on_a_stream(example.model, plain, example.program_file.program)


@pytest.mark.torch
@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_every_example_computes_the_same_bits_as_without_rewrites(path: Path) -> None:
    loaded = load_program_file(path)
    actor = loaded.actor(None)
    rewritten = compile_program(loaded.program, actor, exporter="torchscript")
    plain = compile_program(loaded.program, actor, exporter="torchscript", rewrites=False)
    _same_bits_on_a_stream(rewritten, plain, loaded.program)


def test_non_finite_inputs_stay_element_by_element_what_they_were(
    compiled: dict[str, Compiled],
) -> None:
    # Nothing is mixed across elements: a NaN or inf in one joint stays in that joint, and -0.0
    # keeps its sign through the fused offsets (their identity is -0.0, not 0.0).
    example = compiled["quadruped"]
    program = example.program_file.program
    stream = random_stream(program, 48, seed=5)
    inputs = {name: values.copy() for name, values in stream.inputs.items()}
    for k, value in enumerate([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e38, -1e38] * 4):
        wire = sorted(inputs)[k % len(inputs)]
        inputs[wire].reshape(len(stream.reset), -1)[k, k % inputs[wire][0].size] = value
    assert_same_bits(example.model, _plain(example), inputs, stream.reset)


def test_nans_of_both_signs_stay_nans_at_the_same_elements(compiled: dict[str, Compiled]) -> None:
    # Projected gravity multiplies quaternion components pairwise: with +NaN and -NaN among
    # them, onnxruntime returns one NaN or the other depending on the vector's length, so only
    # NaN-ness is compared there (assert_same_bits); every other element keeps its bytes.
    example = compiled["quadruped"]
    program = example.program_file.program
    stream = random_stream(program, 24, seed=6)
    inputs = {name: values.copy() for name, values in stream.inputs.items()}
    quaternion = inputs["obj.robot.base.w_Q_b"].reshape(len(stream.reset), -1)
    positive, negative = np.array([0x7FC00000, 0xFFC00001], np.uint32).view(np.float32)
    quaternion[::2] = [0.0, 0.0, positive, negative]
    quaternion[1::4] = [negative, 0.5, negative, positive]
    assert_same_bits(example.model, _plain(example), inputs, stream.reset)


# -- what the file records ------------------------------------------------------------------


def test_the_rewrites_that_changed_the_file_are_recorded_in_order(
    compiled: dict[str, Compiled],
) -> None:
    meta = {p.key: p.value for p in compiled["quadruped"].model.metadata_props}
    steps = json.loads(meta[BUILD_KEY])["rewrites"]
    assert [s["step"] for s in steps] == [
        "wire_outputs",
        "hoist_shared",
        "affine_concat",
        "vectorize_concat",
        "split_gathers",
        "lift_weights",
    ]
    for step in steps[:-1]:
        before, after = step["nodes"]
        assert after < before, step
    # lift_weights turns Constants (not counted as nodes) into initializers of their branch.
    assert steps[-1]["nodes"][0] == steps[-1]["nodes"][1]
    assert steps[-1]["nodes"][1] == node_count(compiled["quadruped"].model)


def test_explain_lists_the_rewrites(compiled: dict[str, Compiled]) -> None:
    text = render_explain(read_contract(compiled["quadruped"].model), "q.onnx")
    assert (
        "build rewrites (each keeps every output bit for bit; a NaN stays a NaN), in order:" in text
    )
    for rewrite in REWRITES:
        if rewrite.name != "drop_dead":
            assert f"  {rewrite.name}: " in text and rewrite.summary in text


def test_without_rewrites_every_output_comes_from_the_if(compiled: dict[str, Compiled]) -> None:
    plain = _plain(compiled["quadruped"])
    graph = plain.graph
    producers = {out: node for node in graph.node for out in node.output}
    (if_node,) = [n for n in graph.node if n.op_type == "If"]
    assert {n.op_type for n in graph.node} <= {"Constant", "Mod", "Equal", "If", "Identity"}
    assert list(if_node.output) == [producers[o.name].input[0] for o in graph.output]
    meta = {p.key: p.value for p in plain.metadata_props}
    assert json.loads(meta[BUILD_KEY]) == {"rewrites": []}
    text = render_explain(read_contract(plain), "q.onnx")
    assert "build rewrites: none (compiled with --no-rewrites)" in text


def test_the_cli_compiles_without_rewrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plain.onnx"
    program = str(Path(__file__).parents[2] / "examples" / "tutorial.py")
    actor = tmp_path / "actor.onnx"
    onnx.save(mlp_actor(10, 2, 1).model, str(actor))
    assert main(["compile", program, "--actor", str(actor), "-o", str(out), "--no-rewrites"]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta[BUILD_KEY]) == {"rewrites": []}
    capsys.readouterr()


# -- the quadruped's graph ------------------------------------------------------------------


def test_the_quadruped_observation_is_one_concat_one_mul_one_add_one_clip(
    compiled: dict[str, Compiled],
) -> None:
    _, then, _ = _branches(compiled["quadruped"].model)
    made = {o: n for n in then.node for o in n.output}
    (concat,) = [n for n in then.node if n.op_type == "Concat"]
    # The raw terms: the wires themselves, memory.actions.in and projected gravity's polynomial
    # on gathered quaternion components (no Slice left, no op on a single float).
    assert [x for x in concat.input if x not in made] == [
        "obj.robot.base.lin_vel_b_rt_w_in_b",
        "obj.robot.base.ang_vel_b_rt_w_in_b",
        "cmd.se2_velocity.base_velocity",
        "obj.robot.joints.pos",
        "obj.robot.joints.vel",
        "memory.actions.in",
    ]
    assert "Slice" not in _ops(then)
    # The factors of its six products: one Gather of the quaternion, one Split into four.
    (gather,) = [n for n in then.node if n.op_type == "Gather"]
    assert gather.input[0] == "obj.robot.base.w_Q_b"
    (split,) = [n for n in then.node if n.op_type == "Split"]
    assert split.input[0] == gather.output[0] and len(split.output) == 4
    chain, value = [], concat.output[0]
    while True:
        (reader,) = [n for n in then.node if value in n.input]
        if reader.op_type not in ("Mul", "Add", "Clip"):
            break
        chain.append(reader.op_type)
        value = reader.output[0]
    assert chain == ["Mul", "Add", "Clip"]
    assert reader.op_type == "MatMul"  # the actor's first layer reads the clipped observation


def test_apply_actions_runs_once_after_the_if(compiled: dict[str, Compiled]) -> None:
    model = compiled["quadruped"].model
    if_node, then, other = _branches(model)
    after = list(model.graph.node)[list(model.graph.node).index(if_node) + 1 :]
    # effort = clip(20 (target - q) - 0.5 qd): computed once per tick, at the top level.
    assert sorted(_ops_of(after)) == sorted(["Sub", "Mul", "Mul", "Sub", "Clip", "Identity"])
    assert "output.joint_targets.joint_pos.effort" in {o for n in after for o in n.output}
    # The apply-only branch only hands on the memory the policy step would have written.
    assert _ops(other) == ["Identity", "Identity"]
    assert {n.input[0] for n in other.node if n.op_type == "Identity"} == {
        "memory.actions.in",
        "memory.joint_pos.processed_actions.in",
    }
    assert "Clip" in _ops(then) and _ops(then).count("Clip") == 1  # the observation's only


def _ops_of(nodes: list[onnx.NodeProto]) -> list[str]:
    return [n.op_type for n in nodes if n.op_type != "Constant"]


def test_an_identity_is_left_only_where_a_value_needs_a_second_name(
    compiled: dict[str, Compiled],
) -> None:
    # The target is two wires (pos and memory...processed_actions.out), the actor's output two
    # values of the policy branch (actions and memory.actions.out): onnxruntime returns wrong
    # values when a branch lists one value twice, so the second gets its own node.
    model = compiled["quadruped"].model
    if_node, then, _ = _branches(model)
    for graph in graphs(model.graph):
        names = [o.name for o in graph.output]
        assert len(names) == len(set(names)), graph.name
    top = [n for n in model.graph.node if n.op_type == "Identity"]
    assert [(n.input[0], n.output[0]) for n in top] == [
        ("output.joint_targets.joint_pos.pos", "memory.joint_pos.processed_actions.out")
    ]
    (copy,) = [n for n in then.node if n.op_type == "Identity"]
    actions = then.output[list(if_node.output).index("actions")].name
    assert copy.input[0] == actions


# -- the rules, on small programs -------------------------------------------------------------


def _small(observations: Any, n_obs: int) -> tuple[Program, onnx.ModelProto]:
    program = Program("small", decimation=2, sim_dt=0.01)
    x = program.input("x", 3)
    y = program.input("y", 3)
    last = program.memory("last", 2)
    out = program.output("out", 2)

    @program.observations
    def obs(v: Any) -> list[Any]:
        return observations(v[x], v[y])

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: v[last] * 2.0 + 1.0}

    return program, mlp_actor(n_obs, 2, seed=1).model


def _rewritten_and_plain(observations: Any, n_obs: int) -> tuple[onnx.ModelProto, Program]:
    program, actor = _small(observations, n_obs)
    model = compile_program(program, actor)
    plain = compile_program(program, actor, rewrites=False)
    _same_bits_on_a_stream(model, plain, program)
    assert check_parity(model, program, actor, steps=24).ok
    return model, program


def test_an_offset_inside_a_scale_stays_where_it_is() -> None:
    # (x - c) * s: folding it into x * s - c * s would round differently, so the Sub stays and
    # only the Mul joins the observation's scale vector; 1 - y folds whole (a sign and an offset).
    c = np.array([[0.1, 0.2, 0.3]], np.float32)
    model, _ = _rewritten_and_plain(
        lambda x, y: [term("a", x - c, scale=3.0), term("b", 1.0 - y), term("c", y, scale=0.5)],
        9,
    )
    _, then, _ = _branches(model)
    ops = _ops(then)
    assert ops.count("Sub") == 1 and ops.count("Concat") == 1
    (concat,) = [n for n in then.node if n.op_type == "Concat"]
    (sub,) = [n for n in then.node if n.op_type == "Sub"]
    assert sub.output[0] in concat.input and concat.input[1:] == ["y", "y"]


def test_ops_whose_kernels_may_round_by_position_are_not_vectorized() -> None:
    def observations(x: Any, y: Any) -> list[Any]:
        parts = [
            op.tanh(op.slice(x, op.const([i]), op.const([i + 1]), op.const([1]))) for i in (0, 1)
        ]
        sums = [
            op.add(op.slice(x, op.const([i]), op.const([i + 1]), op.const([1])), y[:, i : i + 1])
            for i in (0, 2)
        ]
        return [term("t", op.concat(parts, axis=1)), term("s", op.concat(sums, axis=1))]

    model, _ = _rewritten_and_plain(observations, 4)
    _, then, _ = _branches(model)
    ops = _ops(then)
    assert ops.count("Tanh") == 2 + 1  # one per element, as written (+ the actor's)
    assert ops.count("Add") == 1 + 2  # the two sums: one Add on gathered operands (+ the actor's)


# -- the rules, on hand-built graphs ----------------------------------------------------------


def _if_model(
    then_nodes: list[Any], then_out: list[str], else_nodes: list[Any], else_out: list[str]
) -> onnx.ModelProto:
    def value(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3])

    outs = [f"o{i}" for i in range(len(then_out))]
    branches = {
        "then_branch": helper.make_graph(then_nodes, "then", [], [value(n) for n in then_out]),
        "else_branch": helper.make_graph(else_nodes, "else", [], [value(n) for n in else_out]),
    }
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], outs, **branches)],
        "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []), value("x"), value("y")],
        [value(o) for o in outs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def _runs_alike(a: onnx.ModelProto, b: onnx.ModelProto) -> None:
    onnx.checker.check_model(b, full_check=True)
    x = np.array([[1.5, -2.0, 0.25]], np.float32)
    for cond in (True, False):
        feeds = {"c": np.array(cond), "x": x, "y": x * 3}
        left, right = run(session(a), feeds), run(session(b), feeds)
        for name in left:
            assert left[name].tobytes() == right[name].tobytes(), (cond, name)


def _const(name: str, value: float) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.float32(value))
    )


def test_a_node_a_branch_still_reads_is_not_moved() -> None:
    # Both branches compute x * 2, but the policy branch also feeds it to a Neg that stays:
    # moving it would compute it twice on those ticks.
    model = _if_model(
        [
            _const("t2", 2.0),
            helper.make_node("Mul", ["x", "t2"], ["tm"]),
            helper.make_node("Neg", ["tm"], ["tn"]),
        ],
        ["tm", "tn"],
        [
            _const("e2", 2.0),
            helper.make_node("Mul", ["x", "e2"], ["em"]),
            helper.make_node("Identity", ["y"], ["ey"]),
        ],
        ["em", "ey"],
    )
    moved = onnx.ModelProto()
    moved.CopyFrom(model)
    assert hoist_shared(moved, value_types(moved)) == 0
    assert node_count(moved) == node_count(model)
    _runs_alike(model, moved)


def test_a_shared_node_is_not_moved_when_the_if_would_return_more_values() -> None:
    # Add(x*2, y*3) against Add(x, y): moving the Add needs both operands as outputs of the If.
    model = _if_model(
        [
            _const("a", 2.0),
            _const("b", 3.0),
            helper.make_node("Mul", ["x", "a"], ["p"]),
            helper.make_node("Mul", ["y", "b"], ["q"]),
            helper.make_node("Add", ["p", "q"], ["s"]),
        ],
        ["s"],
        [helper.make_node("Add", ["x", "y"], ["s2"])],
        ["s2"],
    )
    moved = onnx.ModelProto()
    moved.CopyFrom(model)
    hoist_shared(moved, value_types(moved))
    (if_node,) = [n for n in moved.graph.node if n.op_type == "If"]
    assert len(if_node.output) == 1
    _runs_alike(model, moved)


def test_shared_work_moves_and_a_pass_through_gets_its_node() -> None:
    # clip(m - x) in both branches, m new in one and read in the other: the Sub and the Clip
    # move after the If, which returns m; the apply-only branch passes y through an Identity.
    model = _if_model(
        [
            helper.make_node("Mul", ["y", "y"], ["m"]),
            helper.make_node("Sub", ["m", "x"], ["d"]),
            helper.make_node("Abs", ["d"], ["r"]),
        ],
        ["r", "m"],
        [
            helper.make_node("Sub", ["y", "x"], ["d2"]),
            helper.make_node("Abs", ["d2"], ["r2"]),
            helper.make_node("Identity", ["y"], ["m2"]),
        ],
        ["r2", "m2"],
    )
    moved = onnx.ModelProto()
    moved.CopyFrom(model)
    assert hoist_shared(moved, value_types(moved)) == 2
    wire_outputs(moved)
    (if_node,) = [n for n in moved.graph.node if n.op_type == "If"]
    assert len(if_node.output) == 1
    assert [n.op_type for n in moved.graph.node] == ["If", "Sub", "Abs"]
    _runs_alike(model, moved)


def test_a_rewrite_that_changes_a_value_is_refused_and_nothing_is_written(
    compiled: dict[str, Compiled], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # compile compares the rewritten file with the stitched one over the first ticks: a faulty
    # rewrite (here: the fused observation offset off by 1e-3 in one element, so the actions
    # differ first) is a refusal.
    from compiler.build import _rewrite_affine

    original = _rewrite_affine.affine_concat

    def faulty(model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> int:
        saved = original(model, types)
        for graph in graphs(model.graph):
            for node in graph.node:
                if node.op_type == "Constant" and node.output[0].endswith("_add"):
                    value = numpy_helper.to_array(node.attribute[0].t).copy()
                    value.reshape(-1)[0] += np.float32(1e-3)
                    node.attribute[0].t.CopyFrom(numpy_helper.from_array(value))
        return saved

    monkeypatch.setattr(_rewrite_affine, "affine_concat", faulty)
    example = compiled["quadruped"]
    out = tmp_path / "q.onnx"
    with pytest.raises(
        VerificationError,
        match=r"the build's rewrites changed output 'actions'.*"
        r"tick 0 \(policy step\).*--no-rewrites",
    ):
        compile_program(example.program_file.program, example.actor.model, output=out)
    assert not out.exists()


def test_a_batched_file_computes_the_same_bits_as_without_rewrites(
    compiled: dict[str, Compiled],
) -> None:
    example = compiled["quadruped"]
    program = example.program_file.program.with_batch(3)
    rewritten = compile_program(program, example.actor.model)
    plain = compile_program(program, example.actor.model, rewrites=False)
    assert node_count(rewritten) < node_count(plain)
    _same_bits_on_a_stream(rewritten, plain, program)


def _gathers_model(opset: int) -> onnx.ModelProto:
    # Four Gathers of x along axis 1 (indices int64 and int32, one negative, one repeated, one
    # a graph output), one along axis 0 and one with a scalar index: those two stay.
    def index(name: str, values: list[int], dtype: type = np.int64) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(np.array(values, dtype))
        )

    nodes = [
        index("i0", [0, 3]),
        index("i1", [4, 4, 1]),
        index("i2", [-1], np.int32),
        index("i3", [2, 0]),
        index("r0", [1]),
        index("s0", 2),
        helper.make_node("Gather", ["x", "i0"], ["a"], axis=1),
        helper.make_node("Gather", ["x", "r0"], ["rows"], axis=0),
        helper.make_node("Gather", ["x", "i1"], ["b"], axis=1),
        helper.make_node("Gather", ["x", "s0"], ["col"], axis=1),
        helper.make_node("Gather", ["x", "i2"], ["c"], axis=-1),
        helper.make_node("Gather", ["x", "i3"], ["d"], axis=1),
        helper.make_node("Mul", ["a", "d"], ["ad"]),
        helper.make_node("Add", ["b", "c"], ["bc"]),
    ]

    def value(name: str, shape: list[int]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    outputs = [("ad", [2, 2]), ("bc", [2, 3]), ("c", [2, 1]), ("rows", [1, 5]), ("col", [2])]
    graph = helper.make_graph(
        nodes, "g", [value("x", [2, 5])], [value(name, shape) for name, shape in outputs]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def test_gathers_of_one_tensor_become_one_gather_and_a_split() -> None:
    from compiler.build._rewrite import apply_rewrites

    model = _gathers_model(13)
    merged = onnx.ModelProto()
    merged.CopyFrom(model)
    done = apply_rewrites(merged, 13)
    assert done == [{"step": "split_gathers", "nodes": [8, 6]}]
    onnx.checker.check_model(merged, full_check=True)
    gathers = [n for n in merged.graph.node if n.op_type == "Gather"]
    assert sorted(n.output[0] for n in gathers) == ["a_gathered", "col", "rows"]
    (split,) = [n for n in merged.graph.node if n.op_type == "Split"]
    assert list(split.output) == ["a", "b", "c", "d"]  # each piece keeps its Gather's name
    bits = np.array([0x7FC12345, 0xFFC00000, 0x80000000, 0x00000001, 0x7F800000], np.uint32)
    specials = bits.view(np.float32)
    for x in (np.stack([specials, -specials]), np.random.default_rng(0).normal(size=(2, 5))):
        feeds = {"x": x.astype(np.float32)}
        left, right = run(session(model), feeds), run(session(merged), feeds)
        for name in left:
            assert left[name].tobytes() == right[name].tobytes(), name


def test_gathers_stay_in_a_file_older_than_split_13() -> None:
    # Split takes its sizes as an input from Split-13 on: an opset-12 file keeps its Gathers.
    from compiler.build._rewrite import apply_rewrites

    model = _gathers_model(12)
    assert apply_rewrites(model, 12) == []
    assert [n.op_type for n in model.graph.node].count("Gather") == 6


def test_compile_check_of_the_rewrites_takes_another_nan_but_no_other_difference() -> None:
    from compiler.build._verify import _same_bits

    nans = np.array([0x7FC00000, 0xFFC00001], np.uint32).view(np.float32)
    assert _same_bits(np.array([1.0, nans[0]], np.float32), np.array([1.0, nans[1]], np.float32))
    assert not _same_bits(np.array([0.0], np.float32), np.array([-0.0], np.float32))
    assert not _same_bits(np.array([nans[0]], np.float32), np.array([np.inf], np.float32))
    assert not _same_bits(np.array([1, 2], np.int64), np.array([1, 3], np.int64))
    assert not _same_bits(np.zeros(2, np.float32), np.zeros(2, np.float64))
