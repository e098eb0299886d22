"""Action post-processing against NumPy, over ticks and resets, recorded in the file and explained.

The stateless steps are traced into a stage and run by the reference interpreter and by
onnxruntime; the filters run in a compiled program, stepped by ``Runtime`` and by the reference
interpreter, against a NumPy loop written here from their definitions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spox.opset.ai.onnx.v20 as op

from compiler import check_parity, compile_program
from compiler.tools._explain import render_explain
from exploy_dsl import (
    DeclarationError,
    LowPass,
    Program,
    RateLimit,
    ReferenceInterpreter,
    Runtime,
    StageError,
    argmax,
    clip,
    low_pass,
    rate_limit,
    read_contract,
    scale_offset,
    trace,
    unscale_action,
)
from tests._support import MlpActor, mlp_actor
from tests.exploy_dsl._stage_harness import evaluate, op_types, stage_model, stage_program

rng = np.random.default_rng(11)
X = (rng.normal(size=(64, 4)) * 30.0).astype(np.float32)
LOW = np.array([-1.0, -2.0, 0.5, -30.0], np.float32)
HIGH = np.array([1.0, 3.0, 0.75, 30.0], np.float32)


def both(fn: Any, n_out: int, dtype: str = "float32", **feeds: np.ndarray) -> Any:
    reference, onnxruntime, model = evaluate(fn, feeds, {"out": ((n_out,), dtype)})
    np.testing.assert_array_equal(reference["out"], onnxruntime["out"])
    return reference["out"], model


def steps_of(program: Program, kind: str = "apply_actions") -> list[dict[str, Any]]:
    return [step.record() for step in trace(program).stage(kind).steps]


# -- clip --------------------------------------------------------------------------------------


def test_clip_with_numbers_is_one_onnx_clip_in_the_values_dtype() -> None:
    found, model = both(lambda x: clip(x, -25, 25), 4, x=X)
    np.testing.assert_array_equal(found, np.clip(X, -25, 25))
    assert "Clip" in op_types(model) and not {"Max", "Min"} & op_types(model)
    ints = (X * 10).astype(np.int32)
    found, _ = both(lambda x: clip(x, -100, 250), 4, "int32", x=ints)
    assert found.dtype == np.int32
    np.testing.assert_array_equal(found, np.clip(ints, -100, 250))


def test_clip_with_per_element_bounds_arrays_and_vars() -> None:
    found, model = both(lambda x: clip(x, LOW, HIGH), 4, x=X)
    np.testing.assert_array_equal(found, np.clip(X, LOW, HIGH))
    assert {"Max", "Min"} <= op_types(model)
    found, _ = both(lambda x: clip(x, None, HIGH), 4, x=X)
    np.testing.assert_array_equal(found, np.minimum(X, HIGH))
    found, _ = both(lambda x: clip(x, -1.5, None), 4, x=X)
    np.testing.assert_array_equal(found, np.maximum(X, np.float32(-1.5)))
    bound = np.abs(rng.normal(size=(64, 4))).astype(np.float32) * 20
    found, _ = both(lambda x, b: clip(x, -b, b), 4, x=X, b=bound)  # Vars as bounds
    np.testing.assert_array_equal(found, np.clip(X, -bound, bound))


def test_clip_records_its_bounds() -> None:
    p = stage_program(
        lambda x: clip(x, LOW, 2), {"x": ((4,), "float32")}, {"out": ((4,), "float32")}
    )
    [record] = steps_of(p)
    assert record == {
        "step": "clip", "low": [-1.0, -2.0, 0.5, -30.0], "high": 2, "at": record["at"],
    }  # fmt: skip
    assert record["at"].startswith("test_library_actions.py:")


@pytest.mark.parametrize(
    ("low", "high", "dtype", "message"),
    [
        (3.0, 1.0, "float32", r"clip: low 3\.0 is above high 1\.0\. Fix: clip\(x, low, high\)"),
        (LOW, np.zeros(3), "float32", r"clip: high has shape \[3\], which does not fit the value "
         r"of shape \[1, 4\]\. Fix: one number, or one entry per element of the last axis"),
        (-0.5, 0.5, "int32", r"clip: low -0\.5 is a float, the value is int32: it would be "
         r"truncated"),
        (float("nan"), 1.0, "float32", r"clip: low nan is not finite"),
        (None, None, "float32", r"clip: both bounds are None"),
        ("a", 1.0, "float32", r"clip: low 'a' is not a number"),
    ],
)  # fmt: skip
def test_a_wrong_clip_is_a_stage_error_at_the_users_line(
    low: Any, high: Any, dtype: str, message: str
) -> None:
    p = stage_program(lambda x: clip(x, low, high), {"x": ((4,), dtype)}, {"out": ((4,), dtype)})
    with pytest.raises(StageError, match=r"apply_actions stage .* at .*test_library_actions\.py:"):
        stage_model(p)
    with pytest.raises(StageError, match=message):
        stage_model(p)


# -- scale and offset, unscale, argmax ---------------------------------------------------------


def test_scale_offset_is_x_times_scale_plus_offset() -> None:
    found, _ = both(lambda x: scale_offset(x, HIGH, LOW), 4, x=X)
    np.testing.assert_array_equal(found, X * HIGH + LOW)
    found, model = both(lambda x: scale_offset(x, 0.25), 4, x=X)
    np.testing.assert_array_equal(found, X * np.float32(0.25))
    assert "Add" not in op_types(model)  # an offset of 0 adds no op
    found, model = both(lambda x: scale_offset(x, offset=2), 4, x=X)
    np.testing.assert_array_equal(found, X + np.float32(2))
    assert "Mul" not in op_types(model)
    p = stage_program(
        lambda x: scale_offset(x, 0.25, LOW), {"x": ((4,), "float32")}, {"out": ((4,), "float32")}
    )
    [record] = steps_of(p)
    assert (record["step"], record["scale"], record["offset"]) == (
        "scale_offset", 0.25, [-1.0, -2.0, 0.5, -30.0],
    )  # fmt: skip


def sb3_unscale(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Stable-Baselines3's unscale_action (float32, as its action space), then the clip."""
    unscaled = low + (0.5 * (x + np.float32(1.0)) * (high - low))
    return np.clip(unscaled, low, high)


