"""ik.py: exact recovery over seeded sweeps of poses and shapes (float64 and float32), the
level-by-level solver against the joint-by-joint loop, every degenerate input, the 180-degree swing
measured, gradients, the detach option, errors."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hybrik_lite import body_model, ik, kinematics, metrics, skeleton, twist_swing

F64 = torch.float64
PARENTS = skeleton.PARENTS
CHILD = skeleton.BONE_CHILD
EYE = torch.eye(3, dtype=F64)

# --- skeletons and poses -----------------------------------------------------------------------
# A generic SMPL-like skeleton (parent -> joint offsets, metres), jittered per sample, widens the
# range of bone directions beyond what the body model's shape space produces.
_OFFSETS = {1: (0.07, -0.09, 0), 2: (-0.07, -0.09, 0), 3: (0, 0.11, -0.02), 4: (0.03, -0.38, 0),
            5: (-0.03, -0.38, 0), 6: (0, 0.13, 0.01), 7: (-0.01, -0.4, -0.04), 8: (0.01, -0.4, -0.04),
            9: (0, 0.05, 0.02), 10: (0.02, -0.06, 0.12), 11: (-0.02, -0.06, 0.12), 12: (0, 0.21, -0.03),
            13: (0.07, 0.11, -0.01), 14: (-0.07, 0.11, -0.01), 15: (0, 0.09, 0.05), 16: (0.12, 0.04, -0.01),
            17: (-0.12, 0.04, -0.01), 18: (0.26, -0.01, -0.02), 19: (-0.26, -0.01, -0.02),
            20: (0.25, 0.01, 0), 21: (-0.25, 0.01, 0), 22: (0.08, -0.01, -0.01), 23: (-0.08, -0.01, -0.01),
            24: (0, 0.12, 0.01), 25: (0.1, -0.01, 0), 26: (-0.1, -0.01, 0), 27: (0.01, -0.03, 0.06),
            28: (-0.01, -0.03, 0.06)}


@pytest.fixture(scope="module")
def bm():
    return body_model.load().double()


def generic_skeletons(n, g, jitter=0.15):
    base = torch.tensor([_OFFSETS[j] for j in range(1, 29)], dtype=F64)
    scale = 0.8 + 0.4 * torch.rand(n, 1, 1, generator=g, dtype=F64)
    offsets = base * scale * (1 + jitter * (2 * torch.rand(n, 28, 1, generator=g, dtype=F64) - 1))
    offsets = offsets + jitter / 3 * base.norm(dim=-1, keepdim=True) * torch.randn(n, 28, 3, generator=g, dtype=F64)
    joints = [torch.tensor([0.0, -0.22, 0.02], dtype=F64) + 0.02 * torch.randn(n, 3, generator=g, dtype=F64)]
    for j in range(1, 29):
        joints.append(joints[PARENTS[j]] + offsets[:, j - 1])
    return torch.stack(joints, 1)


def skeletons(n, g, bm):
    """Half body-model shapes (betas ~ N(0, 1.5^2)), half jittered generic skeletons."""
    half = n // 2
    with torch.no_grad():
        shaped = bm.rest_joints(1.5 * torch.randn(half, bm.num_betas, generator=g, dtype=F64))
    return torch.cat([shaped, generic_skeletons(n - half, g)], 0)


def poses(n, g, kind):
    """Local rotations (n, 24, 3, 3). moderate: N(0, 0.3) rad per axis; large: N(0, 1);
    near_pi: N(0, 0.5), and each joint with probability 0.2 turned by pi - U(0, 1e-3) about a
    random axis. The root always gets a uniformly random orientation."""
    scale = {"moderate": 0.3, "large": 1.0, "near_pi": 0.5}[kind]
    aa = torch.randn(n, 24, 3, generator=g, dtype=F64) * scale
    if kind == "near_pi":
        axis = torch.nn.functional.normalize(torch.randn(n, 24, 3, generator=g, dtype=F64), dim=-1)
        angle = math.pi - 1e-3 * torch.rand(n, 24, 1, generator=g, dtype=F64)
        pick = torch.rand(n, 24, 1, generator=g) < 0.2
        aa = torch.where(pick, axis * angle, aa)
    root_axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=F64), dim=-1)
    aa[:, 0] = root_axis * math.pi * torch.rand(n, 1, generator=g, dtype=F64)
    return kinematics.rodrigues(aa)


def targets_of(rot_mats, rest, g=None, translate=0.0):
    joints, _ = kinematics.forward_kinematics(rot_mats, rest, PARENTS)
    if translate:
        joints = joints + translate * torch.randn(joints.shape[0], 1, 3, generator=g, dtype=F64)
    return joints


def joint_error_mm(rot_mats, rest, joints):
    """|FK(rot_mats) - targets| in mm per joint, both root-aligned (solve poses the skeleton about the
    rest root), in float64."""
    posed, _ = kinematics.forward_kinematics(rot_mats.double(), rest.double(), PARENTS)
    return metrics.joint_errors(posed, joints.double(), align="root") * 1000


rotation_error_deg = metrics.rotation_angles_deg


def swing_margin(rot_mats, rest):
    """pi minus each joint's swing angle (B, 23): how far from the 180-degree singularity."""
    bones = rest[:, [CHILD[j] for j in range(1, 24)]] - rest[:, 1:24]
    u = bones / bones.norm(dim=-1, keepdim=True)
    v = (rot_mats[:, 1:] @ u[..., None])[..., 0]
    return math.pi - torch.atan2(torch.linalg.cross(u, v, dim=-1).norm(dim=-1), (u * v).sum(-1))


