"""Answers to notebook 07's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def pa_mpjpe(pred, gt):
    """Mean joint error after the best similarity s R x + t (Umeyama), never a reflection: (B, J, 3) x 2 -> (B,)."""
    errors = []
    for p, g in zip(pred.double(), gt.double()):
        pc, gc = p - p.mean(0), g - g.mean(0)
        u, sigma, vt = torch.linalg.svd(pc.T @ gc)
        d = torch.ones(3, dtype=p.dtype)
        d[2] = torch.linalg.det(vt.T @ u.T).sign()
        rotation = vt.T @ torch.diag(d) @ u.T
        scale = (sigma * d).sum() / pc.pow(2).sum()
        aligned = scale * pc @ rotation.T + g.mean(0)
        errors.append((aligned - g).norm(dim=-1).mean())
    return torch.stack(errors).to(pred.dtype)


def n_mpjpe(pred, gt):
    """Root-aligned, then scaled by argmin_s sum |s p - g|^2 = <p, g> / <p, p>: (B, J, 3) x 2 -> (B,)."""
    p, g = pred - pred[:, :1], gt - gt[:, :1]
    s = torch.einsum("bjc,bjc->b", p, g) / torch.einsum("bjc,bjc->b", p, p)
    return (s[:, None, None] * p - g).norm(dim=-1).mean(-1)


def _wrong_pa_mpjpe(pred, gt):
    """Without the determinant fix: a mirror image would be 'aligned' by a reflection."""
    errors = []
    for p, g in zip(pred.double(), gt.double()):
        pc, gc = p - p.mean(0), g - g.mean(0)
        u, sigma, vt = torch.linalg.svd(pc.T @ gc)
        aligned = sigma.sum() / pc.pow(2).sum() * pc @ (vt.T @ u.T).T + g.mean(0)
        errors.append((aligned - g).norm(dim=-1).mean())
    return torch.stack(errors).to(pred.dtype)


def _wrong_n_mpjpe(pred, gt):
    """The ratio of the skeletons' sizes as the scale: right without noise, not the least-squares scale."""
    p, g = pred - pred[:, :1], gt - gt[:, :1]
    s = g.norm(dim=(1, 2)) / p.norm(dim=(1, 2))
    return (s[:, None, None] * p - g).norm(dim=-1).mean(-1)


SOLUTIONS = {"pa_mpjpe": pa_mpjpe, "n_mpjpe": n_mpjpe}
WRONG = {"pa_mpjpe": _wrong_pa_mpjpe, "n_mpjpe": _wrong_n_mpjpe}
