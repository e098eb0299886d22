"""ReferenceInterpreter: a program stepped from its stages, its actor, its owned memory."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import pytest

from exploy_dsl import (
    Actor,
    ActorError,
    ActorSignature,
    Program,
    ReferenceInterpreter,
    RuntimeInputError,
    op,
)
from exploy_dsl.reference._graph_interpreter import GraphInterpreter, GraphInterpreterError
from tests._support import mlp_actor

HOLD = np.float32([[0.5, -0.5]])


def hold_program(decimation: int = 2) -> Program:
    """obs = [x, m]; policy step: m <- actions; apply: y = m, held <- x (straight from x)."""
    program = Program("hold", decimation=decimation, sim_dt=0.01)
    x = program.input("x", 2)
    flag = program.input("flag", 1, dtype="bool")
    m = program.memory("m", 2, init=HOLD)
    held = program.memory("held", 2)
    y = program.output("y", 2)
    z = program.output("z", 2)

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("x", v[x]), ("m", v[m])]

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {m: actions}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {y: v[m], z: op.where(v[flag], v[held], v[x]), held: v[x]}

    return program


def feeds(x: Any = ((1.0, 2.0),), flag: bool = True) -> dict[str, np.ndarray]:
    return {"x": np.asarray(x, np.float32), "flag": np.array([[flag]])}


def with_module(model: onnx.ModelProto, module: Any) -> Actor:
    """An actor as the compiler prepares it: its ONNX graph and maybe its torch module."""
    return Actor(model, ActorSignature.feedforward(4, 2), "test actor", module=module)


def test_a_policy_step_then_apply_only_steps() -> None:
    actor = mlp_actor(4, 2, seed=1)
    ref = ReferenceInterpreter(hold_program(), actor.model)
    first = ref.step(feeds())
    expected = actor(np.float32([[1.0, 2.0, 0.5, -0.5]]))
    np.testing.assert_allclose(first["actions"], expected, rtol=1e-5)
    np.testing.assert_allclose(first["y"], expected, rtol=1e-5)
    second = ref.step(feeds())
    assert not second["actions"].any() and not second["obs"].any()
    np.testing.assert_array_equal(second["y"], first["y"])
    assert list(second) == ["actions", "obs", "y", "z", "memory.m.out", "memory.held.out"]


def test_reset_restores_the_initial_values_and_the_first_tick() -> None:
    ref = ReferenceInterpreter(hold_program(), mlp_actor(4, 2).model, first_tick=1)
    out = ref.step(feeds())  # k = 1: apply-only, the initial value is applied
    np.testing.assert_array_equal(out["y"], HOLD)
    ref.step(feeds())  # k = 2: policy step
    assert ref.tick == 3 and not np.array_equal(ref.memory["memory.m"], HOLD)
    ref.reset()
    assert ref.tick == 1
    np.testing.assert_array_equal(ref.memory["memory.m"], HOLD)


def test_memory_does_not_alias_the_callers_input_buffer() -> None:
    ref = ReferenceInterpreter(hold_program(), mlp_actor(4, 2).model)
    buffer = np.float32([[1.0, 2.0]])
    ref.step({"x": buffer, "flag": np.array([[True]])})
    buffer[:] = 99.0  # a robot loop reusing its input buffer
    out = ref.step({"x": buffer, "flag": np.array([[True]])})
    np.testing.assert_array_equal(out["z"], [[1.0, 2.0]])  # held from the previous tick


def test_a_tick_ignores_floating_point_errors_and_leaves_the_callers_error_state() -> None:
    actor = mlp_actor(4, 2, seed=1)
    huge = feeds(x=((3e38, 3e38),))
    obs = {"obs": np.float32([[3e38, 3e38, 0.5, -0.5]])}
    with np.errstate(all="raise"), pytest.raises(GraphInterpreterError, match="FloatingPoint"):
        GraphInterpreter(actor.model).run_unchecked(obs)  # these inputs overflow in the actor
    ref = ReferenceInterpreter(hold_program(), actor.model)
    # The caller's state changes between ticks: every tick ignores, every tick restores.
    for setting in ("raise", "warn", "ignore", "raise", "call"):
        with np.errstate(all=setting, call=lambda *_: pytest.fail("error callback called")):
            before = np.geterr()
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ref.reset()
                ref.step(huge)  # a policy step
                ref.step(huge)
            assert np.geterr() == before
            with pytest.raises(RuntimeInputError):
                ref.step({"x": np.zeros((1, 3), np.float32), "flag": np.array([[True]])})
            assert np.geterr() == before


def test_a_failing_stage_is_named_with_its_node_and_the_tick() -> None:
    program = Program("pick", decimation=2, sim_dt=0.01)
    x = program.input("x", 4)
    idx = program.input("idx", 1, dtype="int32")
    m = program.memory("m", 2)
    o = program.output("o", 1)

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("x", v[x])]

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {m: actions}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {o: op.gather(v[x], op.reshape(v[idx], op.const(np.array([1]))), axis=1)}

    ref = ReferenceInterpreter(program, mlp_actor(4, 2).model)
    x4 = np.float32([[1.0, 2.0, 3.0, 4.0]])
    for k in range(3):  # a policy step, an apply-only step, a policy step
        out = ref.step({"x": x4, "idx": np.full((1, 1), k, np.int32)})
        np.testing.assert_array_equal(out["o"], [[x4[0, k]]])
    with pytest.raises(
        GraphInterpreterError,
        match=r"^apply_actions stage 'apply' \(.*\) failed at ctx\.step_count 3 in the "
        r"reference interpreter: IndexError: index 7 .*\(in its node #\d+ Gather",
    ) as info:
        ref.step({"x": x4, "idx": np.full((1, 1), 7, np.int32)})
    assert info.value.node is not None and "Gather" in info.value.node
    assert ref.tick == 3  # the failed tick did not count


def test_the_apply_only_zeros_cannot_be_written() -> None:
    ref = ReferenceInterpreter(hold_program(), mlp_actor(4, 2).model, first_tick=1)
    out = ref.step(feeds())
    with pytest.raises(ValueError, match="read-only"):
        out["actions"][0, 0] = 1.0


def test_an_actor_object_runs_its_torch_module_when_it_has_one() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 2).eval()
    unrelated = mlp_actor(4, 2, seed=9)
    ref = ReferenceInterpreter(hold_program(), with_module(unrelated.model, module))
    out = ref.step(feeds())
    with torch.no_grad():
        expected = module(torch.tensor([[1.0, 2.0, 0.5, -0.5]])).numpy()
    np.testing.assert_allclose(out["actions"], expected, rtol=1e-6)
    onnx_only = ReferenceInterpreter(hold_program(), with_module(unrelated.model, None))
    np.testing.assert_allclose(
        onnx_only.step(feeds())["actions"], unrelated(np.float32([[1, 2, 0.5, -0.5]])), rtol=1e-5
    )


def test_a_torch_module_with_a_model_attribute_runs_whole() -> None:
    torch = pytest.importorskip("torch")

    class Wrapped(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = torch.nn.Linear(4, 2)

        def forward(self, obs: Any) -> Any:
            return 10.0 * self.model(obs)

    torch.manual_seed(1)
    wrapped = Wrapped().eval()
    out = ReferenceInterpreter(hold_program(), wrapped).step(feeds())
    with torch.no_grad():
        expected = wrapped(torch.tensor([[1.0, 2.0, 0.5, -0.5]])).numpy()
    np.testing.assert_allclose(out["actions"], expected, rtol=1e-6)


def test_inputs_follow_the_runtimes_casting_rules() -> None:
    ref = ReferenceInterpreter(hold_program(), mlp_actor(4, 2).model)
    out = ref.step({"x": [[1, 2]], "flag": [[True]]})  # lists and ints are fine for float32
    assert out["z"].dtype == np.float32
    with pytest.raises(RuntimeInputError, match=r"input 'flag' has dtype float64; expected bool"):
        ref.step({"x": [[1.0, 2.0]], "flag": [[1.0]]})


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"x": np.zeros((1, 2), np.float32)}, r"missing input\(s\) \['flag'\]"),
        ({**feeds(), "y": np.zeros((1, 2))}, r"unknown input\(s\) \['y'\]"),
        ({**feeds(), "x": np.zeros((2,), np.float32)}, r"'x' has shape \[2\]; expected \[1, 2\]"),
        ([1, 2], r"takes a dict of input name -> array, got list"),
    ],
)
def test_wrong_inputs_are_named(inputs: Any, message: str) -> None:
    ref = ReferenceInterpreter(hold_program(), mlp_actor(4, 2).model)
    with pytest.raises(RuntimeInputError, match=message):
        ref.step(inputs)


def test_a_wrong_actor_is_an_actor_error() -> None:
    with pytest.raises(ActorError, match=r"returned shape \[1, 3\] for 'actions'"):
        ReferenceInterpreter(hold_program(), lambda obs: np.zeros((1, 3))).step(feeds())
    with pytest.raises(ActorError, match=r"must be an exploy_dsl\.Actor, a torch module"):
        ReferenceInterpreter(hold_program(), 42)
    two_outputs = mlp_actor(4, 2).model
    two_outputs.graph.output.append(onnx.helper.make_tensor_value_info("h", 1, [1, 16]))
    with pytest.raises(
        ActorError,
        match=r"has 2 outputs \['actions', 'h'\]; the program binds the actions to one of "
        r"\['actions', 'h'\] and cannot tell which\. Fix: say which output is the action",
    ):
        ReferenceInterpreter(hold_program(), two_outputs)


def test_an_onnx_actor_may_list_its_weights_as_inputs() -> None:
    actor = mlp_actor(4, 2, seed=2)
    model = onnx.ModelProto.FromString(actor.model.SerializeToString())
    for init in model.graph.initializer:  # older exporters list initializers as inputs
        model.graph.input.append(
            onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        )
    out = ReferenceInterpreter(hold_program(), model).step(feeds())
    np.testing.assert_allclose(out["actions"], actor(np.float32([[1, 2, 0.5, -0.5]])), rtol=1e-5)
