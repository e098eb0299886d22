"""Runtime and read_contract: a compiled file run and checked from the file alone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from compiler import compile_program
from exploy_dsl import (
    FileContractError,
    Program,
    Runtime,
    RuntimeInputError,
    Wire,
    load_model,
    op,
    read_contract,
)
from tests._support import CliExample, Compiled, mlp_actor, random_feeds, session

Q0 = np.float32([[0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5]])


@pytest.fixture(scope="module")
def typed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A program with int32 and bool inputs, an int32 memory and a float memory."""
    program = Program("typed", decimation=2, sim_dt=0.01)
    count = program.input("count", 2, dtype="int32")
    flag = program.input("cmd.boolean.walk", 1, dtype="bool")
    x = program.input("x", 2)
    ticks = program.memory("ticks", 1, dtype="int32", init=7)
    last = program.memory("last", 2, init=[1.0, -1.0])
    out = program.output("out", 2)
    walking = program.output("walking", 1, dtype="bool")

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("count", op.cast(v[count], to=np.float32)), ("x", v[x]), ("last", v[last])]

    @program.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @program.apply_actions
    def apply_actions(v: Any) -> dict[Any, Any]:
        return {out: v[last] + v[x], walking: op.identity(v[flag]), ticks: v[ticks] + 1}

    path = tmp_path_factory.mktemp("typed") / "typed.onnx"
    compile_program(program, mlp_actor(6, 2, seed=4).model, output=path)
    return path


def quadruped_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    wires = [
        Wire("obj.robot.joints.pos", (1, 12), "float32"),
        Wire("obj.robot.joints.vel", (1, 12), "float32"),
        Wire("obj.robot.base.lin_vel_b_rt_w_in_b", (1, 3), "float32"),
        Wire("obj.robot.base.ang_vel_b_rt_w_in_b", (1, 3), "float32"),
        Wire("obj.robot.base.w_Q_b", (1, 4), "float32"),
        Wire("cmd.se2_velocity.base_velocity", (1, 3), "float32"),
    ]
    return random_feeds(wires, np.random.default_rng(seed))


def edited(model: onnx.ModelProto, edit: Callable[[onnx.ModelProto], object]) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    edit(copy)
    return copy


@pytest.fixture
def quadruped(compiled: dict[str, Compiled]) -> Compiled:
    return compiled["quadruped"]


# -- from the file alone ------------------------------------------------------------------------


def test_the_runtime_reads_everything_from_the_file(quadruped: Compiled) -> None:
    runtime = Runtime(quadruped.path)
    contract = runtime.contract
    assert runtime.input_names == tuple(quadruped_inputs())
    assert contract.memory_names == ("actions", "joint_pos.processed_actions")
    assert [w.name for w in contract.outputs] == [
        "output.joint_targets.joint_pos.pos",
        "output.joint_targets.joint_pos.vel",
        "output.joint_targets.joint_pos.effort",
    ]
    assert (contract.actions.shape, contract.obs.shape) == ((1, 12), (1, 48))
    assert (contract.decimation, contract.sim_dt, contract.update_rate) == (4, 0.005, 200.0)
    assert (contract.opset, contract.ir_version) == (20, 10)
    np.testing.assert_array_equal(runtime.memory["memory.joint_pos.processed_actions.in"], Q0)
    np.testing.assert_array_equal(runtime.memory["memory.actions.in"], np.zeros((1, 12)))
    assert contract.json_metadata("base_names") == {"robot": "base"}


@pytest.mark.parametrize("form", ["path", "str", "bytes", "model"])
def test_the_runtime_takes_a_path_bytes_or_a_model(quadruped: Compiled, form: str) -> None:
    source = {
        "path": quadruped.path,
        "str": str(quadruped.path),
        "bytes": quadruped.path.read_bytes(),
        "model": quadruped.model,
    }[form]
    out = Runtime(source).step(quadruped_inputs())  # type: ignore[arg-type]
    reference = Runtime(quadruped.path).step(quadruped_inputs())
    for name, value in reference.items():
        np.testing.assert_array_equal(out[name], value)


