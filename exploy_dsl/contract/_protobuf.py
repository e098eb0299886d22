"""What the file contract reads from a serialized ONNX model, without the onnx package.

A deploy host needs only numpy and onnxruntime (``import onnx`` costs more than onnxruntime
itself), so the contract is read straight from the protobuf wire format
(https://protobuf.dev/programming-guides/encoding/) of the few fields it needs, with the field
numbers of onnx/onnx.proto:

- ``ModelProto``: ``ir_version`` 1, ``opset_import`` 8, ``graph`` 7, ``metadata_props`` 14
- ``GraphProto``: ``initializer`` 5, ``input`` 11, ``output`` 12 (nodes are skipped whole)
- ``ValueInfoProto`` (name, tensor type, shape) and ``TensorProto`` (dims, data_type, name, the
  typed data fields and ``raw_data``), the values onnx.numpy_helper.to_array gives.

Protobuf's own rules hold: the last value of a singular field wins, a singular message given
more than once is merged, repeated numbers may be packed or not, unknown fields are skipped.
Tensors whose data is in an external file, in a segment, or of a dtype NumPy lacks (bfloat16,
float8, 4-bit, strings) are refused by name: the contract reads memory initial values only,
which are float32, int32 or bool inside the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


class WireFormatError(ValueError):
    """The bytes are not a protobuf message of the expected form (the reader names why)."""


# TensorProto.DataType, onnx/onnx.proto: the names of error messages.
DATA_TYPES = (
    "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL",
    "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
    "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
    "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2",
)  # fmt: skip
FLOAT, INT32, BOOL = 1, 6, 9


def data_type_name(data_type: int) -> str:
    if 0 <= data_type < len(DATA_TYPES):
        return DATA_TYPES[data_type]
    return f"data type {data_type}"


# data_type -> (NumPy dtype, the typed field holding its values when there is no raw_data)
_INT32_DATA, _FLOAT_DATA, _INT64_DATA, _DOUBLE_DATA, _UINT64_DATA = 5, 4, 7, 10, 11
_STORAGE: dict[int, tuple[str, int]] = {
    1: ("float32", _FLOAT_DATA),
    2: ("uint8", _INT32_DATA),
    3: ("int8", _INT32_DATA),
    4: ("uint16", _INT32_DATA),
    5: ("int16", _INT32_DATA),
    6: ("int32", _INT32_DATA),
    7: ("int64", _INT64_DATA),
    9: ("bool", _INT32_DATA),
    10: ("float16", _INT32_DATA),
    11: ("float64", _DOUBLE_DATA),
    12: ("uint32", _UINT64_DATA),
    13: ("uint64", _UINT64_DATA),
    14: ("complex64", _FLOAT_DATA),
    15: ("complex128", _DOUBLE_DATA),
}
# int32_data entries that onnx reads as the low bits of the value (16-bit floats and ints, bool)
_LOW_BITS = {4: np.uint16, 5: np.uint16, 10: np.uint16, 9: np.uint8}

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5


class OpsetId(NamedTuple):
    domain: str
    version: int


@dataclass(frozen=True, slots=True)
class ValueInfo:
    """A graph input or output as the contract needs it.

    ``elem_type`` is None when the type is not a tensor; ``dims`` is None when the tensor has no
    shape, else one entry per axis: its size, or the symbol (``dim_param``, may be empty).
    """

    name: str
    elem_type: int | None
    dims: tuple[int | str, ...] | None


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """An initializer: its name, dtype and dims, with the value decoded on demand."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    external: bool
    _message: memoryview

    def to_array(self) -> np.ndarray:
        """The value onnx.numpy_helper.to_array gives (read-only); WireFormatError if unreadable."""
        return _tensor_array(self._message)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The parts of a ModelProto the file contract reads."""

    ir_version: int
    opset_import: tuple[OpsetId, ...]
    metadata: dict[str, str]  # later keys win, as {p.key: p.value for p in metadata_props}
    inputs: tuple[ValueInfo, ...]
    outputs: tuple[ValueInfo, ...]
    initializers: dict[str, TensorInfo]  # of the main graph, by name (the last one wins)


def read_model(data: bytes) -> ModelInfo:
    """Parse a serialized ModelProto; WireFormatError names what is malformed."""
    model = _Fields(memoryview(data))
    graph = model.message(7)
    metadata: dict[str, str] = {}
    for entry in model.messages(14):
        pair = _Fields(entry)
        metadata[pair.string(1)] = pair.string(2)
    opsets = tuple(OpsetId(_Fields(m).string(1), _Fields(m).int64(2)) for m in model.messages(8))
    initializers: dict[str, TensorInfo] = {}
    for message in graph.messages(5):
        tensor = _tensor_info(message)
        initializers[tensor.name] = tensor
    return ModelInfo(
        ir_version=model.int64(1),
        opset_import=opsets,
        metadata=metadata,
        inputs=tuple(_value_info(m) for m in graph.messages(11)),
        outputs=tuple(_value_info(m) for m in graph.messages(12)),
        initializers=initializers,
    )


# TypeProto's oneof `value`: tensor_type 1, sequence 4, map 5, opaque 7, sparse 8, optional 9
_TYPE_MEMBERS = (1, 4, 5, 7, 8, 9)
_DIM_MEMBERS = {1: _VARINT, 2: _LENGTH}  # Dimension's oneof: dim_value, dim_param


def _value_info(message: memoryview) -> ValueInfo:
    fields = _Fields(message)
    kind, type_message = fields.message(2).oneof(_TYPE_MEMBERS)
    if kind != 1:
        return ValueInfo(fields.string(1), None, None)
    tensor = _Fields(type_message)
    dims: tuple[int | str, ...] | None = None
    if tensor.has_message(2):
        dims = tuple(_dim(d) for d in tensor.message(2).messages(1))
    return ValueInfo(fields.string(1), tensor.int32(1), dims)


def _dim(message: memoryview) -> int | str:
    kind, value = _Fields(message).scalar_oneof(_DIM_MEMBERS)
    if kind == 1:
        return _signed64(value)
    return _text(value) if kind == 2 else ""


def _tensor_info(message: memoryview) -> TensorInfo:
    fields = _Fields(message)
    return TensorInfo(
        name=fields.string(8),
        data_type=fields.int32(2),
        dims=tuple(_signed64(v) for v in fields.repeated_varints(1)),
        external=fields.int32(14) == 1,  # DataLocation.EXTERNAL
        _message=message,
    )


def _tensor_array(message: memoryview) -> np.ndarray:
    fields = _Fields(message)
    info = _tensor_info(message)
    name, dims = info.name, info.dims
    if info.external:
        locations = [_Fields(e) for e in fields.messages(13)]
        location = next((e.string(2) for e in locations if e.string(1) == "location"), "?")
        raise WireFormatError(
            f"tensor {name!r} keeps its data in an external file ({location!r}); exploy-dsl "
            "reads only values stored inside the file"
        )
    if fields.has_message(3):
        raise WireFormatError(f"tensor {name!r} is stored in segments, which onnx cannot load")
    storage = _STORAGE.get(info.data_type)
    if storage is None:
        raise WireFormatError(
            f"tensor {name!r} is {data_type_name(info.data_type)}, which exploy-dsl does not "
            "read without onnx (only float32, int32 and bool cross the file boundary)"
        )
    if any(d < 0 for d in dims):
        raise WireFormatError(f"tensor {name!r} has a negative dimension: {list(dims)}")
    dtype_name, field = storage
    dtype = np.dtype(dtype_name)
    size = math.prod(dims)
    raw = fields.last_bytes(9)
    if raw is not None:
        if len(raw) != size * dtype.itemsize:
            raise WireFormatError(
                f"tensor {name!r} holds {len(raw)} bytes of raw_data; {dtype}{list(dims)} needs "
                f"{size * dtype.itemsize}"
            )
        values = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    else:
        values = _typed_values(fields, field, info.data_type, dtype)
        if values.size != size:
            raise WireFormatError(
                f"tensor {name!r} holds {values.size} value(s); {dtype}{list(dims)} needs {size}"
            )
    array = values.reshape(dims)
    array.flags.writeable = False
    return array


def _typed_values(fields: _Fields, field: int, data_type: int, dtype: np.dtype[Any]) -> np.ndarray:
    """The typed field's values, converted as onnx.numpy_helper.to_array does."""
    if field == _FLOAT_DATA:
        stored = fields.repeated_fixed(field, "<f4")
    elif field == _DOUBLE_DATA:
        stored = fields.repeated_fixed(field, "<f8")
    elif field == _INT64_DATA:
        stored = np.array([_signed64(v) for v in fields.repeated_varints(field)], np.int64)
    elif field == _UINT64_DATA:
        stored = np.array([v & _U64 for v in fields.repeated_varints(field)], np.uint64)
    else:  # int32_data: one int32 per entry (sign-extended to 64 bits on the wire)
        stored = np.array([_signed32(v) for v in fields.repeated_varints(field)], np.int32)
        low = _LOW_BITS.get(data_type)
        if low is not None:  # 16-bit values and bool: the low bits of each entry, reinterpreted
            return stored.view(np.uint32).astype(low).view(dtype)
    if dtype.kind == "c":
        return stored.view(dtype)  # real and imaginary parts alternate
    return stored.astype(dtype)


