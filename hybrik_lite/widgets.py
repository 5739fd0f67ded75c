"""Interactive explorers: thin ipywidgets layers over plain figure functions.

The figure functions (``*_figure``) take plain values and return a plotly Figure; the
tests call them directly. The explorers only wire sliders to them with
``ipywidgets.interactive`` (no FigureWidget: it is unreliable on Colab).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from . import skeleton, viz
from .kinematics import rodrigues

__all__ = ["POSE_SLIDERS", "pose_from_sliders", "pose_shape_figure", "pose_shape_explorer"]

#: Slider name -> (joint index, rotation axis in the joint's frame). Angles in degrees.
POSE_SLIDERS: dict[str, tuple[int, tuple[float, float, float]]] = {
    "left_shoulder_raise": (16, (0.0, 0.0, 1.0)),
    "right_shoulder_raise": (17, (0.0, 0.0, -1.0)),
    "left_elbow_bend": (18, (0.0, 1.0, 0.0)),
    "right_elbow_bend": (19, (0.0, -1.0, 0.0)),
    "left_hip_flex": (1, (-1.0, 0.0, 0.0)),
    "right_knee_bend": (5, (1.0, 0.0, 0.0)),
    "spine_bend": (3, (1.0, 0.0, 0.0)),
    "head_turn": (15, (0.0, 1.0, 0.0)),
}


def pose_from_sliders(angles_deg: Mapping[str, float], dtype=torch.float32, device=None) -> torch.Tensor:
    """Axis-angle pose ``(1, 24, 3)`` from slider values in degrees (unknown names raise)."""
    pose = torch.zeros(1, 24, 3, dtype=dtype, device=device)
    for name, angle in angles_deg.items():
        if name not in POSE_SLIDERS:
            raise ValueError(f"unknown slider {name!r}; expected one of {list(POSE_SLIDERS)}")
        joint, axis = POSE_SLIDERS[name]
        pose[0, joint] += torch.tensor(axis, dtype=dtype, device=device) * math.radians(angle)
    return pose


def pose_shape_figure(bm, angles_deg: Mapping[str, float], betas: Sequence[float] = (),
                      *, show_skeleton: bool = True, title: str | None = None):
    """The posed, shaped mesh of body model ``bm`` as a plotly Figure.

    ``betas`` lists the first shape coefficients (the rest are zero).
    """
    dtype, device = bm.v_template.dtype, bm.v_template.device
    shape = torch.zeros(1, bm.num_betas, dtype=dtype, device=device)
    if len(betas) > bm.num_betas:
        raise ValueError(f"at most {bm.num_betas} betas, got {len(betas)}")
    shape[0, : len(betas)] = torch.tensor(list(betas), dtype=dtype, device=device)
    with torch.no_grad():
        out = bm(shape, rodrigues(pose_from_sliders(angles_deg, dtype, device)))
    return viz.mesh_figure(out.vertices[0], bm.faces, out.joints[0] if show_skeleton else None,
                           skeleton.PARENTS, title=title)


def pose_shape_explorer(bm, num_betas: int = 2):
    """Sliders for a few joints and the first ``num_betas`` betas, redrawing the mesh."""
    import ipywidgets as widgets
    from IPython.display import display

    angle_sliders = {name: widgets.FloatSlider(value=0.0, min=-90, max=90, step=5, description=name,
                                               continuous_update=False, style={"description_width": "140px"})
                     for name in POSE_SLIDERS}
    beta_sliders = {f"beta{i}": widgets.FloatSlider(value=0.0, min=-3, max=3, step=0.25, description=f"beta {i}",
                                                    continuous_update=False)
                    for i in range(num_betas)}

    def draw(**values):
        angles = {k: v for k, v in values.items() if k in POSE_SLIDERS}
        betas = [values[f"beta{i}"] for i in range(num_betas)]
        display(pose_shape_figure(bm, angles, betas))

    return widgets.interactive(draw, **angle_sliders, **beta_sliders)
