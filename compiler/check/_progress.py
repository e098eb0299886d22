"""A tiny progress bar on stderr for long checks (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

# Below this many ticks a run takes well under a second: no bar unless a person watches.
LONG_RUN_TICKS = 2000
_WIDTH = 30


class Progress:
    """``update(n)`` advances, ``close()`` ends the line. Silent unless ``enabled``.

    On a terminal the bar is redrawn in place (at most ten times a second); in a log it is a
    line per tenth of the way.
    """

    def __init__(
        self, total: int, label: str, *, enabled: bool, stream: TextIO | None = None
    ) -> None:
        self._total = max(total, 1)
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._tty = _isatty(self._stream)
        self._done = 0
        self._drawn = -1.0
        self._tenth = -1

    @classmethod
    def for_ticks(cls, total: int, label: str, stream: TextIO | None = None) -> Progress:
        """Enabled when stderr is a terminal or the run is long."""
        out = stream if stream is not None else sys.stderr
        return cls(total, label, enabled=_isatty(out) or total > LONG_RUN_TICKS, stream=out)

    def update(self, n: int = 1) -> None:
        self._done = min(self._done + n, self._total)
        if not self._enabled:
            return
        if self._tty:
            now = time.monotonic()
            if now - self._drawn >= 0.1 or self._done == self._total:
                self._drawn = now
                self._stream.write("\r" + self._line())
                self._stream.flush()
        else:
            tenth = self._done * 10 // self._total
            if tenth != self._tenth:
                self._tenth = tenth
                self._stream.write(self._line() + "\n")
                self._stream.flush()

    def close(self) -> None:
        if self._enabled and self._tty:
            self._stream.write("\r" + self._line() + "\n")
            self._stream.flush()

    def _line(self) -> str:
        filled = self._done * _WIDTH // self._total
        bar = "#" * filled + "." * (_WIDTH - filled)
        return f"{self._label} [{bar}] {self._done}/{self._total} ticks"


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
