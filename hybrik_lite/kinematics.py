"""SMPL's forward pass written from scratch: Rodrigues, forward kinematics, skinning.

The pipeline, for shape ``betas`` and local joint rotations ``R``:

1. shape blend shapes   ``v_shaped = v_template + shapedirs @ betas``
2. joint regression     ``J = J_regressor @ v_shaped``          (rest joints)
3. pose blend shapes    ``v_posed = v_shaped + posedirs @ (R[1:] - I)``
4. forward kinematics   global transform of each joint along the tree
5. skinning             each vertex moves with a weighted mix of the joints' transforms

Conventions: rotations act on column vectors (``R @ v``); batch first; every
function works for float32 and float64 on any device, and follows its inputs'
device and dtype.
"""
from __future__ import annotations

from typing import Sequence

import torch

from . import skeleton
from ._checks import check_finite, check_same, check_tensor

__all__ = [
    "skew", "rodrigues", "rotation_to_axis_angle", "forward_kinematics", "skinning_transforms",
    "blend_shapes", "regress_joints", "pose_blend_shapes", "linear_blend_skinning", "smpl_forward",
]


_SKEW_BASIS: dict = {}


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix: ``skew(v) @ w == cross(v, w)``. ``(..., 3) -> (..., 3, 3)``.

    ``[v]x = [[0, -z, y], [z, 0, -x], [-y, x, 0]]``, built as one product ``v @ E`` with the
    constant ``(3, 9)`` matrix ``E`` that places each component (one op instead of a 9-way stack).
    """
    key = (v.dtype, v.device)
    if key not in _SKEW_BASIS:
        basis = torch.zeros(3, 9, dtype=v.dtype, device=v.device)
        for component, row, col, sign in ((0, 2, 1, 1), (0, 1, 2, -1), (1, 0, 2, 1), (1, 2, 0, -1),
                                          (2, 1, 0, 1), (2, 0, 1, -1)):
            basis[component, 3 * row + col] = sign
        _SKEW_BASIS[key] = basis
    return (v @ _SKEW_BASIS[key]).reshape(v.shape + (3,))


def rodrigues(axis_angle: torch.Tensor) -> torch.Tensor:
    """Axis-angle to rotation matrix. ``(..., 3) -> (..., 3, 3)``.

    ``R = I + sin(t)/t K + (1 - cos(t))/t^2 K^2`` with ``K = skew(axis_angle)`` and
    ``t = |axis_angle|``. Near ``t = 0`` the two coefficients use their Taylor
    series, so the result (and its gradient) is exact at zero: no epsilon.
    """
    check_tensor(axis_angle, "axis_angle", (3,), min_dims=1)
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    small = theta2 < 1e-6
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 * theta2 / 720, (1 - torch.cos(theta)) / theta2_safe)
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def rotation_to_axis_angle(rot_mats: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to axis-angle, the inverse of :func:`rodrigues`. ``(..., 3, 3) -> (..., 3)``.

    Angles in ``[0, pi]``. Uses the quaternion route (robust at 0 and pi).
    """
    check_tensor(rot_mats, "rot_mats", (3, 3), min_dims=2)
    m = rot_mats
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # four candidate quaternions (w, x, y, z), pick the best-conditioned one
    q_abs2 = torch.stack([1 + trace, 1 + 2 * m[..., 0, 0] - trace,
                          1 + 2 * m[..., 1, 1] - trace, 1 + 2 * m[..., 2, 2] - trace], -1)
    best = q_abs2.argmax(-1, keepdim=True)
    cands = torch.stack([
        torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - trace, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - trace, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - trace], -1),
    ], -2)  # (..., 4, 4): row k is 4 |q_k| q
    quat = torch.gather(cands, -2, best.unsqueeze(-1).expand(best.shape[:-1] + (1, 4))).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)  # w >= 0 -> angle in [0, pi]
    w, xyz = quat[..., :1], quat[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, w)
    small = sin_half < 1e-6
    scale = torch.where(small, 2 / w.clamp_min(1e-12) * (1 + sin_half ** 2 / (6 * w.clamp_min(1e-12) ** 2)),
                        angle / torch.where(small, torch.ones_like(sin_half), sin_half))
    return xyz * scale


