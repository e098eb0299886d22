"""Actors that keep state inside: lifted into memory and matched against the module, or refused."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler import check_parity, compile_program
from exploy_dsl import ActorError, Program, Runtime, read_contract

torch = pytest.importorskip("torch")

N_OBS, N_ACTIONS, HIDDEN = 6, 2, 8
DECIMATION = 2


def program() -> Program:
    p = Program("stateful", decimation=DECIMATION, sim_dt=0.01)
    x = p.input("x", N_OBS)
    y = p.output("y", N_ACTIONS)
    last = p.memory("last", N_ACTIONS)

    @p.observations
    def observations(v: Any) -> Any:
        return [("x", v[x])]

    @p.process_actions(n_actions=N_ACTIONS)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: v[last]}

    return p


class BufferLSTM(torch.nn.Module):  # type: ignore[misc]
    """legged_gym's exporter style: the state lives in buffers copied into in place."""

    def __init__(self) -> None:
        super().__init__()
        self.memory = torch.nn.LSTM(N_OBS, HIDDEN)
        self.actor = torch.nn.Linear(HIDDEN, N_ACTIONS)
        self.register_buffer("hidden_state", torch.zeros(1, 1, HIDDEN))
        self.register_buffer("cell_state", torch.zeros(1, 1, HIDDEN))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.memory(obs.unsqueeze(0), (self.hidden_state, self.cell_state))
        self.hidden_state[:] = h
        self.cell_state[:] = c
        return self.actor(out.squeeze(0))


class AssignedGRU(torch.nn.Module):  # type: ignore[misc]
    """rsl_rl's as_jit style: forward() assigns the new state to an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(N_OBS, HIDDEN)
        self.actor = torch.nn.Linear(HIDDEN, N_ACTIONS)
        self.hidden_state = torch.zeros(1, 1, HIDDEN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out, h = self.rnn(obs.unsqueeze(0), self.hidden_state)
        self.hidden_state = h
        return self.actor(out.squeeze(0))


class ExployStyleRNN(torch.nn.Module):  # type: ignore[misc]
    """exploy's tutorial style: internal state, reset(dones), get_state()."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(N_OBS, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, N_ACTIONS)
        self.state: Any = None

    def reset(self, dones: Any = None) -> None:
        self.state = None

    def get_state(self) -> Any:
        return self.state

    def forward(self, obs: Any) -> Any:
        out, self.state = self.rnn(obs.unsqueeze(1), self.state)
        return self.head(out.squeeze(1))


def scripted_file(module: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.script(module).save(str(path))
    return path


def step_original(load: Any, reset: Any, xs: np.ndarray, resets: np.ndarray) -> np.ndarray:
    """The stateful original as its trainer runs it: reset at an episode start, then a call
    per policy step (zeros on apply-only ticks, as the file's ``actions``)."""
    module, actions, k = load(), [], 0
    for x, start in zip(xs, resets, strict=True):
        if start:
            reset(module)
            k = 0
        if k % DECIMATION == 0:
            with torch.no_grad():
                actions.append(module(torch.from_numpy(x)).numpy())
        else:
            actions.append(np.zeros((1, N_ACTIONS), np.float32))
        k += 1
    return np.stack(actions)


def drive(file: Any, xs: np.ndarray, resets: np.ndarray) -> np.ndarray:
    runtime = Runtime(file)
    out = []
    for x, start in zip(xs, resets, strict=True):
        if start:
            runtime.reset()
        out.append(runtime.step({"x": x})["actions"])
    return np.stack(out)


def stream(ticks: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(ticks, 1, N_OBS)).astype(np.float32)
    resets = np.zeros(ticks, bool)
    resets[[0, 97, 400, 401, 750]] = True
    return xs, resets


def reload(path: Path) -> Any:
    def load() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path))

    return load


def zero_buffers(module: Any) -> None:
    for _, buffer in module.named_buffers():
        if buffer.dim() == 3:
            buffer.zero_()


