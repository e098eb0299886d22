"""A 12-joint quadruped locomotion policy (DESIGN.md section 5, "quadruped").

The policy runs every 4th tick of a 200 Hz loop; the PD torque is computed at every tick, in the
file, from the joint target the policy last set. Compile and check it:

    exploy-dsl compile examples/quadruped.py -o quadruped.onnx
    exploy-dsl check quadruped.onnx examples/quadruped.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exploy_dsl import Program, clip, joint_position_action, projected_gravity, term

JOINT_NAMES = [
    "FL_hip", "FL_thigh", "FL_calf",
    "FR_hip", "FR_thigh", "FR_calf",
    "RL_hip", "RL_thigh", "RL_calf",
    "RR_hip", "RR_thigh", "RR_calf",
]  # fmt: skip
DEFAULT_POS = np.array(
    [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5], dtype=np.float32
)
ACTION_SCALE = 0.25
KP, KD, EFFORT_LIMIT = 20.0, 0.5, 25.0

program = Program("quadruped", decimation=4, sim_dt=0.005)
# exploy's robot vocabulary: standard wire names plus the metadata its controller binds them by.
joints = program.joints("robot", names=JOINT_NAMES)  # obj.robot.joints.{pos,vel}, joint_names
base = program.base("robot", "base")  # obj.robot.base.{lin_vel..., ang_vel..., w_Q_b}, base_names
command = program.se2_velocity_command(
    "base_velocity",
    ranges={"lin_vel_x": (-1.0, 1.0), "lin_vel_y": (-0.5, 0.5), "ang_vel_z": (-1.0, 1.0)},
)
last_actions = program.memory("actions", 12)
# Isaac Lab's JointPositionAction: actions * scale + q0, held between policy steps in generated
# memory joint_pos.processed_actions (q0 after a reset).
target = joint_position_action(program, "joint_pos", 12, scale=ACTION_SCALE, offset=DEFAULT_POS)
# In-graph PD torque, so exploy's gains are 0. Targets go to articulation joint_pos (README).
targets = program.joint_targets(articulation="joint_pos", names=JOINT_NAMES, stiffness=0, damping=0)


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
        targets.effort: clip(torque, -EFFORT_LIMIT, EFFORT_LIMIT),
    }


def actor(seed: int = 0) -> Any:
    """A default 48 -> 12 MLP actor (rsl_rl's shape, smaller) with seeded random weights."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(48, 64), torch.nn.ELU(), torch.nn.Linear(64, 64), torch.nn.ELU(),
        torch.nn.Linear(64, 12),
    )  # fmt: skip
    return net.eval()
