"""The build's rewrites of the stitched file: fewer, fused nodes, the same values.

Each rewrite is a named step run in this order on the stitched model, before it is
relabelled, checked and verified; each keeps every float bit of every output (none reorders
or merges a rounding), which ``tests/compiler/test_rewrites.py`` proves against the file
compiled without them, and parity proves against the program. The steps that changed the
file are recorded in its ``exploy_dsl.build`` metadata and shown by ``explain``;
``compile_program(..., rewrites=False)`` (``exploy-dsl compile --no-rewrites``) skips them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import onnx

from compiler.build._rewrite_affine import affine_concat
from compiler.build._rewrite_graph import node_count, remove_dead, value_types
from compiler.build._rewrite_hoist import hoist_shared
from compiler.build._rewrite_vector import vectorize_concat
from compiler.build._rewrite_wire import wire_outputs

BUILD_KEY = "exploy_dsl.build"


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One named build step: ``run`` changes the model in place and returns how much it did."""

    name: str
    summary: str
    run: Callable[[onnx.ModelProto, dict[str, onnx.TypeProto]], int]


_WIRE = Rewrite(
    "wire_outputs",
    "Identity nodes dropped: each output comes from the node that computes it",
    lambda model, types: wire_outputs(model),
)
# wire_outputs runs first (the other steps then see the values themselves) and last.
REWRITES: tuple[Rewrite, ...] = (
    _WIRE,
    Rewrite(
        "hoist_shared",
        "work both branches of the If do (apply_actions) runs once, after the If",
        hoist_shared,
    ),
    Rewrite(
        "affine_concat",
        "the constant scales and offsets of concatenated terms (the observation) are one Mul "
        "and one Add after the Concat",
        affine_concat,
    ),
    Rewrite(
        "vectorize_concat",
        "like arithmetic ops whose results are concatenated run once on concatenated operands; "
        "slices of one tensor become one Gather",
        vectorize_concat,
    ),
    Rewrite(
        "drop_dead",
        "nodes whose values nothing reads are removed",
        lambda model, types: remove_dead(model),
    ),
    _WIRE,
)


def apply_rewrites(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Run every rewrite on ``model`` (in place); for each one that changed it, its name and
    the file's node count (Constants left out) before and after."""
    done: list[dict[str, Any]] = []
    for step in REWRITES:
        before = node_count(model)
        changed = step.run(model, value_types(model))
        if changed:
            done.append({"step": step.name, "nodes": [before, node_count(model)]})
    return done
