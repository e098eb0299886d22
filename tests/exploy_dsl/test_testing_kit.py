"""exploy_dsl.testing: stepping by name, assert_parity, golden traces, strategies, the plugin."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from compiler import compile_program
from exploy_dsl import Program, RuntimeInputError
from exploy_dsl.testing import FileRunner, ProgramRunner, assert_golden, assert_parity
from exploy_dsl.testing.strategies import episodes, tick_inputs
from tests._support import mlp_actor


def program(scale: float = 2.0) -> Program:
    p = Program("kit", decimation=2, sim_dt=0.01)
    x = p.input("x", 3)
    q = p.input("obj.robot.base.w_Q_b", 4)
    cmd = p.float_command("speed", range=(-0.5, 1.5))
    flag = p.boolean_command("go")
    y = p.output("y", 2)
    last = p.memory("last", 2)
    p.metadata["base_names"] = {"robot": "base"}

    @p.observations
    def observations(v: Any) -> Any:
        from exploy_dsl import op, term

        gate = op.cast(v[flag], to=np.float32)
        return [
            term("x", v[x], scale=scale),
            term("q", v[q]),
            term("speed", v[cmd] * gate),
            term("last", v[last]),
        ]

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: v[last] + 1.0}

    return p


def test_a_runner_reads_terms_memory_and_outputs_by_name() -> None:
    p = program()
    actions = np.float32([[0.5, -0.5]])
    runner = ProgramRunner(p, actor=lambda obs: actions)
    result = runner.step({"x": [1.0, 2.0, 3.0], "cmd.boolean.go": [[True]], "cmd.float.speed": 1.0})
    np.testing.assert_allclose(result.obs["x"], [[2.0, 4.0, 6.0]])
    np.testing.assert_allclose(result.obs["q"], [[1.0, 0.0, 0.0, 0.0]])  # neutral: identity
    np.testing.assert_allclose(result.obs["speed"], [[1.0]])
    np.testing.assert_allclose(result.memory["last"], actions)
    np.testing.assert_allclose(result["y"], actions + 1.0)
    assert result.policy_step and result.tick == 0
    later = runner.step()
    assert not later.policy_step and later.tick == 1 and not later.actions.any()
    with pytest.raises(RuntimeInputError, match=r"'nope' is not an input of the program"):
        runner.step({"nope": 1.0})
    with pytest.raises(KeyError, match=r"'z' is not an output, memory or file output"):
        result["z"]


def test_neutral_inputs_stay_inside_declared_ranges() -> None:
    p = Program("ranged", decimation=1, sim_dt=0.01)
    p.float_command("lift", range=(0.2, 1.0))
    from exploy_dsl.testing import neutral_inputs

    assert neutral_inputs(p)["cmd.float.lift"].item() == pytest.approx(0.2)


def test_a_file_runner_reads_the_same_terms_from_the_compiled_file() -> None:
    p = program()
    actor = mlp_actor(10, 2, seed=1)
    file = FileRunner(compile_program(p, actor.model))
    ours = ProgramRunner(p, actor.model)
    feeds = {"x": np.float32([[0.1, -0.2, 0.3]]), "cmd.float.speed": np.float32([[0.7]])}
    for _ in range(4):
        a, b = file.step(feeds), ours.step(feeds)
        assert a.obs.keys() == b.obs.keys()
        for name in a.obs:
            np.testing.assert_allclose(a.obs[name], b.obs[name], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a.memory["last"], b.memory["last"], rtol=1e-5, atol=1e-6)


def test_assert_parity_raises_the_first_divergence_report() -> None:
    actor = mlp_actor(10, 2, seed=1).model
    compiled = compile_program(program(scale=2.0), actor)
    assert_parity(compiled, program(scale=2.0), actor, steps=50)
    with pytest.raises(AssertionError, match=r"first divergence: tick \d+ .*obs\[\d\] = x\[\d\]"):
        assert_parity(compiled, program(scale=2.5), actor, steps=50)


def test_a_golden_trace_names_tick_wire_and_element_and_updates_on_purpose(
    tmp_path: Path,
) -> None:
    golden = tmp_path / "kit.npz"
    with pytest.raises(AssertionError, match=r"does not exist\. Create it on purpose with"):
        assert_golden(golden, program(), ticks=30)
    assert_golden(golden, program(), ticks=30, update=True)
    assert_golden(golden, program(), ticks=30)
    with pytest.raises(
        AssertionError,
        match=r"differs at tick 0 \(episode 1, ctx\.step_count 0, policy step\): "
        r"obs\[0\] = x\[0\]: golden -?[\d.]+, now -?[\d.]+\. If the program changed on purpose",
    ):
        assert_golden(golden, program(scale=3.0), ticks=30)
    assert_golden(golden, program(scale=3.0), ticks=30, update=True)
    assert_golden(golden, program(scale=3.0), ticks=30)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(tick_inputs(program()))
def test_strategies_draw_inputs_inside_what_the_program_declares(inputs: dict[str, Any]) -> None:
    assert inputs["x"].shape == (1, 3) and inputs["x"].dtype == np.float32
    assert np.isclose(np.linalg.norm(inputs["obj.robot.base.w_Q_b"]), 1.0, atol=1e-5)
    assert -0.5 <= inputs["cmd.float.speed"].item() <= 1.5
    assert inputs["cmd.boolean.go"].dtype == np.bool_


@settings(max_examples=10, deadline=None, derandomize=True)
@given(episodes(program(), max_ticks=12))
def test_episodes_start_with_a_reset(stream: list[tuple[bool, dict[str, Any]]]) -> None:
    assert stream[0][0] is True and 1 <= len(stream) <= 12


def test_the_plugin_gives_fixtures_and_updates_golden_traces(pytester: pytest.Pytester) -> None:
    source = textwrap.dedent(
        """
        import numpy as np
        from exploy_dsl import Program
        from exploy_dsl.testing import assert_golden

        SCALE = {scale}

        def make():
            p = Program("plug", decimation=1, sim_dt=0.01)
            x = p.input("x", 2)
            y = p.output("y", 2)
            last = p.memory("last", 2)

            @p.observations
            def observations(v):
                return [("x", v[x] * SCALE)]

            @p.process_actions(n_actions=2)
            def process_actions(v, actions):
                return {{last: actions}}

            @p.apply_actions
            def apply_actions(v):
                return {{y: v[last]}}

            return p

        def test_golden():
            assert_golden("plug.npz", make(), ticks=10)

        def test_fixtures(exploy_compile, exploy_runtime):
            import onnx
            from onnx import TensorProto, helper
            graph = helper.make_graph(
                [helper.make_node("Identity", ["obs"], ["actions"])], "a",
                [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 2])],
                [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 2])])
            actor = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
            assert exploy_compile(make(), actor).name == "plug.onnx"
            out = exploy_runtime(make(), actor).step({{"x": np.ones((1, 2), np.float32)}})
            np.testing.assert_allclose(out["y"], [[SCALE, SCALE]])
        """
    )
    pytester.makepyfile(test_plug=source.format(scale=2.0))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    pytester.runpytest("--exploy-update-golden").assert_outcomes(passed=2)
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.makepyfile(test_plug=source.format(scale=3.0))
    changed = pytester.runpytest()
    changed.assert_outcomes(passed=1, failed=1)
    changed.stdout.fnmatch_lines(
        ["*golden trace 'plug.npz' differs at tick 0*obs[[]0[]] = x[[]0[]]*"]
    )
    pytester.runpytest("--exploy-update-golden").assert_outcomes(passed=2)
    pytester.runpytest().assert_outcomes(passed=2)