def orthonormality(rot_mats):
    r = rot_mats.double()
    return (r @ r.transpose(-1, -2) - EYE).abs().max().item(), (torch.linalg.det(r) - 1).abs().max().item()


# --- exact recovery ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ik.MODES)
@pytest.mark.parametrize("kind", ["moderate", "large", "near_pi"])
def test_float64_recovers_joints_and_rotations_exactly(bm, mode, kind):
    """twist_from_pose then solve is the identity on poses: joints to 1e-9 mm, rotations to
    1e-9 degrees, for 2,000 poses and shapes per kind, with the targets anywhere in space."""
    g = torch.Generator().manual_seed(ik.MODES.index(mode) * 10 + ["moderate", "large", "near_pi"].index(kind))
    n = 2000
    rest = skeletons(n, g, bm)
    rot = poses(n, g, kind)
    joints = targets_of(rot, rest, g, translate=2.0)
    phi = ik.twist_from_pose(rot, rest)
    got = ik.solve(joints, phi, rest, mode=mode)
    assert got.shape == (n, 24, 3, 3) and got.dtype == F64
    err = joint_error_mm(got, rest, joints)
    assert err.max() <= 1e-9, f"max joint error {err.max():.3g} mm"
    rot_err = rotation_error_deg(got, rot).amax(1)
    # Local rotations are ill-conditioned near a 180-degree swing (error ~ eps / (pi - swing), compounding
    # down a chain of such joints); the 1e-9 degree bound holds for every pose 0.05 rad away from it.
    clear = swing_margin(rot, rest).amin(1) >= 0.05
    assert clear.float().mean() > (0.5 if kind == "near_pi" else 0.95)
    assert rot_err[clear].max() <= 1e-9, f"max rotation error {rot_err[clear].max():.3g} deg"
    assert rot_err.max() <= 1e-5
    orth, det = orthonormality(got)
    assert orth < 1e-14 and det < 1e-14


@pytest.mark.parametrize("mode", ik.MODES)
def test_float32_moderate_poses_reach_a_micrometre(bm, mode):
    """float32, N(0, 0.3) poses: FK (in float32) of the IK result reproduces the float32 targets to
    <= 1e-3 mm (a micrometre), and to <= 3e-4 mm (adaptive; naive 4e-4 mm on these wide skeletons) with
    FK in float64 (the IK's own error, without FK's rounding); outputs orthonormal to 1e-6."""
    g = torch.Generator().manual_seed(11)
    n = 4000
    rest = skeletons(n, g, bm)
    rot = poses(n, g, "moderate")
    joints = targets_of(rot, rest)
    phi = ik.twist_from_pose(rot, rest)
    j32, p32, r32 = joints.float(), phi.float(), rest.float()
    got = ik.solve(j32, p32, r32, mode=mode)
    assert got.dtype == torch.float32
    posed, _ = kinematics.forward_kinematics(got, r32, PARENTS)                # FK in float32 too
    err = (posed.double() - (j32.double() - j32.double()[:, :1] + r32.double()[:, :1])).norm(dim=-1) * 1000
    rot_err = rotation_error_deg(got, rot)
    orth, det = orthonormality(got)
    print(f"\nfloat32 {mode}: joints max {err.max():.2e} mean {err.mean():.2e} mm; "
          f"rotations max {rot_err.max():.2e} mean {rot_err.mean():.2e} deg; |RR^T-I| {orth:.1e}")
    assert err.max() <= 1e-3
    own = joint_error_mm(got, r32, j32)       # FK in float64 of the returned rotations: the IK's own error
    assert own.max() <= (3e-4 if mode == "adaptive" else 4e-4), f"{own.max():.2e} mm"
    assert rot_err.max() <= 1e-2 and rot_err.mean() <= 1e-4
    assert orth <= 1e-6 and det <= 1e-6


