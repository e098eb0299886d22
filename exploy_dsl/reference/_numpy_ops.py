"""NumPy implementations of ONNX operators (opset 13-22 semantics) for the graph interpreter."""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from onnx import TensorProto, helper

Array = npt.NDArray[Any]
Op = Callable[..., Any]

# Element types the table handles natively; other ``to`` targets (bfloat16, float8, int4, ...)
# are left to the reference evaluator.
_NATIVE_TENSOR_TYPES = frozenset(
    {
        TensorProto.FLOAT,
        TensorProto.UINT8,
        TensorProto.INT8,
        TensorProto.UINT16,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.BOOL,
        TensorProto.FLOAT16,
        TensorProto.DOUBLE,
        TensorProto.UINT32,
        TensorProto.UINT64,
    }
)


def _onnx_type(onnx_type: int | str) -> int:
    """An ONNX element type given as enum value or name (opset 1 Cast) as the enum value."""
    if isinstance(onnx_type, str):
        try:
            return TensorProto.DataType.Value(onnx_type.upper())
        except ValueError:
            return -1
    return int(onnx_type)


@functools.cache
def np_dtype(onnx_type: int | str) -> np.dtype[Any]:
    """NumPy dtype of an ONNX tensor element type (an enum value or its name)."""
    return np.dtype(helper.tensor_dtype_to_np_dtype(_onnx_type(onnx_type)))


def _ints(value: Any) -> list[int]:
    """A 1-D int tensor input or an ints attribute as a list of Python ints."""
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


def _new_array(fn: Op) -> Op:
    """Marks a kernel whose result is always a new array (or a NumPy scalar), never an input
    or a view of one: the interpreter hands it out without checking."""
    fn.new_array = True  # type: ignore[attr-defined]
    return fn


def makes_new_array(fn: Op) -> bool:
    """Whether ``fn``'s result is always a new array or a NumPy scalar (ufuncs, marked ones)."""
    return isinstance(fn, np.ufunc) or getattr(fn, "new_array", False) is True


def _variadic(fn: Callable[[Any, Any], Any]) -> Op:
    def op(*inputs: Array) -> Any:
        return functools.reduce(fn, inputs)

    return op


# --- elementwise arithmetic -----------------------------------------------------------------


def _div(a: Array, b: Array) -> Any:
    kind = np.result_type(a, b).kind
    if kind not in "iu":
        return np.divide(a, b)
    q = np.floor_divide(a, b)
    if kind == "i":
        # ONNX (like C) truncates integer division toward zero; NumPy floors.
        q = q + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0)))
    return q


def _mod(a: Array, b: Array, fmod: int = 0) -> Any:
    return np.fmod(a, b) if fmod else np.mod(a, b)


def _pow(x: Array, y: Array) -> Any:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype.kind in "fc":
        if y.dtype == x.dtype:
            return np.power(x, y)
        return np.power(x, y).astype(x.dtype, copy=False)
    if y.dtype.kind in "iu" and not np.any(y < 0):
        return np.power(x, y.astype(x.dtype, copy=False))
    # Integer base with a float or negative exponent: compute in double, cast back (truncating).
    return np.power(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)


def _mean(*inputs: Array) -> Any:
    total = functools.reduce(np.add, inputs)
    return total / len(inputs) if len(inputs) > 1 else total


# --- activations ----------------------------------------------------------------------------


@_new_array
def _sigmoid(x: Array) -> Any:
    return 1 / (1 + np.exp(-x))


_ZEROS: dict[np.dtype[Any], Array] = {}


def _zero(x: Array) -> Array:
    """A read-only 0-d zero of ``x``'s dtype: the same number as a Python ``0`` would be in a
    ufunc with ``x``, without NumPy working out a Python scalar's type on every call."""
    zero = _ZEROS.get(x.dtype)
    if zero is None:
        zero = _ZEROS[x.dtype] = np.zeros((), x.dtype)
        zero.flags.writeable = False
    return zero


@_new_array
def _relu(x: Array) -> Any:
    x = np.asarray(x)
    return np.maximum(x, _zero(x))


