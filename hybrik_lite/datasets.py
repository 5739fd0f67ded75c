"""Real datasets: HybrIK's parsed annotation files read into the synthetic data's sample schema, and
the mixed training stream (``python -m hybrik_lite train --data synthetic,h36m,3dpw``).

Human3.6M, 3DPW, MPI-INF-3DHP and COCO are licensed: nothing is downloaded or shipped. Bring
the images from each dataset's own site and the parsed annotation files from the HybrIK
repository's instructions, and lay them out under one data root (the ``root`` argument, else
``$HYBRIK_LITE_DATA``, else ``data_samples/`` of a checkout: :func:`hybrik_lite._data.search_dirs`):

==========  =========================================================  ==========================================
name        files under the root                                       images, licence
==========  =========================================================  ==========================================
``h36m``    ``h36m/annotations/<SET>_protocol_2.json``, ``h36m/images``  http://vision.imar.ro/human3.6m
``3dpw``    ``pw3d/json/3DPW_{train,test}_new.json``, ``pw3d/imageFiles``  https://virtualhumans.mpi-inf.mpg.de/3DPW/
``3dhp``    ``3dhp/annotation_mpi_inf_3dhp_{train_v2,test}.json``,       https://vcai.mpi-inf.mpg.de/3dhp-dataset/
            ``3dhp/mpi_inf_3dhp_{train,test}_set/``
``coco``    ``coco/annotations/person_keypoints_{train,val}2017.json``,  https://cocodataset.org
            ``coco/{train,val}2017/``
==========  =========================================================  ==========================================

The JSON is parsed on every construction (no ``.pt`` cache that would go stale after an edit).

What each file gives (units converted to metres; camera frames OpenCV, as the files' own):

- Human3.6M: ``smpl_joints`` (29 in train, 24 in test; mm), ``thetas`` / ``betas`` (SMPL),
  ``angle_twist`` (train: the file's twist, ``-999`` = unknown, weight 0), ``h36m_joints`` (17, mm);
  ``images`` and ``annotations`` matched by position; three S9 sequences always skipped.
- 3DPW (COCO format, matched by ``image_id``): ``smpl_joint_cam`` (24, m), ``smpl_param``
  pose/shape, ``h36m_joints`` (17, m, orientation of the camera frame: used root-relative only).
  The 5 leaf joints have weight 0; boxes whose clipped side is under 5 px are dropped.
- MPI-INF-3DHP: ``keypoints_cam`` (28 joints in train, 17 in test; mm) of which the ones with
  an SMPL counterpart are kept (:data:`MPI_INF_3DHP_TO_29`); no SMPL parameters.
- COCO: 2D keypoints only (flag 1 or 2 = labelled), on knees, ankles, shoulders, elbows and
  wrists (:data:`COCO_TO_29`); ``d`` and everything 3D have weight 0.

Pixel coordinates in the files count pixel *indices* (pixel ``k``'s centre at ``k``, as in
HybrIK); they get ``+0.5`` here, the package's convention (centre at ``k + 0.5``). A box
``[x, y, w, h]`` covers the pixel indices ``x .. x + w - 1``.

Samples (:meth:`ParsedDataset.sample`): the synthetic schema (:mod:`hybrik_lite.synthetic`:
``image``, ``joints_2d``, ``uvd``, ``joints_cam``, ``pose``, ``betas``, ``phi``, ``K``,
``visible``) on an ``image_size`` square crop, plus the weights that say what is known:

===============  ========  ====================================================================
key              shape     meaning
===============  ========  ====================================================================
uvd_weight       (29, 3)   1 where the target coordinate is labelled (u, v: 2D; d: 3D)
phi_weight       (23,)     1 where the twist is known
pose_weight      ()        1 with SMPL parameters (rotation and mesh terms)
betas_weight     ()        1 with SMPL betas *and* an SMPL-mesh body model (6,890 vertices):
                           the files' betas are SMPL's and mean nothing to the open model
camera_weight    ()        1 with 3D joints (the camera target below)
camera           (3,)      HybrIK's (s, t_x, t_y) of the root in the network's crop camera
                           (focal 1000 per 256 px, centred): same image scale, same root pixel
h36m_joints      (17, 3)   (evaluation) Human3.6M joints of the file, root-relative, metres
===============  ========  ====================================================================

``joints_cam`` and ``K`` are the crop's own pinhole camera (:func:`hybrik_lite.transforms.crop_camera`):
``project(joints_cam, K) = joints_2d``. Without SMPL parameters ``pose`` is the identity and
``betas`` zero (weight 0); unlabelled joints sit at the root (weight 0). The twist comes from the
file (``angle_twist``) when it has one, else from the SMPL pose by
:func:`hybrik_lite.ik.twist_from_pose` on the loader's body model (default: the open model; its
rest skeleton with the file's betas).

Training samples (``sample(i, generator)``) are augmented by :mod:`hybrik_lite.transforms`:
box enlarged 1.25 (1.0 for Human3.6M), scale jitter, rotation, flip (25% on the SMPL datasets,
as HybrIK), colour gain, a noise rectangle. Without a generator a sample is the plain crop.
"""
from __future__ import annotations

