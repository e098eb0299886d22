"""Real Stable-Baselines3 policies, from training to a compiled file driving gymnasium's Pendulum.

PPO and SAC are trained for a moment on ``Pendulum-v1`` (seeded), saved and loaded back as SB3
checkpoints, and exported the way SB3's export docs show (``OnnxablePolicy``: PPO's action and
value heads, SAC's actor squashed by Tanh; TorchScript exporter, opset 9 as in the docs). The
program reads the pendulum's joint (angle, velocity), builds SB3's observation
``[cos, sin, velocity]`` and turns the action into the joint effort as SB3's ``predict`` does:
PPO's Gaussian mean clipped to the action space, SAC's squashed action unscaled to it. The
file then steps beside ``model.predict(obs, deterministic=True)`` in the real environment.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler import check_parity, compile_program
from exploy_dsl import Program, Runtime, clip, op, term, unscale_action

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")
gym = pytest.importorskip("gymnasium")

LOW, HIGH = -2.0, 2.0  # Pendulum-v1's torque bounds
JOINT = "obj.pendulum.joints"
EFFORT = "output.joint_targets.pendulum.effort"


def pendulum_program(squashed: bool, normalize: Any = None) -> Program:
    p = Program("pendulum", decimation=1, sim_dt=0.05)  # Pendulum-v1: dt 0.05, a policy per step
    joints = p.joints("pendulum", names=["hinge"])
    targets = p.joint_targets(articulation="pendulum", names=["hinge"], stiffness=0, damping=0)
    torque = p.memory("torque", 1)

    @p.observations(normalize=normalize)
    def observations(v: Any) -> list[Any]:
        return [
            term("cos", op.cos(v[joints.pos])),
            term("sin", op.sin(v[joints.pos])),
            term("velocity", v[joints.vel]),
        ]

    @p.process_actions(n_actions=1)
    def process_actions(v: Any, actions: Any) -> dict[Any, Any]:
        if squashed:  # SAC: tanh in [-1, 1], unscaled to the action space
            return {torque: unscale_action(actions, LOW, HIGH)}
        return {torque: clip(actions, LOW, HIGH)}  # PPO: predict clips the Gaussian mean

    @p.apply_actions
    def apply_actions(v: Any) -> dict[Any, Any]:
        return {targets.pos: v[joints.pos], targets.vel: 0.0, targets.effort: v[torque]}

    return p


class OnnxablePPO(torch.nn.Module):  # type: ignore[misc]
    """SB3's export docs for PPO: the shared extractor, then the action and value heads."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.extractor = policy.mlp_extractor
        self.action_net = policy.action_net
        self.value_net = policy.value_net

    def forward(self, observation: Any) -> Any:
        action_hidden, value_hidden = self.extractor(observation)
        return self.action_net(action_hidden), self.value_net(value_hidden)


class OnnxableSAC(torch.nn.Module):  # type: ignore[misc]
    """SB3's export docs for SAC: the actor's latent network and mean, squashed by Tanh."""

    def __init__(self, actor: Any) -> None:
        super().__init__()
        self.actor = torch.nn.Sequential(actor.latent_pi, actor.mu, torch.nn.Tanh())

    def forward(self, observation: Any) -> Any:
        return self.actor(observation)


def trained(algorithm: str, folder: Path) -> Any:
    """A seeded policy trained for a moment, saved as an SB3 checkpoint and loaded back."""
    env = gym.make("Pendulum-v1")
    if algorithm == "ppo":
        model = sb3.PPO(
            "MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu"
        )
        model.learn(128)
        loaded = sb3.PPO.load(_saved(model, folder / "ppo.zip"), device="cpu")
    else:
        model = sb3.SAC(
            "MlpPolicy", env, learning_starts=64, batch_size=32, buffer_size=1000, seed=0,
            device="cpu",
        )  # fmt: skip
        model.learn(96)
        loaded = sb3.SAC.load(_saved(model, folder / "sac.zip"), device="cpu")
    return loaded


def _saved(model: Any, path: Path) -> Path:
    model.save(path)
    return path


def onnxable(algorithm: str, model: Any) -> Any:
    if algorithm == "ppo":
        return OnnxablePPO(model.policy).eval()
    return OnnxableSAC(model.policy.actor).eval()


