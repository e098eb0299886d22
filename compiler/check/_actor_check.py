"""The actor alone: its exported ONNX graph in onnxruntime against the original torch module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnxruntime as ort

from compiler.check._compare import SignalComparator, SignalErrors, Tolerance
from exploy_dsl import Actor
from exploy_dsl.reference._interpreter import reference_actor

ActorStatus = Literal["ok", "fail", "skipped"]
DEFAULT_SAMPLES = 64


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
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        actor.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    module, signature = reference_actor(actor.module, actor.signature)
    rng = np.random.default_rng(seed)
    obs_in, actions_out = signature.obs, signature.actions
    comparator = SignalComparator({"actions": actor.n_actions}, tolerance)
    for sample in range(samples):
        scale = 10.0 if sample % 10 == 9 else 1.0
        feeds = {obs_in.name: rng.normal(size=obs_in.shape).astype(np.float32) * scale}
        (exported,) = session.run([actions_out.name], feeds)
        expected = module(feeds)[actions_out.name]
        comparator.add({"actions": expected}, {"actions": np.asarray(exported)})
    (errors,) = comparator.finish()
    status: ActorStatus = "ok" if errors.ok else "fail"
    reason = (
        f"exported ONNX ({actor.source}) against the torch module on {samples} random observations"
    )
    return ActorReport(status, reason, samples, errors)
