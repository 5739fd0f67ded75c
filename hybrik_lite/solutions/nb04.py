"""Answers to notebook 04's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def perspective_depth(lam, corner_z):
    """Screen barycentrics (..., 3) and the corners' depths (3,) -> depth (...).

    1/z is affine in screen position, and screen barycentrics reproduce affine functions, so
    1/z = sum_k lambda_k / z_k.
    """
    return 1.0 / (lam / corner_z).sum(-1)


def cam_to_uvd(joints_cam, K, size):
    """Camera-frame joints (B, J, 3), K (3, 3), crop side `size` px -> HybrIK's uvd (B, J, 3), root = joint 0."""
    x, y, z = joints_cam.unbind(-1)
    u_px = K[0, 0] * x / z + K[0, 2]
    v_px = K[1, 1] * y / z + K[1, 2]
    d = (z - z[:, :1]) / 2.2
    return torch.stack([u_px / size - 0.5, v_px / size - 0.5, d], -1)


def _wrong_perspective_depth(lam, corner_z):
    """The tempting mistake: depth interpolated linearly in screen space."""
    return (lam * corner_z).sum(-1)


def _wrong_cam_to_uvd(joints_cam, K, size):
    """Depth measured from the camera, not from the root."""
    uvd = cam_to_uvd(joints_cam, K, size)
    return torch.cat([uvd[..., :2], joints_cam[..., 2:] / 2.2], -1)


SOLUTIONS = {"perspective_depth": perspective_depth, "cam_to_uvd": cam_to_uvd}
WRONG = {"perspective_depth": _wrong_perspective_depth, "cam_to_uvd": _wrong_cam_to_uvd}
