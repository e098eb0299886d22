"""Declared ports: inputs, outputs and memory, with static shape, dtype and metadata."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from exploy_dsl._errors import DeclarationError
from exploy_dsl.contract._batch import BATCH_DIM
from exploy_dsl.contract._wires import memory_in, memory_key, memory_out

DType = Literal["float32", "int32", "bool"]
DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "int32": np.dtype(np.int32),
    "bool": np.dtype(np.bool_),
}


def normalize_dtype(dtype: object, what: str) -> DType:
    """Map any spelling of float32/int32/bool (str, NumPy type, dtype) to its canonical name."""
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        resolved = None
    for name, candidate in DTYPES.items():
        if resolved == candidate:
            return name  # type: ignore[return-value]
    raise DeclarationError(
        f"{what} has unsupported dtype {dtype!r}: only float32, int32 and bool cross the file "
        "boundary (exploy's controller reads nothing else). "
        "Fix: declare it as 'float32', 'int32' or 'bool' and cast inside a stage."
    )


# An ONNX file is one protobuf message, at most 2 GiB: no larger memory initial value fits, and
# a larger input per tick is a mistyped shape rather than robot state.
MAX_PORT_ELEMENTS = 2**29


def normalize_shape(shape: object, what: str) -> tuple[int, ...]:
    """Accept an int or a tuple of positive ints: the shape of one sample, without batch."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        dims: tuple[object, ...] = (int(shape),)
    elif isinstance(shape, (tuple, list)):
        dims = tuple(shape)
    else:
        raise DeclarationError(
            f"{what} has shape {shape!r}; expected an int or a tuple of ints such as (12,). "
            "Fix: pass the size of one sample; the batch dimension 1 is added for you."
        )
    if not dims:
        raise DeclarationError(
            f"{what} has an empty shape (); a port needs at least one dimension. "
            "Fix: declare a scalar as shape (1,), the file then holds [1, 1]."
        )
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or int(d) < 1:
            raise DeclarationError(
                f"{what} has shape {shape!r}: every dimension must be a static int >= 1 "
                f"(got {d!r}). Fix: exploy's controller needs static shapes; use fixed sizes."
            )
    sizes = tuple(int(d) for d in dims)  # type: ignore[call-overload]
    if math.prod(sizes) > MAX_PORT_ELEMENTS:
        raise DeclarationError(
            f"{what} has shape {shape!r}: {math.prod(sizes)} elements, more than the "
            f"{MAX_PORT_ELEMENTS} (2 GiB of float32) an ONNX file can hold. "
            "Fix: check the shape; a port holds one sample, e.g. (12,) for 12 joints."
        )
    return sizes


def normalize_metadata(metadata: object, what: str) -> dict[str, Any] | None:
    """Check metadata is a JSON-able dict with str keys and keep a private copy of it."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise DeclarationError(
            f"{what} metadata must be a dict, got {type(metadata).__name__}. "
            'Fix: pass e.g. metadata={"description": "..."}.'
        )
    try:
        text = json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DeclarationError(
            f"{what} metadata cannot be stored as JSON: {exc}. "
            "Fix: use only str keys and str, int, float (finite), bool, None, list or dict values; "
            "convert NumPy arrays with .tolist()."
        ) from None
    copied: dict[str, Any] = json.loads(text)
    return copied


@dataclass(frozen=True, slots=True, eq=False)
class Port:
    """A named value crossing the file boundary. Identity-hashed so it can key stage results."""

    name: str
    shape: tuple[int, ...]
    dtype: DType = "float32"
    metadata: dict[str, Any] | None = None
    batch: int = 1
    batch_axis: int = 0
    # The file's batch dimension is symbolic ('batch'); ``batch`` is then 1: one env's value.
    dynamic_batch: bool = False
    kind: ClassVar[str] = "port"

    @property
    def file_shape(self) -> tuple[int, ...]:
        """The shape of the port's value: the batch dimension at ``batch_axis`` (first by
        default). With a dynamic batch, one env's (batch 1); ``wire_shape`` is the file's."""
        return with_batch(self.shape, self.batch, self.batch_axis)

    @property
    def wire_shape(self) -> tuple[int | str, ...]:
        """The shape the file declares: ``file_shape``, the batch dimension named ``batch``
        when it is dynamic."""
        batch: int | str = BATCH_DIM if self.dynamic_batch else self.batch
        return (*self.shape[: self.batch_axis], batch, *self.shape[self.batch_axis :])

    def fits(self, shape: object) -> bool:
        """Whether a traced value's shape can be this port's: same rank, every static dimension
        equal (a batched file is also run against the batch-1 file before it is written)."""
        expected = self.wire_shape
        if not isinstance(shape, tuple) or len(shape) != len(expected):
            return False
        return all(
            not isinstance(dim, int) or dim == want  # unknown or symbolic: checked by running
            for dim, want in zip(shape, expected, strict=True)
        )

    @property
    def np_dtype(self) -> np.dtype[Any]:
        return DTYPES[self.dtype]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, shape={list(self.wire_shape)}, {self.dtype})"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Input(Port):
    """A value the robot or the operator provides at every tick."""

    kind: ClassVar[str] = "input"

    @property
    def wire(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Output(Port):
    """A value the file returns at every tick (written by apply_actions)."""

    kind: ClassVar[str] = "output"

    @property
    def wire(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Memory(Port):
    """State carried from one call to the next; starts at ``init`` after every reset."""

    init: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    kind: ClassVar[str] = "memory"

    @property
    def wire_in(self) -> str:
        return memory_in(self.name)

    @property
    def wire_out(self) -> str:
        return memory_out(self.name)

    @property
    def key(self) -> str:
        """``memory.<name>``: how stages and the tick's values name this memory."""
        return memory_key(self.name)

    @property
    def metadata_key(self) -> str:
        return memory_key(self.name)


