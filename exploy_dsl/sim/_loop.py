"""The deployed loop in MuJoCo: one call of the compiled file per physics step, bound by name."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx

from exploy_dsl._errors import SimError, UsageError
from exploy_dsl.runtime._runtime import Runtime
from exploy_dsl.sim._binding import Binding, bind
from exploy_dsl.sim._mujoco import load_robot, require_mujoco
from exploy_dsl.sim._result import SimResult

FALL_HEIGHT_RATIO = 0.5  # of the base's height at the first tick
FALL_TILT_DEG = 60.0


def simulate(
    file: str | os.PathLike[str] | bytes | onnx.ModelProto,
    robot: str | os.PathLike[str] | Any,
    *,
    seconds: float = 5.0,
    commands: Mapping[str, Any] | None = None,
    first_tick: int = 0,
    settle_physics: int = 0,
    keyframe: str | None = None,
    set_timestep: bool = False,
    fall_height_ratio: float = FALL_HEIGHT_RATIO,
    fall_tilt_deg: float = FALL_TILT_DEG,
    on_tick: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Drive the MJCF ``robot`` with the compiled ``file`` for ``seconds`` of simulated time.

    Every tick: MuJoCo's positions and velocities are brought up to date (``mj_step1``), the
    file's inputs are read from them, the file is called once (``exploy_dsl.Runtime``: tick
    counter and memory as a deployed loop keeps them, first call ``ctx.step_count =
    first_tick``), its outputs set the actuators, and the physics advances one ``sim_dt``
    (``mj_step2``). MuJoCo's timestep must be the file's ``sim_dt`` (``set_timestep=True``
    sets it, and the result notes it). ``settle_physics`` steps the physics that many times
    before the first call, holding the targets the file gives before any policy step: each
    settling step calls the file's apply-only step on its initial memory (as exploy's
    controller's first call does), then memory and tick counter start afresh.

    The run starts from ``keyframe`` (default: the model's first keyframe, else its
    ``qpos0``) and stops early when the file outputs NaN or infinity, or when MuJoCo reports
    an unstable state. Binding problems are SimErrors naming the wire and both sides.
    ``on_tick(tick, ticks)`` is called after each tick (e.g. for a progress bar).
    """
    mujoco = require_mujoco()
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds < math.inf
    ):
        raise UsageError(f"seconds must be a finite number > 0, got {seconds!r}. Fix: e.g. 5.")
    if (
        not isinstance(settle_physics, int)
        or isinstance(settle_physics, bool)
        or settle_physics < 0
    ):
        raise UsageError(f"settle_physics must be an int >= 0, got {settle_physics!r}.")
    runtime = Runtime(file, first_tick=first_tick)
    contract = runtime.contract
    model, robot_label = load_robot(robot)
    notes = _timestep(model, contract.sim_dt, robot_label, set_timestep)
    binding = bind(contract, model, commands=commands, label=robot_label)
    data = mujoco.MjData(model)
    start = _reset(mujoco, model, data, keyframe, robot_label)
    split = int(model.opt.integrator) != int(mujoco.mjtIntegrator.mjINT_RK4)
    loop = _Loop(mujoco, model, data, binding, split)
    if settle_physics:
        hold = _hold_tick(first_tick, contract.decimation, settle_physics)
        for _ in range(settle_physics):
            runtime.reset()
            runtime.tick = hold
            inputs = loop.sense()
            loop.act(runtime.step(inputs))
            if loop.advance() is not None:
                raise SimError(
                    f"MuJoCo became unstable while settling {robot_label} ({loop.unstable}). "
                    "Fix: start from a pose where the robot rests (a keyframe), or settle less."
                )
        runtime.reset()
    planned = max(1, round(seconds / contract.sim_dt))
    stopped: str | None = None
    for k in range(planned):
        inputs = loop.sense()
        tick = runtime.tick
        outputs = runtime.step(inputs)
        loop.record(inputs, outputs)
        bad = _non_finite(outputs, inputs)
        if bad is not None:
            stopped = f"{bad} at tick {k} (ctx.step_count {tick}); the run stopped there"
            break
        loop.act(outputs)
        problem = loop.advance()
        if on_tick is not None:
            on_tick(k, planned)
        if problem is not None:
            stopped = f"MuJoCo unstable after tick {k}: {problem}; the run stopped there"
            break
    return loop.result(
        file=_label(file),
        robot=robot_label,
        contract_dt=contract.sim_dt,
        decimation=contract.decimation,
        first_tick=first_tick,
        settle_steps=settle_physics,
        start=start,
        notes=notes,
        planned=planned,
        stopped=stopped,
        fall_height_ratio=fall_height_ratio,
        fall_tilt=math.radians(fall_tilt_deg),
    )


