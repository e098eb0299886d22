"""The compiled files against an independent NumPy reading of DESIGN.md sections 3 and 5.

Everything below is written from the design text, not from exploy_dsl: the two reference
programs, the meaning of one tick, and the actor (the seeded MLP of ``tests._support``).
onnxruntime runs the compiled file; both are stepped over the same random input stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from exploy_dsl import Runtime
from tests._support import Compiled, MlpActor, run, session

Arrays = dict[str, np.ndarray]
TICKS = 48
ATOL = 1e-4

# -- DESIGN.md section 5, "tutorial" ------------------------------------------------------------


def tutorial_observations(x: Arrays, mem: Arrays) -> np.ndarray:
    foo, bar, baz = x["foo"], x["bar_baz_group.bar"], x["bar_baz_group.baz"]
    return np.concatenate([foo + 1.0, bar + 2.0 * baz, baz, mem["actions"]], axis=-1)


def tutorial_process(x: Arrays, mem: Arrays, actions: np.ndarray) -> Arrays:
    return {"actions": actions, "processed_actions": 3.0 * actions}


def tutorial_apply(x: Arrays, mem: Arrays) -> tuple[Arrays, Arrays]:
    return {"out": mem["processed_actions"] + 2.0}, {}


def tutorial_inputs(rng: np.random.Generator) -> Arrays:
    return {
        "foo": rng.normal(size=(1, 4)),
        "bar_baz_group.bar": rng.normal(size=(1, 2)),
        "bar_baz_group.baz": 3.0 * rng.normal(size=(1, 2)),
    }


# -- DESIGN.md section 5, "quadruped" -----------------------------------------------------------

Q0 = np.array([[0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5]])
POS, VEL, EFFORT = (f"output.joint_targets.joint_pos.{k}" for k in ("pos", "vel", "effort"))
RANGES = np.array([[-1.0, 1.0], [-0.5, 0.5], [-1.0, 1.0]])


def skew(u: np.ndarray) -> np.ndarray:
    x, y, z = u
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def rotation(q: np.ndarray) -> np.ndarray:
    """R(q) = I + 2w[u]x + 2[u]x^2 for q = (w, u): the rotation matrix of a unit quaternion.

    For a non-unit q this is the matrix Isaac Lab's quat_apply / quat_apply_inverse apply
    (no normalisation), which docs/decisions.md chose for projected gravity.
    """
    w, u = q[0], q[1:]
    k = skew(u)
    return np.eye(3) + 2.0 * w * k + 2.0 * k @ k


def projected_gravity(quat: np.ndarray) -> np.ndarray:
    """R(q)^T (0, 0, -1): gravity seen in the base frame."""
    return (rotation(quat[0]).T @ np.array([0.0, 0.0, -1.0]))[None, :]


def quadruped_observations(x: Arrays, mem: Arrays) -> np.ndarray:
    terms = [
        x["obj.robot.base.lin_vel_b_rt_w_in_b"] * 2.0,
        x["obj.robot.base.ang_vel_b_rt_w_in_b"] * 0.25,
        projected_gravity(x["obj.robot.base.w_Q_b"]),
        x["cmd.se2_velocity.base_velocity"] * np.array([2.0, 2.0, 0.25]),
        x["obj.robot.joints.pos"] - Q0,
        x["obj.robot.joints.vel"] * 0.05,
        mem["actions"],
    ]
    return np.clip(np.concatenate(terms, axis=-1), -100.0, 100.0)


def quadruped_process(x: Arrays, mem: Arrays, actions: np.ndarray) -> Arrays:
    return {"actions": actions, "joint_pos.processed_actions": Q0 + 0.25 * actions}


def quadruped_apply(x: Arrays, mem: Arrays) -> tuple[Arrays, Arrays]:
    target = mem["joint_pos.processed_actions"]
    q, qd = x["obj.robot.joints.pos"], x["obj.robot.joints.vel"]
    effort = np.clip(20.0 * (target - q) - 0.5 * qd, -25.0, 25.0)
    return {POS: target, VEL: np.zeros((1, 12)), EFFORT: effort}, {}


def quadruped_inputs(rng: np.random.Generator) -> Arrays:
    # Wide enough that the observation clip (+-100) and the effort clip (+-25) both act, and
    # quaternions of any norm (a state estimator's quaternion is rarely exactly unit).
    quat = rng.normal(size=(1, 4)) * rng.uniform(0.3, 2.0)
    return {
        "obj.robot.joints.pos": Q0 + 0.5 * rng.normal(size=(1, 12)),
        "obj.robot.joints.vel": rng.normal(size=(1, 12)) * rng.choice([1.0, 60.0]),
        "obj.robot.base.lin_vel_b_rt_w_in_b": 40.0 * rng.normal(size=(1, 3)),
        "obj.robot.base.ang_vel_b_rt_w_in_b": 2.0 * rng.normal(size=(1, 3)),
        "obj.robot.base.w_Q_b": quat,
        "cmd.se2_velocity.base_velocity": rng.uniform(1.5 * RANGES[:, 0], 1.5 * RANGES[:, 1])[
            None, :
        ],
    }


# -- DESIGN.md section 3, one tick --------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    decimation: int
    n_obs: int
    n_actions: int
    initial: Arrays
    observations: Callable[[Arrays, Arrays], np.ndarray]
    process_actions: Callable[[Arrays, Arrays, np.ndarray], Arrays]
    apply_actions: Callable[[Arrays, Arrays], tuple[Arrays, Arrays]]
    inputs: Callable[[np.random.Generator], Arrays]


SPECS = {
    "tutorial": Spec(
        4,
        10,
        2,
        {"actions": np.zeros((1, 2)), "processed_actions": np.zeros((1, 2))},
        tutorial_observations,
        tutorial_process,
        tutorial_apply,
        tutorial_inputs,
    ),
    "quadruped": Spec(
        4,
        48,
        12,
        {"actions": np.zeros((1, 12)), "joint_pos.processed_actions": Q0},
        quadruped_observations,
        quadruped_process,
        quadruped_apply,
        quadruped_inputs,
    ),
}


class Reference:
    """The program run tick by tick as DESIGN.md section 3 reads, in float64."""

    def __init__(self, spec: Spec, actor: Callable[[np.ndarray], np.ndarray]) -> None:
        self.spec = spec
        self.actor = actor
        self.memory: Arrays = {}
        self.reset()

    def reset(self) -> None:
        self.memory = {k: v.copy() for k, v in self.spec.initial.items()}

    def tick(self, k: int, x: Arrays) -> Arrays:
        spec, memory = self.spec, dict(self.memory)
        if k % spec.decimation == 0:
            obs = spec.observations(x, memory)
            actions = self.actor(obs)
            memory.update(spec.process_actions(x, memory, actions))
        else:
            obs, actions = np.zeros((1, spec.n_obs)), np.zeros((1, spec.n_actions))
        outputs, written = spec.apply_actions(x, memory)
        memory.update(written)
        self.memory = memory
        return {
            "actions": actions,
            "obs": obs,
            **outputs,
            **{f"memory.{name}.out": value for name, value in memory.items()},
        }


def input_stream(spec: Spec, seed: int) -> Iterator[Arrays]:
    rng = np.random.default_rng(seed)
    while True:
        yield {k: v.astype(np.float32) for k, v in spec.inputs(rng).items()}


def assert_tick_matches(got: Arrays, want: Arrays, tick: int) -> None:
    assert list(got) == list(want), f"tick {tick}: outputs differ in names or order"
    # obs first: a wrong observation explains a wrong action better than the other way round.
    for name in sorted(want, key=lambda n: n != "obs"):
        expected = want[name]
        assert got[name].shape == expected.shape, (tick, name)
        assert got[name].dtype == np.float32, (tick, name)
        np.testing.assert_allclose(
            got[name], expected, rtol=0, atol=ATOL, err_msg=f"tick {tick}, output {name!r}"
        )


@pytest.fixture(params=list(SPECS))
def example(request: pytest.FixtureRequest, compiled: dict[str, Compiled]) -> Compiled:
    return compiled[request.param]


# -- the tests ----------------------------------------------------------------------------------


def test_the_reference_rotation_is_a_rotation_for_unit_quaternions() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        q = rng.normal(size=4)
        r = rotation(q / np.linalg.norm(q))
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("quat", "gravity"),
    [
        ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -1.0)),  # upright
        ((np.sqrt(0.5), np.sqrt(0.5), 0.0, 0.0), (0.0, -1.0, 0.0)),  # rolled 90 deg about x
        ((np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0), (1.0, 0.0, 0.0)),  # pitched 90 deg about y
        ((0.0, 0.0, 0.0, 1.0), (0.0, 0.0, -1.0)),  # yawed 180 deg
        ((0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # upside down
    ],
)
def test_projected_gravity_of_known_poses(
    compiled: dict[str, Compiled], quat: tuple[float, ...], gravity: tuple[float, ...]
) -> None:
    """Hand-worked poses, independent of both the reference's and the example's formula."""
    example = compiled["quadruped"]
    feeds = dict(next(input_stream(SPECS["quadruped"], 0)))
    feeds["obj.robot.base.w_Q_b"] = np.array([quat], np.float32)
    feeds["ctx.step_count"] = np.array(0, np.int32)
    obs = run(session(example.model), feeds)["obs"]
    np.testing.assert_allclose(obs[0, 6:9], gravity, atol=1e-6)
    np.testing.assert_allclose(projected_gravity(np.array([quat]))[0], gravity, atol=1e-12)


def test_every_output_matches_the_reference_at_every_tick(example: Compiled) -> None:
    """ctx.step_count = 0, 1, 2, ...; memory.X.in = the previous call's memory.X.out."""
    spec = SPECS[example.name]
    reference = Reference(spec, example.actor)
    sess = session(example.model)
    memory: Arrays = {}  # the first call leaves memory to the file's initializers
    stream = input_stream(spec, seed=11)
    policy_ticks = 0
    for k in range(TICKS):
        x = next(stream)
        got = run(sess, {**x, **memory, "ctx.step_count": np.array(k, np.int32)})
        want = reference.tick(k, x.copy())
        assert_tick_matches(got, want, k)
        memory = {
            name[: -len(".out")] + ".in": value
            for name, value in got.items()
            if name.startswith("memory.")
        }
        policy_ticks += k % spec.decimation == 0
        if k % spec.decimation:
            assert not got["actions"].any() and not got["obs"].any(), k
    assert policy_ticks == TICKS // spec.decimation


