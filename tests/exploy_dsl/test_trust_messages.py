"""Mistakes that used to end in a traceback or an obscure message now say what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exploy_dsl import (
    ActorError,
    DeclarationError,
    FileContractError,
    Program,
    ReferenceInterpreter,
    Runtime,
    RuntimeInputError,
    StageError,
    trace,
)
from tests._support import Compiled


def small_program(*, apply: Any = None) -> Program:
    p = Program("small", decimation=2, sim_dt=0.01)
    a = p.input("a", 3)
    m = p.memory("m", 2)
    o = p.output("o", 2)
    p.output("o2", 1)

    @p.observations
    def observations(v: Any) -> Any:
        return [("a", v[a])]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> Any:
        return {m: actions}

    p.apply_actions(apply or (lambda v: {o: v[m], "o2": 0.0}))
    return p


# -- declarations -------------------------------------------------------------------------------


def test_bare_process_actions_says_n_actions_is_missing() -> None:
    p = Program("p", decimation=2, sim_dt=0.01)
    with pytest.raises(
        DeclarationError,
        match=r"@program.process_actions on 'process' is missing n_actions, the size of the "
        r"actor's output: .* before any actor is known.* "
        r"Fix: @program.process_actions\(n_actions=N\)",
    ):

        @p.process_actions  # type: ignore[arg-type]
        def process(v: Any, actions: Any) -> Any:
            return {}


def test_process_actions_with_empty_parentheses_says_n_actions_is_missing() -> None:
    p = Program("p", decimation=2, sim_dt=0.01)
    with pytest.raises(
        DeclarationError,
        match=r"@program.process_actions\(\) is missing n_actions.* "
        r"Fix: @program.process_actions\(n_actions=N\)",
    ):
        p.process_actions()


@pytest.mark.parametrize("decimation", [2**31, 2**40])
def test_decimation_beyond_int32_is_refused(decimation: int) -> None:
    with pytest.raises(
        DeclarationError,
        match=rf"decimation {decimation} is beyond int32 range \(at most 2147483647\): the "
        r"file's tick counter ctx.step_count is an int32",
    ):
        Program("p", decimation=decimation, sim_dt=0.01)


def test_the_largest_int32_decimation_is_accepted() -> None:
    assert Program("p", decimation=2**31 - 1, sim_dt=0.01).decimation == 2**31 - 1


def test_apply_actions_returning_an_empty_dict_names_the_outputs_never_written() -> None:
    with pytest.raises(
        StageError,
        match=r"apply_actions stage '<lambda>' .* returned no values, so output\(s\) 'o', "
        r"'o2' are never written",
    ):
        trace(small_program(apply=lambda v: {}))


# -- Runtime arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "shown"), [(None, "NoneType None"), (42, "int 42"), ([1, 2], r"list \[1, 2\]")]
)
def test_runtime_of_a_wrong_type_is_a_clear_error(source: Any, shown: str) -> None:
    with pytest.raises(
        FileContractError,
        match=rf"expected a path to an .onnx file, bytes or an onnx.ModelProto, got {shown}",
    ):
        Runtime(source)


def test_runtime_of_a_folder_says_it_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FileContractError, match=r"file '.*' is a folder; expected an .onnx file"):
        Runtime(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"first_tick": -5}, r"Runtime\(first_tick=...\) must be an int >= 0, got -5"),
        ({"first_tick": "1"}, r"Runtime\(first_tick=...\) must be an int >= 0, got '1'"),
        ({"first_tick": True}, r"Runtime\(first_tick=...\) must be an int >= 0, got True"),
        ({"threads": 0}, r"Runtime\(threads=...\) must be an int >= 1, got 0"),
        ({"threads": None}, r"Runtime\(threads=...\) must be an int >= 1, got None"),
    ],
)
def test_runtime_options_of_a_wrong_type_are_refused(
    kwargs: dict[str, Any], match: str, compiled: dict[str, Compiled]
) -> None:
    with pytest.raises(RuntimeInputError, match=match):
        Runtime(compiled["tutorial"].path, **kwargs)


# -- the reference interpreter's actor ----------------------------------------------------------


def feeds() -> dict[str, np.ndarray]:
    return {"a": np.ones((1, 3), np.float32)}


@pytest.mark.parametrize(
    ("actor", "match"),
    [
        (
            lambda obs: np.zeros((1, 3), np.float32),
            r"reference actor returned shape \[1, 3\] for 'actions'; expected a float32 array of "
            r"shape \[1, 2\] \(actions\)\. Fix: use an actor with 2 outputs",
        ),
        (
            lambda obs: np.zeros(2, np.float32),
            r"returned shape \[2\] for 'actions'; expected a float32 array of shape \[1, 2\].* "
            r"Fix: reshape it to \[1, 2\]",
        ),
        (
            lambda obs: None,
            r"reference actor returned NoneType None for 'actions'; expected a float32 array of "
            r"shape \[1, 2\]",
        ),
        (
            lambda obs: (np.zeros((1, 2), np.float32), "hidden"),
            r"reference actor returned tuple .* expected a float32 array.* Fix: return only the "
            r"actions",
        ),
        (
            lambda obs: [[0.0, 0.0]],
            r"reference actor returned list \[\[0.0, 0.0\]\] for 'actions'",
        ),
        (
            lambda obs: np.zeros((1, 2), np.int64),
            r"reference actor returned dtype int64 for 'actions'; expected a float32 array",
        ),
    ],
)
def test_a_reference_actor_of_the_wrong_size_or_type_is_named(actor: Any, match: str) -> None:
    interpreter = ReferenceInterpreter(small_program(), actor)
    with pytest.raises(ActorError, match=match):
        interpreter.step(feeds())


def test_a_reference_actor_returning_float64_is_taken_as_float32() -> None:
    interpreter = ReferenceInterpreter(small_program(), lambda obs: np.full((1, 2), 0.5))
    out = interpreter.step(feeds())
    assert out["actions"].dtype == np.float32 and np.array_equal(out["o"], [[0.5, 0.5]])


def test_a_torch_reference_actor_returning_a_tuple_is_named() -> None:
    torch = pytest.importorskip("torch")

    class TwoOutputs(torch.nn.Module):  # type: ignore[misc]
        def forward(self, obs: Any) -> Any:
            return obs[:, :2], obs

    interpreter = ReferenceInterpreter(small_program(), TwoOutputs())
    with pytest.raises(ActorError, match=r"reference actor returned tuple .* for 'actions'"):
        interpreter.step(feeds())
