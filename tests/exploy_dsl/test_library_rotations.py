"""Robot math on Vars against known values, a second formula and independent implementations.

The independent side is written here from the definitions: the rotation matrix
``R(q) = I + 2w[u]x + 2[u]x^2`` in NumPy (float64), Isaac Lab's cross-product form and its
``wrap_to_pi`` re-derived in torch, the Hamilton product as a 4x4 matrix, ``np.arctan2``. Each
function is traced into a stage and run by the reference interpreter and by onnxruntime, on
random quaternions, unit and not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from exploy_dsl import (
    StageError,
    atan2,
    heading,
    projected_gravity,
    quat_apply,
    quat_apply_inverse,
    quat_conjugate,
    quat_mul,
    wrap_to_pi,
    yaw_quat,
)
from tests.exploy_dsl._stage_harness import evaluate, op_types, stage_model, stage_program

N = 512
rng = np.random.default_rng(7)
# Non-unit quaternions (norms from ~0 to ~4) and their normalised copies.
RAW = (rng.normal(size=(N, 4)) * rng.uniform(0.1, 2.0, size=(N, 1))).astype(np.float32)
UNIT = (RAW / np.linalg.norm(RAW, axis=1, keepdims=True)).astype(np.float32)
VEC = rng.normal(size=(N, 3)).astype(np.float32) * 3.0
QUATS = pytest.mark.parametrize("quats", [UNIT, RAW], ids=["unit", "non-unit"])


def matrix(q: np.ndarray) -> np.ndarray:
    """R(q) = I + 2w[u]x + 2[u]x^2 per row of q (w, x, y, z), in float64, not normalised."""
    q = q.astype(np.float64)
    w, u = q[:, 0], q[:, 1:]
    k = np.zeros((len(q), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -u[:, 2], u[:, 1], -u[:, 0]
    k = k - k.transpose(0, 2, 1)
    return np.eye(3) + 2.0 * w[:, None, None] * k + 2.0 * k @ k


def torch_apply(q: np.ndarray, v: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Isaac Lab's cross-product form, re-derived: v +- w t + u x t, t = 2 u x v."""
    import torch

    qt, vt = torch.tensor(q, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)
    u = qt[:, 1:]
    t = 2.0 * torch.linalg.cross(u, vt, dim=-1)
    w_t = qt[:, :1] * t
    out = (vt - w_t if inverse else vt + w_t) + torch.linalg.cross(u, t, dim=-1)
    return out.numpy()


def hamilton(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b as L(a) @ b with the left-multiplication matrix of a."""
    w, x, y, z = a.astype(np.float64).T
    left = np.stack(
        [
            np.stack([w, -x, -y, -z], -1),
            np.stack([x, w, -z, y], -1),
            np.stack([y, z, w, -x], -1),
            np.stack([z, -y, x, w], -1),
        ],
        1,
    )
    return np.einsum("nij,nj->ni", left, b.astype(np.float64))


def torch_wrap_to_pi(angles: np.ndarray) -> np.ndarray:
    """Isaac Lab's wrap_to_pi, re-derived: (a + pi) % 2pi, odd positive multiples to pi."""
    import torch

    a = torch.tensor(angles, dtype=torch.float32)
    wrapped = (a + torch.pi) % (2 * torch.pi)
    return torch.where((wrapped == 0) & (a > 0), torch.pi, wrapped - torch.pi).numpy()


def both(fn: Callable[..., Any], n_out: int, **feeds: np.ndarray) -> np.ndarray:
    """fn traced and run both ways; the reference and onnxruntime agree; returns the reference."""
    reference, onnxruntime, _ = evaluate(fn, feeds, {"out": ((n_out,), "float32")})
    np.testing.assert_allclose(reference["out"], onnxruntime["out"], rtol=1e-6, atol=1e-6)
    return reference["out"]


def close(found: np.ndarray, expected: np.ndarray, scale: float = 1.0) -> None:
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=2e-6 * scale)


# -- rotations ---------------------------------------------------------------------------------


@pytest.mark.torch
@QUATS
def test_quat_apply_is_the_rotation_matrix_and_isaac_labs_cross_product_form(
    quats: np.ndarray,
) -> None:
    found = both(quat_apply, 3, q=quats, vec=VEC)
    scale = float(np.max(np.abs(quats)) ** 2 * 10)
    close(found, np.einsum("nij,nj->ni", matrix(quats), VEC), scale)
    close(found, torch_apply(quats, VEC), scale)