@pytest.mark.parametrize("kind", ["buffers", "attribute"])
def test_torchscript_state_is_lifted_into_memory_and_matches_the_module(
    kind: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    module = BufferLSTM() if kind == "buffers" else AssignedGRU()
    path = scripted_file(module, tmp_path, kind)
    prog = program()
    file = compile_program(prog, path)
    names = ["hidden_state", "cell_state"] if kind == "buffers" else ["hidden_state"]
    contract = read_contract(file)
    assert contract.memory_names[1:] == tuple(f"actor.{n}" for n in names)
    assert all(w.shape == (1, 1, HIDDEN) for w in contract.memory[1:])

    def reset(m: Any) -> None:  # what rsl_rl's reset() / legged_gym's reset_memory() do
        for name in names:
            getattr(m, name).zero_()

    xs, resets = stream(1000)
    expected = step_original(reload(path), reset, xs, resets)
    np.testing.assert_allclose(drive(file, xs, resets), expected, atol=1e-5, rtol=1e-5)
    report = check_parity(file, prog, path, steps=200)
    assert report.ok, report.render()


def test_an_exploy_style_actor_with_get_state_is_lifted() -> None:
    torch.manual_seed(0)
    module = ExployStyleRNN()
    prog = program()
    file = compile_program(prog, module, exporter="torchscript")
    assert read_contract(file).memory_names[1:] == ("actor.state_0", "actor.state_1")
    xs, resets = stream(1000)
    expected = step_original(lambda: copy.deepcopy(module), lambda m: m.reset(), xs, resets)
    np.testing.assert_allclose(drive(file, xs, resets), expected, atol=1e-5, rtol=1e-5)
    assert check_parity(file, prog, module, steps=200).ok


class Counter(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(N_OBS, N_ACTIONS)
        self.calls = 0

    def forward(self, obs: Any) -> Any:
        self.calls += 1
        return self.linear(obs) * self.calls


class Noisy(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(N_OBS, N_ACTIONS)

    def forward(self, obs: Any) -> Any:
        return self.linear(obs) + torch.randn(1, N_ACTIONS)


def test_state_that_is_not_a_tensor_or_noise_is_refused() -> None:
    with pytest.raises(ActorError, match=r"changes attribute\(s\) 'calls' that are not tensors"):
        compile_program(program(), Counter())
    with pytest.raises(
        ActorError, match=r"returns different actions for the same observation on two calls"
    ):
        compile_program(program(), Noisy())


def test_declared_state_and_state_inside_the_module_are_not_both_taken(tmp_path: Path) -> None:
    torch.manual_seed(0)
    p = program()
    h = p.memory("h", (1, HIDDEN), batch_axis=1)
    p.actor(state=[h])
    with pytest.raises(
        ActorError,
        match=r"torch actor AssignedGRU fails when called as forward\(obs\[1, 6\], "
        r"h_in\[1, 1, 8\]\), as program\.actor\(\.\.\.\) declares it",
    ):
        compile_program(p, scripted_file(AssignedGRU(), tmp_path, "gru"))


def test_compiling_never_changes_the_users_module() -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_OBS, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    )
    module.train()
    weights = [p.detach().clone() for p in module.parameters()]
    compile_program(program(), module, exporter="torchscript")
    assert module.training, "compile put the user's module in eval mode"
    assert all(torch.equal(a, b) for a, b in zip(weights, module.parameters(), strict=True))
    stateful = ExployStyleRNN()
    compile_program(program(), stateful, exporter="torchscript")
    assert stateful.get_state() is None, "compile ran the user's module, not a copy"


def test_a_stateless_torchscript_actor_still_compiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_OBS, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    )
    path = scripted_file(module, tmp_path, "mlp")
    model = compile_program(program(), path)
    assert [o.name for o in model.graph.output][:2] == ["actions", "obs"]


def test_the_reference_interpreter_refuses_a_stateful_module_given_as_is() -> None:
    from compiler import prepare_actor
    from exploy_dsl import ReferenceInterpreter, trace

    torch.manual_seed(0)
    with pytest.raises(
        ActorError,
        match=r"reference actor ExployStyleRNN keeps a state behind get_state\(\): state between "
        r"calls, which the reference interpreter would not reset .* "
        r"compiler\.prepare_actor",
    ):
        ReferenceInterpreter(program(), ExployStyleRNN())
    traced, prepared = prepare_actor(ExployStyleRNN(), trace(program()), opset=20)
    reference = ReferenceInterpreter(traced, prepared)  # prepared: its state is memory
    assert reference.step({"x": np.ones((1, N_OBS), np.float32)})["actions"].any()