def _label(file: object) -> str:
    return str(file) if isinstance(file, (str, os.PathLike)) else "the file"


def _timestep(model: Any, sim_dt: float, label: str, set_it: bool) -> tuple[str, ...]:
    timestep = float(model.opt.timestep)
    if math.isclose(timestep, sim_dt, rel_tol=1e-9, abs_tol=0.0):
        return ()
    if not set_it:
        raise SimError(
            f"MuJoCo's timestep of {label} is {timestep:g} s but the file's sim_dt is "
            f"{sim_dt:g} s (update_rate {1 / sim_dt:g} Hz): the file is called once per "
            f'physics step. Fix: <option timestep="{sim_dt:g}"/> in the MJCF, or set it for '
            "this run (exploy-dsl sim --set-timestep; simulate(..., set_timestep=True))."
        )
    model.opt.timestep = sim_dt
    return (
        f"MuJoCo's timestep set to the file's sim_dt {sim_dt:g} s (the model had {timestep:g} s)",
    )


def _reset(mujoco: Any, model: Any, data: Any, keyframe: str | None, label: str) -> str:
    if keyframe is not None:
        key = int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, keyframe))
        if key < 0:
            known = [model.key(i).name for i in range(model.nkey)]
            raise SimError(
                f"{label} has no keyframe {keyframe!r}; its keyframes: "
                f"{', '.join(map(repr, known)) or 'none'}. Fix: name one of them, or add "
                f'<key name="{keyframe}" qpos="..."/> to <keyframe>.'
            )
        mujoco.mj_resetDataKeyframe(model, data, key)
        started = f"keyframe {keyframe!r}"
    elif model.nkey > 0:
        mujoco.mj_resetDataKeyframe(model, data, 0)
        started = f"keyframe {model.key(0).name or '#0'!r} (the model's first)"
    else:
        mujoco.mj_resetData(model, data)
        started = "the model's initial pose (qpos0; it has no keyframe)"
    mujoco.mj_forward(model, data)
    return started


def _hold_tick(first_tick: int, decimation: int, steps: int) -> int:
    """The tick of the file's first apply-only step, which holds its initial targets."""
    if decimation == 1:
        raise SimError(
            f"settle_physics={steps} needs an apply-only step to hold the file's initial "
            "targets while the physics settles, and a file with decimation 1 has none (every "
            "call runs the policy). Fix: drop the settling steps."
        )
    return first_tick if first_tick % decimation else first_tick + 1