@pytest.mark.torch
@QUATS
def test_quat_apply_inverse_is_the_transposed_matrix(quats: np.ndarray) -> None:
    found = both(quat_apply_inverse, 3, q=quats, vec=VEC)
    scale = float(np.max(np.abs(quats)) ** 2 * 10)
    close(found, np.einsum("nji,nj->ni", matrix(quats), VEC), scale)
    close(found, torch_apply(quats, VEC, inverse=True), scale)


def test_for_unit_quaternions_rotation_is_the_sandwich_product_and_inverts() -> None:
    forward = both(quat_apply, 3, q=UNIT, vec=VEC)
    pure = np.concatenate([np.zeros((N, 1)), VEC], axis=1)
    conj = UNIT * np.array([1, -1, -1, -1])
    close(forward, hamilton(hamilton(UNIT, pure), conj)[:, 1:], 10.0)
    back = both(quat_apply_inverse, 3, q=UNIT, vec=forward.astype(np.float32))
    close(back, VEC, 10.0)


def test_known_rotations() -> None:
    half = math.sqrt(0.5)
    q = np.array([[1, 0, 0, 0], [half, 0, 0, half], [half, half, 0, 0], [0, 0, 1, 0]], np.float32)
    v = np.tile(np.array([[1.0, 2.0, 3.0]], np.float32), (4, 1))
    expected = [
        [1, 2, 3],
        [-2, 1, 3],
        [1, -3, 2],
        [-1, 2, -3],
    ]  # identity, yaw 90, roll 90, pitch 180
    close(both(quat_apply, 3, q=q, vec=v), np.array(expected, np.float64), 4.0)


def test_a_constant_vector_is_taken_in_the_quaternions_dtype() -> None:
    found = both(lambda q: quat_apply(q, (1.0, 0.0, 0.0)), 3, q=UNIT)
    close(found, matrix(UNIT)[:, :, 0])


# -- projected gravity -------------------------------------------------------------------------


@pytest.mark.torch
@QUATS
def test_projected_gravity_is_the_inverse_rotation_of_down(quats: np.ndarray) -> None:
    found = both(projected_gravity, 3, q=quats)
    scale = float(np.max(np.abs(quats)) ** 2 * 4)
    close(found, -matrix(quats)[:, 2, :], scale)
    down = np.tile(np.array([[0.0, 0.0, -1.0]], np.float32), (N, 1))
    close(found, torch_apply(quats, down, inverse=True), scale)
    library_inverse = both(lambda q: quat_apply_inverse(q, (0.0, 0.0, -1.0)), 3, q=quats)
    close(found, library_inverse, scale)


@pytest.mark.parametrize(
    ("quat", "gravity"),
    [
        ([1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0]),  # upright
        ([0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0]),  # upside down (roll 180)
        ([math.sqrt(0.5), math.sqrt(0.5), 0.0, 0.0], [0.0, -1.0, 0.0]),  # roll +90
        ([math.sqrt(0.5), 0.0, math.sqrt(0.5), 0.0], [1.0, 0.0, 0.0]),  # pitch +90 (nose down)
        ([math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)], [0.0, 0.0, -1.0]),  # yaw does not matter
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0]),  # zero quaternion: finite, never NaN
    ],
)
def test_projected_gravity_of_known_poses(quat: list[float], gravity: list[float]) -> None:
    found = both(projected_gravity, 3, q=np.array([quat], np.float32))
    np.testing.assert_allclose(found[0], gravity, atol=1e-6)


def test_projected_gravity_traces_to_the_formula_the_quadruped_always_had() -> None:
    # Four Slices, the polynomial, one Concat: the quadruped's observation graph is unchanged.
    program = stage_program(projected_gravity, {"q": ((4,), "float32")}, {"out": ((3,), "float32")})
    ops = [n.op_type for n in stage_model(program).graph.node if n.op_type != "Constant"]
    assert sorted(set(ops)) == ["Add", "Concat", "Identity", "Mul", "Slice", "Sub"]
    assert ops.count("Slice") == 4 and ops.count("Mul") == 9


