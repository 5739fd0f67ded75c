"""Real photos: MediaPipe Pose landmarks -> our 29 joints + twist estimates -> IK -> mesh.

    python -m hybrik_lite photo                         # the astronaut (scikit-image, public domain) -> photo.png
    python -m hybrik_lite photo me.jpg --out me.png --json me.json

Everything else in the tutorial sees images it rendered itself. A real photo needs a detector
trained on real people; we borrow MediaPipe Pose (Apache-2.0, the optional ``photo`` extra: its
wheel ships the pose model, so it runs offline on a CPU) and do the rest ourselves:

1. **Landmarks** (:func:`detect`): 33 *world* landmarks in metres, centred between the hips, in a
   camera-aligned frame (x to the image's right, which is the person's left when they face the
   camera; y down; z away from the camera), and the same 33 in pixels with a visibility in [0, 1].
2. **Joints** (:func:`landmarks_to_joints`), in our body frame (Y up, facing +Z; the world
   landmarks are turned by :func:`hybrik_lite.camera.camera_to_body`): the limbs come straight
   from landmarks; pelvis, spines, neck and collars are the rest skeleton carried by a torso frame
   (hips, shoulders); the head sits between the ears and the head top follows a head frame (ears,
   nose); hands, fingertips and feet follow hand and foot frames; the big toes are the foot-tip
   landmarks. :func:`with_bone_lengths` then gives every bone the length it has in the chosen
   shape, so that the IK is asked for a skeleton it can reach.
3. **Twists** (:func:`twist_cues`, :func:`estimate_twist`): positions leave each bone's turn about
   itself open. In HybrIK's convention joint j's twist turns the bone from j to its child, so:
   the knee's hinge plane turns the *thigh* (hip twist), heel -> toe the *shin* (knee twist),
   index -> pinky the *forearm* (elbow twist), the elbow's hinge plane the *upper arm*
   (shoulder twist), the shoulder line (against the hip line) the spine, and ears -> nose the
   neck. Each cue is a direction fixed to the body part (its rest direction in the T-pose) and
   where the landmarks say it points now; the twist turns one onto the other.
4. **IK and mesh**: :func:`hybrik_lite.ik.solve`, then the body model.
5. **Camera** (:func:`fit_camera`): a pinhole with HybrIK's focal length (1000 px per 256 px
   of the longer side) and the principal point at the centre; the translation that puts the posed
   joints onto the 2D landmarks is a linear least-squares problem, weighted by visibility.
6. **Figure** (:func:`figure`): the mesh over the photo with our rasteriser. Joints that
   MediaPipe marks as hardly visible (visibility < :data:`VISIBLE`) are drawn dashed and hollow,
   and the figure names them as guessed: MediaPipe invents what the photo does not show.

Shapes: landmarks ``(B, 33, 3)``, joints ``(B, 29, 3)``, twists ``(B, 23, 2)`` as (cos, sin).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import camera, ik, kinematics, skeleton, transforms
from .twist_swing import perpendicular, unit_vectors

__all__ = ["LANDMARK_NAMES", "VISIBLE", "SAMPLE_PHOTOS", "LIGHT_INSTALL", "INSTALL_HINT", "HEEL_OFFSET",
           "Landmarks", "PhotoFit", "sample_image", "load_image", "unavailable", "detect", "frame",
           "landmarks_to_joints", "with_bone_lengths", "joint_visibility", "CUES", "rest_cue_directions",
           "twist_cues", "twist_updates", "estimate_twist", "landmark_targets_2d", "photo_K", "fit_camera",
           "reconstruct", "person_box", "figure", "to_json", "main"]

#: MediaPipe Pose's 33 landmarks, in its order ("left" is the person's left).
LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
_LM = {name: i for i, name in enumerate(LANDMARK_NAMES)}
_J = {name: i for i, name in enumerate(skeleton.JOINT_NAMES)}

#: Our joints that are one landmark each (the foot index is the tip of the foot: our big toe).
DIRECT: dict[int, int] = {
    _J["left_hip"]: _LM["left_hip"], _J["right_hip"]: _LM["right_hip"],
    _J["left_knee"]: _LM["left_knee"], _J["right_knee"]: _LM["right_knee"],
    _J["left_ankle"]: _LM["left_ankle"], _J["right_ankle"]: _LM["right_ankle"],
    _J["left_shoulder"]: _LM["left_shoulder"], _J["right_shoulder"]: _LM["right_shoulder"],
    _J["left_elbow"]: _LM["left_elbow"], _J["right_elbow"]: _LM["right_elbow"],
    _J["left_wrist"]: _LM["left_wrist"], _J["right_wrist"]: _LM["right_wrist"],
    _J["left_big_toe"]: _LM["left_foot_index"], _J["right_big_toe"]: _LM["right_foot_index"],
}
_TORSO = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
#: The landmarks each joint is made from; its visibility is theirs at the least.
JOINT_SOURCES: tuple[tuple[int, ...], ...] = tuple(
    (DIRECT[j],) if j in DIRECT else tuple(_LM[n] for n in (
        ("left_ear", "right_ear") if name == "head" else
        ("left_ear", "right_ear", "nose") if name == "head_top" else
        (f"{name.split('_')[0]}_ankle", f"{name.split('_')[0]}_heel", f"{name.split('_')[0]}_foot_index")
        if name.endswith("_foot") else
        (f"{name.split('_')[0]}_wrist", f"{name.split('_')[0]}_index", f"{name.split('_')[0]}_pinky")
        if name.endswith(("_hand", "_fingertip")) else
        ("left_shoulder", "right_shoulder") if name in ("spine3", "neck", "left_collar", "right_collar") else _TORSO))
    for j, name in enumerate(skeleton.JOINT_NAMES))

#: A landmark (or joint) with a lower visibility is drawn as guessed.
VISIBLE = 0.5
#: Where the back of the heel sits relative to the ankle joint in the rest pose (metres, body
#: frame): a little below and behind it. Only the foot frame's roll depends on it.
HEEL_OFFSET = (0.0, -0.06, -0.05)
#: Photos with a clear licence that ship inside scikit-image.
SAMPLE_PHOTOS = {
    "astronaut": "skimage.data.astronaut(): Eileen Collins, NASA, public domain (upper body)",
    "camera": "skimage.data.camera(): the cameraman, CC0 by Lav Varshney (head to thighs)",
}
#: The light install of the photo extra (README, "Real photos"; .ci/run): two pip commands' arguments.
#: MediaPipe without the jax, jaxlib, opencv-contrib-python and sounddevice that it declares but its
#: pose solution never imports, and OpenCV's headless build, which it does import.
LIGHT_INSTALL = (("absl-py", "attrs", "flatbuffers", "protobuf>=3.11,<5", "opencv-python-headless",
                  "scikit-image>=0.21"),
                 ("--no-deps", "mediapipe==0.10.14"))
INSTALL_HINT = ('pip install "hybrik-lite[photo]" (MediaPipe has wheels for Python 3.10-3.12; '
                "the README gives a lighter install)")


# --- inputs: photos and landmarks ----------------------------------------------------------------
def sample_image(name: str = "astronaut") -> np.ndarray:
    """One of :data:`SAMPLE_PHOTOS` as ``(H, W, 3)`` uint8 RGB (grey photos are repeated to RGB)."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"sample photo must be one of {sorted(SAMPLE_PHOTOS)}, got {name!r}")
    try:
        import skimage.data
    except ImportError as err:
        raise ImportError(f"the sample photos come from scikit-image, which is not installed: {INSTALL_HINT}, "
                          f"or pass your own image") from err
    return _rgb(getattr(skimage.data, name)())


