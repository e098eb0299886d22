"""How metadata values are written and read: JSON, except the strings the contract keeps raw."""

from __future__ import annotations

import json
from typing import Any


def to_json(value: Any) -> str:
    """Deterministic JSON: same program, same bytes; NaN and infinity are refused."""
    return json.dumps(value, sort_keys=False, separators=(", ", ": "), allow_nan=False)


def encode_env(value: Any) -> str:
    """A program metadata value: a string as it is (``env_name`` = ``Env``), else JSON.

    exploy's exporter writes environment metadata strings raw and everything else as JSON.
    """
    return value if isinstance(value, str) else to_json(value)


def decode(text: str) -> Any:
    """A metadata value read back: its JSON value, or the text itself when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def encode_as_read(value: Any) -> str:
    """The inverse of ``decode`` for showing a value: a string as it is, else JSON."""
    return value if isinstance(value, str) else json.dumps(value)