def test_body_model_poses_are_recovered(bm):
    """Targets from the body model itself (mesh-regressed joints, leaf vertices)."""
    g = torch.Generator().manual_seed(12)
    n = 256
    betas = torch.randn(n, bm.num_betas, generator=g, dtype=F64)
    rot = poses(n, g, "large")
    with torch.no_grad():
        out = bm(betas, rot)
    phi = ik.twist_from_pose(rot, out.rest_joints)
    got = ik.solve(out.joints, phi, out.rest_joints)
    assert joint_error_mm(got, out.rest_joints, out.joints).max() <= 1e-9
    clear = swing_margin(rot, out.rest_joints).amin(1) >= 0.05
    assert rotation_error_deg(got, rot)[clear].max() <= 1e-9
    # the same figure from SciPy's quaternions, an independent measure of the angle
    diff = Rotation.from_matrix(got[clear].reshape(-1, 3, 3).numpy()).inv() * Rotation.from_matrix(
        rot[clear].reshape(-1, 3, 3).numpy())
    assert np.degrees(diff.magnitude()).max() <= 1e-9


def test_level_by_level_matches_joint_by_joint(bm):
    g = torch.Generator().manual_seed(13)
    rest = skeletons(300, g, bm)
    rot = poses(300, g, "large")
    joints = targets_of(rot, rest) + 0.02 * torch.randn(300, 29, 3, generator=g, dtype=F64)  # noisy
    phi = torch.randn(300, 23, 2, generator=g, dtype=F64)                                   # unnormalised
    for mode in ik.MODES:
        a = ik.solve(joints, phi, rest, mode=mode)
        b = ik.solve_joint_by_joint(joints, phi, rest, mode=mode)
        assert (a - b).abs().max() < 1e-9
    assert len(ik.LEVELS) == 8 and sorted(j for level in ik.LEVELS for j in level) == list(range(1, 24))


def test_translation_is_removed_and_modes_agree_on_exact_targets(bm):
    g = torch.Generator().manual_seed(14)
    rest = skeletons(200, g, bm)
    rot = poses(200, g, "moderate")
    joints = targets_of(rot, rest)
    phi = ik.twist_from_pose(rot, rest)
    base = ik.solve(joints, phi, rest)
    moved = ik.solve(joints + torch.tensor([3.0, -1.0, 7.0], dtype=F64), phi, rest)
    assert (base - moved).abs().max() < 1e-12
    assert (base - ik.solve(joints, phi, rest, mode="naive")).abs().max() < 1e-12


def test_adaptive_absorbs_noise_better_than_naive(bm):
    """10 mm Gaussian noise on the targets: mean joint error after IK (vs the noise-free joints)."""
    g = torch.Generator().manual_seed(15)
    n = 2000
    rest = skeletons(n, g, bm)
    rot = poses(n, g, "moderate")
    clean = targets_of(rot, rest)
    noisy = clean + 0.010 * torch.randn(clean.shape, generator=g, dtype=F64)
    phi = ik.twist_from_pose(rot, rest)
    mean_err = {}
    for mode in ik.MODES:
        got = ik.solve(noisy, phi, rest, mode=mode)
        posed, _ = kinematics.forward_kinematics(got, rest, PARENTS)
        ref = clean - clean[:, :1] + rest[:, :1]
        mean_err[mode] = ((posed - ref).norm(dim=-1) * 1000).mean().item()
    print(f"\n10 mm noise, mean joint error: adaptive {mean_err['adaptive']:.1f} mm, naive {mean_err['naive']:.1f} mm")
    assert mean_err["adaptive"] < mean_err["naive"]


