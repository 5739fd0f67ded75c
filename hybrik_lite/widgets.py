"""Interactive explorers: thin ipywidgets layers over plain figure functions.

The figure functions (``*_figure``) take plain values and return a plotly Figure; the
tests call them directly. The explorers only wire sliders to them with
``ipywidgets.interactive`` (no FigureWidget: it is unreliable on Colab). Use the
low-resolution body model (``body_model.load(resolution="low")``) so that a slider
redraw stays well under a second.

- notebook 01: pose and shape (:func:`pose_shape_figure`, :func:`pose_shape_explorer`);
- notebook 02: swing and twist of one joint (:func:`twist_swing_figure`, :func:`twist_swing_explorer`);
- notebook 03: the IK following moved targets (:func:`ik_figure`, :func:`ik_explorer_figure`, :func:`ik_explorer`);
- notebook 07: trained models' predictions, sample by sample (:func:`browse_order`,
  :func:`prediction_browser` over :func:`hybrik_lite.viz.prediction_figure`).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from . import ik, skeleton, twist_swing, viz
from .kinematics import forward_kinematics, rodrigues

__all__ = ["POSE_SLIDERS", "pose_from_sliders", "pose_shape_figure", "pose_shape_explorer",
           "DEMO_POSE", "demo_pose", "joint_rotation", "twist_swing_figure", "move_target",
           "ik_figure", "ik_explorer_figure", "twist_swing_explorer", "ik_explorer", "browse_orders",
           "browse_order", "prediction_browser"]


def _betas(bm, betas=None) -> torch.Tensor:
    """Shape ``(1, num_betas)`` on ``bm``'s device and dtype: the given first few betas, the rest zero."""
    out = torch.zeros(1, bm.num_betas, dtype=bm.v_template.dtype, device=bm.v_template.device)
    if betas is not None:
        betas = torch.as_tensor(betas, dtype=out.dtype, device=out.device).flatten()
        if betas.numel() > bm.num_betas:
            raise ValueError(f"at most {bm.num_betas} betas, got {betas.numel()}")
        out[0, : betas.numel()] = betas
    return out

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
    shape = _betas(bm, list(betas))
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


# --- notebooks 02 and 03: twist and swing, and the IK ----------------------------------------

#: A relaxed pose (axis-angle, radians) with bent elbows and knees, so that twists are visible.
DEMO_POSE: dict[int, tuple[float, float, float]] = {
    1: (-0.3, 0.0, 0.1), 2: (0.2, 0.0, -0.1), 4: (0.6, 0.0, 0.0), 5: (0.3, 0.0, 0.0),
    16: (0.0, 0.0, -0.9), 17: (0.0, 0.0, 0.9), 18: (0.0, -1.2, 0.0), 19: (0.0, 1.0, 0.0),
    15: (0.1, 0.3, 0.0),
}


def demo_pose(dtype=torch.float32, device=None) -> torch.Tensor:
    """:data:`DEMO_POSE` as local rotation matrices ``(1, 24, 3, 3)``."""
    pose = torch.zeros(1, 24, 3, dtype=dtype, device=device)
    for joint, aa in DEMO_POSE.items():
        pose[0, joint] = torch.tensor(aa, dtype=dtype, device=device)
    return rodrigues(pose)


def joint_rotation(bone: torch.Tensor, swing_deg: float, swing_direction_deg: float,
                   twist_deg: float) -> torch.Tensor:
    """A rotation built from swing and twist about one bone ``(3,)`` -> ``(3, 3)``.

    The swing turns by ``swing_deg`` about an axis perpendicular to the bone: the axis
    :func:`~hybrik_lite.twist_swing.perpendicular` ``(bone)`` turned by ``swing_direction_deg``
    about the bone. The twist turns by ``twist_deg`` about the bone, and acts first:
    ``R = swing @ twist``.
    """
    unit = twist_swing.unit_vectors(bone)[0]
    axis = rodrigues(unit * math.radians(swing_direction_deg)) @ twist_swing.perpendicular(bone)
    swing = rodrigues(axis * math.radians(swing_deg))
    twist = torch.tensor(math.radians(twist_deg), dtype=bone.dtype, device=bone.device)
    return twist_swing.compose(swing, twist, bone)


