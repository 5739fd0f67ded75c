"""twist_swing.py: exact round trips, the defining properties checked against scipy, the 180-degree
flip, degenerate bones, gradients, errors. Seeded sweeps over many rotations, plus hypothesis."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from hybrik_lite import kinematics, twist_swing

F64 = torch.float64
TOL = {torch.float32: 1e-6, torch.float64: 1e-14}   # orthonormality / round trip, per element


def random_rotations_and_bones(n, seed, dtype=F64):
    """Rotations with angles spread over [0, pi] (a third of them within 1e-3 of pi) and bones of
    random directions and lengths from 1e-3 to 1e3."""
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=F64), dim=-1)
    angle = torch.rand(n, 1, generator=g, dtype=F64) * math.pi
    angle[: n // 3] = math.pi - 1e-3 * torch.rand(n // 3, 1, generator=g, dtype=F64)
    bones = torch.randn(n, 3, generator=g, dtype=F64) * 10 ** (6 * torch.rand(n, 1, generator=g, dtype=F64) - 3)
    return kinematics.rodrigues(axis * angle).to(dtype), bones.to(dtype)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def assert_proper(rot, tol):
    rot = rot.double()
    eye = torch.eye(3, dtype=F64)
    assert (rot @ rot.transpose(-1, -2) - eye).abs().max() <= tol
    assert (torch.linalg.det(rot) - 1).abs().max() <= 3 * tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_is_exact(dtype):
    rot, bones = random_rotations_and_bones(20000, seed=0, dtype=dtype)
    swing, angle = twist_swing.decompose(rot, bones)
    back = twist_swing.compose(swing, angle, bones)
    assert back.dtype == dtype and swing.shape == rot.shape and angle.shape == rot.shape[:-2]
    assert (back.double() - rot.double()).abs().max() <= 4 * TOL[dtype]
    assert_proper(swing, TOL[dtype])
    assert_proper(back, TOL[dtype])


def test_swing_and_twist_have_their_defining_properties():
    """swing: u -> R u about an axis perpendicular to u, by the angle between them (scipy);
    twist = swing^T R: a rotation about u by the returned angle (scipy)."""
    rot, bones = random_rotations_and_bones(20000, seed=1)
    swing, angle = twist_swing.decompose(rot, bones)
    u = unit(bones)
    v = (rot @ u[..., None])[..., 0]
    assert ((swing @ u[..., None])[..., 0] - v).abs().max() < 1e-14
    swing_vec = torch.from_numpy(Rotation.from_matrix(swing.numpy()).as_rotvec())
    between = torch.atan2(torch.linalg.cross(u, v, dim=-1).norm(dim=-1), (u * v).sum(-1))
    assert (swing_vec.norm(dim=-1) - between).abs().max() < 1e-9
    assert (swing_vec * u).sum(-1).abs().max() < 1e-9                     # axis perpendicular to the bone
    twist = swing.transpose(-1, -2) @ rot
    expected = torch.from_numpy(Rotation.from_rotvec((u * angle[:, None]).numpy()).as_matrix())
    assert (twist - expected).abs().max() < 1e-12


def test_compose_then_decompose_recovers_swing_and_twist():
    g = torch.Generator().manual_seed(2)
    n = 20000
    bones = torch.randn(n, 3, generator=g, dtype=F64)
    axis = unit(torch.linalg.cross(bones, torch.randn(n, 3, generator=g, dtype=F64), dim=-1))
    swing_angle = (math.pi - 1e-3) * torch.rand(n, 1, generator=g, dtype=F64)
    swing = kinematics.rodrigues(axis * swing_angle)
    twist = (2 * torch.rand(n, generator=g, dtype=F64) - 1) * (math.pi - 1e-9)
    swing2, twist2 = twist_swing.decompose(twist_swing.compose(swing, twist, bones), bones)
    assert (swing2 - swing).abs().max() < 1e-11      # conditioning 1 / (pi - angle) <= 1e3
    assert (twist2 - twist).abs().max() < 1e-11


def test_twist_sign_follows_the_right_hand_rule_about_the_bone():
    bones = torch.tensor([[0.0, 2.0, 0.0], [-3.0, 0.0, 0.0], [1.0, -1.0, 2.0]], dtype=F64)
    for angle in (0.3, -1.2, 3.0):
        rot = torch.from_numpy(Rotation.from_rotvec(unit(bones).numpy() * angle).as_matrix())
        swing, got = twist_swing.decompose(rot, bones)
        assert torch.allclose(got, torch.full((3,), angle, dtype=F64), atol=1e-14)
        assert torch.allclose(swing, torch.eye(3, dtype=F64).expand(3, 3, 3), atol=1e-14)


def test_flip_by_180_degrees_uses_the_documented_axis():
    """R u = -u: every perpendicular axis is a smallest rotation; perpendicular(u) is used."""
    e = torch.eye(3, dtype=F64)
    assert torch.equal(twist_swing.perpendicular(e[1]), -e[2])       # y x x = -z
    assert torch.equal(twist_swing.perpendicular(e[0]), e[2])        # x x y = +z
    assert torch.equal(twist_swing.perpendicular(-e[2]), -e[1])      # -z x x = -y
    g = torch.Generator().manual_seed(3)
    bones = torch.randn(5000, 3, generator=g, dtype=F64) * 3
    perp = twist_swing.perpendicular(bones)
    assert (perp.norm(dim=-1) - 1).abs().max() < 1e-15 and (perp * unit(bones)).sum(-1).abs().max() < 1e-15
    # exactly antiparallel directions: a half turn about perpendicular(u)
    swing = twist_swing.swing_rotation(bones, -2 * bones)
    half_turn = kinematics.rodrigues(math.pi * perp)
    assert (swing - half_turn).abs().max() < 1e-14
    # rotations that flip the bone (up to rounding): swing about perpendicular(u), exact round trip
    other = unit(torch.linalg.cross(bones, torch.randn(5000, 3, generator=g, dtype=F64), dim=-1))
    flip = kinematics.rodrigues(math.pi * other)
    swing, angle = twist_swing.decompose(flip, bones)
    assert (swing @ unit(bones)[..., None] + unit(bones)[..., None]).abs().max() < 1e-14
    assert (twist_swing.compose(swing, angle, bones) - flip).abs().max() < 1e-14
    exact = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=F64)  # half turn about x, bone +y
    swing, angle = twist_swing.decompose(exact, e[1])
    assert torch.allclose(swing, kinematics.rodrigues(math.pi * -e[2]), atol=1e-15)
    assert abs(abs(angle.item()) - math.pi) < 1e-15
    assert torch.allclose(twist_swing.compose(swing, angle, e[1]), exact, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_swing_rotation_maps_directions_and_stays_orthonormal_near_the_flip(dtype):
    g = torch.Generator().manual_seed(4)
    n = 20000
    u = unit(torch.randn(n, 3, generator=g, dtype=F64))
    away = unit(torch.linalg.cross(u, torch.randn(n, 3, generator=g, dtype=F64), dim=-1))
    gap = 10 ** (-12 * torch.rand(n, 1, generator=g, dtype=F64))            # pi - angle in [1e-12, 1]
    v = -u * torch.cos(gap) + away * torch.sin(gap)
    swing = twist_swing.swing_rotation(u.to(dtype), v.to(dtype))
    mapped = (swing.double() @ u.to(dtype).double()[..., None])[..., 0]
    # R u = v to a few eps even where the axis is ill-conditioned
    assert (mapped - v.to(dtype).double()).abs().max() < 8 * torch.finfo(dtype).eps
    assert_proper(swing, TOL[dtype])


def test_degenerate_bones_and_directions():
    rot = kinematics.rodrigues(torch.tensor([[0.3, -0.2, 0.5]], dtype=F64))
    zero = torch.zeros(1, 3, dtype=F64)
    y = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64)
    # a zero bone stands for the y axis
    for got, want in zip(twist_swing.decompose(rot, zero), twist_swing.decompose(rot, y)):
        assert torch.equal(got, want)
    # no target direction: identity swing
    assert torch.allclose(twist_swing.swing_rotation(y, zero), torch.eye(3, dtype=F64))
    # tiny and huge vectors are normalised without underflow / overflow
    for scale in (1e-300, 1e-30, 1e30, 1e300):
        s1 = twist_swing.swing_rotation(y * scale, torch.tensor([[1.0, 1, 0]], dtype=F64) * scale)
        assert torch.allclose(s1, kinematics.rodrigues(torch.tensor([[0, 0, -math.pi / 4]], dtype=F64)), atol=1e-15)
    # (cos, sin) pairs need not be unit; (0, 0) is angle 0
    t1 = twist_swing.twist_rotation(y, torch.tensor([3.0], dtype=F64), torch.tensor([4.0], dtype=F64))
    assert torch.allclose(t1, kinematics.rodrigues(y * math.atan2(4, 3)), atol=1e-15)
    t0 = twist_swing.twist_rotation(y, torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64))
    assert torch.equal(t0, torch.eye(3, dtype=F64)[None])


def test_gradients_are_correct_and_finite_at_the_degenerate_points():
    g = torch.Generator().manual_seed(5)
    rot = kinematics.rodrigues(torch.randn(4, 3, generator=g, dtype=F64))
    bones = torch.randn(4, 3, generator=g, dtype=F64).requires_grad_()
    aa = torch.randn(4, 3, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: twist_swing.decompose(kinematics.rodrigues(a), b), (aa, bones))
    swing = kinematics.rodrigues(unit(torch.linalg.cross(bones.detach(), torch.randn(4, 3, dtype=F64), dim=-1)))
    angle = torch.randn(4, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(twist_swing.compose, (swing.requires_grad_(), angle, bones))
    u = torch.randn(3, 3, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(twist_swing.swing_rotation, (u, u.detach().clone().requires_grad_()))  # identity
    assert torch.autograd.gradcheck(twist_swing.swing_rotation, (u, torch.randn(3, 3, dtype=F64).requires_grad_()))
    # finite (not NaN) where the result is defined by a fallback: flip, zero vectors, zero pair
    for a, b in [(u.detach(), -u.detach()), (torch.zeros(3, 3, dtype=F64), u.detach()),
                 (u.detach(), torch.zeros(3, 3, dtype=F64))]:
        a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
        twist_swing.swing_rotation(a, b).sum().backward()
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    c, s = torch.zeros(3, dtype=F64, requires_grad=True), torch.zeros(3, dtype=F64, requires_grad=True)
    twist_swing.twist_rotation(u.detach(), c, s).sum().backward()
    assert torch.isfinite(c.grad).all() and torch.isfinite(s.grad).all()
    flip = kinematics.rodrigues(math.pi * twist_swing.perpendicular(u.detach())).requires_grad_()
    swing, angle = twist_swing.decompose(flip, u.detach())
    (swing.sum() + angle.sum()).backward()
    assert torch.isfinite(flip.grad).all()


def test_leading_dimensions_broadcast():
    g = torch.Generator().manual_seed(6)
    rot = kinematics.rodrigues(torch.randn(7, 23, 3, generator=g, dtype=F64))
    bones = torch.randn(23, 3, generator=g, dtype=F64)
    swing, angle = twist_swing.decompose(rot, bones)
    swing1, angle1 = twist_swing.decompose(rot[3], bones)
    assert swing.shape == (7, 23, 3, 3) and angle.shape == (7, 23)
    assert torch.equal(swing[3], swing1) and torch.equal(angle[3], angle1)


def test_bad_input_raises_clear_errors():
    rot, bones = torch.eye(3).expand(4, 3, 3), torch.ones(4, 3)
    with pytest.raises(ValueError, match=r"rot_mats must have shape"):
        twist_swing.decompose(torch.eye(4), bones)
    with pytest.raises(ValueError, match=r"bones must have shape"):
        twist_swing.decompose(rot, torch.ones(4, 2))
    with pytest.raises(ValueError, match=r"float64 but rot_mats is torch.float32"):
        twist_swing.decompose(rot, bones.double())
    with pytest.raises(ValueError, match=r"float32 or float64"):
        twist_swing.decompose(rot, torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"broadcastable"):
        twist_swing.decompose(rot, torch.ones(5, 3))
    with pytest.raises(ValueError, match=r"torch.Tensor"):
        twist_swing.compose(np.eye(3), torch.zeros(()), torch.ones(3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-4.0, 4.0), min_size=3, max_size=3),
       st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3).filter(lambda b: max(map(abs, b)) > 1e-6))
def test_hypothesis_round_trip_and_properness(axis_angle, bone):
    rot = kinematics.rodrigues(torch.tensor(axis_angle, dtype=F64))
    bone = torch.tensor(bone, dtype=F64)
    swing, angle = twist_swing.decompose(rot, bone)
    assert (twist_swing.compose(swing, angle, bone) - rot).abs().max() < 1e-13
    assert_proper(swing, 1e-14)
    assert -math.pi <= angle.item() <= math.pi
    u = unit(bone)
    assert ((swing @ u) - rot @ u).abs().max() < 1e-14


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    rot, bones = random_rotations_and_bones(4096, seed=7, dtype=dtype)
    swing, angle = twist_swing.decompose(rot.cuda(), bones.cuda())
    assert swing.device.type == "cuda" and angle.device.type == "cuda"
    ref_swing, ref_angle = twist_swing.decompose(rot, bones)
    assert (swing.cpu() - ref_swing).abs().max() < 1e3 * torch.finfo(dtype).eps  # near-pi rows amplify
    back = twist_swing.compose(swing, angle, bones.cuda())
    assert (back.cpu().double() - rot.double()).abs().max() <= 4 * TOL[dtype]
