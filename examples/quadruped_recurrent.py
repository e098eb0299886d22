"""The quadruped (examples/quadruped.py) with a recurrent actor: an LSTM with explicit state.

The same ports, rates and stages as examples/quadruped.py (its constants and its gravity
formula are imported from there); what is new is the actor's state, declared as program memory
and connected to the actor's ``forward(obs, h, c) -> (actions, h, c)``:

    h = program.memory("policy.h", (LAYERS, HIDDEN), batch_axis=1)   # file: [LAYERS, 1, HIDDEN]
    c = program.memory("policy.c", (LAYERS, HIDDEN), batch_axis=1)
    program.actor(state=[h, c])

The file then carries ``memory.policy.h.in/.out`` and ``memory.policy.c.in/.out`` (zeros after
every reset), written on policy steps and passed through on apply-only ticks. Needs torch
(``pip install torch==2.13.0``). Compile and check it:

    exploy-dsl compile examples/quadruped_recurrent.py -o quadruped_recurrent.onnx
    exploy-dsl check quadruped_recurrent.onnx examples/quadruped_recurrent.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from quadruped import (
    ACTION_SCALE,
    DEFAULT_POS,
    EFFORT_LIMIT,
    JOINT_NAMES,
    KD,
    KP,
    projected_gravity,
)

from exploy_dsl import Program, joint_position_action, op, term

LAYERS, HIDDEN = 1, 64  # rsl_rl's ActorCriticRecurrent shape (one LSTM layer), smaller

program = Program("quadruped_recurrent", decimation=4, sim_dt=0.005)
joints = program.joints("robot", names=JOINT_NAMES)
base = program.base("robot", "base")
command = program.se2_velocity_command(
    "base_velocity",
    ranges={"lin_vel_x": (-1.0, 1.0), "lin_vel_y": (-0.5, 0.5), "ang_vel_z": (-1.0, 1.0)},
)
last_actions = program.memory("actions", 12)
# Isaac Lab's JointPositionAction: actions * scale + q0, held between policy steps in generated
# memory joint_pos.processed_actions (q0 after a reset).
target = joint_position_action(program, "joint_pos", 12, scale=ACTION_SCALE, offset=DEFAULT_POS)
targets = program.joint_targets(articulation="joint_pos", names=JOINT_NAMES, stiffness=0, damping=0)
# The LSTM's state, [layers, batch, hidden] as torch keeps it: the batch is axis 1.
h = program.memory("policy.h", (LAYERS, HIDDEN), batch_axis=1)
c = program.memory("policy.c", (LAYERS, HIDDEN), batch_axis=1)
program.actor(state=[h, c])  # forward(obs, h, c) -> (actions, h, c)


@program.observations(clip=(-100.0, 100.0))
def observations(v: Any) -> list[Any]:
    return [
        term("base_lin_vel", v[base.lin_vel], scale=2.0),
        term("base_ang_vel", v[base.ang_vel], scale=0.25),
        term("projected_gravity", projected_gravity(v[base.orientation])),
        term("velocity_commands", v[command], scale=(2.0, 2.0, 0.25)),
        term("joint_pos", v[joints.pos] - DEFAULT_POS),
        term("joint_vel", v[joints.vel], scale=0.05),
        term("actions", v[last_actions]),
    ]


@program.process_actions(n_actions=12)
def process_actions(v: Any, actions: Any) -> dict[Any, Any]:
    target(v, actions)  # the held joint target
    return {last_actions: actions}


@program.apply_actions
def apply_actions(v: Any) -> dict[Any, Any]:
    torque = KP * (v[target] - v[joints.pos]) - KD * v[joints.vel]
    return {
        targets.pos: v[target],
        targets.vel: 0.0,
        targets.effort: op.clip(
            torque, op.const(np.float32(-EFFORT_LIMIT)), op.const(np.float32(EFFORT_LIMIT))
        ),
    }


class RecurrentPolicy(torch.nn.Module):  # type: ignore[misc]
    """An LSTM then an MLP head; the state is explicit: ``forward(obs, h, c) -> (a, h, c)``.

    ``obs`` is ``[batch, 48]``; ``h`` and ``c`` are ``[LAYERS, batch, HIDDEN]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(48, HIDDEN, LAYERS)
        self.head = torch.nn.Sequential(
            torch.nn.Linear(HIDDEN, 64), torch.nn.ELU(), torch.nn.Linear(64, 12)
        )

    def forward(
        self, obs: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (h, c) = self.rnn(obs.unsqueeze(0), (h, c))
        return self.head(out.squeeze(0)), h, c


def actor(seed: int = 0) -> Any:
    """A default recurrent actor with seeded random weights."""
    torch.manual_seed(seed)
    return RecurrentPolicy().eval()
