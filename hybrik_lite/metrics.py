"""Evaluation metrics, batched: each returns one value per sample ``(B,)`` (metres, or degrees for
rotations, or a share for PCK). Multiply by 1000 for the millimetres that papers report.

- :func:`mpjpe`: mean per-joint position error after aligning the roots (pelvis).
- :func:`n_mpjpe`: after root alignment and the best scale only (N-MPJPE, Rhodin et al. 2018):
  forgives the body's size, not its orientation or posture.
- :func:`pa_mpjpe`: the same after a similarity Procrustes alignment (rotation, translation and
  scale; the reflection is excluded).
- :func:`pve`: mean per-vertex error (optionally root-aligned).
- :func:`pck`: share of joints within a threshold (2D in pixels or 3D in metres).
- :func:`rotation_error_deg`: mean angle between predicted and true rotations.

:func:`joint_errors` and :func:`rotation_angles_deg` keep the per-joint values, for breakdowns.
"""
from __future__ import annotations

import math

import torch

from ._checks import check_same, check_tensor

__all__ = ["joint_errors", "mpjpe", "n_mpjpe", "procrustes_align", "pa_mpjpe", "pve", "pck", "rotation_angles_deg",
           "rotation_error_deg"]


def _pair(pred, gt, dims=3, name="pred"):
    check_tensor(pred, name, (None, dims), min_dims=3)
    check_tensor(gt, "gt", (None, dims), min_dims=3)
    check_same({name: pred, "gt": gt})
    if pred.shape != gt.shape or pred.dim() != 3:
        raise ValueError(f"{name} and gt must both be (B, N, {dims}) with one shape, got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")