def test_reset_restores_the_initial_values_and_the_tick(quadruped: Compiled) -> None:
    runtime = Runtime(quadruped.path)
    initial = {k: v.copy() for k, v in runtime.memory.items()}
    assert runtime.tick == 0
    for k in range(6):
        runtime.step(quadruped_inputs(k))
    assert runtime.tick == 6
    assert not np.array_equal(runtime.memory["memory.actions.in"], initial["memory.actions.in"])
    runtime.reset()
    assert runtime.tick == 0
    assert sorted(runtime.memory) == sorted(initial)
    for name, value in initial.items():
        np.testing.assert_array_equal(runtime.memory[name], value)


def test_reset_gives_the_same_outputs_again(quadruped: Compiled) -> None:
    runtime = Runtime(quadruped.path)
    first = [runtime.step(quadruped_inputs(k)) for k in range(5)]
    runtime.reset()
    again = [runtime.step(quadruped_inputs(k)) for k in range(5)]
    for a, b in zip(first, again, strict=True):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_the_tick_counter_starts_at_first_tick_and_counts_calls(quadruped: Compiled) -> None:
    runtime = Runtime(quadruped.path, first_tick=1)
    assert runtime.tick == 1
    out = runtime.step(quadruped_inputs())
    assert runtime.tick == 2
    assert not out["actions"].any()  # tick 1 is an apply-only step
    runtime.reset()
    assert runtime.tick == 1


def test_memory_is_fed_back_by_the_runtime(quadruped: Compiled) -> None:
    runtime = Runtime(quadruped.path)
    out = runtime.step(quadruped_inputs())
    np.testing.assert_array_equal(runtime.memory["memory.actions.in"], out["memory.actions.out"])


def test_int32_and_bool_wires_cross_the_runtime(typed_file: Path) -> None:
    runtime = Runtime(typed_file)
    assert [(w.name, w.dtype) for w in runtime.contract.inputs] == [
        ("count", "int32"),
        ("cmd.boolean.walk", "bool"),
        ("x", "float32"),
    ]
    assert runtime.memory["memory.ticks.in"].dtype == np.int32
    inputs = {
        "count": np.array([[3, -2]], np.int32),
        "cmd.boolean.walk": np.array([[True]]),
        "x": np.float32([[0.5, 0.5]]),
    }
    out = runtime.step(inputs)
    assert out["walking"].dtype == np.bool_ and out["walking"][0, 0]
    np.testing.assert_array_equal(out["memory.ticks.out"], [[8]])
    out = runtime.step(inputs)
    np.testing.assert_array_equal(out["memory.ticks.out"], [[9]])
    runtime.reset()
    np.testing.assert_array_equal(runtime.memory["memory.ticks.in"], [[7]])


# -- step() inputs ------------------------------------------------------------------------------


def test_a_missing_input_is_named(quadruped: Compiled) -> None:
    inputs = quadruped_inputs()
    del inputs["obj.robot.base.w_Q_b"]
    with pytest.raises(
        RuntimeInputError,
        match=r"missing input\(s\) 'obj.robot.base.w_Q_b'; every input is needed at every tick",
    ):
        Runtime(quadruped.path).step(inputs)


def test_an_unknown_input_is_named_with_the_known_ones(quadruped: Compiled) -> None:
    inputs = quadruped_inputs()
    inputs["obj.robot.joints.effort"] = np.zeros((1, 12), np.float32)
    with pytest.raises(
        RuntimeInputError,
        match=r"unknown input\(s\) 'obj.robot.joints.effort'; the file's inputs are "
        r"obj.robot.joints.pos, obj.robot.joints.vel, ",
    ):
        Runtime(quadruped.path).step(inputs)


