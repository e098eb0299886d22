"""Sim-to-sim: drive a MuJoCo model with a compiled file, as a deployed loop drives a robot.

``simulate(file, "robot.xml")`` binds every wire from the file's metadata (joints and
actuators by name, the base from its free joint, IMUs from MJCF sensors, commands from given
values), calls the file once per physics step and returns a ``SimResult``: the trajectory,
the input stream in ``exploy-dsl check --trace`` form, a summary and a plot. ``bind`` gives
the binding alone, for a loop of your own. Needs MuJoCo (``pip install mujoco``, or
``pip install ".[sim]"`` in the checkout); importing this package does not import it.
"""

from __future__ import annotations

from exploy_dsl.sim._binding import Binding, bind
from exploy_dsl.sim._commands import command_values, parse_command_args
from exploy_dsl.sim._loop import simulate
from exploy_dsl.sim._mujoco import load_robot
from exploy_dsl.sim._result import SimResult

for _public in (Binding, SimResult):
    _public.__module__ = "exploy_dsl.sim"  # tracebacks and reprs show the public name

__all__ = [
    "Binding",
    "SimResult",
    "bind",
    "command_values",
    "load_robot",
    "parse_command_args",
    "simulate",
]