import difflib
import json
import math
from pathlib import Path

import numpy as np
import torch

from . import _data, camera, ik, skeleton, transforms
from .kinematics import rodrigues

__all__ = ["SOURCES", "PAPER_MIX", "PAPER_MIX_3DPW", "MPI_INF_3DHP_JOINTS", "MPI_INF_3DHP_TO_29", "COCO_JOINTS",
           "COCO_TO_29", "TRAINING_KEYS", "ParsedDataset", "Human36M", "PW3D", "MPIINF3DHP", "COCO", "load",
           "parse_mix", "MixedStream", "training_stream"]

#: Every data source of ``train --data``.
SOURCES = ("synthetic", "h36m", "3dpw", "3dhp", "coco")
#: HybrIK's mixing probabilities: Human3.6M / COCO / 3DHP, and the same with 3DPW.
PAPER_MIX = {"h36m": 0.4, "coco": 0.5, "3dhp": 0.1}
PAPER_MIX_3DPW = {"h36m": 0.3, "coco": 0.4, "3dhp": 0.1, "3dpw": 0.2}

#: MPI-INF-3DHP's joints: the 28 of its training annotations (root 4) and the 17 of its test set (root 14).
MPI_INF_3DHP_JOINTS = {
    "train": ("spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top", "left_clavicle",
              "left_shoulder", "left_elbow", "left_wrist", "left_hand", "right_clavicle", "right_shoulder",
              "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle", "left_foot",
              "left_toe", "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe"),
    "test": ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
             "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis",
             "spine", "head"),
}
#: 3DHP joint name -> our joint: the ones whose definition matches SMPL's (spine, neck, hands and
#: feet are placed differently and are left out).
MPI_INF_3DHP_TO_29 = {name: skeleton.JOINT_NAMES.index(name) for name in (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "head_top")}
#: COCO's 17 keypoints and the ones HybrIK trains on (knees, ankles, shoulders, elbows, wrists).
COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle")
COCO_TO_29 = {name: skeleton.JOINT_NAMES.index(name) for name in (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_knee",
    "right_knee", "left_ankle", "right_ankle")}
_COCO_SRC = [COCO_JOINTS.index(name) for name in COCO_TO_29]       # COCO_TO_29 as index lists
_COCO_DST = list(COCO_TO_29.values())

#: The keys of a training batch (synthetic batches get these too when sources are mixed).
TRAINING_KEYS = ("image", "joints_2d", "uvd", "joints_cam", "pose", "betas", "phi", "K", "visible", "uvd_weight",
                 "phi_weight", "pose_weight", "betas_weight", "camera_weight", "camera")

_PARSED = "the parsed annotation files come from the HybrIK repository's instructions, its README's data section"
_SMPL_VERTICES = 6890


# ---------------------------------------------------------------------------------------
# Shared parsing
# ---------------------------------------------------------------------------------------

def _read_json(path: Path, dataset: "ParsedDataset") -> dict:
    if not path.is_file():
        where = path.parent if path.parent.is_dir() else f"{path.parent} (the folder does not exist either)"
        raise FileNotFoundError(
            f"{dataset.title}: expected the annotation file {path.name} in {where}. {dataset.title} is licensed: "
            f"get it from {dataset.url}; {_PARSED}; then put it under <root>/{dataset.folder}/ with root = the "
            f"root= argument or $HYBRIK_LITE_DATA")
    with open(path) as f:
        return json.load(f)


def _camera_matrix(fx, fy, cx, cy) -> np.ndarray:
    """Intrinsics with the principal point moved to the package's pixel convention (+0.5)."""
    return np.array([[fx, 0.0, cx + 0.5], [0.0, fy, cy + 0.5], [0.0, 0.0, 1.0]])


