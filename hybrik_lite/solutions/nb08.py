"""Answers to notebook 08's exercises (written independently of the module they are checked against)."""
from __future__ import annotations

import torch


def twist_angle(axis, cue, observed):
    """(B, 3) unit axis, cue and observed directions -> (B,) signed angle about the axis from cue to
    observed, right-handed, after dropping both vectors' components along the axis."""
    c = cue - (cue * axis).sum(-1, keepdim=True) * axis
    o = observed - (observed * axis).sum(-1, keepdim=True) * axis
    return torch.atan2((axis * torch.linalg.cross(c, o, dim=-1)).sum(-1), (c * o).sum(-1))


def hinge_axis(top, middle, bottom):
    """(B, 3) x 3 points of a limb (hip, knee, ankle) -> (B, 3) unit(upper bone) x unit(lower bone)."""
    upper, lower = middle - top, bottom - middle
    return torch.linalg.cross(upper / upper.norm(dim=-1, keepdim=True), lower / lower.norm(dim=-1, keepdim=True),
                              dim=-1)


def _wrong_twist_angle(axis, cue, observed):
    """The angle between the raw vectors: unsigned, and the components along the axis left in."""
    return torch.atan2(torch.linalg.cross(cue, observed, dim=-1).norm(dim=-1), (cue * observed).sum(-1))


def _wrong_hinge_axis(top, middle, bottom):
    """The cross product the other way round (lower x upper): the hinge flips and the thigh turns by 180 degrees."""
    upper, lower = middle - top, bottom - middle
    return torch.linalg.cross(lower / lower.norm(dim=-1, keepdim=True), upper / upper.norm(dim=-1, keepdim=True),
                              dim=-1)


SOLUTIONS = {"twist_angle": twist_angle, "hinge_axis": hinge_axis}
WRONG = {"twist_angle": _wrong_twist_angle, "hinge_axis": _wrong_hinge_axis}
