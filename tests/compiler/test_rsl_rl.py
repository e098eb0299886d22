"""Real rsl_rl policies: what its exporters write, compiled, against the rsl_rl model itself.

rsl_rl (5.x) builds each actor as an ``MLPModel`` or ``RNNModel`` whose forward() takes a
TensorDict of observation groups, concatenated in ``obs_groups`` order and normalized inside.
Its exporters give ``as_onnx()`` (``obs[, h_in, c_in] -> actions[, h_out, c_out]``) and
``as_jit()`` (TorchScript that keeps the recurrent state in buffers). Each compiled file is
driven by ``exploy_dsl.Runtime`` over a long stream with resets and compared with the model
stepped by hand, as rsl_rl's own play loop steps it.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from compiler import check_parity, compile_program
from exploy_dsl import ActorError, Program, Runtime, read_contract
from tests._support import session

torch = pytest.importorskip("torch")
pytest.importorskip("rsl_rl")
from rsl_rl.models import MLPModel, RNNModel  # noqa: E402
from tensordict import TensorDict  # noqa: E402

# rsl_rl's order: the actor's observation is cat(policy, extra); critic_only is not the actor's.
GROUPS = {"policy": 9, "extra": 3, "critic_only": 2}
ACTOR_GROUPS = ["policy", "extra"]
N_ACTIONS, HIDDEN = 4, 8
DECIMATION = 2
TICKS = 1000
KINDS: dict[str, tuple[str, int] | None] = {  # the network and its recurrent layers
    "mlp": None,
    "lstm1": ("lstm", 1),
    "lstm2": ("lstm", 2),
    "gru1": ("gru", 1),
    "gru2": ("gru", 2),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Any:
    """These models are tiny: a second torch thread only adds wake-up latency per call (seconds
    over a test when the machine is busy, as CI's is)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def observations(batch: int, gen: Any, shift: float = 0.0) -> Any:
    return TensorDict(
        {g: torch.randn(batch, n, generator=gen) * 2.0 + shift for g, n in GROUPS.items()},
        batch_size=[batch],
    )


def build(kind: str, recurrent_class: Any = None) -> Any:
    """An rsl_rl actor with observation normalization on and trained-like statistics."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    options: dict[str, Any] = {
        "obs": observations(16, gen),
        "obs_groups": {"actor": ACTOR_GROUPS, "critic": ["policy", "critic_only"]},
        "obs_set": "actor",
        "output_dim": N_ACTIONS,
        "hidden_dims": [16, 16],
        "activation": "elu",
        "obs_normalization": True,
        "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0},
    }
    spec = KINDS[kind]
    if spec is None:
        model = MLPModel(**options)
    else:
        rnn, layers = spec
        model = (recurrent_class or RNNModel)(
            **options, rnn_type=rnn, rnn_hidden_dim=HIDDEN, rnn_num_layers=layers
        )
    model.train()
    for i in range(4):  # a mean far from 0 and a std far from 1, as after training
        model.update_normalization(observations(128, gen, shift=1.5 + i))
    model.eval()
    assert list(model.obs_groups) == ACTOR_GROUPS  # the order the program's terms follow
    normalizer = model.obs_normalizer
    assert normalizer._mean.abs().min() > 0.5 and (normalizer._std - 1).abs().max() > 0.1
    return model


class FrameworkPolicy(RNNModel):  # type: ignore[misc]
    """A framework's own subclass of an rsl_rl model, defined outside rsl_rl."""


def program(kind: str, *, declare: bool) -> Program:
    """The observation is the actor groups in rsl_rl's order; ``declare`` binds h_in/c_in."""
    p = Program("rsl_rl_policy", decimation=DECIMATION, sim_dt=0.005)
    groups = {g: p.input(g, GROUPS[g]) for g in ACTOR_GROUPS}
    y = p.output("y", N_ACTIONS)
    last = p.memory("last", N_ACTIONS)
    if declare and KINDS[kind] is not None:
        layers = KINDS[kind][1]
        p.actor(
            state=[p.memory(n, (layers, HIDDEN), batch_axis=1) for n in state(kind, ("h", "c"))]
        )

    @p.observations
    def observations(v: Any) -> Any:
        return [(g, v[port]) for g, port in groups.items()]

    @p.process_actions(n_actions=N_ACTIONS)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: v[last] * 0.5}

    return p


def export_onnx(model: Any, path: Path, *, dynamo: bool) -> Path:
    """What rsl_rl's OnPolicyRunner.export_policy_to_onnx does (torch's default exporter, dynamo),
    or with ``dynamo=False`` what mjlab's override of it does."""
    exported = model.as_onnx(verbose=False).to("cpu").eval()
    options: dict[str, Any] = {"dynamo": False, "dynamic_axes": {}} if not dynamo else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            exported,
            exported.get_dummy_inputs(),
            str(path),
            export_params=True,
            opset_version=18,
            verbose=False,
            input_names=exported.input_names,
            output_names=exported.output_names,
            **options,
        )
    return path