def _rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1|3|4)`` uint8 -> ``(H, W, 3)`` uint8, contiguous."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) uint8 image, got {image.shape} {image.dtype}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, -1)
    return np.ascontiguousarray(image[..., :3])


def load_image(path, max_side: int | None = None) -> np.ndarray:
    """An image file -> ``(H, W, 3)`` uint8 RGB, shrunk to at most ``max_side`` pixels on its longer
    side when given. Raises FileNotFoundError or ValueError (not an image)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image at {path}")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if max_side is not None and max(img.size) > max_side:
                scale = max_side / max(img.size)
                img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
            return _rgb(np.asarray(img))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path} is not an image PIL can read ({type(err).__name__}); give a PNG or JPEG "
                         f"photo of one person") from err


@dataclass
class Landmarks:
    """What MediaPipe Pose sees in one photo (batch of 1).

    ``world (1, 33, 3)``: metres, centred between the hips, camera-aligned (x right, y down, z away
    from the camera). ``pixels (1, 33, 2)``: image positions (pixel k spans [k, k + 1)).
    ``visibility (1, 33)`` in [0, 1]. ``image_size``: ``(H, W)``.
    """
    world: torch.Tensor
    pixels: torch.Tensor
    visibility: torch.Tensor
    image_size: tuple[int, int]


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what MediaPipe's C++ side writes to file descriptor 2 (TensorFlow Lite and absl
    start-up notes), and protobuf's deprecation warning; restored afterwards."""
    try:
        fd = os.dup(2)
    except OSError:                       # no real stderr (some notebook front ends): nothing to hide
        fd = None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*GetPrototype.*")
        if fd is None:
            yield
            return
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
                os.close(fd)


def _mediapipe_pose():
    """``mediapipe.solutions.pose``, or ImportError saying how to install it."""
    try:
        with _quiet_native_stderr():
            import mediapipe as mp
            pose = mp.solutions.pose
    except Exception as err:              # ImportError, or a broken install (protobuf, numpy ABI, ...)
        raise ImportError(f"MediaPipe cannot be imported ({type(err).__name__}: {err}); install it with "
                          f"{INSTALL_HINT}") from err
    return pose


def unavailable() -> str | None:
    """Why photos cannot be read here (MediaPipe or scikit-image missing, with how to install
    them), or None when everything is in place."""
    try:
        _mediapipe_pose()
        import skimage.data  # noqa: F401
    except ImportError as err:
        return str(err) if "MediaPipe" in str(err) else f"scikit-image is not installed: {INSTALL_HINT}"
    return None