# --- the 180-degree swing ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_swing_near_180_degrees_keeps_the_child_on_target(dtype):
    """One joint per pose swings by pi - delta. The child it aims at stays on target (to the float32
    figure of moderate poses); its local rotation is ill-conditioned, error <~ eps / delta."""
    g = torch.Generator().manual_seed(16)
    n = 1000
    rest = generic_skeletons(n, g)
    eps = torch.finfo(dtype).eps
    rows = torch.arange(n)
    for delta in (1e-1, 1e-3, 1e-5, 1e-7, 0.0):
        rot = kinematics.rodrigues(0.3 * torch.randn(n, 24, 3, generator=g, dtype=F64))
        joint = torch.randint(1, 24, (n,), generator=g)
        child = torch.tensor(CHILD)[joint]
        bones = rest[rows, child] - rest[rows, joint]
        axis = torch.nn.functional.normalize(torch.linalg.cross(bones, torch.randn(n, 3, generator=g, dtype=F64),
                                                                dim=-1), dim=-1)
        swing = kinematics.rodrigues(axis * (math.pi - delta))
        rot[rows, joint] = twist_swing.compose(swing, math.pi * (2 * torch.rand(n, generator=g, dtype=F64) - 1), bones)
        joints = targets_of(rot, rest)
        phi = ik.twist_from_pose(rot, rest)
        got = ik.solve(joints.to(dtype), phi.to(dtype), rest.to(dtype))
        err = joint_error_mm(got, rest.to(dtype), joints.to(dtype))
        assert err[rows, child].max() <= (1e-3 if dtype == torch.float32 else 1e-9)
        orth, det = orthonormality(got)
        assert orth <= (1e-6 if dtype == torch.float32 else 1e-14)
        if delta > 0:
            rot_err = torch.deg2rad(rotation_error_deg(got[rows, joint], rot[rows, joint]))
            assert rot_err.max() <= 2e3 * eps / delta + 1e3 * eps


# --- degenerate inputs ---------------------------------------------------------------------------
def _case(name, g, bm):
    """Inputs for one degenerate case (float64, B=4)."""
    rest = skeletons(4, g, bm)
    rot = poses(4, g, "moderate")
    joints = targets_of(rot, rest)
    phi = ik.twist_from_pose(rot, rest)
    if name == "antiparallel_bone":                      # knee target flipped through the hip
        joints = rest.clone()
        joints[:, 4] = 2 * rest[:, 1] - rest[:, 4]
    elif name == "zero_target_bone":                     # knee on the hip
        joints = joints.clone()
        joints[:, 4] = joints[:, 1]
    elif name == "zero_rest_bone":
        rest = rest.clone()
        rest[:, 4] = rest[:, 1]
    elif name == "root_children_on_root":
        joints = joints.clone()
        joints[:, 1:4] = joints[:, :1]
    elif name == "root_children_coincident":
        joints = joints.clone()
        joints[:, 1:4] = joints[:, :1] + torch.tensor([0.05, 0.1, 0.0], dtype=F64)
    elif name == "root_children_collinear":
        line = torch.tensor([0.3, 0.5, -0.2], dtype=F64)
        joints = joints.clone()
        joints[:, 1:4] = joints[:, :1] + torch.tensor([1.0, -2.0, 0.5], dtype=F64)[:, None] * line
    elif name == "zero_phi":
        phi = torch.zeros_like(phi)
    elif name == "unnormalised_phi":
        phi = phi * torch.tensor([1e-30, 1e-3, 7.0, 1e30], dtype=F64)[:, None, None]
    elif name == "all_zero":
        joints, phi = torch.zeros_like(joints), torch.zeros_like(phi)
    elif name == "random_targets":
        joints = torch.randn(joints.shape, generator=g, dtype=F64)
        phi = torch.randn(phi.shape, generator=g, dtype=F64)
    elif name == "huge_targets":
        joints = joints * 1e30
    elif name == "tiny_targets":
        joints = joints * 1e-30
    return joints, phi, rest


CASES = ["antiparallel_bone", "zero_target_bone", "zero_rest_bone", "root_children_on_root",
         "root_children_coincident", "root_children_collinear", "zero_phi", "unnormalised_phi", "all_zero",
         "random_targets", "huge_targets", "tiny_targets"]


