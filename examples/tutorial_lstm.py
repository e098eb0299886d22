"""exploy's tutorial environment with its LSTM actor ("Advanced: RNN-Based Actors").

The environment is examples/tutorial.py, unchanged (the same ports, stages and numbers); only the
actor differs: exploy's ``RNNActor``, an LSTM (hidden 5, one layer, ``batch_first=False``) that
keeps its state inside itself, behind ``get_state()`` and ``reset(dones)``. Nothing about the state
is declared: the compiler finds the state the module keeps, lifts it into the file's memory
``actor.state_0`` (h) and ``actor.state_1`` (c), ``[1, 1, 5]`` each, starting at zeros after every
reset, as exploy's ``add_actor_memory`` does. Needs torch (``pip install torch==2.13.0``).

    exploy-dsl compile examples/tutorial_lstm.py -o tutorial_lstm.onnx
    exploy-dsl check tutorial_lstm.onnx examples/tutorial_lstm.py
"""

from __future__ import annotations

from typing import Any

import torch
from tutorial import program  # noqa: F401 - the environment of exploy's tutorial, as it is

HIDDEN_DIM, NUM_RNN_LAYERS = 5, 1


class Actor(torch.nn.Module):  # type: ignore[misc]
    """exploy's tutorial MLP: Linear ELU Linear ReLU Linear ELU, 10 hidden units."""

    def __init__(self, num_obs: int, num_act: int) -> None:
        super().__init__()
        self._net = torch.nn.Sequential(
            torch.nn.Linear(num_obs, 10),
            torch.nn.ELU(),
            torch.nn.Linear(10, 10),
            torch.nn.ReLU(),
            torch.nn.Linear(10, num_act),
            torch.nn.ELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._net(x)


class RNNActor(torch.nn.Module):  # type: ignore[misc]
    """exploy's tutorial ``RNNActor``: an LSTM-based policy with persistent hidden state.

    ``forward(x)`` takes ``[batch, num_obs]``; the state ``(h, c)``, each
    ``[layers, batch, hidden]``, is None until the first call (torch reads None as zeros).
    ``reset(dones)`` zeroes the state of the environments where ``dones`` (bool ``[batch]``)
    is set; ``get_state()`` returns ``(h, c)`` or None.
    """

    def __init__(self, num_obs: int, num_act: int) -> None:
        super().__init__()
        self._rnn = torch.nn.LSTM(
            input_size=num_obs,
            hidden_size=HIDDEN_DIM,
            num_layers=NUM_RNN_LAYERS,
            batch_first=False,
        )
        self._net = Actor(num_obs=HIDDEN_DIM, num_act=num_act)
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset(self, dones: torch.Tensor) -> None:
        if self._state is None:
            return
        for state in self._state:
            state[:, dones, :] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rnn_out, self._state = self._rnn(x.unsqueeze(dim=0), self._state)
        return self._net(rnn_out.squeeze(dim=0))

    def get_state(self) -> tuple[torch.Tensor, ...] | None:
        return self._state


def actor(seed: int = 0) -> Any:
    """exploy's RNNActor for the tutorial's 10 observations and 2 actions, seeded weights."""
    torch.manual_seed(seed)
    return RNNActor(num_obs=10, num_act=2).eval()