@pytest.mark.parametrize("shape", [(12,), (1, 11), (2, 12), (1, 12, 1)])
def test_a_mis_shaped_input_is_named_with_both_shapes(quadruped: Compiled, shape: Any) -> None:
    inputs = quadruped_inputs()
    inputs["obj.robot.joints.vel"] = np.zeros(shape, np.float32)
    expected = str(list(shape)).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(
        RuntimeInputError,
        match=rf"input 'obj.robot.joints.vel' has shape {expected}; expected \[1, 12\]",
    ):
        Runtime(quadruped.path).step(inputs)


@pytest.mark.parametrize(
    "name", ["ctx.step_count", "memory.actions.in", "memory.joint_pos.processed_actions.in"]
)
def test_feeding_the_tick_or_memory_by_hand_is_refused_with_a_hint(
    quadruped: Compiled, name: str
) -> None:
    inputs = quadruped_inputs()
    inputs[name] = np.zeros((1, 12), np.float32) if name.startswith("memory") else np.int32(3)
    with pytest.raises(
        RuntimeInputError,
        match=rf"unknown input\(s\) '{name}'.*The runtime feeds ctx.step_count and memory itself",
    ):
        Runtime(quadruped.path).step(inputs)


def test_a_ragged_list_input_is_named(quadruped: Compiled) -> None:
    # np.asarray's "inhomogeneous shape" ValueError escaped as a traceback.
    inputs: dict[str, Any] = quadruped_inputs()
    inputs["obj.robot.base.w_Q_b"] = [[1.0, 0.0], [0.0]]
    with pytest.raises(
        RuntimeInputError,
        match=r"input 'obj.robot.base.w_Q_b' cannot be read as an array \(.*\); expected "
        r"float32\[1, 4\]\.",
    ):
        Runtime(quadruped.path).step(inputs)


def test_step_takes_a_mapping(quadruped: Compiled) -> None:
    with pytest.raises(RuntimeInputError, match=r"step\(\) takes a dict of input name -> array"):
        Runtime(quadruped.path).step([np.zeros((1, 12))])  # type: ignore[arg-type]


def test_float64_inputs_and_nested_lists_are_cast(quadruped: Compiled) -> None:
    inputs = quadruped_inputs()
    as_float64 = {k: v.astype(np.float64) for k, v in inputs.items()}
    as_float64["obj.robot.base.w_Q_b"] = inputs["obj.robot.base.w_Q_b"].tolist()
    expected = Runtime(quadruped.path).step(inputs)
    got = Runtime(quadruped.path).step(as_float64)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)


def test_a_float_into_an_int32_input_is_refused(typed_file: Path) -> None:
    inputs = {
        "count": np.array([[3.0, 1.5]]),
        "cmd.boolean.walk": np.array([[False]]),
        "x": np.zeros((1, 2), np.float32),
    }
    with pytest.raises(
        RuntimeInputError, match=r"input 'count' has dtype float64; expected int32\. Fix: pass"
    ):
        Runtime(typed_file).step(inputs)


def test_an_int64_that_fits_is_cast_but_a_number_into_bool_is_refused(typed_file: Path) -> None:
    runtime = Runtime(typed_file)
    inputs = {
        "count": np.array([[3, 1]], np.int64),
        "cmd.boolean.walk": np.array([[True]]),
        "x": np.zeros((1, 2), np.float32),
    }
    runtime.step(inputs)
    inputs["cmd.boolean.walk"] = np.array([[1]], np.int32)
    with pytest.raises(RuntimeInputError, match=r"input 'cmd.boolean.walk' has dtype int32"):
        runtime.step(inputs)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileContractError, match=r"file '.*nothing.onnx' does not exist"):
        Runtime(tmp_path / "nothing.onnx")


def test_a_file_that_is_not_onnx_is_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.onnx"
    path.write_text("not a model")
    with pytest.raises(FileContractError, match=r"is not a readable ONNX model"):
        load_model(path)


