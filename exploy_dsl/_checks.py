"""The value checks every module shares, so one mistake reads the same wherever it is made."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from exploy_dsl._errors import DeclarationError, ExployDslError

ErrorClass = type[ExployDslError]


def is_number(value: object) -> bool:
    """A real number (Python or NumPy scalar), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_finite(value: object) -> bool:
    return is_number(value) and math.isfinite(value)  # type: ignore[arg-type]


def is_int(value: object) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_range(value: object, *, strict: bool = True, finite: bool = False) -> bool:
    """A pair ``(lo, hi)`` (tuple or list) of numbers with ``lo < hi`` (``<=`` unless strict)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return False
    number = is_finite if finite else is_number
    if not all(number(x) for x in value):
        return False
    lo, hi = value
    return bool(lo < hi) if strict else bool(lo <= hi)


def check_range(
    value: object,
    what: str,
    *,
    strict: bool = True,
    finite: bool = False,
    fix: str = "e.g. (-1.0, 1.0)",
    error: ErrorClass = DeclarationError,
) -> tuple[float, float]:
    """``value`` as ``(lo, hi)`` floats, else ``error`` naming ``what``."""
    if not is_range(value, strict=strict, finite=finite):
        kind = "finite numbers" if finite else "numbers"
        order = "<" if strict else "<="
        raise error(
            f"{what} must be a pair (lo, hi) of {kind} with lo {order} hi, got {value!r}. "
            f"Fix: {fix}."
        )
    pair: Any = value
    return (float(pair[0]), float(pair[1]))


def check_number(
    value: object,
    what: str,
    *,
    minimum: float | None = None,
    inclusive: bool = True,
    fix: str | None = None,
    error: ErrorClass = DeclarationError,
) -> float:
    """``value`` as a finite float (``>= minimum``, or ``>`` unless inclusive), else ``error``."""
    ok = is_finite(value)
    if ok and minimum is not None:
        ok = value >= minimum if inclusive else value > minimum  # type: ignore[operator]
    if not ok:
        bound = "" if minimum is None else f" {'>=' if inclusive else '>'} {minimum:g}"
        hint = f" Fix: {fix}." if fix else ""
        raise error(f"{what} must be a finite number{bound}, got {value!r}.{hint}")
    return float(value)  # type: ignore[arg-type]


def check_numbers(
    value: object, what: str, *, fix: str | None = None, error: ErrorClass = DeclarationError
) -> tuple[float, ...]:
    """A number or a sequence (or array) of numbers, all finite, as a flat tuple of floats."""
    array: np.ndarray[Any, Any] | None
    if is_number(value):
        array = np.asarray([value], np.float64)
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):  # ragged nesting
            array = None
    if (
        array is None
        or array.dtype.kind not in "iuf"
        or array.size == 0
        or not np.all(np.isfinite(array))
    ):
        hint = f" Fix: {fix}." if fix else ""
        raise error(
            f"{what} must be a finite number or a sequence of finite numbers, got {value!r}.{hint}"
        )
    return tuple(float(x) for x in array.reshape(-1))


def check_int(
    value: object,
    what: str,
    *,
    minimum: int = 1,
    fix: str | None = None,
    error: ErrorClass = DeclarationError,
) -> int:
    """``value`` as an int ``>= minimum``, else ``error`` naming ``what``."""
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        hint = f" Fix: {fix}." if fix else ""
        raise error(f"{what} must be an int >= {minimum}, got {value!r}.{hint}")
    return int(value)  # type: ignore[call-overload]
