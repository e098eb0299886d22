"""Observation history against an independent NumPy model of Isaac Lab's CircularBuffer.

Isaac Lab (ObservationManager with history_length and flatten_history_dim, CircularBuffer):
each term has its own buffer; the term is appended after its clip and scale once per policy
step; ``buffer`` is oldest first, flattened frame by frame, so a term's frames sit side by side
in the observation (term-major); a reset zeroes it and the first append fills every frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler import check_parity, compile_program, random_stream
from compiler.tools._diff import diff_contracts
from compiler.tools._explain import render_explain
from exploy_dsl import (
    DeclarationError,
    History,
    Program,
    ReferenceInterpreter,
    Runtime,
    StageError,
    read_contract,
    term,
    trace,
)
from tests._support import mlp_actor

DECIMATION = 3


class IsaacCircularBuffer:
    """Isaac Lab's CircularBuffer semantics for one environment, written from its docs."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.frames: np.ndarray | None = None
        self.pushes = 0

    def reset(self) -> None:
        self.pushes = 0
        if self.frames is not None:
            self.frames[:] = 0.0

    def append(self, data: np.ndarray) -> None:
        if self.frames is None:
            self.frames = np.zeros((self.max_len, *data.shape))
        self.frames = np.roll(self.frames, -1, axis=0)
        self.frames[-1] = data
        if self.pushes == 0:
            self.frames[:] = data  # the first append after a reset fills the whole history
        self.pushes += 1

    @property
    def buffer(self) -> np.ndarray:
        """Oldest entry first (Isaac Lab's ``buffer`` for one environment)."""
        assert self.frames is not None
        return self.frames


def program(
    *, x_history: Any = 4, y_history: Any = 2, group: Any = None, memory_name: str = "last"
) -> Program:
    p = Program("hist", decimation=DECIMATION, sim_dt=0.01)
    x = p.input("x", 3)
    y = p.input("y", 2)
    out = p.output("out", 2)
    last = p.memory(memory_name, 2)

    @p.observations(history=group)
    def observations(v: Any) -> list[Any]:
        return [
            term("x", v[x], clip=(-1.0, 1.0), scale=2.0, history=x_history),
            term("y", v[y], history=y_history),
            term("last", v[last]),
        ]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: v[last]}

    return p


class IsaacObservation:
    """The observation Isaac Lab's manager builds from per-term (or whole-frame) buffers."""

    def __init__(self, layout: str, lengths: tuple[int, ...], order: str, group: bool) -> None:
        self.layout, self.order, self.group = layout, order, group
        self.buffers = [IsaacCircularBuffer(n) for n in lengths]
        self.frames = IsaacCircularBuffer(lengths[0])

    def reset(self) -> None:
        for b in (*self.buffers, self.frames):
            b.reset()

    def _flat(self, b: IsaacCircularBuffer) -> np.ndarray:
        frames = b.buffer if self.order == "oldest_first" else b.buffer[::-1]
        return frames.reshape(-1)

    def policy_step(self, x: np.ndarray, y: np.ndarray, last: np.ndarray) -> np.ndarray:
        x = np.clip(x.astype(np.float64), -1.0, 1.0) * 2.0  # the term's clip, then its scale
        terms = [x, y.astype(np.float64), last]
        if self.layout == "frame_major":
            self.frames.append(np.concatenate(terms))
            return self._flat(self.frames)
        kept = terms if self.group else terms[:2]  # a group history covers every term
        parts = []
        for b, value in zip(self.buffers, kept, strict=False):
            b.append(value)
            parts.append(self._flat(b))
        return np.concatenate([*parts, *terms[len(parts) :]])


CASES = {
    "isaac_lab_per_term": dict(x_history=4, y_history=2),
    "newest_first_per_term": dict(
        x_history=History(4, order="newest_first"), y_history=History(2, order="newest_first")
    ),
    "group_term_major": dict(x_history=None, y_history=None, group=3),
    "group_frame_major": dict(
        x_history=None, y_history=None, group=History(3, layout="frame_major")
    ),
    "group_frame_major_newest_first": dict(
        x_history=None,
        y_history=None,
        group=History(2, order="newest_first", layout="frame_major"),
    ),
}


def _oracle(case: dict[str, Any]) -> IsaacObservation:
    group = case.get("group")
    if group is not None:
        h = group if isinstance(group, History) else History(group)
        return IsaacObservation(h.layout, (h.length,) * 3, h.order, group=True)
    x, y = case["x_history"], case["y_history"]
    hx = x if isinstance(x, History) else History(x)
    hy = y if isinstance(y, History) else History(y)
    return IsaacObservation("term_major", (hx.length, hy.length), hx.order, group=False)


