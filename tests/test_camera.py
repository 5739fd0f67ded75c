"""camera.py: exact round trips, closed forms, and agreement with the frozen split's annotations."""
from __future__ import annotations

import math

import pytest
import torch

from hybrik_lite import camera, synthetic

F64 = torch.float64


def random_points(n=64, joints=29, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(n, joints, 3, generator=g, dtype=F64) * 0.5
    pts[..., 2] += 4.0 + 6.0 * torch.rand(n, 1, generator=g, dtype=F64)       # 3.5-10.5 m away
    return pts


def test_intrinsics_follow_hybrik_focal_per_256():
    for size in (64, 128, 256):
        K = camera.intrinsics(size, F64)
        assert K[0, 0] == K[1, 1] == 1000.0 * size / 256
        assert K[0, 2] == K[1, 2] == size / 2
        assert K[2].tolist() == [0, 0, 1] and K[0, 1] == K[1, 0] == 0


def test_project_is_the_pinhole_formula_and_the_centre_pixel_convention():
    K = camera.intrinsics(128, F64)
    on_axis = torch.tensor([[[0.0, 0.0, 5.0]]], dtype=F64)
    assert camera.project(on_axis, K).tolist() == [[[64.0, 64.0]]]     # the corner of the 4 middle pixels
    pts = random_points()
    uv = camera.project(pts, K)
    homogeneous = pts @ K.T                                           # independent: K x, then divide
    assert torch.allclose(uv, homogeneous[..., :2] / homogeneous[..., 2:], atol=1e-10)
    # a skewed, per-image K as well
    Kb = K.expand(len(pts), 3, 3).clone()
    Kb[:, 0, 1] = torch.linspace(-3, 3, len(pts), dtype=F64)
    homogeneous = (Kb @ pts.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(camera.project(pts, Kb), homogeneous[..., :2] / homogeneous[..., 2:], atol=1e-10)


@pytest.mark.parametrize("skew", [0.0, 2.5])
def test_uvd_round_trip_is_exact(skew):
    pts = random_points()
    K = camera.intrinsics(128, F64)
    K[0, 1] = skew
    uvd = camera.cam_to_uvd(pts, K, 128)
    back = camera.uvd_to_cam(uvd, K, 128, pts[:, 0, 2])
    assert (back - pts).abs().max() < 1e-12
    again = camera.cam_to_uvd(back, K, 128)
    assert (again - uvd).abs().max() < 1e-14


def test_uvd_closed_form():
    # a point on the optical axis is (0, 0); one 1.1 m behind the root has d = +0.5
    K = camera.intrinsics(256, F64)
    pts = torch.tensor([[[0.0, 0.0, 5.0], [0.0, 0.0, 6.1], [1.0, -0.5, 5.0]]], dtype=F64)
    uvd = camera.cam_to_uvd(pts, K, 256)
    assert torch.allclose(uvd[0, 0], torch.zeros(3, dtype=F64))
    assert torch.allclose(uvd[0, 1], torch.tensor([0.0, 0.0, 0.5], dtype=F64))
    # u = f x / (z S) = (1000 / 256) * 1 / 5
    assert torch.allclose(uvd[0, 2], torch.tensor([1000 / 256 / 5, -0.5 * 1000 / 256 / 5, 0.0], dtype=F64))


def test_body_camera_round_trip_and_orientation():
    R = camera.CAMERA_FROM_BODY.double()
    assert torch.allclose(R @ R.T, torch.eye(3, dtype=F64)) and torch.det(R) == 1
    up_and_front = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=F64)
    cam = camera.body_to_camera(up_and_front)
    assert cam[0, 0].tolist() == [0.0, -1.0, 0.0]     # body up is image up (y down in the camera)
    assert cam[0, 1].tolist() == [0.0, 0.0, -1.0]     # the body faces the camera
    pts = random_points(8)
    t = torch.randn(8, 3, dtype=F64)
    Rb = torch.linalg.qr(torch.randn(8, 3, 3, dtype=F64))[0]
    Rb = Rb * torch.det(Rb)[:, None, None]            # proper rotations
    back = camera.camera_to_body(camera.body_to_camera(pts, Rb, t), Rb, t)
    assert (back - pts).abs().max() < 1e-12
    assert torch.allclose(camera.body_to_camera(pts, Rb, t), torch.einsum("bij,bnj->bni", Rb, pts) + t[:, None])


def test_camera_params_hybrik_scale_and_weak_perspective():
    root = torch.tensor([[0.3, -0.2, 1000 / 256 / 0.9]], dtype=F64)    # HybrIK's initial scale 0.9
    params = camera.camera_params_from_root(root)
    assert torch.allclose(params, torch.tensor([[0.9, 0.3, -0.2]], dtype=F64))
    assert torch.allclose(camera.root_from_camera_params(params), root)
    # under focal 1000 / 256, u of the root is s * t_x (weak perspective is exact at the root's depth)
    for size in (128, 256):
        uvd = camera.cam_to_uvd(root[:, None], camera.intrinsics(size, F64), size)
        assert torch.allclose(uvd[0, 0, :2], params[0, 0] * params[0, 1:])


def test_agrees_with_the_frozen_split():
    split = synthetic.load_split()
    S = split["meta"]["config"]["image_size"]
    K = camera.intrinsics(S)
    assert torch.equal(split["K"][0], K)
    assert torch.equal(camera.project(split["joints_cam"], K), split["joints_2d"])
    assert torch.equal(camera.cam_to_uvd(split["joints_cam"], K, S), split["uvd"])
    back = camera.uvd_to_cam(split["uvd"].double(), K.double(), S, split["joints_cam"][:, 0, 2].double())
    assert (back - split["joints_cam"].double()).abs().max() < 2e-6     # float32 storage of 7 m depths
    s = camera.camera_params_from_root(split["joints_cam"][:, 0].double())[:, 0]
    depth = split["joints_cam"][:, 0, 2].double()
    assert torch.allclose(camera.root_depth_from_scale(s), depth)
    assert 3.0 < depth.min() and depth.max() < 12.0


def test_bad_input_is_refused():
    K = camera.intrinsics(128)
    with pytest.raises(ValueError, match="points_cam must"):
        camera.project(torch.zeros(4, 3), K)
    with pytest.raises(ValueError, match="K must"):
        camera.project(torch.zeros(2, 4, 3), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ValueError, match="float64"):
        camera.project(torch.zeros(2, 4, 3, dtype=F64), K)
    with pytest.raises(ValueError, match="root_depth"):
        camera.uvd_to_cam(torch.zeros(2, 29, 3), K, 128, torch.ones(3))
    with pytest.raises(ValueError, match="positive int"):
        camera.intrinsics(128.0)
    assert math.isclose(camera.focal_length(256), 1000.0)