@pytest.mark.parametrize("case", CASES)
def test_degenerate_inputs_give_proper_rotations_and_finite_gradients(bm, case):
    g = torch.Generator().manual_seed(CASES.index(case))
    joints, phi, rest = _case(case, g, bm)
    for dtype in (torch.float32, torch.float64):
        for mode in ik.MODES:
            inputs = [x.to(dtype).clone().requires_grad_() for x in (joints, phi, rest)]
            got = ik.solve(*inputs, mode=mode)
            orth, det = orthonormality(got)
            tol = 1e-6 if dtype == torch.float32 else 1e-14
            assert orth <= tol and det <= tol, (dtype, mode, orth, det)
            (got * torch.linspace(-1, 1, 9, dtype=dtype).reshape(3, 3)).sum().backward()
            for x in inputs:
                assert torch.isfinite(x.grad).all(), (dtype, mode)


def test_degenerate_cases_behave_as_documented(bm):
    g = torch.Generator().manual_seed(20)
    # antiparallel: the knee lands on its flipped target, by a half turn about perpendicular(rest bone)
    joints, phi, rest = _case("antiparallel_bone", g, bm)
    got = ik.solve(joints, phi, rest)
    assert joint_error_mm(got, rest, joints)[:, 4].max() < 1e-9
    bone = rest[:, 4] - rest[:, 1]
    half_turn = kinematics.rodrigues(math.pi * twist_swing.perpendicular(bone))
    twist = twist_swing.twist_rotation(bone, phi[:, 0, 0], phi[:, 0, 1])
    assert (got[:, 1] - half_turn @ twist).abs().max() < 1e-12
    # zero-length target bone: no swing, the twist alone
    joints, phi, rest = _case("zero_target_bone", g, bm)
    got = ik.solve(joints, phi, rest, mode="naive")
    twist = twist_swing.twist_rotation(rest[:, 4] - rest[:, 1], phi[:, 0, 0], phi[:, 0, 1])
    assert (got[:, 1] - twist).abs().max() < 1e-14
    # all root children on the root: identity root
    joints, phi, rest = _case("root_children_on_root", g, bm)
    assert (ik.solve(joints, phi, rest)[:, 0] - EYE).abs().max() == 0
    # collinear root children: the rest principal direction is turned onto the target line
    joints, phi, rest = _case("root_children_collinear", g, bm)
    root = ik.solve(joints, phi, rest)[:, 0]
    offsets = rest[:, 1:4] - rest[:, :1]
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    rest_dir = (weights[None, :, None] * offsets).sum(1)          # S v1 for targets w_k * line
    line = torch.nn.functional.normalize(torch.tensor([0.3, 0.5, -0.2], dtype=F64), dim=0)
    turned = torch.nn.functional.normalize((root @ rest_dir[..., None])[..., 0], dim=-1)
    assert (turned - line).abs().max() < 1e-12
    # phi: scale-free, and (0, 0) means no twist
    joints, phi, rest = _case("unnormalised_phi", g, bm)
    unit_phi = phi / phi.norm(dim=-1, keepdim=True)
    assert (ik.solve(joints, phi, rest) - ik.solve(joints, unit_phi, rest)).abs().max() < 1e-14
    no_twist = torch.zeros_like(phi)
    no_twist[..., 0] = 1
    assert torch.equal(ik.solve(joints, torch.zeros_like(phi), rest), ik.solve(joints, no_twist, rest))


# --- gradients -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ik.MODES)
def test_gradcheck(bm, mode):
    g = torch.Generator().manual_seed(21)
    rest = skeletons(2, g, bm)[1:]                  # one generic skeleton
    rot = kinematics.rodrigues(0.5 * torch.randn(1, 24, 3, generator=g, dtype=F64))
    joints = targets_of(rot, rest) + 0.01 * torch.randn(1, 29, 3, generator=g, dtype=F64)
    phi = 1.3 * ik.twist_from_pose(rot, rest)
    inputs = [x.clone().requires_grad_() for x in (joints, phi, rest)]
    assert torch.autograd.gradcheck(lambda j, p, r: ik.solve(j, p, r, mode=mode), inputs)