def detect(image: np.ndarray) -> Landmarks:
    """Run MediaPipe Pose (``static_image_mode``, model complexity 1: the model its wheel ships) on
    ``(H, W, 3)`` uint8 RGB. Deterministic. Raises ImportError (MediaPipe missing) or ValueError
    (no person found)."""
    image = _rgb(np.asarray(image))
    pose = _mediapipe_pose()
    with _quiet_native_stderr(), pose.Pose(static_image_mode=True, model_complexity=1) as model:
        result = model.process(image)
    if result.pose_world_landmarks is None or result.pose_landmarks is None:
        raise ValueError("MediaPipe found no person in the image; give a photo with one person, most of the "
                         "body in view")
    H, W = image.shape[:2]
    world = torch.tensor([[p.x, p.y, p.z] for p in result.pose_world_landmarks.landmark], dtype=torch.float32)
    image_lm = result.pose_landmarks.landmark
    pixels = torch.tensor([[p.x * W, p.y * H] for p in image_lm], dtype=torch.float32)
    visibility = torch.tensor([p.visibility for p in image_lm], dtype=torch.float32)
    return Landmarks(world[None], pixels[None], visibility[None], (H, W))


# --- landmarks -> our 29 joints ----------------------------------------------------------------------
def _unit(v: torch.Tensor) -> torch.Tensor:
    """Unit vectors ``(..., 3)`` (zeros stay zero): :func:`hybrik_lite.twist_swing.unit_vectors`."""
    return unit_vectors(v)[0]


def _rest_heel(rest_joints: torch.Tensor, side: str) -> torch.Tensor:
    """Where the back of the ``side`` heel sits at rest: ``(B, 29, 3) -> (B, 3)`` (:data:`HEEL_OFFSET`)."""
    return rest_joints[:, _J[f"{side}_ankle"]] + torch.tensor(HEEL_OFFSET).to(rest_joints)


def _no_twist(batch: int, like: torch.Tensor) -> torch.Tensor:
    """Zero twists ``(batch, 23, 2)`` as (cos, sin) = (1, 0), with ``like``'s dtype and device."""
    phi = torch.zeros(batch, ik.NUM_TWISTS, 2).to(like)
    phi[..., 0] = 1
    return phi


def frame(primary: torch.Tensor, secondary: torch.Tensor) -> torch.Tensor:
    """Orthonormal frames ``(..., 3, 3)`` from two directions ``(..., 3)``: the columns are
    ``e1 = unit(primary)``, ``e2`` = the unit part of ``secondary`` perpendicular to ``e1``, and
    ``e3 = e1 x e2`` (a proper rotation). ``secondary`` along ``primary`` uses a fixed perpendicular.

    ``frame(a, b) @ frame(a0, b0).T`` is the rotation that takes a rest pair ``(a0, b0)`` to an
    observed pair ``(a, b)``: that is how the rest skeleton is carried into the photo.
    """
    e1 = _unit(primary)
    side = secondary - (secondary * e1).sum(-1, keepdim=True) * e1
    norm = torch.linalg.vector_norm(side, dim=-1, keepdim=True)
    e2 = torch.where(norm > 1e-9 * torch.linalg.vector_norm(secondary, dim=-1, keepdim=True).clamp_min(1e-30),
                     side / norm.clamp_min(1e-30), perpendicular(e1))
    return torch.stack([e1, e2, torch.linalg.cross(e1, e2, dim=-1)], -1)


