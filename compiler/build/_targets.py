"""Deployment targets: the opset and IR version each onnxruntime release loads and runs.

The table below was measured on the official PyPI wheel of each release (cp311, manylinux
x86_64, latest patch of the minor): probe models stamped with IR version 99 and opset 99 make
onnxruntime print its limits ("max supported IR version: N", "official support for domain
ai.onnx is till opset N"), and a model at exactly (max IR, max opset) was loaded and run.
Kernel gaps were measured the same way, one model per op at the target's opset
(tests/compat/ holds the CI check). docs/decisions.md ("Targets", "onnxruntime 1.15 gets
opset 18") records the choices taken from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exploy_dsl import CompileError


@dataclass(frozen=True, slots=True)
class Support:
    """What one onnxruntime minor release loads: the highest opset and IR version it accepts,
    and the (op, version) kernels it lacks at that opset."""

    max_opset: int
    max_ir: int
    opset: int  # the opset exploy-dsl writes for it
    missing_kernels: frozenset[tuple[str, int]] = frozenset()


# onnxruntime 1.15.1 accepts opset 19 but has no opset-19 kernel of these ops (measured, one
# model per op). Every file needs If and Equal (the two-mode switch), so files for 1.15 are
# written at opset 18: If-19/Equal-19/Identity-19 only added element types to If-16/Equal-13/
# Identity-16 (see WIDENING_ONLY in _opset.py), which 1.15 runs.
_ORT_1_15_MISSING = frozenset(
    (op, 19)
    for op in ("Identity", "If", "Equal", "Reshape", "Cast", "CastLike", "Size", "Pad", "Loop")
)

ONNXRUNTIME: dict[tuple[int, int], Support] = {
    (1, 15): Support(19, 9, 18, _ORT_1_15_MISSING),
    (1, 16): Support(19, 9, 19),
    (1, 17): Support(20, 9, 20),
    (1, 18): Support(21, 10, 21),
    (1, 19): Support(21, 10, 21),
    (1, 20): Support(21, 10, 21),
    (1, 21): Support(22, 10, 22),
    (1, 22): Support(22, 10, 22),
    (1, 23): Support(23, 11, 23),
    (1, 24): Support(25, 13, 25),
    (1, 25): Support(26, 13, 26),
    (1, 26): Support(26, 13, 26),
    (1, 27): Support(26, 13, 26),
    (1, 28): Support(26, 13, 26),
    (1, 29): Support(26, 13, 26),
    (1, 30): Support(26, 13, 26),
    (1, 31): Support(26, 13, 26),
}

_SPEC = re.compile(r"^onnxruntime\s*==\s*(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True, slots=True)
class Target:
    """``onnxruntime==X.Y``: the opset and IR version a file for it is written with."""

    spec: str
    version: tuple[int, int]
    support: Support

    @property
    def label(self) -> str:
        return f"onnxruntime {self.version[0]}.{self.version[1]}"


def parse_target(spec: str) -> Target:
    """``"onnxruntime==1.16"`` (a patch number is accepted and ignored) -> Target."""
    m = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    known = ", ".join(f"{a}.{b}" for a, b in ONNXRUNTIME)
    if m is None:
        raise CompileError(
            f"target {spec!r} is not understood; expected 'onnxruntime==X.Y' with X.Y one of "
            f"{known}. Fix: e.g. --target onnxruntime==1.16."
        )
    version = (int(m[1]), int(m[2]))
    support = ONNXRUNTIME.get(version)
    if support is None:
        raise CompileError(
            f"target {spec!r}: onnxruntime {version[0]}.{version[1]} is not in exploy-dsl's "
            f"measured table ({known}). Fix: choose one of those, or pass --opset/--ir "
            "without --target."
        )
    return Target(spec.strip(), version, support)


def resolve_versions(
    target: Target | None, opset: int | None, ir_version: int | None, defaults: tuple[int, int]
) -> tuple[int, int]:
    """The (opset, IR) to write: the target's, or explicit values the target can load."""
    if target is None:
        return (
            defaults[0] if opset is None else opset,
            defaults[1] if ir_version is None else ir_version,
        )
    support = target.support
    chosen_opset = support.opset if opset is None else opset
    chosen_ir = support.max_ir if ir_version is None else ir_version
    if chosen_opset > support.max_opset or chosen_ir > support.max_ir:
        raise CompileError(
            f"--target {target.spec} loads opset <= {support.max_opset} and IR version <= "
            f"{support.max_ir}, but opset {chosen_opset} / IR {chosen_ir} was asked for. "
            "Fix: drop --opset/--ir (the target picks them) or lower them."
        )
    return chosen_opset, chosen_ir


def oldest_onnxruntime(opset: int, ir_version: int) -> str | None:
    """The oldest onnxruntime minor release in the table that loads and runs such a file."""
    for (major, minor), support in ONNXRUNTIME.items():
        if opset <= support.max_opset and ir_version <= support.max_ir:
            if opset == support.max_opset and support.missing_kernels:
                continue  # If/Equal at that opset have no kernel there
            return f"{major}.{minor}"
    return None
