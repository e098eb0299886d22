"""The batch of a file: one env (the robot's), N envs, or a symbolic batch, for evaluation.

exploy's controller runs batch 1 with static shapes (DESIGN.md section 2); that stays the
default, and such a file carries no batch key. A batched file (``compile --batch N|dynamic``)
puts a batch dimension on every input, output and memory (at a memory's ``batch_axis``), keeps
``ctx.step_count`` one scalar shared by every env (they step in lockstep; a reset resets them
all), and records that in ``exploy_dsl.batch``. With a symbolic batch the dimension is named
``batch`` and each memory initializer holds one env's value: a runtime repeats it along the
batch axis for the number of envs it runs.
"""

from __future__ import annotations

from typing import Any, Literal

from exploy_dsl._checks import is_int
from exploy_dsl._errors import DeclarationError, ExployDslError, FileContractError
from exploy_dsl.contract._codec import decode_json

DYNAMIC: Literal["dynamic"] = "dynamic"
BATCH_DIM = "batch"  # the name of the symbolic dimension in a dynamic-batch file
BATCH_KEY = "exploy_dsl.batch"
Batch = int | Literal["dynamic"]
NOT_FOR_ROBOT = (
    "a batched file is for evaluation: exploy's controller runs one robot, batch 1, with "
    "static shapes"
)


def check_batch(
    value: object, what: str, *, error: type[ExployDslError] = DeclarationError
) -> Batch:
    """``value`` as a batch: an int >= 1 or ``"dynamic"``, else ``error`` naming ``what``."""
    if value == DYNAMIC:
        return DYNAMIC
    if is_int(value) and int(value) >= 1:  # type: ignore[call-overload]
        return int(value)  # type: ignore[call-overload]
    raise error(
        f"{what} must be an int >= 1 (envs evaluated in one call) or 'dynamic' (any number, "
        f"chosen when the file runs), got {value!r}. Fix: e.g. batch=4096; batch 1 (the "
        "default) is the robot's."
    )


def batch_record(batch: Batch) -> dict[str, Any]:
    """What ``exploy_dsl.batch`` holds for a batched file."""
    memory_init = (
        "every env's value"
        if batch != DYNAMIC
        else "one env's value (batch 1): a runtime repeats it for each env"
    )
    return {
        "size": batch,
        "dim": BATCH_DIM if batch == DYNAMIC else None,
        "lockstep": True,
        "step_count": "one scalar shared by every env: all envs step (and reset) together",
        "memory_init": memory_init,
        "robot": False,
    }


def recorded_batch(metadata: dict[str, str]) -> Batch:
    """The batch a file records (1 without the key), checked; a bad record is named."""
    if BATCH_KEY not in metadata:
        return 1
    record = decode_json(metadata[BATCH_KEY], f"metadata key {BATCH_KEY!r}")
    size = record.get("size") if isinstance(record, dict) else None
    return check_batch(size, f"metadata key {BATCH_KEY!r} size", error=FileContractError)


def describe_batch(batch: Batch) -> str:
    """One line for inspect and explain."""
    if batch == 1:
        return "1 (the robot's)"
    size = "dynamic (symbolic 'batch': any number of envs)" if batch == DYNAMIC else str(batch)
    return (
        f"{size}; the envs step in lockstep on one ctx.step_count; for evaluation, not for "
        "exploy's controller (batch 1)"
    )