@pytest.mark.parametrize("first_tick", [0, 1])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_history_matches_isaac_labs_circular_buffer(case: str, first_tick: int) -> None:
    p = program(**CASES[case])
    traced = trace(p)
    actor = mlp_actor(traced.n_obs, 2, seed=3)
    model = compile_program(p, actor.model)
    stream = random_stream(p, 90, seed=5)
    oracle = _oracle(CASES[case])
    runtime = Runtime(model, first_tick=first_tick)
    reference = ReferenceInterpreter(traced, actor.model, first_tick=first_tick)
    policy_steps = 0
    for tick in range(stream.ticks):
        if stream.reset[tick]:
            runtime.reset()
            reference.reset()
            oracle.reset()
        feeds = stream.at(tick)
        last = reference.memory["memory.last"][0]  # memory before this tick
        policy = reference.tick % DECIMATION == 0
        compiled, ours = runtime.step(feeds), reference.step(feeds)
        if not policy:
            assert not compiled["obs"].any()
            continue
        policy_steps += 1
        want = oracle.policy_step(feeds["x"][0], feeds["y"][0], last)
        np.testing.assert_allclose(compiled["obs"][0], want, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ours["obs"][0], want, rtol=1e-6, atol=1e-6)
    assert policy_steps >= 20
    report = check_parity(model, p, actor.model, inputs=stream)
    assert report.ok, report.render()


def test_right_after_a_reset_every_frame_holds_the_first_observation() -> None:
    p = program(x_history=3, y_history=1)
    traced = trace(p)
    actor = mlp_actor(traced.n_obs, 2)
    runtime = Runtime(compile_program(p, actor.model))
    feeds = {"x": np.array([[0.1, -0.2, 0.3]], np.float32), "y": np.ones((1, 2), np.float32)}
    obs = runtime.step(feeds)["obs"][0]
    np.testing.assert_allclose(obs[:9], np.tile([0.2, -0.4, 0.6], 3), rtol=1e-6)
    for _ in range(DECIMATION):  # the next policy step shifts one frame in
        out = runtime.step({**feeds, "x": np.zeros((1, 3), np.float32)})
    np.testing.assert_allclose(out["obs"][0][:9], [0.2, -0.4, 0.6, 0.2, -0.4, 0.6, 0, 0, 0])
    runtime.reset()
    obs = runtime.step({**feeds, "x": np.full((1, 3), 0.25, np.float32)})["obs"][0]
    np.testing.assert_allclose(obs[:9], np.full(9, 0.5), rtol=1e-6)


def test_history_memory_is_generated_and_the_layout_is_recorded_and_explained() -> None:
    p = program()
    traced = trace(p)
    names = [m.name for m in traced.program.memories]
    assert names == ["last", "history.x", "history.y", "history_started"]
    assert [m.name for m in p.memories] == ["last"]  # the user's program is untouched
    model = compile_program(p, mlp_actor(traced.n_obs, 2).model)
    contract = read_contract(model)
    layout = contract.json_metadata("exploy_dsl.observation")
    x = layout["terms"][0]
    assert x["history"] == {
        "length": 4,
        "order": "oldest_first",
        "layout": "term_major",
        "frame_size": 3,
        "frames": [[0, 3], [3, 6], [6, 9], [9, 12]],
    }
    assert (x["start"], x["size"]) == (0, 12)
    assert layout["terms"][1]["history"]["frames"] == [[12, 14], [14, 16]]
    assert "first policy step fills every frame" in layout["history"]["reset"]
    text = render_explain(contract, "hist.onnx")
    assert "kept 4 policy steps, oldest_first, term_major" in text
    assert "frames: t-3 obs[0:3], t-2 obs[3:6], t-1 obs[6:9], t obs[9:12]" in text


def test_diff_flags_a_changed_history_layout_as_breaking() -> None:
    files = []
    for x_history in (4, History(4, order="newest_first")):
        p = program(x_history=x_history)
        traced = trace(p)
        files.append(read_contract(compile_program(p, mlp_actor(traced.n_obs, 2).model)))
    found = [d for d in diff_contracts(*files) if d.topic == "observation history"]
    assert found and all(d.breaks for d in found)
    assert 'term \'x\' history changed (order "oldest_first" -> "newest_first"' in str(found[0])


def test_a_term_history_and_a_group_history_together_are_refused() -> None:
    with pytest.raises(StageError, match="term 'x' has its own history and observations"):
        trace(program(x_history=2, y_history=None, group=3))


def test_a_generated_memory_that_clashes_with_a_declared_one_is_named() -> None:
    with pytest.raises(DeclarationError, match=r"generated memory 'history\.x'.*clashes"):
        trace(program(memory_name="history"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "History length must be an int >= 1"),
        ({"length": 2, "order": "newest"}, "order must be one of 'oldest_first', 'newest_first'"),
        ({"length": 2, "layout": "interleaved"}, "layout must be one of 'term_major'"),
    ],
)
def test_bad_history_arguments_say_what_is_expected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        History(**kwargs)


def test_a_history_that_is_not_a_number_is_refused_at_the_decorator() -> None:
    p = Program("bad", decimation=1, sim_dt=0.01)
    with pytest.raises(DeclarationError, match=r"history=\.\.\.\) must be an int N"):
        p.observations(history="3")


def test_frame_major_terms_cannot_feed_an_actor_input_by_name() -> None:
    p = Program("fm", decimation=1, sim_dt=0.01)
    x = p.input("x", 2)
    out = p.output("out", 2)

    @p.observations(history=History(2, layout="frame_major"))
    def observations(v: Any) -> list[Any]:
        return [("x", v[x]), ("x2", v[x] * 2.0)]

    p.actor(inputs={"obs": ["x"]})

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: v[x]}

    with pytest.raises(StageError, match="frames are spread over obs"):
        trace(p)
