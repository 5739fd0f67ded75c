"""metrics.py against closed forms and scipy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from hybrik_lite import metrics

F64 = torch.float64


def random_rotations(n, seed=0):
    return torch.from_numpy(Rotation.random(n, random_state=seed).as_matrix())


def skeletons(n=16, joints=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, joints, 3, generator=g, dtype=F64) * 0.3


def test_mpjpe_closed_form():
    gt = skeletons()
    assert metrics.mpjpe(gt + torch.randn(16, 1, 3, dtype=F64), gt).abs().max() < 1e-12   # a shift is removed
    moved = gt.clone()
    moved[:, 5] += torch.tensor([0.03, 0.0, 0.04], dtype=F64)      # one joint off by 5 cm
    assert torch.allclose(metrics.mpjpe(moved, gt), torch.full((16,), 0.05 / 17, dtype=F64))
    per_joint = metrics.joint_errors(moved, gt)
    assert torch.allclose(per_joint[:, 5], torch.full((16,), 0.05, dtype=F64)) and per_joint[:, :5].max() < 1e-12
    # moving the root alone moves every other joint relative to it
    root_moved = gt.clone()
    root_moved[:, 0] += torch.tensor([0.0, 0.01, 0.0], dtype=F64)
    assert torch.allclose(metrics.mpjpe(root_moved, gt), torch.full((16,), 0.01 * 16 / 17, dtype=F64))


def test_pa_mpjpe_removes_a_similarity_exactly():
    gt = skeletons()
    R = random_rotations(16)
    s = torch.rand(16, dtype=F64) * 2 + 0.5
    t = torch.randn(16, 1, 3, dtype=F64)
    pred = s[:, None, None] * gt @ R.transpose(1, 2) + t
    assert metrics.pa_mpjpe(pred, gt).max() < 1e-12
    assert torch.allclose(metrics.procrustes_align(pred, gt), gt, atol=1e-12)
    assert metrics.mpjpe(pred, gt).min() > 1e-3                   # root alignment alone does not


def test_pa_mpjpe_against_scipy():
    gt = skeletons(seed=1)
    noisy = gt @ random_rotations(16, 3).transpose(1, 2) * 1.3 + 0.05 * torch.randn(16, 17, 3, dtype=F64)
    ours = metrics.procrustes_align(noisy, gt)
    for b in range(16):
        p = (noisy[b] - noisy[b].mean(0)).numpy()
        g = (gt[b] - gt[b].mean(0)).numpy()
        R, _ = orthogonal_procrustes(p, g)                         # min |p R - g|, R orthogonal
        assert np.linalg.det(R) > 0                                # noise is small: no reflection needed
        scale = np.trace((p @ R).T @ g) / np.trace(p.T @ p)
        expected = scale * p @ R + gt[b].mean(0).numpy()
        assert np.allclose(ours[b].numpy(), expected, atol=1e-10)


def test_pa_mpjpe_never_reflects():
    gt = skeletons(seed=2)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=F64)      # a mirror image is not a rotation
    aligned = metrics.procrustes_align(mirrored, gt)
    assert metrics.pa_mpjpe(mirrored, gt).min() > 0.01
    # the best rotation+scale: the transform from mirrored to aligned has det > 0
    pc = mirrored - mirrored.mean(1, keepdim=True)
    ac = aligned - aligned.mean(1, keepdim=True)
    transform = torch.linalg.lstsq(pc, ac).solution
    assert (torch.linalg.det(transform) > 0).all()
    p, g = (pc[0]).numpy(), (gt[0] - gt[0].mean(0)).numpy()
    R, _ = orthogonal_procrustes(p, g)
    assert np.linalg.det(R) < 0                                    # scipy would reflect


def test_pve_and_its_root_alignment():
    gt = skeletons(4, 100)
    shift = torch.randn(4, 1, 3, dtype=F64)
    assert torch.allclose(metrics.pve(gt + shift, gt), shift[:, 0].norm(dim=-1))
    assert metrics.pve(gt + shift, gt, (gt + shift)[:, 0], gt[:, 0]).max() < 1e-12
    with pytest.raises(ValueError, match="both"):
        metrics.pve(gt, gt, gt[:, 0])


def test_pck_2d_and_3d():
    gt = torch.zeros(2, 4, 2, dtype=F64)
    pred = torch.tensor([[[1.0, 0], [0, 2.0], [3.0, 4.0], [0, 0]], [[10.0, 0], [0, 0], [0, 0], [0, 0]]], dtype=F64)
    assert metrics.pck(pred, gt, 2.0).tolist() == [0.75, 0.75]
    assert metrics.pck(pred, gt, 5.0).tolist() == [1.0, 0.75]
    valid = torch.tensor([[True, True, False, False], [True, False, False, False]])
    assert metrics.pck(pred, gt, 2.0, valid).tolist() == [1.0, 0.0]
    pts = skeletons(3, 17)
    assert metrics.pck(pts + 0.1, pts, 0.15).tolist() == [0.0, 0.0, 0.0]     # |(0.1, 0.1, 0.1)| = 0.173
    assert metrics.pck(pts + 0.08, pts, 0.15).tolist() == [1.0, 1.0, 1.0]    # 0.139


def test_rotation_error_against_scipy():
    a, b = random_rotations(64, 0), random_rotations(64, 1)
    expected = (Rotation.from_matrix(a.numpy()).inv() * Rotation.from_matrix(b.numpy())).magnitude()
    assert np.allclose(metrics.rotation_angles_deg(a, b).numpy(), np.degrees(expected), atol=1e-9)
    tiny = torch.from_numpy(Rotation.from_rotvec([[1e-7, 0, 0]]).as_matrix())
    assert abs(metrics.rotation_angles_deg(tiny, torch.eye(3, dtype=F64)[None]).item() - np.degrees(1e-7)) < 1e-15
    per_sample = metrics.rotation_error_deg(a.reshape(4, 16, 3, 3), b.reshape(4, 16, 3, 3))
    assert np.allclose(per_sample.numpy(), np.degrees(expected).reshape(4, 16).mean(1))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one shape"):
        metrics.mpjpe(torch.zeros(2, 17, 3), torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match="align"):
        metrics.joint_errors(torch.zeros(2, 17, 3), torch.zeros(2, 17, 3), align="scale")
    with pytest.raises(ValueError, match="threshold"):
        metrics.pck(torch.zeros(2, 17, 2), torch.zeros(2, 17, 2), 0.0)
    with pytest.raises(ValueError, match="float"):
        metrics.mpjpe(torch.zeros(2, 17, 3, dtype=torch.long), torch.zeros(2, 17, 3, dtype=torch.long))


def test_n_mpjpe_removes_scale_only_and_is_the_best_scale():
    gt = skeletons()
    root_moved = 1.3 * (gt - gt[:, :1]) + torch.tensor([0.2, -1.0, 4.0], dtype=F64)
    assert metrics.n_mpjpe(root_moved, gt).max() < 1e-12                    # scale and translation forgiven
    assert metrics.mpjpe(root_moved, gt).min() > 1e-3
    turned = (gt - gt[:, :1]) @ random_rotations(len(gt)).transpose(1, 2)
    assert (metrics.n_mpjpe(turned, gt) > 1e-3).all()                        # a rotation is not
    # the closed-form scale beats every other scale (scipy's bounded scalar minimiser as reference)
    from scipy.optimize import minimize_scalar

    noisy = gt + 0.02 * torch.randn(gt.shape, dtype=F64, generator=torch.Generator().manual_seed(3))
    for b in range(4):
        p, g = (noisy[b] - noisy[b, :1]).numpy(), (gt[b] - gt[b, :1]).numpy()
        best = minimize_scalar(lambda s: np.sum((s * p - g) ** 2), bounds=(0.1, 10), method="bounded",
                               options={"xatol": 1e-12})
        s = best.x
        assert abs(metrics.n_mpjpe(noisy[b:b + 1], gt[b:b + 1]).item()
                   - np.linalg.norm(s * p - g, axis=-1).mean()) < 1e-6
    # each alignment minimises the squared error over a larger family: root < root + scale < similarity
    p, g = noisy - noisy[:, :1], gt - gt[:, :1]
    s = ((p * g).sum((1, 2)) / p.pow(2).sum((1, 2)))[:, None, None]
    sq_root, sq_scale = (p - g).pow(2).sum((1, 2)), (s * p - g).pow(2).sum((1, 2))
    sq_similarity = (metrics.procrustes_align(noisy, gt) - gt).pow(2).sum((1, 2))
    assert (sq_similarity <= sq_scale + 1e-12).all() and (sq_scale <= sq_root + 1e-12).all()