def _joints_29(values, index_map: dict[int, int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """File joints ``(N, 3)`` -> ``(29, 3)`` metres and weights ``(29,)``; joints without a value sit at
    the root (they would project badly at z = 0) with weight 0."""
    src = np.asarray(values, dtype=np.float64).reshape(-1, 3) * scale
    out, weight = np.zeros((29, 3)), np.zeros(29)
    dst = list(index_map.values())
    out[dst], weight[dst] = src[list(index_map)], 1.0
    out[weight == 0] = out[0]
    return out, weight


class _Records:
    """Column lists of a dataset's annotations, turned into arrays by :meth:`arrays`."""

    def __init__(self):
        self.columns: dict[str, list] = {}

    def add(self, **row):
        for k, v in row.items():
            self.columns.setdefault(k, []).append(v)

    def arrays(self, path) -> dict:
        lengths = {k: len(v) for k, v in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{path}: some annotations lack fields that others have (counts {lengths})")
        return {k: (v if k == "file" else np.stack([np.asarray(x, dtype=np.float64) for x in v]))
                for k, v in self.columns.items()}


# ---------------------------------------------------------------------------------------
# The datasets
# ---------------------------------------------------------------------------------------

class ParsedDataset(torch.utils.data.Dataset):
    """One split of a HybrIK-parsed dataset; ``dataset[i]`` is the plain crop of annotation ``i``,
    ``dataset.sample(i, generator)`` an augmented one (see the module docstring).

    Args:
        split: the dataset's split (``"train"`` or ``"test"``; COCO: ``"train"`` or ``"val"``).
        root: the data root holding the dataset's folder (default ``$HYBRIK_LITE_DATA``).
        image_size: side of the square crops, pixels.
        body: the body model for twists from SMPL poses (default: the open model, low resolution,
            loaded on first use); betas are supervised only when it is an SMPL mesh.
        augment: :class:`hybrik_lite.transforms.AugmentConfig` of training samples (default: HybrIK's,
            with the dataset's flip probability).
    """

    name = title = folder = url = ""
    enlarge = 1.25                  # the square box's side over the person box's longer side
    flip_probability = 0.5
    splits: tuple[str, ...] = ("train", "test")

    def __init__(self, split: str = "train", root=None, *, image_size: int = 256, body=None,
                 augment: transforms.AugmentConfig | None = None):
        if split not in self.splits:
            raise ValueError(f"{self.title} has the splits {list(self.splits)}, got {split!r}")
        if not isinstance(image_size, int) or image_size < 8:
            raise ValueError(f"image_size must be an int >= 8 (pixels of the square crop), got {image_size!r}")
        self.split, self.image_size, self._body, self._body_given = split, image_size, body, body is not None
        self.augment = augment or transforms.AugmentConfig(flip_probability=self.flip_probability)
        self.dir = self._dataset_dir(root)
        try:
            self.data = self._parse()
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(f"{self.title}: {self.dir / self.expected_file()} is not in HybrIK's parsed format "
                             f"({type(err).__name__}: {err}); see hybrik_lite.datasets for the fields read") from None
        if not self.data or not len(self.data["file"]):
            raise ValueError(f"{self.title} {split}: no usable annotation in {self.dir}")

    # --- where ---------------------------------------------------------------------
    def _dataset_dir(self, root) -> Path:
        if root is not None:
            candidates = [Path(root) / self.folder]
        else:
            candidates = _data.search_dirs(self.folder)
        for folder in candidates:
            if folder.is_dir():
                return folder
        raise FileNotFoundError(
            f"{self.title}: none of the folders {[str(c) for c in candidates]} exists; expected "
            f"{self.folder}/{self.expected_file()} under the data root. {self.title} is licensed: get it from "
            f"{self.url}; {_PARSED}; pass root=<the folder holding {self.folder}/> "
            f"(train: --set data.data_root=DIR; eval: --data-root DIR) or set HYBRIK_LITE_DATA")

    def expected_file(self) -> str:
        """The annotation file of this split, relative to the dataset's folder."""
        raise NotImplementedError

    def _parse(self) -> dict:
        raise NotImplementedError

    # --- the body model for twists ---------------------------------------------------
    @property
    def body(self):
        if self._body is None:
            from . import body_model

            self._body = body_model.load(resolution="low")
        return self._body

    def __getstate__(self):  # workers load the default body model themselves
        state = dict(self.__dict__)
        if not state["_body_given"]:
            state["_body"] = None
        return state

    def __len__(self) -> int:
        return len(self.data["file"])

    # --- samples ---------------------------------------------------------------------
    def _image(self, index: int) -> torch.Tensor:
        from PIL import Image

        path = self.dir / self.data["file"][index]
        if not path.is_file():
            raise FileNotFoundError(f"{self.title}: image {path} is missing (annotation {index}); the images come "
                                    f"from {self.url}, unpacked under {self.dir}")
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255

    def _twist(self, index: int, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data
        if "twist" in d:
            return torch.from_numpy(d["twist"][index]), torch.from_numpy(d["twist_weight"][index])
        if "pose" in d:
            body = self.body
            betas = torch.from_numpy(d["betas"][index][None, :body.num_betas]).to(body.v_template)
            rest = body.rest_joints(betas).double()
            return ik.twist_from_pose(pose, rest)[0], torch.ones(23, dtype=torch.float64)
        return torch.tensor([[1.0, 0.0]], dtype=torch.float64).repeat(23, 1), torch.zeros(23, dtype=torch.float64)

    def sample(self, index: int, generator: torch.Generator | None = None) -> dict:
        """Annotation ``index`` as a sample dict (float32 tensors, no batch dimension); augmented with
        the draws of ``generator`` when one is given."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.title} {self.split} ({len(self)} samples)")
        d, S = self.data, self.image_size
        f64 = torch.float64
        image = self._image(index)
        height, width = image.shape[-2:]
        aug = transforms.no_augmentation() if generator is None else \
            transforms.draw_augmentation(generator, S, self.augment)
        box = transforms.box_xywh_to_xyxy(torch.from_numpy(d["box"][index])[None], width, height)
        centre, side = transforms.square_box(box, self.enlarge, aug["scale"][None])
        affine = transforms.crop_affine(centre, side, aug["rotation_deg"][None], S)
        crop = transforms.warp_image(image, affine.float(), S)

        weight_2d = torch.from_numpy(d["weight_2d"][index])[None]
        if "joints_cam" in d:
            weight_3d = torch.from_numpy(d["weight_3d"][index])[None]
            K = torch.from_numpy(d["K"][index])[None]
            joints_src = torch.from_numpy(d["joints_cam"][index])[None]
            joints_2d = transforms.apply_affine(camera.project(joints_src, K), affine)
            K_crop, r_z = transforms.crop_camera(K, affine)
            joints_cam = joints_src @ r_z.transpose(1, 2)
        else:
            joints_2d = transforms.apply_affine(torch.from_numpy(d["joints_2d"][index])[None], affine)
            K_crop, r_z = camera.intrinsics(S, f64)[None], torch.eye(3, dtype=f64)[None]
            joints_cam, weight_3d = torch.zeros(1, 29, 3, dtype=f64), torch.zeros(1, 29, dtype=f64)
        if "pose" in d:
            pose = rodrigues(torch.from_numpy(d["pose"][index])[None])
            phi, phi_weight = self._twist(index, pose)
            pose[:, 0] = r_z @ pose[:, 0]
            betas = torch.from_numpy(d["betas"][index][:10])[None]
        else:
            pose = torch.eye(3, dtype=f64).repeat(1, 24, 1, 1)
            phi, phi_weight = self._twist(index, pose)
            betas = torch.zeros(1, 10, dtype=f64)
        has_betas = "betas" in d and self._body_is_smpl()
        sample = {
            "image": crop, "joints_2d": joints_2d, "uvd": camera.pixels_to_uvd(joints_2d, joints_cam, S),
            "joints_cam": joints_cam, "pose": pose, "betas": betas, "phi": phi[None], "K": K_crop,
            "visible": (weight_2d > 0) & transforms.inside_crop(joints_2d, S),
            "uvd_weight": torch.stack([weight_2d, weight_2d, weight_3d], -1), "phi_weight": phi_weight[None],
            "pose_weight": torch.full((1,), float("pose" in d), dtype=f64),
            "betas_weight": torch.full((1,), float(has_betas), dtype=f64),
            "camera_weight": weight_3d[:, 0].clone(),
        }
        if "h36m_joints" in d:
            sample["h36m_joints"] = torch.from_numpy(d["h36m_joints"][index])[None] @ r_z.transpose(1, 2)
        if bool(aug["flip"]):
            sample = transforms.flip_sample(sample, S)
        sample["image"] = transforms.paint_boxes(transforms.color_gain(sample["image"], aug["gain"][None]),
                                                 aug["boxes"][None], aug["active"][None], aug["textures"][None])
        sample["visible"] = sample["visible"] & ~transforms.points_in_boxes(sample["joints_2d"], aug["boxes"][None],
                                                                            aug["active"][None])
        known = sample["camera_weight"] > 0          # 2D-only samples: a finite stand-in, weight 0
        root = torch.where(known[:, None], sample["joints_cam"][:, 0], torch.ones_like(sample["joints_cam"][:, 0]))
        sample["camera"] = _camera_target(root, sample["joints_2d"][:, 0], sample["K"], S)
        return {k: (v[0].float() if v.is_floating_point() else v[0]) for k, v in sample.items()}

    def _body_is_smpl(self) -> bool:
        return self._body is not None and self._body.v_template.shape[0] == _SMPL_VERTICES

    def __getitem__(self, index: int) -> dict:
        return self.sample(index)

    def batch(self, indices, generators=None) -> dict:
        """Samples ``indices`` stacked (each with its generator from ``generators``, if given)."""
        indices = [int(i) for i in indices]
        generators = generators or [None] * len(indices)
        samples = [self.sample(i, g) for i, g in zip(indices, generators)]
        return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def _camera_target(root_cam: torch.Tensor, root_px: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """HybrIK's ``(s, t_x, t_y)`` ``(B, 3)`` of a root seen by a crop camera ``K (B, 3, 3)``, in the network's
    crop camera (focal ``f = 1000 S / 256``, centred): the depth that gives the same image scale,
    ``z' = z f / sqrt(f_x f_y)``, and the position that puts the root on the same pixel."""
    f = camera.focal_length(size)
    z = root_cam[:, 2] * f / (K[:, 0, 0] * K[:, 1, 1]).sqrt()
    xy = (root_px - size / 2) * z[:, None] / f
    return camera.camera_params_from_root(torch.cat([xy, z[:, None]], -1))


class Human36M(ParsedDataset):
    """Human3.6M (HybrIK's ``h36m/annotations/<SET>_protocol_2.json``); ``set_name`` picks the file."""
    name, title, folder, url = "h36m", "Human3.6M", "h36m", "http://vision.imar.ro/human3.6m"
    enlarge, flip_probability = 1.0, 0.25
    SETS = {"train": "Sample_5_train_Human36M_smpl_leaf_twist", "test": "Sample_20_test_Human36M_smpl"}
    #: Sequences HybrIK always leaves out.
    SKIP = ("s_09_act_05_subact_02", "s_09_act_10_subact_02", "s_09_act_13_subact_01")

    def __init__(self, split: str = "train", root=None, *, set_name: str | None = None, **kwargs):
        self.set_name = set_name or self.SETS.get(split, "")
        super().__init__(split, root, **kwargs)

    def expected_file(self) -> str:
        return f"annotations/{self.set_name}_protocol_2.json"

    def _parse(self) -> dict:
        path = self.dir / self.expected_file()
        data = _read_json(path, self)
        images, annotations = data["images"], data["annotations"]
        if len(images) != len(annotations):
            raise ValueError(f"{path}: {len(images)} images but {len(annotations)} annotations; HybrIK's Human3.6M "
                             f"files hold one annotation per image, matched by position")
        rows = _Records()
        for img, ann in zip(images, annotations):
            if any(seq in img["file_name"] for seq in self.SKIP):
                continue
            joints_src = np.asarray(ann["smpl_joints"], dtype=np.float64).reshape(-1, 3)
            joints, weight = _joints_29(joints_src, {j: j for j in range(len(joints_src))}, 1e-3)
            cam = img["cam_param"]
            row = dict(file=f"images/{img['file_name']}", box=ann["bbox"], K=_camera_matrix(*cam["f"], *cam["c"]),
                       joints_cam=joints, weight_3d=weight, weight_2d=weight, pose=np.reshape(ann["thetas"], (24, 3)),
                       betas=ann["betas"])
            if "h36m_joints" in ann:
                h36m = np.reshape(ann["h36m_joints"], (17, 3)) * 1e-3
                row["h36m_joints"] = h36m - h36m[:1]
            if "angle_twist" in ann:
                twist = ann["angle_twist"]
                if isinstance(twist, list):                        # 23 dicts instead of a dict of lists
                    twist = {k: [t[k] for t in twist] for k in twist[0]}
                cos, sin = np.asarray(twist["cos"], np.float64), np.asarray(twist["sin"], np.float64)
                valid = (cos != -999) & (sin != -999)
                if "angle" in twist:
                    valid &= np.asarray(twist["angle"], np.float64) != -999
                row["twist"] = np.where(valid[:, None], np.stack([cos, sin], -1), [1.0, 0.0])
                row["twist_weight"] = valid.astype(np.float64)
            rows.add(**row)
        return rows.arrays(path)


def _coco_pairs(dataset) -> tuple:
    """A COCO-format file (3DPW, COCO): its path and each annotation paired with its image record."""
    path = dataset.dir / dataset.expected_file()
    data = _read_json(path, dataset)
    images = {img["id"]: img for img in data["images"]}
    return path, [(ann, images[ann["image_id"]]) for ann in data["annotations"]]


def _clipped_box(ann: dict, img: dict) -> list:
    """The annotation's COCO ``[x, y, w, h]`` box as inclusive corners clipped to its image."""
    return transforms.box_xywh_to_xyxy(torch.tensor([ann["bbox"]], dtype=torch.float64),
                                       img["width"], img["height"])[0].tolist()


class PW3D(ParsedDataset):
    """3DPW (HybrIK's ``pw3d/json/3DPW_{split}_new.json``, COCO format, metres)."""
    name, title, folder, url = "3dpw", "3DPW", "pw3d", "https://virtualhumans.mpi-inf.mpg.de/3DPW/"
    flip_probability = 0.25
    splits = ("train", "validation", "test")

    def expected_file(self) -> str:
        return f"json/3DPW_{self.split}_new.json"

    def _parse(self) -> dict:
        path, pairs = _coco_pairs(self)
        rows = _Records()
        for ann, img in pairs:
            if "width" in img and "height" in img:
                x0, y0, x1, y1 = _clipped_box(ann, img)
                if min(x1 - x0, y1 - y0) < 5:
                    continue
            joints, weight = _joints_29(ann["smpl_joint_cam"], {j: j for j in range(24)}, 1.0)
            cam = img["cam_param"]
            row = dict(file=f"imageFiles/{img['sequence']}/{img['file_name']}", box=ann["bbox"],
                       K=_camera_matrix(*cam["focal"], *cam["princpt"]), joints_cam=joints, weight_3d=weight,
                       weight_2d=weight, pose=np.reshape(ann["smpl_param"]["pose"], (24, 3)),
                       betas=ann["smpl_param"]["shape"])
            if "h36m_joints" in ann:
                h36m = np.reshape(ann["h36m_joints"], (17, 3))
                row["h36m_joints"] = h36m - h36m[:1]
            rows.add(**row)
        return rows.arrays(path)


class MPIINF3DHP(ParsedDataset):
    """MPI-INF-3DHP (HybrIK's ``3dhp/annotation_mpi_inf_3dhp_{train_v2,test}.json``, mm)."""
    name, title, folder, url = "3dhp", "MPI-INF-3DHP", "3dhp", "https://vcai.mpi-inf.mpg.de/3dhp-dataset/"

    def expected_file(self) -> str:
        return f"annotation_mpi_inf_3dhp_{'train_v2' if self.split == 'train' else 'test'}.json"

    def _parse(self) -> dict:
        path = self.dir / self.expected_file()
        data = _read_json(path, self)
        names = MPI_INF_3DHP_JOINTS[self.split]
        index_map = {names.index(n): j for n, j in MPI_INF_3DHP_TO_29.items() if n in names}
        rows = _Records()
        for img, ann in zip(data["images"], data["annotations"]):
            cam = img.get("cam_param") or ann["cam_param"]
            intrinsic = np.asarray(cam["intrinsic_param"], dtype=np.float64)[:, :3]
            keypoints = np.asarray(ann["keypoints_cam"], dtype=np.float64).reshape(-1, 3)
            if len(keypoints) != len(names):
                raise ValueError(f"{path}: keypoints_cam has {len(keypoints)} joints; MPI-INF-3DHP's {self.split} "
                                 f"annotations have {len(names)}")
            joints, weight = _joints_29(keypoints, index_map, 1e-3)
            rows.add(file=f"mpi_inf_3dhp_{self.split}_set/{img['file_name']}", box=ann["bbox"],
                     K=_camera_matrix(intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]),
                     joints_cam=joints, weight_3d=weight, weight_2d=weight)
        return rows.arrays(path)


class COCO(ParsedDataset):
    """COCO 2017 keypoints (``coco/annotations/person_keypoints_{train,val}2017.json``): 2D only."""
    name, title, folder, url = "coco", "COCO", "coco", "https://cocodataset.org"
    splits = ("train", "val")

    def expected_file(self) -> str:
        return f"annotations/person_keypoints_{self.split}2017.json"

    def _parse(self) -> dict:
        path, pairs = _coco_pairs(self)
        rows = _Records()
        for ann, img in pairs:
            if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1:
                continue
            x0, y0, x1, y1 = _clipped_box(ann, img)
            keypoints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            joints_2d, weight = np.zeros((29, 2)), np.zeros(29)
            joints_2d[_COCO_DST], weight[_COCO_DST] = keypoints[_COCO_SRC, :2] + 0.5, keypoints[_COCO_SRC, 2] > 0
            if min(x1 - x0, y1 - y0) < 5 or not weight.any():
                continue
            joints_2d[weight == 0] = ((x0 + x1) / 2, (y0 + y1) / 2)
            rows.add(file=f"{self.split}2017/{img['file_name']}", box=ann["bbox"], joints_2d=joints_2d,
                     weight_2d=weight)
        return rows.arrays(path)


_DATASETS = {cls.name: cls for cls in (Human36M, PW3D, MPIINF3DHP, COCO)}


def load(name: str, split: str = "train", root=None, **kwargs) -> ParsedDataset:
    """A dataset by name (``"h36m"``, ``"3dpw"``, ``"3dhp"``, ``"coco"``); see :class:`ParsedDataset`."""
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, list(_DATASETS), n=1)
        raise ValueError(f"unknown dataset {name!r}; {'did you mean ' + repr(close[0]) + '? ' if close else ''}"
                         f"datasets: {list(_DATASETS)}")
    return _DATASETS[name](split, root, **kwargs)


# ---------------------------------------------------------------------------------------
# Mixing sources
# ---------------------------------------------------------------------------------------

def parse_mix(text: str) -> dict[str, float]:
    """``"synthetic,h36m,3dpw"`` or ``"synthetic:0.5,3dpw:0.5"`` -> ``{name: probability}`` (summing to 1).

    Ratios are given for every source or for none. Without them the synthetic data (if named)
    takes an equal share ``1 / n`` of ``n`` sources, and the real datasets split the rest in
    HybrIK's proportions (:data:`PAPER_MIX`, or :data:`PAPER_MIX_3DPW` when 3DPW is named):
    ``synthetic,h36m,3dpw`` -> 1/3, 0.4, 0.267.
    """
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"--data expects a list of sources like 'synthetic,h36m,3dpw', got {text!r}")
    names, ratios = [], []
    for item in items:
        name, _, ratio = item.partition(":")
        name = name.strip()
        if name not in SOURCES:
            close = difflib.get_close_matches(name, SOURCES, n=1)
            raise ValueError(f"unknown data source {name!r} in {text!r}; "
                             f"{'did you mean ' + repr(close[0]) + '? ' if close else ''}sources: {list(SOURCES)}")
        if name in names:
            raise ValueError(f"data source {name!r} is named twice in {text!r}")
        names.append(name)
        if ratio:
            try:
                ratios.append(float(ratio))
            except ValueError:
                raise ValueError(f"the ratio of {name!r} in {text!r} is not a number: {ratio!r}") from None
            if not (math.isfinite(ratios[-1]) and ratios[-1] > 0):
                raise ValueError(f"the ratio of {name!r} in {text!r} must be a positive number, got {ratio!r}")
    if ratios and len(ratios) != len(names):
        raise ValueError(f"give a ratio for every source or for none (e.g. 'synthetic:0.5,3dpw:0.5'), got {text!r}")
    if not ratios:
        table = PAPER_MIX_3DPW if "3dpw" in names else PAPER_MIX
        real = [n for n in names if n != "synthetic"]
        real_share = 1.0 - (1.0 / len(names) if "synthetic" in names else 0.0)
        total = sum(table[n] for n in real)
        ratios = [1.0 / len(names) if n == "synthetic" else real_share * table[n] / total for n in names]
    total = sum(ratios)
    return {n: r / total for n, r in zip(names, ratios)}


def _mix_generator(seed: int, index: int) -> torch.Generator:
    """The stream that picks sample ``index``'s source and real-data draws (disjoint from the synthetic
    samples' streams, which are seeded below 2**62)."""
    return torch.Generator().manual_seed(2 ** 62 + seed * 2 ** 31 + index)


class MixedStream(torch.utils.data.Dataset):
    """A training stream over several sources: sample ``i`` is a pure function of ``(seed, i)``.

    Its source is drawn with the ``mix`` probabilities; a synthetic sample is sample ``i`` of the
    synthetic stream, a real one a random annotation of its dataset with random augmentation.
    :meth:`batch` returns :data:`TRAINING_KEYS` on the synthetic stream's device (CPU without one).
    """

    def __init__(self, mix: dict[str, float], sources: dict, seed: int = 0, length: int = 2 ** 31 - 1):
        missing = [n for n in mix if n not in sources]
        if missing:
            raise ValueError(f"no dataset given for the sources {missing}")
        self.mix, self.sources, self.seed, self.length = dict(mix), dict(sources), seed, length
        self.names = list(self.mix)
        self._cumulative = torch.tensor(list(self.mix.values()), dtype=torch.float64).cumsum(0)

    def __len__(self) -> int:
        return self.length

    @staticmethod
    def worker_init(worker_id: int) -> None:
        """DataLoader ``worker_init_fn``: one torch thread per worker."""
        torch.set_num_threads(1)

    def source_of(self, index: int) -> tuple[str, torch.Generator]:
        """Sample ``index``'s source and the generator of its remaining draws."""
        g = _mix_generator(self.seed, index)
        u = torch.rand((), generator=g, dtype=torch.float64)
        k = min(int((u >= self._cumulative).sum()), len(self.names) - 1)
        return self.names[k], g

    def batch(self, indices) -> dict:
        indices = [int(i) for i in indices]
        picks = [self.source_of(i) for i in indices]
        rows: list[dict | None] = [None] * len(indices)
        synthetic_rows = [k for k, (name, _) in enumerate(picks) if name == "synthetic"]
        device = torch.device("cpu")
        if synthetic_rows:
            stream = self.sources["synthetic"]
            device = stream.device
            batch = _complete_synthetic(stream.batch([indices[k] for k in synthetic_rows]))
            for n, k in enumerate(synthetic_rows):
                rows[k] = {key: batch[key][n] for key in TRAINING_KEYS}
        for k, (name, g) in enumerate(picks):
            if name != "synthetic":
                dataset = self.sources[name]
                item = int(torch.randint(len(dataset), (), generator=g))
                sample = dataset.sample(item, g)
                rows[k] = {key: sample[key].to(device) for key in TRAINING_KEYS}
        return {key: torch.stack([r[key] for r in rows]) for key in TRAINING_KEYS}

    def __getitem__(self, index: int) -> dict:
        return {k: v[0] for k, v in self.batch([index]).items()}


def _complete_synthetic(batch: dict) -> dict:
    """A synthetic batch with the real datasets' weights (all known: ones) and camera target."""
    n, dtype, device = len(batch["image"]), batch["uvd"].dtype, batch["uvd"].device
    ones = torch.ones(n, dtype=dtype, device=device)
    return {**batch, "uvd_weight": torch.ones_like(batch["uvd"]), "phi_weight": torch.ones_like(batch["phi"][..., 0]),
            "pose_weight": ones, "betas_weight": ones, "camera_weight": ones,
            "camera": camera.camera_params_from_root(batch["joints_cam"][:, 0])}


def training_stream(spec: str, synthetic, *, root=None, image_size: int, seed: int = 0, body=None):
    """The training stream of ``train --data spec``: the synthetic stream itself when it is the only
    source (unchanged: same batches as before mixing existed), else a :class:`MixedStream` over the
    named datasets' training splits."""
    mix = parse_mix(spec)
    if list(mix) == ["synthetic"]:
        return synthetic
    sources = {name: synthetic if name == "synthetic" else load(name, "train", root, image_size=image_size, body=body)
               for name in mix}
    return MixedStream(mix, sources, seed=seed, length=len(synthetic))