# -- quaternion algebra ------------------------------------------------------------------------


@QUATS
def test_quat_mul_is_the_hamilton_product(quats: np.ndarray) -> None:
    other = np.roll(quats, 1, axis=0)
    found = both(quat_mul, 4, a=quats, b=other)
    close(found, hamilton(quats, other), float(np.max(np.abs(quats)) ** 2 * 4))


def test_quat_mul_composes_rotations_b_first() -> None:
    a, b = UNIT, np.roll(UNIT, 3, axis=0)
    ab = both(quat_mul, 4, a=a, b=b).astype(np.float32)
    composed = both(quat_apply, 3, q=ab, vec=VEC)
    close(composed, np.einsum("nij,njk,nk->ni", matrix(a), matrix(b), VEC), 10.0)


@QUATS
def test_quat_conjugate_negates_the_vector_part(quats: np.ndarray) -> None:
    found = both(quat_conjugate, 4, q=quats)
    np.testing.assert_array_equal(found, quats * np.array([1, -1, -1, -1], np.float32))
    identity = hamilton(UNIT, both(quat_conjugate, 4, q=UNIT))
    close(identity, np.tile([1.0, 0.0, 0.0, 0.0], (N, 1)))


# -- heading, yaw, angles ----------------------------------------------------------------------


@QUATS
def test_heading_is_the_yaw_of_the_forward_axis(quats: np.ndarray) -> None:
    found = both(heading, 1, q=quats)
    forward = matrix(quats)[:, :, 0]  # R(q) (1, 0, 0): Isaac Lab's heading_w
    expected = np.arctan2(forward[:, 1], forward[:, 0])[:, None]
    # Near +-pi the two can land on either side: compare the angle, not the number.
    np.testing.assert_allclose(np.sin(found - expected), 0.0, atol=2e-5)
    assert np.all(np.abs(found) <= np.float32(math.pi))


@pytest.mark.parametrize("yaw", [0.0, 0.3, -1.2, 2.9, -2.9, math.pi / 2, -math.pi / 2])
def test_heading_and_yaw_quat_of_a_pure_yaw(yaw: float) -> None:
    q = np.array([[math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]], np.float32)
    np.testing.assert_allclose(both(heading, 1, q=q), [[yaw]], atol=1e-6)
    np.testing.assert_allclose(both(yaw_quat, 4, q=q), q, atol=1e-6)


@QUATS
def test_yaw_quat_keeps_the_heading_and_drops_roll_and_pitch(quats: np.ndarray) -> None:
    found = both(yaw_quat, 4, q=quats)
    forward = matrix(quats)[:, :, 0]
    yaw = np.arctan2(forward[:, 1], forward[:, 0])
    expected = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    # q and -q are one rotation; near yaw = +-pi the half angle flips the sign.
    sign = np.sign(np.sum(found * expected, axis=1, keepdims=True))
    close(found * sign, expected, 10.0)
    np.testing.assert_allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-6)
    assert not found[:, 1:3].any()


def test_atan2_matches_numpy_on_every_quadrant_and_axis() -> None:
    y = np.concatenate([rng.normal(size=400), [0, 0, 0, 1, -1, 1e-8, 5, -5, 1e30, 0]])
    x = np.concatenate([rng.normal(size=400), [0, 1, -1, 0, 0, -1, 1e-30, -1e-30, 1, 1e-30]])
    y, x = y.astype(np.float32)[:, None], x.astype(np.float32)[:, None]
    found = both(atan2, 1, y=y, x=x)
    np.testing.assert_allclose(found, np.arctan2(y, x), rtol=1e-6, atol=1e-6)


@pytest.mark.torch
def test_wrap_to_pi_is_isaac_labs() -> None:
    angles = np.concatenate(
        [
            rng.uniform(-50, 50, size=500),
            np.arange(-7, 8) * math.pi,  # multiples of pi
            [0.0, 1e-7, -1e-7, 3.0, -3.0, 3.2, -3.2, 6.2, 100.0],
        ]
    ).astype(np.float32)[:, None]
    found = both(wrap_to_pi, 1, a=angles)
    np.testing.assert_allclose(found, torch_wrap_to_pi(angles), atol=1e-6)
    assert np.all(np.abs(found) <= np.float32(math.pi))
    np.testing.assert_allclose(np.sin(found), np.sin(angles.astype(np.float64)), atol=2e-5)