def _carry(turn: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Rotate rest offsets ``(B, N, 3)`` by ``turn (B, 3, 3)``."""
    return offsets @ turn.transpose(-1, -2)


def landmarks_to_joints(lm: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Body-frame landmarks ``(B, 33, 3)`` and the rest skeleton ``(B, 29, 3)`` -> joints ``(B, 29, 3)``.

    Bone lengths here are MediaPipe's; :func:`with_bone_lengths` makes them the shape's.
    ``lm`` must be in our body frame: ``camera.camera_to_body(landmarks.world)``.
    """
    if lm.dim() != 3 or lm.shape[1:] != (33, 3) or rest_joints.shape != (lm.shape[0], 29, 3):
        raise ValueError(f"expected landmarks (B, 33, 3) and rest_joints (B, 29, 3), got {tuple(lm.shape)} and "
                         f"{tuple(rest_joints.shape)}")
    t = rest_joints
    out = torch.zeros_like(t)
    out[:, list(DIRECT)] = lm[:, list(DIRECT.values())]
    at = {name: lm[:, i] for name, i in _LM.items()}
    # torso: two frames with one "up" (hip centre -> shoulder centre), each with its own left-right line
    hip_mid, sh_mid = (at["left_hip"] + at["right_hip"]) / 2, (at["left_shoulder"] + at["right_shoulder"]) / 2
    rest_hip_mid, rest_sh_mid = (t[:, 1] + t[:, 2]) / 2, (t[:, 16] + t[:, 17]) / 2
    up, rest_up = sh_mid - hip_mid, rest_sh_mid - rest_hip_mid
    scale = (torch.linalg.vector_norm(up, dim=-1) / torch.linalg.vector_norm(rest_up, dim=-1))[:, None, None]
    pelvis_turn = frame(up, at["left_hip"] - at["right_hip"]) @ frame(rest_up, t[:, 1] - t[:, 2]).transpose(-1, -2)
    chest_turn = (frame(up, at["left_shoulder"] - at["right_shoulder"])
                  @ frame(rest_up, t[:, 16] - t[:, 17]).transpose(-1, -2))
    low = hip_mid[:, None] + scale * _carry(pelvis_turn, t[:, [0, 3, 6]] - rest_hip_mid[:, None])
    high = sh_mid[:, None] + scale * _carry(chest_turn, t[:, [6, 9, 12, 13, 14]] - rest_sh_mid[:, None])
    out[:, 0], out[:, 3] = low[:, 0], low[:, 1]
    out[:, 6] = (low[:, 2] + high[:, 0]) / 2
    out[:, [9, 12, 13, 14]] = high[:, 1:]
    # head: between the ears; the head top follows the head frame (ears left-right, ears -> nose forward)
    ear_mid = (at["left_ear"] + at["right_ear"]) / 2
    x_axis, z_axis = torch.tensor([1.0, 0, 0]).to(t), torch.tensor([0, 0, 1.0]).to(t)
    head_turn = frame(at["left_ear"] - at["right_ear"], at["nose"] - ear_mid) @ frame(x_axis, z_axis).T
    out[:, 15] = ear_mid
    out[:, 24] = ear_mid + _carry(head_turn, (t[:, 24] - t[:, 15])[:, None])[:, 0]
    for side in ("left", "right"):
        wrist, hand, tip = _J[f"{side}_wrist"], _J[f"{side}_hand"], _J[f"{side}_middle_fingertip"]
        ankle, foot = _J[f"{side}_ankle"], _J[f"{side}_foot"]
        # hand frame: wrist -> knuckles forward, pinky -> index towards the thumb (+Z at rest: palms down)
        knuckles = (at[f"{side}_index"] + at[f"{side}_pinky"]) / 2
        hand_turn = (frame(knuckles - at[f"{side}_wrist"], at[f"{side}_index"] - at[f"{side}_pinky"])
                     @ frame(t[:, hand] - t[:, wrist], z_axis.expand_as(t[:, hand])).transpose(-1, -2))
        out[:, hand] = out[:, wrist] + _carry(hand_turn, (t[:, hand] - t[:, wrist])[:, None])[:, 0]
        out[:, tip] = out[:, hand] + _carry(hand_turn, (t[:, tip] - t[:, hand])[:, None])[:, 0]
        # foot frame: heel -> toe forward, heel -> ankle up
        rest_heel = _rest_heel(t, side)
        foot_turn = (frame(at[f"{side}_foot_index"] - at[f"{side}_heel"], at[f"{side}_ankle"] - at[f"{side}_heel"])
                     @ frame(t[:, _J[f"{side}_big_toe"]] - rest_heel, t[:, ankle] - rest_heel).transpose(-1, -2))
        out[:, foot] = out[:, ankle] + _carry(foot_turn, (t[:, foot] - t[:, ankle])[:, None])[:, 0]
    return out


def with_bone_lengths(joints: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Keep every bone's direction, give it the rest length: ``(B, 29, 3), (B, 29, 3) -> (B, 29, 3)``.

    Walks the tree from the root (which stays put): ``q_j = q_parent + |t_j - t_parent| unit(p_j - p_parent)``.
    """
    out = [joints[:, 0]]
    for j in range(1, skeleton.NUM_JOINTS):
        p = skeleton.PARENTS[j]
        length = torch.linalg.vector_norm(rest_joints[:, j] - rest_joints[:, p], dim=-1, keepdim=True)
        out.append(out[p] + length * _unit(joints[:, j] - joints[:, p]))
    return torch.stack(out, 1)


def joint_visibility(visibility: torch.Tensor) -> torch.Tensor:
    """Landmark visibility ``(B, 33)`` -> joint visibility ``(B, 29)``: the least of each joint's sources."""
    return torch.stack([visibility[:, list(src)].amin(-1) for src in JOINT_SOURCES], -1)


# --- twist estimates -------------------------------------------------------------------------------
#: The twist cues: (joint whose twist the cue sets, side, kind). A cue is a direction fixed to the
#: body part that the joint's twist turns; :func:`twist_cues` reads where it points now and
#: :func:`rest_cue_directions` where it points in the rest pose (legs straight down, arms out in a T,
#: palms down, thumbs forward). A hinge bends about its axis: the knees about +X, the left elbow
#: about -Y and the right about +Y (both forearms swing forward). Through a straight knee or elbow
#: the foot or palm also shows how the whole limb is turned, so the hip and shoulder use them too,
#: weighted by how straight the joint is (bent, they no longer say anything about the upper bone).
CUES: tuple[tuple[str, str, str], ...] = tuple(
    (f"{side}_{joint}", side, kind) for side in ("left", "right") for joint, kind in (
        ("hip", "knee hinge"), ("hip", "heel -> toe, knee straight"), ("knee", "heel -> toe"),
        ("shoulder", "elbow hinge"), ("shoulder", "index -> pinky, elbow straight"), ("elbow", "index -> pinky"))
) + (("spine1", "mid", "hip line -> shoulder line, 1/3"), ("spine2", "mid", "hip line -> shoulder line, 2/3"),
     ("spine3", "mid", "shoulder line"), ("neck", "mid", "ears -> nose"))
_CUE_JOINTS = tuple(_J[joint] for joint, _, _ in CUES)
_TORSO_SHARE = {"hip line -> shoulder line, 1/3": 1 / 3, "hip line -> shoulder line, 2/3": 2 / 3, "shoulder line": 1.0}
_HINGES = {"knee hinge": ("hip", "knee", "ankle"), "elbow hinge": ("shoulder", "elbow", "wrist")}


def _rest_cue(side: str, kind: str) -> tuple[float, float, float]:
    """A cue's fixed rest direction (heel -> toe depends on the shape: see :func:`rest_cue_directions`)."""
    if kind == "knee hinge":
        return (1.0, 0.0, 0.0)
    if kind == "elbow hinge":
        return (0.0, -1.0 if side == "left" else 1.0, 0.0)
    if kind == "ears -> nose":
        return (0.0, 0.0, 1.0)
    if kind.startswith("index -> pinky"):          # palms down, thumbs forward: the pinky behind the index
        return (0.0, 0.0, -1.0)
    return (1.0, 0.0, 0.0)                         # the torso's right -> left lines


def rest_cue_directions(rest_joints: torch.Tensor) -> torch.Tensor:
    """Where each cue of :data:`CUES` points in the rest pose: ``(B, 29, 3) -> (B, C, 3)``, body frame."""
    B = rest_joints.shape[0]
    out = []
    for _, side, kind in CUES:
        if kind.startswith("heel -> toe"):
            out.append(_unit(rest_joints[:, _J[f"{side}_big_toe"]] - _rest_heel(rest_joints, side)))
            continue
        out.append(torch.tensor(_rest_cue(side, kind)).to(rest_joints).expand(B, 3))
    return torch.stack(out, 1)


def twist_cues(lm: torch.Tensor, visibility: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each cue of :data:`CUES` points now, by the landmarks.

    ``lm (B, 33, 3)`` body frame, ``visibility (B, 33)`` (default all 1) -> ``observed (B, C, 3)`` and
    ``weight (B, C)``, the least visibility of the cue's landmarks. The observed direction's length
    says how well it is defined: a hinge's is ``unit(upper) x unit(lower)``, the sine of the bend
    (a straight limb has no hinge plane); a "straight" cue's is ``max(0, cos bend)``; the others' 1.
    """
    at = {name: lm[:, i] for name, i in _LM.items()}
    vis = torch.ones(lm.shape[:2]).to(lm) if visibility is None else visibility

    def limb(side, chain):                         # unit upper and lower bones of a limb
        a, b, c = (at[f"{side}_{n}"] for n in chain)
        return _unit(b - a), _unit(c - b)

    hip_line, sh_line = _unit(at["left_hip"] - at["right_hip"]), _unit(at["left_shoulder"] - at["right_shoulder"])
    observed, weight = [], []
    for _, side, kind in CUES:
        if kind in _HINGES:
            used = tuple(f"{side}_{n}" for n in _HINGES[kind])
            observed.append(torch.linalg.cross(*limb(side, _HINGES[kind]), dim=-1))
        elif kind.startswith(("heel -> toe", "index -> pinky")):
            a, b = ("heel", "foot_index") if kind.startswith("heel") else ("index", "pinky")
            used = (f"{side}_{a}", f"{side}_{b}")
            direction = _unit(at[used[1]] - at[used[0]])
            if kind.endswith("straight"):
                chain = _HINGES["knee hinge" if "knee" in kind else "elbow hinge"]
                upper, lower = limb(side, chain)
                direction = direction * (upper * lower).sum(-1, keepdim=True).clamp_min(0)
                used += tuple(f"{side}_{n}" for n in chain)
            observed.append(direction)
        elif kind == "ears -> nose":
            used = ("left_ear", "right_ear", "nose")
            observed.append(_unit(at["nose"] - (at["left_ear"] + at["right_ear"]) / 2))
        else:                                       # the torso: the hip line turning into the shoulder line
            share = _TORSO_SHARE[kind]
            used = _TORSO
            observed.append(_unit((1 - share) * hip_line + share * sh_line))
        weight.append(vis[:, [_LM[u] for u in used]].amin(-1))
    return torch.stack(observed, 1), torch.stack(weight, 1)


def twist_updates(rot_mats: torch.Tensor, rest_joints: torch.Tensor, observed: torch.Tensor,
                  weight: torch.Tensor) -> torch.Tensor:
    """How far to turn each twist so that the cues point where the landmarks say: ``(B, 23)`` radians.

    For a cue of joint j with rest direction ``r``: the posed bone axis ``a = G_j u_j`` (``G_j`` the
    global rotation, ``u_j`` the unit rest bone), the cue now ``c = G_j r`` and the observation ``o``,
    both without their components along ``a``; the angle from ``c`` to ``o`` about ``a`` is
    ``atan2(a . (c x o), c . o)``. Turning joint j's twist by it turns ``G_j`` about ``a`` (the
    swing and the parent stay). Several cues of one joint are averaged as vectors
    ``w (c . o, a . (c x o))``, whose length ``|c_perp| |o_perp| w`` is how much each one says.
    """
    ids = torch.tensor(_CUE_JOINTS, device=rest_joints.device)
    child = torch.tensor([skeleton.BONE_CHILD[j] for j in _CUE_JOINTS], device=rest_joints.device)
    bones = _unit(rest_joints.index_select(1, child) - rest_joints.index_select(1, ids))         # (B, C, 3)
    _, transforms = kinematics.forward_kinematics(rot_mats, rest_joints[:, :24], skeleton.SMPL_PARENTS)
    g = transforms[:, :, :3, :3].index_select(1, ids)                                   # (B, C, 3, 3)
    axis = (g @ bones[..., None])[..., 0]
    cue = (g @ rest_cue_directions(rest_joints)[..., None])[..., 0]
    cue = cue - (cue * axis).sum(-1, keepdim=True) * axis
    obs = observed - (observed * axis).sum(-1, keepdim=True) * axis
    vote = weight[..., None] * torch.stack([(cue * obs).sum(-1),
                                            (axis * torch.linalg.cross(cue, obs, dim=-1)).sum(-1)], -1)
    total = torch.zeros(rot_mats.shape[0], ik.NUM_TWISTS, 2).to(vote).index_add_(1, ids - 1, vote)
    return torch.atan2(total[..., 1], total[..., 0])                                    # 0 where no cue


def estimate_twist(joints: torch.Tensor, rest_joints: torch.Tensor, observed: torch.Tensor, weight: torch.Tensor,
                   *, mode: str = "adaptive") -> torch.Tensor:
    """Twists ``(B, 23, 2)`` (cos, sin) that turn the cues of :func:`twist_cues` onto the landmarks.

    Joints without a cue keep no twist (relative to their parent). A joint's update needs its
    ancestors' final rotations, so the updates run once per tree level of the deepest cue joint,
    each after an :func:`hybrik_lite.ik.solve` with the twists so far; after that the cue angles
    are met (to rounding) at every joint that has one.
    """
    phi = _no_twist(joints.shape[0], joints)
    levels = max(skeleton.depth()[j] for j in _CUE_JOINTS)
    for _ in range(levels):
        rot_mats = ik.solve(joints, phi, rest_joints, mode=mode)
        delta = twist_updates(rot_mats, rest_joints, observed, weight)
        cos, sin = torch.cos(delta), torch.sin(delta)
        phi = torch.stack([phi[..., 0] * cos - phi[..., 1] * sin, phi[..., 0] * sin + phi[..., 1] * cos], -1)
    return phi


# --- the camera --------------------------------------------------------------------------------------
#: The joints :func:`landmark_targets_2d` has a pixel target for.
_TARGETS_2D = [*DIRECT, _J["head"]]


def landmark_targets_2d(landmarks: Landmarks) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each of our joints should land in the photo: ``(B, 29, 2)`` pixels and ``(B, 29)``
    weights (the landmark's visibility; 0 for joints without a landmark of their own). The limb
    joints and big toes are landmarks; the head is the ears' midpoint."""
    uv = torch.zeros(landmarks.pixels.shape[0], skeleton.NUM_JOINTS, 2).to(landmarks.pixels)
    w = torch.zeros(uv.shape[:2]).to(uv)
    uv[:, list(DIRECT)] = landmarks.pixels[:, list(DIRECT.values())]
    uv[:, _J["head"]] = landmarks.pixels[:, [_LM["left_ear"], _LM["right_ear"]]].mean(1)
    w[:, _TARGETS_2D] = joint_visibility(landmarks.visibility)[:, _TARGETS_2D]
    return uv, w


def photo_K(image_size: tuple[int, int], focal: float | None = None) -> torch.Tensor:
    """Pinhole ``(3, 3)`` for an ``(H, W)`` photo: focal ``focal`` px (default HybrIK's 1000 px per
    256 px of the longer side), principal point at the centre."""
    H, W = image_size
    f = camera.focal_length(max(H, W)) if focal is None else float(focal)
    return torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])


