"""rsl_rl before 4 (ActorCritic and friends): the real packages, refused with the way out, and
the way out followed to a file that matches act_inference.

rsl-rl-lib 2.3.3 and 3.3.0 are installed from the package index without dependencies into
build/rsl_rl_legacy/ (they need only torch, and 3.x tensordict, both in the test venv) and run
in a subprocess, so that they do not meet the rsl_rl 5 of the test venv. Skipped only when the
index cannot be reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("tensordict")

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("2.3.3", "3.3.0")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import rsl_rl
    from compiler import compile_program
    from exploy_dsl import ActorError, Normalizer, Program, Runtime
    from rsl_rl.modules import ActorCritic, ActorCriticRecurrent

    N_OBS, N_ACT = 6, 3
    version = sys.argv[1]
    result = {"rsl_rl": rsl_rl.__file__}
    torch.manual_seed(0)

    def program(normalize=None):
        p = Program("legacy", decimation=1, sim_dt=0.01)
        x = p.input("x", N_OBS)
        y = p.output("y", N_ACT)
        m = p.memory("m", N_ACT)
        p.observations(normalize=normalize)(lambda v: [("x", v[x])])
        p.process_actions(n_actions=N_ACT)(lambda v, a: {m: a})
        p.apply_actions(lambda v: {y: v[m]})
        return p

    if version.startswith("2."):
        ac = ActorCritic(N_OBS, N_OBS, N_ACT, actor_hidden_dims=[16], critic_hidden_dims=[16])
        rec = ActorCriticRecurrent(N_OBS, N_OBS, N_ACT, actor_hidden_dims=[16],
                                   critic_hidden_dims=[16], rnn_hidden_dim=8)
        act = lambda obs: ac.act_inference(obs)
        normalize = None
    else:
        from tensordict import TensorDict
        groups = {"policy": ["policy"], "critic": ["policy"]}
        obs0 = TensorDict({"policy": torch.zeros(1, N_OBS)}, batch_size=[1])
        ac = ActorCritic(obs0, groups, N_ACT, actor_obs_normalization=True,
                         actor_hidden_dims=[16], critic_hidden_dims=[16])
        norm = ac.actor_obs_normalizer
        norm._mean.copy_(torch.randn(1, N_OBS))
        norm._var.copy_(torch.rand(1, N_OBS) + 0.5)
        norm._std.copy_(norm._var.sqrt())
        rec = ActorCriticRecurrent(obs0, groups, N_ACT, actor_hidden_dims=[16],
                                   critic_hidden_dims=[16], rnn_hidden_dim=8)
        act = lambda obs: ac.act_inference(
            TensorDict({"policy": obs}, batch_size=[obs.shape[0]]))
        normalize = Normalizer.from_rsl_rl({"model_state_dict": ac.state_dict()})
    ac.eval()

    for name, module in (("feedforward", ac), ("recurrent", rec)):
        try:
            compile_program(program(), module)
            result[name] = "compiled"
        except ActorError as exc:
            result[name] = str(exc)

    # The way out the message gives: the policy network, the normalizer as an observation step.
    path = sys.argv[2]
    compile_program(program(normalize), ac.actor, output=path)
    runtime = Runtime(path)
    worst = 0.0
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.normal(size=(1, N_OBS)).astype(np.float32)
        got = runtime.step({"x": x})["y"]
        with torch.no_grad():
            want = act(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    result["max_abs_vs_act_inference"] = worst
    print(json.dumps(result))
    """
)


def _install(version: str) -> Path:
    target = ROOT / "build" / "rsl_rl_legacy" / version
    if (target / "rsl_rl").is_dir():
        return target
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), f"rsl-rl-lib=={version}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        text = done.stderr + done.stdout
        if any(w in text for w in ("Could not find", "No matching", "connection", "resolve")):
            pytest.skip(f"rsl-rl-lib=={version} cannot be installed here: {text.strip()[-200:]}")
        raise AssertionError(f"pip failed for rsl-rl-lib=={version}: {text[-2000:]}")
    return target


@pytest.mark.parametrize("version", VERSIONS)
def test_an_old_rsl_rl_actor_critic_is_refused_with_the_way_out_that_works(
    version: str, tmp_path: Path
) -> None:
    target = _install(version)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, version, str(tmp_path / "legacy.onnx")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rsl_rl"].startswith(str(target)), result["rsl_rl"]
    assert result["feedforward"].startswith(
        "torch actor ActorCritic is an rsl_rl (< 4) actor-critic: its forward() is not the "
        "policy (act_inference is, on observation groups). Fix: pass its policy network, "
        "ActorCritic.actor (what act_inference runs)"
    ), result["feedforward"]
    assert result["recurrent"].startswith(
        "torch actor ActorCriticRecurrent is an rsl_rl (< 4) actor-critic"
    ), result["recurrent"]
    assert "export_policy_as_onnx" in result["recurrent"]
    assert "program.actor(state=[h, c])" in result["recurrent"]
    assert result["max_abs_vs_act_inference"] < 1e-5
