"""Every program in examples/ compiles as its docstring says, runs and keeps parity.

Each example is compiled once per session with ``exploy-dsl compile`` (its own ``actor()``);
the tests step the file and check it against its program (``check_parity``); the examples
with a recurrent or multi-input actor are also compared with the original torch actor stepped
by hand here, observation computed in NumPy. The same bytes in another process:
tests/compiler/test_reproducible.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from compiler import check_parity, compile_program, random_stream
from exploy_dsl import Runtime, read_contract
from tests._support import CliExample, example_files, random_feeds

torch = pytest.importorskip("torch")  # three examples are torch actors

EXPECTED = {
    "tutorial",
    "tutorial_module",
    "tutorial_lstm",
    "quadruped",
    "quadruped_recurrent",
    "reference_mode",
    "gait",
}


def cases() -> list[Any]:
    """Every example, by its file's stem."""
    return [pytest.param(p.stem, id=p.stem) for p in example_files()]


@pytest.mark.parametrize("stem", cases())
def test_the_example_compiles_and_runs(stem: str, example: Callable[[str], CliExample]) -> None:
    ex = example(stem)
    onnx.checker.check_model(ex.model, full_check=True)
    runtime = Runtime(ex.out)
    contract = runtime.contract
    rng = np.random.default_rng(0)
    for _ in range(2 * contract.decimation + 1):
        tick = runtime.tick
        outputs = runtime.step(random_feeds(contract.inputs, rng))
        for wire in (contract.actions, contract.obs, *contract.outputs):
            value = outputs[wire.name]
            assert value.shape == wire.shape and value.dtype == wire.np_dtype, wire.name
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), (tick, wire.name)
        if tick % contract.decimation:
            assert not outputs["actions"].any() and not outputs["obs"].any(), tick
        else:
            assert outputs["obs"].any(), tick


@pytest.mark.parametrize("stem", cases())
def test_the_example_keeps_parity_with_its_program(
    stem: str, example: Callable[[str], CliExample]
) -> None:
    ex = example(stem)
    report = check_parity(ex.out, ex.loaded.program, ex.actor, steps=120)
    assert report.ok, report.render()
    assert report.actor.status == ("skipped" if isinstance(ex.actor, Path) else "ok")


def test_the_examples_are_there() -> None:
    assert {p.stem for p in example_files()} >= EXPECTED


# -- the original actors, stepped by hand -------------------------------------------------------

DECIMATION = 4


def gravity_in_base(q: np.ndarray) -> np.ndarray:
    """R(q)^T (0, 0, -1) from a (w, x, y, z) quaternion, by the rotation matrix."""
    w, x, y, z = q.reshape(4)
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    return (rotation.T @ np.array([0.0, 0.0, -1.0])).reshape(1, 3)


def actions_of(
    runtime: Runtime, feeds: list[dict[str, np.ndarray]], resets: np.ndarray
) -> dict[str, np.ndarray]:
    """Step the compiled file over ``feeds``, resetting where ``resets`` says."""
    out: dict[str, list[np.ndarray]] = {}
    for feed, reset in zip(feeds, resets, strict=True):
        if reset:
            runtime.reset()
        for name, value in runtime.step(feed).items():
            out.setdefault(name, []).append(value)
    return {name: np.stack(values) for name, values in out.items()}