def test_the_clips_act_in_the_quadruped_stream(compiled: dict[str, Compiled]) -> None:
    """The random stream must reach the clips, or the test above would not check them."""
    spec = SPECS["quadruped"]
    reference = Reference(spec, compiled["quadruped"].actor)
    stream = input_stream(spec, seed=11)
    outs = [reference.tick(k, next(stream)) for k in range(TICKS)]
    assert any(np.abs(o["obs"]).max() == 100.0 for o in outs)
    assert any(np.abs(o[EFFORT]).max() == 25.0 for o in outs)
    norms = [np.linalg.norm(x["obj.robot.base.w_Q_b"]) for x in (next(stream) for _ in range(9))]
    assert min(abs(n - 1.0) for n in norms) > 1e-3


def test_the_runtime_matches_the_reference_across_a_reset(example: Compiled) -> None:
    """Runtime owns the tick and the memory; reset() goes back to tick 0 and initial values."""
    spec = SPECS[example.name]
    runtime = Runtime(example.path)
    reference = Reference(spec, example.actor)
    stream = input_stream(spec, seed=5)
    k = 0
    for call in range(TICKS):
        if call == 30:
            runtime.reset()
            reference.reset()
            k = 0
        assert runtime.tick == k
        x = next(stream)
        assert_tick_matches(runtime.step(x), reference.tick(k, x.copy()), k)
        k += 1


