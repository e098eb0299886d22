"""Tests of the quadruped program, written with exploy_dsl.testing: copy this file for yours.

Run with ``pytest examples/test_quadruped.py``. The golden trace lives beside it in
``golden/quadruped.npz``; after a change you meant, re-record it with
``pytest examples/test_quadruped.py --exploy-update-golden``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from quadruped import (
    DEFAULT_POS,
    EFFORT_LIMIT,
    base,
    joints,
    last_actions,
    program,
    target,
    targets,
)

from exploy_dsl.testing import ProgramRunner, assert_golden, assert_parity
from exploy_dsl.testing.strategies import tick_inputs

GOLDEN = Path(__file__).parent / "golden" / "quadruped.npz"


def test_an_upright_base_sees_gravity_straight_down() -> None:
    result = ProgramRunner(program).step({base.orientation: [1.0, 0.0, 0.0, 0.0]})
    np.testing.assert_allclose(result.obs["projected_gravity"], [[0.0, 0.0, -1.0]], atol=1e-7)


def test_a_base_rolled_90_degrees_sees_gravity_along_y() -> None:
    half = np.sqrt(0.5)
    result = ProgramRunner(program).step({base.orientation: [half, half, 0.0, 0.0]})
    np.testing.assert_allclose(result.obs["projected_gravity"], [[0.0, -1.0, 0.0]], atol=1e-6)


def test_joint_pos_is_zero_at_the_default_pose() -> None:
    result = ProgramRunner(program).step({joints.pos: DEFAULT_POS})
    np.testing.assert_allclose(result.obs["joint_pos"], np.zeros((1, 12)), atol=1e-7)


def test_actions_become_joint_targets_around_the_default_pose() -> None:
    actions = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(1, 12)
    runner = ProgramRunner(program, actor=lambda obs: actions)
    result = runner.step({joints.pos: DEFAULT_POS})
    assert result.policy_step
    np.testing.assert_allclose(
        result.memory[target.memory.name], DEFAULT_POS + 0.25 * actions, atol=1e-6
    )
    np.testing.assert_allclose(result.memory[last_actions.name], actions)
    np.testing.assert_allclose(result[targets.pos], DEFAULT_POS + 0.25 * actions, atol=1e-6)
    # The next three ticks apply the same target without calling the actor.
    for _ in range(3):
        held = runner.step({joints.pos: DEFAULT_POS})
        assert not held.policy_step and not held.actions.any()
        np.testing.assert_allclose(held[targets.pos], result[targets.pos])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(tick_inputs(program))
def test_the_torque_never_exceeds_the_effort_limit(inputs: dict[str, Any]) -> None:
    actions = np.full((1, 12), 3.0, np.float32)
    result = ProgramRunner(program, actor=lambda obs: actions).step(inputs)
    assert np.all(np.abs(result[targets.effort]) <= EFFORT_LIMIT)
    assert np.all(np.abs(result.obs["projected_gravity"]) <= 1.0 + 1e-5)


def test_the_compiled_file_does_what_the_program_says(exploy_compile: Any) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    actor = torch.nn.Sequential(torch.nn.Linear(48, 32), torch.nn.ELU(), torch.nn.Linear(32, 12))
    assert_parity(exploy_compile(program, actor), program, actor, steps=200)


def test_the_program_still_matches_its_golden_trace() -> None:
    # A zero actor: the trace pins the observation and the PD law, whatever the network.
    assert_golden(GOLDEN, program, ticks=120)
