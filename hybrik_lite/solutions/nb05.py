"""Answers to notebook 05's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def soft_argmax(logits):
    """(B, J, D, H, W) -> (B, J, 3) expected (u, v, d) at bin centres (k + 0.5) / n - 0.5."""
    B, J, D, H, W = logits.shape
    p = torch.softmax(logits.reshape(B, J, -1), -1).reshape(B, J, D, H, W)
    grids = torch.meshgrid(*[(torch.arange(n, dtype=logits.dtype) + 0.5) / n - 0.5 for n in (D, H, W)],
                           indexing="ij")
    d, v, u = ((p * g).sum((2, 3, 4)) for g in grids)
    return torch.stack([u, v, d], -1)


def uvd_to_xyz(uvd, K, image_size, root_depth):
    """HybrIK's uvd (B, J, 3) + root depth (B,) -> root-relative camera xyz (B, J, 3), metres."""
    z = root_depth[:, None] + 2.2 * uvd[..., 2]
    pixels = (uvd[..., :2] + 0.5) * image_size
    xy = (pixels - K[:2, 2]) / torch.stack([K[0, 0], K[1, 1]]) * z[..., None]
    xyz = torch.cat([xy, z[..., None]], -1).double()
    return (xyz - xyz[:, :1]).to(uvd.dtype)


def _wrong_soft_argmax(logits):
    """HybrIK's index / n - 0.5 bins: half a bin off (a plausible slip)."""
    return soft_argmax(logits) - 0.5 / torch.tensor(logits.shape[-1:-4:-1], dtype=logits.dtype)


def _wrong_uvd_to_xyz(uvd, K, image_size, root_depth):
    """Forgets that depth is root-relative: back-projects every joint at the root's depth."""
    flat = uvd.clone()
    flat[..., 2] = 0
    return uvd_to_xyz(flat, K, image_size, root_depth)


SOLUTIONS = {"soft_argmax": soft_argmax, "uvd_to_xyz": uvd_to_xyz}
WRONG = {"soft_argmax": _wrong_soft_argmax, "uvd_to_xyz": _wrong_uvd_to_xyz}
