"""Which articulation receives each group of joint targets, and whether its joints belong to it.

exploy's C++ controller (JointTargetMatcher) captures the ``<name>`` of
``output.joint_targets.<name>.*`` and passes it to the robot as the articulation of every joint
it commands (``initJointOutput``/``setJointPosition({articulation_name, joint_name})``). Joint
state is read from the articulation of ``obj.<art>.joints``. When the two differ, a robot whose
state interface looks joints up by articulation does not find the commanded joints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._wires import JOINT_GROUP as _JOINTS
from exploy_dsl.contract._wires import JOINT_TARGET_GROUP as _TARGETS


@dataclass(frozen=True, slots=True)
class TargetArticulation:
    """One joint-target group: the articulation it commands and where its joints are read."""

    group: str  # output.joint_targets.<name>
    articulation: str  # <name>: what exploy's controller passes to the robot
    joints: tuple[str, ...]
    read_from: tuple[str, ...]  # articulations whose obj.<art>.joints list any of these joints

    @property
    def differs(self) -> bool:
        """The joints are read from other articulation(s) than the one commanded."""
        return bool(self.read_from) and self.articulation not in self.read_from

    def describe(self) -> str:
        """One line for explain and inspect."""
        text = (
            f"{self.group}.* -> articulation {self.articulation!r} (exploy's controller passes "
            f"the <name> of the wires to the robot as the articulation)"
        )
        if self.differs:
            sources = ", ".join(f"{a!r} (obj.{a}.joints)" for a in self.read_from)
            text += f"; NOTE: its joints are read from articulation {sources}"
        return text

    def warning(self) -> str:
        """The ArticulationWarning for a group whose articulation was not stated."""
        art, other = self.articulation, self.read_from[0]
        shown = ", ".join(self.joints[:3]) + (", ..." if len(self.joints) > 3 else "")
        return (
            f"joint targets {self.group}.*: exploy's controller sends them to articulation "
            f"{art!r} (the <name> of the wires), but their joints ({shown}) are read from "
            f"articulation {other!r} (obj.{other}.joints); a robot that looks joints up by "
            f"articulation will not find them. Fix: program.joint_targets(articulation="
            f"{other!r}, ...) (wires output.joint_targets.{other}.*), or, if the robot "
            f"really receives them as {art!r}, say so: program.joint_targets(articulation="
            f"{art!r}, ...)."
        )


def target_articulations(metadata: Mapping[str, Any]) -> list[TargetArticulation]:
    """Every joint-target group of ``metadata`` (decoded values, or JSON text as in a file)."""
    decoded = {key: _decoded(value) for key, value in metadata.items()}
    reads: dict[str, set[str]] = {}
    for key, value in decoded.items():
        m = _JOINTS.match(key)
        if m and isinstance(value, dict) and isinstance(value.get("joint_names"), list):
            for joint in value["joint_names"]:
                reads.setdefault(str(joint), set()).add(m[1])
    found = []
    for key, value in decoded.items():
        m = _TARGETS.match(key)
        if not m or not isinstance(value, dict) or not isinstance(value.get("names"), list):
            continue
        joints = tuple(str(n) for n in value["names"])
        read_from = sorted({art for joint in joints for art in reads.get(joint, ())})
        found.append(TargetArticulation(key, m[1], joints, tuple(read_from)))
    return found


def _decoded(value: Any) -> Any:
    return decode(value) if isinstance(value, str) else value
