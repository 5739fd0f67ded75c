"""Synthetic training data: poses a body can do, shapes, cameras, backgrounds, rendered images.

Every sample ``i`` of a dataset with seed ``s`` is a pure function of ``(s, i)``: the same
numbers on any machine, in any DataLoader worker, on CPU or GPU (up to float rounding).

Ground truth per sample (``S`` = crop size in pixels):

===============  =================  ==============================================================
key              shape              meaning
===============  =================  ==============================================================
image            (3, S, S) float    RGB in [0, 1]
joints_2d        (29, 2)            pixel coordinates (u right, v down; pixel centres at +0.5)
uvd              (29, 3)            HybrIK's target: u, v = pixel / S - 0.5; d = (z - z_root) / 2.2 m
joints_cam       (29, 3)            camera frame (OpenCV: x right, y down, z forward), metres
pose             (24, 3, 3)         local rotations; the root's is the camera-frame orientation
betas            (10,)              shape
phi              (23, 2)            twist (cos, sin) of joints 1..23 (``ik.twist_from_pose``)
K                (3, 3)             intrinsics
visible          (29,) bool         inside the crop and not under an occluding box
===============  =================  ==============================================================

Joint limits are Euler angles in degrees, ``R = Rz(z) @ Ry(y) @ Rx(x)`` in each joint's
local frame (the T-pose frame: x to the body's left, y up, z forward). Right-side limits
are the mirror images of the left ones (x kept, y and z negated and swapped).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import skeleton
from .kinematics import rodrigues

__all__ = [
    "JOINT_LIMITS_DEG", "CANONICAL_POSES_DEG", "euler_to_matrix", "joint_limits", "sample_euler",
    "sample_global_orientation", "CAMERA_FROM_BODY",
]

# ---------------------------------------------------------------------------------------
# 1. Poses a body can do
# ---------------------------------------------------------------------------------------

#: (x, y, z) Euler limits in degrees, for the midline joints and the LEFT side; the right
#: side is mirrored. Sign guide in the T-pose frame (body faces +z, left at +x, y up):
#: hip x < 0 swings the leg forward; knee x > 0 bends it; spine/neck x > 0 bends forward;
#: left shoulder z > 0 raises the arm, y < 0 brings it forward; left elbow y < 0 bends it.
JOINT_LIMITS_DEG: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "pelvis": ((0, 0), (0, 0), (0, 0)),           # the root: set by the global orientation
    "left_hip": ((-120, 35), (-40, 40), (-25, 50)),
    "spine1": ((-20, 45), (-25, 25), (-20, 20)),
    "left_knee": ((0, 150), (-5, 5), (-5, 5)),
    "spine2": ((-15, 30), (-20, 20), (-15, 15)),
    "left_ankle": ((-35, 45), (-20, 20), (-20, 20)),
    "spine3": ((-15, 30), (-20, 20), (-15, 15)),
    "left_foot": ((-25, 25), (-5, 5), (-5, 5)),
    "neck": ((-35, 45), (-45, 45), (-25, 25)),
    "left_collar": ((-10, 10), (-15, 15), (-10, 30)),
    "head": ((-30, 35), (-45, 45), (-20, 20)),
    "left_shoulder": ((-70, 70), (-100, 40), (-90, 80)),
    "left_elbow": ((-80, 80), (-145, 0), (-5, 5)),
    "left_wrist": ((-30, 30), (-35, 35), (-70, 70)),
    "left_hand": ((-10, 10), (-10, 10), (-15, 15)),
}

#: Canonical poses as Euler angles in degrees (left side; right side mirrored unless given).
CANONICAL_POSES_DEG: dict[str, dict[str, tuple[float, float, float]]] = {
    "t_pose": {},
    "standing": {"left_shoulder": (0, 0, -75), "right_shoulder": (0, 0, 75),
                 "left_elbow": (0, -10, 0), "right_elbow": (0, 10, 0)},
    "walking": {"left_hip": (-25, 0, 0), "right_hip": (20, 0, 0), "right_knee": (35, 0, 0), "left_knee": (10, 0, 0),
                "left_shoulder": (0, 20, -75), "right_shoulder": (0, 20, 75),
                "left_elbow": (0, -25, 0), "right_elbow": (0, 25, 0)},
    "sitting": {"left_hip": (-90, 0, 8), "right_hip": (-90, 0, -8), "left_knee": (90, 0, 0), "right_knee": (90, 0, 0),
                "left_shoulder": (0, -30, -65), "right_shoulder": (0, 30, 65),
                "left_elbow": (0, -60, 0), "right_elbow": (0, 60, 0)},
    "reaching": {"left_shoulder": (0, -70, 30), "right_shoulder": (0, 0, 70),
                 "left_elbow": (0, -10, 0), "spine1": (15, 10, 0), "spine2": (10, 0, 0),
                 "left_hip": (-10, 0, 0)},
    "crouching": {"left_hip": (-110, 0, 15), "right_hip": (-110, 0, -15), "left_knee": (130, 0, 0),
                  "right_knee": (130, 0, 0), "left_ankle": (30, 0, 0), "right_ankle": (30, 0, 0),
                  "spine1": (25, 0, 0), "spine2": (10, 0, 0), "left_shoulder": (0, -40, -50),
                  "right_shoulder": (0, 40, 50), "left_elbow": (0, -70, 0), "right_elbow": (0, 70, 0)},
}


def _mirror_limits(lim):
    (x0, x1), (y0, y1), (z0, z1) = lim
    return (x0, x1), (-y1, -y0), (-z1, -z0)


def joint_limits(dtype=torch.float32, device=None) -> torch.Tensor:
    """The limits of the 24 joints as a tensor ``(24, 3, 2)`` of (min, max) in radians."""
    rows = []
    for name in skeleton.SMPL_JOINT_NAMES:
        if name.startswith("right_"):
            rows.append(_mirror_limits(JOINT_LIMITS_DEG["left_" + name[len("right_"):]]))
        else:
            rows.append(JOINT_LIMITS_DEG[name])
    return torch.tensor(rows, dtype=dtype, device=device) * (math.pi / 180)


def canonical_euler(name: str, dtype=torch.float32, device=None) -> torch.Tensor:
    """A canonical pose as Euler angles ``(24, 3)`` in radians (mirrored where not given)."""
    if name not in CANONICAL_POSES_DEG:
        raise ValueError(f"unknown canonical pose {name!r}; expected one of {list(CANONICAL_POSES_DEG)}")
    spec = CANONICAL_POSES_DEG[name]
    euler = torch.zeros(24, 3, dtype=dtype, device=device)
    for j, joint in enumerate(skeleton.SMPL_JOINT_NAMES):
        if joint in spec:
            euler[j] = torch.tensor(spec[joint], dtype=dtype, device=device)
        elif joint.startswith("right_") and "left_" + joint[6:] in spec:
            x, y, z = spec["left_" + joint[6:]]
            euler[j] = torch.tensor((x, -y, -z), dtype=dtype, device=device)
    return euler * (math.pi / 180)


def euler_to_matrix(euler: torch.Tensor) -> torch.Tensor:
    """``R = Rz(z) @ Ry(y) @ Rx(x)``. ``(..., 3)`` radians -> ``(..., 3, 3)``."""
    axes = torch.eye(3, dtype=euler.dtype, device=euler.device)
    rx, ry, rz = (rodrigues(euler[..., k, None] * axes[k]) for k in range(3))
    return rz @ ry @ rx


def sample_euler(num: int, generator: torch.Generator, *, noise_deg: float = 20.0,
                 canonical_share: float = 0.7, dtype=torch.float32) -> torch.Tensor:
    """Body poses (without the root) as Euler angles ``(num, 24, 3)`` inside the joint limits.

    A share ``canonical_share`` starts from a random canonical pose plus Gaussian noise of
    ``noise_deg``; the rest are uniform inside the limits shrunk to their middle 60%.
    Everything is clamped to the limits. The root (index 0) is zero.
    """
    limits = joint_limits(torch.float64)
    low, high = limits[..., 0], limits[..., 1]
    names = list(CANONICAL_POSES_DEG)
    canon = torch.stack([canonical_euler(n, torch.float64) for n in names])       # (C, 24, 3)
    choice = torch.randint(len(names), (num,), generator=generator)
    noise = torch.randn(num, 24, 3, generator=generator, dtype=torch.float64) * math.radians(noise_deg)
    from_canon = canon[choice] + noise
    middle, half = (low + high) / 2, (high - low) / 2 * 0.6
    uniform = middle + (torch.rand(num, 24, 3, generator=generator, dtype=torch.float64) * 2 - 1) * half
    use_canon = torch.rand(num, generator=generator) < canonical_share
    euler = torch.where(use_canon[:, None, None], from_canon, uniform)
    euler = torch.maximum(torch.minimum(euler, high), low)
    return euler.to(dtype)


#: The rotation from the body frame (Y up, facing +Z) to the OpenCV camera frame (y down,
#: z forward) that puts the camera in front of the person: 180 degrees about x.
CAMERA_FROM_BODY = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def sample_global_orientation(num: int, generator: torch.Generator, *, max_pitch_deg: float = 15.0,
                              max_roll_deg: float = 10.0, dtype=torch.float32) -> torch.Tensor:
    """Camera-frame root rotations ``(num, 3, 3)``: any heading (front, side and back views)
    with a little pitch and roll. ``R = CAMERA_FROM_BODY @ Rx(pitch) @ Rz(roll) @ Ry(yaw)``."""
    yaw = torch.rand(num, generator=generator, dtype=torch.float64) * 2 * math.pi
    pitch = (torch.rand(num, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_pitch_deg)
    roll = (torch.rand(num, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_roll_deg)
    zero = torch.zeros_like(yaw)
    r_yaw = rodrigues(torch.stack([zero, yaw, zero], -1))
    r_pitch = rodrigues(torch.stack([pitch, zero, zero], -1))
    r_roll = rodrigues(torch.stack([zero, zero, roll], -1))
    return (CAMERA_FROM_BODY.double() @ r_pitch @ r_roll @ r_yaw).to(dtype)
