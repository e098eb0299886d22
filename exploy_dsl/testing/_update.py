"""Whether golden traces are being re-recorded (a module light enough for the pytest plugin)."""

from __future__ import annotations

import os

UPDATE_ENV = "EXPLOY_DSL_UPDATE_GOLDEN"
_requested = False  # set by the pytest plugin's --exploy-update-golden


def request_update(flag: bool = True) -> None:
    global _requested
    _requested = flag


def updating() -> bool:
    return _requested or os.environ.get(UPDATE_ENV, "") not in ("", "0")