def test_first_tick_one_is_exploys_convention(example: Compiled) -> None:
    """exploy's controller adds 1 before each call: the first call is an apply-only step."""
    spec = SPECS[example.name]
    runtime = Runtime(example.path, first_tick=1)
    reference = Reference(spec, example.actor)
    stream = input_stream(spec, seed=3)
    for call in range(TICKS):
        x = next(stream)
        got = runtime.step(x)
        assert_tick_matches(got, reference.tick(call + 1, x.copy()), call + 1)
        if call == 0:
            assert not got["actions"].any() and not got["obs"].any()
    assert runtime.tick == TICKS + 1


def test_the_first_apply_only_call_holds_the_default_pose(compiled: dict[str, Compiled]) -> None:
    """Before the first policy step the joint target is q0, never zero (DESIGN.md section 3)."""
    runtime = Runtime(compiled["quadruped"].path, first_tick=1)
    stream = input_stream(SPECS["quadruped"], seed=4)
    for _ in range(3):  # calls with ticks 1, 2, 3: apply-only
        x = next(stream)
        out = runtime.step(x)
        np.testing.assert_array_equal(out[POS], Q0.astype(np.float32))
        np.testing.assert_array_equal(out["memory.joint_pos.processed_actions.out"], out[POS])
        np.testing.assert_array_equal(out[VEL], np.zeros((1, 12), np.float32))
        q, qd = x["obj.robot.joints.pos"], x["obj.robot.joints.vel"]
        expected = np.clip(20.0 * (Q0 - q) - 0.5 * qd, -25.0, 25.0)
        np.testing.assert_allclose(out[EFFORT], expected, atol=ATOL)
    out = runtime.step(next(stream))  # tick 4: the first policy step moves the target
    assert not np.allclose(out[POS], Q0)


