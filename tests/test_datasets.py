"""datasets.py: loaders of HybrIK's parsed annotation files on tiny fixtures written here, checked
against numpy; the missing-file errors; mixing by ratio; train --data; the 3DPW/H36M protocol."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from hybrik_lite import body_model, checkpoint, datasets, evaluate, ik, kinematics, losses, model, skeleton, synthetic
from hybrik_lite import transforms
from hybrik_lite import train as train_lib

W, H = 64, 48                       # fixture images
FX, FY, CX, CY = 60.0, 66.0, 31.0, 23.0   # pixel-index convention, as in the files
S = 32                              # crop size of the tests


def ramp_image(path, seed):
    """A PNG (whatever the file's extension): red = x ramp, green = y ramp, blue = the seed."""
    xs, ys = np.meshgrid(np.arange(W), np.arange(H))
    pixels = np.stack([xs * 3, ys * 4, np.full_like(xs, seed * 20)], -1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")


def person(rng, joints=29):
    """Camera-frame joints (metres) of a person about 3.5 m away, and a box around their projection."""
    cam = rng.normal(0, 0.25, (joints, 3)) + [0.05, 0.0, 3.5]
    u, v = FX * cam[:, 0] / cam[:, 2] + CX, FY * cam[:, 1] / cam[:, 2] + CY
    box = [u.min() - 2, v.min() - 3, u.max() - u.min() + 4, v.max() - v.min() + 6]
    return cam, [float(b) for b in box]


def expected_crop(box, enlarge, size=S):
    """Numpy: the box as inclusive pixel indices clipped to the image -> centre and scale of the crop."""
    x, y, w, h = box
    x1, y1 = min(max(x, 0), W - 1), min(max(y, 0), H - 1)
    x2, y2 = min(max(x + max(w - 1, 0), 0), W - 1), min(max(y + max(h - 1, 0), 0), H - 1)
    centre = np.array([(x1 + x2 + 1) / 2, (y1 + y2 + 1) / 2])
    side = max(x2 + 1 - x1, y2 + 1 - y1) * enlarge
    return centre, size / side


def expected_uvd(cam, box, enlarge, fx=FX, fy=FY, cx=CX, cy=CY):
    centre, s = expected_crop(box, enlarge)
    u = fx * cam[:, 0] / cam[:, 2] + cx + 0.5                       # +0.5: pixel centres at k + 0.5
    v = fy * cam[:, 1] / cam[:, 2] + cy + 0.5
    px = np.stack([(u - centre[0]) * s + S / 2, (v - centre[1]) * s + S / 2], -1)
    return np.concatenate([px / S - 0.5, (cam[:, 2:] - cam[:1, 2:]) / 2.2], -1), px


# ---------------------------------------------------------------------------------------
# Fixture writers, one per format
# ---------------------------------------------------------------------------------------

def write_h36m(root, split="train"):
    rng = np.random.default_rng(0)
    folder = root / "h36m"
    names = ["s_01_act_02_subact_01_ca_01", "s_09_act_05_subact_02_ca_02", "s_05_act_03_subact_02_ca_04"]
    images, annotations, truth = [], [], []
    for k, seq in enumerate(names):
        cam, box = person(rng, 29 if split == "train" else 24)
        file = f"{seq}/{seq}_{k:06d}.jpg"
        ramp_image(folder / "images" / file, k)
        thetas, betas = rng.normal(0, 0.3, 72), rng.normal(0, 1, 10)
        h36m = rng.normal(0, 0.3, (17, 3)) + [0, 0, 3.5]
        images.append({"file_name": file, "width": W, "height": H, "subject": 1, "action_idx": 2, "cam_idx": 1,
                       "frame_idx": k, "cam_param": {"f": [FX, FY], "c": [CX, CY]}})
        ann = {"bbox": box, "h36m_joints": (h36m * 1000).ravel().tolist(), "smpl_joints": (cam * 1000).ravel().tolist(),
               "thetas": thetas.tolist(), "betas": betas.tolist(), "root_coord": (cam[0] * 1000).tolist()}
        if split == "train":
            angle = rng.uniform(-2, 2, 23)
            cos, sin = np.cos(angle), np.sin(angle)
            angle[[3, 10]], cos[[3, 10]], sin[[3, 10]] = -999, -999, -999
            ann["angle_twist"] = {"angle": angle.tolist(), "cos": cos.tolist(), "sin": sin.tolist()}
        annotations.append(ann)
        truth.append({"cam": cam, "box": box, "thetas": thetas, "betas": betas, "h36m": h36m, **(
            {"cos": cos, "sin": sin} if split == "train" else {})})
    set_name = datasets.Human36M.SETS[split]
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    (folder / "annotations" / f"{set_name}_protocol_2.json").write_text(
        json.dumps({"images": images, "annotations": annotations}))
    return [t for t, n in zip(truth, names) if not n.startswith("s_09_act_05_subact_02")]


def write_3dpw(root, split="test", count=3):
    rng = np.random.default_rng(1)
    folder = root / "pw3d"
    images, annotations, truth = [], [], []
    for k in range(count):
        cam, box = person(rng, 24)
        image_id = 100 + 7 * k
        images.append({"id": image_id, "file_name": f"image_{k:05d}.jpg", "sequence": "downtown_walking_00",
                       "width": W, "height": H, "cam_param": {"focal": [FX, FY], "princpt": [CX, CY]}})
        ramp_image(folder / "imageFiles" / "downtown_walking_00" / f"image_{k:05d}.jpg", k)
        pose, shape = rng.normal(0, 0.3, 72), rng.normal(0, 1, 10)
        h36m = rng.normal(0, 0.3, (17, 3)) + [1.0, 2.0, 0.5]            # not in the camera frame: root-relative only
        uv = np.stack([FX * cam[:, 0] / cam[:, 2] + CX, FY * cam[:, 1] / cam[:, 2] + CY, cam[:, 2]], -1)
        annotations.append({"id": k, "image_id": image_id, "bbox": box, "smpl_param": {"shape": shape.tolist(),
                            "pose": pose.tolist(), "trans": cam[0].tolist()}, "smpl_joint_cam": cam.tolist(),
                            "smpl_joint_img": uv.tolist(), "h36m_joints": h36m.tolist()})
        truth.append({"cam": cam, "box": box, "pose": pose, "betas": shape, "h36m": h36m})
    annotations.append({**annotations[0], "id": 99, "bbox": [10.0, 10.0, 4.0, 30.0]})   # clipped side < 5 px: dropped
    images.reverse()                                     # COCO format: matched by image_id, not by position
    (folder / "json").mkdir(parents=True, exist_ok=True)
    (folder / "json" / f"3DPW_{split}_new.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return truth


def write_3dhp(root, split="test"):
    rng = np.random.default_rng(2)
    folder = root / "3dhp"
    names = datasets.MPI_INF_3DHP_JOINTS[split]
    images, annotations, truth = [], [], []
    for k in range(2):
        cam, box = person(rng, len(names))
        cam = cam - cam[names.index("pelvis")] + cam[0]
        intrinsic = [[FX, 0, CX, 0], [0, FY, CY, 0], [0, 0, 1, 0]]
        file = f"TS1/imageSequence/img_{k:06d}.jpg"
        ramp_image(folder / f"mpi_inf_3dhp_{split}_set" / file, k)
        images.append({"id": k, "file_name": file, "width": W, "height": H, "cam_param": {"intrinsic_param": intrinsic},
                       **({"activity_id": 3} if split == "test" else {})})
        annotations.append({"id": k, "image_id": k, "bbox": box, "keypoints_cam": (cam * 1000).tolist()})
        truth.append({"cam": cam, "box": box})
    name = "annotation_mpi_inf_3dhp_train_v2.json" if split == "train" else "annotation_mpi_inf_3dhp_test.json"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"images": images, "annotations": annotations}))
    return truth


