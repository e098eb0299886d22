"""MuJoCo, imported only when a simulation needs it, and robot models loaded with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

from exploy_dsl._errors import MissingDependencyError, SimError

INSTALL = "pip install mujoco"


def require_mujoco() -> ModuleType:
    """The ``mujoco`` module, or a MissingDependencyError saying how to install it."""
    try:
        import mujoco
    except ImportError:
        raise MissingDependencyError(
            f"exploy_dsl.sim needs MuJoCo, which is not installed. Fix: {INSTALL}."
        ) from None
    return mujoco


def load_robot(source: str | os.PathLike[str] | Any) -> tuple[Any, str]:
    """(MjModel, label) from an MJCF path or an ``mujoco.MjModel``; errors name the file."""
    mujoco = require_mujoco()
    if isinstance(source, mujoco.MjModel):
        return source, "the MuJoCo model"
    if not isinstance(source, (str, os.PathLike)):
        raise SimError(
            f"the robot must be an MJCF path or a mujoco.MjModel, got {type(source).__name__}. "
            "Fix: pass e.g. examples/robots/quadruped.xml."
        )
    path = Path(source)
    label = repr(str(path))
    if path.is_dir():
        raise SimError(f"robot model {label} is a folder; expected an MJCF .xml file.")
    if not path.is_file():
        raise SimError(f"robot model {label} does not exist. Fix: check the path.")
    try:
        return mujoco.MjModel.from_xml_path(str(path)), label
    except ValueError as exc:  # MuJoCo's compiler reports an invalid model as ValueError
        message = " ".join(str(exc).split())[:400]
        raise SimError(f"MuJoCo cannot load robot model {label}: {message}") from None
