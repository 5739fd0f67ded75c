"""transforms.py: the crop's affine and camera against numpy, bilinear warping, flip (twice = identity,
mirrored FK and twist), boxes, occlusion and the augmentation draws."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hybrik_lite import body_model, camera, ik, kinematics, skeleton, transforms

D = np.diag([-1.0, 1.0, 1.0])


def test_box_to_corners_and_square_box_match_numpy():
    boxes = torch.tensor([[10.0, 5.0, 20.0, 40.0], [-4.0, 30.0, 30.0, 50.0], [60.0, 2.0, 0.5, 3.0]],
                         dtype=torch.float64)
    got = transforms.box_xywh_to_xyxy(boxes, 64, 48)
    expected = []
    for x, y, w, h in boxes.tolist():          # inclusive pixel indices, clipped, then the half-open span
        x1, y1 = min(max(x, 0), 63), min(max(y, 0), 47)
        x2, y2 = min(max(x + max(w - 1, 0), 0), 63), min(max(y + max(h - 1, 0), 0), 47)
        expected.append([x1, y1, x2 + 1, y2 + 1])
    assert np.allclose(got.numpy(), expected)
    centre, side = transforms.square_box(got, 1.25, torch.tensor([1.0, 0.8, 1.2], dtype=torch.float64))
    e = np.array(expected)
    assert np.allclose(centre.numpy(), (e[:, :2] + e[:, 2:]) / 2)
    assert np.allclose(side.numpy(), np.maximum(e[:, 2] - e[:, 0], e[:, 3] - e[:, 1]) * 1.25 * np.array([1, 0.8, 1.2]))


def _affine_numpy(centre, side, deg, size):
    t = math.radians(deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    m = size / side * rot
    return m, size / 2 - m @ np.asarray(centre)


def test_crop_affine_maps_points_like_the_reference_math():
    g = torch.Generator().manual_seed(0)
    centre = torch.rand(3, 2, generator=g, dtype=torch.float64) * 500
    side = torch.rand(3, generator=g, dtype=torch.float64) * 300 + 50
    deg = torch.tensor([0.0, 25.0, -60.0], dtype=torch.float64)
    affine = transforms.crop_affine(centre, side, deg, 128)
    points = torch.rand(3, 7, 2, generator=g, dtype=torch.float64) * 600
    got = transforms.apply_affine(points, affine)
    for b in range(3):
        m, t = _affine_numpy(centre[b].numpy(), float(side[b]), float(deg[b]), 128)
        assert np.allclose(got[b].numpy(), points[b].numpy() @ m.T + t, atol=1e-9)
    # without rotation the square box becomes the crop: centre -> S/2, its right edge -> S
    a0 = transforms.crop_affine(centre[:1], side[:1], deg[:1], 128)
    edges = torch.stack([centre[0], centre[0] + side[0] / 2])[None]
    assert np.allclose(transforms.apply_affine(edges, a0)[0].numpy(), [[64, 64], [128, 128]])


def test_warp_image_samples_the_source_bilinearly():
    # bilinear interpolation reproduces a linear image exactly: crop pixel q holds the ramp at A^-1 q
    h, w = 40, 60
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    ramp = lambda x, y: 0.1 + 0.01 * x + 0.005 * y            # noqa: E731
    image = torch.tensor(np.stack([ramp(xs, ys), 1 - ramp(xs, ys), np.full_like(xs, 0.5)]), dtype=torch.float32)[None]
    f64, S = torch.float64, 16
    centre, side, deg = torch.tensor([[30.0, 20.0]], dtype=f64), torch.tensor([24.0], dtype=f64), \
        torch.tensor([20.0], dtype=f64)
    crop = transforms.warp_image(image, transforms.crop_affine(centre, side, deg, S), S)[0].numpy()
    m, t = _affine_numpy([30.0, 20.0], 24.0, 20.0, S)
    q = np.stack(np.meshgrid(np.arange(S) + 0.5, np.arange(S) + 0.5, indexing="xy"), -1)
    p = (q - t) @ np.linalg.inv(m).T
    assert np.abs(crop[0] - ramp(p[..., 0], p[..., 1])).max() < 1e-5
    assert np.abs(crop[1] - (1 - ramp(p[..., 0], p[..., 1]))).max() < 1e-5


@pytest.mark.parametrize("fy", [500.0, 560.0], ids=["square-pixels", "fx-differs-from-fy"])
def test_the_crop_is_a_pinhole_camera_of_the_rotated_points(fy):
    K = torch.tensor([[[500.0, 0.0, 320.5], [0.0, fy, 240.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    f64 = torch.float64
    affine = transforms.crop_affine(torch.tensor([[300.0, 250.0]], dtype=f64), torch.tensor([220.0], dtype=f64),
                                    torch.tensor([35.0], dtype=f64), 64)
    k_crop, r_z = transforms.crop_camera(K, affine)
    X = torch.randn(1, 10, 3, dtype=torch.float64) * 0.4 + torch.tensor([0.1, 0.0, 4.0], dtype=torch.float64)
    m, t = affine[0, :, :2].numpy(), affine[0, :, 2].numpy()
    uv = X[0].numpy() @ K[0].numpy().T
    expected = (uv[:, :2] / uv[:, 2:]) @ m.T + t                 # the source projection, then the affine
    assert np.allclose(camera.project(X @ r_z.transpose(1, 2), k_crop)[0].numpy(), expected, atol=1e-9)
    assert k_crop[0, 1, 0] == 0 and k_crop[0, 1, 1] > 0 and np.allclose(k_crop[0, 2].numpy(), [0, 0, 1])
    assert np.allclose((r_z[0].T @ r_z[0]).numpy(), np.eye(3)) and math.isclose(float(torch.det(r_z[0])), 1.0)
    if fy == 500.0:        # square pixels: a plain rotation by the crop's angle, no skew
        assert np.allclose(r_z[0].numpy(), Rotation.from_euler("z", 35, degrees=True).as_matrix())
        assert abs(float(k_crop[0, 0, 1])) < 1e-12


def _random_sample(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    joints_cam = torch.randn(n, 29, 3, generator=g, dtype=f64) * 0.3 + torch.tensor([0.2, -0.1, 4.0], dtype=f64)
    K = torch.tensor([[40.0, 0.7, 15.0], [0.0, 42.0, 17.0], [0.0, 0.0, 1.0]], dtype=f64).repeat(n, 1, 1)
    joints_2d = camera.project(joints_cam, K)
    phi = torch.randn(n, 23, 2, generator=g, dtype=f64)
    return {
        "image": torch.rand(n, 3, size, size, generator=g, dtype=f64), "joints_2d": joints_2d,
        "uvd": camera.pixels_to_uvd(joints_2d, joints_cam, size), "joints_cam": joints_cam,
        "pose": kinematics.rodrigues(torch.randn(n, 24, 3, generator=g, dtype=f64) * 0.5),
        "betas": torch.randn(n, 10, generator=g, dtype=f64), "phi": phi / phi.norm(dim=-1, keepdim=True), "K": K,
        "visible": torch.rand(n, 29, generator=g) > 0.3,
        "uvd_weight": (torch.rand(n, 29, 3, generator=g) > 0.2).double(),
        "phi_weight": (torch.rand(n, 23, generator=g) > 0.2).double(), "pose_weight": torch.ones(n, dtype=f64),
        "betas_weight": torch.zeros(n, dtype=f64), "camera_weight": torch.ones(n, dtype=f64),
        "h36m_joints": torch.randn(n, 17, 3, generator=g, dtype=f64),
    }


def test_flipping_twice_gives_the_sample_back_and_the_flip_stays_a_pinhole_view():
    sample = _random_sample()
    once = transforms.flip_sample(sample, 32)
    twice = transforms.flip_sample(once, 32)
    for key, value in sample.items():
        assert torch.allclose(twice[key].double(), value.double(), atol=1e-12), key
    # the mirrored joints project onto the mirrored 2D joints, and uvd follows
    assert torch.allclose(camera.project(once["joints_cam"], once["K"]), once["joints_2d"], atol=1e-9)
    assert torch.allclose(once["uvd"], camera.pixels_to_uvd(once["joints_2d"], once["joints_cam"], 32), atol=1e-12)
    # the left wrist of the flipped sample is the right wrist of the original, mirrored in the image
    lw, rw = skeleton.JOINT_NAMES.index("left_wrist"), skeleton.JOINT_NAMES.index("right_wrist")
    assert np.allclose(once["joints_2d"][:, lw].numpy(), np.stack([32 - sample["joints_2d"][:, rw, 0],
                                                                  sample["joints_2d"][:, rw, 1]], -1))
    assert torch.equal(once["image"], sample["image"].flip(-1))
    with pytest.raises(ValueError, match="does not know how to mirror 'depth_map'"):
        transforms.flip_sample({"depth_map": torch.zeros(1, 4, 4)}, 4)


def test_a_flipped_pose_poses_the_mirrored_joints_and_has_the_flipped_twist():
    body = body_model.load(resolution="low").double()
    rest = body.rest_joints(torch.randn(3, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    mirror = torch.tensor(D)
    rest = (rest + rest[:, list(skeleton.FLIP_INDEX)] @ mirror) / 2       # a left/right symmetric skeleton
    axis_angle = torch.randn(3, 24, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.4
    pose = kinematics.rodrigues(axis_angle)
    joints, _ = kinematics.forward_kinematics(pose, rest, skeleton.PARENTS)
    phi = ik.twist_from_pose(pose, rest)
    flipped = transforms.flip_sample({"pose": pose, "phi": phi, "joints_cam": joints}, 64)
    mirrored = joints[:, list(skeleton.FLIP_INDEX)] @ mirror                # the mirror image, left and right swapped
    assert torch.allclose(flipped["joints_cam"], mirrored, atol=1e-12)
    posed, _ = kinematics.forward_kinematics(flipped["pose"], rest, skeleton.PARENTS)
    assert torch.allclose(posed, mirrored, atol=1e-9)                      # FK of the flipped pose = mirrored joints
    assert torch.allclose(ik.twist_from_pose(flipped["pose"], rest), flipped["phi"], atol=1e-9)
    assert torch.allclose(flipped["phi"][..., 0], phi[:, [skeleton.FLIP_INDEX[j] - 1 for j in range(1, 24)], 0])
    # axis-angle: y and z negated, left and right swapped (scipy as the reference)
    rotvec = Rotation.from_matrix(pose.reshape(-1, 3, 3).numpy()).as_rotvec().reshape(3, 24, 3)
    got = Rotation.from_matrix(flipped["pose"].reshape(-1, 3, 3).numpy()).as_rotvec().reshape(3, 24, 3)
    assert np.allclose(got, rotvec[:, list(skeleton.FLIP_INDEX[:24])] * [1, -1, -1], atol=1e-9)
    # and the IK, given the flipped joints and twists, gives the flipped pose back
    solved = ik.solve(flipped["joints_cam"].float(), flipped["phi"].float(), rest.float())
    posed_ik, _ = kinematics.forward_kinematics(solved.double(), rest, skeleton.PARENTS)
    assert (posed_ik - mirrored).norm(dim=-1).max() < 1e-4


def test_boxes_paint_flat_colours_or_noise_and_mark_the_joints_under_them():
    images = torch.zeros(2, 3, 8, 8)
    boxes = torch.tensor([[[1.0, 2.0, 4.0, 5.0]], [[0.0, 0.0, 8.0, 8.0]]])
    active = torch.tensor([[True], [False]])
    flat = transforms.paint_boxes(images, boxes, active, torch.tensor([[[1.0, 0.5, 0.25]], [[1.0, 1.0, 1.0]]]))
    assert flat[0, :, 2:5, 1:4].eq(torch.tensor([1.0, 0.5, 0.25])[:, None, None]).all()   # centres 1.5..3.5, 2.5..4.5
    assert flat[0].sum() == 9 * 1.75 and flat[1].eq(0).all()
    noise = torch.rand(2, 1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    textured = transforms.paint_boxes(images, boxes, active, noise)
    assert torch.equal(textured[0, :, 2:5, 1:4], noise[0, 0, :, 2:5, 1:4]) and textured[0, :, 0].eq(0).all()
    points = torch.tensor([[[1.0, 2.0], [4.0, 3.0], [3.9, 4.9]], [[3.0, 3.0], [9.0, 9.0], [0.0, 0.0]]])
    assert transforms.points_in_boxes(points, boxes, active).tolist() == [[True, False, True], [False, False, False]]
    assert transforms.inside_crop(points, 8).tolist() == [[True, True, True], [True, False, True]]
    gained = transforms.color_gain(torch.full((1, 3, 2, 2), 0.9), torch.tensor([[0.5, 1.0, 1.2]]))
    assert torch.allclose(gained[0, :, 0, 0], torch.tensor([0.45, 0.9, 1.0]))


def test_augmentation_draws_follow_their_distributions():
    g = torch.Generator().manual_seed(3)
    cfg = transforms.AugmentConfig(flip_probability=0.25)
    draws = [transforms.draw_augmentation(g, 8, cfg) for _ in range(3000)]
    scale = torch.stack([d["scale"] for d in draws])
    rot = torch.stack([d["rotation_deg"] for d in draws])
    flip = torch.stack([d["flip"] for d in draws]).double()
    active = torch.stack([d["active"][0] for d in draws]).double()
    gain = torch.stack([d["gain"] for d in draws])
    assert scale.min() >= 0.7 and scale.max() <= 1.3 and abs(float(scale.mean()) - 1) < 0.02
    assert rot.abs().max() <= 60 and abs(float((rot != 0).double().mean()) - 0.6) < 0.04
    assert abs(float(flip.mean()) - 0.25) < 0.03 and abs(float(active.mean()) - 0.5) < 0.04
    assert gain.min() >= 0.8 and gain.max() <= 1.2
    boxes = torch.stack([d["boxes"][0] for d in draws])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 64
    assert boxes.min() >= 0 and boxes.max() <= 8 and area.min() >= 0.05 - 1e-6 and area.max() <= 0.3 + 1e-6
    with pytest.raises(ValueError, match="probabilities"):
        transforms.AugmentConfig(flip_probability=1.5)
