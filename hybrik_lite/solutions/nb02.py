"""Answers to notebook 02's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def _skew(k):
    zero = torch.zeros_like(k[..., 0])
    return torch.stack([zero, -k[..., 2], k[..., 1], k[..., 2], zero, -k[..., 0], -k[..., 1], k[..., 0], zero],
                       -1).reshape(k.shape[:-1] + (3, 3))


def _axis_angle_matrix(axis, cos, sin):
    """Rodrigues with a unit axis (..., 3) and the angle's cos, sin (...)."""
    K = _skew(axis)
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return eye + sin[..., None, None] * K + (1 - cos)[..., None, None] * (K @ K)


def swing(u, v):
    """(N, 3), (N, 3) -> (N, 3, 3): the smallest rotation u -> v; half-turn about perpendicular(u) when v = -u."""
    u = u / u.norm(dim=-1, keepdim=True)
    v = v / v.norm(dim=-1, keepdim=True)
    cross = torch.linalg.cross(u, v, dim=-1)
    sin, cos = cross.norm(dim=-1), (u * v).sum(-1)
    parallel = sin < 1e-12
    least = torch.nn.functional.one_hot(u.abs().argmin(-1), 3).to(u.dtype)   # the axis least aligned with u
    perp = torch.linalg.cross(u, least, dim=-1)
    perp = perp / perp.norm(dim=-1, keepdim=True)
    axis = torch.where(parallel[..., None], perp, cross / torch.where(parallel, 1.0, sin)[..., None])
    cos = torch.where(parallel, torch.sign(cos), cos)
    sin = torch.where(parallel, 0.0, sin)
    return _axis_angle_matrix(axis, cos, sin)


def _angle_about(T, u):
    """The angle (N,) of rotations T (N, 3, 3) about unit axes u (N, 3): cos from the trace, sin from the skew part."""
    cos = (T[..., 0, 0] + T[..., 1, 1] + T[..., 2, 2] - 1) / 2
    sin = ((T[..., 2, 1] - T[..., 1, 2]) * u[..., 0] + (T[..., 0, 2] - T[..., 2, 0]) * u[..., 1]
           + (T[..., 1, 0] - T[..., 0, 1]) * u[..., 2]) / 2
    return torch.atan2(sin, cos)


def decompose(R, bone):
    """R (N, 3, 3), bone (N, 3) -> swing (N, 3, 3), twist angle (N,): R = swing @ twist about the bone."""
    u = bone / bone.norm(dim=-1, keepdim=True)
    S = swing(u, (R @ u[..., None])[..., 0])
    return S, _angle_about(S.transpose(-1, -2) @ R, u)


def head_twist_degrees():
    """The head's bone points up (+Y); +45 about +Y turns the face (+Z) towards +X (right-hand rule)."""
    return 45.0


def _wrong_swing(u, v):
    """A sign slip in the axis (v x u instead of u x v): the rotation turns the wrong way."""
    return swing(u, v).transpose(-1, -2)


def _wrong_decompose(R, bone):
    """The wrong order: the twist read from R @ swing^T (twist after the swing) instead of swing^T @ R."""
    u = bone / bone.norm(dim=-1, keepdim=True)
    S = swing(u, (R @ u[..., None])[..., 0])
    return S, _angle_about(R @ S.transpose(-1, -2), u)


def _wrong_head_twist_degrees():
    """The sign of the right-hand rule reversed: the head looks to its right."""
    return -45.0


SOLUTIONS = {"swing": swing, "decompose": decompose, "head_twist": head_twist_degrees}
WRONG = {"swing": _wrong_swing, "decompose": _wrong_decompose, "head_twist": _wrong_head_twist_degrees}
