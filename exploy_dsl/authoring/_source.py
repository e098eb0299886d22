"""Find the user's line in a traceback, so stage errors point at the user's code."""

from __future__ import annotations

import importlib.util
import linecache
import os
import site
import sysconfig
from collections.abc import Iterable
from types import TracebackType

_EXPLOY_DSL = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The packages whose frames are never the user's code, wherever they are installed. torch and
# the others are located without being imported.
_LIBRARIES = ("spox", "onnx", "onnxscript", "onnx_ir", "onnxruntime", "numpy", "torch")


def _package_dir(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.abspath(next(iter(spec.submodule_search_locations)))


def _existing(paths: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({os.path.abspath(p) for p in paths if p}))


# compiler/ is installed beside exploy_dsl/ (one distribution); it is never imported from here.
_PACKAGE_DIRS = _existing(
    [_EXPLOY_DSL, os.path.join(os.path.dirname(_EXPLOY_DSL), "compiler")]
    + [_package_dir(name) for name in _LIBRARIES]
)
_STDLIB_DIRS = _existing(sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib"))
# A system Python keeps site-packages under its stdlib folder: what is installed there (a
# user's pip-installed program too) is not the standard library.
_SITE_DIRS = _existing(
    [
        *site.getsitepackages(),
        site.getusersitepackages(),
        *(sysconfig.get_paths().get(key) for key in ("purelib", "platlib")),
    ]
)


def _under(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


def _is_library(filename: str) -> bool:
    """A frame of exploy-dsl, of a package it builds on, or of the standard library."""
    # <string>: code Python generates, e.g. a dataclass's __init__ (a Term checking its clip).
    if filename.startswith("<frozen") or filename == "<string>":
        return True
    path = os.path.abspath(filename)
    if _under(path, _PACKAGE_DIRS):
        return True
    return _under(path, _STDLIB_DIRS) and not _under(path, _SITE_DIRS)


is_library = _is_library  # the library's steps find the user's line with it (library/_records)


def _column(tb: TracebackType) -> int | None:
    """1-based column of the instruction that failed, where Python records it (3.11+)."""
    positions = getattr(tb.tb_frame.f_code, "co_positions", None)
    if positions is None or tb.tb_lasti < 0:
        return None
    try:
        _, _, offset, _ = list(positions())[tb.tb_lasti // 2]
    except IndexError:
        return None
    if offset is None:
        return None
    # co_positions counts UTF-8 bytes; editors count characters.
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    return len(line.encode("utf-8")[:offset].decode("utf-8", errors="replace")) + 1


def user_frame(tb: TracebackType | None) -> tuple[str, int, int | None, str] | None:
    """The deepest frame outside exploy-dsl and its libraries: (file, line, column, source)."""
    found: tuple[str, int, int | None, str] | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not _is_library(filename):
            source = linecache.getline(filename, tb.tb_lineno).strip()
            found = (filename, tb.tb_lineno, _column(tb), source)
        tb = tb.tb_next
    return found


def describe(tb: TracebackType | None, fallback: str) -> str:
    """``file:line:column (`source`)`` of the user's frame, or ``fallback`` when there is none."""
    frame = user_frame(tb)
    if frame is None:
        return fallback
    filename, lineno, column, source = frame
    shown = (
        os.path.relpath(filename) if not os.path.relpath(filename).startswith("..") else filename
    )
    where = f"{shown}:{lineno}" if column is None else f"{shown}:{lineno}:{column}"
    return f"{where} (`{source}`)" if source else where
