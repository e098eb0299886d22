"""The metadata_props of the file, with the exact encodings of DESIGN.md section 2."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import exploy_dsl
from compiler.build._reproducible import STAMP_KEY, stage_hashes, tool_versions, weights_sha256
from compiler.build._rewrite import BUILD_KEY
from compiler.build._stage_summary import stage_summaries
from exploy_dsl import Actor, ActorPort, Memory, ObsTerm, TracedProgram
from exploy_dsl.contract._batch import BATCH_DIM, BATCH_KEY, Batch, batch_record
from exploy_dsl.contract._codec import to_json
from exploy_dsl.contract._wires import memory_name
from exploy_dsl.library._history import RESET_RULE

# The exploy file-contract version the files claim (exploy's controller reads it as JSON).
EXPLOY_VERSION = "0.1.0"


def metadata(
    traced: TracedProgram,
    actor: Actor,
    model_source: dict[str, Any] | None = None,
    *,
    stamp: str | None = None,
    target: str | None = None,
    rewrites: list[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Every metadata key of the file, in a fixed order.

    Nothing here depends on the clock, the machine or the process: ``stamp`` (the export
    date, ``--stamp``) is the only opt-in exception.
    """
    program = traced.program
    props: dict[str, str] = {
        "exploy_version": to_json(EXPLOY_VERSION),
        "update_rate": repr(program.update_rate),
        "decimation": str(program.decimation),
        "sim_dt": repr(program.sim_dt),
        "obs_term_names": to_json([t.name for t in traced.obs_terms]),
    }
    for key, value in program.metadata.items():
        # exploy's exporter writes environment metadata strings as they are (env_name = Env)
        # and everything else as JSON (base_names = {"robot": "base"}).
        props[key] = value if isinstance(value, str) else to_json(value)
    if model_source is not None:
        props["model_source"] = to_json(model_source)
    if stamp is not None:
        props[STAMP_KEY] = stamp
    for group in program.groups:
        if group.metadata is not None:
            props[group.name] = to_json(group.metadata)
    for port in (*program.inputs, *program.outputs):
        if port.metadata is not None:
            props[port.name] = to_json(port.metadata)
    for mem in program.memories:
        if mem.metadata is not None:
            props[mem.metadata_key] = to_json(mem.metadata)
    props.update(_own_keys(traced, actor))
    props.update(_provenance(traced, actor, target))
    if rewrites is not None:
        props[BUILD_KEY] = to_json({"rewrites": rewrites})
    return props


def _provenance(traced: TracedProgram, actor: Actor, target: str | None) -> dict[str, str]:
    """Content hashes, tool versions and a readable record of the stages (for explain/diff)."""
    props = {
        "exploy_dsl.hashes": to_json(
            {
                "algorithm": "sha256",
                "stages": stage_hashes(traced),
                "actor_weights": weights_sha256(actor.model),
            }
        ),
        "exploy_dsl.tools": to_json(tool_versions(actor)),
        "exploy_dsl.stages": to_json(stage_summaries(traced)),
    }
    if target is not None:
        props["exploy_dsl.target"] = to_json(target)
    return props


def _shortest(values: np.ndarray) -> Any:
    """Array as nested lists; float32 values in their shortest repr (0.1, not 0.100000001)."""
    if values.dtype.kind == "f":
        # np.vectorize hands over Python floats (0.10000000149011612): round-trip the dtype's own.
        kind = values.dtype.type
        return np.vectorize(lambda x: float(str(kind(x))), otypes=[object])(values).tolist()
    return values.tolist()


def _own_keys(traced: TracedProgram, actor: Actor) -> dict[str, str]:
    program = traced.program
    batch = (
        {} if program.batch_spec == 1 else {BATCH_KEY: to_json(batch_record(program.batch_spec))}
    )
    return {
        "exploy_dsl.version": to_json(exploy_dsl.__version__),
        "exploy_dsl.program": to_json(
            {"name": program.name, "n_obs": traced.n_obs, "n_actions": traced.n_actions}
        ),
        **batch,
        "exploy_dsl.memory": to_json(
            [
                {
                    "name": m.name,
                    "shape": list(m.wire_shape),
                    "dtype": m.dtype,
                    "init": _shortest(_recorded_init(m, program.batch_spec)),
                }
                for m in program.memories
            ]
        ),
        "exploy_dsl.observation": to_json(
            {
                "size": traced.n_obs,
                "clip": list(traced.obs_clip) if traced.obs_clip else None,
                "terms": [_term_record(t, traced) for t in traced.obs_terms],
                **_observation_extras(traced),
            }
        ),
        "exploy_dsl.actor": to_json(actor_record(actor, dynamic=program.dynamic_batch)),
        **_library_keys(traced),
    }