def _line(fig, start, end, *, name, color, dash="solid", width=8):
    import plotly.graph_objects as go

    pts = viz.to_numpy(torch.stack([start, end]))
    fig.add_trace(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="lines", name=name,
                               line=dict(color=color, width=width, dash=dash)))


def twist_swing_figure(bm, joint: int = 16, swing_deg: float = 0.0, swing_direction_deg: float = 0.0,
                       twist_deg: float = 0.0, *, base_pose: torch.Tensor | None = None, betas=None,
                       title: str | None = None):
    """The body mesh with one joint's rotation set from swing and twist (plotly Figure).

    Args:
        bm: a body model (the low-resolution one keeps redraws fast).
        joint: the joint to rotate (1..23); its bone runs to ``skeleton.BONE_CHILD[joint]``.
        swing_deg, swing_direction_deg, twist_deg: see :func:`joint_rotation`.
        base_pose: ``(1, 24, 3, 3)`` pose of the other joints (default :func:`demo_pose`); the
            chosen joint's rotation is replaced.
        betas: optional shape coefficients (the first few).

    Traces: ``mesh`` (Mesh3d), the skeleton (lines and joint markers), ``rest bone`` (where the
    bone would point with the identity rotation, dashed) and ``bone`` (where it points now).
    """
    if not 1 <= joint <= 23:
        raise ValueError(f"joint must be between 1 and 23 (a joint with a twist), got {joint}")
    dtype, device = bm.v_template.dtype, bm.v_template.device
    shape = _betas(bm, betas)
    pose = (demo_pose(dtype, device) if base_pose is None else base_pose.to(dtype)).clone()
    with torch.no_grad():
        rest = bm.rest_joints(shape)
        bone = rest[0, skeleton.BONE_CHILD[joint]] - rest[0, joint]
        pose[0, joint] = joint_rotation(bone, swing_deg, swing_direction_deg, twist_deg)
        out = bm(shape, pose)
        _, transforms = forward_kinematics(pose, rest, skeleton.PARENTS)
    parent_rot = transforms[0, skeleton.PARENTS[joint], :3, :3]
    origin = out.joints[0, joint]
    fig = viz.mesh_figure(out.vertices[0], bm.faces, out.joints[0], skeleton.PARENTS, opacity=0.6,
                          title=title or f"{skeleton.JOINT_NAMES[joint]}: swing {swing_deg:.0f} deg "
                                         f"(direction {swing_direction_deg:.0f}), twist {twist_deg:.0f} deg")
    _line(fig, origin, origin + 1.3 * parent_rot @ bone, name="rest bone", color="gray", dash="dash")
    _line(fig, origin, origin + 1.3 * (out.joints[0, skeleton.BONE_CHILD[joint]] - origin), name="bone",
          color="orange")
    return fig


def move_target(joints: torch.Tensor, joint: int, offset) -> torch.Tensor:
    """Move one target joint and everything below it in the tree by ``offset`` (metres).

    ``joints (B, 29, 3)`` -> a new ``(B, 29, 3)``; the subtree moves rigidly so that, e.g.,
    the hand follows a moved wrist.
    """
    subtree = {joint}
    for j, p in enumerate(skeleton.PARENTS):
        if p in subtree:
            subtree.add(j)
    moved = joints.clone()
    idx = sorted(subtree)
    moved[:, idx] = joints[:, idx] + torch.as_tensor(offset, dtype=joints.dtype, device=joints.device)
    return moved


