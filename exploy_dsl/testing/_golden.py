"""Golden traces: a program's outputs for an input stream, recorded once and compared later.

A golden file is a ``check --trace`` file (one array per input wire ``[ticks, ...]`` and
``reset``) plus the outputs, under ``golden:<wire>``. ``assert_golden`` re-runs the program on
the recorded inputs and names the first tick, wire and element that differ. Update a golden
file on purpose with ``pytest --exploy-update-golden`` or ``EXPLOY_DSL_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from exploy_dsl.authoring._program import Program
from exploy_dsl.authoring._trace import TracedProgram, trace
from exploy_dsl.testing._runner import ProgramRunner
from exploy_dsl.testing._update import UPDATE_ENV, updating

PREFIX = "golden:"


def record_golden(
    path: str | os.PathLike[str],
    program: Program | TracedProgram,
    actor: Any = None,
    *,
    ticks: int = 200,
    seed: int = 0,
) -> Path:
    """Record ``program``'s outputs over ``ticks`` seeded random ticks with resets."""
    from compiler import random_stream
    from compiler.build._write import write_atomic

    traced = program if isinstance(program, TracedProgram) else trace(program)
    stream = random_stream(traced.program, ticks, seed)
    runner = ProgramRunner(traced, actor)
    outputs: dict[str, list[np.ndarray]] = {}
    for tick in range(stream.ticks):
        if stream.reset[tick]:
            runner.reset()
        for name, value in runner.step(stream.at(tick)).raw.items():
            outputs.setdefault(name, []).append(np.array(value))
    arrays: dict[str, Any] = dict(stream.inputs)
    arrays["reset"] = stream.reset
    arrays.update({PREFIX + name: np.stack(values) for name, values in outputs.items()})
    target = Path(path)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(buffer.getvalue(), target)
    return target


def assert_golden(
    path: str | os.PathLike[str],
    program: Program | TracedProgram,
    actor: Any = None,
    *,
    ticks: int = 200,
    seed: int = 0,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    update: bool | None = None,
) -> None:
    """Compare ``program`` with the golden trace at ``path``; record it when updating.

    Raises ``AssertionError`` naming the first tick, wire and element that differ, or saying
    how to create a golden file that does not exist yet.
    """
    from compiler.check._element_names import ElementNames

    target = Path(path)
    traced = program if isinstance(program, TracedProgram) else trace(program)
    if update if update is not None else updating():
        record_golden(target, traced, actor, ticks=ticks, seed=seed)
        return
    if not target.is_file():
        raise AssertionError(
            f"golden trace {str(target)!r} does not exist. Create it on purpose with "
            f"pytest --exploy-update-golden (or {UPDATE_ENV}=1)."
        )
    with np.load(target) as stored:
        golden = {k[len(PREFIX) :]: stored[k] for k in stored.files if k.startswith(PREFIX)}
        names = [p.name for p in traced.program.inputs]
        lacking = [n for n in names if n not in stored.files]
        if lacking or "reset" not in stored.files:
            raise AssertionError(
                f"golden trace {str(target)!r} has no recorded input(s) "
                f"{', '.join(lacking or ['reset'])}: the program's inputs changed. {_update_hint()}"
            )
        inputs = {n: stored[n] for n in names}
        resets = stored["reset"]
    runner = ProgramRunner(traced, actor)
    elements = ElementNames(traced, {})
    episode = 0
    for tick in range(int(resets.shape[0])):
        if resets[tick] or tick == 0:
            runner.reset()
            episode += 1
        result = runner.step({n: v[tick] for n, v in inputs.items()})
        missing = sorted(set(golden) ^ set(result.raw))
        if missing:
            raise AssertionError(
                f"golden trace {str(target)!r}: the program's outputs changed: "
                f"{', '.join(missing)} in one but not the other. {_update_hint()}"
            )
        for name, value in result.raw.items():
            expected = golden[name][tick]
            bad = ~np.isclose(value, expected, atol=atol, rtol=rtol, equal_nan=False)
            if value.shape != expected.shape or bad.any():
                flat = int(np.flatnonzero(bad)[0]) if value.shape == expected.shape else 0
                mode = "policy step" if result.policy_step else "apply-only step"
                got = value.reshape(-1)[flat] if value.size else None
                raise AssertionError(
                    f"golden trace {str(target)!r} differs at tick {tick} (episode {episode}, "
                    f"ctx.step_count {result.tick}, {mode}): {elements.label(name, flat)}: golden "
                    f"{expected.reshape(-1)[flat]:.7g}, now {got:.7g}. {_update_hint()}"
                )


def _update_hint() -> str:
    return (
        "If the program changed on purpose, update the golden file with "
        f"pytest --exploy-update-golden (or {UPDATE_ENV}=1)."
    )