def procrustes_align(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``pred`` ``(B, N, 3)`` moved onto ``gt`` by the best similarity transform ``s R x + t``.

    Umeyama's closed form: centre both sets, ``S = pred_c^T gt_c = U diag(sigma) V^T``,
    ``R = V diag(1, 1, det(V U^T)) U^T`` (the sign fix keeps R a rotation, never a reflection),
    ``s = trace(diag(sigma) diag(1, 1, det)) / |pred_c|^2``, ``t = mean(gt) - s R mean(pred)``.
    Decomposed in float64.
    """
    _pair(pred, gt)
    p, g = pred.double(), gt.double()
    mp, mg = p.mean(1, keepdim=True), g.mean(1, keepdim=True)
    pc, gc = p - mp, g - mg
    u, sigma, vh = torch.linalg.svd(pc.transpose(1, 2) @ gc)
    v = vh.transpose(1, 2)
    sign = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    fix = torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], -1)
    rot = (v * fix[:, None]) @ u.transpose(1, 2)
    scale = (sigma * fix).sum(-1) / pc.pow(2).sum((1, 2)).clamp_min(torch.finfo(torch.float64).tiny)
    aligned = scale[:, None, None] * pc @ rot.transpose(1, 2) + mg
    return aligned.to(pred.dtype)


def joint_errors(pred: torch.Tensor, gt: torch.Tensor, align: str = "root", root: int = 0) -> torch.Tensor:
    """Per-joint Euclidean errors ``(B, J)`` in the input's units.

    ``align``: ``"none"``, ``"root"`` (both sets moved so joint ``root`` is at the origin) or
    ``"procrustes"`` (:func:`procrustes_align`).
    """
    _pair(pred, gt, dims=pred.shape[-1] if torch.is_tensor(pred) and pred.dim() == 3 else 3)
    if align == "root":
        pred, gt = pred - pred[:, root:root + 1], gt - gt[:, root:root + 1]
    elif align == "procrustes":
        pred = procrustes_align(pred, gt)
    elif align != "none":
        raise ValueError(f"align must be 'none', 'root' or 'procrustes', got {align!r}")
    return (pred - gt).norm(dim=-1)


def mpjpe(pred: torch.Tensor, gt: torch.Tensor, root: int = 0) -> torch.Tensor:
    """Mean per-joint position error after root alignment: ``(B, J, 3), (B, J, 3) -> (B,)``."""
    return joint_errors(pred, gt, "root", root).mean(-1)


def n_mpjpe(pred: torch.Tensor, gt: torch.Tensor, root: int = 0) -> torch.Tensor:
    """MPJPE after root alignment and the least-squares scale ``s = <p, g> / <p, p>`` of the
    root-relative prediction ``p`` onto the truth ``g``: ``(B, J, 3), (B, J, 3) -> (B,)``."""
    _pair(pred, gt)
    p, g = pred - pred[:, root:root + 1], gt - gt[:, root:root + 1]
    scale = (p * g).sum((1, 2)) / p.pow(2).sum((1, 2)).clamp_min(torch.finfo(p.dtype).tiny)
    return (scale[:, None, None] * p - g).norm(dim=-1).mean(-1)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean per-joint error after similarity Procrustes alignment: ``(B, J, 3), (B, J, 3) -> (B,)``."""
    return joint_errors(pred, gt, "procrustes").mean(-1)


def pve(pred_vertices: torch.Tensor, gt_vertices: torch.Tensor, pred_root: torch.Tensor | None = None,
        gt_root: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-vertex error ``(B, V, 3), (B, V, 3) -> (B,)``; with roots ``(B, 3)`` given, each mesh
    is first moved so its root is at the origin (as MPJPE does with joints)."""
    _pair(pred_vertices, gt_vertices, name="pred_vertices")
    if (pred_root is None) != (gt_root is None):
        raise ValueError("pass both pred_root and gt_root (B, 3), or neither")
    if pred_root is not None:
        check_tensor(pred_root, "pred_root", (3,), min_dims=2)
        check_tensor(gt_root, "gt_root", (3,), min_dims=2)
        pred_vertices, gt_vertices = pred_vertices - pred_root[:, None], gt_vertices - gt_root[:, None]
    return (pred_vertices - gt_vertices).norm(dim=-1).mean(-1)


def pck(pred: torch.Tensor, gt: torch.Tensor, threshold: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Percentage of correct keypoints as a share in [0, 1]: ``(B, J, C), (B, J, C) -> (B,)``.

    A joint is correct when its distance to the truth is at most ``threshold`` (pixels for 2D,
    metres for 3D; no alignment: root-align 3D joints first for MPI-INF-3DHP's PCK). ``valid``
    ``(B, J)`` bool leaves out unlabelled joints; a sample with none scores NaN.
    """
    _pair(pred, gt, dims=pred.shape[-1] if torch.is_tensor(pred) and pred.dim() == 3 else 2)
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    correct = ((pred - gt).norm(dim=-1) <= threshold).to(pred.dtype)
    if valid is None:
        return correct.mean(-1)
    if valid.shape != correct.shape:
        raise ValueError(f"valid must be (B, J) = {tuple(correct.shape)}, got {tuple(valid.shape)}")
    valid = valid.to(pred.dtype)
    return (correct * valid).sum(-1) / valid.sum(-1)


def rotation_angles_deg(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Angle of ``pred^T gt`` in degrees, ``(..., 3, 3), (..., 3, 3) -> (...)``, in float64.

    From the chordal distance ``|pred - gt|_F = 2 sqrt(2) sin(angle / 2)``, which stays accurate
    for tiny angles (``acos((trace - 1) / 2)`` loses half the digits there).
    """
    check_tensor(pred, "pred", (3, 3), min_dims=2)
    check_tensor(gt, "gt", (3, 3), min_dims=2)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have one shape (..., 3, 3), got {tuple(pred.shape)} and {tuple(gt.shape)}")
    chord = (pred.double() - gt.double()).flatten(-2).norm(dim=-1)
    return torch.rad2deg(2 * torch.asin((chord / (2 * math.sqrt(2))).clamp(max=1)))


def rotation_error_deg(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean rotation angle over joints: ``(B, J, 3, 3), (B, J, 3, 3) -> (B,)`` degrees."""
    if pred.dim() != 4:
        raise ValueError(f"pred must be (B, J, 3, 3), got {tuple(pred.shape)}")
    return rotation_angles_deg(pred, gt).mean(-1)