@_new_array
def _elu(x: Array, alpha: float = 1.0) -> Any:
    # expm1 overflows where x > 0 (the interpreter runs under np.errstate(all="ignore")); those
    # elements are replaced by x, as in np.where(x > 0, x, alpha * np.expm1(x)). putmask is
    # that replacement in the fewest NumPy calls (the fastest of where/copyto/putmask).
    x = np.asarray(x)
    out = np.expm1(x)
    if alpha != 1.0:
        out = alpha * out
    positive = np.greater(x, _zero(x))
    if type(out) is not np.ndarray:  # a 0-d x gives a NumPy scalar
        return np.where(positive, x, out)
    np.putmask(out, positive, x)
    return out


def _selu(
    x: Array, alpha: float = 1.67326319217681884765625, gamma: float = 1.05070102214813232421875
) -> Any:
    return gamma * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _leaky_relu(x: Array, alpha: float = 0.01) -> Any:
    return np.where(x >= 0, x, x * alpha)


def _hard_sigmoid(x: Array, alpha: float = 0.2, beta: float = 0.5) -> Any:
    return np.clip(x * alpha + beta, 0, 1)


def _softplus(x: Array) -> Any:
    return np.logaddexp(x, np.zeros((), dtype=np.asarray(x).dtype))


def _softsign(x: Array) -> Any:
    return x / (1 + np.abs(x))


def _clip_ufunc() -> Op:
    """The ufunc ``np.clip`` ends in when given both bounds, without its Python layers (array
    function dispatch, ``ndarray.clip``); ``np.clip`` itself where NumPy does not expose it."""
    for module in ("numpy._core.umath", "numpy.core.umath"):
        try:
            found = getattr(importlib.import_module(module), "clip", None)
        except ImportError:
            continue
        if isinstance(found, np.ufunc):
            return found
    return np.clip


_CLIP = _clip_ufunc()


def _clip(
    x: Array,
    lo: Array | None = None,
    hi: Array | None = None,
    *,
    min: float | None = None,  # opset < 11 attributes
    max: float | None = None,
) -> Any:
    return _clip_between(min if lo is None else lo, max if hi is None else hi)(x)


def _clip_between(low: Any, high: Any) -> Op:
    """Clip with constant bounds (None: no bound), as ``onnx.reference`` computes it:
    ``np.clip`` (``maximum``/``minimum`` for one bound, the ``clip`` ufunc for both, which
    differs from them on signed zeros), cast back to the input's dtype."""
    if low is None and high is None:
        return identity
    if high is None:
        one: Any = np.maximum
        bound = low
    elif low is None:
        one, bound = np.minimum, high
    else:

        @_new_array
        def both(x: Array) -> Any:
            out = _CLIP(x, low, high)
            return out if out.dtype == x.dtype else out.astype(np.asarray(x).dtype)

        return both

    @_new_array
    def run(x: Array) -> Any:
        out = one(x, bound)
        return out if out.dtype == x.dtype else out.astype(np.asarray(x).dtype)

    return run


# Cephes erf / erfc rational approximations (double precision).
_ERF_T = (
    9.60497373987051638749e0,
    9.00260197203842689217e1,
    2.23200534594684319226e3,
    7.00332514112805075473e3,
    5.55923013010394962768e4,
)
_ERF_U = (
    3.35617141647503099647e1,
    5.21357949780152679795e2,
    4.59432382970980127987e3,
    2.26290000613890934246e4,
    4.92673942608635921086e4,
)
_ERFC_P = (
    2.46196981473530512524e-10,
    5.64189564831068821977e-1,
    7.46321056442269912687e0,
    4.86371970985681366614e1,
    1.96520832956077098242e2,
    5.26445194995477358631e2,
    9.34528527171957607540e2,
    1.02755188689515710272e3,
    5.57535335369399327526e2,
)
_ERFC_Q = (
    1.32281951154744992508e1,
    8.67072140885989742329e1,
    3.54937778887819891062e2,
    9.75708501743205489753e2,
    1.82390916687909736289e3,
    2.24633760818710981792e3,
    1.65666309194161350182e3,
    5.57535340817727675546e2,
)
_ERFC_R = (
    5.64189583547755073984e-1,
    1.27536670759978104416e0,
    5.01905042251180477414e0,
    6.16021097993053585195e0,
    7.40974269950448939160e0,
    2.97886665372100240670e0,
)
_ERFC_S = (
    2.26052863220117276590e0,
    9.39603524938001434673e0,
    1.20489539808096656605e1,
    1.70814450747565897222e1,
    9.60896809063285878198e0,
    3.36907645100081516050e0,
)


