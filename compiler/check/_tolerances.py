"""Per-output tolerances of the parity check: a wire name or glob -> (atol, rtol)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

from compiler.check._compare import Tolerance
from exploy_dsl import UsageError
from exploy_dsl._checks import check_number, is_number

# What a caller writes per output: atol alone (rtol stays the default) or (atol, rtol).
ToleranceSpec = float | tuple[float, float]


def check_tolerance(name: str, value: object) -> float:
    """A tolerance as a float >= 0, or an error naming it."""
    return check_number(value, name, minimum=0, fix="e.g. 1e-5", error=UsageError)


def resolve(
    default: Tolerance, overrides: Mapping[str, ToleranceSpec] | None, names: Sequence[str]
) -> dict[str, Tolerance]:
    """Each output's tolerance: its exact wire name first, else the last glob that matches it.

    A pattern that matches no output is an error: a typo must not leave the default in place
    unnoticed.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise UsageError(
            f"tolerances must be a dict of output name or glob -> (atol, rtol), got "
            f"{type(overrides).__name__}. Fix: e.g. tolerances={{'output.*.effort': (1e-4, 1e-5)}}."
        )
    given = {
        str(pattern): _spec(str(pattern), spec, default)
        for pattern, spec in (overrides or {}).items()
    }
    unmatched = [p for p in given if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unmatched:
        raise UsageError(
            f"tolerance pattern(s) {', '.join(map(repr, unmatched))} match no output of the "
            f"check; the outputs are {', '.join(names)}. Fix: use a wire name or a glob "
            "such as 'output.joint_targets.*.effort'."
        )
    result: dict[str, Tolerance] = {}
    for name in names:
        chosen = given.get(name)
        if chosen is None:
            matching = [t for p, t in given.items() if fnmatch.fnmatchcase(name, p)]
            chosen = matching[-1] if matching else default
        result[name] = chosen
    return result


def parse_cli(texts: Iterable[str] | None) -> dict[str, ToleranceSpec]:
    """``--tolerance GLOB=ATOL[,RTOL]`` options, in order (a later one for a pattern wins)."""
    parsed: dict[str, ToleranceSpec] = {}
    for text in texts or ():
        pattern, sep, values = text.partition("=")
        parts = values.split(",")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if not sep or not pattern.strip() or len(numbers) not in (1, 2):
            raise UsageError(
                f"--tolerance {text!r} is not GLOB=ATOL[,RTOL]. Fix: e.g. --tolerance "
                "'output.joint_targets.*.effort=1e-4,1e-5'."
            )
        parsed[pattern.strip()] = numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    return parsed


def describe(default: Tolerance, overrides: Mapping[str, Tolerance]) -> str:
    """The tolerance line of the report: the default, then the outputs that differ from it."""
    text = f"|compiled - reference| <= {default.atol:g} + {default.rtol:g} * |reference|"
    special = [f"{n}: {t.atol:g} + {t.rtol:g}" for n, t in overrides.items() if t != default]
    return text + (f" ({'; '.join(special)})" if special else "")


def _spec(pattern: str, spec: object, default: Tolerance) -> Tolerance:
    if isinstance(spec, tuple) and len(spec) == 2:
        return Tolerance(
            check_tolerance(f"atol of {pattern!r}", spec[0]),
            check_tolerance(f"rtol of {pattern!r}", spec[1]),
        )
    if is_number(spec):
        return Tolerance(check_tolerance(f"atol of {pattern!r}", spec), default.rtol)
    raise UsageError(
        f"the tolerance of {pattern!r} must be atol or (atol, rtol), got {spec!r}. "
        "Fix: e.g. (1e-4, 1e-5)."
    )
