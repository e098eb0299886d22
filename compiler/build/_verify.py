"""Before writing: the stitched file must load in onnxruntime and run a tick of each mode."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from exploy_dsl import TracedProgram, VerificationError
from exploy_dsl.runtime._session import open_session, ort_message

STEP_COUNT = "ctx.step_count"


def verify_in_onnxruntime(data: bytes, traced: TracedProgram, opset: int, ir_version: int) -> None:
    """Load ``data`` and run ticks 0 (policy step) and 1 (apply-only step, when decimation > 1).

    Inputs are zeros (False for bool), memory its initial values: what a controller feeds
    first. onnx.checker accepts ops onnxruntime lacks (a custom domain) and kernels it lacks
    at an opset; only running the file finds those, and a file that fails here must not be
    written.
    """
    program = traced.program
    where = f"(onnxruntime {ort.__version__}, opset {opset}, IR {ir_version})"
    fix = (
        "Fix: an actor op from a custom domain cannot run in onnxruntime: export the actor "
        "with standard ONNX ops only; for an opset or kernel onnxruntime lacks, compile with "
        "another --opset or --target"
    )
    try:
        session = open_session(data)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
        raise VerificationError(
            f"onnxruntime cannot load the compiled file of program {program.name!r} {where}: "
            f"{ort_message(exc)}. Nothing was written. {fix}."
        ) from None
    feeds: dict[str, np.ndarray] = {
        port.wire: np.zeros(port.file_shape, port.np_dtype) for port in program.inputs
    }
    feeds.update({mem.wire_in: mem.init for mem in program.memories})
    outputs = [o.name for o in session.get_outputs()]
    ticks = (0, 1) if program.decimation > 1 else (0,)
    for tick in ticks:
        mode = "policy step" if tick % program.decimation == 0 else "apply-only step"
        try:
            session.run(outputs, {**feeds, STEP_COUNT: np.array(tick, np.int32)})
        except Exception as exc:  # noqa: BLE001
            raise VerificationError(
                f"the compiled file of program {program.name!r} fails in onnxruntime {where} "
                f"at tick {tick} ({mode}, zero inputs, initial memory): {ort_message(exc)}. "
                f"Nothing was written. {fix}."
            ) from None


def serialized(model: onnx.ModelProto) -> bytes:
    """The bytes written to disk: deterministic, so the same program gives the same file."""
    return model.SerializeToString(deterministic=True)


def verify_rewrites(plain: bytes, data: bytes, traced: TracedProgram) -> None:
    """The rewritten file gives the bytes the stitched one gives, on every output (a NaN where
    the stitched file has a NaN).

    A net under the rewrites' own proofs (their tests): ticks 0 to ``decimation`` (a policy
    step, the apply-only steps, the next policy step) from the initial memory, memory fed back,
    seeded random inputs inside their declared ranges (zeros at a tick where the stitched file
    itself fails on them, e.g. an index input out of range). A difference is a bug of
    exploy-dsl: the file is refused, and compiling without rewrites is the way out.
    """
    from compiler.check._inputs import random_stream

    program = traced.program
    ticks = program.decimation + 1
    stream = random_stream(program, ticks, seed=0)
    before, after = open_session(plain), open_session(data)
    outputs = [o.name for o in after.get_outputs()]
    memory: dict[str, np.ndarray] = {mem.wire_in: mem.init for mem in program.memories}
    for tick in range(ticks):
        mode = "policy step" if tick % program.decimation == 0 else "apply-only step"
        fix = (
            "a bug in exploy-dsl. Nothing was written. Fix: compile with --no-rewrites "
            "(compile_program(..., rewrites=False)), and report it"
        )
        feeds = {wire: values[tick] for wire, values in stream.inputs.items()}
        try:
            expected = before.run(
                outputs, {**feeds, **memory, STEP_COUNT: np.array(tick, np.int32)}
            )
        except Exception:  # noqa: BLE001 - inputs the program cannot take: zeros, as verified
            feeds = {port.wire: np.zeros(port.file_shape, port.np_dtype) for port in program.inputs}
            expected = before.run(
                outputs, {**feeds, **memory, STEP_COUNT: np.array(tick, np.int32)}
            )
        try:
            found = after.run(outputs, {**feeds, **memory, STEP_COUNT: np.array(tick, np.int32)})
        except Exception as exc:  # noqa: BLE001
            raise VerificationError(
                f"the build's rewrites made program {program.name!r} fail at tick {tick} "
                f"({mode}) where the stitched file runs: {ort_message(exc)}; {fix}."
            ) from None
        for name, want, got in zip(outputs, expected, found, strict=True):
            if not _same_bits(want, got):
                raise VerificationError(
                    f"the build's rewrites changed output {name!r} of program {program.name!r} "
                    f"at tick {tick} ({mode}): {fix}."
                )
        values = dict(zip(outputs, found, strict=True))
        memory = {m.wire_in: values[m.wire_out] for m in program.memories}


def _same_bits(want: np.ndarray, got: np.ndarray) -> bool:
    """The same bytes, except that a NaN may be another NaN: which of two NaN operands an Add
    or a Mul returns is onnxruntime's choice, and depends on the length of the vector."""
    if want.dtype != got.dtype or want.shape != got.shape:
        return False
    if want.dtype.kind != "f":
        return bool(want.tobytes() == got.tobytes())
    nan = np.isnan(want)
    return bool(np.array_equal(nan, np.isnan(got)) and want[~nan].tobytes() == got[~nan].tobytes())