def export_jit(model: Any, path: Path) -> Path:
    """What rsl_rl's OnPolicyRunner.export_policy_to_jit does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.script(model.as_jit()).save(str(path))
    return path


def stream(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = {
        g: (rng.normal(size=(TICKS, 1, GROUPS[g])) * 2.0 + 2.5).astype(np.float32)
        for g in ACTOR_GROUPS
    }
    resets = np.zeros(TICKS, bool)
    resets[0] = True
    resets[rng.choice(np.arange(1, TICKS), size=6, replace=False)] = True
    return xs, resets


def drive(file: onnx.ModelProto, xs: dict[str, np.ndarray], resets: np.ndarray) -> np.ndarray:
    runtime, actions = Runtime(file), []
    for t, reset in enumerate(resets):
        if reset:
            runtime.reset()
        actions.append(runtime.step({g: x[t] for g, x in xs.items()})["actions"])
    return np.stack(actions)


def step_model(model: Any, xs: dict[str, np.ndarray], resets: np.ndarray) -> np.ndarray:
    """The rsl_rl model as its play loop runs it: reset at an episode start, one deterministic
    call per policy step (the file's ``actions`` are zeros on apply-only ticks)."""
    actions, k = [], 0
    with torch.no_grad():
        for t, reset in enumerate(resets):
            if reset:
                model.reset()
                k = 0
            if k % DECIMATION == 0:
                obs = TensorDict({g: torch.from_numpy(x[t]) for g, x in xs.items()}, batch_size=[1])
                actions.append(model(obs).numpy())
            else:
                actions.append(np.zeros((1, N_ACTIONS), np.float32))
            k += 1
    model.reset()
    return np.stack(actions)


@functools.cache
def built(kind: str) -> tuple[Any, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The model, a stream and the model's actions on it; shared by the tests of one kind (the
    model is stepped by hand 500 times per stream)."""
    model = build(kind)
    xs, resets = stream(seed=len(kind) + 7 * list(KINDS).index(kind))
    return model, xs, resets, step_model(model, xs, resets)


def assert_steps_like_the_model(
    file: onnx.ModelProto, kind: str, prog: Program, actor: Path
) -> None:
    _, xs, resets, expected = built(kind)
    np.testing.assert_allclose(drive(file, xs, resets), expected, atol=1e-5, rtol=1e-5)
    report = check_parity(file, prog, actor, steps=200)
    assert report.ok, report.render()


def state(kind: str, names: tuple[str, str]) -> list[str]:
    """The recurrent state: both names for an LSTM, the first for a GRU, none for an MLP."""
    spec = KINDS[kind]
    if spec is None:
        return []
    return list(names) if spec[0] == "lstm" else [names[0]]


def assert_state_memories(file: onnx.ModelProto, kind: str, names: list[str]) -> None:
    contract = read_contract(file)
    assert contract.memory_names == ("last", *names)
    layers = (KINDS[kind] or ("", 0))[1]
    assert [w.shape for w in contract.memory[1:]] == [(layers, 1, HIDDEN)] * len(names)
    assert not any(contract.initial_values[w.name].any() for w in contract.memory[1:])


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_as_onnx_export_compiles_and_steps_like_the_rsl_rl_model(
    kind: str, tmp_path: Path
) -> None:
    path = export_onnx(built(kind)[0], tmp_path / "policy.onnx", dynamo=False)
    prog = program(kind, declare=True)
    file = compile_program(prog, path)
    assert_state_memories(file, kind, state(kind, ("h", "c")))
    assert_steps_like_the_model(file, kind, prog, path)


def test_a_dynamo_export_with_external_data_compiles_into_one_file(tmp_path: Path) -> None:
    path = export_onnx(built("lstm2")[0], tmp_path / "policy.onnx", dynamo=True)
    sidecar = tmp_path / "policy.onnx.data"
    assert sidecar.is_file()  # what rsl_rl's default export writes beside the .onnx
    prog = program("lstm2", declare=True)
    out = tmp_path / "elsewhere" / "compiled.onnx"
    out.parent.mkdir()
    compile_program(prog, path, output=out)
    loaded = onnx.load(str(out), load_external_data=False)
    assert not [t.name for t in loaded.graph.initializer if t.external_data]
    assert sorted(p.name for p in out.parent.iterdir()) == ["compiled.onnx"]
    session(out)  # runs from its own folder, without the sidecar
    assert_steps_like_the_model(loaded, "lstm2", prog, path)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_as_jit_export_has_its_state_lifted_into_memory(kind: str, tmp_path: Path) -> None:
    path = export_jit(built(kind)[0], tmp_path / "policy.pt")
    prog = program(kind, declare=False)
    file = compile_program(prog, path)
    assert_state_memories(file, kind, state(kind, ("actor.hidden_state", "actor.cell_state")))
    assert_steps_like_the_model(file, kind, prog, path)


@pytest.mark.parametrize("kind", ["mlp", "lstm1", "subclass"])
def test_the_rsl_rl_model_itself_is_refused_with_how_to_export_it(kind: str) -> None:
    model = build("lstm1", FrameworkPolicy) if kind == "subclass" else build(kind)
    name = type(model).__name__
    with pytest.raises(
        ActorError,
        match=rf"torch actor {name} is an rsl_rl model: its forward\(\) takes a TensorDict of "
        r"observation groups, not the observation vector\. Fix: export it with rsl_rl's own "
        r"exporter and pass the file: model\.as_onnx\(\.\.\.\)",
    ):
        compile_program(program("mlp" if kind == "mlp" else "lstm1", declare=True), model)