@pytest.mark.parametrize("form", ["path", "str", "bytes", "model"])
def test_read_contract_takes_a_path_bytes_or_a_model(quadruped: Compiled, form: str) -> None:
    source = {
        "path": quadruped.path,
        "str": str(quadruped.path),
        "bytes": quadruped.path.read_bytes(),
        "model": quadruped.model,
    }[form]
    contract = read_contract(source)
    assert contract.decimation == 4
    assert contract.memory_names == ("actions", "joint_pos.processed_actions")


def test_read_contract_names_a_missing_path_and_a_wrong_type(tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileContractError, match=r"file '.*nope\.onnx' does not exist\. Fix"):
        read_contract(missing)
    with pytest.raises(
        FileContractError,
        match=r"expected a path to an \.onnx file, bytes or an onnx\.ModelProto, got int 42",
    ):
        read_contract(42)  # type: ignore[arg-type]


def test_read_contract_of_a_path_names_the_path_in_errors(
    quadruped: Compiled, tmp_path: Path
) -> None:
    broken = edited(quadruped.model, set_metadata("decimation", "zero"))
    path = tmp_path / "broken.onnx"
    onnx.save(broken, str(path))
    with pytest.raises(
        FileContractError,
        match=rf"^{re.escape(repr(str(path)))}: metadata key .decimation. = .zero.",
    ):
        read_contract(path)


# -- read_contract refuses broken files ---------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["exploy_version", "update_rate", "decimation", "sim_dt", "obs_term_names"]
)
def test_a_missing_metadata_key_is_named(quadruped: Compiled, key: str) -> None:
    def drop(model: onnx.ModelProto) -> None:
        kept = [p for p in model.metadata_props if p.key != key]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)

    with pytest.raises(FileContractError, match=rf"lacks required metadata key\(s\) '{key}'"):
        read_contract(edited(quadruped.model, drop))


def set_metadata(key: str, value: str) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        (prop,) = [p for p in model.metadata_props if p.key == key]
        prop.value = value

    return edit


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("update_rate", '"200.0"', r"'update_rate' = '\"200.0\"' is not a plain float .*NOT JSON"),
        ("decimation", "four", r"'decimation' = 'four' is not a plain int"),
        ("decimation", "0", r"decimation=0, .* expected decimation >= 1"),
        ("sim_dt", "-0.005", r"sim_dt=-0.005"),
        ("exploy_version", "0.1.0", r"'exploy_version' must be a JSON string \(with quotes\)"),
    ],
)
def test_a_badly_encoded_metadata_value_is_named(
    quadruped: Compiled, key: str, value: str, match: str
) -> None:
    with pytest.raises(FileContractError, match=match):
        read_contract(edited(quadruped.model, set_metadata(key, value)))


def test_a_symbolic_dimension_is_refused(quadruped: Compiled) -> None:
    def symbolic(model: onnx.ModelProto) -> None:
        (value,) = [v for v in model.graph.input if v.name == "obj.robot.joints.pos"]
        value.type.tensor_type.shape.dim[0].dim_param = "batch"

    with pytest.raises(
        FileContractError,
        match=r"input 'obj.robot.joints.pos' has a symbolic dimension 'batch'; exploy's "
        r"controller needs static shapes",
    ):
        read_contract(edited(quadruped.model, symbolic))


def test_a_memory_in_without_out_is_refused(quadruped: Compiled) -> None:
    def drop_out(model: onnx.ModelProto) -> None:
        kept = [o for o in model.graph.output if o.name != "memory.actions.out"]
        del model.graph.output[:]
        model.graph.output.extend(kept)

    with pytest.raises(
        FileContractError,
        match=r"memory input 'memory.actions.in' has no output 'memory.actions.out'",
    ):
        read_contract(edited(quadruped.model, drop_out))


def test_a_memory_out_without_in_is_refused(quadruped: Compiled) -> None:
    def drop_in(model: onnx.ModelProto) -> None:
        kept = [i for i in model.graph.input if i.name != "memory.actions.in"]
        del model.graph.input[:]
        model.graph.input.extend(kept)

    with pytest.raises(
        FileContractError, match=r"memory output\(s\) 'memory.actions.out' have no '.in' input"
    ):
        read_contract(edited(quadruped.model, drop_in))


