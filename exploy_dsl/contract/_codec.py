"""How metadata values are written and read: JSON, except the strings the contract keeps raw."""

from __future__ import annotations

import json
from typing import Any

from exploy_dsl._errors import FileContractError


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


def same_value(a: Any, b: Any) -> bool:
    """Two decoded metadata values are the same JSON: same types all the way down.

    Python's ``==`` takes ``true`` for ``1`` and ``1`` for ``1.0``; a reader of the file
    (exploy's C++ JSON parser, a string compare) does not, so neither may a check.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def decode_json(text: str, what: str) -> Any:
    """A value that must be JSON (our own keys, exploy's JSON keys); FileContractError if not."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise FileContractError(
            f"{what} is not valid JSON: {text[:80]!r}. Fix: recompile the file."
        ) from None


def encode_as_read(value: Any) -> str:
    """The inverse of ``decode`` for showing a value: a string as it is, else JSON."""
    return value if isinstance(value, str) else json.dumps(value)