def _polevl(x: Array, coefs: Sequence[float], leading_one: bool = False) -> Array:
    acc = x + coefs[0] if leading_one else np.full_like(x, coefs[0])
    for c in coefs[1:]:
        acc = acc * x + c
    return acc


def _erf(x: Array) -> Any:
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    a = np.minimum(np.abs(x64), 10.0)  # erf(10) == 1 in double; avoids inf * 0 below
    z = a * a
    small = np.copysign(a, x64) * _polevl(z, _ERF_T) / _polevl(z, _ERF_U, leading_one=True)
    near = a < 8
    p = np.where(near, _polevl(a, _ERFC_P), _polevl(a, _ERFC_R))
    q = np.where(near, _polevl(a, _ERFC_Q, True), _polevl(a, _ERFC_S, True))
    large = np.copysign(1.0 - np.exp(-z) * p / q, x64)
    out = np.where(a <= 1, small, large)
    out = np.where(np.isnan(x64), x64, out)
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


# --- softmax family -------------------------------------------------------------------------


def _softmax(x: Array, axis: int = -1) -> Any:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x: Array, axis: int = -1) -> Any:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _coerced_2d(fn: Op) -> Op:
    """Opset < 13 semantics: flatten to 2-D at ``axis`` (default 1) and normalise rows."""

    def op(x: Array, axis: int = 1) -> Any:
        shape = np.shape(x)
        axis = axis + len(shape) if axis < 0 else axis
        rows = math.prod(shape[:axis])
        flat = np.reshape(x, (rows, math.prod(shape[axis:])))
        return np.reshape(fn(flat, axis=1), shape)

    return op


# --- reductions -----------------------------------------------------------------------------


def _reduce_axes(axes: Any, rank: int) -> tuple[int, ...] | None:
    if axes is None:
        return None
    values = _ints(axes)
    if not values:
        return None
    return tuple(a + rank if a < 0 else a for a in values)


def _reducer(kernel: Callable[[Array, tuple[int, ...] | None, bool], Any]) -> Op:
    def op(
        data: Array, axes: Any = None, *, keepdims: int = 1, noop_with_empty_axes: int = 0
    ) -> Any:
        data = np.asarray(data)
        ax = _reduce_axes(axes, data.ndim)
        if ax is None and noop_with_empty_axes:
            # No reduction, but the elementwise part still applies (ReduceL1 acts as Abs, ...).
            ax = ()
        return kernel(data, ax, bool(keepdims))

    return op


def _count(data: Array, axes: tuple[int, ...] | None) -> int:
    if axes is None:
        return int(data.size)
    return math.prod(data.shape[a] for a in axes)


def _sum_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    return np.sum(data, axis=axes, keepdims=keep, dtype=data.dtype)


def _mean_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    if data.dtype.kind in "iu":
        total = np.sum(data, axis=axes, keepdims=keep, dtype=data.dtype)
        return _div(total, np.asarray(max(_count(data, axes), 1), dtype=data.dtype))
    return np.mean(data, axis=axes, keepdims=keep)


def _extreme_kernel(fn: Any, float_init: float, int_attr: str) -> Callable[..., Any]:
    def kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
        if data.size:
            return fn(data, axis=axes, keepdims=keep)
        kind = data.dtype.kind
        if kind == "f":
            init: Any = float_init
        elif kind == "b":
            init = float_init > 0
        else:
            init = getattr(np.iinfo(data.dtype), int_attr)
        return fn(data, axis=axes, keepdims=keep, initial=init)

    return kernel


def _prod_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    return np.prod(data, axis=axes, keepdims=keep, dtype=data.dtype)


