"""A batched build for evaluation: compile(batch=N|"dynamic"), and every tool on its files.

What each env of a batched file computes is compared with what the robot's file (batch 1),
compiled from the same program and actor, computes for that env alone: the robot file is
the one the rest of the suite proves right, so it is the independent expectation here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxscript import FLOAT, script
from onnxscript import opset20 as os_op

from compiler import compile_program
from compiler.build._batch import fit_actor_batch
from compiler.check._parity import check_parity
from compiler.cli._program_file import load_program_file
from compiler.tools._diff import diff_contracts
from compiler.tools._explain import render_explain
from compiler.tools._inspect import render_inspect
from exploy_dsl import (
    ActorError,
    DeclarationError,
    Program,
    ReferenceInterpreter,
    Runtime,
    SimError,
    StageError,
    UsageError,
    call_script,
    op,
    read_contract,
    term,
    trace,
)
from exploy_dsl.contract._batch import BATCH_KEY
from exploy_dsl.testing import FileRunner
from tests._support import EXAMPLES, dims, mlp_actor, random_feeds

Q0 = np.array([0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5], np.float32)
TOL = {"atol": 1e-5, "rtol": 1e-4}  # float32 kernels differ by batch (GEMV against GEMM)


def quadruped() -> Any:
    return load_program_file(EXAMPLES / "quadruped.py")


def compiled(tmp_path: Path, program: Any, actor: Any, batch: Any, name: str) -> Path:
    path = tmp_path / f"{name}.onnx"
    compile_program(program, actor, batch=batch, output=path)
    return path


def assert_envs_alone(
    batched: Path, robot: Path, envs: int, *, ticks: int = 19, reset_at: int = 11, seed: int = 0
) -> None:
    """Every env of ``batched`` (at ``envs`` envs) gives what ``robot`` gives it alone, over
    policy and apply-only steps, memory carried, and a reset; the inputs differ by env."""
    many = Runtime(batched, batch=envs if read_contract(batched).batch == "dynamic" else None)
    alone = [Runtime(robot) for _ in range(envs)]
    rng = np.random.default_rng(seed)
    for tick in range(ticks):
        if tick == reset_at:
            many.reset()
            for runtime in alone:
                runtime.reset()
        feeds = random_feeds(many.contract.inputs, rng)
        got = many.step(feeds)
        for env, runtime in enumerate(alone):
            want = runtime.step({k: v[env : env + 1] for k, v in feeds.items()})
            for name, value in want.items():
                # The envs' axis: the first (a recurrent state [layers, batch, hidden]: the 2nd).
                axis = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(got[name].shape, value.shape, strict=True))
                        if a != b
                    ),
                    0,
                )
                np.testing.assert_allclose(
                    np.take(got[name], [env], axis=axis),
                    value,
                    **TOL,
                    err_msg=f"tick {tick} env {env} {name}",
                )


# -- the robot's file stays what it was -----------------------------------------------------------


def test_batch_one_is_the_robot_file_byte_for_byte() -> None:
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2).model
    default = compile_program(loaded.program, actor)
    one = compile_program(loaded.program, actor, batch=1)
    assert one.SerializeToString(deterministic=True) == default.SerializeToString(
        deterministic=True
    )
    assert BATCH_KEY not in {p.key for p in default.metadata_props}
    assert [dims(v) for v in default.graph.input][1] == [1, 12]


@pytest.mark.parametrize("batch", [5, "dynamic"])
def test_a_batched_file_is_reproducible(batch: Any) -> None:
    loaded = quadruped()
    first, second = (
        compile_program(loaded.program, mlp_actor(48, 12, seed=2).model, batch=batch)
        for _ in range(2)
    )
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(
        deterministic=True
    )


def test_a_program_declared_with_a_dynamic_batch_compiles_to_a_dynamic_file() -> None:
    program = Program("dynamic", decimation=2, sim_dt=0.01, batch="dynamic")
    x = program.input("x", 3)
    m = program.memory("m", 2, init=[1.0, 2.0])
    y = program.output("y", 2)
    program.observations(lambda v: [term("x", v[x])])
    program.process_actions(n_actions=2)(lambda v, a: {m: a})
    program.apply_actions(lambda v: {y: v[m] * 1.0})
    assert program.batch_spec == "dynamic" and m.wire_shape == ("batch", 2)
    model = compile_program(program, mlp_actor(3, 2).model)
    assert dims(model.graph.input[1]) == ["batch", 3]


# -- the file's shape and record ------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "dim"), [(5, 5), ("dynamic", "batch")])
def test_every_wire_gets_the_batch_and_the_tick_stays_one_scalar(batch: Any, dim: Any) -> None:
    loaded = quadruped()
    model = compile_program(loaded.program, mlp_actor(48, 12, seed=2).model, batch=batch)
    shapes = {v.name: dims(v) for v in (*model.graph.input, *model.graph.output)}
    assert shapes.pop("ctx.step_count") == []
    assert shapes["obs"] == [dim, 48] and shapes["actions"] == [dim, 12]
    assert all(shape[0] == dim for shape in shapes.values()), shapes
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    target = inits["memory.joint_pos.processed_actions.in"]
    # A fixed batch holds every env's initial value; a dynamic one holds one env's.
    assert target.shape == ((5, 12) if batch == 5 else (1, 12))
    np.testing.assert_array_equal(target, np.broadcast_to(Q0, target.shape))
    record = read_contract(model).json_metadata(BATCH_KEY)
    assert record["size"] == batch and record["lockstep"] is True and record["robot"] is False
    assert "one scalar shared by every env" in record["step_count"]


# -- every env is computed as alone ---------------------------------------------------------------


@pytest.mark.parametrize("batch", [7, "dynamic"])
def test_each_env_of_the_quadruped_computes_what_the_robot_file_gives_it_alone(
    tmp_path: Path, batch: Any
) -> None:
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2).model  # an ONNX actor exported for batch 1: freed
    robot = compiled(tmp_path, loaded.program, actor, None, "robot")
    batched = compiled(tmp_path, loaded.program, actor, batch, "batched")
    for envs in (7,) if batch == 7 else (1, 3, 8):
        assert_envs_alone(batched, robot, envs)


@pytest.mark.parametrize("batch", [4, "dynamic"])
def test_history_a_phase_clock_and_a_normalizer_keep_envs_apart(tmp_path: Path, batch: Any) -> None:
    loaded = load_program_file(EXAMPLES / "gait.py")
    traced = trace(loaded.program)
    actor = mlp_actor(traced.n_obs, traced.n_actions, seed=3).model
    robot = compiled(tmp_path, loaded.program, actor, None, "robot")
    batched = compiled(tmp_path, loaded.program, actor, batch, "batched")
    assert_envs_alone(batched, robot, 4, ticks=23, reset_at=9)


def test_the_reference_interpreter_keeps_envs_apart() -> None:
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2)
    many = ReferenceInterpreter(loaded.program, actor, batch=4)
    alone = [ReferenceInterpreter(loaded.program, actor) for _ in range(4)]
    rng = np.random.default_rng(1)
    inputs = many.traced.program.inputs
    for _ in range(9):
        feeds = {p.name: rng.normal(size=p.file_shape).astype(np.float32) for p in inputs}
        got = many.step(feeds)
        for env, reference in enumerate(alone):
            want = reference.step({k: v[env : env + 1] for k, v in feeds.items()})
            for name, value in want.items():
                np.testing.assert_allclose(got[name][env : env + 1], value, **TOL)


# -- parity at the batch --------------------------------------------------------------------------


@pytest.mark.parametrize(("batch", "envs"), [(5, None), ("dynamic", 3)])
def test_parity_holds_at_the_batch_with_every_env_fed_its_own_inputs(
    tmp_path: Path, batch: Any, envs: int | None
) -> None:
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2)
    path = compiled(tmp_path, loaded.program, actor.model, batch, "batched")
    report = check_parity(path, loaded.program, actor.model, steps=60, batch=envs)
    assert report.ok, report.render()
    assert report.envs == (envs or 5)
    joints = report.stream.inputs["obj.robot.joints.pos"]
    assert joints.shape == (60, report.envs, 12)
    assert not np.allclose(joints[:, 0], joints[:, 1])  # envs are fed different inputs
    assert f"{report.envs} envs in lockstep" in report.render()


def test_parity_of_a_batched_file_finds_a_wrong_env(tmp_path: Path) -> None:
    """The checker compares every env: a file whose env 2 starts elsewhere fails there."""
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2).model
    model = compile_program(loaded.program, actor, batch=4)
    init = next(i for i in model.graph.initializer if i.name.endswith("processed_actions.in"))
    value = numpy_helper.to_array(init).copy()
    value[2, 4] += 0.5
    init.CopyFrom(numpy_helper.from_array(value, init.name))
    path = tmp_path / "wrong.onnx"
    onnx.save(model, str(path))
    report = check_parity(path, loaded.program, actor, steps=12)
    assert not report.ok
    assert "memory.joint_pos.processed_actions.out[2, 4]" in report.render()


# -- what a batch-1 assumption in a stage gives ---------------------------------------------------


def _program(observations: Any) -> tuple[Program, Any]:
    program = Program("mixing", decimation=2, sim_dt=0.01)
    x = program.input("x", 3)
    last = program.memory("last", 2)
    out = program.output("y", 2)
    program.observations(lambda v: observations(v, x))
    program.process_actions(n_actions=2)(lambda v, a: {last: a})
    program.apply_actions(lambda v: {out: v[last] * 2.0})
    return program, mlp_actor(3, 2, seed=4).model


def test_a_stage_that_mixes_envs_is_refused_naming_the_stage(tmp_path: Path) -> None:
    def centred(v: Any, x: Any) -> Any:  # the mean over axis 0: the one env at batch 1
        return [term("x", v[x] - op.reduce_mean(v[x], op.const(np.array([0])), keepdims=1))]

    program, actor = _program(centred)
    compile_program(program, actor)  # the robot's file: one env, nothing to mix
    out = tmp_path / "mixed.onnx"
    with pytest.raises(StageError, match=r"observations stage .* assumes batch 1 or mixes envs"):
        compile_program(program, actor, batch=4, output=out)
    assert not out.exists()


def test_a_write_that_reads_env_zero_is_refused_naming_apply_actions() -> None:
    program = Program("first_env", decimation=2, sim_dt=0.01)
    x = program.input("x", 3)
    out = program.output("y", 3)
    last = program.memory("last", 2)
    program.observations(lambda v: [term("x", v[x])])
    program.process_actions(n_actions=2)(lambda v, a: {last: a})
    program.apply_actions(lambda v: {out: v[x][0:1] + v[x] * 0.0})  # env 0, broadcast
    found = r"gives env \d+ at tick 0 y\[0\] = .*: apply_actions stage"
    with pytest.raises(StageError, match=found):
        compile_program(program, mlp_actor(3, 2).model, batch=3)


def test_a_reshape_written_for_batch_one_fails_at_the_users_line() -> None:
    def flat(v: Any, x: Any) -> Any:
        return [term("x", op.reshape(v[x], op.const(np.array([1, -1]))))]  # the line named

    program, actor = _program(flat)
    line = flat.__code__.co_firstlineno + 1
    with pytest.raises(
        StageError,
        match=rf"at test_batch.py:{line}\) term 'x' has shape \[1, 12\]; expected \[4, n\]",
    ):
        compile_program(program, actor, batch=4)
    with pytest.raises(StageError, match=r"term 'x' has shape \[1, \?\]; expected \[batch, n\]"):
        compile_program(program, actor, batch="dynamic")


def test_a_script_typed_for_one_env_is_refused_at_the_call() -> None:
    loaded = load_program_file(EXAMPLES / "tutorial.py")
    with pytest.raises(
        StageError,
        match=r"tutorial.py:\d+:\d+ .*'bar_plus_twice_baz' declares input 'b' with shape \[1, 2\]",
    ):
        compile_program(loaded.program, mlp_actor(10, 2).model, batch=3)


ANY_ENVS = FLOAT["N", 2]  # a named first dimension: any batch


@script()
def _twice_plus(b: ANY_ENVS, z: ANY_ENVS) -> ANY_ENVS:
    two = os_op.Constant(value_float=2.0)
    return os_op.Add(b, os_op.Mul(two, z))


def test_a_script_with_a_named_batch_runs_at_every_batch(tmp_path: Path) -> None:
    program = Program("scripted", decimation=2, sim_dt=0.01)
    b, z = program.input("b", 2), program.input("z", 2)
    last = program.memory("last", 2)
    out = program.output("y", 2)
    program.observations(lambda v: [term("bz", call_script(_twice_plus, v[b], v[z]))])
    program.process_actions(n_actions=2)(lambda v, a: {last: a})
    program.apply_actions(lambda v: {out: v[last] + 1.0})
    actor = mlp_actor(2, 2, seed=5).model
    robot = compiled(tmp_path, program, actor, None, "robot")
    for batch, envs in ((3, 3), ("dynamic", 4)):
        assert_envs_alone(compiled(tmp_path, program, actor, batch, f"b{batch}"), robot, envs)


def test_memory_that_starts_differently_in_each_env_cannot_be_rebatched() -> None:
    program = Program("envs", decimation=1, sim_dt=0.01, batch=2)
    program.memory("m", 2, init=[[0.0, 1.0], [2.0, 3.0]])
    with pytest.raises(DeclarationError, match=r"memory 'm' starts from a different value"):
        program.with_batch(8)


# -- the actor at the batch -----------------------------------------------------------------------


def _reshaping_actor() -> onnx.ModelProto:
    """obs [1, 4] -> actions [1, 2] through a Reshape to the fixed shape [1, 4]."""
    w = np.arange(8, dtype=np.float32).reshape(4, 2) / 10
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["obs", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["actions"]),
        ],
        "reshaping",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.array([1, 4]), "shape"), numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def test_an_onnx_actor_for_batch_one_that_cannot_run_batched_is_refused() -> None:
    program = Program("reshaping", decimation=1, sim_dt=0.01)
    x = program.input("x", 4)
    out = program.output("y", 2)
    program.observations(lambda v: [term("x", v[x])])
    last = program.memory("a", 2)
    program.process_actions(n_actions=2)(lambda v, a: {last: a})
    program.apply_actions(lambda v: {out: v[last]})
    compile_program(program, _reshaping_actor())  # fine for the robot
    with pytest.raises(
        ActorError,
        match=r"fixed batch \('obs' \[1, 4\].*re-export the actor with a dynamic batch axis",
    ):
        compile_program(program, _reshaping_actor(), batch=4)


def test_an_onnx_actor_with_a_symbolic_batch_is_used_as_it_is() -> None:
    actor = mlp_actor(48, 12, seed=2).model
    for value in (*actor.graph.input, *actor.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    signature = trace(quadruped().program.with_batch(6)).actor_signature
    assert fit_actor_batch(actor, signature, 6, "test") is actor
    freed = fit_actor_batch(mlp_actor(48, 12, seed=2).model, signature, 6, "test")
    assert dims(freed.graph.input[0]) == ["batch", 48]


# -- running, inspecting, diffing, simulating -----------------------------------------------------


def test_a_runtime_takes_the_envs_of_a_dynamic_file_and_refuses_another_batch(
    tmp_path: Path,
) -> None:
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2).model
    dynamic = compiled(tmp_path, loaded.program, actor, "dynamic", "dynamic")
    fixed = compiled(tmp_path, loaded.program, actor, 5, "fixed")
    with pytest.raises(UsageError, match=r"dynamic batch: it runs any number of envs"):
        Runtime(dynamic)
    with pytest.raises(UsageError, match=r"compiled for batch 5"):
        Runtime(fixed, batch=3)
    runtime = Runtime(dynamic, batch=6)
    assert runtime.memory["memory.joint_pos.processed_actions.in"].shape == (6, 12)
    outputs = runtime.step(random_feeds(runtime.contract.inputs, np.random.default_rng(0)))
    assert outputs["output.joint_targets.joint_pos.effort"].shape == (6, 12)
    runner = FileRunner(dynamic, batch=2)  # the testing kit's runner takes it too
    assert runner.step({}).outputs["output.joint_targets.joint_pos.pos"].shape == (2, 12)


@pytest.mark.parametrize("batch", [5, "dynamic"])
def test_inspect_explain_and_diff_say_the_file_is_for_evaluation(
    tmp_path: Path, batch: Any
) -> None:
    loaded = quadruped()
    actor = mlp_actor(48, 12, seed=2).model
    contract = read_contract(compiled(tmp_path, loaded.program, actor, batch, "batched"))
    robot = read_contract(compiled(tmp_path, loaded.program, actor, None, "robot"))
    dim = "5" if batch == 5 else "'batch'"
    for text in (render_inspect(contract, "f"), render_explain(contract, "f")):
        assert f"batch: {batch}" in text and "not for exploy's controller" in text
    assert f"obj.robot.joints.pos  float32 [{dim}, 12]" in render_inspect(contract, "f")
    found = diff_contracts(robot, contract)
    assert any(d.breaks and d.topic == "batch" for d in found)
    assert "batch:" not in render_inspect(robot, "f")  # the robot's file says nothing new


def test_sim_refuses_a_batched_file(tmp_path: Path) -> None:
    from exploy_dsl.sim import bind

    loaded = quadruped()
    path = compiled(tmp_path, loaded.program, mlp_actor(48, 12, seed=2).model, "dynamic", "d")
    with pytest.raises(SimError, match=r"batch dynamic: the simulation drives one robot"):
        bind(read_contract(path), None)


def test_a_self_test_is_for_the_robot_file() -> None:
    from compiler.check._inputs import random_stream

    loaded = quadruped()
    stream = random_stream(loaded.program, 4)
    with pytest.raises(UsageError, match=r"a self-test is for a robot file"):
        compile_program(loaded.program, mlp_actor(48, 12).model, batch=4, self_test=stream)


@pytest.mark.parametrize("bad", [0, -3, "many", 2.5, True])
def test_a_batch_is_an_int_or_dynamic(bad: Any) -> None:
    with pytest.raises(UsageError, match=r"compile batch must be an int >= 1 .* or 'dynamic'"):
        compile_program(quadruped().program, mlp_actor(48, 12).model, batch=bad)


# -- the command line -----------------------------------------------------------------------------


def test_compile_check_and_run_take_a_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from compiler.cli._main import main

    actor = tmp_path / "actor.onnx"
    onnx.save(mlp_actor(48, 12, seed=2).model, str(actor))
    out = tmp_path / "eval.onnx"
    program = str(EXAMPLES / "quadruped.py")
    assert (
        main(["compile", program, "--actor", str(actor), "--batch", "dynamic", "-o", str(out)]) == 0
    )
    assert "batch dynamic: a batched file is for evaluation" in capsys.readouterr().out
    assert (
        main(["check", str(out), program, "--actor", str(actor), "--batch", "2", "--steps", "40"])
        == 0
    )
    assert "2 envs in lockstep" in capsys.readouterr().out
    assert main(["run", str(out), "--batch", "3", "--ticks", "2"]) == 0
    assert "3 envs in lockstep" in capsys.readouterr().out
    assert main(["run", str(out), "--ticks", "2"]) == 2
    assert "give the batch" in capsys.readouterr().err
    assert main(["compile", program, "--actor", str(actor), "--batch", "0", "-o", str(out)]) == 2
    assert "--batch must be an int >= 1" in capsys.readouterr().err


# -- torch actors ---------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize(("batch", "dim"), [(4, 4), ("dynamic", "batch")])
def test_a_torch_actor_is_exported_at_the_batch(tmp_path: Path, batch: Any, dim: Any) -> None:
    loaded = quadruped()
    module = loaded.default_actor()
    robot = compiled(tmp_path, loaded.program, module, None, "robot")
    batched = compiled(tmp_path, loaded.program, module, batch, "batched")
    record = read_contract(batched).json_metadata("exploy_dsl.actor")
    assert record["inputs"][0]["shape"] == [dim, 48]
    assert_envs_alone(batched, robot, 4)


@pytest.mark.torch
@pytest.mark.parametrize("batch", [3, "dynamic"])
def test_a_recurrent_state_gets_the_batch_on_its_own_axis(tmp_path: Path, batch: Any) -> None:
    loaded = load_program_file(EXAMPLES / "quadruped_recurrent.py")
    module = loaded.default_actor()
    robot = compiled(tmp_path, loaded.program, module, None, "robot")
    batched = compiled(tmp_path, loaded.program, module, batch, "batched")
    h = next(w for w in read_contract(batched).memory if w.name == "memory.policy.h.in")
    assert h.declared_shape[1] == (3 if batch == 3 else "batch")
    assert_envs_alone(batched, robot, 3)
