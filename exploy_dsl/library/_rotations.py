"""Robot math on spox Vars: (w, x, y, z) quaternions, batch first, unnormalised as Isaac Lab."""

# Vars are batch first with the components on the last axis: a quaternion is [..., 4] in the
# order (w, x, y, z), scalar first (exploy's w_Q_b, Isaac Lab's order), a vector [..., 3].
# Quaternions are used as given, not normalised, as Isaac Lab does: for a non-unit q every
# result is what Isaac Lab's function of the same name computes, so a policy sees the same.

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Var

from exploy_dsl._errors import StageError
from exploy_dsl.authoring._operators import constant_like, operators


def _shape(var: Var) -> tuple[Any, ...] | None:
    shape = var.unwrap_tensor().shape
    return None if shape is None else tuple(shape)


def _float_var(value: object, size: int, what: str, like: Var | None = None) -> Var:
    """``value`` as a float Var with ``size`` components on its last axis, else a StageError.

    A constant (a tuple, list or array) is accepted where ``like`` gives its dtype.
    """
    noun = "quaternion (w, x, y, z)" if size == 4 else f"vector of {size}"
    if not isinstance(value, Var):
        if like is None:
            raise StageError(
                f"{what}: expected a Var holding a {noun} on its last axis, got "
                f"{type(value).__name__}. Fix: pass v[port] (e.g. v[base.orientation])."
            )
        arr = np.asarray(value)
        if arr.ndim < 1 or arr.shape[-1] != size:
            raise StageError(
                f"{what}: constant {value!r} has shape {list(arr.shape)}; expected a {noun} "
                f"(shape [{size}] or [..., {size}])."
            )
        return constant_like(arr, np.dtype(like.unwrap_tensor().dtype), what)
    dtype = np.dtype(value.unwrap_tensor().dtype)
    shape = _shape(value)
    if dtype.kind != "f":
        raise StageError(
            f"{what}: the {noun} has dtype {dtype}; expected a float. "
            "Fix: op.cast(x, to=np.float32)."
        )
    if shape is None or len(shape) < 1 or shape[-1] != size:
        shown = "unknown" if shape is None else "[" + ", ".join(map(str, shape)) + "]"
        raise StageError(
            f"{what}: the {noun} has shape {shown}; expected [..., {size}] (batch first, the "
            f"components on the last axis). Fix: pass a Var of shape [1, {size}], e.g. "
            "v[base.orientation] for a quaternion."
        )
    return value


def _last_axis(x: Var) -> int:
    shape = _shape(x)
    return len(shape) - 1 if shape is not None else -1


def _components(x: Var, n: int) -> list[Any]:
    """The ``n`` components of ``x`` along its last axis, each ``[..., 1]``."""
    last_axis = op.const([_last_axis(x)])
    return [op.slice(x, op.const([i]), op.const([i + 1]), last_axis) for i in range(n)]


def _take(x: Var, indices: Sequence[int]) -> Var:
    """``x[..., indices]`` (a Gather on the last axis)."""
    return op.gather(x, op.const(np.asarray(indices, np.int64)), axis=_last_axis(x))


def _cross(a: Var, b: Var) -> Var:
    """``a x b`` on the last axis: ``a.yzx * b.zxy - a.zxy * b.yzx``."""
    yzx, zxy = (1, 2, 0), (2, 0, 1)
    return op.sub(op.mul(_take(a, yzx), _take(b, zxy)), op.mul(_take(a, zxy), _take(b, yzx)))


def _rotate(q: Var, v: Var, inverse: bool) -> Var:
    """``v -/+ w t + u x t`` with ``t = 2 u x v``: Isaac Lab's quat_apply(_inverse)."""
    axis = op.const([_last_axis(q)])
    w = op.slice(q, op.const([0]), op.const([1]), axis)
    u = op.slice(q, op.const([1]), op.const([4]), axis)
    t = op.mul(_cross(u, v), constant_like(2.0, _dtype(q), "quat_apply"))
    turned = op.sub(v, op.mul(w, t)) if inverse else op.add(v, op.mul(w, t))
    return op.add(turned, _cross(u, t))


