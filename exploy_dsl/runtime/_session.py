"""One way to open an onnxruntime session: quiet, single-threaded, load errors as one line.

Memory initial values are initializers of graph inputs (DESIGN.md section 2: that is how a
controller gets them after a reset). onnxruntime warns about every such initializer at every
session creation ("will not be treated as constant value/weight"); for our files that is the
contract, not a problem, so sessions log errors only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from exploy_dsl._errors import OnnxRuntimeLoadError

_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
QUIET = 3  # onnxruntime severity: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def ort_message(exc: BaseException) -> str:
    """onnxruntime's message on one line, without its ``[ONNXRuntimeError] : 1 : FAIL :`` prefix."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _PREFIX.sub("", text)[:400]


Run = Callable[[Sequence[str], Mapping[str, np.ndarray], Any], list[np.ndarray]]


def open_session(data: bytes, *, threads: int = 1) -> ort.InferenceSession:
    """A CPU session on a serialized model; onnxruntime's own exceptions pass through."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = QUIET
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


RECOMPILE = (
    "recompile it with this exploy-dsl, whose compile refuses files onnxruntime cannot run "
    "(an op of a custom domain: export the actor with standard ONNX ops only)"
)


def load_session(
    data: bytes, label: str, *, threads: int = 1, fix: str = RECOMPILE
) -> ort.InferenceSession:
    """``open_session``, with a load failure as an OnnxRuntimeLoadError naming ``label``."""
    try:
        return open_session(data, threads=threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind exception types
        raise OnnxRuntimeLoadError(
            f"onnxruntime {ort.__version__} cannot load {label}: {ort_message(exc)}. Fix: {fix}."
        ) from None


def checked_feeds_run(session: ort.InferenceSession) -> Run:
    """``session.run`` for a caller that has checked its feeds itself: ``(names, feeds, None)``.

    ``InferenceSession.run`` is a Python wrapper: it checks that every input is fed (a scan of
    the inputs' metadata, ~1.5 us per call, a tenth of an apply-only step) and then calls the
    C++ session it holds as ``_sess``, with the same arguments in every onnxruntime release
    (1.15 to today). Runtime.step checks every input before it runs, so it calls that directly;
    an onnxruntime without it gets the public method, which takes the same arguments.
    """
    inner = getattr(getattr(session, "_sess", None), "run", None)
    return inner if callable(inner) else session.run  # type: ignore[no-any-return]
