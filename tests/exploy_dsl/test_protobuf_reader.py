"""The contract's own protobuf reader reads what onnx reads, from the same bytes.

Every expected value here comes from onnx parsing the same bytes (``onnx.load_from_string``,
``numpy_helper.to_array``): compiled files of every example, tensors of every dtype NumPy has in
every storage form onnx writes (raw_data, typed fields) and the forms it does not write but
reads (unpacked repeated numbers, repeated and merged fields, unknown fields).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, numpy_helper

from exploy_dsl import FileContractError, Runtime, read_contract
from exploy_dsl.contract import _graphs
from exploy_dsl.contract._protobuf import DATA_TYPES, WireFormatError, read_model
from tests._support import CliExample, Compiled

# -- an independent encoder of the wire format, for the forms onnx never writes --------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def number_field(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def bytes_field(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def float_field(number: int, value: float) -> bytes:
    return key(number, 5) + np.float32(value).tobytes()


def double_field(number: int, value: float) -> bytes:
    return key(number, 1) + np.float64(value).tobytes()


# -- comparing with onnx -----------------------------------------------------------------------


def described_by_onnx(value: onnx.ValueInfoProto) -> tuple[str, int | None, Any]:
    if not value.type.HasField("tensor_type"):
        return value.name, None, None
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return value.name, tensor.elem_type, None
    dims = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim)
    return value.name, tensor.elem_type, dims


def assert_same_array(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bit for bit: NaN payloads and -0.0 included


def assert_reads_as_onnx(data: bytes) -> None:
    """``read_model(data)`` gives what onnx gives for the same bytes, field by field."""
    model = onnx.load_from_string(data)
    info = read_model(data)
    assert info.ir_version == model.ir_version
    assert info.opset_import == tuple((o.domain, o.version) for o in model.opset_import)
    assert info.metadata == {p.key: p.value for p in model.metadata_props}
    for ours, theirs in ((info.inputs, model.graph.input), (info.outputs, model.graph.output)):
        assert [(v.name, v.elem_type, v.dims) for v in ours] == [
            described_by_onnx(v) for v in theirs
        ]
    by_name = {t.name: t for t in model.graph.initializer}
    assert sorted(info.initializers) == sorted(by_name)
    for name, tensor in info.initializers.items():
        expected = by_name[name]
        assert (tensor.data_type, tensor.dims) == (expected.data_type, tuple(expected.dims))
        assert_same_array(tensor.to_array(), numpy_helper.to_array(expected))


def model_with(*tensors: TensorProto) -> bytes:
    graph = helper.make_graph(
        [], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], list(tensors)
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString()


# -- compiled files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tutorial", "quadruped"])
def test_a_compiled_file_reads_as_onnx_reads_it(compiled: dict[str, Compiled], name: str) -> None:
    assert_reads_as_onnx(compiled[name].path.read_bytes())


@pytest.mark.torch
@pytest.mark.parametrize(
    "stem",
    ["tutorial", "tutorial_module", "tutorial_lstm", "quadruped", "quadruped_recurrent",
     "reference_mode", "gait"],
)  # fmt: skip
def test_every_example_file_reads_as_onnx_reads_it(
    example: Callable[[str], CliExample], stem: str
) -> None:
    assert_reads_as_onnx(example(stem).out.read_bytes())


def test_the_contract_of_a_compiled_file_is_what_onnx_says(compiled: dict[str, Compiled]) -> None:
    model = compiled["quadruped"].model
    contract = read_contract(compiled["quadruped"].path)
    assert contract.metadata == {p.key: p.value for p in model.metadata_props}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert sorted(contract.initial_values) == sorted(w.name for w in contract.memory)
    for name, value in contract.initial_values.items():
        assert_same_array(value, inits[name])
    assert (contract.opset, contract.ir_version) == (model.opset_import[0].version, 10)


# -- tensors of every dtype, in every storage form ----------------------------------------------

VALUES: dict[int, list[Any]] = {
    TensorProto.FLOAT: [0.0, -0.0, 1.5, -2.25e-38, np.inf, -np.inf, np.nan, 3.4e38],
    TensorProto.DOUBLE: [0.0, -0.0, 1e-300, -2.5, np.inf, np.nan, 1.7e308, 7.0],
    TensorProto.FLOAT16: [0.0, -0.0, 1.0, -65504.0, np.inf, np.nan, 6e-8, 0.333],
    TensorProto.INT8: [0, 1, -1, 127, -128, 5, -7, 9],
    TensorProto.UINT8: [0, 1, 255, 128, 7, 9, 11, 13],
    TensorProto.INT16: [0, -1, 32767, -32768, 5, -300, 300, 2],
    TensorProto.UINT16: [0, 1, 65535, 32768, 4, 40000, 2, 3],
    TensorProto.INT32: [0, -1, 2**31 - 1, -(2**31), 5, -70000, 70000, 3],
    TensorProto.UINT32: [0, 1, 2**32 - 1, 2**31, 5, 6, 7, 8],
    TensorProto.INT64: [0, -1, 2**63 - 1, -(2**63), 5, -(2**40), 2**40, 3],
    TensorProto.UINT64: [0, 1, 2**64 - 1, 2**63, 5, 6, 7, 8],
    TensorProto.BOOL: [True, False, True, True, False, False, True, False],
    TensorProto.COMPLEX64: [0j, 1 + 2j, -1.5j, np.nan + 1j, 3, -4 - 4j, 1e30j, 2],
    TensorProto.COMPLEX128: [0j, 1 + 2j, -1.5j, np.inf + 1j, 3, -4 - 4j, 1e300j, 2],
}
SHAPES = [(), (0,), (3,), (2, 4), (1, 2, 1, 4)]


def array_of(data_type: int, shape: tuple[int, ...]) -> np.ndarray:
    dtype = helper.tensor_dtype_to_np_dtype(data_type)
    values = (VALUES[data_type] * 2)[: int(np.prod(shape))]
    return np.array(values, dtype=dtype).reshape(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("data_type", list(VALUES), ids=lambda t: DATA_TYPES[t])
@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "typed_field"])
def test_each_dtype_and_storage_reads_as_onnx_reads_it(
    data_type: int, shape: tuple[int, ...], raw: bool
) -> None:
    array = array_of(data_type, shape)
    if raw:
        tensor = numpy_helper.from_array(array, "t")
    else:
        tensor = helper.make_tensor("t", data_type, shape, array.reshape(-1).tolist(), raw=False)
    assert tensor.HasField("raw_data") == raw
    assert_reads_as_onnx(model_with(tensor))


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.int32, np.bool_, np.int64, np.float16, np.uint8]),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    ),
    st.booleans(),
)
def test_any_array_reads_as_onnx_reads_it(array: np.ndarray, raw: bool) -> None:
    data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    if raw:
        tensor = numpy_helper.from_array(array, "t")
    else:
        tensor = helper.make_tensor("t", data_type, array.shape, array.reshape(-1).tolist())
    assert_reads_as_onnx(model_with(tensor))


# -- what onnx reads but never writes ----------------------------------------------------------


def test_unpacked_repeated_numbers_read_as_onnx_reads_them() -> None:
    dims = number_field(1, 2) + number_field(1, 3)  # dims unpacked
    special = [1.0, -2.0, 0.5, np.nan, np.inf, -0.0]
    int32s = [1, -1, -(2**31), 7, 2**31 - 1, 0]
    floats = b"".join(float_field(4, v) for v in special)
    ints = b"".join(number_field(5, v) for v in int32s)
    bytes_ = b"".join(number_field(5, v) for v in [1, -1, -128, 127, 300, -300])
    longs = b"".join(number_field(7, v) for v in [1, -1, -(2**63), 7, 2**63 - 1, 0])
    doubles = b"".join(double_field(10, v) for v in special)
    mixed = bytes_field(5, varint(4) + varint(-5)) + b"".join(
        number_field(5, v) for v in int32s[:4]
    )
    tensors = [
        dims + number_field(2, TensorProto.FLOAT) + floats + bytes_field(8, b"f"),
        dims + number_field(2, TensorProto.INT32) + ints + bytes_field(8, b"i"),
        dims + number_field(2, TensorProto.INT8) + bytes_ + bytes_field(8, b"b"),
        dims + number_field(2, TensorProto.INT64) + longs + bytes_field(8, b"l"),
        dims + number_field(2, TensorProto.DOUBLE) + doubles + bytes_field(8, b"d"),
        # packed and unpacked parts of one field, in order
        dims + number_field(2, TensorProto.INT32) + mixed + bytes_field(8, b"mixed"),
    ]
    graph = b"".join(bytes_field(5, t) for t in tensors)
    data = model_with() + bytes_field(7, graph)  # a second graph field merges into the first
    assert_reads_as_onnx(data)
    assert sorted(read_model(data).initializers) == ["b", "d", "f", "i", "l", "mixed"]


def test_repeated_singular_fields_keep_the_last_and_messages_merge() -> None:
    first = helper.make_model(
        helper.make_graph(
            [], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])], []
        ),
        opset_imports=[helper.make_opsetid("", 19)],
        ir_version=9,
    )
    helper.set_model_props(first, {"a": "1", "b": "2"})
    second = helper.make_model(
        helper.make_graph(
            [],
            "h",
            [helper.make_tensor_value_info("y", TensorProto.INT32, ["batch", 3])],
            [helper.make_tensor_value_info("z", TensorProto.BOOL, None)],
            [numpy_helper.from_array(np.arange(3, dtype=np.int32), "w")],
        ),
        opset_imports=[helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=10,
    )
    helper.set_model_props(second, {"a": "3"})
    data = first.SerializeToString() + second.SerializeToString()
    assert_reads_as_onnx(data)
    info = read_model(data)
    assert (info.ir_version, info.metadata) == (10, {"a": "3", "b": "2"})
    assert [v.name for v in info.inputs] == ["x", "y"]


def test_a_oneof_holds_the_member_given_last() -> None:
    tensor_type = bytes_field(1, number_field(1, TensorProto.FLOAT) + bytes_field(2, b""))
    sequence_type = bytes_field(4, bytes_field(1, tensor_type))
    dim_value_then_param = bytes_field(1, number_field(1, 3) + bytes_field(2, b"n"))
    dim_param_then_value = bytes_field(1, bytes_field(2, b"n") + number_field(1, 4))
    shaped = bytes_field(
        1,
        number_field(1, TensorProto.INT32)
        + bytes_field(2, dim_value_then_param + dim_param_then_value),
    )
    values = [
        bytes_field(1, b"tensor_then_sequence") + bytes_field(2, tensor_type + sequence_type),
        bytes_field(1, b"sequence_then_tensor") + bytes_field(2, sequence_type + tensor_type),
        bytes_field(1, b"dims") + bytes_field(2, shaped),
        bytes_field(1, b"no_type"),
    ]
    data = model_with() + bytes_field(7, b"".join(bytes_field(11, v) for v in values))
    assert_reads_as_onnx(data)
    kinds = {v.name: (v.elem_type, v.dims) for v in read_model(data).inputs}
    assert kinds["tensor_then_sequence"] == (None, None)
    assert kinds["sequence_then_tensor"] == (TensorProto.FLOAT, ())
    assert kinds["dims"] == (TensorProto.INT32, ("n", 4))


def test_unknown_fields_and_groups_are_skipped() -> None:
    group = key(30, 3) + number_field(1, 5) + bytes_field(2, b"in a group") + key(30, 4)
    unknown = number_field(99, 12345) + bytes_field(100, b"\x00\xff") + group
    unknown += key(101, 5) + b"\x01\x02\x03\x04" + key(102, 1) + bytes(8)
    base = model_with(numpy_helper.from_array(np.float32([1.5, 2.5]), "t"))
    data = unknown + base + unknown
    assert_reads_as_onnx(data)


def test_a_known_field_of_another_wire_type_is_an_unknown_field() -> None:
    data = model_with() + bytes_field(1, b"\x05")  # ir_version is a varint, not bytes
    assert_reads_as_onnx(data)


# -- refused by name ---------------------------------------------------------------------------


def test_a_tensor_stored_in_an_external_file_is_refused_naming_the_file() -> None:
    tensor = numpy_helper.from_array(np.zeros(3, np.float32), "w")
    onnx.external_data_helper.set_external_data(tensor, "weights.bin")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    info = read_model(model_with(tensor))
    assert info.initializers["w"].external
    with pytest.raises(WireFormatError, match=r"'w' keeps its data in an external file "
                       r"\('weights.bin'\)"):  # fmt: skip
        info.initializers["w"].to_array()


def test_a_memory_initial_value_in_an_external_file_is_refused_by_the_runtime(
    compiled: dict[str, Compiled], tmp_path: Path
) -> None:
    model = onnx.ModelProto()
    model.CopyFrom(compiled["quadruped"].model)
    (init,) = [i for i in model.graph.initializer if i.name == "memory.actions.in"]
    onnx.external_data_helper.set_external_data(init, "memory.bin")
    init.ClearField("raw_data")
    init.data_location = TensorProto.EXTERNAL
    path = tmp_path / "external.onnx"
    path.write_bytes(model.SerializeToString())
    match = (
        r"the initial value of memory 'memory.actions.in' cannot be read: tensor "
        r"'memory.actions.in' keeps its data in an external file \('memory.bin'\)"
    )
    with pytest.raises(FileContractError, match=match):
        Runtime(path)
    with pytest.raises(FileContractError, match=match):
        read_contract(model)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.segment.SetInParent(), r"'t' is stored in segments"),
        (lambda t: setattr(t, "data_type", TensorProto.BFLOAT16), r"'t' is BFLOAT16"),
        (lambda t: setattr(t, "data_type", TensorProto.STRING), r"'t' is STRING"),
        (lambda t: setattr(t, "raw_data", bytes(7)), r"holds 7 bytes of raw_data; float32\[2\]"),
        (lambda t: t.dims.append(2), r"holds 8 bytes of raw_data; float32\[2, 2\] needs 16"),
    ],
    ids=["segment", "bfloat16", "string", "short-raw", "wrong-dims"],
)
def test_an_unreadable_tensor_is_refused_naming_it(
    edit: Callable[[TensorProto], object], match: str
) -> None:
    tensor = numpy_helper.from_array(np.float32([1, 2]), "t")
    edit(tensor)
    with pytest.raises(WireFormatError, match=match):
        read_model(model_with(tensor)).initializers["t"].to_array()


def test_typed_values_of_the_wrong_count_are_refused() -> None:
    tensor = helper.make_tensor("t", TensorProto.INT32, [2], [1, 2], raw=False)
    tensor.dims[0] = 3
    with pytest.raises(WireFormatError, match=r"'t' holds 2 value\(s\); int32\[3\] needs 3"):
        read_model(model_with(tensor)).initializers["t"].to_array()


@pytest.mark.parametrize(
    "data",
    [
        model_with(numpy_helper.from_array(np.float32([1, 2]), "t"))[:-3],  # truncated
        b"\x0a\x05ab",  # a length past the end
        key(7, 6) + b"x",  # wire type 6 does not exist
        b"\xff" * 11,  # a number longer than 10 bytes
        key(0, 0) + b"\x01",  # field number 0
        key(30, 3) + number_field(1, 5),  # a group without its end
    ],
    ids=["truncated", "length-past-end", "wire-type-6", "long-varint", "field-0", "open-group"],
)
def test_bytes_that_are_no_protobuf_message_are_refused_as_onnx_refuses_them(data: bytes) -> None:
    with pytest.raises(Exception):  # noqa: B017 - onnx raises protobuf's DecodeError
        onnx.load_from_string(data)
    with pytest.raises(WireFormatError):
        read_model(data)
    with pytest.raises(FileContractError, match=r"^file is not a readable ONNX model: "):
        read_contract(data)


def test_a_string_that_is_not_utf8_is_refused() -> None:
    data = bytes_field(14, bytes_field(1, b"\xff\xfe") + bytes_field(2, b"v"))
    with pytest.raises(WireFormatError, match="not UTF-8"):
        read_model(data)


# -- the constants the reader shares with onnx ---------------------------------------------


def test_the_dtype_names_and_attribute_types_are_onnx_s() -> None:
    assert {name: number for number, name in enumerate(DATA_TYPES)} == {
        name: number for name, number in TensorProto.DataType.items() if number < len(DATA_TYPES)
    }
    assert (_graphs.GRAPH, _graphs.GRAPHS) == (
        onnx.AttributeProto.GRAPH,
        onnx.AttributeProto.GRAPHS,
    )
