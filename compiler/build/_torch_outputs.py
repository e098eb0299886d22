"""A torch actor whose forward returns more than the actions: the program picks one output.

SB3's documented export (``OnnxablePolicy``) returns the action head and the value head;
``program.actor(actions=0)`` says which is the action vector. The module is exported through
a wrapper that returns that output alone, so the file never computes the others' last ops.
"""

from __future__ import annotations

from typing import Any

import torch


class OneOutput(torch.nn.Module):  # type: ignore[misc]
    """``inner``'s forward, returning only its output at ``position``."""

    def __init__(self, inner: torch.nn.Module, position: int) -> None:
        super().__init__()
        self.inner = inner
        self.position = position

    def forward(self, *args: Any) -> Any:
        return self.inner(*args)[self.position]
