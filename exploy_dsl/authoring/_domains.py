"""What values an input may take: declared ranges, unit quaternions, bool and int32 in kind.

One reading of a port's declaration, used wherever inputs are made up: the parity checker's
random streams and the testing kit's hypothesis strategies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from exploy_dsl._checks import is_range
from exploy_dsl.authoring._ports import Input

DomainKind = Literal["bool", "int", "quaternion", "float"]


@dataclass(frozen=True, slots=True, eq=False)
class InputDomain:
    """The values one input takes; ``low``/``high`` per last-axis element, or None (unbounded)."""

    kind: DomainKind
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None


def input_domain(port: Input) -> InputDomain:
    """``ranges``/``range`` metadata where given (an se2 command's ``{"lin_vel_x": [lo, hi],
    ...}``, a float command's ``[lo, hi]``), unit quaternions for wires ending in ``w_Q_b``,
    bool and int32 in kind, anything else unbounded."""
    if port.dtype == "bool":
        return InputDomain("bool")
    low, high = _bounds(port.metadata or {}, port.shape[-1])
    if port.dtype == "int32":
        return InputDomain("int", low, high)
    if port.name.endswith("w_Q_b") and port.shape[-1] == 4:
        return InputDomain("quaternion")
    return InputDomain("float", low, high)


def _bounds(meta: Mapping[str, Any], last_dim: int) -> tuple[Any, Any]:
    """Per-element (low, high) from ``ranges`` (one pair per element) or ``range`` (one pair)."""
    ranges = meta.get("ranges")
    if isinstance(ranges, Mapping):
        ranges = list(ranges.values())
    pairs = None
    if isinstance(ranges, list) and len(ranges) == last_dim:
        pairs = ranges
    elif is_range(meta.get("range"), strict=False, finite=True):
        pairs = [meta["range"]] * last_dim
    if pairs is None or not all(is_range(p, strict=False, finite=True) for p in pairs):
        return None, None
    return np.array([p[0] for p in pairs], float), np.array([p[1] for p in pairs], float)