def stream_feeds(program: Any, ticks: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    stream = random_stream(program, ticks, seed=seed, mean_episode=60)
    feeds = [{k: v[t] for k, v in stream.inputs.items()} for t in range(ticks)]
    return feeds, np.asarray(stream.reset).copy()


def exploy_data_source(ticks: int, episode_ticks: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """exploy's tutorial DataSource: foo, bar, baz from their initial values, +0.1/+0.2/+0.3 at
    every substep, reset after 10 policy steps (``episode_ticks``)."""
    feeds, resets = [], np.zeros(ticks, bool)
    for t in range(ticks):
        k = t % episode_ticks
        resets[t] = k == 0
        feeds.append(
            {
                "foo": np.array([[1.0, 2.0, 3.0, 4.0]], np.float32) + np.float32(0.1 * k),
                "bar_baz_group.bar": np.array([[0.5, 0.6]], np.float32) + np.float32(0.2 * k),
                "bar_baz_group.baz": np.array([[-7.0, -8.0]], np.float32) + np.float32(0.3 * k),
            }
        )
    return feeds, resets


@pytest.mark.parametrize("first_tick", [0, 1])
def test_tutorial_lstm_acts_as_exploys_rnn_actor_stepped_by_hand(
    example: Callable[[str], CliExample], first_tick: int
) -> None:
    ex = example("tutorial_lstm")
    module = ex.loaded.default_actor()  # exploy's RNNActor, as its evaluator steps it
    assert module.get_state() is None
    feeds, resets = exploy_data_source(400, episode_ticks=10 * DECIMATION)
    expected, state = [], []
    last = np.zeros((1, 2), np.float32)
    for feed, reset in zip(feeds, resets, strict=True):
        if reset:
            module.reset(torch.tensor([True]))  # exploy's reset(dones)
            last, k = np.zeros((1, 2), np.float32), first_tick
        if k % DECIMATION == 0:
            foo, bar, baz = feed["foo"], feed["bar_baz_group.bar"], feed["bar_baz_group.baz"]
            obs = np.concatenate([foo + 1.0, bar + 2.0 * baz, baz, last], axis=1)
            with torch.no_grad():
                last = module(torch.from_numpy(obs)).numpy()
            expected.append(last)
            state.append(module.get_state()[0].numpy().copy())
        else:
            expected.append(np.zeros((1, 2), np.float32))
            state.append(state[-1] if state and not reset else np.zeros((1, 1, 5), np.float32))
        k += 1
    got = actions_of(Runtime(ex.out, first_tick=first_tick), feeds, resets)
    np.testing.assert_allclose(got["actions"], np.stack(expected), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got["memory.actor.state_0.out"], np.stack(state), atol=1e-5)
    # The data source repeats every episode, so does a file whose state restarts at a reset.
    episodes = got["actions"].reshape(10, 10 * DECIMATION, 1, 2)
    np.testing.assert_array_equal(episodes[1:], np.broadcast_to(episodes[0], episodes[1:].shape))
    assert np.abs(np.diff(episodes[0][-first_tick % DECIMATION :: DECIMATION], axis=0)).min() > 0


def isaaclab_style_onnx(module: Any, shape: tuple[int, ...], path: Path) -> Path:
    """The actor as Isaac Lab's / rsl_rl's as_onnx write it: obs, h_in, c_in -> actions, ..."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 48), torch.zeros(shape), torch.zeros(shape)),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["obs", "h_in", "c_in"],
            output_names=["actions", "h_out", "c_out"],
        )
    return path


@pytest.mark.parametrize("source", ["module", "isaaclab_onnx"])
def test_quadruped_recurrent_acts_as_its_lstm_stepped_by_hand(
    example: Callable[[str], CliExample], source: str, tmp_path: Path
) -> None:
    ex = example("quadruped_recurrent")
    m, module = ex.loaded.module, ex.loaded.default_actor()
    shape = (m.LAYERS, 1, m.HIDDEN)
    if source == "module":
        file = ex.model
    else:  # the same declaration, state=[h, c], binds h_in/c_in -> h_out/c_out by name
        onnx_actor = isaaclab_style_onnx(module, shape, tmp_path / "policy.onnx")
        file = compile_program(ex.loaded.program, onnx_actor)
    feeds, resets = stream_feeds(ex.loaded.program, 400, seed=3)
    assert resets[1:].sum() >= 3
    expected, recurrence = [], 0.0
    for feed, reset in zip(feeds, resets, strict=True):
        if reset:
            h, c = torch.zeros(shape), torch.zeros(shape)
            last, k = np.zeros((1, 12), np.float32), 0
        if k % DECIMATION == 0:
            obs = np.concatenate(
                [
                    feed["obj.robot.base.lin_vel_b_rt_w_in_b"] * 2.0,
                    feed["obj.robot.base.ang_vel_b_rt_w_in_b"] * 0.25,
                    gravity_in_base(feed["obj.robot.base.w_Q_b"]),
                    feed["cmd.se2_velocity.base_velocity"] * np.array([2.0, 2.0, 0.25]),
                    feed["obj.robot.joints.pos"] - m.DEFAULT_POS,
                    feed["obj.robot.joints.vel"] * 0.05,
                    last,
                ],
                axis=1,
            ).clip(-100.0, 100.0)
            with torch.no_grad():
                x = torch.from_numpy(obs.astype(np.float32))
                stateless, _, _ = module(x, torch.zeros(shape), torch.zeros(shape))
                a, h, c = module(x, h, c)
            last = a.numpy()
            recurrence = max(recurrence, float((a - stateless).abs().max()))
            expected.append(last)
        else:
            expected.append(np.zeros((1, 12), np.float32))
        k += 1
    assert recurrence > 1e-2  # the state matters: a file that dropped it would differ
    got = actions_of(Runtime(file), feeds, resets)
    np.testing.assert_allclose(got["actions"], np.stack(expected), atol=1e-5, rtol=1e-5)
    contract = read_contract(file)
    assert [w.name for w in contract.memory][-2:] == ["memory.policy.h.in", "memory.policy.c.in"]
    assert all(w.shape == shape for w in contract.memory[-2:])
    assert not contract.initial_values["memory.policy.h.in"].any()


def reference_mode_by_hand(
    m: Any, module: Any, feeds: list[dict[str, Any]], resets: np.ndarray
) -> np.ndarray:
    expected = []
    for feed, reset in zip(feeds, resets, strict=True):
        if reset:
            last, k = np.zeros((1, 12), np.float32), 0
        if k % DECIMATION == 0:
            own = [
                feed["obj.robot.base.ang_vel_b_rt_w_in_b"] * 0.25,
                gravity_in_base(feed["obj.robot.base.w_Q_b"]),
                feed["obj.robot.joints.pos"] - m.DEFAULT_POS,
                feed["obj.robot.joints.vel"] * 0.05,
                last,
            ]
            ref = [
                feed["cmd.joint_pos.reference"] - m.DEFAULT_POS,
                feed["cmd.se2_velocity.reference_velocity"] * np.array([2.0, 2.0, 0.25]),
            ]
            obs, ref_obs = (
                torch.from_numpy(np.concatenate(x, axis=1).clip(-100, 100).astype(np.float32))
                for x in (own, ref)
            )
            mask = torch.from_numpy(feed["cmd.boolean.reference_active"].reshape(1))  # GBC: [B]
            with torch.no_grad():
                last = module(obs, ref_obs, mask).numpy()
            expected.append(last)
        else:
            expected.append(np.zeros((1, 12), np.float32))
        k += 1
    return np.stack(expected)


def gbc_style_onnx(module: Any, path: Path) -> Path:
    """The actor as GBC's exporter writes it: obs, ref_obs, ref_mask bool[1] -> actions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 42), torch.zeros(1, 15), torch.zeros(1, dtype=torch.bool)),
            str(path),
            dynamo=False,
            opset_version=14,
            input_names=["obs", "ref_obs", "ref_mask"],
            output_names=["actions"],
        )
    return path


@pytest.mark.parametrize("source", ["module", "gbc_onnx"])
def test_reference_mode_acts_as_its_actor_stepped_by_hand(
    example: Callable[[str], CliExample], source: str, tmp_path: Path
) -> None:
    ex = example("reference_mode")
    m, module = ex.loaded.module, ex.loaded.default_actor()
    if source == "module":
        file = ex.model
    else:
        file = compile_program(ex.loaded.program, gbc_style_onnx(module, tmp_path / "gbc.onnx"))
        assert check_parity(file, ex.loaded.program, tmp_path / "gbc.onnx", steps=200).ok
    feeds, resets = stream_feeds(ex.loaded.program, 400, seed=4)
    masks = np.array([f["cmd.boolean.reference_active"].item() for f in feeds])
    assert masks.any() and not masks.all()
    got = actions_of(Runtime(file), feeds, resets)
    expected = reference_mode_by_hand(m, module, feeds, resets)
    np.testing.assert_allclose(got["actions"], expected, atol=1e-5, rtol=1e-5)
    assert got["obs"].shape[-1] == 57  # the file's obs is the whole observation
    names = read_contract(file).json_metadata("obs_term_names")
    assert names[-2:] == ["ref_joint_pos", "ref_base_velocity"]


def test_the_gait_example_declares_no_memory_by_hand() -> None:
    """History, phase clock, normalizer and held target together: all their memory is generated."""
    import ast

    from compiler.cli._program_file import load_program_file
    from exploy_dsl import trace
    from tests._support import EXAMPLES

    source = (EXAMPLES / "gait.py").read_text()
    calls = [
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert "memory" not in calls
    loaded = load_program_file(EXAMPLES / "gait.py")
    program = loaded.program
    assert list(program.memories) == [loaded.module.joint_pos.memory]
    assert [m.name for m in trace(program).program.memories] == [
        "joint_pos.processed_actions",
        "history.base_ang_vel",
        "history.joint_pos",
        "history.joint_vel",
        "history_started",
    ]