def write_coco(root, split="val"):
    rng = np.random.default_rng(3)
    folder = root / "coco"
    keypoints = np.zeros((17, 3))
    keypoints[:, :2] = rng.uniform([20, 10], [44, 38], (17, 2)).round()
    keypoints[:, 2] = 2
    keypoints[[datasets.COCO_JOINTS.index("left_wrist"), 0], 2] = 0          # unlabelled
    keypoints[datasets.COCO_JOINTS.index("right_knee"), 2] = 1               # labelled, occluded
    ramp_image(folder / f"{split}2017" / "000000000001.jpg", 1)
    images = [{"id": 1, "file_name": "000000000001.jpg", "width": W, "height": H}]
    annotations = [
        {"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [18.0, 8.0, 28.0, 32.0],
         "keypoints": keypoints.ravel().tolist(), "num_keypoints": 15},
        {"id": 6, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [0.0, 0.0, 30.0, 30.0],
         "keypoints": keypoints.ravel().tolist(), "num_keypoints": 15},
    ]
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    (folder / "annotations" / f"person_keypoints_{split}2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}))
    return keypoints, annotations[0]["bbox"]


# ---------------------------------------------------------------------------------------
# The loaders
# ---------------------------------------------------------------------------------------

def test_human36m_train_samples_match_the_file(tmp_path):
    truth = write_h36m(tmp_path)
    ds = datasets.load("h36m", "train", tmp_path, image_size=S)
    assert len(ds) == 2                                   # the S9 sequence HybrIK skips is left out
    for k, t in enumerate(truth):
        sample = ds[k]
        uvd, px = expected_uvd(t["cam"], t["box"], 1.0)   # Human3.6M boxes are not enlarged
        assert np.allclose(sample["uvd"].numpy(), uvd, atol=1e-5)
        assert np.allclose(sample["joints_2d"].numpy(), px, atol=1e-4)
        assert np.allclose(sample["joints_cam"].numpy(), t["cam"], atol=1e-6)          # mm -> m, no rotation
        rotations = Rotation.from_rotvec(t["thetas"].reshape(24, 3)).as_matrix()
        assert np.allclose(sample["pose"].numpy(), rotations, atol=1e-6)
        assert np.allclose(sample["betas"].numpy(), t["betas"], atol=1e-6)
        valid = t["cos"] != -999                            # the file's twist; -999 = unknown, weight 0
        assert sample["phi_weight"].tolist() == valid.astype(float).tolist()
        assert np.allclose(sample["phi"][valid].numpy(), np.stack([t["cos"], t["sin"]], -1)[valid], atol=1e-6)
        assert sample["uvd_weight"].eq(1).all() and sample["pose_weight"] == 1 and sample["camera_weight"] == 1
        assert sample["betas_weight"] == 0                  # SMPL betas mean nothing to the open model
        centre, s = expected_crop(t["box"], 1.0)
        K = np.array([[FX * s, 0, (CX + 0.5 - centre[0]) * s + S / 2], [0, FY * s, (CY + 0.5 - centre[1]) * s + S / 2],
                      [0, 0, 1]])
        assert np.allclose(sample["K"].numpy(), K, atol=1e-4)
        f = 1000 * S / 256                                  # the network's crop camera: same scale, same root pixel
        z = t["cam"][0, 2] * f / (s * math.sqrt(FX * FY))
        expected_camera = [1000 / (256 * z), (px[0, 0] - S / 2) * z / f, (px[0, 1] - S / 2) * z / f]
        assert np.allclose(sample["camera"].numpy(), expected_camera, rtol=1e-5, atol=1e-6)
        assert np.allclose(sample["h36m_joints"].numpy(), t["h36m"] - t["h36m"][:1], atol=1e-6)
        # the crop's pixels: the centre of the crop shows the centre of the box (red = 3 x, green = 4 y)
        i, j = S // 2, S // 2
        src = (np.array([j + 0.5, i + 0.5]) - S / 2) / s + centre - 0.5           # source pixel-index coordinates
        assert abs(float(sample["image"][0, i, j]) * 255 - 3 * src[0]) < 1.0
        assert abs(float(sample["image"][1, i, j]) * 255 - 4 * src[1]) < 1.0


def test_human36m_test_set_has_24_joints_and_twists_from_the_pose(tmp_path):
    truth = write_h36m(tmp_path, "test")
    ds = datasets.Human36M("test", tmp_path, image_size=S)
    sample = ds[0]
    assert sample["uvd_weight"][:24].eq(1).all() and sample["uvd_weight"][24:].eq(0).all()
    assert np.allclose(sample["joints_cam"][:24].numpy(), truth[0]["cam"], atol=1e-6)
    body = ds.body
    rest = body.rest_joints(torch.tensor(truth[0]["betas"][None], dtype=torch.float32)).double()
    pose = torch.tensor(Rotation.from_rotvec(truth[0]["thetas"].reshape(24, 3)).as_matrix())[None]
    assert torch.allclose(sample["phi"].double(), ik.twist_from_pose(pose, rest)[0], atol=1e-5)
    assert sample["phi_weight"].eq(1).all()


def test_3dpw_samples_match_the_file_and_their_twist_rebuilds_the_pose(tmp_path):
    truth = write_3dpw(tmp_path)
    ds = datasets.load("3dpw", "test", tmp_path, image_size=S)
    assert len(ds) == 3                                   # the 4-pixel-wide box is dropped
    batch = ds.batch(range(3))
    for k, t in enumerate(truth):
        uvd, _ = expected_uvd(t["cam"], t["box"], 1.25)    # metres already; boxes enlarged 1.25
        assert np.allclose(batch["uvd"][k, :24].numpy(), uvd, atol=1e-5)
        assert batch["uvd_weight"][k, 24:].eq(0).all() and batch["uvd_weight"][k, :24].eq(1).all()
        assert not batch["visible"][k, 24:].any()
        assert np.allclose(batch["h36m_joints"][k].numpy(), t["h36m"] - t["h36m"][:1], atol=1e-6)
    # the twist with the loader's body: the IK with those twists gives the file's pose back
    body = ds.body.double()
    rest = body.rest_joints(batch["betas"].double())
    pose = torch.tensor(np.stack([Rotation.from_rotvec(t["pose"].reshape(24, 3)).as_matrix() for t in truth]))
    joints, _ = kinematics.forward_kinematics(pose, rest, skeleton.PARENTS)
    solved = ik.solve(joints, batch["phi"].double(), rest)
    assert torch.allclose(solved, pose, atol=1e-4)
    assert torch.allclose(batch["phi"].double(), ik.twist_from_pose(pose, rest), atol=1e-5)


def test_3dhp_keeps_the_joints_with_an_smpl_counterpart(tmp_path):
    truth = write_3dhp(tmp_path, "test")
    write_3dhp(tmp_path, "train")
    for split, t in (("test", truth[1]), ("train", None)):
        ds = datasets.load("3dhp", split, tmp_path, image_size=S)
        names = datasets.MPI_INF_3DHP_JOINTS[split]
        assert names[{"test": 14, "train": 4}[split]] == "pelvis"          # the roots of the two sets
        sample = ds[1]
        mapped = [skeleton.JOINT_NAMES.index(n) for n in datasets.MPI_INF_3DHP_TO_29]
        assert sample["uvd_weight"][mapped].eq(1).all() and sample["uvd_weight"].sum() == 3 * len(mapped) == 42
        if t is not None:
            for name in datasets.MPI_INF_3DHP_TO_29:
                assert np.allclose(sample["joints_cam"][skeleton.JOINT_NAMES.index(name)].numpy(),
                                   t["cam"][names.index(name)], atol=1e-6), name
            uvd, _ = expected_uvd(t["cam"][[names.index(n) for n in datasets.MPI_INF_3DHP_TO_29]], t["box"], 1.25)
            assert np.allclose(sample["uvd"][mapped].numpy(), uvd, atol=1e-5)      # pelvis first: d relative to it
        assert sample["pose_weight"] == 0 and sample["phi_weight"].eq(0).all() and sample["camera_weight"] == 1


def test_coco_gives_2d_only_on_the_limbs(tmp_path):
    keypoints, box = write_coco(tmp_path)
    ds = datasets.load("coco", "val", tmp_path, image_size=S)
    assert len(ds) == 1                                   # the crowd annotation is skipped
    sample = ds[0]
    centre, s = expected_crop(box, 1.25)
    for name, j in datasets.COCO_TO_29.items():
        x, y, flag = keypoints[datasets.COCO_JOINTS.index(name)]
        assert sample["uvd_weight"][j, 0] == (flag > 0) and sample["uvd_weight"][j, 2] == 0, name
        if flag > 0:
            expected = (np.array([x, y]) + 0.5 - centre) * s + S / 2
            assert np.allclose(sample["joints_2d"][j].numpy(), expected, atol=1e-4), name
    assert sample["uvd_weight"].sum() == 2 * (len(datasets.COCO_TO_29) - 1)     # left wrist unlabelled
    assert sample["camera_weight"] == 0 and sample["pose_weight"] == 0 and torch.isfinite(sample["camera"]).all()


def test_augmented_samples_are_deterministic_and_consistent(tmp_path):
    write_3dpw(tmp_path)
    ds = datasets.load("3dpw", "test", tmp_path, image_size=S)
    plain, flips = ds[1], 0
    for seed in range(12):
        a = ds.sample(1, torch.Generator().manual_seed(seed))
        b = ds.sample(1, torch.Generator().manual_seed(seed))
        assert all(torch.equal(a[k], b[k]) for k in a)
        uv = a["joints_cam"] @ a["K"].T
        assert torch.allclose(uv[:, :2] / uv[:, 2:], a["joints_2d"], atol=1e-3)   # still the crop's pinhole view
        flipped = bool(transforms.draw_augmentation(torch.Generator().manual_seed(seed), S, ds.augment)["flip"])
        flips += flipped
        expected_phi = transforms.flip_twist(plain["phi"][None])[0] if flipped else plain["phi"]
        assert torch.allclose(a["phi"], expected_phi, atol=1e-6)                  # sin(phi) negated on a flip
        # bone lengths survive rotation, scale and flip; the mirrored left forearm is the right one
        lw, le = skeleton.JOINT_NAMES.index("left_wrist"), skeleton.JOINT_NAMES.index("left_elbow")
        rw, re_ = skeleton.FLIP_INDEX[lw], skeleton.FLIP_INDEX[le]
        src = (rw, re_) if flipped else (lw, le)
        assert torch.isclose((a["joints_cam"][lw] - a["joints_cam"][le]).norm(),
                             (plain["joints_cam"][src[0]] - plain["joints_cam"][src[1]]).norm(), atol=1e-6)
    assert 0 < flips < 12
    with pytest.raises(IndexError, match="out of range"):
        ds.sample(3)


# ---------------------------------------------------------------------------------------
# Missing files and bad input
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, file, url", [
    ("h36m", "Sample_5_train_Human36M_smpl_leaf_twist_protocol_2.json", "vision.imar.ro/human3.6m"),
    ("3dpw", "3DPW_train_new.json", "virtualhumans.mpi-inf.mpg.de/3DPW"),
    ("3dhp", "annotation_mpi_inf_3dhp_train_v2.json", "vcai.mpi-inf.mpg.de/3dhp-dataset"),
    ("coco", "person_keypoints_train2017.json", "cocodataset.org"),
])
def test_a_missing_folder_or_file_names_it_and_where_to_get_it(tmp_path, monkeypatch, name, file, url):
    with pytest.raises(FileNotFoundError, match=rf"{file}.*{url}.*HybrIK repository"):
        datasets.load(name, "train", tmp_path)
    (tmp_path / datasets._DATASETS[name].folder).mkdir()
    with pytest.raises(FileNotFoundError, match=rf"{file}.*{url}"):
        datasets.load(name, "train", tmp_path)
    monkeypatch.setenv("HYBRIK_LITE_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        datasets.load(name, "train")


def test_the_data_root_comes_from_the_environment_and_missing_images_are_named(tmp_path, monkeypatch):
    write_3dpw(tmp_path)
    monkeypatch.setenv("HYBRIK_LITE_DATA", str(tmp_path))
    ds = datasets.load("3dpw", "test", image_size=S)
    assert len(ds) == 3
    (tmp_path / "pw3d" / "imageFiles" / "downtown_walking_00" / "image_00001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="image_00001.jpg.*virtualhumans"):
        ds[1]
    with pytest.raises(ValueError, match="splits"):
        datasets.load("3dpw", "val", tmp_path)
    with pytest.raises(ValueError, match="did you mean '3dpw'"):
        datasets.load("3dwp", "test", tmp_path)
    (tmp_path / "pw3d" / "json" / "3DPW_train_new.json").write_text(json.dumps({"images": [], "annotations": [{}]}))
    with pytest.raises(ValueError, match="not in HybrIK's parsed format"):
        datasets.load("3dpw", "train", tmp_path)


# ---------------------------------------------------------------------------------------
# Mixing
# ---------------------------------------------------------------------------------------

def test_mix_specifications():
    assert datasets.parse_mix("synthetic:0.5,3dpw:0.5") == {"synthetic": 0.5, "3dpw": 0.5}
    assert datasets.parse_mix("h36m,coco,3dhp") == pytest.approx({"h36m": 0.4, "coco": 0.5, "3dhp": 0.1})
    assert datasets.parse_mix("h36m,coco,3dhp,3dpw") == pytest.approx(
        {"h36m": 0.3, "coco": 0.4, "3dhp": 0.1, "3dpw": 0.2})
    # synthetic takes 1/3; Human3.6M and 3DPW split the rest 0.3 : 0.2
    assert datasets.parse_mix("synthetic,h36m,3dpw") == pytest.approx(
        {"synthetic": 1 / 3, "h36m": 0.4, "3dpw": 0.8 / 3})
    assert datasets.parse_mix("synthetic:3,coco:1") == {"synthetic": 0.75, "coco": 0.25}
    for bad, message in (("synthetic,h63m", "did you mean 'h36m'"), ("synthetic:0.5,3dpw", "every source or for none"),
                         ("coco:-1", "positive"), ("coco,coco", "twice"), ("", "list of sources"),
                         ("coco:x", "number")):
        with pytest.raises(ValueError, match=message):
            datasets.parse_mix(bad)
    with pytest.raises(ValueError, match="DataConfig.data"):
        train_lib.DataConfig(data="synthetic,nope")


def test_sources_are_drawn_with_their_ratios():
    mix = datasets.parse_mix("synthetic:0.5,h36m:0.3,3dpw:0.2")
    stream = datasets.MixedStream(mix, {name: None for name in mix}, seed=4)
    n = 20000
    names = [stream.source_of(i)[0] for i in range(n)]
    for name, p in mix.items():
        share = names.count(name) / n
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n), (name, share, p)
    assert [stream.source_of(i)[0] for i in range(50)] == names[:50]          # a pure function of (seed, index)
    other = datasets.MixedStream(mix, {name: None for name in mix}, seed=5)
    assert [other.source_of(i)[0] for i in range(200)] != names[:200]


def test_a_mixed_batch_holds_both_sources_and_trains(tmp_path):
    write_3dpw(tmp_path, "train")
    syn = synthetic.SyntheticDataset(1000, seed=0, config=synthetic.SyntheticConfig(image_size=S, resolution="low"))
    stream = datasets.training_stream("synthetic:0.5,3dpw:0.5", syn, root=tmp_path, image_size=S, seed=0)
    assert datasets.training_stream("synthetic", syn, image_size=S) is syn     # alone: the stream as before
    indices = list(range(8))
    batch = stream.batch(indices)
    assert set(batch) == set(datasets.TRAINING_KEYS) and batch["image"].shape == (8, 3, S, S)
    kinds = [stream.source_of(i)[0] for i in indices]
    assert "synthetic" in kinds and "3dpw" in kinds
    for k, kind in enumerate(kinds):
        if kind == "synthetic":
            alone = syn.batch([indices[k]])
            assert torch.allclose(batch["uvd"][k], alone["uvd"][0], atol=1e-5) and batch["uvd_weight"][k].eq(1).all()
        else:
            name, g = stream.source_of(indices[k])
            item = int(torch.randint(len(stream.sources[name]), (), generator=g))
            again = stream.sources[name].sample(item, g)
            assert torch.equal(batch["image"][k], again["image"]) and batch["uvd_weight"][k, 24:].eq(0).all()
    # the loss sees the weights: unlabelled leaves do not count, the synthetic samples score as before
    targets = losses.targets_from_batch(batch)
    assert targets["uvd_weight"].shape == (8, 29, 3)
    syn_rows = [k for k, kind in enumerate(kinds) if kind == "synthetic"]
    plain = losses.targets_from_batch(syn.batch([indices[k] for k in syn_rows]))     # the same rendering call
    assert torch.equal(targets["uvd_weight"][syn_rows], plain["uvd_weight"][..., None].expand(-1, -1, 3))
    assert torch.allclose(targets["camera"][syn_rows], plain["camera"])


def test_train_with_data_mixes_real_samples_in(tmp_path):
    write_3dpw(tmp_path / "data", "train")
    tiny = ["model.width=0.125", "model.head_channels=16", "model.fc_dim=32", "train.batch_size=4", "train.steps=2",
            "train.val_every=1000", "data.num_workers=0", "data.val_samples=4", "data.resolution=low",
            f"train.out_dir={tmp_path / 'runs'}", f"data.data_root={tmp_path / 'data'}", "data.data=synthetic,3dpw"]
    config = train_lib.apply_overrides(train_lib.preset("cpu-small"), tiny)
    result = train_lib.train(config, progress=False)
    assert result["step"] == 2 and math.isfinite(result["last"]["loss"])
    saved = json.loads((tmp_path / "runs" / "cpu-small" / "config.json").read_text())
    assert saved["data"]["data"] == "synthetic,3dpw"
    assert train_lib.main(["--data", "synthetic,3dwp", "--no-progress"]) == 2


# ---------------------------------------------------------------------------------------
# Evaluation: the paper's protocol
# ---------------------------------------------------------------------------------------

def procrustes_numpy(p, g):
    """Similarity alignment of p onto g (Umeyama), in numpy."""
    mp, mg = p.mean(0), g.mean(0)
    pc, gc = p - mp, g - mg
    u, sig, vt = np.linalg.svd(pc.T @ gc)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1, 1, d]) @ u.T
    scale = (sig * [1, 1, d]).sum() / (pc ** 2).sum()
    return scale * pc @ rot.T + mg