def exported(module: Any, path: Path) -> Path:
    """``torch.onnx.export`` as SB3's docs call it (opset 9, input named "input")."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, torch.randn(1, 3), buffer, opset_version=9, input_names=["input"],
            dynamo=False,
        )  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module", params=["ppo", "sac"])
def policy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    algorithm = str(request.param)
    folder = tmp_path_factory.mktemp(algorithm)
    model = trained(algorithm, folder)
    module = onnxable(algorithm, model)
    return algorithm, model, module, exported(module, folder / f"{algorithm}.onnx")


def _program_for(algorithm: str) -> Program:
    p = pendulum_program(squashed=algorithm == "sac")
    if algorithm == "ppo":
        p.actor(actions=0)  # the action head; the value head is dropped
    return p


def drive_pendulum(
    runtime: Runtime, predict: Any, *, seed: int, steps: int
) -> tuple[float, list[float]]:
    """Step gymnasium's Pendulum with ``predict``'s actions, the file fed the joint beside it:
    the largest |file's effort - SB3's action| and the file's efforts."""
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    worst, efforts = 0.0, []
    for _ in range(steps):
        theta, velocity = (float(x) for x in env.unwrapped.state)
        out = runtime.step(
            {f"{JOINT}.pos": np.array([[theta]]), f"{JOINT}.vel": np.array([[velocity]])}
        )
        action, _ = predict(obs, deterministic=True)
        efforts.append(float(out[EFFORT][0, 0]))
        worst = max(worst, float(np.abs(out[EFFORT][0] - action).max()))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    return worst, efforts


def test_the_exported_checkpoint_drives_pendulum_as_sb3_predict_does(policy: Any) -> None:
    algorithm, model, _, onnx_path = policy
    runtime = Runtime(compile_program(_program_for(algorithm), onnx_path))
    worst, efforts = drive_pendulum(runtime, model.predict, seed=3, steps=120)
    assert all(LOW <= effort <= HIGH for effort in efforts)
    # float32 cos/sin of the angle against gymnasium's float64 ones, then the network.
    assert worst < 1e-4, worst


def test_the_checkpoint_as_file_and_as_module_passes_check(policy: Any) -> None:
    algorithm, _, module, onnx_path = policy
    p = _program_for(algorithm)
    assert check_parity(compile_program(p, onnx_path), p, onnx_path, steps=200).ok
    from_module = compile_program(p, module, exporter="torchscript")
    assert check_parity(from_module, p, module, steps=200).ok


def test_a_wrong_head_is_not_passed(tmp_path: Path) -> None:
    model = trained("ppo", tmp_path)
    onnx_path = exported(onnxable("ppo", model), tmp_path / "ppo.onnx")
    p = pendulum_program(squashed=False)
    p.actor(actions=1)  # the value head: a file of the right shape that does something else
    file = compile_program(p, onnx_path)
    assert not check_parity(file, _program_for("ppo"), onnx_path, steps=50).ok


# -- VecNormalize: the observation normalizer SB3 keeps beside the policy -----------------------


