"""body_model.py: loading every supported file kind, the 29 joints, and bad input."""
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from hybrik_lite import body_model, kinematics, skeleton


def test_default_model_loads_and_has_29_joints():
    bm = body_model.load()
    out = bm(torch.zeros(2, 10), torch.zeros(2, 24, 3))
    assert out.vertices.shape == (2, bm.v_template.shape[0], 3)
    assert out.joints.shape == (2, 29, 3)
    assert bm.faces.shape[1] == 3 and bm.faces.dtype == torch.long
    assert bm.parents.tolist() == list(skeleton.PARENTS)
    assert bm.smpl_parents.tolist() == list(skeleton.SMPL_PARENTS)


def test_open_model_conventions():
    """Metres, Y up, facing +Z, left at +X, T-pose arms along X."""
    bm = body_model.load()
    j = bm.rest_joints(torch.zeros(1, 10))[0]
    verts = bm.v_template
    height = verts[:, 1].max() - verts[:, 1].min()
    assert 1.4 < height < 2.1
    names = skeleton.JOINT_NAMES
    assert j[names.index("left_hip"), 0] > 0 > j[names.index("right_hip"), 0]
    assert j[names.index("head_top"), 1] > j[names.index("neck"), 1] > j[names.index("pelvis"), 1]
    arm = j[names.index("left_wrist")] - j[names.index("left_shoulder")]
    assert arm[0] > 0.4 and abs(arm[1]) < 0.1 * arm[0]  # T-pose: arm roughly along +X
    toe = j[names.index("left_big_toe")] - j[names.index("left_ankle")]
    assert toe[2] > 0.05  # feet point forward: the body faces +Z
    assert torch.allclose(bm.lbs_weights.sum(1), torch.ones(verts.shape[0]), atol=1e-5)
    assert torch.allclose(bm.J_regressor.sum(1), torch.ones(24), atol=1e-5)
    assert (bm.J_regressor >= 0).all()
    assert bm.posedirs.abs().max() == 0  # no pose correctives in the open model


def test_low_res_model_is_consistent_with_full():
    full, low = body_model.load(), body_model.load(resolution="low")
    assert low.v_template.shape[0] < full.v_template.shape[0] / 5
    betas = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    # same skeleton within a couple of centimetres for any shape
    assert (full.rest_joints(betas)[:, :24] - low.rest_joints(betas)[:, :24]).norm(dim=-1).max() < 0.03


def test_rest_joints_equal_forward_at_zero_pose():
    bm = body_model.load()
    betas = torch.randn(3, 10)
    out = bm(betas, torch.zeros(3, 24, 3))
    assert torch.allclose(out.joints, bm.rest_joints(betas), atol=1e-5)
    assert torch.allclose(out.rest_joints, bm.rest_joints(betas))


def _smplx_reference(bm, betas, rot):
    """Vertices and 24 joints from smplx's own ``lbs`` on the same arrays (shares no code with ours)."""
    import smplx.lbs

    layer = bm.layer
    verts, joints = smplx.lbs.lbs(betas, rot, layer.v_template, layer.shapedirs, layer.posedirs,
                                  layer.J_regressor, layer.parents, layer.lbs_weights, pose2rot=False)
    return verts, joints


@pytest.mark.parametrize("model", ["open", "pose_correctives"])
def test_forward_equals_smplx(model, fake_smpl_npz, dtype):
    """bm(betas, pose) is SMPL's M(beta, theta): smplx's lbs to 1e-6 m in float32 and 1e-12 m in float64,
    on the open model (no pose correctives, which the forward skips) and on a model with them."""
    bm = body_model.load() if model == "open" else body_model.load(fake_smpl_npz)
    assert bool(bm.posedirs.any()) == (model == "pose_correctives")
    bm = bm.to(dtype)
    g = torch.Generator().manual_seed(3)
    betas = torch.randn(5, 10, generator=g, dtype=torch.float64).to(dtype)
    rot = kinematics.rodrigues(0.6 * torch.randn(5, 24, 3, generator=g, dtype=torch.float64)).to(dtype)
    out = bm(betas, rot)
    verts, joints = _smplx_reference(bm, betas, rot)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert (out.vertices - verts).abs().max() < tol
    assert (out.joints[:, :24] - joints).abs().max() < tol
    assert torch.equal(out.joints[:, 24:], out.vertices[:, bm.leaf_vertex_ids])
    shaped = bm.v_template + torch.einsum("bk,vck->bvc", betas, bm.shapedirs)
    rest24 = torch.einsum("jv,bvc->bjc", bm.J_regressor, shaped)
    assert (out.rest_joints[:, :24] - rest24).abs().max() < tol
    assert (out.rest_joints[:, 24:] - shaped[:, bm.leaf_vertex_ids]).abs().max() < tol