def ik_figure(bm, targets: torch.Tensor, phi: torch.Tensor, *, betas=None, mode: str = "adaptive",
              title: str | None = None):
    """Solve the IK for one body and draw the result (plotly Figure).

    ``targets (29, 3)`` or ``(1, 29, 3)``, ``phi (23, 2)`` or ``(1, 23, 2)``. Traces: ``mesh``, the
    solved skeleton, and ``targets`` (markers). The mesh is drawn where the targets are (the
    solver works root-relative; the root translation is added back).
    """
    dtype = bm.v_template.dtype
    shape = _betas(bm, betas)
    targets = targets.reshape(1, 29, 3).to(dtype)
    with torch.no_grad():
        rest = bm.rest_joints(shape)
        rot = ik.solve(targets, phi.reshape(1, 23, 2).to(dtype), rest, mode=mode)
        out = bm(shape, rot, transl=targets[:, 0] - rest[:, 0])
    error = (out.joints - targets).norm(dim=-1).mean().item() * 1000
    fig = viz.mesh_figure(out.vertices[0], bm.faces, out.joints[0], skeleton.PARENTS, opacity=0.6,
                          title=title or f"IK ({mode}): mean joint error {error:.1f} mm")
    viz.add_points(fig, targets[0], name="targets", color="orange", size=4,
                   text=list(skeleton.JOINT_NAMES))
    return fig


def ik_explorer_figure(bm, joint: int = 20, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0,
                       twist_joint: int = 18, twist_deg: float = 0.0, *, mode: str = "adaptive",
                       base_pose: torch.Tensor | None = None, betas=None):
    """Start from a pose, move one target joint (with its subtree) by ``(dx, dy, dz)`` metres and
    add ``twist_deg`` to one joint's twist, then solve and draw (plotly Figure, see :func:`ik_figure`)."""
    dtype, device = bm.v_template.dtype, bm.v_template.device
    shape = _betas(bm, betas)
    pose = demo_pose(dtype, device) if base_pose is None else base_pose.to(dtype)
    with torch.no_grad():
        out = bm(shape, pose)
        phi = ik.twist_from_pose(pose, out.rest_joints)
    targets = move_target(out.joints, joint, (dx, dy, dz))
    angle = torch.atan2(phi[0, twist_joint - 1, 1], phi[0, twist_joint - 1, 0]) + math.radians(twist_deg)
    phi = phi.clone()
    phi[0, twist_joint - 1] = torch.stack([torch.cos(angle), torch.sin(angle)])
    return ik_figure(bm, targets[0], phi[0], betas=betas, mode=mode,
                     title=f"move {skeleton.JOINT_NAMES[joint]} by ({dx:+.2f}, {dy:+.2f}, {dz:+.2f}) m, "
                           f"twist {skeleton.JOINT_NAMES[twist_joint]} {twist_deg:+.0f} deg ({mode})")


def _joint_options(joints):
    return [(f"{j} {skeleton.JOINT_NAMES[j]}", j) for j in joints]


def twist_swing_explorer(bm):
    """Sliders: the joint, swing angle, swing direction, twist angle; redraws :func:`twist_swing_figure`."""
    import ipywidgets as widgets
    from IPython.display import display

    def slider(description, low, high, value=0.0):
        return widgets.FloatSlider(value=value, min=low, max=high, step=5, description=description,
                                   continuous_update=False, style={"description_width": "120px"})

    def draw(joint, swing_deg, swing_direction_deg, twist_deg):
        display(twist_swing_figure(bm, joint, swing_deg, swing_direction_deg, twist_deg))

    return widgets.interactive(
        draw, joint=widgets.Dropdown(options=_joint_options(range(1, 24)), value=16, description="joint"),
        swing_deg=slider("swing (deg)", 0, 180), swing_direction_deg=slider("swing direction", -180, 180),
        twist_deg=slider("twist (deg)", -180, 180))