def _parents_list(parents) -> list[int]:
    if torch.is_tensor(parents):
        parents = parents.tolist()
    parents = [int(p) for p in parents]
    if parents[0] != -1 or any(not (0 <= p < j) for j, p in enumerate(parents[1:], start=1)):
        raise ValueError("parents must start with -1 (the root) and list each joint after its parent "
                         f"(parents[j] < j); got {parents}")
    return parents


def forward_kinematics(rot_mats: torch.Tensor, rest_joints: torch.Tensor,
                       parents: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose a skeleton: local rotations + rest joints -> posed joints and global transforms.

    Args:
        rot_mats: ``(B, Jr, 3, 3)`` local rotation of each joint relative to its parent
            (the root's is global). ``Jr`` may be smaller than ``J`` (e.g. 24 rotations for
            the 29-joint tree): the joints without a rotation (leaves) get the identity.
        rest_joints: ``(B, J, 3)`` joint positions in the rest pose.
        parents: ``(J,)`` parent index of each joint, ``-1`` for the root, ``parents[j] < j``.

    Returns:
        posed_joints ``(B, J, 3)``, and transforms ``(B, J, 4, 4)``: the global rigid
        transform of each joint's frame, ``[[G_j, p_j], [0, 1]]``, where ``G_j`` is the
        global rotation (parent's ``G`` times local ``R_j``) and ``p_j`` the posed joint:
        ``p_j = p_parent + G_parent (t_j - t_parent)``.

    Joints of the same tree depth are computed together (one batched step per level).
    """
    check_tensor(rot_mats, "rot_mats", (None, 3, 3))
    check_tensor(rest_joints, "rest_joints", (None, 3))
    check_same({"rot_mats": rot_mats, "rest_joints": rest_joints})
    plist = _parents_list(parents)
    batch, num_joints = rest_joints.shape[0], rest_joints.shape[1]
    if len(plist) != num_joints:
        raise ValueError(f"parents has {len(plist)} entries but rest_joints has {num_joints} joints")
    if rot_mats.shape[1] > num_joints or rot_mats.shape[0] != batch:
        raise ValueError(f"rot_mats must be (B, Jr, 3, 3) with B = {batch} and Jr <= {num_joints}, "
                         f"got {tuple(rot_mats.shape)}")
    if rot_mats.shape[1] < num_joints:  # leaves: identity rotation
        eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
        pad = eye.expand(batch, num_joints - rot_mats.shape[1], 3, 3)
        rot_mats = torch.cat([rot_mats, pad], dim=1)

    parent_idx = torch.tensor(plist, device=rest_joints.device)
    bones = rest_joints.clone()
    bones[:, 1:] = rest_joints[:, 1:] - rest_joints[:, parent_idx[1:]]  # t_j - t_parent

    global_rots = [None] * num_joints
    posed = [None] * num_joints
    global_rots[0], posed[0] = rot_mats[:, 0], rest_joints[:, 0]
    for level in skeleton.levels(plist)[1:]:
        idx = torch.tensor(level, device=rest_joints.device)
        par = [plist[j] for j in level]
        g_par = torch.stack([global_rots[p] for p in par], 1)              # (B, L, 3, 3)
        p_par = torch.stack([posed[p] for p in par], 1)                    # (B, L, 3)
        g = g_par @ rot_mats[:, idx]
        p = p_par + (g_par @ bones[:, idx].unsqueeze(-1)).squeeze(-1)
        for k, j in enumerate(level):
            global_rots[j], posed[j] = g[:, k], p[:, k]
    rots = torch.stack(global_rots, 1)
    joints = torch.stack(posed, 1)
    transforms = torch.zeros(batch, num_joints, 4, 4, dtype=rots.dtype, device=rots.device)
    transforms[..., :3, :3] = rots
    transforms[..., :3, 3] = joints
    transforms[..., 3, 3] = 1
    return joints, transforms


def skinning_transforms(transforms: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Transforms that move rest-pose points rigidly with each joint. ``(B,J,4,4), (B,J,3) -> (B,J,4,4)``.

    A point ``x`` attached to joint ``j`` goes to ``G_j (x - t_j) + p_j``: rotation ``G_j``,
    translation ``p_j - G_j t_j``.
    """
    out = transforms.clone()
    out[..., :3, 3] = transforms[..., :3, 3] - (transforms[..., :3, :3] @ rest_joints.unsqueeze(-1)).squeeze(-1)
    return out


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Shape offsets. ``betas (B, K)``, ``shapedirs (V, 3, K)`` -> ``(B, V, 3)``."""
    return torch.einsum("bk,vck->bvc", betas, shapedirs)


def regress_joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joints as fixed linear combinations of vertices. ``(J, V), (B, V, 3) -> (B, J, 3)``."""
    return torch.einsum("jv,bvc->bjc", j_regressor, vertices)


def pose_blend_shapes(rot_mats: torch.Tensor, posedirs: torch.Tensor) -> torch.Tensor:
    """Pose correctives from the non-root rotations. ``(B, 24, 3, 3), (207, V*3) -> (B, V, 3)``.

    The feature is ``R_j - I`` of joints 1..23, flattened: zero in the rest pose.
    """
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    feature = (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)
    return (feature @ posedirs).reshape(rot_mats.shape[0], -1, 3)


def linear_blend_skinning(vertices: torch.Tensor, weights: torch.Tensor,
                          transforms: torch.Tensor) -> torch.Tensor:
    """Move each vertex by the weighted sum of its joints' skinning transforms.

    ``vertices (B, V, 3)``, ``weights (V, J)`` (rows sum to 1), ``transforms (B, J, 4, 4)``
    from :func:`skinning_transforms` -> ``(B, V, 3)``.
    """
    batch, num_joints = transforms.shape[:2]
    # blend the joints' 3x4 transforms per vertex: (V, J) @ (B, J, 12) -> (B, V, 3, 4)
    blended = torch.matmul(weights, transforms[..., :3, :].reshape(batch, num_joints, 12)).reshape(batch, -1, 3, 4)
    return torch.einsum("bvij,bvj->bvi", blended[..., :3], vertices) + blended[..., 3]


def smpl_forward(betas: torch.Tensor, rot_mats: torch.Tensor, v_template: torch.Tensor,
                 shapedirs: torch.Tensor, posedirs: torch.Tensor, j_regressor: torch.Tensor,
                 parents: Sequence[int] | torch.Tensor, lbs_weights: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole SMPL forward pass, step by step.

    Args:
        betas ``(B, K)``; rot_mats ``(B, 24, 3, 3)``; v_template ``(V, 3)``;
        shapedirs ``(V, 3, K)``; posedirs ``(207, V*3)``; j_regressor ``(24, V)``;
        parents ``(24,)``; lbs_weights ``(V, 24)``.

    Returns:
        vertices ``(B, V, 3)``, posed joints ``(B, 24, 3)``, global transforms ``(B, 24, 4, 4)``.
    """
    check_tensor(betas, "betas", (shapedirs.shape[-1],))
    check_tensor(rot_mats, "rot_mats", (24, 3, 3))
    check_same({"betas": betas, "rot_mats": rot_mats, "v_template": v_template})
    v_shaped = v_template + blend_shapes(betas, shapedirs)
    rest_joints = regress_joints(j_regressor, v_shaped)
    v_posed = v_shaped + pose_blend_shapes(rot_mats, posedirs)
    joints, transforms = forward_kinematics(rot_mats, rest_joints, parents)
    vertices = linear_blend_skinning(v_posed, lbs_weights, skinning_transforms(transforms, rest_joints))
    return vertices, joints, transforms