def test_forward_follows_changes_to_the_models_arrays(fake_smpl_npz):
    """The forward's cached layout is rebuilt when a buffer changes in place or the model changes dtype."""
    bm = body_model.load(fake_smpl_npz)
    betas, rot = torch.zeros(1, 10), kinematics.rodrigues(torch.full((1, 24, 3), 0.3))
    before = bm(betas, rot).vertices
    with torch.no_grad():
        bm.layer.posedirs.zero_()
    after = bm(betas, rot).vertices
    assert (after - before).abs().max() > 1e-3            # the correctives are gone
    assert (after - _smplx_reference(bm, betas, rot)[0]).abs().max() < 1e-6
    assert bm.double()(betas.double(), rot.double()).vertices.dtype == torch.float64


def test_leaf_joints_move_rigidly_with_their_parent():
    """On the open model, leaf vertices are skinned to their parent only, so FK of the 29-joint tree
    (leaves with identity rotation) reproduces them: the IK can then be exact."""
    bm = body_model.load().double()
    g = torch.Generator().manual_seed(0)
    betas = torch.randn(4, 10, generator=g, dtype=torch.float64)
    rots = kinematics.rodrigues(torch.randn(4, 24, 3, generator=g, dtype=torch.float64) * 0.5)
    out = bm(betas, rots)
    fk_joints, _ = kinematics.forward_kinematics(rots, bm.rest_joints(betas), skeleton.PARENTS)
    assert (fk_joints - out.joints).abs().max() < 1e-9


def test_axis_angle_and_matrix_pose_agree():
    bm = body_model.load()
    pose = torch.randn(2, 24, 3) * 0.4
    betas = torch.randn(2, 10)
    a = bm(betas, pose)
    b = bm(betas, kinematics.rodrigues(pose))
    assert torch.allclose(a.vertices, b.vertices, atol=1e-6)


def test_transl_moves_everything():
    bm = body_model.load(resolution="low")
    betas, pose, t = torch.zeros(1, 10), torch.zeros(1, 24, 3), torch.tensor([[0.1, -0.2, 3.0]])
    a, b = bm(betas, pose), bm(betas, pose, transl=t)
    assert torch.allclose(b.vertices - a.vertices, t.expand_as(a.vertices))
    assert torch.allclose(b.joints - a.joints, t.expand_as(a.joints))


