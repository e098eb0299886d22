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

import typing as _typing

from exploy_dsl._lazy import lazy_exports as _lazy_exports

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


__getattr__, __dir__ = _lazy_exports("exploy_dsl.testing", _LAZY, globals(), rename=False)


__all__ = [
    "FileRunner",
    "ProgramRunner",
    "TickResult",
    "assert_golden",
    "assert_parity",
    "neutral_inputs",
    "record_golden",
]
