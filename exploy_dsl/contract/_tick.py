"""One tick of the file (DESIGN.md section 3), described once and run by every engine.

The schedule says which stages a tick runs, in which order, at which rate, what each may
write and who wins when two write the same memory. Tracing reads it to know the stages and
their signatures; the stitcher (spox Vars), the reference interpreter (NumPy arrays) and
``explain`` all run or describe a tick through ``run_tick`` and ``SCHEDULE``, so the tick has
one definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from exploy_dsl.contract._wires import ACTIONS, OBS

Rate = Literal["policy", "tick"]
StageKind = Literal["observations", "actor", "process_actions", "apply_actions"]
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One stage of a tick: when it runs, its user signature, what it reads and may write."""

    kind: StageKind
    rate: Rate  # "policy": on policy steps only; "tick": on every tick
    signature: str  # how the user's function is called ("" for the actor)
    reads: str
    writes: tuple[str, ...]  # kinds of value it may write: "obs", "actions", "memory", "output"
    when: str  # a phrase for people (explain, errors)

    @property
    def user_written(self) -> bool:
        """A stage the program defines with a decorator (the actor comes from torch/ONNX)."""
        return self.kind != "actor"

    @property
    def decorator(self) -> str:
        return (
            "@program.process_actions(n_actions=N)"
            if self.kind == "process_actions"
            else f"@program.{self.kind}"
        )


SCHEDULE: tuple[StageSpec, ...] = (
    StageSpec(
        "observations",
        "policy",
        "(v)",
        "inputs, memory and the tick (ctx.step_count)",
        ("obs", "memory"),  # memory: only the history it generates (term(..., history=N))
        "once per policy step, before the actor",
    ),
    StageSpec(
        "actor",
        "policy",
        "",
        "obs (and the actor's state memory)",
        ("actions", "memory"),
        "once per policy step",
    ),
    StageSpec(
        "process_actions",
        "policy",
        "(v, actions)",
        "inputs, memory, the tick (ctx.step_count) and actions",
        ("memory",),
        "once per policy step, after the actor",
    ),
    StageSpec(
        "apply_actions",
        "tick",
        "(v)",
        "inputs, memory (as process_actions left it) and the tick (ctx.step_count)",
        ("output", "memory"),
        "at every tick, on both kinds of step",
    ),
)
USER_STAGES: tuple[StageSpec, ...] = tuple(s for s in SCHEDULE if s.user_written)
USER_STAGE_KINDS: tuple[str, ...] = tuple(s.kind for s in USER_STAGES)
# Memory a stage does not write passes through; when two stages write one memory in a tick,
# the later stage in SCHEDULE wins (apply_actions reads what process_actions wrote).
WRITE_RULE = "unwritten memory passes through; a later stage's write wins"


def spec(kind: str) -> StageSpec:
    return next(s for s in SCHEDULE if s.kind == kind)


def is_policy_step(step_count: int, decimation: int) -> bool:
    """The file's mode switch: ``ctx.step_count % decimation == 0`` is a policy step."""
    return step_count % decimation == 0


class TickEngine(Protocol[V]):
    """How one engine runs a stage on its values (spox Vars when stitching, arrays in NumPy)."""

    def run(self, kind: StageKind, env: Mapping[str, V]) -> Mapping[str, V]:
        """Run stage ``kind`` on ``env``; return what it writes, keyed like ``env``."""
        ...

    def zeros(self, name: str) -> V:
        """The value of ``actions``/``obs`` on an apply-only step."""
        ...


def run_tick(
    engine: TickEngine[V],
    env: Mapping[str, V],
    *,
    policy_step: bool,
    outputs: Sequence[str],
    memories: Sequence[tuple[str, str]],
) -> dict[str, V]:
    """One tick: the stages of SCHEDULE whose rate applies, in order, over ``env``.

    ``env`` holds every input, every memory (``memory.<name>``) and the tick
    (``ctx.step_count``, int32 ``[]``, read by stages as ``v.tick``/``v.time``). ``outputs``
    are the declared output wires, ``memories`` pairs ``(memory.<name>, memory.<name>.out)``.
    Returns ``actions``, ``obs``, the outputs and the memory outs, in the file's output order.
    """
    values = dict(env)
    if not policy_step:
        values[ACTIONS] = engine.zeros(ACTIONS)
        values[OBS] = engine.zeros(OBS)
    for stage in SCHEDULE:
        if stage.rate == "policy" and not policy_step:
            continue
        values.update(engine.run(stage.kind, values))
    result = {ACTIONS: values[ACTIONS], OBS: values[OBS]}
    result.update((name, values[name]) for name in outputs)
    result.update((out, values[key]) for key, out in memories)
    return result