def test_an_apply_only_step_keeps_memory_and_recomputes_outputs(
    compiled: dict[str, Compiled],
) -> None:
    """On apply-only ticks memory passes through and the torque follows the new state."""
    runtime = Runtime(compiled["quadruped"].path)
    stream = input_stream(SPECS["quadruped"], seed=9)
    policy = runtime.step(next(stream))
    for _ in range(3):
        x = next(stream)
        out = runtime.step(x)
        for name in ("memory.actions.out", "memory.joint_pos.processed_actions.out"):
            np.testing.assert_array_equal(out[name], policy[name])
        target = policy["memory.joint_pos.processed_actions.out"]
        torque = 20.0 * (target - x["obj.robot.joints.pos"]) - 0.5 * x["obj.robot.joints.vel"]
        np.testing.assert_allclose(out[EFFORT], np.clip(torque, -25, 25), atol=ATOL)


def test_the_actor_sees_last_steps_actions(compiled: dict[str, Compiled]) -> None:
    """memory.actions carries the previous policy step's actions into the next observation."""
    example = compiled["tutorial"]
    runtime = Runtime(example.path)
    stream = input_stream(SPECS["tutorial"], seed=2)
    first = runtime.step(next(stream))
    np.testing.assert_array_equal(first["obs"][:, 8:], np.zeros((1, 2)))
    for _ in range(3):
        runtime.step(next(stream))
    second = runtime.step(next(stream))
    np.testing.assert_allclose(second["obs"][:, 8:], first["actions"], atol=1e-7)
    actor: MlpActor = example.actor
    np.testing.assert_allclose(second["actions"], actor(second["obs"]), atol=ATOL)


def test_random_stream_is_reproducible() -> None:
    a = next(input_stream(SPECS["quadruped"], 1))
    b = next(input_stream(SPECS["quadruped"], 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
