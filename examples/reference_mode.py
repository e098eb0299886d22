"""A motion-tracking policy with a reference-mode actor, as GBC exports them.

GBC's exporter writes actors ``obs, ref_obs, ref_mask -> actions``: the robot's own observation,
the reference motion to follow and a bool flag, per robot, saying whether a reference is there.
Here the quadruped of examples/quadruped.py (its joints and constants) follows a reference
joint pose and base velocity, switched on by a boolean command. The actor's three inputs are
bound by name to observation terms and to the command port:

    program.actor(inputs={
        "obs": ["base_ang_vel", "projected_gravity", "joint_pos", "joint_vel", "actions"],
        "ref_obs": ["ref_joint_pos", "ref_base_velocity"],
        "ref_mask": reference_active,                       # cmd.boolean.reference_active
    })

The file's ``obs`` stays the whole observation (all seven terms, ``obs_term_names``); the actor
gets each input gathered from it (or read from the port). The same declaration takes GBC's
ONNX file (``--actor policy.onnx``: inputs named ``obs``, ``ref_obs``, ``ref_mask``, the mask
``bool[1]``). Needs torch for the default actor (``pip install torch==2.13.0``):

    exploy-dsl compile examples/reference_mode.py -o reference_mode.onnx
    exploy-dsl check reference_mode.onnx examples/reference_mode.py
"""

from __future__ import annotations

from typing import Any

import torch
from quadruped import ACTION_SCALE, DEFAULT_POS, JOINT_NAMES, KD, KP, projected_gravity

from exploy_dsl import Program, joint_position_action, term

program = Program("reference_mode", decimation=4, sim_dt=0.005)
joints = program.joints("robot", names=JOINT_NAMES)
base = program.base("robot", "base", lin_vel=False)
reference_pos = program.joint_position_command("reference", names=JOINT_NAMES)
reference_vel = program.se2_velocity_command(
    "reference_velocity",
    ranges={"lin_vel_x": (-1.0, 1.0), "lin_vel_y": (-0.5, 0.5), "ang_vel_z": (-1.0, 1.0)},
)
reference_active = program.boolean_command("reference_active")  # bool [1, 1]
last_actions = program.memory("actions", 12)
# Isaac Lab's JointPositionAction: actions * scale + q0, held between policy steps in generated
# memory joint_pos.processed_actions (q0 after a reset).
target = joint_position_action(program, "joint_pos", 12, scale=ACTION_SCALE, offset=DEFAULT_POS)
# PD on the robot this time: exploy's controller gets the gains with the position targets.
targets = program.joint_targets(articulation="robot", names=JOINT_NAMES, stiffness=KP, damping=KD)
program.actor(
    inputs={
        "obs": ["base_ang_vel", "projected_gravity", "joint_pos", "joint_vel", "actions"],
        "ref_obs": ["ref_joint_pos", "ref_base_velocity"],
        "ref_mask": reference_active,
    }
)


@program.observations(clip=(-100.0, 100.0))
def observations(v: Any) -> list[Any]:
    return [
        term("base_ang_vel", v[base.ang_vel], scale=0.25),
        term("projected_gravity", projected_gravity(v[base.orientation])),
        term("joint_pos", v[joints.pos] - DEFAULT_POS),
        term("joint_vel", v[joints.vel], scale=0.05),
        term("actions", v[last_actions]),
        term("ref_joint_pos", v[reference_pos] - DEFAULT_POS),
        term("ref_base_velocity", v[reference_vel], scale=(2.0, 2.0, 0.25)),
    ]


@program.process_actions(n_actions=12)
def process_actions(v: Any, actions: Any) -> dict[Any, Any]:
    target(v, actions)  # the held joint target
    return {last_actions: actions}


@program.apply_actions
def apply_actions(v: Any) -> dict[Any, Any]:
    return {targets.pos: v[target], targets.vel: 0.0, targets.effort: 0.0}


class ReferencePolicy(torch.nn.Module):  # type: ignore[misc]
    """A stand-in for GBC's BERT-form actor: one token for ``obs``, one for ``ref_obs``, a
    masked attention over them (the reference token is ignored where ``ref_mask`` is False),
    then an MLP head. ``forward(obs [B, 42], ref_obs [B, 15], ref_mask bool [B] or [B, 1])``.
    """

    def __init__(self, n_obs: int = 42, n_ref: int = 15, n_act: int = 12, width: int = 32) -> None:
        super().__init__()
        self.obs_embedding = torch.nn.Linear(n_obs, width)
        self.ref_obs_embedding = torch.nn.Linear(n_ref, width)
        self.query = torch.nn.Linear(width, width)
        self.key = torch.nn.Linear(width, width)
        self.head = torch.nn.Sequential(
            torch.nn.Linear(width, 64), torch.nn.ELU(), torch.nn.Linear(64, n_act)
        )

    def forward(
        self, obs: torch.Tensor, ref_obs: torch.Tensor, ref_mask: torch.Tensor
    ) -> torch.Tensor:
        tokens = torch.stack([self.obs_embedding(obs), self.ref_obs_embedding(ref_obs)], dim=1)
        scores = (self.query(tokens[:, :1]) * self.key(tokens)).sum(-1)  # [B, 2]
        present = torch.cat([torch.ones_like(ref_mask.reshape(-1, 1)), ref_mask.reshape(-1, 1)], 1)
        weights = torch.softmax(scores.masked_fill(~present, float("-inf")), dim=-1)
        return self.head((weights.unsqueeze(-1) * tokens).sum(1))


def actor(seed: int = 0) -> Any:
    """A default reference-mode actor with seeded random weights."""
    torch.manual_seed(seed)
    return ReferencePolicy().eval()
