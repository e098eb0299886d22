"""Export a torch module to ONNX on a private copy, refusing state and checking the result.

exploy_dsl never imports torch: these helpers take it from ``sys.modules`` (a torch module
exists, so torch is loaded). Every problem raises ``error`` (the caller's exception class)
with a message that names ``what`` (e.g. "model torch module Linear") and the fix.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx

from exploy_dsl._errors import ExployDslError
from exploy_dsl.authoring._torch_state import kept_state

# How many random inputs the exported graph is compared on against the module.
EXPORT_CHECK_SAMPLES = 4
EXPORT_ATOL = 1e-5
EXPORT_RTOL = 1e-4
_ONNX_FIX = (
    "export it to ONNX yourself (torch.onnx.export) and pass the .onnx file or onnx.ModelProto"
)


def export_checked(
    module: Any,
    examples: Sequence[np.ndarray],
    *,
    what: str,
    error: type[ExployDslError],
    opset: int = 20,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> onnx.ModelProto:
    """``module`` exported with the TorchScript exporter (``dynamo=False``) on inputs like
    ``examples``, after refusing a module that keeps state between calls.

    The user's module is never run nor changed: everything runs on deep copies in eval mode.
    The exported graph is compared with the module by :func:`export_mismatch`; call it on the
    graph as it will be used (after any conversion), so a conversion problem is caught too.
    ``dynamic_axes`` (``{"input_0": {0: "batch"}}``) leaves those input axes symbolic.
    """
    torch = sys.modules["torch"]
    private = private_copy(module, what=what, error=error).eval()
    reason = stateful_reason(private, examples)
    if reason is not None:
        raise error(
            f"{what} {reason}: a stage calls it once per tick, and an ONNX export would freeze "
            "that state as a constant. Fix: pass a stateless module (keep state in program "
            "memory and pass it as an input), or switch off dropout/noise (module.eval())."
        )
    tensors = tuple(torch.from_numpy(np.array(x)) for x in examples)
    outputs = _run(private, tensors, what=what, error=error)
    buffer = io.BytesIO()
    try:
        with _quiet():
            torch.onnx.export(
                private,
                tensors,
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=[f"input_{i}" for i in range(len(tensors))],
                output_names=[f"output_{i}" for i in range(len(outputs))],
                **({"dynamic_axes": dynamic_axes} if dynamic_axes else {}),
            )
    except Exception as exc:  # noqa: BLE001 - the exporter refused the user's module
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        raise error(
            f"{what} cannot be exported to ONNX by torch.onnx.export: {type(exc).__name__}: "
            f"{first.strip()[:300]}. Fix: {_ONNX_FIX}."
        ) from None
    return onnx.load_from_string(buffer.getvalue())


def private_copy(module: Any, *, what: str, error: type[ExployDslError]) -> Any:
    """A deep copy of ``module``, so that nothing exploy-dsl does changes the user's."""
    try:
        return copy.deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - the user's module refuses to be copied
        raise error(
            f"{what} cannot be copied ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "exploy-dsl exports a copy so that your module is never changed. Fix: make it "
            f"deep-copyable, or {_ONNX_FIX}."
        ) from None


def stateful_reason(module: Any, examples: Sequence[np.ndarray]) -> str | None:
    """Why ``module`` keeps state between calls (``kept_state``), or None when it keeps none."""
    kept = kept_state(module, examples)
    return None if kept is None else kept.reason


def export_mismatch(
    module: Any, model: onnx.ModelProto, examples: Sequence[np.ndarray]
) -> str | None:
    """Where ``model`` (in onnxruntime) and ``module`` (torch) differ on random inputs, or None.

    Inputs are fed by position; ``EXPORT_CHECK_SAMPLES`` seeded samples shaped and typed like
    ``examples``; they agree when ``|onnx - torch| <= EXPORT_ATOL + EXPORT_RTOL * |torch|``.
    """
    import onnxruntime

    torch = sys.modules["torch"]
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    probe = copy.deepcopy(module).eval()
    for sample, inputs in enumerate(random_inputs(examples, seed=1)):
        with torch.no_grad():
            expected = [
                t.detach().numpy() for t in _flat(probe(*(torch.from_numpy(x) for x in inputs)))
            ]
        got = session.run(None, dict(zip(names, inputs, strict=True)))
        if len(got) != len(expected):
            return f"the export has {len(got)} outputs, the module returns {len(expected)}"
        for index, (onnx_value, torch_value) in enumerate(zip(got, expected, strict=True)):
            if onnx_value.shape != torch_value.shape:
                return (
                    f"output {index} has shape {list(onnx_value.shape)} in the export and "
                    f"{list(torch_value.shape)} in torch"
                )
            ok = np.isclose(
                onnx_value, torch_value, atol=EXPORT_ATOL, rtol=EXPORT_RTOL, equal_nan=True
            )
            if not ok.all():
                at = np.unravel_index(int(np.argmin(ok)), ok.shape)
                return (
                    f"on random input {sample}, output {index}{list(map(int, at))} is "
                    f"{float(onnx_value[at]):.7g} in the export and {float(torch_value[at]):.7g} "
                    f"in torch (|diff| {abs(float(onnx_value[at]) - float(torch_value[at])):.3g})"
                )
    return None


def random_inputs(examples: Sequence[np.ndarray], *, seed: int) -> list[list[np.ndarray]]:
    """``EXPORT_CHECK_SAMPLES`` seeded input sets shaped and typed like ``examples``."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(EXPORT_CHECK_SAMPLES):
        inputs = []
        for x in examples:
            if x.dtype == np.bool_:
                inputs.append(rng.random(x.shape) < 0.5)
            elif x.dtype.kind in "iu":
                inputs.append(rng.integers(-3, 4, size=x.shape).astype(x.dtype))
            else:
                inputs.append(rng.standard_normal(x.shape).astype(x.dtype))
        samples.append(inputs)
    return samples


def _run(
    module: Any, tensors: tuple[Any, ...], *, what: str, error: type[ExployDslError]
) -> list[Any]:
    torch = sys.modules["torch"]
    shapes = ", ".join(f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)}" for t in tensors)
    try:
        with torch.no_grad():
            result = module(*tensors)
    except Exception as exc:  # noqa: BLE001 - the user's module failed on the Vars' shapes
        raise error(
            f"{what} fails on inputs {shapes} (the Vars it is called on): "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}. Fix: call it on Vars "
            "of the shapes and dtypes its forward() takes."
        ) from None
    flat = _flat(result)
    if not flat or not all(isinstance(t, torch.Tensor) for t in flat):
        raise error(
            f"{what} returns {type(result).__name__}; expected a tensor or a tuple of tensors. "
            "Fix: wrap it so forward() returns tensors only."
        )
    return flat


def _flat(result: Any) -> list[Any]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter warns and logs notes (deprecation, torchvision missing) not for the user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _no_fd_stdout():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _no_fd_stdout() -> Iterator[None]:
    """torch's C++ side prints the whole graph to file descriptor 1 when an export fails."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
