"""Isaac Lab's joint position action as a library step: the held target is generated memory.

Checked against a NumPy loop written here from Isaac Lab's definition (``JointPositionAction``:
processed = raw * scale + offset, set as the joint position target at every sim step until the
next policy step), over ticks and resets, under both start conventions; against parity; and
against the same program written with a hand-made memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spox.opset.ai.onnx.v20 as op

from compiler import check_parity, compile_program
from compiler.tools._explain import render_explain
from exploy_dsl import (
    DeclarationError,
    JointPositionAction,
    Program,
    ReferenceInterpreter,
    Runtime,
    StageError,
    joint_position_action,
    read_contract,
    scale_offset,
    trace,
)
from tests._support import MlpActor, mlp_actor

Q0 = np.array([0.1, 0.8, -1.5], np.float32)
SCALE = np.array([0.25, 0.5, 0.25], np.float32)
KP, KD = 20.0, 0.5
LOW = np.array([-0.5, 0.0, -2.0], np.float32)
HIGH = np.array([0.5, 1.2, -1.2], np.float32)
rng = np.random.default_rng(5)


def held_program(*, generated: bool = True, clip: tuple[Any, Any] | None = None) -> Program:
    """A 3-joint PD program; its held target comes from the library, or from a memory by hand."""
    p = Program("held", decimation=4, sim_dt=0.005)
    pos, vel = p.input("pos", 3), p.input("vel", 3)
    torque, target_out = p.output("torque", 3), p.output("target", 3)
    joint_pos: Any
    if generated:
        joint_pos = joint_position_action(p, "joint_pos", 3, scale=SCALE, offset=Q0, clip=clip)
    else:
        joint_pos = p.memory("joint_pos.processed_actions", 3, init=Q0)

    @p.observations
    def observations(v: Any) -> Any:
        return [("pos", v[pos] - Q0), ("vel", v[vel])]

    @p.process_actions(n_actions=3)
    def process_actions(v: Any, actions: Any) -> Any:
        if generated:
            joint_pos(v, actions)
            return None
        return {joint_pos: scale_offset(actions, SCALE, Q0)}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        held = v[joint_pos]
        return {torque: KP * (held - v[pos]) - KD * v[vel], target_out: held}

    return p


def isaac_lab_loop(
    actor: MlpActor,
    pos: np.ndarray,
    vel: np.ndarray,
    resets: np.ndarray,
    first_tick: int,
    clip: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Isaac Lab's JointPositionAction in NumPy: the held target at each tick."""
    k, held, targets = first_tick, Q0.astype(np.float64), []
    for p, v, reset in zip(pos, vel, resets, strict=True):
        if reset:
            k, held = first_tick, Q0.astype(np.float64)
        if k % 4 == 0:
            raw = actor(np.concatenate([p - Q0, v])[None])[0]
            held = raw * SCALE + Q0
            if clip is not None:
                held = np.clip(held, *clip)
        targets.append(held)
        k += 1
    return targets


@pytest.mark.parametrize("first_tick", [0, 1])
@pytest.mark.parametrize("clip", [None, (LOW, HIGH)])
def test_the_target_is_set_once_per_policy_step_and_held_between(
    first_tick: int, clip: tuple[np.ndarray, np.ndarray] | None, tmp_path: Path
) -> None:
    actor = mlp_actor(6, 3, seed=3)
    program = held_program(clip=clip)
    path = tmp_path / "held.onnx"
    compile_program(program, actor.model, output=path)
    runtime = Runtime(path, first_tick=first_tick)
    reference = ReferenceInterpreter(program, actor.model, first_tick=first_tick)
    n = 30
    pos = rng.normal(size=(n, 3)).astype(np.float32)
    vel = rng.normal(size=(n, 3)).astype(np.float32)
    resets = np.zeros(n, bool)
    resets[[0, 13]] = True
    expected = isaac_lab_loop(actor, pos, vel, resets, first_tick, clip)
    for i in range(n):
        if resets[i]:
            runtime.reset()
            reference.reset()
        feeds = {"pos": pos[i][None], "vel": vel[i][None]}
        for got in (runtime.step(feeds), reference.step(feeds)):
            np.testing.assert_allclose(got["target"][0], expected[i], rtol=1e-5, atol=1e-6)
            want_torque = KP * (expected[i] - pos[i]) - KD * vel[i]
            np.testing.assert_allclose(got["torque"][0], want_torque, rtol=1e-5, atol=1e-5)
    if first_tick == 1:  # exploy's controller: the first calls after a reset hold the pose
        runtime.reset()
        out = runtime.step({"pos": pos[0][None], "vel": vel[0][None]})
        np.testing.assert_array_equal(out["target"][0], Q0)


def test_the_generated_memory_is_the_one_a_hand_written_program_declares(
    tmp_path: Path,
) -> None:
    actor = mlp_actor(6, 3, seed=8)
    by_library = compile_program(held_program(), actor.model, output=tmp_path / "a.onnx")
    by_hand = compile_program(
        held_program(generated=False), actor.model, output=tmp_path / "b.onnx"
    )
    a, b = read_contract(by_library), read_contract(by_hand)
    assert a.memory_names == b.memory_names == ("joint_pos.processed_actions",)
    wire = "memory.joint_pos.processed_actions.in"
    np.testing.assert_array_equal(a.initial_values[wire], Q0[None])
    np.testing.assert_array_equal(b.initial_values[wire], Q0[None])
    run_a, run_b = Runtime(tmp_path / "a.onnx"), Runtime(tmp_path / "b.onnx")
    for _ in range(12):
        feeds = {"pos": rng.normal(size=(1, 3)), "vel": rng.normal(size=(1, 3))}
        got_a, got_b = run_a.step(feeds), run_b.step(feeds)
        for name in ("torque", "target"):
            np.testing.assert_array_equal(got_a[name], got_b[name])


