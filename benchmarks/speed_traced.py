"""What a user could pick instead of exploy-dsl: the quadruped's step as one traced torch module.

benchmarks/speed.py measures exploy-dsl's file against this one. The module does what
examples/quadruped.py declares (the same observation, actor and action processing, the same If
on the tick: policy step every 4th tick, apply-only otherwise), written the way a training
environment's code is, and is exported with torch.onnx's dynamo exporter, which turns
``torch.cond`` into the ONNX If (the TorchScript exporter traces only the branch taken). That
export is also the slow part of this alternative's build time (~4 s of its whole process, here
and in speed.py's compile row). speed.py checks, tick by tick, that both files compute
the same outputs, which pins the constants below (written out here, not imported from the
example: importing exploy-dsl would add its imports to this export's time). Run as a whole
process, which speed.py times:

    python benchmarks/speed_traced.py OUT.onnx

Needs torch only (and what torch.onnx needs: onnx, onnxscript).
"""

from __future__ import annotations

import sys
from typing import Any

import torch

# The quadruped's constants (examples/quadruped.py; speed.py's parity check pins them).
DEFAULT_POS = [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1.0, -1.5, -0.1, 1.0, -1.5]
DECIMATION = 4
ACTION_SCALE, KP, KD, EFFORT_LIMIT = 0.25, 20.0, 0.5, 25.0
CLIP = 100.0
HIDDEN = (512, 256, 128)  # a realistic rsl_rl actor: 48 -> 512 -> 256 -> 128 -> 12, ELU

INPUTS = (
    "ctx.step_count",
    "obj.robot.joints.pos",
    "obj.robot.joints.vel",
    "obj.robot.base.lin_vel_b_rt_w_in_b",
    "obj.robot.base.ang_vel_b_rt_w_in_b",
    "obj.robot.base.w_Q_b",
    "cmd.se2_velocity.base_velocity",
    "memory.actions.in",
    "memory.joint_pos.processed_actions.in",
)
OUTPUTS = (
    "actions",
    "obs",
    "output.joint_targets.joint_pos.pos",
    "output.joint_targets.joint_pos.vel",
    "output.joint_targets.joint_pos.effort",
    "memory.actions.out",
    "memory.joint_pos.processed_actions.out",
)


def actor(seed: int = 0) -> torch.nn.Module:
    """The benchmark's actor, seeded: 48 -> 512 -> 256 -> 128 -> 12 with ELU."""
    torch.manual_seed(seed)
    sizes = (48, *HIDDEN, 12)
    layers: list[torch.nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ELU())
    return torch.nn.Sequential(*layers).eval()


class QuadrupedStep(torch.nn.Module):
    """One call of the deployed file: ``(tick, inputs, memory) -> (outputs, memory)``."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.actor = net
        self.register_buffer("q0", torch.tensor([DEFAULT_POS]))
        self.register_buffer("gravity", torch.tensor([[0.0, 0.0, -1.0]]))
        self.register_buffer("command_scale", torch.tensor([[2.0, 2.0, 0.25]]))

    def _apply_actions(self, pos: Any, vel: Any, target: Any) -> tuple[Any, Any, Any]:
        torque = KP * (target - pos) - KD * vel
        # clone: torch.cond refuses a branch output that aliases an input.
        return (
            target.clone(),
            torch.zeros_like(target),
            torch.clamp(torque, -EFFORT_LIMIT, EFFORT_LIMIT),
        )

    def _policy(
        self, pos: Any, vel: Any, lin: Any, ang: Any, quat: Any, cmd: Any, last: Any, target: Any
    ) -> tuple[Any, ...]:
        # Isaac Lab's quat_apply_inverse(q, gravity): v - 2w (u x v) + 2 u x (u x v).
        xyz = quat[:, 1:]
        t = torch.cross(xyz, self.gravity, dim=-1) * 2.0
        gravity_b = self.gravity - quat[:, 0:1] * t + torch.cross(xyz, t, dim=-1)
        obs = torch.cat(
            [lin * 2.0, ang * 0.25, gravity_b, cmd * self.command_scale, pos - self.q0,
             vel * 0.05, last],
            dim=-1,
        )  # fmt: skip
        obs = torch.clamp(obs, -CLIP, CLIP)
        actions = self.actor(obs)
        new_target = self.q0 + ACTION_SCALE * actions
        p, v, e = self._apply_actions(pos, vel, new_target)
        return actions, obs, p, v, e, actions.clone(), new_target.clone()

    def _apply_only(
        self, pos: Any, vel: Any, lin: Any, ang: Any, quat: Any, cmd: Any, last: Any, target: Any
    ) -> tuple[Any, ...]:
        p, v, e = self._apply_actions(pos, vel, target)
        zeros_obs = torch.zeros(1, 48)
        return torch.zeros_like(last), zeros_obs, p, v, e, last.clone(), target.clone()

    def forward(self, tick: Any, *state: Any) -> Any:
        return torch.cond(tick % DECIMATION == 0, self._policy, self._apply_only, state)


def example_args() -> tuple[torch.Tensor, ...]:
    # Distinct tensors: torch.export would treat one tensor passed twice as one input.
    sizes = (12, 12, 3, 3)
    return (
        torch.tensor(0, dtype=torch.int32),
        *(torch.zeros(1, n) for n in sizes),
        torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
        torch.zeros(1, 3),
        torch.zeros(1, 12),
        torch.tensor([DEFAULT_POS]),
    )


def export_traced(path: str, seed: int = 0) -> None:
    """torch.onnx (dynamo) of QuadrupedStep with the seeded actor, written to ``path``."""
    program = torch.onnx.export(
        QuadrupedStep(actor(seed)).eval(),
        example_args(),
        input_names=list(INPUTS),
        output_names=list(OUTPUTS),
        dynamo=True,
        opset_version=20,
        verbose=False,
    )
    assert program is not None
    program.save(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/speed_traced.py OUT.onnx")
    export_traced(sys.argv[1])