def quat_apply(q: Var, v: Var | Sequence[float]) -> Var:
    """Rotate ``v`` by ``q``: ``R(q) v`` (body to world for ``w_Q_b``); ``[..., 3]``.

    ``q`` is (w, x, y, z). The cross-product form Isaac Lab's ``quat_apply`` uses:
    ``v + 2w (u x v) + 2 u x (u x v)`` with ``u = (x, y, z)``, not normalised.
    ``quat_apply(v[base.orientation], (1.0, 0.0, 0.0))`` is the base's forward axis in the world.
    """
    q = _float_var(q, 4, "quat_apply")
    return _rotate(q, _float_var(v, 3, "quat_apply vector", like=q), inverse=False)


def quat_apply_inverse(q: Var, v: Var | Sequence[float]) -> Var:
    """Rotate ``v`` by the inverse of ``q``: ``R(q)^T v`` (world to body for ``w_Q_b``).

    ``q`` is (w, x, y, z). Isaac Lab's ``quat_apply_inverse`` (formerly
    ``quat_rotate_inverse``): ``v - 2w (u x v) + 2 u x (u x v)``, not normalised.
    ``quat_apply_inverse(v[base.orientation], v[velocity_w])`` is that velocity in the body.
    """
    q = _float_var(q, 4, "quat_apply_inverse")
    return _rotate(q, _float_var(v, 3, "quat_apply_inverse vector", like=q), inverse=True)


def projected_gravity(q: Var) -> Var:
    """Gravity's direction in the body frame, ``R(q)^T (0, 0, -1)``, from a (w, x, y, z) ``q``.

    Isaac Lab's ``projected_gravity_b`` (``quat_apply_inverse(q, (0, 0, -1))``), written as the
    negated third row of ``R(q)``: ``(2(yw - xz), -2(yz + xw), 2(x^2 + y^2) - 1)``; upright is
    ``(0, 0, -1)``. For any q (also non-unit) this is the same polynomial as Isaac Lab's, so a
    zero quaternion gives ``(0, 0, -1)``, never NaN. ``[..., 4] -> [..., 3]``.
    """
    q = _float_var(q, 4, "projected_gravity")
    w, x, y, z = _components(q, 4)
    with operators():
        gx = 2.0 * (y * w - x * z)
        gy = -2.0 * (y * z + x * w)
        gz = 2.0 * (x * x + y * y) - 1.0
    return op.concat([gx, gy, gz], axis=-1)


def quat_conjugate(q: Var) -> Var:
    """``(w, -x, -y, -z)``: the inverse rotation of a unit quaternion; ``[..., 4]``."""
    q = _float_var(q, 4, "quat_conjugate")
    signs = constant_like(np.array([1.0, -1.0, -1.0, -1.0]), _dtype(q), "quat_conjugate")
    return op.mul(q, signs)


def quat_mul(a: Var, b: Var) -> Var:
    """The Hamilton product ``a * b`` of (w, x, y, z) quaternions: rotate by b, then by a.

    ``quat_mul(yaw_quat(q), offset)``; ``[..., 4]`` (the batch dims broadcast).
    """
    a = _float_var(a, 4, "quat_mul (first)")
    b = _float_var(b, 4, "quat_mul (second)", like=a)
    w1, x1, y1, z1 = _components(a, 4)
    w2, x2, y2, z2 = _components(b, 4)
    with operators():
        w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
        x = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
        y = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
        z = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    return op.concat([w, x, y, z], axis=-1)


def heading(q: Var) -> Var:
    """The yaw angle of the body's x axis in the world, in ``[-pi, pi]``; ``[..., 1]``.

    Isaac Lab's ``heading_w``: ``atan2(f_y, f_x)`` of ``f = quat_apply(q, (1, 0, 0))``, i.e.
    ``atan2(2(wz + xy), 1 - 2(y^2 + z^2))``. ONNX has no Atan2: it is built from Atan on the
    smaller-over-larger ratio and the quadrant (``atan2(0, 0) = 0``).
    """
    q = _float_var(q, 4, "heading")
    w, x, y, z = _components(q, 4)
    with operators():
        forward_y = 2.0 * (w * z + x * y)
        forward_x = 1.0 - 2.0 * (y * y + z * z)
    return atan2(forward_y, forward_x)