def test_parity_holds_and_the_file_records_and_explains_the_action(tmp_path: Path) -> None:
    actor = mlp_actor(6, 3, seed=1)
    program = held_program(clip=(LOW, 1.0))
    path = tmp_path / "held.onnx"
    model = compile_program(program, actor.model, output=path)
    report = check_parity(path, program, actor.model, steps=120)
    assert report.ok, report.render()
    stages = json.loads({q.key: q.value for q in model.metadata_props}["exploy_dsl.stages"])
    (step,) = stages["process_actions"]["steps"]
    assert {k: v for k, v in step.items() if k != "at"} == {
        "step": "joint_position_action",
        "memory": "joint_pos.processed_actions",
        "scale": [0.25, 0.5, 0.25],
        "offset": [0.1, 0.8, -1.5],
        "clip_low": [-0.5, 0.0, -2.0],
        "clip_high": 1.0,
        "init": [0.1, 0.8, -1.5],
    }
    text = render_explain(read_contract(model), str(path))
    assert (
        "    joint position action, held in memory.joint_pos.processed_actions: target = "
        "actions * [0.25, 0.5, 0.25] + [0.1, 0.8, -1.5], clipped to [[-0.5, 0, -2], 1], once per "
        "policy step, held until the next; target = [0.1, 0.8, -1.5] after a reset "
        "(test_joint_position_action.py:"
    ) in text


def test_it_reads_as_its_memory_and_scalars_are_accepted() -> None:
    p = Program("p", decimation=2, sim_dt=0.01)
    action = joint_position_action(p, "legs", 2, scale=0.5)
    assert isinstance(action, JointPositionAction)
    assert list(p.memories) == [action.memory]
    assert action.memory.name == "legs.processed_actions"
    np.testing.assert_array_equal(action.memory.init, np.zeros((1, 2), np.float32))
    assert action.scale.tolist() == 0.5 and action.clip is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_joints": 0}, r"joint_position_action 'j': n_joints must be a positive int"),
        ({"n_joints": True}, r"n_joints must be a positive int"),
        ({"scale": [1.0, 2.0]}, r"scale must be a finite number or 3 of them \(one per joint\), "
         r"got \[1\.0, 2\.0\]"),
        ({"offset": np.nan}, r"offset must be a finite number or 3 of them"),
        ({"offset": "q0"}, r"offset must be a finite number"),
        ({"clip": (1.0, -1.0)}, r"clip low 1\.0 is not below high -1\.0\. Fix: low < high"),
        ({"clip": 3.0}, r"clip must be \(low, high\), each a number or one per joint"),
        ({"clip": (0.0, [1.0, 2.0])}, r"clip high must be a finite number or 3 of them"),
        ({"offset": 2.0, "clip": (-1.0, 1.0)}, r"offset 2\.0 lies outside clip \[-1\.0, 1\.0\]"),
    ],
)  # fmt: skip
def test_a_wrong_declaration_is_a_declaration_error(kwargs: dict[str, Any], message: str) -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    args: dict[str, Any] = {"n_joints": 3, **kwargs}
    n = args.pop("n_joints")
    with pytest.raises(DeclarationError, match=message):
        joint_position_action(p, "j", n, **args)


def test_outside_a_stage_and_with_the_wrong_width_it_is_a_stage_error() -> None:
    p = Program("p", decimation=2, sim_dt=0.01)
    x = p.input("x", 2)
    out = p.output("out", 3)
    action = joint_position_action(p, "j", 3)
    with pytest.raises(StageError, match=r"joint_position_action 'j\.processed_actions' was "):
        action({}, op.const(np.zeros((1, 3), np.float32)))
    p.observations(lambda v: [("x", v[x])])

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> None:
        action(v, actions)

    p.apply_actions(lambda v: {out: v[action]})
    with pytest.raises(
        StageError,
        match=r"the value has shape \[1, 2\], its state memory\.j\.processed_actions is \[1, 3\]",
    ):
        trace(p)


@pytest.mark.parametrize("make", ["joint_position_action", "low_pass"])
def test_returning_the_step_itself_as_a_key_is_refused(make: str) -> None:
    """{joint_pos: actions} would store the raw actions, without the scale and offset."""
    from exploy_dsl import low_pass

    p = Program("p", decimation=2, sim_dt=0.01)
    x = p.input("x", 3)
    out = p.output("out", 3)
    step: Any = (
        joint_position_action(p, "j", 3, scale=0.5)
        if make == "joint_position_action"
        else low_pass(p, "j", 3, alpha=0.5)
    )
    p.observations(lambda v: [("x", v[x])])
    p.process_actions(n_actions=3)(lambda v, a: {step: a})
    p.apply_actions(lambda v: {out: v[step]})
    with pytest.raises(
        StageError,
        match=r"returns the \w+ of memory 'j(\.processed_actions)?' as a key: the value would be "
        r"stored as is, without what the step computes .* Fix: call it",
    ):
        trace(p)


def test_a_name_that_is_not_a_string_is_a_declaration_error() -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    with pytest.raises(DeclarationError, match=r"the name must be a non-empty string"):
        joint_position_action(p, 123, 3)  # type: ignore[arg-type]