class _Fields:
    """The fields of one message in order: varints as ints, the rest as byte slices.

    A field given with another wire type than its declared one is an unknown field to protobuf
    (skipped), so every accessor reads only the entries of the wire type it expects.
    """

    __slots__ = ("_items",)

    def __init__(self, data: memoryview) -> None:
        self._items = list(_scan(data))

    def _values(self, number: int, wire_type: int) -> list[Any]:
        return [v for n, t, v in self._items if n == number and t == wire_type]

    def has(self, number: int) -> bool:
        return any(n == number for n, _, _ in self._items)

    def has_message(self, number: int) -> bool:
        return bool(self._values(number, _LENGTH))

    def int64(self, number: int) -> int:
        values = self._values(number, _VARINT)
        return _signed64(values[-1]) if values else 0

    def int32(self, number: int) -> int:
        values = self._values(number, _VARINT)
        return _signed32(values[-1]) if values else 0

    def string(self, number: int) -> str:
        values = self._values(number, _LENGTH)
        return _text(values[-1]) if values else ""

    def last_bytes(self, number: int) -> memoryview | None:
        values = self._values(number, _LENGTH)
        return values[-1] if values else None

    def messages(self, number: int) -> list[memoryview]:
        """A repeated message field: each occurrence is one message."""
        return self._values(number, _LENGTH)

    def message_bytes(self, number: int) -> memoryview:
        """A singular message field: its occurrences merged (an absent one is empty)."""
        return _joined(self._values(number, _LENGTH))

    def message(self, number: int) -> _Fields:
        return _Fields(self.message_bytes(number))

    def oneof(self, numbers: tuple[int, ...]) -> tuple[int | None, memoryview]:
        """The member of a oneof of messages that is set (the last one given), merged.

        Another member given in between clears it, so only the occurrences after that merge.
        """
        kind: int | None = None
        parts: list[memoryview] = []
        for number, wire_type, value in self._items:
            if number in numbers and wire_type == _LENGTH:
                if number != kind:
                    kind, parts = number, []
                parts.append(value)
        return kind, _joined(parts)

    def scalar_oneof(self, members: dict[int, int]) -> tuple[int | None, Any]:
        """The member of a oneof of scalars (number -> wire type) given last, and its value."""
        found: tuple[int | None, Any] = (None, None)
        for number, wire_type, value in self._items:
            if members.get(number) == wire_type:
                found = (number, value)
        return found

    def repeated_varints(self, number: int) -> list[int]:
        """A repeated varint field, packed (one slice) or not (one entry each), in order."""
        values: list[int] = []
        for n, wire_type, value in self._items:
            if n != number:
                continue
            if wire_type == _VARINT:
                values.append(value)
            elif wire_type == _LENGTH:
                values.extend(_packed_varints(value))
        return values

    def repeated_fixed(self, number: int, dtype: str) -> np.ndarray:
        """A repeated float or double field, packed or not, as little-endian ``dtype``."""
        size = np.dtype(dtype).itemsize
        wire = _FIXED32 if size == 4 else _FIXED64
        chunks = []
        for n, wire_type, value in self._items:
            if n != number:
                continue
            if wire_type == _LENGTH:
                if len(value) % size:
                    raise WireFormatError(f"packed field {number} is not a multiple of {size}")
                chunks.append(bytes(value))
            elif wire_type == wire:
                chunks.append(value.to_bytes(size, "little"))
        return np.frombuffer(b"".join(chunks), dtype=dtype)


