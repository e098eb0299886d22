"""The self-test a file may carry: a short recorded input/output sequence in one metadata key.

``exploy_dsl.self_test`` is a JSON object (format 1)::

    {"format": 1, "source": "random (seed 0)", "first_tick": 0, "ticks": 24,
     "resets": [9], "atol": 1e-4, "rtol": 1e-4,
     "inputs":  {"<wire>": {"dtype": "float32", "shape": [24, 1, 12], "base64": "..."}, ...},
     "outputs": {"<wire>": {...}, ...}}

Arrays are the little-endian bytes of a C-ordered array, ticks first, base64-encoded, so the
values are exact (no decimal rounding) and the text is stable: the same record gives the same
bytes. ``inputs`` holds every declared input of the file; ``outputs`` every output, ``actions``,
``obs`` and memory outs included, as the compiling machine's onnxruntime computed them.
``resets`` are the ticks (besides tick 0) before which memory and tick counter go back to their
initial values; ``first_tick`` is the ``ctx.step_count`` of the first call after a reset.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from exploy_dsl._errors import FileContractError
from exploy_dsl.contract._codec import to_json

SELF_TEST_KEY = "exploy_dsl.self_test"
FORMAT = 1
_DTYPES = ("float32", "int32", "bool")


@dataclass(frozen=True, slots=True, eq=False)
class SelfTestRecord:
    """What a file's self-test holds: inputs and expected outputs of a few ticks."""

    source: str
    first_tick: int
    reset: np.ndarray  # bool [ticks]; reset[0] is always True
    inputs: Mapping[str, np.ndarray]  # [ticks, *wire shape]
    outputs: Mapping[str, np.ndarray]  # [ticks, *wire shape]
    atol: float
    rtol: float

    @property
    def ticks(self) -> int:
        return int(self.reset.shape[0])


def encode_self_test(record: SelfTestRecord) -> str:
    """The metadata value of ``exploy_dsl.self_test`` for ``record``."""
    value = {
        "format": FORMAT,
        "source": record.source,
        "first_tick": record.first_tick,
        "ticks": record.ticks,
        "resets": [int(t) for t in np.flatnonzero(record.reset[1:]) + 1],
        "atol": record.atol,
        "rtol": record.rtol,
        "inputs": {name: _encode(a) for name, a in record.inputs.items()},
        "outputs": {name: _encode(a) for name, a in record.outputs.items()},
    }
    return to_json(value)


def decode_self_test(text: str, source: str) -> SelfTestRecord:
    """Read ``exploy_dsl.self_test`` back; a value of the wrong form is a FileContractError."""
    what = f"{source}: metadata key {SELF_TEST_KEY!r}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise FileContractError(f"{what} is not valid JSON. Fix: recompile the file.") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        found = value.get("format") if isinstance(value, dict) else type(value).__name__
        raise FileContractError(
            f"{what} has format {found!r}; this exploy-dsl reads format {FORMAT}. "
            "Fix: recompile the file with --self-test using this exploy-dsl."
        )
    ticks: Any = value.get("ticks")
    first: Any = value.get("first_tick")
    resets: Any = value.get("resets")
    atol: Any = value.get("atol")
    rtol: Any = value.get("rtol")
    if (
        not _count(ticks)
        or ticks < 1
        or not _count(first)
        or not isinstance(resets, list)
        or not all(_count(t) and 0 < t < ticks for t in resets)
        or not all(_tolerance(t) for t in (atol, rtol))
        or not isinstance(value.get("source"), str)
    ):
        raise FileContractError(
            f"{what} needs ticks >= 1, first_tick >= 0, resets inside the ticks, finite atol "
            "and rtol >= 0 and a source string. Fix: recompile the file."
        )
    reset = np.zeros(ticks, np.bool_)
    reset[0] = True
    reset[resets] = True
    arrays = {}
    for part in ("inputs", "outputs"):
        entries = value.get(part)
        if not isinstance(entries, dict):
            raise FileContractError(f"{what}: {part!r} must be an object. Fix: recompile it.")
        arrays[part] = {
            name: _decode(entry, f"{what} {part}[{name!r}]", ticks)
            for name, entry in entries.items()
        }
    return SelfTestRecord(
        value["source"], first, reset, arrays["inputs"], arrays["outputs"], atol, rtol
    )


def _encode(array: np.ndarray) -> dict[str, Any]:
    dtype = "bool" if array.dtype == np.bool_ else str(array.dtype)
    if dtype not in _DTYPES:
        raise ValueError(f"a self-test array is {dtype}")  # a bug in exploy-dsl: wires are checked
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return {
        "dtype": dtype,
        "shape": list(array.shape),
        "base64": base64.b64encode(data).decode("ascii"),
    }


def _decode(entry: Any, what: str, ticks: int) -> np.ndarray:
    if (
        not isinstance(entry, dict)
        or entry.get("dtype") not in _DTYPES
        or not isinstance(entry.get("shape"), list)
        or not all(_count(d) for d in entry["shape"])
        or not entry["shape"]
        or entry["shape"][0] != ticks
        or not isinstance(entry.get("base64"), str)
    ):
        raise FileContractError(
            f"{what} must be {{dtype, shape (ticks first), base64}}. Fix: recompile the file."
        )
    dtype = np.dtype(np.bool_) if entry["dtype"] == "bool" else np.dtype(entry["dtype"])
    try:
        data = base64.b64decode(entry["base64"], validate=True)
    except ValueError:
        raise FileContractError(f"{what} is not valid base64. Fix: recompile it.") from None
    shape = tuple(entry["shape"])
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise FileContractError(
            f"{what} holds {len(data)} bytes; {entry['dtype']}{list(shape)} needs "
            f"{math.prod(shape) * dtype.itemsize}. Fix: recompile the file."
        )
    return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tolerance(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
