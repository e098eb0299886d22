"""Actors that keep state between calls are refused, never exported with a frozen state."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from compiler import compile_program
from exploy_dsl import ActorError, Program

torch = pytest.importorskip("torch")

N_OBS, N_ACTIONS, HIDDEN = 6, 2, 8


def program() -> Program:
    p = Program("stateful", decimation=2, sim_dt=0.01)
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


def test_torchscript_that_copies_into_state_buffers_is_refused_naming_them(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    path = scripted_file(BufferLSTM(), tmp_path, "lstm")
    with pytest.raises(
        ActorError,
        match=r"torch actor BufferLSTM's forward\(\) changes its buffer\(s\) 'hidden_state', "
        r"'cell_state'.*freeze as a constant.*does not carry recurrent actors yet",
    ):
        compile_program(program(), path)
    assert not list(tmp_path.glob("*.onnx"))


def test_torchscript_that_assigns_its_state_attribute_is_refused_naming_it(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = scripted_file(AssignedGRU(), tmp_path, "gru")
    with pytest.raises(
        ActorError,
        match=r"torch actor AssignedGRU is TorchScript whose forward\(\) overwrites its "
        r"attribute\(s\) 'hidden_state'",
    ):
        compile_program(program(), path)


def test_an_eager_module_with_internal_state_is_refused() -> None:
    torch.manual_seed(0)
    with pytest.raises(
        ActorError,
        match=r"torch actor ExployStyleRNN returns different actions for the same observation "
        r"on two calls in a row",
    ):
        compile_program(program(), ExployStyleRNN())


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
    with pytest.raises(ActorError):
        compile_program(program(), stateful)
    assert stateful.get_state() is None, "the probe ran the user's module, not a copy"


def test_a_stateless_torchscript_actor_still_compiles(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(N_OBS, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    )
    path = scripted_file(module, tmp_path, "mlp")
    model = compile_program(program(), path)
    assert [o.name for o in model.graph.output][:2] == ["actions", "obs"]