def _joined(parts: list[memoryview]) -> memoryview:
    if len(parts) == 1:
        return parts[0]
    return memoryview(b"".join(bytes(p) for p in parts))


def _scan(data: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field; fixed-size values as unsigned ints."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireFormatError("a field has number 0")
        value: Any
        if wire_type == _VARINT:
            value, position = _varint(data, position)
        elif wire_type == _LENGTH:
            length, position = _varint(data, position)
            if position + length > end:
                raise WireFormatError(f"field {number} runs past the end of its message")
            value = data[position : position + length]
            position += length
        elif wire_type in (_FIXED32, _FIXED64):
            size = 4 if wire_type == _FIXED32 else 8
            if position + size > end:
                raise WireFormatError(f"field {number} runs past the end of its message")
            value = int.from_bytes(data[position : position + size], "little")
            position += size
        elif wire_type == _START_GROUP:
            position = _skip_group(data, position, number)
            continue  # a group (proto2's old encoding) is no field the contract reads
        else:
            raise WireFormatError(f"field {number} has the invalid wire type {wire_type}")
        yield number, wire_type, value


def _skip_group(data: memoryview, position: int, number: int) -> int:
    end = len(data)
    while position < end:
        key, position = _varint(data, position)
        inner, wire_type = key >> 3, key & 7
        if wire_type == _END_GROUP:
            if inner != number:
                raise WireFormatError(f"group {number} ends as group {inner}")
            return position
        if wire_type == _VARINT:
            _, position = _varint(data, position)
        elif wire_type == _LENGTH:
            length, position = _varint(data, position)
            position += length
        elif wire_type in (_FIXED32, _FIXED64):
            position += 4 if wire_type == _FIXED32 else 8
        elif wire_type == _START_GROUP:
            position = _skip_group(data, position, inner)
        else:
            raise WireFormatError(f"field {inner} has the invalid wire type {wire_type}")
    raise WireFormatError(f"group {number} has no end")


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result, shift = 0, 0
    end = len(data)
    while True:
        if position >= end:
            raise WireFormatError("a number runs past the end of its message")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift >= 63 and result >> 64:
                raise WireFormatError("a number does not fit in 64 bits")
            return result, position
        shift += 7
        if shift >= 70:
            raise WireFormatError("a number is longer than 10 bytes")


def _packed_varints(data: memoryview) -> Iterator[int]:
    position, end = 0, len(data)
    while position < end:
        value, position = _varint(data, position)
        yield value


_U64 = (1 << 64) - 1


def _signed64(value: int) -> int:
    value &= _U64
    return value - (1 << 64) if value >> 63 else value


def _signed32(value: int) -> int:
    value &= (1 << 32) - 1
    return value - (1 << 32) if value >> 31 else value


def _text(value: memoryview) -> str:
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        raise WireFormatError(f"a string is not UTF-8: {bytes(value[:40])!r}") from None
