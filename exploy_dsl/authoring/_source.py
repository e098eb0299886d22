"""Find the user's line in a traceback, so stage errors point at the user's code."""

from __future__ import annotations

import linecache
import os
import traceback
from types import TracebackType

import numpy
import onnx
import spox

_LIBRARY_DIRS = (
    *(os.path.dirname(os.path.abspath(mod.__file__ or "")) for mod in (spox, onnx, numpy)),
    os.path.dirname(os.path.abspath(__file__)),
    os.path.dirname(os.__file__),
)


def _is_library(filename: str) -> bool:
    path = os.path.abspath(filename)
    return (
        path.startswith(_LIBRARY_DIRS) or "site-packages" in path or filename.startswith("<frozen")
    )


def user_frame(tb: TracebackType | None) -> tuple[str, int, str] | None:
    """The deepest traceback frame outside spox/onnx/numpy/exploy_dsl: (file, line, source)."""
    found: tuple[str, int, str] | None = None
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if not _is_library(filename):
            found = (filename, lineno, linecache.getline(filename, lineno).strip())
    return found


def describe(tb: TracebackType | None, fallback: str) -> str:
    """``file:line (`source`)`` of the user's frame, or ``fallback`` when there is none."""
    frame = user_frame(tb)
    if frame is None:
        return fallback
    filename, lineno, source = frame
    shown = (
        os.path.relpath(filename) if not os.path.relpath(filename).startswith("..") else filename
    )
    return f"{shown}:{lineno} (`{source}`)" if source else f"{shown}:{lineno}"
