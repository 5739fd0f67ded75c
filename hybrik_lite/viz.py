"""Figures: matplotlib for static plots, plotly for 3D meshes you can turn.

Every function takes plain tensors or arrays and returns (or draws into) a figure,
so notebooks, widgets and tests all call the same code.
"""
from __future__ import annotations

import numpy as np
import torch

from . import skeleton

__all__ = ["to_numpy", "view_coordinates", "plot_skeleton", "mesh_figure", "add_skeleton", "add_points", "bone_colors"]

_SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "mid": "#2ca02c"}


def to_numpy(x) -> np.ndarray:
    """A detached float64 CPU copy of a tensor (or an array as is)."""
    if torch.is_tensor(x):
        return x.detach().cpu().double().numpy()
    return np.asarray(x)


def bone_colors(parents=skeleton.PARENTS, names=skeleton.JOINT_NAMES) -> list[str]:
    """One colour per joint's bone (to its parent): blue = left, red = right, green = midline."""
    colors = []
    for name in names[: len(parents)]:
        side = "left" if name.startswith("left") else "right" if name.startswith("right") else "mid"
        colors.append(_SIDE_COLORS[side])
    return colors


def view_coordinates(points: np.ndarray, view: str) -> np.ndarray:
    """Map body coordinates (Y up, facing +Z) to matplotlib 3D axes (z up), seen from ``view``."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    if view == "front":   # looking at the person's front: their left is on our right
        return np.stack([x, -z, y], -1)
    if view == "side":
        return np.stack([z, x, y], -1)
    raise ValueError(f"view must be 'front' or 'side', got {view!r}")


def plot_skeleton(ax, joints, parents=skeleton.PARENTS, *, view: str = "front", color=None,
                  label: str | None = None, joint_size: float = 12, alpha: float = 1.0, linestyle="-"):
    """Draw a skeleton ``(J, 3)`` into a matplotlib 3D axis (``projection='3d'``).

    Bones are coloured by side (blue left, red right, green midline) unless ``color`` is given.
    """
    pts = view_coordinates(to_numpy(joints), view)
    colors = bone_colors(parents)
    for j, p in enumerate(parents):
        if p < 0:
            continue
        seg = pts[[p, j]]
        ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=color or colors[j], alpha=alpha, linestyle=linestyle,
                label=label if (label and j == 1) else None)
    ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=joint_size, color=color or "k", alpha=alpha, depthshade=False)
    _equal_axes(ax, pts)
    return ax


def _equal_axes(ax, pts: np.ndarray) -> None:
    centre = (pts.max(0) + pts.min(0)) / 2
    radius = max((pts.max(0) - pts.min(0)).max() / 2, 1e-3) * 1.1
    ax.set_xlim(centre[0] - radius, centre[0] + radius)
    ax.set_ylim(centre[1] - radius, centre[1] + radius)
    ax.set_zlim(centre[2] - radius, centre[2] + radius)
    ax.set_box_aspect((1, 1, 1))


def mesh_figure(vertices, faces, joints=None, parents=skeleton.PARENTS, *, title: str | None = None,
                color: str = "#c9b8a8", opacity: float = 1.0, height: int = 500):
    """A plotly figure of a mesh ``(V, 3)``/``(F, 3)``, with an optional skeleton ``(J, 3)`` on top.

    The scene shows body coordinates as they are: Y up, the person facing +Z (towards you).
    """
    import plotly.graph_objects as go

    v, f = to_numpy(vertices), to_numpy(faces).astype(np.int64)
    fig = go.Figure()
    fig.add_trace(go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], color=color,
                            opacity=opacity, flatshading=True, name="mesh",
                            lighting=dict(ambient=0.45, diffuse=0.8, specular=0.1),
                            lightposition=dict(x=0, y=2, z=4)))
    if joints is not None:
        add_skeleton(fig, joints, parents)
    fig.update_layout(
        title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0), showlegend=False,
        scene=dict(aspectmode="data", xaxis_title="x", yaxis_title="y (up)", zaxis_title="z (front)",
                   camera=dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.3, y=0.3, z=2.0))))
    return fig


def add_skeleton(fig, joints, parents=skeleton.PARENTS, *, name: str = "skeleton", color=None, width: int = 6):
    """Add bones as one line trace per side (plotly), joints as markers."""
    import plotly.graph_objects as go

    j = to_numpy(joints)
    colors = bone_colors(parents)
    by_color: dict[str, list] = {}
    for child, parent in enumerate(parents):
        if parent >= 0:
            by_color.setdefault(color or colors[child], []).extend([j[parent], j[child], [None] * 3])
    for c, pts in by_color.items():
        pts = np.array(pts, dtype=float)
        fig.add_trace(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="lines",
                                   line=dict(color=c, width=width), name=name, hoverinfo="skip"))
    fig.add_trace(go.Scatter3d(x=j[:, 0], y=j[:, 1], z=j[:, 2], mode="markers", marker=dict(size=3, color="black"),
                               name=name + " joints",
                               text=[skeleton.JOINT_NAMES[i] if i < 29 else str(i) for i in range(len(j))]))
    return fig


def add_points(fig, points, *, name: str, color: str = "orange", size: int = 5, text=None):
    """Add labelled 3D points ``(N, 3)`` to a plotly figure."""
    import plotly.graph_objects as go

    p = to_numpy(points)
    fig.add_trace(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], mode="markers", name=name, text=text,
                               marker=dict(size=size, color=color)))
    return fig