def test_the_3dpw_and_h36m_protocols_against_numpy(tmp_path):
    truth = write_3dpw(tmp_path)
    ds = datasets.load("3dpw", "test", tmp_path, image_size=S)
    rng = np.random.default_rng(9)
    V = 40
    regressor = rng.uniform(0, 1, (17, V)) * (rng.uniform(0, 1, (17, V)) < 0.2)
    regressor /= regressor.sum(1, keepdims=True)
    vertices = rng.normal(0, 0.4, (len(ds), V, 3))

    class FakeNet(torch.nn.Module):          # "predicts" the given vertices, in dataset order
        seen = 0

        def forward(self, images, ik_mode=None):
            n = len(images)
            out = torch.tensor(vertices[self.seen:self.seen + n], dtype=torch.float32)
            self.seen += n
            return {"vertices": out}

    scored = list(skeleton.H36M_EVAL_14)
    for protocol in ("3dpw", "h36m"):
        result = evaluate.evaluate_dataset(FakeNet(), ds, torch.tensor(regressor, dtype=torch.float32),
                                           protocol=protocol, batch_size=2)
        mpjpe, pa = [], []
        for k, t in enumerate(truth):
            pred = regressor @ vertices[k]
            pred, gt = pred - pred[0], t["h36m"] - t["h36m"][0]
            mpjpe.append(np.linalg.norm(pred[scored] - gt[scored], axis=-1).mean())
            if protocol == "3dpw":           # select 14, then align
                pa.append(np.linalg.norm(procrustes_numpy(pred[scored], gt[scored]) - gt[scored], axis=-1).mean())
            else:                            # align 17, then select 14
                pa.append(np.linalg.norm(procrustes_numpy(pred, gt)[scored] - gt[scored], axis=-1).mean())
        assert result["samples"] == 3
        assert np.allclose(result["per_sample"]["mpjpe"].numpy(), mpjpe, atol=1e-5)
        assert np.allclose(result["per_sample"]["pa_mpjpe"].numpy(), pa, atol=1e-5)
        assert math.isclose(result["mpjpe_mm"], np.mean(mpjpe) * 1000, rel_tol=1e-4)
    # the two alignments differ on this data (otherwise the test could not tell them apart)
    a, b = torch.tensor(vertices[:, :17]), torch.tensor(vertices[:, 17:34])
    assert not np.allclose(evaluate.h36m_protocol_errors(a, b, "3dpw")["pa_mpjpe"].numpy(),
                           evaluate.h36m_protocol_errors(a, b, "h36m")["pa_mpjpe"].numpy())