def rebatched(port: Port, batch: int, dynamic: bool, what: str) -> Port:
    """``port`` at another batch (``dynamic``: symbolic, one env's value); a memory's initial
    value is one env's, repeated (a memory whose envs start differently cannot be rebatched)."""
    size = 1 if dynamic else batch
    if not isinstance(port, Memory):
        return dataclasses.replace(port, batch=size, dynamic_batch=dynamic)
    init = np.asarray(port.init)
    first = np.take(init, [0], axis=port.batch_axis)
    if not np.array_equal(np.broadcast_to(first, init.shape), init):
        raise DeclarationError(
            f"{what}: memory {port.name!r} starts from a different value in each of its "
            f"{port.batch} envs, so there is no one env's value to give "
            f"{'every' if dynamic else batch} envs. Fix: declare the initial value of one "
            f"env (shape {list(port.shape)}), which every env starts from."
        )
    value = np.ascontiguousarray(
        np.broadcast_to(first, with_batch(port.shape, size, port.batch_axis))
    )
    value.setflags(write=False)
    return dataclasses.replace(port, batch=size, dynamic_batch=dynamic, init=value)


_INT32 = np.iinfo(np.int32)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _fits_int32(raw: np.ndarray) -> bool:
    # Compare as Python ints: a float64 or int64 array may hold what int32 cannot.
    return bool(_INT32.min <= raw.min() and raw.max() <= _INT32.max)


def _extreme(raw: np.ndarray) -> str:
    low, high = raw.min().item(), raw.max().item()
    return f"{high:g}" if high > _INT32.max else f"{low:g}"


def with_batch(shape: tuple[int, ...], batch: int, axis: int = 0) -> tuple[int, ...]:
    """A per-sample shape with the batch dimension inserted at ``axis``."""
    return (*shape[:axis], batch, *shape[axis:])


def normalize_batch_axis(axis: object, shape: tuple[int, ...], what: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int) or not 0 <= axis <= len(shape):
        raise DeclarationError(
            f"{what} batch_axis must be an int from 0 to {len(shape)} (where the batch dimension "
            f"goes in the file shape), got {axis!r}. Fix: e.g. batch_axis=1 for a recurrent "
            "state [layers, batch, hidden] declared with shape (layers, hidden)."
        )
    return axis


def normalize_init(
    init: object,
    shape: tuple[int, ...],
    batch: int,
    dtype: DType,
    what: str,
    batch_axis: int = 0,
) -> np.ndarray:
    """Turn a memory's initial value into a read-only array of exactly the file shape."""
    np_dtype = DTYPES[dtype]
    file_shape = with_batch(shape, batch, batch_axis)
    if init is None:
        value = np.zeros(file_shape, np_dtype)
    else:
        try:
            raw = np.asarray(init)
        except Exception as exc:  # noqa: BLE001 - any conversion failure is the user's value
            raise DeclarationError(
                f"{what} initial value cannot be read as an array: {exc}"
            ) from None
        if raw.dtype.kind not in "biuf":
            raise DeclarationError(
                f"{what} initial value has dtype {raw.dtype}; "
                f"expected numbers for a {dtype} memory."
            )
        if dtype != "float32" and raw.dtype.kind == "f" and not np.all(np.round(raw) == raw):
            raise DeclarationError(
                f"{what} initial value has fractional numbers but the memory is {dtype}. "
                "Fix: declare dtype='float32' or give integer values."
            )
        if raw.shape not in (shape, file_shape) and raw.size != 1:
            raise DeclarationError(
                f"{what} initial value has shape {list(raw.shape)}; expected {list(shape)} "
                f"(or {list(file_shape)} with the batch dimension, or a single number). "
                f"Fix: give an initial value with {int(np.prod(shape))} elements in that shape."
            )
        if raw.shape == shape:
            raw = np.expand_dims(raw, batch_axis)  # one sample's value: the batch axis goes in
        if dtype == "int32" and raw.size and not _fits_int32(raw):
            raise DeclarationError(
                f"{what} initial value holds {_extreme(raw)}, outside int32 "
                f"[{_INT32.min}, {_INT32.max}]; it would wrap around. Fix: give values in range."
            )
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow to inf is refused next
            value = np.broadcast_to(raw, file_shape).astype(np_dtype)
        if dtype == "float32" and not np.all(np.isfinite(value)):
            raise DeclarationError(
                f"{what} initial value holds NaN or infinity (or a number beyond float32's "
                f"{_FLOAT32_MAX:.4g}); a robot would start from it. Fix: give finite numbers."
            )
    value = np.ascontiguousarray(value)
    value.setflags(write=False)
    return value
