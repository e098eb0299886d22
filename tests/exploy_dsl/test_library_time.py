"""v.tick, v.time and the phase clock against their formulas, under both start conventions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from compiler import check_parity, compile_program, random_stream
from compiler.tools._explain import render_explain
from exploy_dsl import (
    Program,
    ReferenceInterpreter,
    Runtime,
    StageError,
    op,
    phase_clock,
    read_contract,
    term,
    trace,
)
from tests._support import mlp_actor

DECIMATION, SIM_DT, PERIOD, OFFSET = 4, 0.005, 0.13, -0.02


def program(batch: int = 1) -> Program:
    p = Program("clock", decimation=DECIMATION, sim_dt=SIM_DT, batch=batch)
    x = p.input("x", 1)
    t_out = p.output("t", 1)
    k_out = p.output("k", 1, dtype="int32")
    last = p.memory("last", 1)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [
            term("clock", phase_clock(v, period=PERIOD)),
            term("shifted", phase_clock(v, period=PERIOD, offset=OFFSET)),
            term("time", v.time),
            term("x", v[x]),
        ]

    @p.process_actions(n_actions=1)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {t_out: v.time, k_out: v.tick + 1}

    return p


def clock(k: int, offset: float = 0.0) -> list[float]:
    """The gait-policy formula, in float64: phase = ((k * dt + offset) mod P) / P."""
    phase = math.fmod(k * SIM_DT + offset, PERIOD) / PERIOD
    phase = phase + 1.0 if phase < 0 else phase
    return [math.sin(2 * math.pi * phase), math.cos(2 * math.pi * phase)]


@pytest.mark.parametrize("first_tick", [0, 1])
def test_tick_time_and_phase_clock_follow_their_formulas(first_tick: int) -> None:
    p = program()
    traced = trace(p)
    actor = mlp_actor(traced.n_obs, 1)
    model = compile_program(p, actor.model)
    stream = random_stream(p, 200, seed=2)
    runtime = Runtime(model, first_tick=first_tick)
    reference = ReferenceInterpreter(traced, actor.model, first_tick=first_tick)
    k = first_tick
    first_policy_times = []
    for tick in range(stream.ticks):
        if stream.reset[tick]:
            runtime.reset()
            reference.reset()
            k = first_tick
            first_policy_times.append(None)
        for out in (runtime.step(stream.at(tick)), reference.step(stream.at(tick))):
            assert out["k"].dtype == np.int32 and out["k"][0, 0] == k + 1
            assert out["t"][0, 0] == pytest.approx(k * SIM_DT, abs=1e-6)
            if k % DECIMATION == 0:
                obs = out["obs"][0]
                np.testing.assert_allclose(obs[:2], clock(k), atol=2e-5)
                np.testing.assert_allclose(obs[2:4], clock(k, OFFSET), atol=2e-5)
                assert obs[4] == pytest.approx(k * SIM_DT, abs=1e-6)
                if first_policy_times[-1] is None:
                    first_policy_times[-1] = float(obs[4])
        k += 1
    # Our runtime's first policy step after a reset is at t = 0; exploy's (k = 1) is one
    # policy period later, at t = decimation * sim_dt.
    expected = 0.0 if first_tick == 0 else DECIMATION * SIM_DT
    assert first_policy_times and all(
        t == pytest.approx(expected, abs=1e-7) for t in first_policy_times
    )
    report = check_parity(model, p, actor.model, inputs=stream)
    assert report.ok, report.render()


def test_the_offset_makes_exploys_first_policy_step_start_at_phase_zero() -> None:
    k = DECIMATION  # exploy's controller: the first policy step after a reset
    np.testing.assert_allclose(clock(k, -DECIMATION * SIM_DT), clock(0), atol=1e-12)


def test_tick_and_time_have_the_batch_shape() -> None:
    reference = ReferenceInterpreter(program(batch=2), lambda obs: np.zeros((2, 1), np.float32))
    feeds = {"x": np.zeros((2, 1), np.float32)}
    for _ in range(5):
        out = reference.step(feeds)
    assert out["t"].shape == (2, 1) and out["k"].tolist() == [[5], [5]]
    assert out["t"][1, 0] == pytest.approx(4 * SIM_DT)


def test_the_clock_is_recorded_and_explained() -> None:
    p = program()
    traced = trace(p)
    contract = read_contract(compile_program(p, mlp_actor(traced.n_obs, 1).model))
    clocks = contract.json_metadata("exploy_dsl.clocks")
    assert [(c["stage"], c["period"], c["offset"]) for c in clocks] == [
        ("observations", PERIOD, 0.0),
        ("observations", PERIOD, OFFSET),
    ]
    assert clocks[0]["sim_dt"] == SIM_DT
    text = render_explain(contract, "clock.onnx")
    assert "time: stages read the tick (observations, apply_actions)" in text
    assert "t = 0.02 s (decimation * sim_dt) on exploy's controller" in text
    assert "phase clock in observations: period 0.13 s, offset -0.02 s" in text
    # and, like every library step, in the stage's steps with the user's line
    steps = contract.json_metadata("exploy_dsl.stages")["observations"]["steps"]
    assert [(s["step"], s["offset"]) for s in steps] == [
        ("phase_clock", 0.0),
        ("phase_clock", OFFSET),
    ]
    assert all(s["at"].startswith("test_library_time.py:") for s in steps)
    assert "    phase clock, period 0.13 s, offset -0.02 s: [sin, cos] of the phase" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"period": 0.0}, "period must be a finite number of seconds > 0"),
        ({"period": float("nan")}, "period must be a finite number of seconds > 0"),
        ({"period": 1.0, "offset": float("inf")}, "offset must be a finite number of seconds"),
    ],
)
def test_bad_clock_arguments_name_the_argument(args: dict[str, float], message: str) -> None:
    p = Program("bad", decimation=1, sim_dt=0.01)
    out = p.output("out", 2)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [("c", phase_clock(v, **args))]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: op.const(np.zeros((1, 2), np.float32))}

    with pytest.raises(StageError, match=message):
        trace(p)


def test_phase_clock_outside_a_stage_says_where_it_belongs() -> None:
    with pytest.raises(StageError, match="takes the `v` a stage receives"):
        phase_clock({}, period=1.0)