def test_eval_cli_on_a_real_test_set(tmp_path, capsys):
    write_3dpw(tmp_path / "data")
    assert evaluate.main(["--data", "3dpw", "--data-root", str(tmp_path / "data")]) == 2
    assert "--h36m-regressor" in capsys.readouterr().out
    config = train_lib.apply_overrides(train_lib.preset("cpu-small"), [
        "model.width=0.125", "model.head_channels=16", "model.fc_dim=32", "model.image_size=64",
        "model.heatmap_size=8"])
    net = model.build(config.model)
    ckpt = checkpoint.save(tmp_path / "tiny.pt", model=net, config=config.to_dict(),
                           body_model=checkpoint.body_identity(net.hybrik.body, "low"))
    full = body_model.load(resolution="full").v_template.shape[0]
    np.save(tmp_path / "wrong.npy", np.ones((17, 6890), np.float32))
    args = ["--checkpoint", str(ckpt), "--data", "3dpw", "--data-root", str(tmp_path / "data"), "--device", "cpu"]
    assert evaluate.main(args + ["--h36m-regressor", str(tmp_path / "wrong.npy")]) == 2
    assert "6890" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    sparse = rng.uniform(0, 1, (17, full)) * (rng.uniform(0, 1, (17, full)) < 0.01)
    np.save(tmp_path / "reg.npy", (sparse / sparse.sum(1, keepdims=True)).astype(np.float32))
    out = tmp_path / "eval.json"
    assert evaluate.main(args + ["--h36m-regressor", str(tmp_path / "reg.npy"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["samples"] == 3 and result["protocol"] == "3dpw" and len(result["per_joint_mpjpe_mm"]) == 14
    assert math.isfinite(result["mpjpe_mm"]) and result["pa_mpjpe_mm"] <= result["mpjpe_mm"] + 1e-6
    assert evaluate.main(["--data", "3dhp", "--h36m-regressor", "x.npy"]) == 2
    assert "not implemented" in capsys.readouterr().out