def _l1_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    return np.sum(np.abs(data), axis=axes, keepdims=keep, dtype=data.dtype)


def _l2_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    total = np.sum(np.square(data), axis=axes, keepdims=keep, dtype=data.dtype)
    return np.sqrt(total).astype(data.dtype, copy=False)


def _sum_square_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    return np.sum(np.square(data), axis=axes, keepdims=keep, dtype=data.dtype)


def _log_sum_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    return np.log(np.sum(data, axis=axes, keepdims=keep, dtype=data.dtype))


def _log_sum_exp_kernel(data: Array, axes: tuple[int, ...] | None, keep: bool) -> Any:
    if data.size == 0:
        return np.log(np.sum(np.exp(data), axis=axes, keepdims=keep))
    peak = np.max(data, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0).astype(data.dtype, copy=False)
    total = np.sum(np.exp(data - peak), axis=axes, keepdims=True)
    out = np.log(total) + peak
    return out if keep else np.squeeze(out, axis=axes)


def _arg_extreme(fn: Any) -> Op:
    def op(data: Array, axis: int = 0, keepdims: int = 1, select_last_index: int = 0) -> Any:
        data = np.asarray(data)
        if select_last_index:
            idx = fn(np.flip(data, axis), axis=axis, keepdims=bool(keepdims))
            idx = (data.shape[axis] - 1) - idx
        else:
            idx = fn(data, axis=axis, keepdims=bool(keepdims))
        return np.asarray(idx, dtype=np.int64)

    return op


# --- tensor manipulation --------------------------------------------------------------------


@_new_array
def _concat(*inputs: Array, axis: int) -> Any:
    return np.concatenate(inputs, axis=axis)


def _concat_on(axis: int) -> Op:
    @_new_array
    def run(*inputs: Array) -> Any:
        return np.concatenate(inputs, axis=axis)

    return run


_INT_MAX_ENDS = frozenset({2**31 - 1, 2**63 - 1})


def _slice(data: Array, starts: Any, ends: Any, axes: Any = None, steps: Any = None) -> Any:
    data = np.asarray(data)
    return data[_slice_index(data.shape, starts, ends, axes, steps)]


def _slice_with_constant_bounds(
    starts: Any, ends: Any, axes: Any = None, steps: Any = None
) -> Callable[[Array], Any]:
    """Slice whose bounds are constants: the index is worked out once per input shape.

    With positive steps and axes counted from the front the index is the same for every shape
    (Python's slices clamp starts and ends as ONNX does); the kernel then carries it as
    ``index``, for a plan to index with it directly: ``data[kernel.index]``."""
    cache: dict[tuple[int, ...], tuple[slice, ...]] = {}

    def run(data: Array) -> Any:
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        index = cache.get(data.shape)
        if index is None:
            index = cache[data.shape] = _slice_index(data.shape, starts, ends, axes, steps)
        return data[index]

    run.index = _shape_free_index(starts, ends, axes, steps)  # type: ignore[attr-defined]
    return run


def indexes(fn: Op) -> tuple[slice, ...] | None:
    """The index a kernel is, ``fn(x) == x[index]`` for every ndarray ``x``, if it is one."""
    index = getattr(fn, "index", None)
    return index if isinstance(index, tuple) else None


def _shape_free_index(
    starts: Any, ends: Any, axes: Any = None, steps: Any = None
) -> tuple[slice, ...] | None:
    """``_slice_index`` of any shape, when that does not depend on the shape, else None."""
    start_list = _ints(starts)
    end_list = _ints(ends)
    axis_list = list(range(len(start_list))) if axes is None else _ints(axes)
    step_list = [1] * len(start_list) if steps is None else _ints(steps)
    counts = {len(end_list), len(axis_list), len(step_list)}
    if counts != {len(start_list)} or not start_list:
        return None
    if min(axis_list) < 0 or min(step_list) <= 0 or len(set(axis_list)) != len(axis_list):
        return None
    index = [slice(None)] * (max(axis_list) + 1)
    for start, end, axis, step in zip(start_list, end_list, axis_list, step_list, strict=True):
        # For a positive step, Python clamps like ONNX: a negative start or end counts from the
        # end, then both are clipped into [0, dim] (INT_MAX ends included).
        index[axis] = slice(start, end, step)
    return tuple(index)