def _non_finite(outputs: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> str | None:
    for kind, values in (("input", inputs), ("output", outputs)):
        for name, value in values.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                i = int(np.flatnonzero(~np.isfinite(value.reshape(-1)))[0])
                return f"{kind} {name}[{i}] = {value.reshape(-1)[i]}"
    return None


class _Loop:
    """The physics side of one run: sense, act, advance, and what is recorded per tick."""

    def __init__(self, mujoco: Any, model: Any, data: Any, binding: Binding, split: bool):
        self.mujoco, self.model, self.data, self.binding = mujoco, model, data, binding
        self.split = split  # mj_step1/mj_step2 (every integrator but RK4, which cannot split)
        warnings = mujoco.mjtWarning
        self.watched = {
            "bad qpos (NaN or huge)": int(warnings.mjWARN_BADQPOS),
            "bad qvel (NaN or huge)": int(warnings.mjWARN_BADQVEL),
            "bad qacc (NaN or huge; MuJoCo reset the state)": int(warnings.mjWARN_BADQACC),
        }
        self.unstable = ""
        self.rows: dict[str, list[np.ndarray]] = {}
        self.inputs: dict[str, list[np.ndarray]] = {}
        self.applied: Any = None

    def sense(self) -> dict[str, np.ndarray]:
        if self.split:
            self.mujoco.mj_step1(self.model, self.data)
        else:
            self.mujoco.mj_forward(self.model, self.data)
        return self.binding.read(self.data)

    def act(self, outputs: Mapping[str, np.ndarray]) -> None:
        self.applied = self.binding.apply(outputs, self.data)

    def advance(self) -> str | None:
        before = {k: int(self.data.warning[w].number) for k, w in self.watched.items()}
        if self.split:
            self.mujoco.mj_step2(self.model, self.data)
        else:
            self.mujoco.mj_step(self.model, self.data)
        for what, index in self.watched.items():
            if int(self.data.warning[index].number) > before[what]:
                self.unstable = what
                return what
        if not (np.isfinite(self.data.qpos).all() and np.isfinite(self.data.qvel).all()):
            self.unstable = "non-finite state"
            return self.unstable
        self._after_step()
        return None

    def record(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        for name, value in inputs.items():
            self.inputs.setdefault(name, []).append(value)
        data, b = self.data, self.binding
        self._row("joint_pos", data.qpos[b.actuated.qpos])
        sensed = data.qpos[b.sensed.qpos]
        self._row("limit_hits", (sensed <= b.sensed.low + 1e-3) | (sensed >= b.sensed.high - 1e-3))
        if b.base is not None:
            base = b.base
            q = data.qpos[base.qpos : base.qpos + 7]
            rot = data.xmat[base.body_id].reshape(3, 3)
            self._row("base_pos", q[:3])
            self._row("base_tilt", np.array(math.acos(max(-1.0, min(1.0, float(rot[2, 2]))))))
            self._row("base_lin_vel_b", rot.T @ data.qvel[base.dof : base.dof + 3])
            self._row("base_ang_vel_b", data.qvel[base.dof + 3 : base.dof + 6])

    def _after_step(self) -> None:
        applied, b = self.applied, self.binding
        self._row("joint_torque", self.data.qfrc_actuator[b.actuated.dof])
        self._row("torque_hits", applied.hits)
        self._row("joint_targets", applied.targets)

    def _row(self, key: str, value: np.ndarray) -> None:
        self.rows.setdefault(key, []).append(np.array(value, copy=True))

    def result(
        self,
        *,
        contract_dt: float,
        fall_height_ratio: float,
        fall_tilt: float,
        planned: int,
        **kw: Any,
    ) -> SimResult:
        b = self.binding
        ticks = len(self.rows.get("joint_pos", []))
        n, m = len(b.actuated.names), len(b.sensed.names)

        def stack(key: str, width: int | None, dtype: Any = np.float64) -> np.ndarray:
            rows = self.rows.get(key, [])[:ticks]
            shape = (ticks,) if width is None else (ticks, width)
            out = np.full(shape, np.nan if dtype is np.float64 else False, dtype)
            if rows:
                out[: len(rows)] = np.stack(rows)
            return out

        reset = np.zeros(ticks, np.bool_)
        reset[:1] = True
        base_pos = stack("base_pos", 3)
        fall_height = None
        if b.base is not None and ticks:
            fall_height = fall_height_ratio * float(base_pos[0, 2])
        return SimResult(
            sim_dt=contract_dt,
            binding=b.lines,
            planned_ticks=planned,
            inputs={k: np.stack(v) for k, v in self.inputs.items()},
            reset=reset,
            commands=dict(b.commands),
            base_name=b.base.name if b.base is not None else None,
            base_pos=base_pos,
            base_tilt=stack("base_tilt", None),
            base_lin_vel_b=stack("base_lin_vel_b", 3),
            base_ang_vel_b=stack("base_ang_vel_b", 3),
            joint_names=b.actuated.names,
            joint_pos=stack("joint_pos", n),
            joint_targets=stack("joint_targets", n),
            joint_torque=stack("joint_torque", n),
            torque_hits=stack("torque_hits", n, np.bool_),
            limit_names=b.sensed.names,
            limit_hits=stack("limit_hits", m, np.bool_),
            fall_height=fall_height,
            fall_tilt=fall_tilt,
            **kw,
        )
