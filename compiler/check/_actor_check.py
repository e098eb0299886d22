"""The actor alone: its exported ONNX graph in onnxruntime against the original torch module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from compiler.check._compare import SignalComparator, SignalErrors, Tolerance
from exploy_dsl import Actor
from exploy_dsl.reference._interpreter import reference_actor
from exploy_dsl.runtime._session import load_session

ActorStatus = Literal["ok", "fail", "skipped"]
DEFAULT_SAMPLES = 64
RESET_EVERY = 16  # a recurrent actor's state is reset this often in the actor-alone check


@dataclass(frozen=True, slots=True)
class ActorReport:
    """Whether the exported actor computes what the torch module computes.

    ``errors`` compares ``actions`` sample by sample (its ticks are samples); None if skipped.
    """

    status: ActorStatus
    reason: str
    samples: int = 0
    errors: SignalErrors | None = None

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def check_actor(
    actor: Actor,
    tolerance: Tolerance,
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> ActorReport:
    """Run ``actor.model`` (onnxruntime) and ``actor.module`` (torch) on random observations.

    Observations are standard normal, with every tenth sample scaled by 10 to reach the
    saturating parts of the network. Skipped, saying why, for an actor given as ONNX.
    """
    if actor.module is None:
        return ActorReport(
            "skipped",
            f"the actor is ONNX ({actor.source}): there is no torch module to compare its "
            "graph with; the reference runs that same graph in NumPy",
        )
    session = load_session(
        actor.model.SerializeToString(),
        f"the exported actor ({actor.source})",
        fix="export the actor with standard ONNX ops only",
    )
    module, signature = reference_actor(actor.module, actor.signature, prepared=True)
    rng = np.random.default_rng(seed)
    outputs = [p.name for p in signature.outputs]
    comparator = SignalComparator(
        {p.name: int(np.prod(p.shape)) for p in signature.outputs}, tolerance
    )
    state = signature.state
    carried: dict[str, dict[str, np.ndarray]] = {"onnx": {}, "torch": {}}
    for sample in range(samples):
        if sample % RESET_EVERY == 0:  # a reset: the state starts again from zeros
            for side in carried.values():
                side.update({i.name: np.zeros(i.shape, np.float32) for i, _ in state})
        scale = 10.0 if sample % 10 == 9 else 1.0
        fresh = {
            p.name: _random(rng, p.shape, p.dtype, scale)
            for p in signature.inputs
            if p.name not in carried["onnx"]
        }
        values = session.run(outputs, {**fresh, **carried["onnx"]})
        exported = dict(zip(outputs, (np.asarray(v) for v in values), strict=True))
        expected = module({**fresh, **carried["torch"]})
        comparator.add(expected, exported)
        for i, o in state:  # each side carries its own state, as a deployed loop would
            carried["onnx"][i.name] = exported[o.name].reshape(i.shape)
            carried["torch"][i.name] = expected[o.name].reshape(i.shape)
    found = comparator.finish()
    errors = next((e for e in found if not e.ok), found[0])
    status: ActorStatus = "ok" if all(e.ok for e in found) else "fail"
    what = (
        f"{samples} steps of random observations, state carried and reset every {RESET_EVERY}"
        if state
        else f"{samples} random observations"
    )
    reason = f"exported ONNX ({actor.source}) against the torch module on {what}"
    return ActorReport(status, reason, samples, errors)


def _random(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: str, scale: float
) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "int32":
        return rng.integers(-3, 4, size=shape).astype(np.int32)
    return rng.normal(size=shape).astype(np.float32) * scale
