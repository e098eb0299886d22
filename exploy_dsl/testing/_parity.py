"""``assert_parity``: the parity check of ``exploy-dsl check`` as a pytest assertion."""

from __future__ import annotations

import os
from typing import Any

from exploy_dsl.authoring._program import Program
from exploy_dsl.authoring._trace import TracedProgram


def assert_parity(
    file: str | os.PathLike[str] | bytes | Any,
    program: Program | TracedProgram,
    actor: Any,
    *,
    steps: int = 300,
    seed: int = 0,
    **options: Any,
) -> None:
    """Raise ``AssertionError`` with ``check``'s report (first divergence by tick, wire and
    element) unless ``file`` does what ``program`` with ``actor`` says. ``options`` go to
    ``compiler.check_parity`` (``tolerances``, ``inputs``, ``first_ticks``, ...)."""
    from compiler import check_parity  # the testing kit may use the compiler, lazily

    report = check_parity(file, program, actor, steps=steps, seed=seed, **options)
    if not report.ok:
        raise AssertionError(report.render())