@pytest.mark.parametrize(
    ("angle", "wrapped"),
    [(0.0, 0.0), (math.pi, math.pi), (-math.pi, -math.pi), (3 * math.pi, math.pi),
     (-3 * math.pi, -math.pi), (2 * math.pi, 0.0), (1.5 * math.pi, -0.5 * math.pi)],
)  # fmt: skip
def test_wrap_to_pi_known_values(angle: float, wrapped: float) -> None:
    found = both(wrap_to_pi, 1, a=np.array([[angle]], np.float32))
    np.testing.assert_allclose(found, [[wrapped]], atol=1e-6)


def test_the_math_traces_to_plain_onnx_ops() -> None:
    _, _, model = evaluate(
        lambda q: wrap_to_pi(heading(quat_mul(yaw_quat(q), quat_conjugate(q)))),
        {"q": UNIT[:4]},
        {"out": ((1,), "float32")},
    )
    assert op_types(model) <= {
        "Abs", "Add", "And", "Atan", "Concat", "Constant", "Cos", "Div", "Equal", "Greater",
        "Identity", "Less", "Mod", "Mul", "Neg", "Sin", "Slice", "Sub", "Where",
    }  # fmt: skip


# -- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "shape", "dtype", "message"),
    [
        (projected_gravity, (3,), "float32", r"projected_gravity: the quaternion \(w, x, y, z\) "
         r"has shape \[1, 3\]; expected \[\.\.\., 4\]"),
        (heading, (4,), "int32", r"heading: the quaternion \(w, x, y, z\) has dtype int32; "
         r"expected a float"),
        (lambda q: quat_apply(q, (1.0, 0.0)), (4,), "float32", r"quat_apply vector: constant "
         r"\(1\.0, 0\.0\) has shape \[2\]; expected a vector of 3"),
        (lambda q: quat_mul(q, [1.0, 0.0, 0.0, 0.0]), (4,), "float32", None),
    ],
)  # fmt: skip
def test_a_wrong_shape_or_dtype_is_named_at_the_users_line(
    fn: Callable[..., Any], shape: tuple[int, ...], dtype: str, message: str | None
) -> None:
    program = stage_program(fn, {"q": (shape, dtype)}, {"out": ((4,), "float32")})
    if message is None:  # a constant second quaternion is accepted
        stage_model(program)
        return
    with pytest.raises(
        StageError, match=r"apply_actions stage .* at .*(harness|rotations)\.py:\d+"
    ):
        stage_model(program)
    with pytest.raises(StageError, match=message):
        stage_model(program)


def test_parity_holds_with_every_math_function(tmp_path: Any) -> None:
    from compiler import check_parity, compile_program
    from exploy_dsl import Program, clip, term, unscale_action
    from tests._support import mlp_actor

    p = Program("math", decimation=2, sim_dt=0.01)
    base = p.base("robot", "base")  # a unit w_Q_b in the parity stream
    raw = p.input("q", 4)  # any four numbers: a non-unit quaternion
    angle = p.input("angle", 1)
    last = p.memory("last", 2)
    out = p.output("out", 2)

    @p.observations
    def observations(v: Any) -> Any:
        q, r = v[base.orientation], v[raw]
        return [
            term("gravity", projected_gravity(q)),
            term("gravity_raw", projected_gravity(r)),
            term("velocity_b", quat_apply_inverse(q, v[base.lin_vel])),
            term("velocity_w", quat_apply(r, v[base.ang_vel])),
            term("product", quat_mul(q, quat_conjugate(r))),
            term("heading", heading(r)),
            term("yaw", yaw_quat(q)),
            term("wrapped", wrap_to_pi(v[angle] * 10.0)),
            term("last", v[last]),
        ]

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: unscale_action(actions, np.array([-1.0, 0.0]), np.array([1.0, 2.0]))}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {out: clip(v[last], np.array([-0.5, 0.5]), 1.5)}

    actor = mlp_actor(24, 2, seed=3).model
    path = tmp_path / "math.onnx"
    compile_program(p, actor, output=path)
    report = check_parity(path, p, actor, steps=150)
    assert report.ok, report.render()
