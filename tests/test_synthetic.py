"""synthetic.py: poses inside the limits, determinism, annotation consistency, the frozen split."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hybrik_lite import body_model, ik, kinematics, render, skeleton, synthetic


def assert_images_match(a, b, tol=1e-4, max_share=0.003):
    """Equal but for float rounding, which may flip a few pixels on triangle edges."""
    differ = ((a - b).abs() > tol).any(1)  # (N, H, W)
    share = differ.float().mean().item()
    assert share <= max_share, f"{share:.2%} of pixels differ by more than {tol}"


@pytest.fixture(scope="module")
def dataset():
    return synthetic.SyntheticDataset(64, seed=7)


@pytest.fixture(scope="module")
def batch(dataset):
    return dataset.batch(range(24))


def test_limits_are_mirrored_and_ordered():
    lim = synthetic.joint_limits(torch.float64)
    assert lim.shape == (24, 3, 2) and (lim[..., 0] <= lim[..., 1]).all()
    for left, right in skeleton.LEFT_RIGHT_PAIRS:
        if right < 24:
            assert torch.allclose(lim[right, 0], lim[left, 0])
            assert torch.allclose(lim[right, 1:], -lim[left, 1:].flip(-1))


def test_sampled_and_canonical_poses_respect_the_limits():
    lim = synthetic.joint_limits(torch.float64)
    euler = synthetic.sample_euler(5000, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert ((euler >= lim[..., 0] - 1e-12) & (euler <= lim[..., 1] + 1e-12)).all()
    assert (euler[:, 0] == 0).all()
    for name in synthetic.CANONICAL_POSES_DEG:
        e = synthetic.canonical_euler(name, torch.float64)
        assert ((e >= lim[..., 0] - 1e-9) & (e <= lim[..., 1] + 1e-9)).all(), name
    with pytest.raises(ValueError, match="unknown canonical pose"):
        synthetic.canonical_euler("dancing")


def test_euler_convention_matches_scipy():
    e = torch.randn(200, 3, dtype=torch.float64)
    ref = Rotation.from_euler("xyz", e.numpy()).as_matrix()  # extrinsic xyz = Rz Ry Rx
    assert np.abs(synthetic.euler_to_matrix(e).numpy() - ref).max() < 1e-12


def test_global_orientation_covers_all_views():
    rot = synthetic.sample_global_orientation(4000, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(4000, dtype=torch.float64))
    # the body's forward axis (+Z) in the camera frame: front views point at the camera (z < 0)
    forward = rot[:, :, 2]
    heading = torch.atan2(forward[:, 0], -forward[:, 2])
    counts = torch.histc(heading, bins=8, min=-math.pi, max=math.pi)
    assert (counts > 300).all(), f"views are not spread over all headings: {counts.tolist()}"
    up = -rot[:, 1, 1]  # the body's +Y mapped to the camera's -y (up in the image)
    assert (up > math.cos(math.radians(20))).all()


def test_samples_are_deterministic_and_independent_of_batching(dataset, batch):
    same = synthetic.SyntheticDataset(64, seed=7).batch(range(24))
    for key in batch:  # the same call is bit-for-bit the same
        assert torch.equal(same[key], batch[key]), key
    again = synthetic.SyntheticDataset(64, seed=7).batch([5, 3])
    single = dataset[3]
    for key in ("image", "joints_2d", "pose", "phi", "visible"):  # other batchings: float rounding only
        if key == "image":
            assert_images_match(again[key][[1, 0]], batch[key][[3, 5]])
            assert_images_match(single[key][None], batch[key][[3]])
        else:
            assert torch.allclose(again[key][1].float(), batch[key][3].float(), atol=1e-4)
            assert torch.allclose(again[key][0].float(), batch[key][5].float(), atol=1e-4)
            assert torch.allclose(single[key].float(), batch[key][3].float(), atol=1e-4)
    other = synthetic.SyntheticDataset(64, seed=8).batch([3])
    assert not torch.allclose(other["pose"][0], batch["pose"][3])


def test_annotations_are_consistent(batch):
    S = synthetic.SyntheticConfig().image_size
    K = batch["K"]
    # projecting the 3D joints with the intrinsics gives the 2D joints
    uv = (K @ batch["joints_cam"].transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(uv[..., :2] / uv[..., 2:], batch["joints_2d"], atol=1e-3)
    # uvd as in HybrIK
    assert torch.allclose(batch["uvd"][..., :2], batch["joints_2d"] / S - 0.5, atol=1e-6)
    depth = (batch["joints_cam"][..., 2] - batch["joints_cam"][:, :1, 2]) / 2.2
    assert torch.allclose(batch["uvd"][..., 2], depth, atol=1e-6)
    assert (batch["uvd"][..., :2].abs() <= 0.75).all()
    # the 3D joints are the body model's joints, moved rigidly
    bm = body_model.load()
    out = bm(batch["betas"], batch["pose"])
    rel_model = out.joints - out.joints[:, :1]
    rel_data = batch["joints_cam"] - batch["joints_cam"][:, :1]
    assert torch.allclose(rel_model, rel_data, atol=1e-5)
    # twist is the ground truth of the pose
    assert torch.allclose(batch["phi"], ik.twist_from_pose(batch["pose"], out.rest_joints), atol=1e-5)
    assert torch.allclose(batch["phi"].norm(dim=-1), torch.ones(24, 23), atol=1e-5)


def test_person_fills_the_crop(batch):
    S = synthetic.SyntheticConfig().image_size
    lo_fill, hi_fill = synthetic.SyntheticConfig().fill_range
    for mask in batch["mask"]:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        size = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1).item() / S
        assert lo_fill - 0.05 <= size <= hi_fill + 0.05, size


def test_visibility_follows_crop_and_occluders():
    params = synthetic.sample_parameters(3, range(6))
    params["box_active"][:] = False
    params["box_active"][0, 0] = True
    # put one box exactly over joint 0 of sample 0 (its pixel position comes from a first render)
    bm = body_model.load()
    first = synthetic.render_samples(bm, params)
    u, v = first["joints_2d"][0, 0].double()
    params["boxes"][0, 0] = torch.tensor([u - 3, v - 3, u + 3, v + 3], dtype=torch.float64)
    out = synthetic.render_samples(bm, params)
    assert not out["visible"][0, 0]
    j2d = out["joints_2d"]
    S = synthetic.SyntheticConfig().image_size
    in_crop = ((j2d >= 0) & (j2d < S)).all(-1)
    assert torch.equal(out["visible"][1:], in_crop[1:])
    # the box is painted: the pixel under joint 0 has the box's colour
    px = out["image"][0, :, int(v), int(u)]
    assert torch.allclose(px, params["box_colors"][0, 0].float(), atol=1e-6)


def test_ik_on_ground_truth_recovers_the_pose():
    bm = body_model.load().double()
    params = synthetic.sample_parameters(11, range(8))
    gt = synthetic.render_samples(bm, params)
    rest = bm.rest_joints(gt["betas"])
    rot = ik.solve(gt["joints_cam"] - gt["joints_cam"][:, :1] + rest[:, :1], gt["phi"], rest)
    err = Rotation.from_matrix((rot.transpose(-1, -2) @ gt["pose"]).reshape(-1, 3, 3).numpy()).magnitude()
    assert np.degrees(err).max() < 1e-6


def test_dataloader_workers_give_the_same_samples(dataset):
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2,
                                         worker_init_fn=synthetic.SyntheticDataset.worker_init)
    first = next(iter(loader))
    direct = dataset.batch(range(4))
    assert_images_match(first["image"], direct["image"])
    assert torch.allclose(first["uvd"], direct["uvd"], atol=1e-6)


def test_frozen_split_regenerates_from_its_seed():
    split = synthetic.load_split()
    meta = split["meta"]
    assert meta["count"] == len(split["image"]) >= 200
    cfg = synthetic.SyntheticConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()})
    subset = [0, 1, 17, meta["count"] - 1]
    fresh = synthetic.SyntheticDataset(meta["count"], seed=meta["seed"], config=cfg).batch(subset)
    for key in synthetic.ANNOTATION_KEYS:
        a, b = split[key][subset], fresh[key]
        if a.dtype == torch.bool:
            assert torch.equal(a, b), key
        else:
            assert torch.allclose(a.float(), b.float(), atol=1e-4), key
    assert_images_match(split["image"][subset], fresh["image"], tol=1.5 / 255)  # stored as 8-bit PNG


def test_save_split_never_overwrites(tmp_path):
    ds = synthetic.SyntheticDataset(2, seed=1, config=synthetic.SyntheticConfig(image_size=64))
    synthetic.save_split(tmp_path, ds)
    before = (tmp_path / "annotations.npz").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        synthetic.save_split(tmp_path, synthetic.SyntheticDataset(2, seed=2))
    assert (tmp_path / "annotations.npz").read_bytes() == before
    loaded = synthetic.load_split(tmp_path)
    assert loaded["image"].shape == (2, 3, 64, 64)


def test_bad_input():
    with pytest.raises(ValueError, match="positive"):
        synthetic.SyntheticDataset(0)
    with pytest.raises(IndexError, match="out of range"):
        synthetic.SyntheticDataset(4).batch([4])
    with pytest.raises(ValueError, match="seed and index"):
        synthetic.sample_generator(-1, 0)
    with pytest.raises(FileNotFoundError, match="no frozen split"):
        synthetic.load_split("/nonexistent/folder")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_dataset_matches_cpu():
    cpu = synthetic.SyntheticDataset(8, seed=5).batch(range(4))
    gpu = synthetic.SyntheticDataset(8, seed=5, device="cuda").batch(range(4))
    assert gpu["image"].is_cuda
    assert torch.allclose(gpu["joints_2d"].cpu(), cpu["joints_2d"], atol=1e-3)
    assert (gpu["image"].cpu() - cpu["image"]).abs().mean() < 0.01
