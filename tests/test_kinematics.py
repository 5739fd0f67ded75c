"""kinematics.py against independent references: scipy's rotations, smplx, float64 recomputation."""
import numpy as np
import pytest
import smplx.lbs
import torch
from scipy.spatial.transform import Rotation

from hybrik_lite import body_model, kinematics, skeleton


def random_axis_angle(shape, scale=1.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape + (3,), generator=g, dtype=torch.float64) * scale).to(dtype)


def test_rodrigues_matches_scipy(dtype):
    aa = random_axis_angle((2000,), scale=1.5, dtype=dtype)
    aa[0] = 0
    aa[1] = torch.tensor([1e-7, 0, 0])
    aa[2] = torch.tensor([np.pi, 0, 0])
    ref = torch.tensor(Rotation.from_rotvec(aa.double().numpy()).as_matrix())
    got = kinematics.rodrigues(aa)
    assert got.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    assert (got.double() - ref).abs().max() < tol


def test_rodrigues_gradient_at_zero_is_finite_and_correct():
    aa = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kinematics.rodrigues, (aa,))
    aa2 = random_axis_angle((4,), seed=3).requires_grad_()
    assert torch.autograd.gradcheck(kinematics.rodrigues, (aa2,))


def test_rotation_to_axis_angle_inverts_rodrigues():
    aa = random_axis_angle((3000,), scale=1.2, seed=1)
    rot = kinematics.rodrigues(aa)
    back = kinematics.rotation_to_axis_angle(rot)
    assert (back.norm(dim=-1) <= np.pi + 1e-12).all()
    assert (kinematics.rodrigues(back) - rot).abs().max() < 1e-12
    ref = torch.tensor(Rotation.from_matrix(rot.numpy()).as_rotvec())
    assert (back - ref).abs().max() < 1e-9


def brute_force_fk(rot_mats, rest, parents):
    """The obvious joint-by-joint recursion in float64 numpy, written independently."""
    rot_mats, rest = rot_mats.double().numpy(), rest.double().numpy()
    B, J = rest.shape[:2]
    G = np.zeros((B, J, 3, 3))
    P = np.zeros((B, J, 3))
    for j in range(J):
        R = rot_mats[:, j] if j < rot_mats.shape[1] else np.eye(3)
        if parents[j] < 0:
            G[:, j], P[:, j] = R, rest[:, j]
        else:
            p = parents[j]
            G[:, j] = G[:, p] @ R
            P[:, j] = P[:, p] + np.einsum("bij,bj->bi", G[:, p], rest[:, j] - rest[:, p])
    return P, G


@pytest.mark.parametrize("num_rot", [29, 24])
def test_forward_kinematics_matches_recursion(dtype, num_rot):
    rest = torch.randn(5, 29, 3, dtype=dtype)
    rots = kinematics.rodrigues(random_axis_angle((5, num_rot), seed=2, dtype=dtype))
    joints, transforms = kinematics.forward_kinematics(rots, rest, skeleton.PARENTS)
    ref_p, ref_g = brute_force_fk(rots, rest, skeleton.PARENTS)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert np.abs(joints.double().numpy() - ref_p).max() < tol
    assert np.abs(transforms[..., :3, :3].double().numpy() - ref_g).max() < tol
    assert torch.equal(transforms[..., :3, 3], joints)
    assert (transforms[..., 3, :] == torch.tensor([0, 0, 0, 1], dtype=dtype)).all()