def test_gradcheck_root_and_twist_from_pose():
    g = torch.Generator().manual_seed(22)
    rest_offsets = torch.randn(3, 3, 3, generator=g, dtype=F64).requires_grad_()
    target_offsets = torch.randn(3, 3, 3, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(ik.root_rotation, (rest_offsets, target_offsets))
    coplanar = rest_offsets.detach().clone()
    coplanar[..., 2] = 0                                          # rank 2, as on real bodies
    assert torch.autograd.gradcheck(ik.root_rotation, (coplanar.requires_grad_(), target_offsets))
    rot = kinematics.rodrigues(torch.randn(1, 24, 3, generator=g, dtype=F64)).requires_grad_()
    rest = generic_skeletons(1, g).requires_grad_()
    assert torch.autograd.gradcheck(ik.twist_from_pose, (rot, rest))


def test_detach_targets_cuts_only_the_gradient_to_the_joints(bm):
    g = torch.Generator().manual_seed(23)
    rest = skeletons(4, g, bm)
    rot = poses(4, g, "moderate")
    joints = targets_of(rot, rest) + 0.01 * torch.randn(4, 29, 3, generator=g, dtype=F64)
    phi = ik.twist_from_pose(rot, rest)
    grads = {}
    for detach in (False, True):
        inputs = [x.clone().requires_grad_() for x in (joints, phi, rest)]
        out = ik.solve(*inputs, detach_targets=detach)
        (out * torch.arange(9, dtype=F64).reshape(3, 3)).sum().backward()
        grads[detach] = [x.grad for x in inputs]
        assert torch.isfinite(out).all()
    assert grads[True][0] is None and grads[False][0].abs().max() > 0
    assert torch.equal(grads[True][1], grads[False][1])           # phi
    assert grads[True][2].abs().max() > 0                          # rest joints still get gradients
    assert torch.equal(ik.solve(joints, phi, rest, detach_targets=True), ik.solve(joints, phi, rest))


# --- errors and devices --------------------------------------------------------------------------
# --- the opt-in fused kernel (compiled=True) -------------------------------------------------------
@pytest.mark.parametrize("kind", ["moderate", "large", "near_pi"])
def test_compiled_kernel_matches_the_plain_solver(bm, kind):
    """solve(..., compiled=True) is the same IK: float64 results agree with the plain solver to 1e-12 away
    from 180-degree swings (both reach the targets to 1e-9 mm everywhere), float32 results reach the targets
    as closely as the plain solver's (within 1.5 times its error, which is below 2e-3 mm)."""
    g = torch.Generator().manual_seed(40 + ["moderate", "large", "near_pi"].index(kind))
    n = 300
    rest = skeletons(n, g, bm)
    rot = poses(n, g, kind)
    joints = targets_of(rot, rest, g, translate=1.0)
    phi = ik.twist_from_pose(rot, rest)
    clear = swing_margin(rot, rest).amin(1) >= 0.05
    for mode in ik.MODES:
        plain, fused = ik.solve(joints, phi, rest, mode=mode), ik.solve(joints, phi, rest, mode=mode, compiled=True)
        assert fused.dtype == F64 and fused.shape == plain.shape
        assert (fused - plain)[clear].abs().max() <= 1e-12
        assert joint_error_mm(fused, rest, joints).max() <= 1e-9
        assert max(orthonormality(fused)) <= 1e-14
        j32, p32, r32 = joints.float(), phi.float(), rest.float()
        plain32, fused32 = ik.solve(j32, p32, r32, mode=mode), ik.solve(j32, p32, r32, mode=mode, compiled=True)
        assert fused32.dtype == torch.float32
        err_plain, err_fused = joint_error_mm(plain32, rest, joints), joint_error_mm(fused32, rest, joints)
        # (near a 180-degree swing, float32 side branches are only good to ~eps / (pi - swing) in both)
        assert err_plain[clear].max() <= 2e-3 and err_fused[clear].max() <= 1.5 * err_plain[clear].max()
        assert max(orthonormality(fused32)) <= 1e-6


@pytest.mark.parametrize("case", CASES)
def test_compiled_kernel_handles_the_degenerate_inputs(bm, case):
    """Every degenerate input: the fused kernel gives the plain solver's rotations (float64)."""
    g = torch.Generator().manual_seed(CASES.index(case))
    joints, phi, rest = _case(case, g, bm)
    for mode in ik.MODES:
        plain, fused = ik.solve(joints, phi, rest, mode=mode), ik.solve(joints, phi, rest, mode=mode, compiled=True)
        assert max(orthonormality(fused)) <= 1e-14
        assert (fused - plain).abs().max() <= 1e-9, case


@pytest.mark.parametrize("mode", ik.MODES)
def test_compiled_kernel_gradients(bm, mode):
    """gradcheck in float64, and the gradients equal the plain solver's (its backward differentiates it)."""
    g = torch.Generator().manual_seed(23)
    rest = skeletons(2, g, bm)[1:]
    rot = kinematics.rodrigues(0.5 * torch.randn(1, 24, 3, generator=g, dtype=F64))
    joints = targets_of(rot, rest) + 0.01 * torch.randn(1, 29, 3, generator=g, dtype=F64)
    phi = 1.3 * ik.twist_from_pose(rot, rest)
    inputs = [x.clone().requires_grad_() for x in (joints, phi, rest)]
    assert torch.autograd.gradcheck(lambda j, p, r: ik.solve(j, p, r, mode=mode, compiled=True), inputs)
    weights = torch.randn(1, 24, 3, 3, generator=g, dtype=F64)
    for detach in (False, True):
        grads = []
        for compiled in (False, True):
            xs = [x.detach().clone().requires_grad_() for x in inputs]
            (ik.solve(*xs, mode=mode, detach_targets=detach, compiled=compiled) * weights).sum().backward()
            grads.append([x.grad for x in xs])
        assert (grads[1][0] is None) == detach == (grads[0][0] is None)
        for a, b in zip(grads[0], grads[1]):
            if a is not None:
                assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_compiled_kernel_says_what_it_needs(monkeypatch, tmp_path):
    joints, phi, rest = torch.zeros(1, 29, 3), torch.zeros(1, 23, 2), torch.zeros(1, 29, 3)
    monkeypatch.setattr(ik, "_kernel_function", None)
    monkeypatch.setenv("HYBRIK_LITE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(RuntimeError, match="needs a C compiler"):
        ik.solve(joints, phi, rest, compiled=True)
    monkeypatch.delenv("CC")
    ik.solve(joints, phi, rest, compiled=True)                           # builds into the fresh cache
    assert len(list(tmp_path.glob("ik_kernel_*.so"))) == 1 and not list(tmp_path.glob("*.partial.so"))


def test_bad_input_raises_clear_errors():
    joints, phi, rest = torch.zeros(2, 29, 3), torch.zeros(2, 23, 2), torch.zeros(2, 29, 3)
    with pytest.raises(ValueError, match=r"joints must have shape \(B, 29, 3\), got \(2, 24, 3\)"):
        ik.solve(torch.zeros(2, 24, 3), phi, rest)
    with pytest.raises(ValueError, match=r"phi must have shape"):
        ik.solve(joints, torch.zeros(2, 23), rest)
    with pytest.raises(ValueError, match=r"exactly one batch dimension"):
        ik.solve(joints[None], phi[None], rest[None])
    with pytest.raises(ValueError, match=r"share the batch size"):
        ik.solve(joints, phi, rest[:1])
    with pytest.raises(ValueError, match=r"float64 but joints is torch.float32"):
        ik.solve(joints, phi.double(), rest)
    with pytest.raises(ValueError, match=r"mode must be one of"):
        ik.solve(joints, phi, rest, mode="fast")
    with pytest.raises(ValueError, match=r"float32 or float64"):
        ik.solve(joints.long(), phi, rest)
    with pytest.raises(ValueError, match=r"float32 or float64"):
        ik.solve(joints.half(), phi.half(), rest.half())
    for name, index in (("joints", 0), ("phi", 1), ("rest_joints", 2)):
        for bad in (float("nan"), float("inf")):
            args = [joints.clone(), phi.clone(), rest.clone()]
            args[index][1, 3, 0] = bad
            with pytest.raises(ValueError, match=rf"{name} holds 1 non-finite value"):
                ik.solve(*args)
    with pytest.raises(ValueError, match=r"rot_mats must have shape"):
        ik.twist_from_pose(torch.zeros(2, 23, 3, 3), rest)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(bm, dtype):
    g = torch.Generator().manual_seed(24)
    rest = skeletons(512, g, bm)
    rot = poses(512, g, "moderate")
    joints = targets_of(rot, rest)
    phi = ik.twist_from_pose(rot, rest)
    args = [x.to(dtype) for x in (joints, phi, rest)]
    for mode in ik.MODES:
        cpu = ik.solve(*args, mode=mode)
        gpu = ik.solve(*[x.cuda() for x in args], mode=mode)
        assert gpu.device.type == "cuda" and gpu.dtype == dtype
        assert (gpu.cpu() - cpu).abs().max() < 1e3 * torch.finfo(dtype).eps
        phi_gpu = ik.twist_from_pose(rot.to(dtype).cuda(), rest.to(dtype).cuda())
        assert phi_gpu.device.type == "cuda"
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    assert joint_error_mm(gpu.cpu(), args[2], args[0]).max() <= tol


# --- the figure functions behind the notebooks' explorers (widgets.py) -------------------------
@pytest.fixture(scope="module")
def bm_low():
    return body_model.load(resolution="low")


def test_joint_rotation_is_swing_then_twist():
    from hybrik_lite import widgets

    bone = torch.tensor([0.3, 0.0, 0.0], dtype=F64)
    rot = widgets.joint_rotation(bone, 40.0, 90.0, -25.0)
    swing, twist = twist_swing.decompose(rot, bone)
    assert math.isclose(twist.item(), math.radians(-25.0), abs_tol=1e-12)
    # perpendicular(+x) = +z, turned by 90 degrees about +x: the swing axis is -y
    assert torch.allclose(swing, kinematics.rodrigues(torch.tensor([0.0, -math.radians(40.0), 0.0], dtype=F64)),
                          atol=1e-12)


def test_twist_swing_figure_moves_only_the_flesh_for_a_pure_twist(bm_low):
    from hybrik_lite import widgets

    still = widgets.twist_swing_figure(bm_low, 16, 0.0, 0.0, 0.0)
    twisted = widgets.twist_swing_figure(bm_low, 16, 0.0, 0.0, 70.0)
    swung = widgets.twist_swing_figure(bm_low, 16, 45.0, 0.0, 0.0)
    names = [t.name for t in twisted.data]
    assert twisted.data[0].type == "mesh3d" and len(twisted.data[0].i) == bm_low.faces.shape[0]
    assert "rest bone" in names and "bone" in names and "skeleton joints" in names
    joints = {k: torch.tensor(next(t for t in f.data if t.name == "skeleton joints").x)
              for k, f in (("still", still), ("twisted", twisted), ("swung", swung))}
    elbow = 18
    assert abs(joints["twisted"][elbow] - joints["still"][elbow]) < 1e-6     # a twist leaves the elbow
    assert abs(joints["swung"][elbow] - joints["still"][elbow]) > 1e-2       # a swing moves it
    def mesh(fig):
        return torch.from_numpy(np.stack([fig.data[0].x, fig.data[0].y, fig.data[0].z], -1))

    assert (mesh(twisted) - mesh(still)).abs().max() > 1e-2                   # but turns the forearm
    with pytest.raises(ValueError, match="joint must be between 1 and 23"):
        widgets.twist_swing_figure(bm_low, 0)


def test_ik_figures_follow_the_targets(bm_low):
    from hybrik_lite import widgets

    fig = widgets.ik_explorer_figure(bm_low, joint=20, dx=0.1, dy=0.05, twist_joint=18, twist_deg=40.0)
    traces = {t.name: t for t in fig.data}
    assert fig.data[0].type == "mesh3d" and "targets" in traces and "skeleton joints" in traces
    def points(trace):
        return torch.from_numpy(np.stack([trace.x, trace.y, trace.z], -1))

    solved, targets = points(traces["skeleton joints"]), points(traces["targets"])
    assert (solved - targets).norm(dim=-1).max() < 0.05           # reachable move: the body follows
    base = widgets.ik_explorer_figure(bm_low)
    base_joints = torch.tensor([t for t in base.data if t.name == "skeleton joints"][0].x)
    assert abs(base_joints[20] + 0.1 - solved[20, 0]) < 0.02      # the wrist moved by dx
    moved = widgets.move_target(torch.zeros(1, 29, 3), 20, (1.0, 0.0, 0.0))
    assert moved[0, [20, 22, 25], 0].eq(1).all() and moved[0, 18, 0] == 0   # the wrist's subtree only


def test_explorers_wire_their_controls(bm_low):
    from hybrik_lite import widgets

    ui = widgets.twist_swing_explorer(bm_low)
    assert {c.description for c in ui.controls.values()} == {"joint", "swing (deg)", "swing direction (deg)",
                                                             "twist (deg)", "child compensates"}
    ui = widgets.ik_explorer(bm_low)
    assert {c.description for c in ui.controls.values()} == {"move", "along its bone (m)", "dx (m)", "dy (m)",
                                                             "dz (m)", "twist", "twist (deg)", "mode"}