def _slice_index(
    shape: tuple[int, ...], starts: Any, ends: Any, axes: Any = None, steps: Any = None
) -> tuple[slice, ...]:
    rank = len(shape)
    start_list = _ints(starts)
    end_list = _ints(ends)
    axis_list = list(range(len(start_list))) if axes is None else _ints(axes)
    step_list = [1] * len(start_list) if steps is None else _ints(steps)
    index: list[slice] = [slice(None)] * rank
    for start, end, axis, step in zip(start_list, end_list, axis_list, step_list, strict=True):
        axis = axis + rank if axis < 0 else axis
        dim = shape[axis]
        if step == 0:
            raise ValueError("Slice step cannot be 0")
        start = start + dim if start < 0 else start
        if end in _INT_MAX_ENDS:
            # onnxruntime reads an INT_MAX end as "to the end in the step's direction" (numpy's
            # None), also for negative steps where the spec's clamping would stop at dim - 1.
            end = dim if step > 0 else -1
        elif end < 0:
            end = end + dim
        if step > 0:
            start = min(max(start, 0), dim)
            end = min(max(end, 0), dim)
            index[axis] = slice(start, end, step)
        else:
            start = min(max(start, 0), dim - 1)
            end = min(max(end, -1), dim - 1)
            # Python would read end == -1 as "the last element"; ONNX means "before index 0".
            index[axis] = slice(start, end if end >= 0 else None, step)
    return tuple(index)


def _gather(data: Array, indices: Array, axis: int = 0) -> Any:
    return np.take(data, indices, axis=axis)


def _reshape(data: Array, shape: Any, allowzero: int = 0) -> Any:
    data = np.asarray(data)
    dims = _ints(shape)
    if not allowzero:
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return np.reshape(data, dims)


def _squeeze(data: Array, axes: Any = None) -> Any:
    ax = None if axes is None else _ints(axes)
    return np.squeeze(data, axis=tuple(ax) if ax else None)


def _unsqueeze(data: Array, axes: Any) -> Any:
    return np.expand_dims(data, tuple(_ints(axes)))


def _transpose(data: Array, perm: Sequence[int] | None = None) -> Any:
    return np.transpose(data, perm)


def _expand(data: Array, shape: Any) -> Any:
    data = np.asarray(data)
    return np.broadcast_to(data, np.broadcast_shapes(data.shape, tuple(_ints(shape))))


def _flatten(data: Array, axis: int = 1) -> Any:
    shape = np.shape(data)
    axis = axis + len(shape) if axis < 0 else axis
    return np.reshape(data, (math.prod(shape[:axis]), math.prod(shape[axis:])))


def _tile(data: Array, repeats: Any) -> Any:
    return np.tile(data, tuple(_ints(repeats)))


