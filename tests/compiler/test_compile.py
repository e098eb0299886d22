"""Compiling the examples: the file contract (DESIGN.md section 2), actors, atomic write."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.checker
import pytest
from onnx import TensorProto, helper

from compiler import DEFAULT_IR_VERSION, DEFAULT_OPSET, compile_program, load_actor, write_atomic
from exploy_dsl import ActorError, CompileError, WriteError, read_contract
from exploy_dsl.contract._graphs import iter_nodes
from tests._support import Compiled, dims, mlp_actor, random_feeds, run, session

EXAMPLES = ["tutorial", "quadruped"]
JOINT_NAMES = [
    "FL_hip", "FL_thigh", "FL_calf",
    "FR_hip", "FR_thigh", "FR_calf",
    "RL_hip", "RL_thigh", "RL_calf",
    "RR_hip", "RR_thigh", "RR_calf",
]  # fmt: skip
Q0_TEXT = [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5]
Q0 = np.array([Q0_TEXT], np.float32)

# (name, shape) of every graph input and output, in file order (DESIGN.md sections 2 and 5).
INPUTS = {
    "tutorial": [
        ("ctx.step_count", []),
        ("foo", [1, 4]),
        ("bar_baz_group.bar", [1, 2]),
        ("bar_baz_group.baz", [1, 2]),
        ("memory.actions.in", [1, 2]),
        ("memory.processed_actions.in", [1, 2]),
    ],
    "quadruped": [
        ("ctx.step_count", []),
        ("obj.robot.joints.pos", [1, 12]),
        ("obj.robot.joints.vel", [1, 12]),
        ("obj.robot.base.lin_vel_b_rt_w_in_b", [1, 3]),
        ("obj.robot.base.ang_vel_b_rt_w_in_b", [1, 3]),
        ("obj.robot.base.w_Q_b", [1, 4]),
        ("cmd.se2_velocity.base_velocity", [1, 3]),
        ("memory.actions.in", [1, 12]),
        ("memory.joint_pos.processed_actions.in", [1, 12]),
    ],
}
OUTPUTS = {
    "tutorial": [
        ("actions", [1, 2]),
        ("obs", [1, 10]),
        ("out", [1, 2]),
        ("memory.actions.out", [1, 2]),
        ("memory.processed_actions.out", [1, 2]),
    ],
    "quadruped": [
        ("actions", [1, 12]),
        ("obs", [1, 48]),
        ("output.joint_targets.joint_pos.pos", [1, 12]),
        ("output.joint_targets.joint_pos.vel", [1, 12]),
        ("output.joint_targets.joint_pos.effort", [1, 12]),
        ("memory.actions.out", [1, 12]),
        ("memory.joint_pos.processed_actions.out", [1, 12]),
    ],
}
INITIAL_VALUES = {
    "tutorial": {
        "memory.actions.in": np.zeros((1, 2), np.float32),
        "memory.processed_actions.in": np.zeros((1, 2), np.float32),
    },
    "quadruped": {
        "memory.actions.in": np.zeros((1, 12), np.float32),
        "memory.joint_pos.processed_actions.in": Q0,
    },
}


@pytest.fixture(params=EXAMPLES)
def example(request: pytest.FixtureRequest, compiled: dict[str, Compiled]) -> Compiled:
    return compiled[request.param]


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def tick_feeds(example: Compiled, step: int, seed: int = 0) -> dict[str, np.ndarray]:
    contract = read_contract(example.model)
    feeds = random_feeds(contract.inputs, np.random.default_rng(seed))
    feeds.update(contract.initial_values)
    feeds["ctx.step_count"] = np.array(step, np.int32)
    return feeds


# -- the file contract --------------------------------------------------------------------------


def test_the_file_passes_the_full_onnx_checker(example: Compiled) -> None:
    onnx.checker.check_model(onnx.load(str(example.path)), full_check=True)


def test_the_written_file_is_the_returned_model(example: Compiled) -> None:
    assert example.path.read_bytes() == example.model.SerializeToString(deterministic=True)


def test_step_count_is_an_int32_scalar(example: Compiled) -> None:
    step = example.model.graph.input[0]
    assert step.name == "ctx.step_count"
    assert step.type.tensor_type.elem_type == TensorProto.INT32
    assert step.type.tensor_type.HasField("shape")
    assert dims(step) == []


def test_the_top_level_is_mod_equal_if(example: Compiled) -> None:
    graph = example.model.graph
    producers = {out: node for node in graph.node for out in node.output}
    (if_node,) = [n for n in graph.node if n.op_type == "If"]
    equal = producers[if_node.input[0]]
    assert equal.op_type == "Equal"
    mod = producers[equal.input[0]]
    assert mod.op_type == "Mod"
    assert mod.input[0] == "ctx.step_count"
    constants = {
        out: onnx.numpy_helper.to_array(node.attribute[0].t)
        for node in graph.node
        if node.op_type == "Constant"
        for out in node.output
    }
    assert constants[mod.input[1]] == 4  # decimation
    assert constants[equal.input[1]] == 0
    # The If returns the policy step's values under the wire names; what every tick computes
    # alike (apply_actions, hoisted by the build) comes after it and reads the If's values.
    at = list(graph.node).index(if_node)
    assert {n.op_type for n in graph.node[:at]} <= {"Constant", "Mod", "Equal"}
    assert {"actions", "obs"} <= set(if_node.output)
    for node in graph.node[at + 1 :]:
        assert node.op_type not in {"If", "Gemm", "MatMul"}, node.op_type


def test_the_actor_runs_only_in_the_then_branch(example: Compiled) -> None:
    (if_node,) = [n for n in example.model.graph.node if n.op_type == "If"]
    branches = {a.name: {n.op_type for n in iter_nodes(a.g)} for a in if_node.attribute}
    assert {"MatMul", "Tanh"} <= branches["then_branch"]
    assert not {"MatMul", "Tanh"} & branches["else_branch"]


def test_inputs_and_outputs_are_in_contract_order_with_static_shapes(example: Compiled) -> None:
    graph = example.model.graph
    assert [(v.name, dims(v)) for v in graph.input] == INPUTS[example.name]
    assert [(v.name, dims(v)) for v in graph.output] == OUTPUTS[example.name]
    for value in (*graph.input[1:], *graph.output):
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT, value.name


def test_every_inferred_shape_is_static(example: Compiled) -> None:
    inferred = onnx.shape_inference.infer_shapes(example.model, strict_mode=True)
    values = [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]
    assert values
    for value in values:
        assert all(isinstance(d, int) for d in dims(value)), (value.name, dims(value))


def test_memory_initial_values_are_initializers_of_the_in_inputs(example: Compiled) -> None:
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in example.model.graph.initializer}
    expected = INITIAL_VALUES[example.name]
    assert sorted(initializers) == sorted(expected)
    for name, value in expected.items():
        assert initializers[name].dtype == np.float32
        np.testing.assert_array_equal(initializers[name], value)


def test_onnxruntime_lists_memory_as_overridable_initializers(example: Compiled) -> None:
    sess = session(example.path)
    overridable = [(i.name, i.shape) for i in sess.get_overridable_initializers()]
    assert overridable == [(n, s) for n, s in INPUTS[example.name] if n.startswith("memory.")]
    assert [i.name for i in sess.get_inputs()] == [
        n for n, _ in INPUTS[example.name] if not n.startswith("memory.")
    ]


def test_without_memory_feeds_onnxruntime_starts_from_the_initial_values(
    example: Compiled,
) -> None:
    feeds = tick_feeds(example, step=1)
    with_memory = run(session(example.model), feeds)
    without = run(
        session(example.model), {k: v for k, v in feeds.items() if not k.startswith("memory.")}
    )
    for name, value in with_memory.items():
        np.testing.assert_array_equal(without[name], value, err_msg=name)


def test_the_apply_only_branch_returns_zero_actions_and_obs(example: Compiled) -> None:
    sess = session(example.model)
    for step in (1, 2, 3, 5, 7):
        result = run(sess, tick_feeds(example, step, seed=step))
        assert not result["actions"].any() and not result["obs"].any(), step
    policy = run(sess, tick_feeds(example, 8))
    assert policy["actions"].any() and policy["obs"].any()


def test_the_quadruped_metadata_has_exploys_encodings(compiled: dict[str, Compiled]) -> None:
    meta = metadata_of(compiled["quadruped"].model)
    assert meta["exploy_version"] == '"0.1.0"'
    assert json.loads(meta["exploy_version"]) == "0.1.0"
    assert meta["update_rate"] == "200.0"
    assert meta["decimation"] == "4"
    assert meta["sim_dt"] == "0.005"
    assert json.loads(meta["obs_term_names"]) == [
        "base_lin_vel",
        "base_ang_vel",
        "projected_gravity",
        "velocity_commands",
        "joint_pos",
        "joint_vel",
        "actions",
    ]
    assert json.loads(meta["base_names"]) == {"robot": "base"}
    assert json.loads(meta["obj.robot.joints"]) == {"joint_names": JOINT_NAMES}
    assert json.loads(meta["output.joint_targets.joint_pos"]) == {
        "type": "joint_targets",
        "names": JOINT_NAMES,
        "stiffness": [0.0] * 12,
        "damping": [0.0] * 12,
    }
    assert json.loads(meta["cmd.se2_velocity.base_velocity"]) == {
        "ranges": {"lin_vel_x": [-1.0, 1.0], "lin_vel_y": [-0.5, 0.5], "ang_vel_z": [-1.0, 1.0]}
    }


def test_the_tutorial_metadata_has_exploys_encodings(compiled: dict[str, Compiled]) -> None:
    meta = metadata_of(compiled["tutorial"].model)
    assert (meta["update_rate"], meta["decimation"], meta["sim_dt"]) == ("200.0", "4", "0.005")
    assert json.loads(meta["obs_term_names"]) == ["foo", "bar", "baz", "actions"]
    assert json.loads(meta["foo"]) == {"description": "The foo tensor from the data source."}
    assert json.loads(meta["bar_baz_group"]) == {"description": "A group of related inputs."}
    # Environment metadata strings are written as they are (docs/decisions.md).
    assert (meta["env_name"], meta["version"]) == ("Env", "1.0")


def test_own_keys_record_memory_and_the_observation_layout(
    compiled: dict[str, Compiled],
) -> None:
    meta = metadata_of(compiled["quadruped"].model)
    own = [k for k in meta if k.startswith("exploy_dsl.")]
    assert "exploy_dsl.memory" in own and "exploy_dsl.observation" in own
    memory = {m["name"]: m for m in json.loads(meta["exploy_dsl.memory"])}
    # float32 values in their shortest repr: 0.1, not 0.10000000149011612
    assert memory["joint_pos.processed_actions"]["init"] == [Q0_TEXT]
    assert memory["actions"]["shape"] == [1, 12]
    layout = json.loads(meta["exploy_dsl.observation"])
    assert layout["size"] == 48 and layout["clip"] == [-100.0, 100.0]
    starts = [(t["name"], t["start"], t["size"]) for t in layout["terms"]]
    assert starts[:3] == [
        ("base_lin_vel", 0, 3),
        ("base_ang_vel", 3, 3),
        ("projected_gravity", 6, 3),
    ]
    assert starts[-1] == ("actions", 36, 12)
    assert layout["terms"][3]["scale"] == [2.0, 2.0, 0.25]


def test_every_metadata_value_but_the_plain_ones_is_json(example: Compiled) -> None:
    plain = {"update_rate", "decimation", "sim_dt", "env_name", "version"}
    for key, value in metadata_of(example.model).items():
        if key not in plain:
            json.loads(value)


def test_compiling_twice_gives_the_same_bytes(compiled: dict[str, Compiled]) -> None:
    example = compiled["tutorial"]
    again = compile_program(example.program_file.program, example.actor.model)
    assert again.SerializeToString(deterministic=True) == example.path.read_bytes()


# -- opset and IR version -----------------------------------------------------------------------


def test_opset_and_ir_version_default_to_20_and_10(example: Compiled) -> None:
    assert (DEFAULT_OPSET, DEFAULT_IR_VERSION) == (20, 10)
    assert [(o.domain, o.version) for o in example.model.opset_import] == [("", 20)]
    assert example.model.ir_version == 10
    contract = read_contract(example.model)
    assert (contract.opset, contract.ir_version) == (20, 10)


def test_opset_19_and_ir_9_are_selectable_and_compute_the_same(example: Compiled) -> None:
    older = compile_program(
        example.program_file.program, example.actor.model, opset=19, ir_version=9
    )
    assert [(o.domain, o.version) for o in older.opset_import] == [("", 19)]
    assert older.ir_version == 9
    onnx.checker.check_model(older, full_check=True)
    for step in (0, 1):
        feeds = tick_feeds(example, step)
        new, old = run(session(example.model), feeds), run(session(older), feeds)
        for name, value in new.items():
            np.testing.assert_array_equal(old[name], value, err_msg=name)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"opset": 6}, r"opset 6 is not supported"),
        ({"ir_version": 99}, r"IR version 99 is not supported"),
        ({"opset": 12, "ir_version": 7}, r"op \w+ used by observations stage .* opset 12"),
    ],
)
def test_an_opset_or_ir_version_that_cannot_hold_the_program_is_refused(
    compiled: dict[str, Compiled], options: dict[str, int], match: str
) -> None:
    example = compiled["tutorial"]
    with pytest.raises(CompileError, match=match):
        compile_program(example.program_file.program, example.actor.model, **options)  # type: ignore[arg-type]


# -- torch actors -------------------------------------------------------------------------------


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_a_torch_actor_compiles_with_both_exporters(
    torch_compiled: Callable[[str, str], tuple[onnx.ModelProto, Any]],
    compiled: dict[str, Compiled],
    name: str,
    exporter: str,
) -> None:
    import torch

    model, module = torch_compiled(name, exporter)
    onnx.checker.check_model(model, full_check=True)
    assert [(v.name, dims(v)) for v in model.graph.input] == INPUTS[name]
    assert [(v.name, dims(v)) for v in model.graph.output] == OUTPUTS[name]
    assert [(o.domain, o.version) for o in model.opset_import if o.domain == ""] == [("", 20)]
    assert json.loads(metadata_of(model)["exploy_dsl.actor"])["source"].endswith(
        f"({exporter} export)"
    )
    result = run(session(model), tick_feeds(compiled[name], 0, seed=3))
    with torch.no_grad():
        expected = module(torch.from_numpy(result["obs"])).numpy()
    np.testing.assert_allclose(result["actions"], expected, atol=1e-5)
    assert result["actions"].any()


# -- actor sizes and kinds ----------------------------------------------------------------------


def test_an_observation_size_mismatch_names_both_sizes(compiled: dict[str, Compiled]) -> None:
    program = compiled["quadruped"].program_file.program
    with pytest.raises(
        ActorError,
        match=r"observation size mismatch: the observations stage produces 48 values "
        r"\(base_lin_vel:3, .*actions:12\) but actor ModelProto takes 47\. .*input size 48",
    ):
        compile_program(program, mlp_actor(47, 12).model)


def test_an_action_size_mismatch_names_both_sizes(compiled: dict[str, Compiled]) -> None:
    program = compiled["tutorial"].program_file.program
    with pytest.raises(
        ActorError,
        match=r"action size mismatch: actor ModelProto outputs 3 values but process_actions "
        r"expects n_actions=2\. Fix: set @program.process_actions\(n_actions=3\)",
    ):
        compile_program(program, mlp_actor(10, 3).model)


@pytest.mark.torch
def test_a_torch_actor_of_the_wrong_input_size_is_refused(compiled: dict[str, Compiled]) -> None:
    import torch

    program = compiled["tutorial"].program_file.program
    with pytest.raises(
        ActorError, match=r"torch actor Linear fails on an observation of shape \[1, 10\]"
    ):
        compile_program(program, torch.nn.Linear(9, 2), exporter="torchscript")


def test_an_invalid_onnx_actor_is_refused_before_stitching(compiled: dict[str, Compiled]) -> None:
    broken = mlp_actor(10, 2).model
    broken.graph.initializer[0].CopyFrom(
        onnx.numpy_helper.from_array(np.zeros((10, 16), np.float64), "w1")
    )
    with pytest.raises(ActorError, match=r"actor ModelProto is not a valid ONNX model: .*MatMul"):
        compile_program(compiled["tutorial"].program_file.program, broken)


def test_an_actor_with_two_inputs_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 10]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 10]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    with pytest.raises(
        ActorError,
        match=r"actor ModelProto \(inputs \['a', 'b'\], outputs \['y'\]\) has 2 inputs "
        r"\['a', 'b'\]; the program binds the observation to one of \['a', 'b'\] and cannot tell "
        r"which\. Fix: bind each input with program\.actor",
    ):
        load_actor(model, n_obs=10)


def test_an_actor_with_a_symbolic_feature_size_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Tanh", ["obs"], ["actions"])],
        "sym",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, "n"])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, "n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    with pytest.raises(
        ActorError, match=r"input 'obs' has shape \[1, 'n'\]; expected \[batch, n\]"
    ):
        load_actor(model, n_obs=10)


def test_an_actor_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ActorError, match=r"actor must be a torch.nn.Module, .* got dict"):
        load_actor({"weights": 1}, n_obs=10)


# -- atomic write -------------------------------------------------------------------------------


def test_a_failed_compile_writes_nothing(compiled: dict[str, Compiled], tmp_path: Path) -> None:
    target = tmp_path / "policy.onnx"
    with pytest.raises(ActorError, match=r"observation size mismatch"):
        compile_program(
            compiled["quadruped"].program_file.program, mlp_actor(47, 12).model, output=target
        )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_compile_keeps_an_existing_file(
    compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"the policy deployed yesterday")
    with pytest.raises(ActorError, match=r"action size mismatch"):
        compile_program(
            compiled["quadruped"].program_file.program, mlp_actor(48, 11).model, output=target
        )
    assert target.read_bytes() == b"the policy deployed yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]


def test_a_successful_compile_replaces_the_file_and_leaves_no_temp_file(
    compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    example = compiled["tutorial"]
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"old")
    compile_program(example.program_file.program, example.actor.model, output=target)
    assert target.read_bytes() == example.path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]


def test_writing_into_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"folder '.*nowhere' does not exist"):
        write_atomic(b"x", tmp_path / "nowhere" / "policy.onnx")
    assert list(tmp_path.iterdir()) == []
