"""A gait-phase locomotion policy: observation history, a phase clock and rsl_rl's normalizer.

The library generates what these need: the history buffers (memory.history.*), the clock (from
the tick, ctx.step_count), the normalizer's constants and the joint target held between policy
steps (memory.joint_pos.processed_actions); the program declares no memory by hand. Compile and
check it:

    exploy-dsl compile examples/gait.py -o gait.onnx
    exploy-dsl explain gait.onnx        # history frames, clock, normalizer statistics
    exploy-dsl check gait.onnx examples/gait.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exploy_dsl import Program, clip, joint_position_action, normalizer, phase_clock, term

JOINT_NAMES = [
    "FL_hip", "FL_thigh", "FL_calf",
    "FR_hip", "FR_thigh", "FR_calf",
    "RL_hip", "RL_thigh", "RL_calf",
    "RR_hip", "RR_thigh", "RR_calf",
]  # fmt: skip
DEFAULT_POS = np.array(
    [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5], dtype=np.float32
)
HISTORY = 3  # policy steps of joint state and base rate the policy sees (Isaac Lab's layout)
GAIT_PERIOD = 0.5  # seconds per gait cycle
DECIMATION, SIM_DT = 4, 0.005
ACTION_SCALE, KP, KD, EFFORT_LIMIT = 0.25, 20.0, 0.5, 25.0
N_OBS = 3 * HISTORY + 3 + 2 + 12 * HISTORY * 2

program = Program("gait", decimation=DECIMATION, sim_dt=SIM_DT)
joints = program.joints("robot", names=JOINT_NAMES)
base = program.base("robot", "base", lin_vel=False, orientation=False)
command = program.se2_velocity_command(
    "base_velocity",
    ranges={"lin_vel_x": (-1.0, 1.0), "lin_vel_y": (-0.5, 0.5), "ang_vel_z": (-1.0, 1.0)},
)
# Isaac Lab's JointPositionAction: target = actions * 0.25 + DEFAULT_POS, held between policy
# steps, DEFAULT_POS after a reset.
joint_pos = joint_position_action(program, "joint_pos", 12, scale=ACTION_SCALE, offset=DEFAULT_POS)
targets = program.joint_targets(articulation="joint_pos", names=JOINT_NAMES, stiffness=0, damping=0)

# The statistics rsl_rl learned during training. With a real run:
#     NORMALIZER = Normalizer.from_rsl_rl("logs/rsl_rl/gait/model_1500.pt")
_stats = np.random.default_rng(0)
NORMALIZER = normalizer(
    mean=_stats.normal(0.0, 0.1, N_OBS), std=_stats.uniform(0.5, 1.5, N_OBS)
)  # (x - mean) / (std + 0.01), rsl_rl's EmpiricalNormalization


@program.observations(clip=(-100.0, 100.0), normalize=NORMALIZER)
def observations(v: Any) -> list[Any]:
    return [
        term("base_ang_vel", v[base.ang_vel], scale=0.25, history=HISTORY),
        term("velocity_commands", v[command], scale=(2.0, 2.0, 0.25)),
        term("gait_phase", phase_clock(v, period=GAIT_PERIOD)),  # sin, cos of the phase
        term("joint_pos", v[joints.pos] - DEFAULT_POS, history=HISTORY),
        term("joint_vel", v[joints.vel], scale=0.05, history=HISTORY),
    ]


@program.process_actions(n_actions=12)
def process_actions(v: Any, actions: Any) -> None:
    joint_pos(v, actions)


@program.apply_actions
def apply_actions(v: Any) -> dict[Any, Any]:
    torque = KP * (v[joint_pos] - v[joints.pos]) - KD * v[joints.vel]
    return {
        targets.pos: v[joint_pos],
        targets.vel: 0.0,
        targets.effort: clip(torque, -EFFORT_LIMIT, EFFORT_LIMIT),
    }


def actor(seed: int = 0) -> Any:
    """A default MLP actor (rsl_rl's shape, smaller) with seeded random weights."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(N_OBS, 64), torch.nn.ELU(), torch.nn.Linear(64, 12),
    )  # fmt: skip
    return net.eval()
