"""Arithmetic on spox Vars with Python numbers and NumPy arrays, active while a stage traces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Var

from exploy_dsl._errors import StageError


def _dtype_of(var: Var) -> np.dtype[Any]:
    return np.dtype(var.unwrap_tensor().dtype)


def constant_like(value: object, dtype: np.dtype[Any], context: str) -> Var:
    """Make a constant Var of ``dtype`` from a number or array, refusing lossy conversions."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise StageError(f"{context}: cannot use {value!r} ({arr.dtype}) as a number.")
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        raise StageError(
            f"{context}: float constant {value!r} with an {dtype} value would be truncated. "
            "Fix: cast the value first, e.g. op.cast(x, to=np.float32)."
        )
    if dtype.kind == "b" and arr.dtype.kind != "b":
        raise StageError(f"{context}: numeric constant {value!r} combined with a bool value.")
    return op.const(arr.astype(dtype))


class _Dispatcher:
    """NumPy-like binary operators: constants take the dtype of the Var they meet."""

    def _promote(self, a: object, b: object, name: str) -> tuple[Var, Var]:
        if isinstance(a, Var) and isinstance(b, Var):
            da, db = _dtype_of(a), _dtype_of(b)
            if da != db:
                raise StageError(
                    f"operator {name}: operands have dtypes {da} and {db}. "
                    "Fix: cast one of them with op.cast(x, to=...)."
                )
            return a, b
        if isinstance(a, Var):
            return a, constant_like(b, _dtype_of(a), f"operator {name}")
        if not isinstance(b, Var):
            raise TypeError(f"operator {name} needs a Var operand")  # unreachable via Var ops
        return constant_like(a, _dtype_of(b), f"operator {name}"), b

    def add(self, a: object, b: object) -> Var:
        return op.add(*self._promote(a, b, "+"))

    def sub(self, a: object, b: object) -> Var:
        return op.sub(*self._promote(a, b, "-"))

    def mul(self, a: object, b: object) -> Var:
        return op.mul(*self._promote(a, b, "*"))

    def truediv(self, a: object, b: object) -> Var:
        x, y = self._promote(a, b, "/")
        if _dtype_of(x).kind != "f":
            raise StageError(
                "operator /: true division of integers. Fix: cast to float32 first, "
                "or use op.div for ONNX integer division."
            )
        return op.div(x, y)

    def floordiv(self, a: object, b: object) -> Var:
        x, y = self._promote(a, b, "//")
        q = op.div(x, y)
        return op.floor(q) if _dtype_of(x).kind == "f" else q

    def neg(self, a: Var) -> Var:
        return op.neg(a)

    def and_(self, a: object, b: object) -> Var:
        return op.and_(*self._promote(a, b, "&"))

    def or_(self, a: object, b: object) -> Var:
        return op.or_(*self._promote(a, b, "|"))

    def xor(self, a: object, b: object) -> Var:
        return op.xor(*self._promote(a, b, "^"))

    def not_(self, a: Var) -> Var:
        return op.not_(a)


_MISSING = object()


@contextmanager
def operators() -> Iterator[None]:
    """Enable ``var * 2.0``, ``q0 + 0.25 * var`` etc. for the duration of a stage trace.

    ``__array_ufunc__ = None`` makes NumPy hand ``ndarray + Var`` to ``Var.__radd__`` instead
    of building an object array; both class attributes are restored afterwards.
    """
    prev_dispatcher = Var._operator_dispatcher
    prev_ufunc = Var.__dict__.get("__array_ufunc__", _MISSING)
    Var._operator_dispatcher = _Dispatcher()
    Var.__array_ufunc__ = None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        Var._operator_dispatcher = prev_dispatcher
        if prev_ufunc is _MISSING:
            del Var.__array_ufunc__  # type: ignore[attr-defined]
        else:
            Var.__array_ufunc__ = prev_ufunc  # type: ignore[attr-defined]
