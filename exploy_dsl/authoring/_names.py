"""Rules for port and group names, so every wire name in the file is legal and unique."""

from __future__ import annotations

import re

from exploy_dsl._errors import DeclarationError
from exploy_dsl.contract._wires import RESERVED_PREFIXES, RESERVED_WIRES

_SEGMENT = re.compile(r"[A-Za-z0-9_]+\Z")

# Top level metadata keys the compiler writes; a port or group metadata key may not shadow them.
RESERVED_METADATA_KEYS = (
    "exploy_version",
    "update_rate",
    "decimation",
    "sim_dt",
    "obs_term_names",
)
# Top level keys the user may set as program metadata but no port or group may be named.
ENV_METADATA_KEYS = ("base_names", "model_source")


def check_name(name: object, what: str) -> str:
    """Return ``name`` if it is dot-separated ``[A-Za-z0-9_]`` segments, else raise."""
    if not isinstance(name, str):
        raise DeclarationError(
            f"{what} name must be a str, got {type(name).__name__} {name!r}. "
            "Fix: pass a name such as 'obj.robot.joints.pos'."
        )
    segments = name.split(".")
    bad = [s for s in segments if not _SEGMENT.match(s)]
    if bad:
        raise DeclarationError(
            f"{what} name {name!r} is not valid: segment {bad[0]!r} must be non-empty and use "
            "only letters, digits and '_', segments joined by '.'. "
            f"Fix: rename it, e.g. {_suggest(name)!r}."
        )
    return name


def check_wire_name(name: str, what: str) -> str:
    """Reject names an input or output may not take because the contract uses them."""
    if name in RESERVED_WIRES:
        raise DeclarationError(
            f"{what} name {name!r} is reserved: the file's '{name}' output is written by the "
            "compiler. Fix: choose another name (memory named 'actions' is fine)."
        )
    first = name.split(".")[0]
    if first in RESERVED_PREFIXES:
        raise DeclarationError(
            f"{what} name {name!r} is reserved: names starting with '{first}.' belong to the "
            "compiler's wires (ctx.step_count, memory.<name>.in/out). "
            "Fix: choose another name; declare state kept between calls with program.memory()."
        )
    return name


def _suggest(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    return ".".join(s or "x" for s in cleaned.split("."))
