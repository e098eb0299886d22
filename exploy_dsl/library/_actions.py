"""Action post-processing on Vars: clip, scale and offset, filters, unscale, argmax, recorded."""

# Constants may be Python numbers or NumPy arrays (they take the Var's dtype); each step records
# its parameters in the stage's entry of the file's exploy_dsl.stages (explain shows them). The
# stateful steps, low_pass and rate_limit, declare their memory themselves.

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Var

from exploy_dsl._errors import DeclarationError, StageError
from exploy_dsl.authoring._operators import constant_like
from exploy_dsl.authoring._ports import Memory
from exploy_dsl.authoring._program import Program
from exploy_dsl.library._records import (
    LibraryStep,
    caller,
    constant_record,
    record_step,
    tracing,
)

Number = float | int
Bound = Number | Sequence[float] | np.ndarray | Var | None


def _var(x: object, what: str, *, float_only: bool = False) -> Var:
    if not isinstance(x, Var):
        raise StageError(
            f"{what}: expected a Var (e.g. v[port] or the stage's actions), got "
            f"{type(x).__name__}. Fix: pass the value to process, e.g. {what}(actions, ...)."
        )
    dtype = np.dtype(x.unwrap_tensor().dtype)
    if float_only and dtype.kind != "f":
        raise StageError(
            f"{what}: the value has dtype {dtype}; expected a float. "
            "Fix: op.cast(x, to=np.float32)."
        )
    return x


def _shape_of(x: Var) -> tuple[Any, ...] | None:
    shape = x.unwrap_tensor().shape
    return None if shape is None else tuple(shape)


def _shown(shape: object) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + "]"  # type: ignore[attr-defined]