def _split(
    data: Array, split: Any = None, *, axis: int = 0, num_outputs: int | None = None
) -> tuple[Any, ...]:
    data = np.asarray(data)
    dim = data.shape[axis]
    sizes = _ints(split) if split is not None else []
    if not sizes:
        if not num_outputs:
            raise ValueError("Split needs either a 'split' input or 'num_outputs'")
        chunk = -(-dim // num_outputs)
        sizes = [chunk] * (num_outputs - 1) + [dim - chunk * (num_outputs - 1)]
    if sum(sizes) != dim or min(sizes) < 0:
        raise ValueError(f"Split sizes {sizes} do not partition dimension {dim}")
    return tuple(np.split(data, np.cumsum(sizes)[:-1].tolist(), axis=axis))


def _cumsum(x: Array, axis: Any, exclusive: int = 0, reverse: int = 0) -> Any:
    x = np.asarray(x)
    ax = _ints(axis)[0]
    ax = ax + x.ndim if ax < 0 else ax
    src = np.flip(x, ax) if reverse else x
    out = np.cumsum(src, axis=ax, dtype=x.dtype)
    if exclusive:
        head = np.zeros_like(np.take(out, [0], axis=ax))
        body = np.take(out, np.arange(out.shape[ax] - 1), axis=ax)
        out = np.concatenate([head, body], axis=ax)
    return np.flip(out, ax) if reverse else out


def _where(cond: Array, x: Array, y: Array) -> Any:
    return np.where(cond, x, y)


def _cast(x: Array, to: int | str, saturate: int = 1) -> Any:
    del saturate  # only meaningful for float8 targets, which are not handled here
    return np.asarray(x).astype(np_dtype(to), copy=False)


def _cast_like(x: Array, target: Array, saturate: int = 1) -> Any:
    del saturate
    return np.asarray(x).astype(np.asarray(target).dtype, copy=False)


def identity(x: Any) -> Any:
    """Identity's kernel (the interpreter's plan aliases it instead of calling it)."""
    return x


def _constant(
    value: Array | None = None,
    value_float: float | None = None,
    value_floats: Sequence[float] | None = None,
    value_int: int | None = None,
    value_ints: Sequence[int] | None = None,
    value_string: str | None = None,
    value_strings: Sequence[str] | None = None,
    sparse_value: Array | None = None,
) -> Array:
    if value is not None:
        return np.asarray(value)
    if sparse_value is not None:
        return np.asarray(sparse_value)
    if value_float is not None:
        return np.asarray(value_float, dtype=np.float32)
    if value_floats is not None:
        return np.asarray(value_floats, dtype=np.float32)
    if value_int is not None:
        return np.asarray(value_int, dtype=np.int64)
    if value_ints is not None:
        return np.asarray(value_ints, dtype=np.int64)
    if value_string is not None:
        return np.asarray(value_string, dtype=object)
    if value_strings is not None:
        return np.asarray(list(value_strings), dtype=object)
    raise ValueError("Constant node has no value attribute")


def _constant_of_shape(shape: Array, value: Array | None = None) -> Any:
    fill = np.zeros(1, dtype=np.float32) if value is None else np.asarray(value)
    return np.full(tuple(_ints(shape)), fill.reshape(-1)[0], dtype=fill.dtype)


def _range(start: Array, limit: Array, delta: Array) -> Any:
    start = np.asarray(start)
    dtype = start.dtype
    span = np.asarray(limit, dtype=dtype) - start  # computed in T, as onnxruntime does
    count = max(math.ceil(float(span) / float(delta)), 0)
    return (start + np.arange(count, dtype=dtype) * np.asarray(delta, dtype=dtype)).astype(
        dtype, copy=False
    )


def _shape(data: Any, start: int = 0, end: int | None = None) -> Any:
    return np.asarray(np.shape(data)[start:end], dtype=np.int64)


def _size(data: Any) -> Any:
    return np.asarray(np.size(data), dtype=np.int64)


def _matmul(a: Array, b: Array) -> Any:
    return np.matmul(a, b)


@_new_array
def _gemm(
    a: Array,
    b: Array,
    c: Array | None = None,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,  # ONNX attribute names
    transB: int = 0,
) -> Any:
    return _gemm_with_constant_b(b, alpha, beta, transA, transB)(a, c)


_NO_C = object()  # _gemm_with_constant_b: C is fed at run time


def _gemm_with_constant_b(
    b: Array,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
    *,
    c: Any = _NO_C,
) -> Op:
    """Gemm with ``B`` given once (an actor's weights): its transpose, a view, is taken here.

    The product is ``np.dot``'s, the call ``onnx.reference`` makes (for Gemm's 2-D operands,
    the product ``np.matmul`` gives), on the same operands (``B.T`` stays a view: a contiguous
    copy takes another BLAS path, with other roundings); ``alpha`` and ``C`` are applied to it
    in place, with the same roundings as ``y * alpha + C``. A constant ``C`` (``c``, None for
    none) is taken here too, a 1-D one as a row: the same sums, a cheaper broadcast.
    """
    rhs = np.asarray(b).T if transB else np.asarray(b)

    def scaled(a: Array, c: Array | None) -> Any:
        a = np.asarray(a)
        y = np.dot(a.T if transA else a, rhs)
        dtype = y.dtype
        in_place = dtype.kind == "f"  # an integer Y times a float alpha is cast back at the end
        if alpha != 1.0:
            y = np.multiply(y, alpha, out=y) if in_place else y * alpha
        if c is not None and beta != 0.0:
            bias = c if beta == 1.0 else c * beta
            if in_place and getattr(bias, "dtype", None) == dtype:
                np.add(y, bias, out=y)  # C broadcasts to Y's shape (unidirectional in ONNX)
            else:
                y = y + bias
        return y if y.dtype == dtype else y.astype(dtype)

    if c is _NO_C:
        return _new_array(scaled)
    if c is not None and beta != 0.0:
        c = np.asarray(c)
        if c.ndim == 1:
            c = c.reshape(1, -1)
        if alpha == 1.0 and beta == 1.0 and c.dtype.kind == "f":
            bias = c

            @_new_array
            def biased(a: Array) -> Any:  # an actor's layer: one product, one in-place add
                if type(a) is not np.ndarray:
                    a = np.asarray(a)
                y = np.dot(a.T if transA else a, rhs)
                if y.dtype == bias.dtype:
                    np.add(y, bias, out=y)
                    return y
                return scaled(a, bias)

            return biased

    @_new_array
    def constant_c(a: Array) -> Any:
        return scaled(a, c)

    return constant_c


def _einsum(*inputs: Array, equation: str) -> Any:
    return np.einsum(equation.replace(" ", ""), *inputs, optimize=len(inputs) > 2)


def _is_inf(x: Array, detect_negative: int = 1, detect_positive: int = 1) -> Any:
    if detect_negative and detect_positive:
        return np.isinf(x)
    if detect_negative:
        return np.isneginf(x)
    if detect_positive:
        return np.isposinf(x)
    return np.zeros(np.shape(x), dtype=bool)


def _non_zero(x: Array) -> Any:
    x = np.asarray(x)
    if x.ndim == 0:
        return np.zeros((0, int(bool(x))), dtype=np.int64)
    return np.asarray(np.nonzero(x), dtype=np.int64)


OPS: dict[str, Op] = {
    # arithmetic
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _div,
    "Mod": _mod,
    "Pow": _pow,
    "Neg": np.negative,
    "Abs": np.abs,
    "Sqrt": np.sqrt,
    "Exp": np.exp,
    "Log": np.log,
    "Reciprocal": np.reciprocal,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.rint,  # round half to even, like ONNX
    "Sign": np.sign,
    "Sum": _variadic(np.add),
    "Mean": _mean,
    "Min": _variadic(np.minimum),
    "Max": _variadic(np.maximum),
    # trigonometry and friends
    "Sin": np.sin,
    "Cos": np.cos,
    "Tan": np.tan,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Sinh": np.sinh,
    "Cosh": np.cosh,
    "Tanh": np.tanh,
    "Asinh": np.arcsinh,
    "Acosh": np.arccosh,
    "Atanh": np.arctanh,
    "Erf": _erf,
    # activations
    "Sigmoid": _sigmoid,
    "Relu": _relu,
    "Elu": _elu,
    "Selu": _selu,
    "LeakyRelu": _leaky_relu,
    "HardSigmoid": _hard_sigmoid,
    "Softplus": _softplus,
    "Softsign": _softsign,
    "Clip": _clip,
    "Softmax": _softmax,
    "LogSoftmax": _log_softmax,
    # comparison and logic
    "Equal": np.equal,
    "Less": np.less,
    "LessOrEqual": np.less_equal,
    "Greater": np.greater,
    "GreaterOrEqual": np.greater_equal,
    "Not": np.logical_not,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Xor": np.logical_xor,
    "Where": _where,
    "IsNaN": np.isnan,
    "IsInf": _is_inf,
    # reductions
    "ReduceSum": _reducer(_sum_kernel),
    "ReduceMean": _reducer(_mean_kernel),
    "ReduceMax": _reducer(_extreme_kernel(np.max, -math.inf, "min")),
    "ReduceMin": _reducer(_extreme_kernel(np.min, math.inf, "max")),
    "ReduceProd": _reducer(_prod_kernel),
    "ReduceL1": _reducer(_l1_kernel),
    "ReduceL2": _reducer(_l2_kernel),
    "ReduceSumSquare": _reducer(_sum_square_kernel),
    "ReduceLogSum": _reducer(_log_sum_kernel),
    "ReduceLogSumExp": _reducer(_log_sum_exp_kernel),
    "ArgMax": _arg_extreme(np.argmax),
    "ArgMin": _arg_extreme(np.argmin),
    "CumSum": _cumsum,
    # linear algebra
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Einsum": _einsum,
    # shape and data movement
    "Concat": _concat,
    "Slice": _slice,
    "Gather": _gather,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Expand": _expand,
    "Flatten": _flatten,
    "Tile": _tile,
    "Split": _split,
    "Shape": _shape,
    "Size": _size,
    "NonZero": _non_zero,
    # constants and types
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Cast": _cast,
    "CastLike": _cast_like,
    "Identity": identity,
}

# Ops whose semantics changed: for a default-domain opset below the version, use the function.
LEGACY_OPS: dict[str, tuple[int, Op]] = {
    "Softmax": (13, _coerced_2d(_softmax)),
    "LogSoftmax": (13, _coerced_2d(_log_softmax)),
}

# Ops that return a tuple with one array per node output.
MULTI_OUTPUT_OPS = frozenset({"Split"})


def with_constant_inputs(
    op_type: str, values: Sequence[Any], unknown: object, attrs: Mapping[str, Any]
) -> tuple[Op, tuple[int, ...]] | None:
    """A node's kernel with its constant inputs (and attributes) worked in once.

    ``values`` holds the node's inputs, ``unknown`` where a value is known only at run time.
    Returns the kernel and the positions of the inputs it still takes, or None when the op has
    no such kernel (or these constants do not fit it): the table's kernel is used as it is.
    The kernel computes exactly what the table's would, with the same NumPy calls.
    """
    known = [value is not unknown for value in values]
    if op_type == "Slice" and not attrs and len(values) >= 3 and all(known[1:]):
        # Observation pipelines slice with constant bounds; resolve them once, not per tick.
        return _slice_with_constant_bounds(*values[1:]), (0,)
    if op_type == "Gemm" and len(values) >= 2 and known[1] and np.ndim(values[1]) == 2:
        if len(values) < 3 or known[2]:  # no C, or a constant one: worked in too
            c = values[2] if len(values) > 2 else None
            return _gemm_with_constant_b(values[1], **attrs, c=c), (0,)
        return _gemm_with_constant_b(values[1], **attrs), (0, 2)
    if op_type == "Clip" and all(known[1:]):
        low = values[1] if len(values) > 1 and values[1] is not None else attrs.get("min")
        high = values[2] if len(values) > 2 and values[2] is not None else attrs.get("max")
        return _clip_between(low, high), (0,)
    if op_type == "Concat" and "axis" in attrs:
        return _concat_on(attrs["axis"]), tuple(range(len(values)))
    return None


@functools.cache
def _signature(fn: Op) -> inspect.Signature:
    return inspect.signature(fn)


def supports(fn: Op, op_type: str, n_inputs: int, attrs: Mapping[str, Any]) -> bool:
    """Whether ``fn`` (the table entry for ``op_type``) accepts these inputs and attributes."""
    if isinstance(fn, np.ufunc):  # plain elementwise entries take no attributes
        return n_inputs == fn.nin and not attrs
    params = list(_signature(fn).parameters.values())
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    positional = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if not variadic and n_inputs > len(positional):
        return False
    taken = set(positional[:n_inputs])
    named = {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    if any(name not in named or name in taken for name in attrs):
        return False
    if op_type == "Cast" and _onnx_type(attrs.get("to", -1)) not in _NATIVE_TENSOR_TYPES:
        return False
    return not (
        op_type == "ConstantOfShape"
        and "value" in attrs
        and np.asarray(attrs["value"]).dtype.kind not in "biuf"
    )