def test_unscale_action_maps_minus_one_one_to_the_bounds_and_clips() -> None:
    x = np.concatenate([rng.uniform(-1.5, 1.5, size=(60, 4)), np.tile([[-1], [1], [0], [9]], 4)])
    x = x.astype(np.float32)
    found, _ = both(lambda a: unscale_action(a, LOW, HIGH), 4, a=x)
    np.testing.assert_allclose(found, sb3_unscale(x, LOW, HIGH), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(found[-4], LOW)
    np.testing.assert_array_equal(found[-3], HIGH)
    np.testing.assert_allclose(found[-2], (LOW + HIGH) / 2, atol=1e-6)
    assert np.all(found >= LOW) and np.all(found <= HIGH)
    found, model = both(lambda a: unscale_action(a, -2.0, 2.0), 4, a=x)
    np.testing.assert_allclose(found, np.clip(2.0 * x, -2.0, 2.0), atol=1e-6)
    assert "Clip" in op_types(model)


def test_unscale_action_refuses_empty_bounds() -> None:
    p = stage_program(
        lambda a: unscale_action(a, HIGH, LOW), {"a": ((4,), "float32")}, {"out": ((4,), "float32")}
    )
    with pytest.raises(StageError, match=r"unscale_action: low \[1\.0, 3\.0, .* is not below high"):
        stage_model(p)


def test_argmax_is_numpys_first_index_as_int32() -> None:
    logits = rng.integers(0, 3, size=(64, 4)).astype(np.float32)  # many ties
    found, _ = both(argmax, 1, "int32", x=logits)
    assert found.dtype == np.int32
    np.testing.assert_array_equal(found, np.argmax(logits, axis=-1)[:, None])
    p = stage_program(argmax, {"x": ((4,), "float32")}, {"out": ((1,), "int32")})
    assert steps_of(p)[0]["axis"] == -1
    bad = stage_program(lambda x: argmax(x, 2), {"x": ((4,), "float32")}, {"out": ((1,), "int32")})
    with pytest.raises(StageError, match=r"argmax: axis 2 is not an axis of a value of shape"):
        stage_model(bad)


# -- the filters, over ticks -------------------------------------------------------------------

ALPHA = 0.25
DELTA = np.array([0.05, 0.1, 0.2], np.float32)
LIMIT_INIT = np.array([0.5, 0.0, -0.5], np.float32)
OFFSET = np.array([0.1, 0.2, 0.3], np.float32)


def filtered_program() -> tuple[Program, LowPass, RateLimit]:
    p = Program("filtered", decimation=3, sim_dt=0.01)
    cmd = p.input("cmd", 3)
    smooth = low_pass(p, "smoothed", 3, alpha=ALPHA)
    limit = rate_limit(p, "limited", 3, max_delta=DELTA, init=LIMIT_INIT)
    target = p.memory("target", 3)
    out = p.output("out", 3)
    choice = p.output("choice", 1, "int32")

    @p.observations
    def observations(v: Any) -> Any:
        return [("cmd", v[cmd]), ("smoothed", v[smooth.memory])]

    @p.process_actions(n_actions=3)
    def process_actions(v: Any, actions: Any) -> Any:
        return {target: scale_offset(smooth(v, actions), 0.5, OFFSET)}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        limited = limit(v, v[target])
        return {out: clip(limited, -0.4, 0.6), choice: argmax(limited)}

    return p, smooth, limit


def numpy_filtered(
    actor: MlpActor, cmds: np.ndarray, resets: np.ndarray, first_tick: int
) -> list[dict[str, np.ndarray]]:
    """The filtered program written out in NumPy: one dict of outputs per tick."""
    results = []
    k = first_tick
    smoothed = target = limited = np.zeros(3)
    for cmd, reset in zip(cmds, resets, strict=True):
        if reset:
            k, smoothed, target, limited = first_tick, np.zeros(3), np.zeros(3), LIMIT_INIT
        if k % 3 == 0:
            actions = actor(np.concatenate([cmd, smoothed])[None])[0]
            smoothed = ALPHA * actions + (1 - ALPHA) * smoothed
            target = 0.5 * smoothed + OFFSET
        limited = limited + np.clip(target - limited, -DELTA, DELTA)
        results.append({"out": np.clip(limited, -0.4, 0.6), "choice": np.argmax(limited)})
        k += 1
    return results


@pytest.mark.parametrize("first_tick", [0, 1])
def test_the_filters_follow_their_definitions_over_ticks_and_resets(
    first_tick: int, tmp_path: Path
) -> None:
    program, _, _ = filtered_program()
    actor = mlp_actor(6, 3, seed=2)
    path = tmp_path / "filtered.onnx"
    compile_program(program, actor.model, output=path)
    runtime = Runtime(path, first_tick=first_tick)
    reference = ReferenceInterpreter(program, actor.model, first_tick=first_tick)
    cmds = rng.normal(size=(40, 3)).astype(np.float32) * 2
    resets = np.zeros(40, bool)
    resets[[0, 17, 18]] = True
    expected = numpy_filtered(actor, cmds, resets, first_tick)
    for cmd, reset, want in zip(cmds, resets, expected, strict=True):
        if reset:
            runtime.reset()
            reference.reset()
        feeds = {"cmd": cmd[None]}
        for got in (runtime.step(feeds), reference.step(feeds)):
            np.testing.assert_allclose(got["out"][0], want["out"], rtol=1e-5, atol=1e-6)
            assert got["choice"].dtype == np.int32 and got["choice"][0, 0] == want["choice"]


def test_parity_holds_with_every_action_step(tmp_path: Path) -> None:
    program, _, _ = filtered_program()
    actor = mlp_actor(6, 3, seed=4)
    path = tmp_path / "filtered.onnx"
    compile_program(program, actor.model, output=path)
    report = check_parity(path, program, actor.model, steps=150)
    assert report.ok, report.render()


def test_the_file_records_each_step_and_explain_shows_it(tmp_path: Path) -> None:
    program, _, _ = filtered_program()
    path = tmp_path / "filtered.onnx"
    model = compile_program(program, mlp_actor(6, 3).model, output=path)
    stages = json.loads({p.key: p.value for p in model.metadata_props}["exploy_dsl.stages"])
    assert "steps" not in stages["observations"]
    process = [
        {k: v for k, v in s.items() if k != "at"} for s in stages["process_actions"]["steps"]
    ]
    assert process == [
        {"step": "low_pass", "memory": "smoothed", "alpha": 0.25, "init": 0.0},
        {"step": "scale_offset", "scale": 0.5, "offset": [0.1, 0.2, 0.3]},
    ]
    apply = [s["step"] for s in stages["apply_actions"]["steps"]]
    assert apply == ["rate_limit", "clip", "argmax"]
    assert stages["apply_actions"]["steps"][0]["max_delta"] == [0.05, 0.1, 0.2]
    assert stages["apply_actions"]["steps"][0]["init"] == [0.5, 0.0, -0.5]
    text = render_explain(read_contract(model), str(path))
    for line in (
        "  library steps, in call order:",
        "    low-pass filter (EMA), state memory.smoothed: y = 0.25 * x + 0.75 * y_prev, once per "
        "policy step; y_prev = 0 after a reset (test_library_actions.py:",
        "    scale and offset: x * 0.5 + [0.1, 0.2, 0.3] (test_library_actions.py:",
        "    rate limit, state memory.limited: y = y_prev + clip(x - y_prev, -d, d), d = [0.05, "
        "0.1, 0.2] per tick; y_prev = [0.5, 0, -0.5] after a reset (test_library_actions.py:",
        "    clip to [-0.4, 0.6] (test_library_actions.py:",
        "    argmax over axis -1 (an int32 index, the first on ties) (test_library_actions.py:",
    ):
        assert line in text, line


def test_a_stage_without_library_steps_records_exactly_what_it_did(tmp_path: Path) -> None:
    p = Program("plain", decimation=1, sim_dt=0.01)
    x = p.input("x", 2)
    y = p.output("y", 2)
    m = p.memory("m", 2)
    p.observations(lambda v: [("x", v[x])])
    p.process_actions(n_actions=2)(lambda v, a: {m: a})
    p.apply_actions(lambda v: {y: v[m] * 2.0})
    model = compile_program(p, mlp_actor(2, 2).model)
    stages = json.loads({q.key: q.value for q in model.metadata_props}["exploy_dsl.stages"])
    keys = {"function", "file", "line", "reads", "writes", "ops", "constants", "source"}
    assert all(set(entry) == keys for entry in stages.values())


# -- filter mistakes ---------------------------------------------------------------------------


def one_filter_program(where: str, twice: bool = False, returned: bool = False) -> Program:
    p = Program("misused", decimation=2, sim_dt=0.01)
    x = p.input("x", 3)
    out = p.output("out", 3)
    smooth = low_pass(p, "smooth", 3, alpha=0.5)
    other = p.memory("other", 3)

    @p.observations
    def observations(v: Any) -> Any:
        value = smooth(v, v[x]) if where == "observations" else v[x]
        return [("x", value)]

    @p.process_actions(n_actions=3)
    def process_actions(v: Any, actions: Any) -> Any:
        if where in ("process", "both"):
            value = smooth(v, actions)
            if twice:
                value = smooth(v, value)
            return {other: value, **({smooth.memory: actions} if returned else {})}
        return {other: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        value = smooth(v, v[other]) if where in ("apply", "both") else v[other]
        return {out: value}

    return p


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"where": "observations"}, r"observations stage 'observations' .* calls low_pass "
         r"'smooth' at test_library_actions\.py:\d+, which keeps its state in memory; the "
         r"observations stage writes no memory\. Fix: filter in process_actions or apply_actions"),
        ({"where": "process", "twice": True}, r"process_actions stage 'process_actions' .* writes "
         r"memory 'smooth' twice: low_pass 'smooth' at test_library_actions\.py:\d+ keeps its "
         r"state there"),
        ({"where": "process", "returned": True}, r"writes memory 'smooth' twice"),
        ({"where": "both"}, r"low_pass 'smooth' is called in process_actions stage "
         r"'process_actions' and in apply_actions stage 'apply_actions' .*; its state would be "
         r"updated twice per policy step"),
    ],
)  # fmt: skip
def test_a_misused_filter_is_a_stage_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(StageError, match=message):
        trace(one_filter_program(**kwargs))