def test_forward_kinematics_identity_gives_rest():
    rest = torch.randn(3, 29, 3, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(3, 24, 3, 3)
    joints, _ = kinematics.forward_kinematics(eye, rest, skeleton.PARENTS)
    assert torch.allclose(joints, rest, atol=1e-15)


def test_forward_kinematics_bad_input():
    rest = torch.randn(2, 29, 3)
    rots = torch.eye(3).expand(2, 24, 3, 3)
    with pytest.raises(ValueError, match="rest_joints must have shape"):
        kinematics.forward_kinematics(rots, rest[:, :, :2], skeleton.PARENTS)
    with pytest.raises(ValueError, match="parents has 24 entries"):
        kinematics.forward_kinematics(rots, rest, skeleton.SMPL_PARENTS)
    with pytest.raises(ValueError, match="float64"):
        kinematics.forward_kinematics(rots.double(), rest, skeleton.PARENTS)
    with pytest.raises(ValueError, match="parents must start with -1"):
        kinematics.forward_kinematics(rots, rest, [0] + list(skeleton.PARENTS[1:]))
    with pytest.raises(ValueError, match="float32 or float64"):
        kinematics.forward_kinematics(rots, rest.long(), skeleton.PARENTS)
    with pytest.raises(ValueError, match="torch.Tensor"):
        kinematics.rodrigues(np.zeros((2, 3)))


def _models():
    return ["open", "open_low", "fake_smpl"]


@pytest.fixture(params=_models())
def model(request, fake_smpl_npz):
    if request.param == "open":
        return body_model.load()
    if request.param == "open_low":
        return body_model.load(resolution="low")
    return body_model.load(fake_smpl_npz)


def test_smpl_forward_matches_smplx_float32(model):
    """Our from-scratch pipeline vs smplx's own lbs with its own Rodrigues (axis-angle in)."""
    g = torch.Generator().manual_seed(0)
    betas = torch.randn(8, 10, generator=g)
    pose = torch.randn(8, 24, 3, generator=g) * 0.5
    ref_verts, ref_joints = smplx.lbs.lbs(betas, pose.reshape(8, -1), model.v_template, model.shapedirs,
                                          model.posedirs, model.J_regressor, model.smpl_parents,
                                          model.lbs_weights, pose2rot=True)
    verts, joints, _ = kinematics.smpl_forward(betas, kinematics.rodrigues(pose), model.v_template,
                                               model.shapedirs, model.posedirs, model.J_regressor,
                                               skeleton.SMPL_PARENTS, model.lbs_weights)
    assert (verts - ref_verts).abs().max() <= 1e-5
    assert (joints - ref_joints).abs().max() <= 1e-5


def test_smpl_forward_matches_smplx_float64(model):
    model = model.double()
    g = torch.Generator().manual_seed(1)
    betas = torch.randn(8, 10, generator=g, dtype=torch.float64) * 1.5
    rots = kinematics.rodrigues(torch.randn(8, 24, 3, generator=g, dtype=torch.float64))
    out = model(betas, rots)  # smplx underneath, rotation matrices in (no smplx epsilon)
    verts, joints, _ = kinematics.smpl_forward(betas, rots, model.v_template, model.shapedirs,
                                               model.posedirs, model.J_regressor, skeleton.SMPL_PARENTS,
                                               model.lbs_weights)
    assert (verts - out.vertices).abs().max() <= 1e-9
    assert (joints - out.joints[:, :24]).abs().max() <= 1e-9


def test_pose_correctives_are_used(fake_smpl_npz):
    model = body_model.load(fake_smpl_npz).double()
    rots = kinematics.rodrigues(torch.randn(2, 24, 3, dtype=torch.float64))
    betas = torch.zeros(2, 10, dtype=torch.float64)
    with_pd = kinematics.smpl_forward(betas, rots, model.v_template, model.shapedirs, model.posedirs,
                                      model.J_regressor, skeleton.SMPL_PARENTS, model.lbs_weights)[0]
    without = kinematics.smpl_forward(betas, rots, model.v_template, model.shapedirs,
                                      torch.zeros_like(model.posedirs), model.J_regressor,
                                      skeleton.SMPL_PARENTS, model.lbs_weights)[0]
    assert (with_pd - without).abs().max() > 1e-3


def test_skinning_with_one_joint_is_rigid():
    """A vertex fully weighted to joint j moves rigidly with j's transform."""
    rest = torch.randn(1, 29, 3, dtype=torch.float64)
    rots = kinematics.rodrigues(torch.randn(1, 29, 3, dtype=torch.float64))
    _, transforms = kinematics.forward_kinematics(rots, rest, skeleton.PARENTS)
    verts = torch.randn(1, 29, 3, dtype=torch.float64)
    weights = torch.eye(29, dtype=torch.float64)
    skinned = kinematics.linear_blend_skinning(verts, weights, kinematics.skinning_transforms(transforms, rest))
    g, p = transforms[0, :, :3, :3], transforms[0, :, :3, 3]
    expected = (g @ (verts[0] - rest[0]).unsqueeze(-1)).squeeze(-1) + p
    assert torch.allclose(skinned[0], expected, atol=1e-12)


def test_device_mix_is_refused_not_moved():
    """Tensors on two devices raise (we never move data behind the caller's back). The 'meta'
    device stands in for a GPU so this runs on CPU-only machines too."""
    rest = torch.randn(2, 29, 3)
    rots = torch.eye(3).expand(2, 24, 3, 3).to("meta")
    with pytest.raises(ValueError, match="move them to one device"):
        kinematics.forward_kinematics(rots, rest, skeleton.PARENTS)
    bm = body_model.load(resolution="low")
    with pytest.raises(ValueError, match="move them to one device"):
        bm(torch.zeros(1, 10, device="meta"), torch.zeros(1, 24, 3))