def test_a_vec_normalize_policy_drives_pendulum_with_its_normalizer(tmp_path: Path) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from exploy_dsl import Normalizer

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), norm_reward=False)
    venv.seed(0)
    model = sb3.PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(256)
    venv.save(tmp_path / "vecnormalize.pkl")
    stats = VecNormalize.load(
        str(tmp_path / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    )
    stats.training = False
    assert not np.allclose(stats.obs_rms.var, 1.0)  # the statistics moved during training

    p = pendulum_program(
        squashed=False, normalize=Normalizer.from_sb3(tmp_path / "vecnormalize.pkl")
    )
    p.actor(actions=0)
    onnx_path = exported(onnxable("ppo", model), tmp_path / "ppo.onnx")
    runtime = Runtime(compile_program(p, onnx_path))

    def predict(obs: Any, deterministic: bool) -> Any:
        return model.predict(stats.normalize_obs(obs), deterministic=deterministic)

    worst, _ = drive_pendulum(runtime, predict, seed=4, steps=100)
    assert worst < 1e-4, worst
    assert check_parity(compile_program(p, onnx_path), p, onnx_path, steps=100).ok

    plain = pendulum_program(squashed=False)  # the same policy without its normalizer
    plain.actor(actions=0)
    runtime = Runtime(compile_program(plain, onnx_path))
    theta, velocity = 2.0, -3.0
    obs = np.array([np.cos(theta), np.sin(theta), velocity], np.float32)
    out = runtime.step(
        {f"{JOINT}.pos": np.array([[theta]]), f"{JOINT}.vel": np.array([[velocity]])}
    )
    action, _ = model.predict(stats.normalize_obs(obs), deterministic=True)
    assert np.abs(out[EFFORT][0] - action).max() > 1e-3  # forgetting it is not harmless


def test_from_sb3_refuses_what_is_not_an_observation_normalizer(tmp_path: Path) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from exploy_dsl import DeclarationError, Normalizer

    with pytest.raises(DeclarationError, match=r"missing.pkl' does not exist"):
        Normalizer.from_sb3(tmp_path / "missing.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(
        DeclarationError, match=r"cannot read .*junk.pkl.* as a pickled VecNormalize"
    ):
        Normalizer.from_sb3(tmp_path / "junk.pkl")
    with pytest.raises(DeclarationError, match=r"is a dict, not SB3's VecNormalize"):
        Normalizer.from_sb3({"mean": [0.0]})
    raw = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), norm_obs=False)
    with pytest.raises(
        DeclarationError, match=r"does not normalize observations \(norm_obs=False\)"
    ):
        Normalizer.from_sb3(raw)
    with pytest.raises(DeclarationError, match=r"key='x' given, but"):
        Normalizer.from_sb3(VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")])), key="x")


# -- a discrete policy: CartPole's logits, argmax, a force on the cart ---------------------------

FORCE = 10.0  # CartPole-v1's force_mag: action 0 pushes left, 1 pushes right


def cartpole_program() -> Program:
    from exploy_dsl import argmax

    p = Program("cartpole", decimation=1, sim_dt=0.02)  # CartPole-v1: tau 0.02
    cart = p.joints("cart", names=["slider"])
    pole = p.joints("pole", names=["hinge"])
    push = p.joint_targets(articulation="cart", names=["slider"], stiffness=0, damping=0)
    force = p.memory("force", 1)

    @p.observations
    def observations(v: Any) -> list[Any]:  # CartPole's [x, x_dot, theta, theta_dot]
        return [
            term("x", v[cart.pos]),
            term("x_dot", v[cart.vel]),
            term("theta", v[pole.pos]),
            term("theta_dot", v[pole.vel]),
        ]

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, logits: Any) -> dict[Any, Any]:
        right = op.cast(argmax(logits), to=np.float32)  # 0 or 1
        return {force: right * (2 * FORCE) - FORCE}

    @p.apply_actions
    def apply_actions(v: Any) -> dict[Any, Any]:
        return {push.pos: v[cart.pos], push.vel: 0.0, push.effort: v[force]}

    p.actor(actions=0)  # the logits; the value head is dropped
    return p


def test_a_discrete_ppo_policy_pushes_the_cart_as_sb3_predict_does(tmp_path: Path) -> None:
    env = gym.make("CartPole-v1")
    model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.learn(256)
    model = sb3.PPO.load(_saved(model, tmp_path / "cartpole.zip"), device="cpu")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            OnnxablePPO(model.policy).eval(), torch.randn(1, 4), buffer, opset_version=9,
            input_names=["input"], dynamo=False,
        )  # fmt: skip
    (tmp_path / "cartpole.onnx").write_bytes(buffer.getvalue())
    p = cartpole_program()
    file = compile_program(p, tmp_path / "cartpole.onnx")
    runtime = Runtime(file)
    obs, _ = env.reset(seed=5)
    pushed = set()
    for _ in range(200):
        x, x_dot, theta, theta_dot = (float(s) for s in env.unwrapped.state)
        out = runtime.step(
            {
                "obj.cart.joints.pos": np.array([[x]]),
                "obj.cart.joints.vel": np.array([[x_dot]]),
                "obj.pole.joints.pos": np.array([[theta]]),
                "obj.pole.joints.vel": np.array([[theta_dot]]),
            }
        )
        action, _ = model.predict(obs, deterministic=True)
        effort = float(out["output.joint_targets.cart.effort"][0, 0])
        assert effort == (FORCE if int(action) == 1 else -FORCE)
        pushed.add(effort)
        obs, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            obs, _ = env.reset()
    assert pushed == {FORCE, -FORCE}  # both actions were taken
    assert check_parity(file, p, tmp_path / "cartpole.onnx", steps=200).ok