def _constant(value: object, x: Var, what: str, name: str) -> np.ndarray:
    """A number or array parameter, checked: finite, and fitting ``x`` without growing it."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf" or arr.dtype.kind == "b":
        raise StageError(f"{what}: {name} {value!r} is not a number or an array of numbers.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise StageError(f"{what}: {name} {value!r} is not finite. Fix: give finite numbers.")
    dtype = np.dtype(x.unwrap_tensor().dtype)
    if dtype.kind in "iu" and arr.dtype.kind == "f":
        raise StageError(
            f"{what}: {name} {constant_record(arr)} is a float, the value is {dtype}: it would be "
            "truncated. Fix: give integers, or cast the value first, e.g. "
            "op.cast(x, to=np.float32)."
        )
    shape = _shape_of(x)
    if arr.ndim and shape is not None and all(isinstance(d, int) for d in shape):
        try:
            grown = np.broadcast_shapes(arr.shape, shape)
        except ValueError:
            grown = None
        if grown != shape:
            raise StageError(
                f"{what}: {name} has shape {list(arr.shape)}, which does not fit the value of "
                f"shape {_shown(shape)}. Fix: one number, or one entry per element of the last "
                f"axis (shape [{shape[-1]}])."
            )
    return arr


def _bound(value: Bound, x: Var, what: str, name: str) -> Var | np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, Var):
        if np.dtype(value.unwrap_tensor().dtype) != np.dtype(x.unwrap_tensor().dtype):
            raise StageError(
                f"{what}: {name} has dtype {np.dtype(value.unwrap_tensor().dtype)}, the value "
                f"{np.dtype(x.unwrap_tensor().dtype)}. Fix: op.cast one of them."
            )
        return value
    return _constant(value, x, what, name)


def _as_var(value: Var | np.ndarray, x: Var, what: str) -> Var:
    if isinstance(value, Var):
        return value
    return constant_like(value, np.dtype(x.unwrap_tensor().dtype), what)


def clip(x: Var, low: Bound, high: Bound) -> Var:
    """``x`` limited to ``[low, high]``: ``clip(torque, -25, 25)``.

    ``low``/``high`` are numbers, arrays (one bound per element, e.g. per joint), Vars, or None
    for no bound on that side; numbers take ``x``'s dtype (a float bound on an int32 value is
    an error). Two numbers give one ONNX Clip, arrays or Vars Max then Min (Clip's bounds are
    scalars). Recorded as ``{"step": "clip", "low": ..., "high": ...}``.
    """
    what = "clip"
    x = _var(x, what)
    lo, hi = _bound(low, x, what, "low"), _bound(high, x, what, "high")
    if lo is None and hi is None:
        raise StageError("clip: both bounds are None, so nothing is clipped. Fix: give one.")
    if isinstance(lo, np.ndarray) and isinstance(hi, np.ndarray) and np.any(lo > hi):
        raise StageError(
            f"clip: low {constant_record(lo)} is above high {constant_record(hi)}. "
            "Fix: clip(x, low, high) with low <= high."
        )
    scalar = all(b is None or (isinstance(b, np.ndarray) and b.ndim == 0) for b in (lo, hi))
    if scalar:
        out = op.clip(
            x,
            None if lo is None else _as_var(lo, x, what),
            None if hi is None else _as_var(hi, x, what),
        )
    else:
        out = x
        if lo is not None:
            out = op.max([out, _as_var(lo, x, what)])
        if hi is not None:
            out = op.min([out, _as_var(hi, x, what)])
    _record(
        "clip",
        {
            "low": None if lo is None else constant_record(lo),
            "high": None if hi is None else constant_record(hi),
        },
    )
    return out


def scale_offset(x: Var, scale: Bound = 1.0, offset: Bound = 0.0) -> Var:
    """``x * scale + offset``, as Isaac Lab's joint actions: ``scale_offset(a, 0.25, q0)``.

    Numbers or arrays (one entry per element) or Vars; a scale of 1 or an offset of 0 adds no
    op. Recorded with both values, so the action scale is never hidden in code.
    """
    what = "scale_offset"
    x = _var(x, what)
    s = _bound(scale, x, what, "scale")
    o = _bound(offset, x, what, "offset")
    out = x
    # A scale of exactly 1 and an offset of exactly 0 are left out of the graph.
    if s is not None and not (isinstance(s, np.ndarray) and s.ndim == 0 and s == 1):
        out = op.mul(out, _as_var(s, x, what))
    if o is not None and not (isinstance(o, np.ndarray) and o.ndim == 0 and o == 0):
        out = op.add(out, _as_var(o, x, what))
    _record(
        "scale_offset",
        {
            "scale": None if s is None else constant_record(s),
            "offset": None if o is None else constant_record(o),
        },
    )
    return out


def unscale_action(
    x: Var, low: Number | Sequence[float] | np.ndarray, high: Number | Sequence[float] | np.ndarray
) -> Var:
    """From ``[-1, 1]`` to the action space's ``[low, high]``, then clipped to it.

    Stable-Baselines3's ``unscale_action``: ``low + 0.5 (x + 1) (high - low)``, here followed
    by a clip to ``[low, high]`` so an unsquashed (Gaussian) action cannot leave the bounds.
    ``unscale_action(actions, low=-2.0, high=2.0)``; bounds are numbers or per-element arrays.
    """
    what = "unscale_action"
    x = _var(x, what, float_only=True)
    dtype = np.dtype(x.unwrap_tensor().dtype)
    lo = _constant(low, x, what, "low").astype(dtype)
    hi = _constant(high, x, what, "high").astype(dtype)
    if np.any(lo >= hi):
        raise StageError(
            f"unscale_action: low {constant_record(lo)} is not below high "
            f"{constant_record(hi)}. Fix: the action space's bounds, low < high."
        )
    span = (hi - lo).astype(dtype)  # as SB3 computes it, in the action space's dtype
    one, half = constant_like(1.0, dtype, what), constant_like(0.5, dtype, what)
    unscaled = op.add(
        constant_like(lo, dtype, what),
        op.mul(op.mul(half, op.add(x, one)), constant_like(span, dtype, what)),
    )
    if lo.ndim == 0 and hi.ndim == 0:
        out = op.clip(unscaled, constant_like(lo, dtype, what), constant_like(hi, dtype, what))
    else:
        out = op.min(
            [op.max([unscaled, constant_like(lo, dtype, what)]), constant_like(hi, dtype, what)]
        )
    _record("unscale_action", {"low": constant_record(lo), "high": constant_record(hi)})
    return out


def argmax(x: Var, axis: int = -1) -> Var:
    """The index of the largest entry along ``axis`` (the first one on ties), as int32.

    For a discrete policy: ``argmax(actions)`` is ``[batch, 1]`` (the axis is kept, so it can
    be written to an int32 memory or output of shape 1). Recorded with its axis.
    """
    what = "argmax"
    x = _var(x, what)
    shape = _shape_of(x)
    rank = len(shape) if shape is not None else None
    if (
        isinstance(axis, bool)
        or not isinstance(axis, int)
        or (rank is not None and not -rank <= axis < rank)
    ):
        raise StageError(
            f"argmax: axis {axis!r} is not an axis of a value of shape {_shown(shape)}. "
            "Fix: axis=-1 (the last one)."
        )
    out = op.cast(op.arg_max(x, axis=axis, keepdims=1), to=np.int32)
    _record("argmax", {"axis": axis})
    return out


# -- stateful steps ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class LowPass:
    """An exponential moving average ``y = alpha x + (1 - alpha) y_prev`` kept in ``memory``.

    Made by ``low_pass(program, ...)``; call it in process_actions or apply_actions as
    ``smooth(v, x)``, which returns ``y`` and writes it to the memory (read ``v[smooth.memory]``
    elsewhere for the last value). After a reset ``y_prev`` is the memory's initial value.
    """

    memory: Memory
    alpha: float

    def __call__(self, v: Mapping[Any, Var], x: Var) -> Var:
        what = f"low_pass {self.memory.name!r}"
        x = _stateful_input(v, self.memory, x, what)
        previous = v[self.memory]
        dtype = np.dtype(x.unwrap_tensor().dtype)
        y = op.add(
            op.mul(constant_like(self.alpha, dtype, what), x),
            op.mul(constant_like(1.0 - self.alpha, dtype, what), previous),
        )
        _record(
            "low_pass",
            {"memory": self.memory.name, "alpha": self.alpha, "init": _init(self.memory)},
            writes=((self.memory, y),),
        )
        return y


@dataclass(frozen=True, slots=True, eq=False)
class RateLimit:
    """``y = y_prev + clip(x - y_prev, -max_delta, max_delta)``, with ``y`` kept in ``memory``.

    Made by ``rate_limit(program, ...)``; ``limit(v, x)`` returns ``y`` and writes it.
    ``max_delta`` is per call of the stage: per tick in apply_actions, per policy step in
    process_actions. After a reset ``y_prev`` is the memory's initial value.
    """

    memory: Memory
    max_delta: float | tuple[float, ...]

    def __call__(self, v: Mapping[Any, Var], x: Var) -> Var:
        what = f"rate_limit {self.memory.name!r}"
        x = _stateful_input(v, self.memory, x, what)
        previous = v[self.memory]
        dtype = np.dtype(x.unwrap_tensor().dtype)
        delta = np.asarray(self.max_delta, dtype=np.float64)
        change = op.sub(x, previous)
        if delta.ndim == 0:
            limited = op.clip(
                change, constant_like(-delta, dtype, what), constant_like(delta, dtype, what)
            )
        else:
            limited = op.min(
                [
                    op.max([change, constant_like(-delta, dtype, what)]),
                    constant_like(delta, dtype, what),
                ]
            )
        y = op.add(previous, limited)
        _record(
            "rate_limit",
            {
                "memory": self.memory.name,
                "max_delta": constant_record(np.asarray(self.max_delta, np.float32)),
                "init": _init(self.memory),
            },
            writes=((self.memory, y),),
        )
        return y


@dataclass(frozen=True, slots=True, eq=False)
class JointPositionAction:
    """Isaac Lab's joint position action: ``target = actions * scale + offset``, held.

    Made by ``joint_position_action(program, ...)``. Call ``joint_pos(v, actions)`` in
    process_actions: it computes the target once per policy step and writes it to ``memory``
    (``memory.<name>.processed_actions``); apply_actions reads the held target at every tick
    with ``v[joint_pos]``. After a reset the target is ``offset`` (the default pose), so the
    robot is held there until the first policy step.
    """

    memory: Memory
    scale: np.ndarray
    offset: np.ndarray
    clip: tuple[np.ndarray, np.ndarray] | None

    def __call__(self, v: Mapping[Any, Var], actions: Var) -> Var:
        what = f"joint_position_action {self.memory.name!r}"
        x = _stateful_input(v, self.memory, actions, what)
        dtype = np.dtype(x.unwrap_tensor().dtype)
        target = op.add(
            op.mul(x, constant_like(self.scale, dtype, what)),
            constant_like(self.offset, dtype, what),
        )
        if self.clip is not None:
            low, high = self.clip
            target = op.min(
                [
                    op.max([target, constant_like(low, dtype, what)]),
                    constant_like(high, dtype, what),
                ]
            )
        _record(
            "joint_position_action",
            {
                "memory": self.memory.name,
                "scale": constant_record(self.scale),
                "offset": constant_record(self.offset),
                "clip_low": None if self.clip is None else constant_record(self.clip[0]),
                "clip_high": None if self.clip is None else constant_record(self.clip[1]),
                "init": _init(self.memory),
            },
            writes=((self.memory, target),),
        )
        return target


def joint_position_action(
    program: Program,
    name: str,
    n_joints: int,
    *,
    scale: float | Sequence[float] | np.ndarray = 1.0,
    offset: float | Sequence[float] | np.ndarray = 0.0,
    clip: tuple[Any, Any] | None = None,
) -> JointPositionAction:
    """Declare Isaac Lab's joint position action, its held target as generated memory.

    ``joint_pos = joint_position_action(program, "joint_pos", 12, scale=0.25,
    offset=DEFAULT_POS)`` declares ``memory.joint_pos.processed_actions`` (initial value
    ``offset``); ``joint_pos(v, actions)`` in process_actions sets it to ``actions * 0.25 +
    DEFAULT_POS`` (then clipped to ``clip``, if given); ``v[joint_pos]`` reads the held target.
    ``scale``, ``offset`` and the bounds of ``clip=(low, high)`` are numbers or one value per
    joint.
    """
    what = f"joint_position_action {name!r}"
    if not isinstance(name, str) or not name:
        raise DeclarationError(
            f"{what}: the name must be a non-empty string (the action term's name), got "
            f"{type(name).__name__}. Fix: e.g. joint_position_action(program, 'joint_pos', 12)."
        )
    if isinstance(n_joints, bool) or not isinstance(n_joints, int) or n_joints < 1:
        raise DeclarationError(
            f"{what}: n_joints must be a positive int (the number of actions), got "
            f"{n_joints!r}. Fix: e.g. joint_position_action(program, {name!r}, 12, ...)."
        )
    scale_values = _per_joint(scale, n_joints, what, "scale")
    offset_values = _per_joint(offset, n_joints, what, "offset")
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    if clip is not None:
        if not (isinstance(clip, (tuple, list)) and len(clip) == 2):
            raise DeclarationError(
                f"{what}: clip must be (low, high), each a number or one per joint, got "
                f"{clip!r}. Fix: e.g. clip=(-3.0, 3.0), or leave it out."
            )
        low = _per_joint(clip[0], n_joints, what, "clip low")
        high = _per_joint(clip[1], n_joints, what, "clip high")
        if np.any(low >= high):
            raise DeclarationError(
                f"{what}: clip low {constant_record(low)} is not below high "
                f"{constant_record(high)}. Fix: low < high for every joint."
            )
        if np.any((offset_values < low) | (offset_values > high)):
            raise DeclarationError(
                f"{what}: offset {constant_record(offset_values)} lies outside clip "
                f"[{constant_record(low)}, {constant_record(high)}], so the target held after "
                "a reset is one the action could never command. Fix: widen clip to hold the "
                "default pose."
            )
        bounds = (low, high)
    memory = _state_memory(
        program,
        f"{name}.processed_actions",
        n_joints,
        np.broadcast_to(offset_values, (n_joints,)).copy(),
        what,
    )
    return JointPositionAction(memory, scale_values, offset_values, bounds)


def _per_joint(value: object, n: int, what: str, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.asarray(np.nan)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n) or not np.all(np.isfinite(arr)):
        raise DeclarationError(
            f"{what}: {name} must be a finite number or {n} of them (one per joint), got "
            f"{value!r}. Fix: e.g. {name}={'0.25' if name == 'scale' else 'DEFAULT_POS'}."
        )
    return arr.astype(np.float32)


def low_pass(
    program: Program,
    name: str,
    shape: int | tuple[int, ...],
    *,
    alpha: float,
    init: Any = None,
) -> LowPass:
    """Declare a low-pass (EMA) filter with its state as ``memory.<name>``.

    ``smooth = low_pass(program, "smoothed_actions", 12, alpha=0.3)`` declares the memory
    (initial value ``init``, zeros by default); in a stage ``smooth(v, actions)`` is
    ``0.3 * actions + 0.7 * previous``. ``alpha`` in ``(0, 1]`` weighs the new value.
    """
    what = f"low_pass {name!r}"
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not math.isfinite(alpha)
        or not 0.0 < alpha <= 1.0
    ):
        raise DeclarationError(
            f"{what}: alpha must be a number in (0, 1] (the weight of the new value), got "
            f"{alpha!r}. Fix: e.g. alpha=0.3; alpha=1 does not filter."
        )
    return LowPass(_state_memory(program, name, shape, init, what), float(alpha))


def rate_limit(
    program: Program,
    name: str,
    shape: int | tuple[int, ...],
    *,
    max_delta: float | Any,
    init: Any = None,
) -> RateLimit:
    """Declare a rate limiter with its last output as ``memory.<name>``.

    ``limit = rate_limit(program, "target", 12, max_delta=0.05, init=DEFAULT_POS)``; in a
    stage ``limit(v, x)`` moves at most ``max_delta`` (a number, or one per element) per call
    from the previous output toward ``x``.
    """
    what = f"rate_limit {name!r}"
    try:
        delta = np.asarray(max_delta, dtype=np.float64)
    except (TypeError, ValueError):
        delta = np.asarray(np.nan)
    if delta.ndim > 1 or delta.size == 0 or not np.all(np.isfinite(delta)) or np.any(delta <= 0):
        raise DeclarationError(
            f"{what}: max_delta must be a finite number > 0 or a list of them (one per "
            f"element), got {max_delta!r}. Fix: e.g. max_delta=0.05 (per call of the stage)."
        )
    memory = _state_memory(program, name, shape, init, what)
    if delta.ndim == 1 and (memory.shape == () or delta.shape[0] != memory.shape[-1]):
        raise DeclarationError(
            f"{what}: max_delta has {delta.shape[0]} entries, the state has shape "
            f"{list(memory.shape)}. Fix: one number, or one per element of the last axis."
        )
    value: float | tuple[float, ...] = (
        float(delta) if delta.ndim == 0 else tuple(float(d) for d in delta)
    )
    return RateLimit(memory, value)


def _state_memory(
    program: Program, name: str, shape: int | tuple[int, ...], init: Any, what: str
) -> Memory:
    if not isinstance(program, Program):
        raise DeclarationError(
            f"{what}: the first argument must be the Program that keeps the state, got "
            f"{type(program).__name__}. Fix: {what.split()[0]}(program, {name!r}, ...)."
        )
    memory = program.memory(name, shape, "float32", init)
    return memory


def _stateful_input(v: Mapping[Any, Var], memory: Memory, x: object, what: str) -> Var:
    if not tracing():
        raise StageError(
            f"{what} was called outside a stage; its state is memory written by the stage "
            "that calls it. Fix: call it inside process_actions or apply_actions."
        )
    var = _var(x, what, float_only=True)
    shape = _shape_of(var)
    # The state as the stage is traced: at another batch than declared (Program.with_batch).
    program = getattr(v, "program", None)
    if isinstance(program, Program) and program.owns(memory):
        memory = program.port(memory.name)  # type: ignore[assignment]
    batched = memory.batch != 1 or memory.dynamic_batch
    if (shape != memory.file_shape) if not batched else not memory.fits(shape):
        raise StageError(
            f"{what}: the value has shape {_shown(shape)}, its state memory.{memory.name} is "
            f"{list(memory.wire_shape)}. Fix: pass a value of that shape (or declare the "
            "step with the shape of this value)."
        )
    return var


def _init(memory: Memory) -> Any:
    values = np.asarray(memory.init)
    if values.size and np.all(values == values.reshape(-1)[0]):
        return constant_record(values.reshape(-1)[0])
    return constant_record(values.reshape(-1))


def _record(step: str, params: dict[str, Any], writes: tuple[tuple[Memory, Var], ...] = ()) -> None:
    record_step(LibraryStep(step, params, caller(), writes))