def ik_explorer(bm):
    """Sliders: a target joint and its offset, a joint's extra twist, the IK mode; redraws
    :func:`ik_explorer_figure`."""
    import ipywidgets as widgets
    from IPython.display import display

    def offset(description):
        return widgets.FloatSlider(value=0.0, min=-0.3, max=0.3, step=0.02, description=description,
                                   continuous_update=False)

    def draw(joint, dx, dy, dz, twist_joint, twist_deg, mode):
        display(ik_explorer_figure(bm, joint, dx, dy, dz, twist_joint, twist_deg, mode=mode))

    return widgets.interactive(
        draw, joint=widgets.Dropdown(options=_joint_options(range(1, 29)), value=20, description="move"),
        dx=offset("dx (m)"), dy=offset("dy (m)"), dz=offset("dz (m)"),
        twist_joint=widgets.Dropdown(options=_joint_options(range(1, 24)), value=18, description="twist"),
        twist_deg=widgets.FloatSlider(value=0.0, min=-180, max=180, step=10, description="twist (deg)",
                                      continuous_update=False),
        mode=widgets.ToggleButtons(options=list(ik.MODES), value="adaptive", description="mode"))


# --- notebook 07: predictions of trained models -----------------------------------------------

def browse_orders(names) -> list[str]:
    """The orders :func:`browse_order` knows for models ``names``."""
    names = list(names)
    return ["index"] + [f"worst {k}" for k in names] + [f"{x} beats {y}" for x in names for y in names if x != y]


def browse_order(errors: Mapping[str, Mapping[str, torch.Tensor]], order: str, metric: str = "MPJPE") -> list[int]:
    """Sample indices in the order a browser shows them: ``"index"``, or ``"worst <name>"`` (that
    model's ``metric`` descending), or ``"<a> beats <b>"`` (``b``'s error minus ``a``'s, descending).
    ``errors``: ``name -> {metric: (N,) tensor}``."""
    names = list(errors)
    n = len(next(iter(errors[names[0]].values())))
    if order == "index":
        return list(range(n))
    if order.startswith("worst ") and order[6:] in errors:
        return torch.argsort(torch.as_tensor(errors[order[6:]][metric]), descending=True).tolist()
    a, _, b = order.partition(" beats ")
    if a in errors and b in errors:
        gap = torch.as_tensor(errors[b][metric]) - torch.as_tensor(errors[a][metric])
        return torch.argsort(gap, descending=True).tolist()
    raise ValueError(f"unknown order {order!r}; expected one of {browse_orders(names)}")


def prediction_browser(images, truth_joints_2d, predictions, faces, K):
    """A slider over the samples and a menu for their order, over :func:`viz.prediction_figure`.

    ``images`` ``(N, 3, S, S)``; ``truth_joints_2d`` ``(N, J, 2)``; ``predictions``: ``name ->
    {"vertices_cam": (N, V, 3), "joints_2d": (N, J, 2), "errors": {metric: (N,) mm}}`` (the orders
    use ``"MPJPE"``). The slider moves through the chosen order (``"worst <name>"`` starts at that
    model's worst sample). The figure is a PNG in an ``ipywidgets.Image`` that each move replaces
    in place (our rasteriser and matplotlib; no WebGL, nothing re-created). Returns
    ``VBox([HBox([menu, slider]), caption, image])``.
    """
    import ipywidgets as widgets

    errors = {name: p["errors"] for name, p in predictions.items()}
    menu = widgets.Dropdown(options=browse_orders(predictions), value="index", description="order")
    slider = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="sample", continuous_update=False,
                               layout=widgets.Layout(width="500px"))
    caption = widgets.HTML()
    picture = widgets.Image(format="png")

    def redraw(_change=None):
        i = browse_order(errors, menu.value)[slider.value]
        sample = {name: {"vertices_cam": p["vertices_cam"][i], "joints_2d": p["joints_2d"][i],
                         "errors": {k: float(v[i]) for k, v in p["errors"].items()}} for name, p in predictions.items()}
        fig = viz.prediction_figure(images[i], truth_joints_2d[i], sample, faces, K,
                                    title=f"sample {i}; errors in mm")
        picture.value = viz.figure_png(fig)
        caption.value = f"sample <b>{i}</b>: #{slider.value + 1} of {len(images)} in the order <i>{menu.value}</i>"

    menu.observe(redraw, names="value")
    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([menu, slider]), caption, picture])