def test_a_memory_without_its_initial_value_is_refused(quadruped: Compiled) -> None:
    def drop_init(model: onnx.ModelProto) -> None:
        kept = [i for i in model.graph.initializer if i.name != "memory.actions.in"]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)

    with pytest.raises(
        FileContractError, match=r"memory 'memory.actions.in' has no initializer holding"
    ):
        read_contract(edited(quadruped.model, drop_init))


def test_an_initializer_on_an_input_other_than_memory_is_refused(quadruped: Compiled) -> None:
    def default_joint_pos(model: onnx.ModelProto) -> None:
        zeros = np.zeros((1, 12), np.float32)
        model.graph.initializer.append(numpy_helper.from_array(zeros, "obj.robot.joints.pos"))

    with pytest.raises(
        FileContractError,
        match=r"input 'obj.robot.joints.pos' has an initializer; exploy's controller uses an "
        r"input's initializer only on the first call after a reset",
    ):
        read_contract(edited(quadruped.model, default_joint_pos))


def test_memory_in_and_out_of_different_shapes_are_refused(quadruped: Compiled) -> None:
    def widen(model: onnx.ModelProto) -> None:
        (value,) = [o for o in model.graph.output if o.name == "memory.actions.out"]
        value.type.tensor_type.shape.dim[1].dim_value = 13

    with pytest.raises(FileContractError, match=r"memory 'memory.actions.in' is float32\[1, 12\]"):
        read_contract(edited(quadruped.model, widen))


def test_a_float64_input_is_refused(quadruped: Compiled) -> None:
    def to_double(model: onnx.ModelProto) -> None:
        (value,) = [v for v in model.graph.input if v.name == "obj.robot.joints.vel"]
        value.type.tensor_type.elem_type = TensorProto.DOUBLE

    with pytest.raises(
        FileContractError,
        match=r"input 'obj.robot.joints.vel' has dtype DOUBLE; only float32, int32 and bool",
    ):
        read_contract(edited(quadruped.model, to_double))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.graph.input.remove(m.graph.input[0]),
        lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", TensorProto.INT64),
        lambda m: (
            m.graph.input[0]
            .type.tensor_type.shape.dim.add()
            .CopyFrom(onnx.TensorShapeProto.Dimension(dim_value=1))
        ),
    ],
    ids=["missing", "int64", "not-a-scalar"],
)
def test_a_file_without_an_int32_scalar_step_count_is_refused(
    quadruped: Compiled, edit: Callable[[onnx.ModelProto], object]
) -> None:
    with pytest.raises(FileContractError, match=r"(no int32 scalar input 'ctx.step_count'|INT64)"):
        read_contract(edited(quadruped.model, edit))


def test_a_file_without_actions_or_obs_is_refused(quadruped: Compiled) -> None:
    def drop_obs(model: onnx.ModelProto) -> None:
        model.graph.output.remove(model.graph.output[1])

    with pytest.raises(FileContractError, match=r"has no 'obs' output"):
        read_contract(edited(quadruped.model, drop_obs))


def test_the_runtime_refuses_a_broken_file_before_running(quadruped: Compiled) -> None:
    broken = edited(quadruped.model, set_metadata("update_rate", '"200.0"'))
    with pytest.raises(FileContractError, match=r"'update_rate'"):
        Runtime(broken)


# -- the same outputs as a plain onnxruntime loop, bit for bit --------------------------------