def _recorded_init(memory: Memory, batch: Batch) -> np.ndarray:
    """A memory's initial value as ``exploy_dsl.memory`` records it: in a batched file one
    env's (batch 1) when every env starts from it, so the key does not grow with the batch."""
    if batch == 1:
        return memory.init
    first = np.take(memory.init, [0], axis=memory.batch_axis)
    return (
        first
        if np.array_equal(np.broadcast_to(first, memory.init.shape), memory.init)
        else memory.init
    )


def _term_record(t: ObsTerm, traced: TracedProgram) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": t.name,
        "start": t.start,
        "size": t.size,
        "scale": list(t.scale) if t.scale else None,
        "clip": list(t.clip) if t.clip else None,
    }
    if t.history is not None:
        # Where each frame of the term sits in obs, oldest first: frames[-1] is this step's.
        entry["history"] = {
            **t.history.record(),
            "frame_size": t.frame_size,
            "frames": [list(f) for f in t.frames],
        }
    if t.scale and traced.obs_fold is not None and "scales" in traced.obs_fold.parts:
        entry["scale_folded"] = True
    return entry


def _observation_extras(traced: TracedProgram) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if traced.obs_history is not None:
        extras["history"] = {**traced.obs_history.record(), "reset": RESET_RULE}
    elif any(t.history is not None for t in traced.obs_terms):
        extras["history"] = {"reset": RESET_RULE}
    if traced.normalizer is not None:
        extras["normalized"] = True
    if traced.obs_fold is not None:
        extras["folded_into_actor"] = list(traced.obs_fold.parts)
    return extras


def _library_keys(traced: TracedProgram) -> dict[str, str]:
    """The normalizer's statistics and the phase clocks, when the program uses them."""
    props: dict[str, str] = {}
    if traced.normalizer is not None:
        folded = traced.obs_fold is not None and "normalizer" in traced.obs_fold.parts
        props["exploy_dsl.normalizer"] = to_json(traced.normalizer.record(folded=folded))
    if traced.clocks:
        program = traced.program
        props["exploy_dsl.clocks"] = to_json(
            [{**clock, "sim_dt": program.sim_dt} for clock in traced.clocks]
        )
    return props


def actor_record(actor: Actor, *, dynamic: bool = False) -> dict[str, Any]:
    """The actor as the file records it: where it came from and how the program calls it
    (``dynamic``: at a dynamic batch, whose shapes name the batch dimension ``batch``)."""

    def port(p: ActorPort) -> dict[str, Any]:
        shape: list[int | str] = list(p.shape)
        if dynamic:
            shape[p.batch_axis] = BATCH_DIM
        entry: dict[str, Any] = {"name": p.name, "shape": shape, "dtype": p.dtype}
        entry["binds"] = p.binds
        return entry

    signature = actor.signature
    record: dict[str, Any] = {
        "source": _portable(actor.source),
        "exporter": actor.exporter,
        "inputs": [port(p) for p in signature.inputs],
        "outputs": [port(p) for p in signature.outputs],
        "state": [memory_name(i.binds) for i, _ in signature.state],
    }
    if signature.dropped:
        record["dropped_outputs"] = list(signature.dropped)
    if actor.lifted:
        record["lifted_state"] = {
            m.name: (m.metadata or {}).get("lifted_from", m.name) for m in actor.lifted
        }
    return record


def _portable(source: str) -> str:
    """An actor file is recorded by its base name: a folder would differ between machines."""
    if len(source) > 1 and source[0] == source[-1] and source[0] in "'\"":
        return repr(os.path.basename(source[1:-1]))
    return source
