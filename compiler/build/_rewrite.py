"""The build's rewrites of the stitched file: fewer, fused nodes, the same values.

Each rewrite is a named step run in this order on the stitched model, before it is
relabelled, checked and verified; each keeps every float bit of every output (none reorders
or merges a rounding), which ``tests/compiler/test_rewrites.py`` proves against the file
compiled without them, and parity proves against the program. The steps that changed the
file are recorded in its ``exploy_dsl.build`` metadata and shown by ``explain``;
``compile_program(..., rewrites=False)`` (``exploy-dsl compile --no-rewrites``) skips them all.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

BUILD_KEY = "exploy_dsl.build"


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One named build step: ``function`` of ``compiler/build/<module>.py`` changes the model in
    place and returns how much it did (imported when it runs: ``explain`` reads the table)."""

    name: str
    summary: str
    module: str
    function: str
    min_opset: int = 0  # the file's opset must be at least this (the ops the step writes)

    def run(self, model: onnx.ModelProto, types: dict[str, onnx.TypeProto]) -> int:
        step = getattr(importlib.import_module(f"compiler.build.{self.module}"), self.function)
        return int(step(model, types))


_WIRE = Rewrite(
    "wire_outputs",
    "Identity nodes dropped: each output comes from the node that computes it",
    "_rewrite_wire",
    "wire_outputs",
)
# wire_outputs runs first (the other steps then see the values themselves) and last before
# lift_weights, which only moves constants.
REWRITES: tuple[Rewrite, ...] = (
    _WIRE,
    Rewrite(
        "hoist_shared",
        "work both branches of the If do (apply_actions) runs once, after the If",
        "_rewrite_hoist",
        "hoist_shared",
    ),
    Rewrite(
        "affine_concat",
        "the constant scales and offsets of concatenated terms (the observation) are one Mul "
        "and one Add after the Concat",
        "_rewrite_affine",
        "affine_concat",
    ),
    Rewrite(
        "vectorize_concat",
        "like arithmetic ops whose results are concatenated run once on concatenated operands; "
        "slices of one tensor become one Gather",
        "_rewrite_vector",
        "vectorize_concat",
    ),
    Rewrite(
        "split_gathers",
        "Gathers of one tensor along one axis (projected gravity's quaternion components) "
        "are one Gather and one Split",
        "_rewrite_gather",
        "split_gathers",
        min_opset=13,
    ),
    Rewrite(
        "drop_dead",
        "nodes whose values nothing reads are removed",
        "_rewrite_graph",
        "drop_dead",
    ),
    _WIRE,
    Rewrite(
        "lift_weights",
        "the actor's weights are initializers of the branch that reads them, not Constant "
        "nodes: onnxruntime creates the session faster",
        "_rewrite_lift",
        "lift_weights",
    ),
)


def apply_rewrites(model: onnx.ModelProto, opset: int) -> list[dict[str, Any]]:
    """Run every rewrite on ``model`` (in place) that the file's ``opset`` allows; for each
    one that changed it, its name and the file's node count (Constants left out) before and
    after."""
    from compiler.build._rewrite_graph import node_count, value_types

    done: list[dict[str, Any]] = []
    for step in REWRITES:
        if opset < step.min_opset:
            continue
        before = node_count(model)
        changed = step.run(model, value_types(model))
        if changed:
            done.append({"step": step.name, "nodes": [before, node_count(model)]})
    return done