def yaw_quat(q: Var) -> Var:
    """The yaw-only part of ``q``: ``(cos(h/2), 0, 0, sin(h/2))`` with ``h = heading(q)``.

    Isaac Lab's ``yaw_quat`` (its final normalisation is left out: cos and sin already give a
    unit quaternion). ``[..., 4]``; e.g. a velocity command in the heading frame is
    ``quat_apply_inverse(yaw_quat(v[base.orientation]), velocity_w)``.
    """
    q = _float_var(q, 4, "yaw_quat")
    half = op.mul(heading(q), constant_like(0.5, _dtype(q), "yaw_quat"))
    shape = _shape(half)
    if shape is not None and all(isinstance(d, int) for d in shape):
        zero = constant_like(np.zeros(shape), _dtype(q), "yaw_quat")
    else:
        zero = op.expand(constant_like(0.0, _dtype(q), "yaw_quat"), op.shape(half))
    return op.concat([op.cos(half), zero, zero, op.sin(half)], axis=-1)


def wrap_to_pi(angle: Var) -> Var:
    """Angles (radians, any shape) wrapped to ``[-pi, pi]``, as Isaac Lab's ``wrap_to_pi``.

    ``r = (a + pi) mod 2pi`` (the floored modulo torch's ``%`` computes), then ``r - pi``;
    odd positive multiples of pi map to pi, odd negative ones to -pi.
    ``wrap_to_pi(heading(q) - v[target_heading])``.
    """
    if not isinstance(angle, Var) or _dtype(angle).kind != "f":
        raise StageError(
            f"wrap_to_pi: expected a float Var of angles, got "
            f"{_dtype(angle) if isinstance(angle, Var) else type(angle).__name__}."
        )
    dtype = _dtype(angle)
    pi = constant_like(math.pi, dtype, "wrap_to_pi")
    two_pi = constant_like(2.0 * math.pi, dtype, "wrap_to_pi")
    zero = constant_like(0.0, dtype, "wrap_to_pi")
    # Mod with fmod=1 is C's fmod (the sign of the dividend); adding 2pi to a negative
    # remainder gives the floored modulo, the way torch's remainder does it.
    remainder = op.mod(op.add(angle, pi), two_pi, fmod=1)
    wrapped = op.where(op.less(remainder, zero), op.add(remainder, two_pi), remainder)
    at_odd_multiple = op.and_(op.equal(wrapped, zero), op.greater(angle, zero))
    return op.where(at_odd_multiple, pi, op.sub(wrapped, pi))


def atan2(y: Var, x: Var) -> Var:
    """``atan2(y, x)`` elementwise in ``[-pi, pi]``, from ONNX ops (ONNX has no Atan2).

    Atan of the smaller magnitude over the larger (so no ratio above 1), then the octant and
    quadrant; ``atan2(0, 0) = 0`` and a signed zero ``y`` counts as positive.
    """
    dtype = _dtype(x)
    zero = constant_like(0.0, dtype, "atan2")
    one = constant_like(1.0, dtype, "atan2")
    half_pi = constant_like(math.pi / 2.0, dtype, "atan2")
    pi = constant_like(math.pi, dtype, "atan2")
    ax, ay = op.abs(x), op.abs(y)
    steep = op.greater(ay, ax)
    small = op.where(steep, ax, ay)
    large = op.where(steep, ay, ax)
    ratio = op.div(small, op.where(op.equal(large, zero), one, large))
    angle = op.atan(ratio)  # in [0, pi/4]
    angle = op.where(steep, op.sub(half_pi, angle), angle)  # the angle of (|x|, |y|)
    angle = op.where(op.less(x, zero), op.sub(pi, angle), angle)
    return op.where(op.less(y, zero), op.neg(angle), angle)


def _dtype(var: Var) -> np.dtype[Any]:
    return np.dtype(var.unwrap_tensor().dtype)