def fit_camera(points: torch.Tensor, uv: torch.Tensor, weight: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The translation ``t (B, 3)`` that projects camera-oriented points ``(B, N, 3)`` (posed, not yet
    moved) nearest to ``uv (B, N, 2)`` pixels, weighted by ``weight (B, N)``, through ``K (3, 3)``.

    The pinhole ``u = f (x + t_x) / (z + t_z) + c_x`` is linear in ``t`` once multiplied out:
    ``f t_x - (u - c_x) t_z = (u - c_x) z - f x`` (and likewise for v); solved by weighted linear
    least squares in float64 (an algebraic error: the pixel error times the depth, nearly constant
    over a body several metres away).
    """
    P, UV, W = points.double(), uv.double(), weight.double().clamp_min(0).sqrt()
    f_x, f_y, c_x, c_y = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    du, dv = UV[..., 0] - c_x, UV[..., 1] - c_y
    zero, ones = torch.zeros_like(du), torch.ones_like(du)
    rows_u = torch.stack([f_x * ones, zero, -du], -1)                       # (B, N, 3)
    rows_v = torch.stack([zero, f_y * ones, -dv], -1)
    W = torch.cat([W, W], 1)                                                 # one weight per row
    A = torch.cat([rows_u, rows_v], 1) * W[..., None]
    b = torch.cat([du * P[..., 2] - f_x * P[..., 0], dv * P[..., 2] - f_y * P[..., 1]], 1) * W
    return torch.linalg.lstsq(A, b[..., None]).solution[..., 0].to(points.dtype)


# --- the whole chain -------------------------------------------------------------------------------
@dataclass
class PhotoFit:
    """One photo's reconstruction (batch of 1; body frame unless named otherwise).

    ``targets (1, 29, 3)``: the joints asked of the IK (root-relative, the shape's bone lengths);
    ``visibility (1, 29)``; ``phi (1, 23, 2)``; ``rot_mats (1, 24, 3, 3)`` (the root's is the
    body's orientation in the body frame); ``betas (1, 10)``; ``vertices (1, V, 3)`` and
    ``joints (1, 29, 3)`` posed, root-relative; ``K (3, 3)``; ``transl (1, 3)``: camera-frame
    points are ``camera.body_to_camera(points, translation=transl)``; ``joints_2d (1, 29, 2)``
    pixels; ``reprojection_px``: mean pixel distance between ``joints_2d`` and the landmarks of
    the joints MediaPipe sees (visibility >= :data:`VISIBLE`); ``seconds``: time per step.
    """
    landmarks: Landmarks
    targets: torch.Tensor
    visibility: torch.Tensor
    phi: torch.Tensor
    rot_mats: torch.Tensor
    betas: torch.Tensor
    vertices: torch.Tensor
    joints: torch.Tensor
    K: torch.Tensor
    transl: torch.Tensor
    joints_2d: torch.Tensor
    reprojection_px: float
    seconds: dict

    @property
    def vertices_cam(self) -> torch.Tensor:
        """``(1, V, 3)`` the mesh in the camera frame (for rendering)."""
        return camera.body_to_camera(self.vertices, translation=self.transl)

    @property
    def guessed(self) -> list[str]:
        """Names of the joints MediaPipe could hardly see (visibility below :data:`VISIBLE`)."""
        return [skeleton.JOINT_NAMES[j] for j in (self.visibility[0] < VISIBLE).nonzero()[:, 0].tolist()]


@torch.no_grad()
def reconstruct(landmarks: Landmarks, body, betas: torch.Tensor | None = None, *, twist: bool = True,
                focal: float | None = None, mode: str = "adaptive") -> PhotoFit:
    """Landmarks -> joints -> twists -> IK -> mesh -> camera, with the body model ``body`` and shape
    ``betas (1, num_betas)`` (default the mean shape). ``twist=False`` asks the IK for no twist at all
    (what joint positions alone give)."""
    seconds = {}
    t0 = time.perf_counter()
    betas = torch.zeros(1, body.num_betas).to(body.v_template) if betas is None else betas
    rest = body.rest_joints(betas)
    lm = camera.camera_to_body(landmarks.world.to(rest))
    targets = with_bone_lengths(landmarks_to_joints(lm, rest), rest)
    targets = targets - targets[:, :1]
    seconds["joints"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if twist:
        phi = estimate_twist(targets, rest, *twist_cues(lm, landmarks.visibility.to(rest)), mode=mode)
    else:
        phi = _no_twist(1, rest)
    rot_mats = ik.solve(targets, phi, rest, mode=mode)
    seconds["twist + ik"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = body(betas, rot_mats)
    root = out.joints[:, :1]
    vertices, joints = out.vertices - root, out.joints - root
    seconds["mesh"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    K = photo_K(landmarks.image_size, focal).to(rest)
    uv, w = landmark_targets_2d(landmarks)
    joints_cam = camera.body_to_camera(joints)
    transl = fit_camera(joints_cam, uv.to(rest), w.to(rest), K)
    joints_2d = camera.project(joints_cam + transl[:, None], K)
    seen = w[0] >= VISIBLE
    error = torch.linalg.vector_norm(joints_2d[0] - uv[0].to(rest), dim=-1)[seen]
    seconds["camera"] = time.perf_counter() - t0
    return PhotoFit(landmarks, targets, joint_visibility(landmarks.visibility.to(rest)), phi, rot_mats, betas,
                    vertices, joints, K, transl, joints_2d, float(error.mean()) if len(error) else float("nan"),
                    seconds)


def person_box(landmarks: Landmarks, margin: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """A square around the landmarks MediaPipe sees (visibility >= :data:`VISIBLE`, all of them if
    none), grown on each side by ``margin`` times their extent: centre ``(1, 2)`` and side ``(1,)`` pixels,
    as :func:`hybrik_lite.transforms.square_box` gives them (for :func:`~hybrik_lite.transforms.crop_affine`;
    the square may reach outside the photo, which the crop fills with zeros)."""
    px = landmarks.pixels[0]
    seen = landmarks.visibility[0] >= VISIBLE
    px = px[seen] if seen.any() else px
    return transforms.square_box(torch.cat([px.amin(0), px.amax(0)])[None], enlarge=1 + 2 * margin)


# --- figure and json -------------------------------------------------------------------------------
def figure(image: np.ndarray, fit: PhotoFit, faces: torch.Tensor, *, title: str = ""):
    """The photo figure (matplotlib): MediaPipe's landmarks, our joints through the fitted camera,
    the mesh over the photo (our rasteriser), and the mesh from the side.

    Guessed joints and landmarks (visibility < :data:`VISIBLE`) are drawn hollow, their bones dashed;
    a note under the figure names them. Artists carry gids for tests: "seen"/"guessed" (markers),
    "guessed-note" (the note).
    """
    import matplotlib.pyplot as plt

    from . import viz

    H, W = image.shape[:2]
    photo = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    overlay = viz.mesh_overlay(photo, fit.vertices_cam.cpu(), faces, fit.K.cpu())[0][0]
    fig = plt.figure(figsize=(15, 4.4))
    ax = [fig.add_subplot(1, 4, k + 1) for k in range(3)] + [fig.add_subplot(1, 4, 4, projection="3d")]

    def points(axis, uv, seen, colour):
        uv = uv - 0.5          # imshow puts pixel centres at integers
        axis.scatter(uv[seen, 0], uv[seen, 1], s=14, c=colour, edgecolors="k", linewidths=0.4, gid="seen", zorder=3)
        axis.scatter(uv[~seen, 0], uv[~seen, 1], s=22, facecolors="none", edgecolors="#00e5ff", linewidths=1.2,
                     gid="guessed", zorder=3)

    lm_uv, lm_seen = fit.landmarks.pixels[0].numpy(), (fit.landmarks.visibility[0] >= VISIBLE).numpy()
    ax[0].imshow(image)
    points(ax[0], lm_uv, lm_seen, "#ffdd44")
    ax[0].set_title("MediaPipe's 33 landmarks", fontsize=10)
    uv, seen = fit.joints_2d[0].cpu().numpy(), (fit.visibility[0] >= VISIBLE).cpu().numpy()
    colours = viz.bone_colors()
    ax[1].imshow(image)
    for j, p in enumerate(skeleton.PARENTS):
        if p >= 0:
            ax[1].plot(uv[[p, j], 0] - 0.5, uv[[p, j], 1] - 0.5, color=colours[j], lw=1.8,
                       linestyle="-" if seen[j] and seen[p] else (0, (2, 2)))
    points(ax[1], uv, seen, "white")
    ax[1].set_title(f"our 29 joints, fitted camera\n(mean error {fit.reprojection_px:.1f} px on seen joints)",
                    fontsize=10)
    ax[2].imshow(overlay)
    ax[2].set_title("mesh over the photo (our rasteriser)", fontsize=10)
    for a in ax[:3]:
        a.set_xlim(-0.5, W - 0.5)
        a.set_ylim(H - 0.5, -0.5)
        a.axis("off")
    verts = fit.vertices[0].cpu().numpy()
    pts = viz.view_coordinates(verts, "side")
    f = faces.cpu().numpy()
    ax[3].plot_trisurf(pts[:, 0], pts[:, 1], pts[:, 2], triangles=f, color="#8fb3d9", linewidth=0, alpha=0.9)
    span = (pts.max(0) - pts.min(0)).max() / 2
    mid = (pts.max(0) + pts.min(0)) / 2
    for setter, m in zip((ax[3].set_xlim, ax[3].set_ylim, ax[3].set_zlim), mid):
        setter(m - span, m + span)
    ax[3].view_init(elev=10, azim=-60)
    ax[3].set_box_aspect((1, 1, 1), zoom=1.4)
    ax[3].set_axis_off()
    ax[3].set_title("the mesh, from another side", fontsize=10)
    guessed = fit.guessed
    note = ("guessed, not seen (MediaPipe visibility < 0.5; hollow markers, dashed bones): "
            + (", ".join(n.replace("_", " ") for n in guessed) if guessed else "none"))
    fig.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=8.5, color="#b03a2e" if guessed else "0.3",
             wrap=True, gid="guessed-note")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.94 if title else 1))
    return fig


def to_json(fit: PhotoFit, source: str) -> dict:
    """The reconstruction as plain JSON-able values (metres, pixels, radians)."""
    def r(x, nd=5):
        return np.round(x.detach().cpu().double().numpy(), nd).tolist()

    return {
        "image": source, "image_size": list(fit.landmarks.image_size),
        "landmarks": {"names": list(LANDMARK_NAMES), "world_m": r(fit.landmarks.world[0]),
                      "pixels": r(fit.landmarks.pixels[0], 2), "visibility": r(fit.landmarks.visibility[0], 4)},
        "joints": {"names": list(skeleton.JOINT_NAMES), "body_frame_m": r(fit.joints[0]),
                   "pixels": r(fit.joints_2d[0], 2), "visibility": r(fit.visibility[0], 4), "guessed": fit.guessed},
        "pose_axis_angle": r(kinematics.rotation_to_axis_angle(fit.rot_mats[0])),
        "twist_cos_sin": r(fit.phi[0]), "betas": r(fit.betas[0]),
        "camera": {"K": r(fit.K, 3), "translation_m": r(fit.transl[0]),
                   "frame": "x_cam = CAMERA_FROM_BODY x_body + translation (OpenCV camera frame)"},
        "reprojection_px": round(fit.reprojection_px, 3),
        "seconds": {k: round(v, 4) for k, v in fit.seconds.items()},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybrik_lite photo", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", nargs="?", default=None,
                        help="a photo of one person (default: scikit-image's astronaut, public domain)")
    parser.add_argument("--out", default="photo.png", help="the figure to write (PNG)")
    parser.add_argument("--json", default=None, help="also write the landmarks, joints, pose and camera as JSON")
    parser.add_argument("--no-twist", action="store_true", help="no twist estimates (joint positions only)")
    parser.add_argument("--max-side", type=int, default=1024,
                        help="shrink larger photos to this many pixels on the longer side (default 1024)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")        # headless: the command only writes files
    from . import body_model

    start = time.perf_counter()
    try:
        if args.image:
            image, source = load_image(args.image, args.max_side), str(args.image)
        else:
            image, source = sample_image("astronaut"), SAMPLE_PHOTOS["astronaut"]
        t0 = time.perf_counter()
        landmarks = detect(image)
        seconds_detect = time.perf_counter() - t0
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}")
        return 2
    body = body_model.load()
    fit = reconstruct(landmarks, body, twist=not args.no_twist)
    fit.seconds = {"detect": seconds_detect, **fit.seconds}
    fig = figure(image, fit, body.faces, title=f"{source} | MediaPipe landmarks -> our joints"
                 f"{'' if args.no_twist else ' + twist estimates'} -> IK -> mesh")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(to_json(fit, source), indent=1))
    guessed = ", ".join(fit.guessed) or "none"
    print(f"wrote {args.out}{' and ' + args.json if args.json else ''} ({time.perf_counter() - start:.1f} s; "
          f"MediaPipe {1000 * seconds_detect:.0f} ms); reprojection {fit.reprojection_px:.1f} px on seen joints; "
          f"guessed joints: {guessed}")
    return 0
