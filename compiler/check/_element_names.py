"""Names for the elements of the file's outputs: joint names, observation terms, else indices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from exploy_dsl import TracedProgram
from exploy_dsl.contract._codec import decode
from exploy_dsl.contract._wires import OBS

# Metadata keys that list one name per element of a port (exploy's joint order).
_NAME_KEYS = ("joint_names", "names")
_JOINT_TARGETS = "output.joint_targets."


class ElementNames:
    """``label(wire, flat_index)`` -> ``"obs[37] = actions[1]"`` or ``"x[4] = FR_thigh"``.

    Names come from the program's port and group metadata (``joint_names`` of
    ``obj.<art>.joints``, ``names`` of ``output.joint_targets.<name>``), then from the file's
    metadata; ``obs`` elements are named by observation term; anything else by index.
    """

    def __init__(self, traced: TracedProgram, file_metadata: Mapping[str, str]) -> None:
        program = traced.program
        declared: dict[str, Any] = {g.name: g.metadata for g in program.groups}
        declared.update({p.name: p.metadata for p in program.ports})
        stored = {key: decode(text) for key, text in file_metadata.items()}
        sources = (declared, stored)  # the program's own metadata first
        self._shapes: dict[str, tuple[int, ...]] = traced.output_shapes()
        self._names: dict[str, Sequence[str]] = {}
        self._names[OBS] = traced.obs_element_names()
        for port in program.outputs:
            self._add(port.name, port.size, [port.name, _parent(port.name)], sources)
        for mem in program.memories:
            wire = mem.wire_out
            # memory <term>.processed_actions holds the targets of joint_targets.<term>.
            owner = _JOINT_TARGETS + mem.name.split(".")[0]
            keys = [mem.metadata_key, _parent(mem.name), owner]
            self._add(wire, mem.size, keys, sources)

    def _add(
        self, wire: str, size: int, keys: list[str], sources: Sequence[Mapping[str, Any]]
    ) -> None:
        for key in keys:
            for source in sources:
                entry = source.get(key)
                if not isinstance(entry, Mapping):
                    continue
                for field in _NAME_KEYS:
                    names = entry.get(field)
                    if isinstance(names, list) and len(names) == size:
                        self._names[wire] = [str(n) for n in names]
                        return

    def index(self, wire: str, flat: int) -> str:
        """``[i]`` (batch 1, one axis) or ``[b, i, j]``: the element's index in the wire."""
        shape = self._shapes.get(wire)
        if shape is None:
            return f"[{flat}]"
        where = np.unravel_index(flat, shape)
        shown = where[1:] if shape[0] == 1 else where
        return "[" + ", ".join(str(int(i)) for i in shown) + "]"

    def name(self, wire: str, flat: int) -> str | None:
        """The element's name (joint, observation term), None when it has none."""
        names = self._names.get(wire)
        shape = self._shapes.get(wire)
        if names is None or shape is None:
            return None
        return names[flat % int(np.prod(shape[1:]))]

    def label(self, wire: str, flat: int) -> str:
        """``wire[i] = name`` where the element has a name, else ``wire[i]``."""
        text = f"{wire}{self.index(wire, flat)}"
        name = self.name(wire, flat)
        return text if name is None else f"{text} = {name}"


def _parent(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name