@pytest.mark.parametrize("num_verts", [6890, 700])
def test_toy_model_is_a_well_formed_smpl_model_with_correctives(num_verts):
    """The toy SMPL-format model (tests, notebook 01): SMPL's conventions and arrays, nonzero correctives."""
    arrays = body_model.toy_smpl_arrays(num_verts=num_verts, seed=4)
    assert ("leaf_vertex_ids" in arrays) == (num_verts != 6890)   # SMPL's own ids on SMPL's vertex count
    bm = body_model.BodyModel(arrays, name="toy").double()
    verts, names = bm.v_template, skeleton.JOINT_NAMES
    j = bm.rest_joints(torch.zeros(1, 10, dtype=torch.float64))[0]
    assert 1.4 < verts[:, 1].max() - verts[:, 1].min() < 2.1
    assert j[names.index("left_hip"), 0] > 0 > j[names.index("right_hip"), 0]
    assert j[names.index("head_top"), 1] > j[names.index("neck"), 1] > j[names.index("pelvis"), 1]
    assert j[names.index("left_big_toe"), 2] - j[names.index("left_ankle"), 2] > 0.05
    assert torch.allclose(bm.lbs_weights.sum(1), torch.ones(num_verts, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(bm.J_regressor.sum(1), torch.ones(24, dtype=torch.float64), atol=1e-6)
    assert (bm.lbs_weights >= 0).all() and (bm.J_regressor >= 0).all()
    tri = verts[bm.faces]                                  # outward faces: the enclosed volume is positive
    assert torch.linalg.det(tri).sum() > 0
    # correctives: zero in the rest pose, nonzero otherwise (smplx's own lbs, so not our code checking itself)
    rots = kinematics.rodrigues(0.5 * torch.randn(2, 24, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    zero_betas = torch.zeros(2, 10, dtype=torch.float64)
    for rot, moved in ((torch.eye(3, dtype=torch.float64).repeat(2, 24, 1, 1), False), (rots, True)):
        with_pd = _smplx_reference(bm, zero_betas, rot)[0]
        skinning_only = kinematics.smpl_forward(zero_betas, rot, bm.v_template, bm.shapedirs, torch.zeros_like(bm.posedirs),
                                                bm.J_regressor, skeleton.SMPL_PARENTS, bm.lbs_weights)[0]
        assert ((with_pd - skinning_only).abs().max() > 1e-3) == moved
    assert bm(torch.zeros(1, 10, dtype=torch.float64), rots[:1]).joints.shape == (1, 29, 3)


def test_smpl_npz_and_plain_pickle_load(fake_smpl_npz, fake_smpl_pkl):
    for path in (fake_smpl_npz, fake_smpl_pkl):
        bm = body_model.load(path)
        assert bm.v_template.shape == (6890, 3)
        assert bm.leaf_vertex_ids.tolist() == list(body_model.SMPL_LEAF_VERTEX_IDS)
        out = bm(torch.zeros(1, 10), torch.zeros(1, 24, 3))
        assert torch.allclose(out.joints[0, 24:], bm.v_template[bm.leaf_vertex_ids], atol=1e-6)


def test_chumpy_pickle_loads_without_chumpy(tmp_path, monkeypatch):
    """SMPL's original files pickle chumpy arrays; we read them with chumpy absent."""
    arrays = body_model.toy_smpl_arrays(seed=2)
    fake = types.ModuleType("chumpy")
    fake_ch = types.ModuleType("chumpy.ch")

    class Ch:  # pickles as chumpy.ch.Ch with its array in state['x'], like chumpy does
        def __init__(self, x):
            self.x = x

        def __reduce__(self):
            return (Ch, (), {"x": self.x})

        def __setstate__(self, state):
            self.x = state["x"]

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake_ch.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", fake)
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake_ch)
    data = dict(arrays)
    for key in ("v_template", "shapedirs", "weights"):
        data[key] = Ch(arrays[key])
    path = tmp_path / "SMPL_CHUMPY.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    bm = body_model.load(path)
    assert np.allclose(bm.v_template.numpy(), arrays["v_template"])
    assert np.allclose(bm.shapedirs.numpy(), arrays["shapedirs"])


def test_more_than_ten_shape_components(tmp_path):
    for count in (16, 300):
        path = tmp_path / f"SMPL_{count}.npz"
        arrays = body_model.toy_smpl_arrays(num_betas=count, num_verts=700, seed=3)
        np.savez(path, **arrays)             # off SMPL's vertex count, the arrays name their leaf vertices
        bm = body_model.load(path, num_betas=count)
        assert bm.num_betas == count
        betas = torch.zeros(1, count)
        betas[0, -1] = 1.0  # the last component must be used
        moved = bm.rest_joints(betas)[0, 24:] - bm.rest_joints(torch.zeros(1, count))[0, 24:]
        expected = torch.tensor(arrays["shapedirs"][arrays["leaf_vertex_ids"], :, -1])
        assert torch.allclose(moved, expected, atol=1e-6)
        with pytest.raises(ValueError, match="num_betas must be between 1 and"):
            body_model.load(path, num_betas=count + 1)


def test_bad_input_errors(tmp_path, fake_smpl_npz):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        body_model.load(tmp_path / "missing.pkl")
    with pytest.raises(ValueError, match="is a folder"):
        body_model.load(tmp_path)
    (tmp_path / "model.obj").write_text("v 0 0 0")
    with pytest.raises(ValueError, match=".npz or .pkl"):
        body_model.load(tmp_path / "model.obj")
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable SMPL pickle"):
        body_model.load(tmp_path / "broken.pkl")
    arrays = body_model.toy_smpl_arrays(num_verts=500)
    del arrays["weights"]
    np.savez(tmp_path / "incomplete.npz", **arrays)
    with pytest.raises(ValueError, match="missing SMPL arrays"):
        body_model.load(tmp_path / "incomplete.npz")
    with pytest.raises(ValueError, match="resolution"):
        body_model.load(resolution="medium")

    bm = body_model.load(resolution="low")
    with pytest.raises(ValueError, match=r"betas must have shape \(B, 10\)"):
        bm(torch.zeros(2, 8), torch.zeros(2, 24, 3))
    with pytest.raises(ValueError, match="pose must be"):
        bm(torch.zeros(2, 10), torch.zeros(2, 72))
    with pytest.raises(ValueError, match="same batch size"):
        bm(torch.zeros(2, 10), torch.zeros(3, 24, 3))
    with pytest.raises(ValueError, match="float64"):
        bm(torch.zeros(2, 10, dtype=torch.float64), torch.zeros(2, 24, 3))
    with pytest.raises(ValueError, match="non-finite"):
        bm(torch.full((1, 10), float("nan")), torch.zeros(1, 24, 3))
    with pytest.raises(ValueError, match="non-finite"):
        bm(torch.zeros(1, 10), torch.full((1, 24, 3), float("inf")))
    with pytest.raises(ValueError, match="float32 or float64"):
        bm(torch.zeros(1, 10, dtype=torch.long), torch.zeros(1, 24, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_forward_matches_cpu():
    bm = body_model.load()
    betas, pose = torch.randn(2, 10), torch.randn(2, 24, 3) * 0.3
    cpu = bm(betas, pose)
    gpu = bm.to("cuda")(betas.cuda(), pose.cuda())
    assert gpu.vertices.is_cuda
    assert torch.allclose(gpu.vertices.cpu(), cpu.vertices, atol=1e-5)
    with pytest.raises(ValueError, match="move them to one device"):
        bm(betas, pose)
