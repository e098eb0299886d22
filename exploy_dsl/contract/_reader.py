"""Read and validate the deployment contract of a compiled file, without the program.

The contract is read from the file's bytes (exploy_dsl.contract._protobuf), never through the
onnx package: a deploy host needs only numpy and onnxruntime. An ``onnx.ModelProto`` is read
from its serialized bytes, so every source goes through the same reader.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from exploy_dsl._checks import check_int
from exploy_dsl._errors import FileContractError, UsageError
from exploy_dsl.contract._batch import BATCH_DIM, DYNAMIC, Batch, recorded_batch
from exploy_dsl.contract._codec import decode_json
from exploy_dsl.contract._graphs import default_opset
from exploy_dsl.contract._protobuf import (
    BOOL,
    FLOAT,
    INT32,
    ModelInfo,
    ValueInfo,
    WireFormatError,
    data_type_name,
    read_model,
)
from exploy_dsl.contract._wires import (
    ACTIONS,
    OBS,
    STEP_COUNT,
    in_to_out,
    is_memory,
    is_memory_in,
    is_memory_out,
    memory_name,
    out_to_in,
)

if TYPE_CHECKING:
    import onnx

REQUIRED_KEYS = ("exploy_version", "update_rate", "decimation", "sim_dt", "obs_term_names")
_MAJOR_MINOR = re.compile(r"^\d+\.\d+")
_DTYPES: dict[int, str] = {FLOAT: "float32", INT32: "int32", BOOL: "bool"}


@dataclass(frozen=True, slots=True)
class Wire:
    """One graph input or output: name, static shape, dtype.

    In a dynamic-batch file ``batch_axis`` is where the symbolic ``batch`` dimension is;
    ``shape`` has one env there (1), or the envs a runtime runs (``FileContract.at_batch``).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    batch_axis: int | None = None

    @property
    def np_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.bool_) if self.dtype == "bool" else np.dtype(self.dtype)

    @property
    def declared_shape(self) -> list[int | str]:
        """The shape as the file declares it: ``batch`` where the batch is symbolic."""
        shape: list[int | str] = list(self.shape)
        if self.batch_axis is not None:
            shape[self.batch_axis] = BATCH_DIM
        return shape

    def at_batch(self, envs: int) -> Wire:
        if self.batch_axis is None:
            return self
        shape = (*self.shape[: self.batch_axis], envs, *self.shape[self.batch_axis + 1 :])
        return dataclasses.replace(self, shape=shape)


@dataclass(frozen=True, slots=True, eq=False)
class FileContract:
    """What a deployed controller binds: wires, memory with initial values, rates, metadata."""

    inputs: tuple[Wire, ...]  # declared inputs, without ctx.step_count and memory
    outputs: tuple[Wire, ...]  # declared outputs, without actions, obs and memory
    memory: tuple[Wire, ...]  # memory.<name>.in wires, in file order
    initial_values: dict[str, np.ndarray]  # keyed by memory.<name>.in
    actions: Wire
    obs: Wire
    decimation: int
    sim_dt: float
    update_rate: float
    metadata: dict[str, str]
    opset: int
    ir_version: int
    # 1 (the robot's), N envs, or "dynamic" (exploy_dsl.batch); ``envs`` is how many envs the
    # wires' shapes hold: with a dynamic batch 1 (one env's) until ``at_batch`` says otherwise.
    batch: Batch = 1
    envs: int = 1

    @property
    def memory_names(self) -> tuple[str, ...]:
        return tuple(memory_name(w.name) for w in self.memory)

    def at_batch(self, envs: int | None, what: str = "batch") -> FileContract:
        """The contract for ``envs`` envs. A dynamic-batch file takes any number (its
        initial values, one env's, repeated for each); any other file its own, or None."""
        if self.batch != DYNAMIC:
            if envs is not None and envs != self.batch:
                raise UsageError(
                    f"{what} is {envs} but the file is compiled for batch {self.batch}, with "
                    f"static shapes. Fix: leave {what} out (or give {self.batch}), or compile "
                    "the program with --batch dynamic."
                )
            return self
        if envs is None:
            raise UsageError(
                "the file has a dynamic batch: it runs any number of envs, chosen when it "
                f"runs. Fix: give {what}, the number of envs, e.g. 4096."
            )
        envs = check_int(envs, what, error=UsageError)
        initial = {}
        for wire in self.memory:
            value = self.initial_values[wire.name]
            axis = wire.batch_axis
            initial[wire.name] = value if axis is None else np.repeat(value, envs, axis=axis)
        return dataclasses.replace(
            self,
            inputs=tuple(w.at_batch(envs) for w in self.inputs),
            outputs=tuple(w.at_batch(envs) for w in self.outputs),
            memory=tuple(w.at_batch(envs) for w in self.memory),
            initial_values=initial,
            actions=self.actions.at_batch(envs),
            obs=self.obs.at_batch(envs),
            envs=envs,
        )

    def json_metadata(self, key: str) -> Any:
        """A metadata value decoded as JSON, or a FileContractError naming the key."""
        if key not in self.metadata:
            raise FileContractError(f"file has no metadata key {key!r}.")
        return decode_json(self.metadata[key], f"metadata key {key!r}")


