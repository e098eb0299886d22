"""The wire vocabulary of the file contract: every name the file and exploy's controller share.

DESIGN.md section 2 in code. Nothing else in exploy-dsl spells ``ctx.step_count``,
``memory.<name>.in``/``.out`` or exploy's name patterns: it asks this module.
"""

from __future__ import annotations

import re

STEP_COUNT = "ctx.step_count"
ACTIONS = "actions"
OBS = "obs"
MEMORY = "memory"
# Names the file contract reserves: its own outputs, and the prefixes of its own wires.
RESERVED_WIRES = (ACTIONS, OBS)
RESERVED_PREFIXES = ("ctx", MEMORY)


def memory_key(name: str) -> str:
    """``memory.<name>``: the name a memory has inside stages, and its metadata key."""
    return f"{MEMORY}.{name}"


def memory_in(name: str) -> str:
    """``memory.<name>.in``: the graph input (with the initializer) that feeds a memory."""
    return f"{MEMORY}.{name}.in"


def memory_out(name: str) -> str:
    """``memory.<name>.out``: the graph output the controller copies into ``.in``."""
    return f"{MEMORY}.{name}.out"


def is_memory(wire: str) -> bool:
    return wire.startswith(MEMORY + ".")


def memory_name(wire: str) -> str:
    """``<name>`` of ``memory.<name>``, ``memory.<name>.in`` or ``memory.<name>.out``."""
    if not is_memory(wire):
        raise ValueError(f"{wire!r} is not a memory wire")  # a bug in exploy-dsl, not the user's
    rest = wire[len(MEMORY) + 1 :]
    for suffix in (".in", ".out"):
        if rest.endswith(suffix):
            return rest[: -len(suffix)]
    return rest


def is_memory_in(wire: str) -> bool:
    return is_memory(wire) and wire.endswith(".in")


def is_memory_out(wire: str) -> bool:
    return is_memory(wire) and wire.endswith(".out")


def in_to_out(wire: str) -> str:
    """The ``.out`` wire of a ``memory.<name>.in`` wire."""
    return memory_out(memory_name(wire))


def out_to_in(wire: str) -> str:
    """The ``.in`` wire of a ``memory.<name>.out`` wire."""
    return memory_in(memory_name(wire))


ACTOR_INPUT = "actor_input:"  # never a port name: ports are [A-Za-z0-9_] segments and dots


def actor_input(name: str) -> str:
    """The tick value the observations stage gathers for actor input ``name`` (terms)."""
    return ACTOR_INPUT + name


def is_actor_input(key: str) -> bool:
    return key.startswith(ACTOR_INPUT)


def stage_output(write: str) -> str:
    """A stage graph's output name for a write: memory writes get ``.out``, never a read's name."""
    return memory_out(memory_name(write)) if is_memory(write) else write


# exploy's matchers capture names with [a-zA-Z0-9_]+ and std::regex_match the whole wire name
# (control/include/exploy/matcher.hpp); a dot inside a captured name makes the wire unmatched.
ALNUM = "[A-Za-z0-9_]+"
BASE_FIELDS = ("lin_vel_b_rt_w_in_b", "ang_vel_b_rt_w_in_b", "w_Q_b", "pos_b_rt_w_in_w")
IMU_FIELDS = ("w_Q_b", "ang_vel_b_rt_w_in_b", "lin_vel_b_rt_w_in_b")
JOINT_TARGET_MEMBERS = ("pos", "vel", "effort")

JOINT_GROUP = re.compile(rf"^obj\.({ALNUM})\.joints\Z")
JOINT_STATE = re.compile(rf"^(obj\.({ALNUM})\.joints)\.(pos|vel)\Z")
BASE_STATE = re.compile(rf"^obj\.({ALNUM})\.({ALNUM})\.({'|'.join(BASE_FIELDS)})\Z")
IMU = re.compile(rf"^sensor\.imu\.({ALNUM})\.({'|'.join(IMU_FIELDS)})\Z")
SE2_COMMAND = re.compile(rf"^cmd\.se2_velocity\.({ALNUM})\Z")
FLOAT_COMMAND = re.compile(rf"^cmd\.float\.({ALNUM})\Z")
BOOLEAN_COMMAND = re.compile(rf"^cmd\.boolean\.({ALNUM})\Z")
SE3_COMMAND = re.compile(rf"^cmd\.se3_pose\.({ALNUM})\Z")
JOINT_POS_COMMAND = re.compile(rf"^cmd\.joint_pos\.({ALNUM})\Z")
HEIGHT_SCAN = re.compile(rf"^(sensor\.ray_caster\.({ALNUM}))\.(height|r|g|b)\Z")
JOINT_TARGET_GROUP = re.compile(rf"^output\.joint_targets\.({ALNUM})\Z")
JOINT_TARGET = re.compile(
    rf"^(output\.joint_targets\.({ALNUM}))\.({'|'.join(JOINT_TARGET_MEMBERS)})\Z"
)
