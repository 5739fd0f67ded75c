"""Answers to notebook 07's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def _centred_svd(pred, gt):
    """Both centred (float64), and the SVD of sum_j p_j g_j^T: pc, gc (B, J, 3), U, sigma, V (B, 3, 3), (B, 3), (B, 3, 3)."""
    pc = pred.double() - pred.double().mean(1, keepdim=True)
    gc = gt.double() - gt.double().mean(1, keepdim=True)
    u, sigma, vt = torch.linalg.svd(pc.transpose(1, 2) @ gc)
    return pc, gc, u, sigma, vt.transpose(1, 2)


def pa_mpjpe(pred, gt):
    """Mean joint error after the best similarity s R x + t (Umeyama), never a reflection: (B, J, 3) x 2 -> (B,)."""
    pc, gc, u, sigma, v = _centred_svd(pred, gt)
    d = torch.ones_like(sigma)
    d[:, 2] = torch.linalg.det(v @ u.transpose(1, 2)).sign()
    rotation = v @ torch.diag_embed(d) @ u.transpose(1, 2)
    scale = (sigma * d).sum(-1) / pc.pow(2).sum((1, 2))
    aligned = scale[:, None, None] * pc @ rotation.transpose(1, 2)
    return (aligned - gc).norm(dim=-1).mean(-1).to(pred.dtype)


def n_mpjpe(pred, gt):
    """Root-aligned, then scaled by argmin_s sum |s p - g|^2 = <p, g> / <p, p>: (B, J, 3) x 2 -> (B,)."""
    p, g = pred - pred[:, :1], gt - gt[:, :1]
    s = torch.einsum("bjc,bjc->b", p, g) / torch.einsum("bjc,bjc->b", p, p)
    return (s[:, None, None] * p - g).norm(dim=-1).mean(-1)


def _wrong_pa_mpjpe(pred, gt):
    """Without the determinant fix: a mirror image would be 'aligned' by a reflection."""
    pc, gc, u, sigma, v = _centred_svd(pred, gt)
    aligned = (sigma.sum(-1) / pc.pow(2).sum((1, 2)))[:, None, None] * pc @ (v @ u.transpose(1, 2)).transpose(1, 2)
    return (aligned - gc).norm(dim=-1).mean(-1).to(pred.dtype)


def _wrong_n_mpjpe(pred, gt):
    """The ratio of the skeletons' sizes as the scale: right without noise, not the least-squares scale."""
    p, g = pred - pred[:, :1], gt - gt[:, :1]
    s = g.norm(dim=(1, 2)) / p.norm(dim=(1, 2))
    return (s[:, None, None] * p - g).norm(dim=-1).mean(-1)


SOLUTIONS = {"pa_mpjpe": pa_mpjpe, "n_mpjpe": n_mpjpe}
WRONG = {"pa_mpjpe": _wrong_pa_mpjpe, "n_mpjpe": _wrong_n_mpjpe}
