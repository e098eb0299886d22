"""The form of every JSON metadata key our tools read back, checked before a tool trusts it.

A file whose metadata is valid JSON of the wrong shape (``exploy_dsl.observation`` = ``[]``, a
term without a name, joint names that are a number) is refused with a FileContractError
naming the key and the part that is wrong, never with a KeyError from deep inside a tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from exploy_dsl._errors import FileContractError
from exploy_dsl.contract._batch import BATCH_DIM, BATCH_KEY, DYNAMIC
from exploy_dsl.contract._wires import JOINT_GROUP, JOINT_POS_COMMAND, JOINT_TARGET_GROUP

# A schema is a function (value, path) -> None | (path, expected): the first mismatch.
Mismatch = tuple[str, str] | None
Schema = Callable[[Any, str], Mismatch]


def _kind(check: Callable[[Any], bool], expected: str) -> Schema:
    def schema(value: Any, path: str) -> Mismatch:
        return None if check(value) else (path, expected)

    return schema


STR = _kind(lambda v: isinstance(v, str), "a string")
INT = _kind(lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
COUNT = _kind(lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0")
NUMBER = _kind(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
ANY: Schema = lambda value, path: None  # noqa: E731 - the values of a memory's init


def optional(schema: Schema) -> Schema:
    return lambda value, path: None if value is None else schema(value, path)


def list_of(item: Schema, *, length: int | None = None) -> Schema:
    expected = f"a list of {length}" if length is not None else "a list"

    def schema(value: Any, path: str) -> Mismatch:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            return (path, expected)
        for i, entry in enumerate(value):
            found = item(entry, f"{path}[{i}]")
            if found:
                return found
        return None

    return schema


def dict_of(item: Schema) -> Schema:
    def schema(value: Any, path: str) -> Mismatch:
        if not isinstance(value, dict):
            return (path, "an object {...}")
        for key, entry in value.items():
            found = item(entry, f"{path}[{key!r}]")
            if found:
                return found
        return None

    return schema


def record(required: Mapping[str, Schema], optional_fields: Mapping[str, Schema] = {}) -> Schema:
    def schema(value: Any, path: str) -> Mismatch:
        if not isinstance(value, dict):
            fields = ", ".join(map(repr, required))
            return (path, f"an object with {fields}" if fields else "an object {...}")
        for field, field_schema in required.items():
            if field not in value:
                return (f"{path}[{field!r}]", "present")
            found = field_schema(value[field], f"{path}[{field!r}]")
            if found:
                return found
        for field, field_schema in optional_fields.items():
            if field in value:
                found = field_schema(value[field], f"{path}[{field!r}]")
                if found:
                    return found
        return None

    return schema


BOOL = _kind(lambda v: isinstance(v, bool), "true or false")
PAIR = list_of(NUMBER, length=2)
NAMES = list_of(STR)
# A dim of a called model's input or output: a size, or a symbol / None when not static.
DIM = _kind(
    lambda v: v is None or isinstance(v, str) or (type(v) is int and v >= 0),
    "an int >= 0, a symbol or null",
)
_MODEL_PORT = record({"name": STR, "dtype": STR, "shape": list_of(DIM)})
_TERM_HISTORY = record(
    {
        "length": COUNT,
        "order": STR,
        "frame_size": COUNT,
        "frames": list_of(list_of(COUNT, length=2)),
    },
    {"layout": STR},
)
_STAGE = record(
    {},
    {
        "function": optional(STR),
        "file": optional(STR),
        "line": optional(INT),
        "reads": NAMES,
        "writes": NAMES,
        "ops": dict_of(COUNT),
        "constants": list_of(
            record(
                {"dtype": STR, "shape": list_of(COUNT)},
                {"values": list_of(ANY), "sha256": STR},
            )
        ),
        "source": optional(STR),
        "models": list_of(
            record(
                {
                    "source": STR,
                    "inputs": list_of(_MODEL_PORT),
                    "outputs": list_of(_MODEL_PORT),
                    "weights_sha256": STR,
                }
            )
        ),
        # library steps: their parameters differ by step, explain shows what it finds
        "steps": list_of(record({"step": STR}, {"at": optional(STR)})),
    },
)

# A dimension of a wire a file records: a size, or the symbolic batch of a dynamic-batch file.
WIRE_DIM = _kind(
    lambda v: v == BATCH_DIM or (type(v) is int and v >= 0), f"an int >= 0 or {BATCH_DIM!r}"
)
BATCH_SIZE = _kind(
    lambda v: v == DYNAMIC or (type(v) is int and v >= 1), f"an int >= 1 or {DYNAMIC!r}"
)
_ACTOR_PORT = record({"name": STR, "shape": list_of(WIRE_DIM), "dtype": STR, "binds": STR})

# Our own keys (compiler/build/_metadata.py writes them), by key.
OWN_KEYS: dict[str, Schema] = {
    "exploy_dsl.version": STR,
    "exploy_dsl.target": STR,
    "exploy_dsl.program": record({"name": STR}, {"n_obs": COUNT, "n_actions": COUNT}),
    BATCH_KEY: record({"size": BATCH_SIZE}, {"lockstep": BOOL, "robot": BOOL}),
    "exploy_dsl.memory": list_of(
        record({"name": STR, "shape": list_of(WIRE_DIM), "dtype": STR}, {"init": ANY})
    ),
    "exploy_dsl.observation": record(
        {
            "terms": list_of(
                record(
                    {"name": STR, "start": COUNT, "size": COUNT},
                    {
                        "scale": optional(list_of(NUMBER)),
                        "clip": optional(PAIR),
                        "history": _TERM_HISTORY,
                        "scale_folded": BOOL,
                    },
                )
            )
        },
        {
            "size": COUNT,
            "clip": optional(PAIR),
            "history": record({"reset": STR}, {"length": COUNT, "order": STR, "layout": STR}),
            "normalized": BOOL,
            "folded_into_actor": NAMES,
        },
    ),
    "exploy_dsl.normalizer": record(
        {"formula": STR, "eps": NUMBER, "size": COUNT, "statistic": STR, "sha256": STR},
        {
            "clip": optional(PAIR),
            "source": STR,
            "count": optional(COUNT),
            "folded": BOOL,
            "mean": list_of(NUMBER),
            "std": list_of(NUMBER),
            "var": list_of(NUMBER),
        },
    ),
    "exploy_dsl.clocks": list_of(
        record(
            {"stage": STR, "period": NUMBER},
            {"offset": NUMBER, "formula": STR, "sim_dt": NUMBER},
        )
    ),
    "exploy_dsl.actor": record(
        {"source": STR},
        {
            "exporter": optional(STR),
            "inputs": list_of(_ACTOR_PORT),
            "outputs": list_of(_ACTOR_PORT),
            "state": NAMES,
            "dropped_outputs": NAMES,
            "lifted_state": dict_of(STR),
        },
    ),
    "exploy_dsl.hashes": record(
        {}, {"algorithm": STR, "stages": dict_of(STR), "actor_weights": STR}
    ),
    "exploy_dsl.tools": dict_of(optional(STR)),
    "exploy_dsl.stages": dict_of(_STAGE),
    "exploy_dsl.build": record(
        {"rewrites": list_of(record({"step": STR, "nodes": list_of(COUNT, length=2)}))}
    ),
}
# exploy's keys that our tools read: joint orders and gains.
EXPLOY_KEYS: tuple[tuple[re.Pattern[str], Schema], ...] = (
    (JOINT_GROUP, record({"joint_names": NAMES})),
    (JOINT_POS_COMMAND, record({}, {"joint_names": NAMES})),
    (
        JOINT_TARGET_GROUP,
        record({}, {"names": NAMES, "stiffness": list_of(NUMBER), "damping": list_of(NUMBER)}),
    ),
)


def schema_of(key: str) -> Schema | None:
    """The form ``key`` must have, or None for a key our tools do not read back."""
    if key in OWN_KEYS:
        return OWN_KEYS[key]
    return next((schema for pattern, schema in EXPLOY_KEYS if pattern.match(key)), None)


def check_recorded(metadata: Mapping[str, str], source: str = "file") -> None:
    """A FileContractError for the first key our tools read whose JSON has the wrong form."""
    for key, text in metadata.items():
        schema = schema_of(key)
        if schema is None:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise FileContractError(
                f"{source}: metadata key {key!r} is not valid JSON: {text[:80]!r}. "
                "Fix: recompile the file with exploy-dsl compile."
            ) from None
        found = schema(value, "")
        if found is not None:
            path, expected = found
            where = f"{key}{path}" if path else key
            wrong = (
                f"{where} is missing"
                if expected == "present"
                else f"{where} must be {expected}, got {_found(value, path)}"
            )
            raise FileContractError(
                f"{source}: metadata key {key!r} does not have the form exploy-dsl writes: "
                f"{wrong}. The file was edited or written by another tool. "
                "Fix: recompile it with exploy-dsl compile."
            )


def _found(value: Any, path: str) -> str:
    """The value at ``path`` (as built by the schemas), shown briefly."""
    for part in re.findall(r"\[([^\]]*)\]", path):
        try:
            index: Any = json.loads(part.replace("'", '"'))
            value = value[index]
        except (ValueError, KeyError, IndexError, TypeError):
            return "nothing"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