def plain_loop(
    path: Path, inputs: list[dict[str, np.ndarray]], resets: set[int], first_tick: int
) -> list[dict[str, np.ndarray]]:
    """What a hand-written loop computes: session.run on fresh feeds, memory carried in NumPy,
    initial values from onnx's own reading of the file."""
    model = onnx.load(str(path))
    initial = {
        i.name: numpy_helper.to_array(i)
        for i in model.graph.initializer
        if i.name.startswith("memory.") and i.name.endswith(".in")
    }
    sess = session(path)
    names = [o.name for o in sess.get_outputs()]
    results, memory, tick = [], dict(initial), first_tick
    for t, feeds in enumerate(inputs):
        if t in resets:
            memory, tick = dict(initial), first_tick
        fed = {k: np.asarray(v, np.float32) if np.asarray(v).dtype == np.float64 else v
               for k, v in feeds.items()}  # fmt: skip
        fed.update(memory)
        fed["ctx.step_count"] = np.array(tick, np.int32)
        values = dict(zip(names, sess.run(names, fed), strict=True))
        memory = {k: values[k[: -len(".in")] + ".out"] for k in initial}
        results.append(values)
        tick += 1
    return results


def assert_runtime_is_the_plain_loop(path: Path, first_tick: int = 0, ticks: int = 60) -> None:
    runtime = Runtime(path, first_tick=first_tick)
    rng = np.random.default_rng(7)
    inputs = [random_feeds(runtime.contract.inputs, rng) for _ in range(ticks)]
    for t in range(0, ticks, 3):  # float64 and nested lists are cast by the runtime
        inputs[t] = {
            k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in inputs[t].items()
        }
    resets = {17, 18, 41}
    got = []
    for t, feeds in enumerate(inputs):
        if t in resets:
            runtime.reset()
        got.append(runtime.step(feeds))
    # Compared after the whole run: an output of one tick is never changed by a later step.
    expected = plain_loop(path, inputs, resets, first_tick)
    assert len(got) == len(expected)
    for t, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert list(a) == list(b), t
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, (t, name)
            assert a[name].tobytes() == b[name].tobytes(), (t, name)
    last = expected[-1]
    for name, value in runtime.memory.items():
        assert value.tobytes() == last[name[: -len(".in")] + ".out"].tobytes()


@pytest.mark.parametrize("first_tick", [0, 1])
@pytest.mark.parametrize("name", ["tutorial", "quadruped"])
def test_the_runtime_computes_what_a_plain_session_loop_does(
    compiled: dict[str, Compiled], name: str, first_tick: int
) -> None:
    assert_runtime_is_the_plain_loop(compiled[name].path, first_tick)


def test_an_int32_and_bool_file_runs_as_a_plain_session_loop(typed_file: Path) -> None:
    assert_runtime_is_the_plain_loop(typed_file)


@pytest.mark.torch
@pytest.mark.parametrize(
    "stem", ["tutorial_module", "tutorial_lstm", "quadruped_recurrent", "reference_mode", "gait"]
)
def test_every_example_runs_as_a_plain_session_loop(
    example: Callable[[str], CliExample], stem: str
) -> None:
    assert_runtime_is_the_plain_loop(example(stem).out)


def test_memory_given_by_hand_is_fed_on_the_next_step(quadruped: Compiled) -> None:
    runtime = Runtime(quadruped.path, first_tick=1)  # tick 1: apply-only, the target held
    runtime.memory["memory.joint_pos.processed_actions.in"] = np.full((1, 12), 0.5, np.float32)
    out = runtime.step(quadruped_inputs())
    np.testing.assert_array_equal(out["output.joint_targets.joint_pos.pos"], np.full((1, 12), 0.5))


def test_a_memory_removed_by_hand_is_fed_from_the_file_s_initial_value(
    quadruped: Compiled,
) -> None:
    runtime = Runtime(quadruped.path, first_tick=1)
    runtime.step(quadruped_inputs(1))
    runtime.memory["memory.joint_pos.processed_actions.in"] = np.full((1, 12), 0.5, np.float32)
    runtime.step(quadruped_inputs(2))  # the feeds now hold 0.5
    del runtime.memory["memory.joint_pos.processed_actions.in"]
    out = runtime.step(quadruped_inputs(3))  # onnxruntime falls back to the initializer: q0
    np.testing.assert_array_equal(out["output.joint_targets.joint_pos.pos"], Q0)
