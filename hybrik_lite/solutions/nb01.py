"""Answers to notebook 01's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def forward_kinematics(rot_mats, rest_joints, parents):
    """(B, J, 3, 3), (B, J, 3), J parents -> posed joints (B, J, 3), global rotations (B, J, 3, 3).

    One joint at a time, parents first: G_k = G_pa(k) R_k, p_k = p_pa(k) + G_pa(k) (t_k - t_pa(k)).
    """
    G, p = [rot_mats[:, 0]], [rest_joints[:, 0]]
    for k in range(1, len(parents)):
        up = int(parents[k])
        bone = rest_joints[:, k] - rest_joints[:, up]
        p.append(p[up] + torch.einsum("bij,bj->bi", G[up], bone))
        G.append(G[up] @ rot_mats[:, k])
    return torch.stack(p, 1), torch.stack(G, 1)


def _pose_correctives(rot_mats, posedirs):
    """B_P: (R_k - I) of joints 1..23, flattened row by row (207 numbers), times P (207, 3V) -> (B, V, 3)."""
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    feature = (rot_mats[:, 1:] - eye).flatten(1)
    return (feature @ posedirs).unflatten(1, (-1, 3))


def _blend(vertices, weights, rest_joints, posed, G):
    """Sum over joints of W_vk (G_k (x_v - t_k) + p_k)."""
    moved = torch.einsum("bkij,bvkj->bvki", G, vertices[:, :, None] - rest_joints[:, None]) + posed[:, None]
    return torch.einsum("vk,bvki->bvi", weights, moved)


def posed_vertices(v_shaped, rot_mats, rest_joints, parents, posedirs, weights):
    """M(beta, theta): correctives added to the shaped template in the rest pose, then skinned. -> (B, V, 3)"""
    posed, G = forward_kinematics(rot_mats, rest_joints, parents)
    return _blend(v_shaped + _pose_correctives(rot_mats, posedirs), weights, rest_joints, posed, G)


def _wrong_forward_kinematics(rot_mats, rest_joints, parents):
    """The rest bone turned by the joint's own global rotation G_k instead of its parent's."""
    G, p = [rot_mats[:, 0]], [rest_joints[:, 0]]
    for k in range(1, len(parents)):
        up = int(parents[k])
        G.append(G[up] @ rot_mats[:, k])
        p.append(p[up] + torch.einsum("bij,bj->bi", G[k], rest_joints[:, k] - rest_joints[:, up]))
    return torch.stack(p, 1), torch.stack(G, 1)


def _wrong_posed_vertices(v_shaped, rot_mats, rest_joints, parents, posedirs, weights):
    """The correctives added after skinning (in the posed frame) instead of to the rest-pose mesh."""
    posed, G = forward_kinematics(rot_mats, rest_joints, parents)
    return _blend(v_shaped, weights, rest_joints, posed, G) + _pose_correctives(rot_mats, posedirs)


SOLUTIONS = {"forward_kinematics": forward_kinematics, "posed_vertices": posed_vertices}
WRONG = {"forward_kinematics": _wrong_forward_kinematics, "posed_vertices": _wrong_posed_vertices}
