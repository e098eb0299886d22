"""Input streams for the parity check: seeded random ticks with resets, or a recorded trace."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.build._write import write_atomic
from exploy_dsl import Input, Program, RuntimeInputError, TraceFileError, UsageError
from exploy_dsl._checks import check_int
from exploy_dsl.authoring._domains import input_domain

# The key of the optional per-tick reset flags in a trace file (every other key is an input).
RESET_KEY = "reset"


@dataclass(frozen=True, slots=True, eq=False)
class InputStream:
    """What both sides of a parity check are fed: every input at every tick, and the resets.

    ``inputs[name]`` has shape ``[ticks, *file_shape]``; ``reset[t]`` means "reset before tick
    t" (memory back to its initial values, tick counter back to the first tick). Tick 0 always
    starts fresh, whatever ``reset[0]`` says.
    """

    inputs: Mapping[str, np.ndarray]
    reset: np.ndarray
    source: str

    def __post_init__(self) -> None:
        ticks = int(self.reset.shape[0])
        bad = {name: value.shape for name, value in self.inputs.items() if value.shape[0] != ticks}
        if self.reset.dtype != np.bool_ or self.reset.ndim != 1 or bad:
            raise RuntimeInputError(
                f"input stream {self.source}: every array needs the same leading tick axis as "
                f"the bool reset flags ({ticks} ticks); got {bad or self.reset.shape}."
            )

    @property
    def ticks(self) -> int:
        return int(self.reset.shape[0])

    @property
    def episodes(self) -> int:
        return 1 + int(np.count_nonzero(self.reset[1:]))

    def at(self, tick: int) -> dict[str, np.ndarray]:
        """The inputs of one tick, by wire name."""
        return {name: value[tick] for name, value in self.inputs.items()}

    def head(self, ticks: int) -> InputStream:
        """The first ``ticks`` ticks of the stream."""
        return InputStream(
            {name: value[:ticks] for name, value in self.inputs.items()},
            self.reset[:ticks],
            self.source,
        )


def check_seed(seed: object) -> int:
    """A seed of the random inputs: an int >= 0 (what NumPy's generators take), else an error."""
    return check_int(seed, "the seed", minimum=0, fix="e.g. seed=0", error=UsageError)


def random_stream(
    program: Program, ticks: int, seed: int = 0, *, mean_episode: int | None = None
) -> InputStream:
    """Seeded random inputs inside their declared ranges, with random episode lengths.

    Episode lengths are uniform in ``1 .. 2 * mean_episode`` (default ``max(4, ticks // 5)``),
    so resets land on policy and apply-only ticks alike. Values: ``ranges``/``range`` metadata
    where given (an se2 command's ``{"lin_vel_x": [lo, hi], ...}``, a float command's
    ``[lo, hi]``), unit quaternions for wires ending in ``w_Q_b``, fair coins for bool, small
    integers for int32, a standard normal otherwise.
    """
    ticks = check_int(ticks, "the number of ticks", error=UsageError)
    rng = np.random.default_rng(check_seed(seed))
    mean = mean_episode if mean_episode is not None else max(4, ticks // 5)
    reset = np.zeros(ticks, np.bool_)
    start = 0
    while True:
        start += int(rng.integers(1, 2 * max(1, mean) + 1))
        if start >= ticks:
            break
        reset[start] = True
    reset[0] = True
    inputs = {port.name: _random(port, ticks, rng) for port in program.inputs}
    return InputStream(inputs, reset, f"random (seed {seed})")


def _random(port: Input, ticks: int, rng: np.random.Generator) -> np.ndarray:
    shape = (ticks, *port.file_shape)
    domain = input_domain(port)
    if domain.kind == "bool":
        return rng.random(shape) < 0.5
    low, high = domain.low, domain.high
    if domain.kind == "int":
        if low is None or high is None:
            return rng.integers(-5, 6, shape).astype(np.int32)
        return np.floor(rng.uniform(low, np.asarray(high) + 1.0, shape)).astype(np.int32)
    if domain.kind == "quaternion":
        q = rng.normal(size=shape)
        return (q / np.linalg.norm(q, axis=-1, keepdims=True)).astype(np.float32)
    if low is None or high is None:
        return rng.normal(size=shape).astype(np.float32)
    return rng.uniform(low, high, shape).astype(np.float32)


def save_trace(stream: InputStream, path: str | os.PathLike[str]) -> Path:
    """Write ``stream`` as a trace: one array per input wire ``[ticks, ...]`` plus ``reset``."""
    if RESET_KEY in stream.inputs:
        raise TraceFileError(
            f"an input is named {RESET_KEY!r}, the key a trace keeps its reset flags under. "
            "Fix: rename that input."
        )
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {**stream.inputs, RESET_KEY: stream.reset}
    np.savez_compressed(buffer, **arrays)
    return write_atomic(buffer.getvalue(), path)


_INT32 = np.iinfo(np.int32)


def load_trace(path: str | os.PathLike[str], program: Program) -> InputStream:
    """Read a trace ``.npz`` for ``program``: one array per input wire, optional ``reset``.

    Each input array is ``[ticks, *file_shape]`` (e.g. ``[T, 1, 12]``); with batch 1 the batch
    axis may be left out (``[T, 12]``). ``reset`` is a bool ``[ticks]`` array, True where an
    episode starts; without it the trace is one episode.
    """
    file = Path(path)
    label = repr(str(file))
    if file.is_dir():
        raise RuntimeInputError(
            f"trace {label} is a folder; expected an .npz file. Fix: pass the file itself."
        )
    if not file.is_file():
        raise TraceFileError(f"trace {label} does not exist. Fix: check the path.")
    fix = (
        "Fix: record one with `exploy-dsl check ... --record-trace OUT.npz` or compiler.save_trace."
    )
    try:
        # Opened here, not by np.load: it leaves its handle open when the archive is broken.
        with open(file, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise TraceFileError(
                    f"trace {label} holds a single array (a .npy file), not an .npz archive of "
                    f"one array per input. {fix}"
                )
            with loaded as data:
                arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # An empty file is an EOFError; a truncated archive a BadZipFile or a ValueError.
        raise TraceFileError(f"trace {label} is not a readable .npz file ({exc}). {fix}") from None
    ports = {port.name: port for port in program.inputs}
    unknown = sorted(k for k in arrays if k not in ports and k != RESET_KEY)
    missing = [name for name in ports if name not in arrays]
    if missing or unknown:
        raise TraceFileError(
            f"trace {label} does not fit program {program.name!r}: missing input(s) "
            f"{missing}, unknown array(s) {unknown}. Expected one array per input "
            f"{list(ports)}, plus an optional {RESET_KEY!r}."
        )
    ticks = {name: np.shape(arrays[name])[0] if np.ndim(arrays[name]) else 0 for name in ports}
    lengths = set(ticks.values())
    if len(lengths) != 1 or 0 in lengths:
        raise TraceFileError(
            f"trace {label}: every input array needs the same leading tick axis (>= 1 tick); "
            f"got {ticks}."
        )
    (count,) = lengths
    inputs = {name: _trace_array(arrays[name], port, count, label) for name, port in ports.items()}
    reset = arrays.get(RESET_KEY)
    if reset is None:
        reset = np.zeros(count, np.bool_)
    elif reset.dtype != np.bool_ or reset.shape != (count,):
        raise TraceFileError(
            f"trace {label}: {RESET_KEY!r} is {reset.dtype}{list(reset.shape)}; expected "
            f"bool[{count}] (True where an episode starts)."
        )
    reset = reset.copy()
    reset[0] = True
    return InputStream(inputs, reset, f"trace {label}")


def _trace_array(value: np.ndarray, port: Input, ticks: int, label: str) -> np.ndarray:
    expected = (ticks, *port.file_shape)
    if value.shape != expected and (port.batch != 1 or value.shape != (ticks, *port.shape)):
        raise TraceFileError(
            f"trace {label}: input {port.name!r} has shape {list(value.shape)}; expected "
            f"{list(expected)} (ticks first, then the wire's shape {list(port.file_shape)})."
        )
    kind = value.dtype.kind
    fits = {"float32": "fiu", "int32": "iu", "bool": "b"}[port.dtype]
    if kind not in fits:
        raise TraceFileError(
            f"trace {label}: input {port.name!r} has dtype {value.dtype}; the wire is "
            f"{port.dtype}. Fix: save it as {port.dtype}."
        )
    if (
        port.dtype == "int32"
        and value.size
        and not _INT32.min <= value.min() <= value.max() <= _INT32.max
    ):
        raise TraceFileError(
            f"trace {label}: input {port.name!r} holds values outside int32 "
            f"({value.min()} .. {value.max()}); they would wrap around. Fix: save int32 values."
        )
    return value.reshape(expected).astype(port.np_dtype, copy=False)