def load_model(source: str | os.PathLike[str] | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Load a file, bytes or ModelProto; a missing or unreadable file is a clear error."""
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, bytes):
        try:
            return onnx.load_from_string(source)
        except Exception as exc:  # noqa: BLE001
            raise FileContractError(f"bytes are not an ONNX model: {exc}") from None
    path = _model_path(source)
    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
        raise FileContractError(f"file {str(path)!r} is not a readable ONNX model: {exc}") from None


def model_bytes(source: str | os.PathLike[str] | bytes | onnx.ModelProto) -> bytes:
    """The serialized model of a file, bytes or ModelProto, without importing onnx."""
    if isinstance(source, bytes):
        return source
    onnx = sys.modules.get("onnx")  # a ModelProto exists only once onnx is imported
    if onnx is not None and isinstance(source, onnx.ModelProto):
        return source.SerializeToString()  # type: ignore[no-any-return]
    path = _model_path(source)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileContractError(
            f"file {str(path)!r} cannot be read: {exc.strerror or exc}. Fix: check its permissions."
        ) from None


def _model_path(source: object) -> Path:
    if not isinstance(source, (str, os.PathLike)):
        raise FileContractError(
            f"expected a path to an .onnx file, bytes or an onnx.ModelProto, got "
            f"{type(source).__name__} {_short_repr(source)}. Fix: pass e.g. 'policy.onnx'."
        )
    path = Path(source)
    if path.is_dir():
        raise FileContractError(
            f"file {str(path)!r} is a folder; expected an .onnx file. "
            "Fix: pass the file itself, e.g. build/quadruped.onnx."
        )
    if not path.is_file():
        raise FileContractError(f"file {str(path)!r} does not exist. Fix: check the path.")
    return path


def read_contract(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto, source: str | None = None
) -> FileContract:
    """Validate ``model`` against DESIGN.md section 2 and describe it; errors name the key.

    ``model`` is a path to the file, its bytes or a loaded ``onnx.ModelProto``; ``source``
    names it in errors (default: the path, else ``file``).
    """
    if source is None:
        source = repr(str(model)) if isinstance(model, (str, os.PathLike)) else "file"
    data = model_bytes(model)
    try:
        info = read_model(data)
    except WireFormatError as exc:
        raise FileContractError(
            f"{source} is not a readable ONNX model: {exc}. Fix: pass the .onnx file that "
            "exploy-dsl compile wrote."
        ) from None
    return _contract_of(info, source)


def _contract_of(info: ModelInfo, source: str) -> FileContract:
    """The contract of a parsed model (``read_model``); errors name ``source``."""
    metadata = dict(info.metadata)
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise FileContractError(
            f"{source} lacks required metadata key(s) {', '.join(map(repr, missing))}; exploy's "
            "controller needs them. Fix: recompile it with exploy-dsl compile."
        )
    decimation = _parse_number(metadata, "decimation", int, source)
    sim_dt = _parse_number(metadata, "sim_dt", float, source)
    update_rate = _parse_number(metadata, "update_rate", float, source)
    if (
        decimation < 1
        or not (math.isfinite(sim_dt) and sim_dt > 0)
        or not (math.isfinite(update_rate) and update_rate > 0)
    ):
        raise FileContractError(
            f"{source} has decimation={decimation}, sim_dt={sim_dt}, update_rate={update_rate}; "
            "expected decimation >= 1 and finite positive rates. Fix: recompile it."
        )
    _check_json_keys(metadata, source)
    batch = recorded_batch(metadata)
    dynamic = batch == DYNAMIC
    wires_in = [_wire(v, source, "input", dynamic) for v in info.inputs]
    wires_out = [_wire(v, source, "output", dynamic) for v in info.outputs]
    by_in = {w.name: w for w in wires_in}
    by_out = {w.name: w for w in wires_out}
    step = by_in.get(STEP_COUNT)
    if step is None or step.shape != () or step.dtype != "int32":
        raise FileContractError(
            f"{source} has no int32 scalar input {STEP_COUNT!r} (found {step}). "
            "Fix: recompile it with exploy-dsl compile."
        )
    for name in (ACTIONS, OBS):
        if name not in by_out:
            raise FileContractError(f"{source} has no {name!r} output. Fix: recompile it.")
    defaulted = [
        w.name for w in wires_in if not is_memory_in(w.name) and w.name in info.initializers
    ]
    if defaulted:
        raise FileContractError(
            f"{source}: input {defaulted[0]!r} has an initializer; exploy's controller uses an "
            "input's initializer only on the first call after a reset, so only memory.*.in may "
            "have one. Fix: recompile it with exploy-dsl compile."
        )
    memory = [w for w in wires_in if is_memory_in(w.name)]
    initial: dict[str, np.ndarray] = {}
    for wire in memory:
        out_name = in_to_out(wire.name)
        out = by_out.get(out_name)
        if out is None:
            raise FileContractError(
                f"{source}: memory input {wire.name!r} has no output {out_name!r}; the state "
                "would be lost between calls. Fix: recompile it."
            )
        if out.shape != wire.shape or out.dtype != wire.dtype:
            raise FileContractError(
                f"{source}: memory {wire.name!r} is {wire.dtype}{list(wire.shape)} but "
                f"{out_name!r} is {out.dtype}{list(out.shape)}; they must match."
            )
        init = info.initializers.get(wire.name)
        if init is None:
            raise FileContractError(
                f"{source}: memory {wire.name!r} has no initializer holding its initial value. "
                "Fix: recompile it."
            )
        if init.dims != wire.shape or _DTYPES.get(init.data_type) != wire.dtype:
            raise FileContractError(
                f"{source}: the initial value of memory {wire.name!r} is "
                f"{_DTYPES.get(init.data_type, 'dtype ' + str(init.data_type))}"
                f"{list(init.dims)} but the wire is {wire.dtype}{list(wire.shape)}. "
                "Fix: recompile it."
            )
        try:
            initial[wire.name] = init.to_array()
        except WireFormatError as exc:
            raise FileContractError(
                f"{source}: the initial value of memory {wire.name!r} cannot be read: {exc}. "
                "Fix: recompile it with exploy-dsl compile (its files are self-contained)."
            ) from None
    orphan_outs = [
        w.name for w in wires_out if is_memory_out(w.name) and out_to_in(w.name) not in by_in
    ]
    if orphan_outs:
        raise FileContractError(
            f"{source}: memory output(s) {', '.join(map(repr, orphan_outs))} have no '.in' input."
        )
    memory_names = {w.name for w in memory}
    inputs = tuple(w for w in wires_in if w.name != STEP_COUNT and w.name not in memory_names)
    outputs = tuple(w for w in wires_out if w.name not in (ACTIONS, OBS) and not is_memory(w.name))
    opset = default_opset(info, missing=0)
    return FileContract(
        inputs,
        outputs,
        tuple(memory),
        initial,
        by_out[ACTIONS],
        by_out[OBS],
        decimation,
        sim_dt,
        update_rate,
        metadata,
        int(opset),
        int(info.ir_version),
        batch,
        1 if batch == DYNAMIC else batch,
    )


def _check_json_keys(metadata: dict[str, str], source: str) -> None:
    """The keys exploy's controller (or our tools) parse as JSON, with the form they need."""
    try:
        version = decode_json(metadata["exploy_version"], "exploy_version")
    except FileContractError:
        version = None  # reported below with the form it must have
    if not isinstance(version, str) or not _MAJOR_MINOR.match(version):
        raise FileContractError(
            f"{source}: metadata key 'exploy_version' must be a JSON string (with quotes) "
            f'starting with MAJOR.MINOR, e.g. "0.1.0", got {metadata["exploy_version"]!r}; '
            "exploy's controller refuses the file otherwise. Fix: recompile it."
        )
    names = _json(metadata, "obs_term_names", source)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FileContractError(
            f"{source}: metadata key 'obs_term_names' must be a JSON list of str, got "
            f"{metadata['obs_term_names'][:80]!r}. Fix: recompile it."
        )
    if "base_names" in metadata:
        bases = _json(metadata, "base_names", source)
        if not isinstance(bases, dict) or not all(isinstance(v, str) for v in bases.values()):
            raise FileContractError(
                f"{source}: metadata key 'base_names' must be a JSON object "
                f'{{"<articulation>": "<base body>"}}, got {metadata["base_names"][:80]!r}; '
                "exploy's controller would bind no base input. Fix: recompile it."
            )


def _json(metadata: dict[str, str], key: str, source: str) -> Any:
    return decode_json(metadata[key], f"{source}: metadata key {key!r}")


def _parse_number(metadata: dict[str, str], key: str, kind: type, source: str) -> Any:
    text = metadata[key]
    try:
        return kind(text)
    except ValueError:
        hint = " (it must be a plain number, NOT JSON-quoted)" if text.startswith('"') else ""
        raise FileContractError(
            f"{source}: metadata key {key!r} = {text!r} is not a plain {kind.__name__}{hint}."
        ) from None


def _wire(value: ValueInfo, source: str, what: str, dynamic: bool = False) -> Wire:
    if value.elem_type is None:
        raise FileContractError(f"{source}: {what} {value.name!r} is not a tensor.")
    dtype = _DTYPES.get(value.elem_type)
    if dtype is None:
        raise FileContractError(
            f"{source}: {what} {value.name!r} has dtype {data_type_name(value.elem_type)}; only "
            "float32, int32 and bool may cross the file boundary. Fix: cast inside the program."
        )
    if value.dims is None:
        raise FileContractError(
            f"{source}: {what} {value.name!r} has no shape (unknown rank); exploy's controller "
            "needs static shapes. Fix: recompile it."
        )
    dims = []
    batch_axis = None
    for axis, dim in enumerate(value.dims):
        if isinstance(dim, str):
            if dynamic and dim == BATCH_DIM and batch_axis is None:
                batch_axis = axis  # one env's shape until a runtime says how many
                dims.append(1)
                continue
            raise FileContractError(
                f"{source}: {what} {value.name!r} has a symbolic dimension "
                f"{dim or '?'!r}; exploy's controller needs static shapes. "
                "Fix: recompile with a fixed batch size."
            )
        dims.append(int(dim))
    return Wire(value.name, tuple(dims), dtype, batch_axis)


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
