"""Answers to notebook 03's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def root_rotation(rest_offsets, target_offsets):
    """(B, N, 3) x 2 -> (B, 3, 3): argmin over proper rotations of sum_k |R r_k - d_k|^2 (Kabsch)."""
    H = rest_offsets.transpose(1, 2) @ target_offsets                  # sum_k r_k d_k^T
    U, _, Vh = torch.linalg.svd(H)
    V = Vh.transpose(1, 2)
    d = torch.linalg.det(V @ U.transpose(1, 2))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return V @ D @ U.transpose(1, 2)


def aim_from(q_parent, g_parent, rest_offset, target_joint, mode):
    """Adaptive: where the joint really is, q_parent + G_parent (t_j - t_parent); naive: its own target."""
    if mode == "adaptive":
        return q_parent + torch.einsum("bij,bj->bi", g_parent, rest_offset)
    return target_joint


def _wrong_root_rotation(rest_offsets, target_offsets):
    """Without the determinant fix: V U^T is a reflection for mirrored targets."""
    U, _, Vh = torch.linalg.svd(rest_offsets.transpose(1, 2) @ target_offsets)
    return Vh.transpose(1, 2) @ U.transpose(1, 2)


def _wrong_aim_from(q_parent, g_parent, rest_offset, target_joint, mode):
    """The parent's rotation transposed (as if taking the offset into the parent's frame, not out of it)."""
    if mode == "adaptive":
        return q_parent + torch.einsum("bji,bj->bi", g_parent, rest_offset)
    return target_joint


SOLUTIONS = {"root_rotation": root_rotation, "aim_from": aim_from}
WRONG = {"root_rotation": _wrong_root_rotation, "aim_from": _wrong_aim_from}
