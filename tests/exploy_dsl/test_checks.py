"""The shared value checks: one wording for one mistake, wherever it is made."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from exploy_dsl import DeclarationError, Program, StageError, UsageError, term
from exploy_dsl._checks import check_int, check_number, check_numbers, check_range

PAIR = r"must be a pair \(lo, hi\) of numbers with lo < hi, got \(1, 0\)\. Fix: e\.g\. "


def test_a_reversed_clip_reads_the_same_for_the_observation_and_a_term() -> None:
    program = Program("p", decimation=1, sim_dt=0.01)
    with pytest.raises(DeclarationError, match=r"^observations clip " + PAIR + r"clip="):
        program.observations(clip=(1, 0))
    with pytest.raises(StageError, match=r"^term 'x' clip " + PAIR + r"clip="):
        term("x", 0.0, clip=(1, 0))


@pytest.mark.parametrize(
    ("value", "strict", "finite", "ok"),
    [
        ((-1, 1), True, False, True),
        ([np.float32(-1), np.int64(1)], True, True, True),  # NumPy scalars are numbers
        ((1, 1), True, False, False),
        ((1, 1), False, False, True),  # a fixed command range
        ((-np.inf, 1.0), True, False, True),  # a one-sided clip
        ((-np.inf, 1.0), True, True, False),
        ((0.0, np.nan), False, False, False),
        ((True, 2), True, False, False),  # a bool is not a number
        ("ab", True, False, False),
        ((1, 2, 3), True, False, False),
    ],
)
def test_check_range(value: Any, strict: bool, finite: bool, ok: bool) -> None:
    if ok:
        assert check_range(value, "r", strict=strict, finite=finite) == tuple(map(float, value))
    else:
        with pytest.raises(DeclarationError, match=r"^r must be a pair \(lo, hi\) of "):
            check_range(value, "r", strict=strict, finite=finite)


def test_check_number_int_and_numbers_name_what_and_take_the_error_class() -> None:
    assert check_number(np.float32(0.5), "x", minimum=0) == 0.5
    with pytest.raises(UsageError, match=r"^atol must be a finite number >= 0, got -1\.$"):
        check_number(-1, "atol", minimum=0, error=UsageError)
    with pytest.raises(
        DeclarationError, match=r"^dt must be a finite number > 0, got 0\. Fix: x\.$"
    ):
        check_number(0, "dt", minimum=0, inclusive=False, fix="x")
    with pytest.raises(DeclarationError, match=r"^n must be an int >= 1, got True\.$"):
        check_int(True, "n")
    assert check_int(np.int64(3), "n") == 3
    assert check_numbers(np.array([[1, 2]]), "s") == (1.0, 2.0)
    with pytest.raises(DeclarationError, match=r"^s must be a finite number or a sequence"):
        check_numbers([[1], [2, 3]], "s")
