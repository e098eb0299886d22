"""A testing kit for programs: step them in your own tests, assert parity, keep golden traces.

``ProgramRunner`` steps a program with the reference interpreter (``FileRunner`` a compiled
file in onnxruntime) and returns results read by name: outputs, memory, each observation term,
the actions. ``assert_parity`` raises the report ``exploy-dsl check`` prints;
``assert_golden`` compares a program with a recorded trace, naming tick, wire and element.
Hypothesis strategies for a program's inputs are in ``exploy_dsl.testing.strategies``; the
pytest plugin (fixtures ``exploy_compile``, ``exploy_runtime``; option
``--exploy-update-golden``) is registered when exploy-dsl is installed.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from exploy_dsl.testing._golden import assert_golden, record_golden
    from exploy_dsl.testing._parity import assert_parity
    from exploy_dsl.testing._runner import FileRunner, ProgramRunner, TickResult, neutral_inputs

# Loaded on first use, so that the pytest plugin (active wherever exploy-dsl is installed)
# costs nothing in a test session that never uses the kit.
_LAZY = {
    "assert_golden": "exploy_dsl.testing._golden",
    "record_golden": "exploy_dsl.testing._golden",
    "assert_parity": "exploy_dsl.testing._parity",
    "FileRunner": "exploy_dsl.testing._runner",
    "ProgramRunner": "exploy_dsl.testing._runner",
    "TickResult": "exploy_dsl.testing._runner",
    "neutral_inputs": "exploy_dsl.testing._runner",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'exploy_dsl.testing' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "FileRunner",
    "ProgramRunner",
    "TickResult",
    "assert_golden",
    "assert_parity",
    "neutral_inputs",
    "record_golden",
]
