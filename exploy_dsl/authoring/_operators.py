"""Arithmetic and indexing on spox Vars with Python numbers and arrays, while a stage traces."""

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


# -- indexing ----------------------------------------------------------------------------------


def _fmt_key(key: object) -> str:
    """The index as the user wrote it: ``[:, 0:3]``, ``[..., -1]``."""

    def one(k: object) -> str:
        if k is Ellipsis:
            return "..."
        if isinstance(k, slice):
            parts = ["" if p is None else str(p) for p in (k.start, k.stop, k.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if k.step is not None else "")
        if isinstance(k, Var):
            return "<Var>"
        return repr(k.tolist() if isinstance(k, np.ndarray) else k)

    keys = key if isinstance(key, tuple) else (key,)
    return "[" + ", ".join(one(k) for k in keys) + "]"


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + "]"


def _is_int(k: object) -> bool:
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def getitem(x: Var, key: object) -> Var:
    """NumPy basic indexing on a Var, traced to ONNX: ``x[:, 3:6]``, ``x[..., -1]``, ``x[:, ::2]``.

    Slices (negative bounds and steps too) become one Slice, integer indices a Slice and a
    Squeeze (the axis goes, as in NumPy), one list of integers a Gather. Bounds are checked
    against the static shape here, so a mistake is a StageError at the user's line.
    """
    where = f"indexing {_fmt_key(key)}"
    tensor = x.unwrap_tensor()
    shape = tuple(tensor.shape) if tensor.shape is not None else None
    if shape is None or not all(isinstance(d, int) for d in shape):
        raise StageError(
            f"{where}: indexing needs a value of static shape, this one is "
            f"{'unknown' if shape is None else _shape_text(shape)}. Fix: reshape it to a "
            "static shape first, or use op.slice / op.gather."
        )
    dims: tuple[int, ...] = shape  # type: ignore[assignment]
    keys = key if isinstance(key, tuple) else (key,)
    ellipses = sum(k is Ellipsis for k in keys)
    if ellipses > 1:
        raise StageError(f"{where}: an index can only have a single ellipsis ('...').")
    used = len(keys) - ellipses
    if used > len(dims):
        raise StageError(
            f"{where}: too many indices for a value of shape {_shape_text(dims)} "
            f"({used} given, {len(dims)} axes). Fix: index at most {len(dims)} axes; "
            "the batch axis comes first."
        )
    if ellipses:
        at = keys.index(Ellipsis)
        keys = keys[:at] + (slice(None),) * (len(dims) - used) + keys[at + 1 :]
    else:
        keys = keys + (slice(None),) * (len(dims) - used)
    starts: list[int] = []
    ends: list[int] = []
    axes: list[int] = []
    steps: list[int] = []
    squeezed: list[int] = []
    gathered: tuple[int, np.ndarray] | None = None
    for axis, (k, dim) in enumerate(zip(keys, dims, strict=True)):
        if _is_int(k):
            i = int(k)  # type: ignore[call-overload]
            if not -dim <= i < dim:
                raise StageError(
                    f"{where}: index {i} is out of range for axis {axis} of size {dim} "
                    f"(shape {_shape_text(dims)}). Fix: an index in [{-dim}, {dim - 1}]."
                )
            i %= dim
            starts.append(i)
            ends.append(i + 1)
            axes.append(axis)
            steps.append(1)
            squeezed.append(axis)
        elif isinstance(k, slice):
            for part in (k.start, k.stop, k.step):
                if part is not None and not _is_int(part):
                    raise StageError(
                        f"{where}: slice bounds must be Python ints (or omitted), got "
                        f"{type(part).__name__}. Fix: for bounds computed in the graph, use "
                        "op.slice."
                    )
            if k.step == 0:
                raise StageError(f"{where}: a slice step cannot be zero.")
            start, stop, step = k.indices(dim)
            if len(range(start, stop, step)) == 0:
                raise StageError(
                    f"{where}: slice {_fmt_key(k)[1:-1]} selects nothing on axis {axis} of size "
                    f"{dim} (shape {_shape_text(dims)}). Fix: a non-empty range, e.g. 0:{dim}."
                )
            if (start, stop, step) == (0, dim, 1):
                continue
            if step < 0 and stop < 0:
                stop = -dim - 1  # ONNX reads -1 as the last element; this means "before 0"
            starts.append(start)
            ends.append(stop)
            axes.append(axis)
            steps.append(step)
        elif isinstance(k, (list, tuple, np.ndarray)):
            picks = np.asarray(k)
            if picks.ndim != 1 or picks.size == 0 or not all(_is_int(p) for p in picks.tolist()):
                raise StageError(
                    f"{where}: a list index must be a non-empty 1-D list of ints, got "
                    f"{_fmt_key(k)[1:-1]}."
                )
            if gathered is not None:
                raise StageError(
                    f"{where}: only one list index per indexing is supported. Fix: index "
                    "twice, one list at a time."
                )
            bad = [int(p) for p in picks if not -dim <= int(p) < dim]
            if bad:
                raise StageError(
                    f"{where}: index {bad[0]} is out of range for axis {axis} of size {dim} "
                    f"(shape {_shape_text(dims)}). Fix: indices in [{-dim}, {dim - 1}]."
                )
            gathered = (axis, picks.astype(np.int64) % dim)
        elif k is None:
            raise StageError(
                f"{where}: None (np.newaxis) is not supported. Fix: op.unsqueeze(x, "
                "op.const(np.array([axis])))."
            )
        elif isinstance(k, Var):
            raise StageError(
                f"{where}: indexing with a Var is not supported (the index must be known when "
                "the stage is traced). Fix: op.gather(x, index, axis=...)."
            )
        else:
            raise StageError(
                f"{where}: cannot index with {type(k).__name__} {k!r}; use ints, slices, "
                "'...', or one list of ints."
            )
    if gathered is not None and squeezed:
        raise StageError(
            f"{where}: a list index together with an integer index is not supported (NumPy "
            "would move the axes). Fix: index twice, e.g. x[:, [0, 2]][..., 0]."
        )
    out = x
    if axes:
        ints = (starts, ends, axes) + ((steps,) if any(s != 1 for s in steps) else ())
        out = op.slice(out, *(op.const(np.asarray(v, np.int64)) for v in ints))
    if gathered is not None:
        out = op.gather(out, op.const(gathered[1]), axis=gathered[0])
    if squeezed:
        out = op.squeeze(out, op.const(np.asarray(squeezed, np.int64)))
    return out


_MISSING = object()


@contextmanager
def operators() -> Iterator[None]:
    """Enable ``var * 2.0``, ``q0 + 0.25 * var``, ``var[:, 0:3]`` etc. while a stage traces.

    ``__array_ufunc__ = None`` makes NumPy hand ``ndarray + Var`` to ``Var.__radd__`` instead
    of building an object array; both class attributes are restored afterwards.
    """
    prev_dispatcher = Var._operator_dispatcher
    prev_ufunc = Var.__dict__.get("__array_ufunc__", _MISSING)
    prev_getitem = Var.__dict__.get("__getitem__", _MISSING)
    Var._operator_dispatcher = _Dispatcher()
    Var.__array_ufunc__ = None  # type: ignore[attr-defined]
    setattr(Var, "__getitem__", getitem)  # noqa: B010 - mypy: Var is not indexable
    try:
        yield
    finally:
        Var._operator_dispatcher = prev_dispatcher
        for name, prev in (("__array_ufunc__", prev_ufunc), ("__getitem__", prev_getitem)):
            if prev is _MISSING:
                delattr(Var, name)
            else:
                setattr(Var, name, prev)
