"""Record the self-test a compiled file carries: a few ticks of inputs and of its own outputs."""

from __future__ import annotations

import numpy as np

from compiler.check._inputs import InputStream
from exploy_dsl import CompileError, Runtime, TracedProgram
from exploy_dsl.contract._self_test import SelfTestRecord, encode_self_test
from exploy_dsl.contract._wires import in_to_out

# Enough ticks for several policy and apply-only steps; few enough to stay small in the file.
DEFAULT_TICKS = 24
MAX_TICKS = 200
# Another onnxruntime build or CPU may round differently (about 1e-6 on the actions, amplified
# by gains downstream); a wrong build or a lossy execution provider differs by far more.
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4


def record_self_test(
    data: bytes,
    stream: InputStream,
    traced: TracedProgram,
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> str:
    """Run the compiled file (``data``) over ``stream`` in onnxruntime; the metadata value.

    Memory is fed back and reset as the stream says, from the first tick 0. A file that
    computes NaN or infinity from finite inputs is refused (CompileError): a self-test must
    be something a healthy install reproduces.
    """
    name = traced.program.name
    if stream.ticks > MAX_TICKS:
        raise CompileError(
            f"the self-test stream for program {name!r} has {stream.ticks} ticks; a self-test "
            f"is kept small (at most {MAX_TICKS}, default {DEFAULT_TICKS}). Fix: use fewer "
            "ticks (--self-test-ticks)."
        )
    runtime = Runtime(data)
    contract = runtime.contract
    outputs: dict[str, list[np.ndarray]] = {
        w.name: [] for w in (contract.actions, contract.obs, *contract.outputs)
    }
    outputs.update({in_to_out(w.name): [] for w in contract.memory})
    for t in range(stream.ticks):
        if stream.reset[t]:
            runtime.reset()
        inputs = stream.at(t)
        values = runtime.step(inputs)
        for wire, kept in outputs.items():
            value = values[wire]
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                finite_in = all(
                    np.isfinite(v).all() for v in inputs.values() if v.dtype.kind == "f"
                )
                if finite_in:
                    raise CompileError(
                        f"the self-test of program {name!r} computes NaN or infinity in "
                        f"{wire!r} at tick {t} from finite inputs ({stream.source}); a robot "
                        "would be commanded that. Fix: check the actor and the stages (e.g. "
                        "with exploy-dsl check), or record the self-test from other inputs."
                    )
            kept.append(value)
    record = SelfTestRecord(
        source=stream.source,
        first_tick=0,
        reset=stream.reset.copy(),
        inputs={k: np.asarray(v) for k, v in stream.inputs.items()},
        outputs={k: np.stack(v) for k, v in outputs.items()},
        atol=atol,
        rtol=rtol,
    )
    return encode_self_test(record)