def test_a_filter_used_in_one_stage_traces() -> None:
    for where in ("process", "apply"):
        traced = trace(one_filter_program(where))
        kind = "process_actions" if where == "process" else "apply_actions"
        assert "memory.smooth" in traced.stage(kind).writes


def test_a_filter_outside_a_stage_and_of_the_wrong_shape_are_refused() -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    smooth = low_pass(p, "s", 3, alpha=0.5)
    with pytest.raises(StageError, match=r"low_pass 's' was called outside a stage"):
        smooth({}, op.const(np.zeros((1, 3), np.float32)))
    limit = rate_limit(p, "r", 2, max_delta=0.1)
    wrong = stage_program(
        lambda x: limit({}, x), {"x": ((3,), "float32")}, {"out": ((3,), "float32")}
    )
    with pytest.raises(
        StageError,
        match=r"rate_limit 'r': the value has shape \[1, 3\], its state memory\.r is \[1, 2\]",
    ):
        stage_model(wrong)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: low_pass(p, "f", 3, alpha=0.0), r"low_pass 'f': alpha must be a number in "
         r"\(0, 1\] \(the weight of the new value\), got 0\.0"),
        (lambda p: low_pass(p, "f", 3, alpha=1.5), r"alpha must be a number in \(0, 1\]"),
        (lambda p: low_pass(p, "f", 3, alpha=True), r"alpha must be a number"),
        (lambda p: rate_limit(p, "f", 3, max_delta=0), r"rate_limit 'f': max_delta must be a "
         r"finite number > 0"),
        (lambda p: rate_limit(p, "f", 3, max_delta=[0.1, 0.2]), r"max_delta has 2 entries, the "
         r"state has shape \[3\]"),
        (lambda p: rate_limit(p, "f", 3, max_delta="x"), r"max_delta must be a finite number"),
        (lambda p: low_pass("program", "f", 3, alpha=0.5), r"low_pass 'f': the first argument "
         r"must be the Program"),
        (lambda p: low_pass(p, "x", 3, alpha=0.5), r"memory 'x' is declared twice"),
    ],
)  # fmt: skip
def test_a_wrong_filter_declaration_is_a_declaration_error(make: Any, message: str) -> None:
    p = Program("p", decimation=1, sim_dt=0.01)
    p.input("x", 3)
    with pytest.raises(DeclarationError, match=message):
        make(p)


def test_a_filter_reads_as_its_memory_in_any_stage() -> None:
    p = Program("p", decimation=2, sim_dt=0.01)
    x = p.input("x", 3)
    out = p.output("out", 3)
    smooth = low_pass(p, "s", 3, alpha=0.5)
    p.observations(lambda v: [("x", v[x]), ("s", v[smooth])])

    @p.process_actions(n_actions=3)
    def process_actions(v: Any, actions: Any) -> None:
        smooth(v, actions)

    p.apply_actions(lambda v: {out: v[smooth] * 2.0})
    traced = trace(p)
    assert "memory.s" in traced.stage("observations").reads
    assert "memory.s" in traced.stage("apply_actions").reads
    assert traced.stage("process_actions").writes == ("memory.s",)
