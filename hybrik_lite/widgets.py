"""Interactive explorers: thin ipywidgets layers over plain figure functions.

The figure functions (``*_figure``) take plain values and return a plotly Figure; the
tests call them directly. The numbers an explorer prints beside the figure (a readout)
travel with the figure in ``fig.layout.meta``. The explorers wire controls to a figure
function and show the result in one :class:`FigureView`, updated in place:

- ``view="plotly"`` (the default in Jupyter): one ``plotly.graph_objects.FigureWidget``
  whose traces are updated in place (``batch_update``). The browser keeps one WebGL
  context and the camera the learner chose (``uirevision``), and a redraw sends only the
  coordinates that changed. (plotly >= 6 builds ``FigureWidget`` on ``anywidget``.)
- ``view="image"`` (the default on Colab, where ``FigureWidget`` has been unreliable, or
  without ``anywidget``): our own rasteriser (:mod:`hybrik_lite.render`) draws the same
  figure into an ``ipywidgets.Image``; two sliders turn the camera. No WebGL at all.
  ``HYBRIK_LITE_VIEW=plotly|image`` overrides the default.

Sliders react on release (``continuous_update=False``). Use the low-resolution body model
(``body_model.load(resolution="low")``) so that a redraw stays well under a second.

- notebook 01: pose and shape (:func:`pose_shape_figure`, :func:`pose_shape_explorer`);
- notebook 02: swing and twist of one joint, the child compensating or not, with the joints'
  displacement (:func:`twist_swing_figure`, :func:`twist_swing_explorer`);
- notebook 03: the IK following moved targets, with per-joint errors of both IK modes
  (:func:`ik_figure`, :func:`ik_explorer_figure`, :func:`ik_explorer`);
- notebook 07: trained models' predictions, sample by sample (:func:`browse_order`,
  :func:`prediction_browser` over :func:`hybrik_lite.viz.prediction_figure`).
"""
from __future__ import annotations

import logging
import math
import os
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from . import ik, skeleton, twist_swing, viz
from .kinematics import forward_kinematics, rodrigues

log = logging.getLogger(__name__)

__all__ = ["POSE_SLIDERS", "pose_from_sliders", "pose_shape_figure", "pose_shape_explorer", "pose_shape_ranges",
           "DEMO_POSE", "demo_pose", "joint_rotation", "twist_swing_figure", "twist_readout", "move_target",
           "ik_figure", "ik_explorer_figure", "ik_readout", "twist_swing_ranges", "twist_swing_explorer", "ik_explorer",
           "VIEWS", "default_view", "FigureView", "Explorer", "figure_to_png", "reach_ranges",
           "browse_orders", "browse_order", "prediction_browser"]


def _betas(bm, betas=None) -> torch.Tensor:
    """Shape ``(1, num_betas)`` on ``bm``'s device and dtype: the given first few betas, the rest zero."""
    out = torch.zeros(1, bm.num_betas, dtype=bm.v_template.dtype, device=bm.v_template.device)
    if betas is not None:
        betas = torch.as_tensor(betas, dtype=out.dtype, device=out.device).flatten()
        if betas.numel() > bm.num_betas:
            raise ValueError(f"at most {bm.num_betas} betas, got {betas.numel()}")
        out[0, : betas.numel()] = betas
    return out

# --- one figure on screen, updated in place --------------------------------------------------

#: The ways a :class:`FigureView` can show a figure (see the module docstring).
VIEWS = ("plotly", "image")


def default_view() -> str:
    """``HYBRIK_LITE_VIEW`` when set; else ``"image"`` on Colab or without ``anywidget``; else ``"plotly"``."""
    from . import tutorial

    chosen = os.environ.get("HYBRIK_LITE_VIEW", "")
    if chosen:
        if chosen not in VIEWS:
            raise ValueError(f"HYBRIK_LITE_VIEW must be one of {VIEWS}, got {chosen!r}")
        return chosen
    if tutorial.on_colab():
        return "image"
    try:
        import anywidget  # noqa: F401  (plotly's FigureWidget is an anywidget)
    except ImportError:
        log.info("anywidget is not installed: the explorers draw images (pip install anywidget for 3D)")
        return "image"
    return "plotly"


def _camera_frame(azimuth_deg: float, elevation_deg: float) -> torch.Tensor:
    """World (body frame: Y up, facing +Z) -> OpenCV camera axes ``(3, 3)``, rows right, down, forward,
    for a camera that looks at the body from ``azimuth_deg`` (0 = the front, +90 = the body's left
    side) and ``elevation_deg`` above the horizon."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    towards_camera = torch.tensor([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)],
                                  dtype=torch.float64)
    forward = -towards_camera
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), dim=0)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right, dim=0)
    return torch.stack([right, down, forward])


def _trace_points(trace) -> np.ndarray:
    """A 3D trace's points ``(N, 3)``, NaN where plotly has a gap (NaN or None)."""
    return np.array([trace.x, trace.y, trace.z], dtype=float).T


def _scene_ranges(fig, points: list[np.ndarray]) -> np.ndarray:
    """The figure's fixed axis ranges ``(3, 2)``, or the bounds of ``points`` when it has none."""
    scene = fig.layout.scene
    fixed = [getattr(scene, f"{axis}axis").range for axis in "xyz"]
    if all(r is not None for r in fixed):
        return np.array(fixed, dtype=float)
    allpts = np.concatenate([p[np.isfinite(p).all(1)] for p in points]) if points else np.zeros((1, 3))
    return np.stack([allpts.min(0), allpts.max(0)], 1)


def figure_to_png(fig, *, azimuth_deg: float = 15.0, elevation_deg: float = 10.0, size: int = 480) -> bytes:
    """Draw a 3D plotly figure of :func:`viz.mesh_figure`'s kind with our own rasteriser, as PNG bytes.

    What it draws: every ``mesh3d`` trace (smooth-shaded, in its colour, opaque), then every
    ``scatter3d`` trace's lines and markers on top (so the skeleton shows through the body, as with
    the see-through mesh of the 3D view), and the title. The camera looks at the centre of the
    figure's axis ranges from ``azimuth_deg`` (0 = the body's front) and ``elevation_deg``, far
    enough that the box's largest side fits. No WebGL: this is the explorers' view on Colab.
    """
    import io

    from PIL import Image, ImageDraw

    from . import render

    meshes = [t for t in fig.data if t.type == "mesh3d"]
    scatters = [t for t in fig.data if t.type == "scatter3d"]
    points = {id(t): _trace_points(t) for t in meshes + scatters}
    ranges = _scene_ranges(fig, list(points.values()))
    centre = ranges.mean(1)
    radius = 0.55 * float((ranges[:, 1] - ranges[:, 0]).max())       # the box's largest side fits
    half_fov = math.radians(20.0)
    focal = 0.5 * size / math.tan(half_fov)
    frame = _camera_frame(azimuth_deg, elevation_deg)
    eye = torch.from_numpy(centre) - (radius / math.sin(half_fov)) * frame[2]
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def to_camera(pts: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(pts) - eye) @ frame.T

    background = np.full((size, size, 3), 255, np.uint8)
    for trace in meshes:
        verts = to_camera(points[id(trace)])[None]
        faces = torch.from_numpy(np.stack([np.asarray(trace.i), np.asarray(trace.j), np.asarray(trace.k)], 1)
                                 .astype(np.int64))
        rgb = torch.tensor([int(trace.color.lstrip("#")[k:k + 2], 16) / 255 for k in (0, 2, 4)], dtype=torch.float64)
        out = render.render(verts, faces, K, (size, size), vertex_colors=rgb.expand(verts.shape[1], 3),
                            light_dir=(0.3, -0.4, -1.0), ambient=0.45, diffuse=0.6, flat=False, cull_backfaces=False,
                            background=torch.from_numpy(background / 255.0).permute(2, 0, 1)[None])
        background = (out.image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    for trace in scatters:
        pts = to_camera(points[id(trace)]).numpy()
        z = pts[:, 2]
        uv = pts[:, :2] / np.where(z > 1e-6, z, np.nan)[:, None] * focal + size / 2
        mode = trace.mode or "lines+markers"
        if "lines" in mode:
            colors = trace.line.color
            colors = [colors or "gray"] * len(uv) if colors is None or isinstance(colors, str) else list(colors)
            width = max(1, int(round((trace.line.width or 2) / 2)))
            for k, (a, b) in enumerate(zip(uv[:-1], uv[1:])):
                if np.isfinite(a).all() and np.isfinite(b).all():
                    draw.line([tuple(a), tuple(b)], fill=colors[k], width=width)
        if "markers" in mode:
            color = trace.marker.color if isinstance(trace.marker.color, str) else "black"
            r = max(1.5, 0.6 * (trace.marker.size or 4))
            for u, v in uv[np.isfinite(uv).all(1)]:
                draw.ellipse([u - r, v - r, u + r, v + r], fill=color)
    title = fig.layout.title.text
    if title:
        draw.text((8, 6), title, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    return buffer.getvalue()


class FigureView:
    """One figure on screen, redrawn in place by :meth:`show` (see the module docstring).

    ``view``: ``"plotly"`` (a ``FigureWidget``) or ``"image"`` (:func:`figure_to_png` into an
    ``ipywidgets.Image``, with azimuth and elevation sliders); None picks :func:`default_view`.
    ``widget`` is what to display; ``figure`` the last figure shown.
    """

    def __init__(self, fig, view: str | None = None, *, width: int = 540):
        import ipywidgets as widgets

        self.view = default_view() if view is None else view
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS} or None, got {view!r}")
        self.figure = fig
        if self.view == "plotly":
            import plotly.graph_objects as go

            self._plotly = go.FigureWidget(fig)
            self._plotly.layout.width = width
            self.widget = self._plotly
            return
        size = int(fig.layout.height or width)                # square: figure_to_png draws square images
        self._image = widgets.Image(format="png", width=size, height=size)
        angle = dict(continuous_update=False, style={"description_width": "90px"},
                     layout=widgets.Layout(width=f"{size // 2 - 4}px"))
        self.azimuth = widgets.FloatSlider(value=15.0, min=-180, max=180, step=15, description="camera turn", **angle)
        self.elevation = widgets.FloatSlider(value=10.0, min=-60, max=80, step=10, description="camera tilt", **angle)
        self.azimuth.observe(lambda _: self._draw_image(), names="value")
        self.elevation.observe(lambda _: self._draw_image(), names="value")
        self.widget = widgets.VBox([self._image, widgets.HBox([self.azimuth, self.elevation])])
        self._draw_image()

    def _draw_image(self) -> None:
        height = int(self._image.height)
        self._image.value = figure_to_png(self.figure, azimuth_deg=self.azimuth.value,
                                          elevation_deg=self.elevation.value, size=height)

    def show(self, fig) -> None:
        """Show ``fig`` (the same traces as the first figure, with new values) in place."""
        self.figure = fig
        if self.view == "image":
            self._draw_image()
            return
        shown = self._plotly
        if [t.type for t in shown.data] != [t.type for t in fig.data]:
            raise ValueError("an explorer's figures must keep their traces; got "
                             f"{[t.type for t in fig.data]} after {[t.type for t in shown.data]}")
        with shown.batch_update():
            for old, new in zip(shown.data, fig.data):
                for key in ("x", "y", "z", "text"):     # a mesh's faces (i, j, k) never change
                    value = new[key]
                    if value is not None and not _same(old[key], value):
                        old[key] = value
            if shown.layout.title.text != fig.layout.title.text:
                shown.layout.title.text = fig.layout.title.text


def _same(a, b) -> bool:
    """Do two trace properties (arrays of numbers, NaN for gaps, or of strings) hold the same values?"""
    if a is None or b is None:
        return a is b
    try:
        return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)
    except (TypeError, ValueError):
        return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))


class Explorer:
    """Controls, a readout and one :class:`FigureView`: what an ``*_explorer`` function returns.

    ``draw(**values) -> fig`` is the plain figure function with the controls' values; every
    change of a control calls it and shows the new figure in place. ``readout(fig) -> html`` (or
    None) fills the HTML beside the figure from the figure's ``layout.meta``. Attributes:
    ``controls`` (name -> widget), ``readout`` (``ipywidgets.HTML``), ``view``, ``widget``;
    display the explorer (or ``explorer.widget``) to see it.
    """

    def __init__(self, controls: Mapping, draw: Callable, readout: Callable | None = None,
                 view: str | None = None):
        import ipywidgets as widgets

        self.controls = dict(controls)
        self._draw, self._readout = draw, readout
        self.readout = widgets.HTML(layout=widgets.Layout(width="470px"))
        fig = draw(**self.values())
        self.view = FigureView(fig, view)
        self._fill_readout(fig)
        for control in self.controls.values():
            control.observe(self.redraw, names="value")
        side = [widgets.VBox(list(self.controls.values())), self.readout]
        self.widget = widgets.HBox([widgets.VBox(side, layout=widgets.Layout(width="480px")), self.view.widget],
                                   layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.widget.add_class("hybrik-explorer")          # for the browser test (tests/test_browser.py)

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    @property
    def figure(self):
        """The figure on screen."""
        return self.view.figure

    def redraw(self, _change=None) -> None:
        fig = self._draw(**self.values())
        self.view.show(fig)
        self._fill_readout(fig)

    def _fill_readout(self, fig) -> None:
        self.readout.value = self._readout(fig) if self._readout else ""

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _slider(description: str, low: float, high: float, step: float, value: float = 0.0):
    """A slider that reports on release, with a long track (470 px, the description 140 px of it)."""
    import ipywidgets as widgets

    return widgets.FloatSlider(value=value, min=low, max=high, step=step, description=description, continuous_update=False,
                               style={"description_width": "140px"}, layout=widgets.Layout(width="470px"))


def _dropdown(description: str, options, value):
    import ipywidgets as widgets

    return widgets.Dropdown(options=options, value=value, description=description,
                            style={"description_width": "140px"}, layout=widgets.Layout(width="470px"))


def reach_ranges(bm, poses: torch.Tensor, betas: torch.Tensor | None = None, *, margin: float = 0.08,
                 reach: float = 0.0) -> tuple:
    """Fixed axis ranges that hold every body an explorer can show: the bounds of ``bm``'s mesh over
    ``poses (B, 24, 3, 3)`` (an explorer's extremes) and shapes ``betas (C, num_betas)`` (default:
    zero), widened by ``reach`` (how far a target may move) and ``margin`` metres.
    Returns ``((x0, x1), (y0, y1), (z0, z1))`` for :func:`viz.mesh_figure`.
    """
    dtype, device = bm.v_template.dtype, bm.v_template.device
    betas = _betas(bm) if betas is None else betas.to(dtype=dtype, device=device)
    lows, highs = [], []
    with torch.no_grad():
        for shape in betas:
            verts = bm(shape.expand(len(poses), -1), poses.to(dtype=dtype, device=device)).vertices
            lows.append(verts.amin((0, 1)))
            highs.append(verts.amax((0, 1)))
    low = torch.stack(lows).amin(0) - reach - margin
    high = torch.stack(highs).amax(0) + reach + margin
    return tuple((round(a, 2), round(b, 2)) for a, b in zip(low.tolist(), high.tolist()))


#: Slider name -> (joint index, rotation axis in the joint's frame). Angles in degrees; a positive
#: angle does what the name says: raises the arm, bends the elbow forwards (in the T-pose the
#: forearm along +-x swings to +z, the front: about -y for the left arm, +y for the right).
POSE_SLIDERS: dict[str, tuple[int, tuple[float, float, float]]] = {
    "left_shoulder_raise": (16, (0.0, 0.0, 1.0)),
    "right_shoulder_raise": (17, (0.0, 0.0, -1.0)),
    "left_elbow_bend": (18, (0.0, -1.0, 0.0)),
    "right_elbow_bend": (19, (0.0, 1.0, 0.0)),
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
                      *, show_skeleton: bool = True, title: str | None = None, ranges=None):
    """The posed, shaped mesh of body model ``bm`` as a plotly Figure.

    ``betas`` lists the first shape coefficients (the rest are zero); ``ranges``: fixed axis
    ranges (see :func:`viz.mesh_figure`; the explorer passes :func:`pose_shape_ranges`).
    """
    dtype, device = bm.v_template.dtype, bm.v_template.device
    shape = _betas(bm, list(betas))
    with torch.no_grad():
        out = bm(shape, rodrigues(pose_from_sliders(angles_deg, dtype, device)))
    return viz.mesh_figure(out.vertices[0], bm.faces, out.joints[0] if show_skeleton else None,
                           skeleton.PARENTS, title=title, ranges=ranges)


def pose_shape_ranges(bm, num_betas: int = 2, angle_limit: float = 90.0, beta_limit: float = 3.0) -> tuple:
    """Axis ranges that hold every body :func:`pose_shape_explorer` can show (up to its limits):
    each slider alone at both ends, all of them at random ends, at the shapes' corners."""
    names = list(POSE_SLIDERS)
    gen = torch.Generator().manual_seed(0)
    settings = [{name: sign * angle_limit} for name in names for sign in (-1, 1)]
    corners = torch.randint(-1, 2, (48, len(names)), generator=gen).tolist()
    settings += [{name: c * angle_limit for name, c in zip(names, row)} for row in corners]
    poses = torch.cat([rodrigues(pose_from_sliders(a)) for a in settings])
    shapes = torch.zeros(1 + 2 * num_betas, bm.num_betas)
    for i in range(num_betas):
        shapes[1 + 2 * i, i], shapes[2 + 2 * i, i] = beta_limit, -beta_limit
    return reach_ranges(bm, poses, shapes)


def pose_shape_explorer(bm, num_betas: int = 2, *, view: str | None = None) -> "Explorer":
    """Sliders for a few joints (:data:`POSE_SLIDERS`) and the first ``num_betas`` betas, over
    :func:`pose_shape_figure`; the figure is redrawn in place (see :class:`Explorer`)."""
    controls = {name: _slider(name, -90, 90, 5) for name in POSE_SLIDERS}
    controls.update({f"beta{i}": _slider(f"beta {i}", -3, 3, 0.25) for i in range(num_betas)})
    ranges = pose_shape_ranges(bm, num_betas)

    def draw(**values):
        angles = {k: v for k, v in values.items() if k in POSE_SLIDERS}
        return pose_shape_figure(bm, angles, [values[f"beta{i}"] for i in range(num_betas)], ranges=ranges,
                                 title=_title(values))

    return Explorer(controls, draw, view=view)


def _title(values: Mapping[str, float]) -> str:
    moved = [f"{name} {value:+g}" for name, value in values.items() if value]
    return ", ".join(moved) if moved else "rest pose, mean shape"


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
                       twist_deg: float = 0.0, *, compensate: bool = False, base_pose: torch.Tensor | None = None,
                       betas=None, title: str | None = None, ranges=None):
    """The body mesh with one joint's rotation set from swing and twist (plotly Figure).

    Args:
        bm: a body model (the low-resolution one keeps redraws fast).
        joint: the joint to rotate (1..23); its bone runs to ``skeleton.BONE_CHILD[joint]``.
        swing_deg, swing_direction_deg, twist_deg: see :func:`joint_rotation`.
        compensate: the bone child undoes the twist ``T`` (notebook 02, section 4): its local
            rotation becomes ``T^T R_child``, so its global rotation is that of the untwisted pose.
            (Nothing to undo when the bone child is a leaf: head, hands, feet.)
        base_pose: ``(1, 24, 3, 3)`` pose of the other joints (default :func:`demo_pose`); the
            chosen joint's rotation is replaced.
        betas: optional shape coefficients (the first few).
        ranges: fixed axis ranges (see :func:`viz.mesh_figure`).

    Traces: ``mesh`` (Mesh3d), the skeleton (lines and joint markers), ``rest bone`` (where the
    bone would point with the identity rotation, dashed) and ``bone`` (where it points now).
    ``layout.meta`` holds what the twist moves, against the same swing with no twist:
    ``joint_shift_mm`` (29 joints) and ``vertex_shift_mm`` (the largest over the mesh), with
    ``joint``, ``bone_child`` and ``compensate`` (:func:`twist_readout` prints them).
    """
    if not 1 <= joint <= 23:
        raise ValueError(f"joint must be between 1 and 23 (a joint with a twist), got {joint}")
    dtype, device = bm.v_template.dtype, bm.v_template.device
    shape = _betas(bm, betas)
    base = demo_pose(dtype, device) if base_pose is None else base_pose.to(dtype=dtype, device=device)
    child = skeleton.BONE_CHILD[joint]
    with torch.no_grad():
        rest = bm.rest_joints(shape)
        bone = rest[0, child] - rest[0, joint]
        poses = base.expand(2, 24, 3, 3).clone()           # [0]: as asked, [1]: the same without the twist
        poses[0, joint] = joint_rotation(bone, swing_deg, swing_direction_deg, twist_deg)
        poses[1, joint] = joint_rotation(bone, swing_deg, swing_direction_deg, 0.0)
        if compensate and child < 24:
            twist = poses[1, joint].transpose(-1, -2) @ poses[0, joint]     # T, about the rest bone
            poses[0, child] = twist.transpose(-1, -2) @ base[0, child]
        out = bm(shape.expand(2, -1), poses)
        _, transforms = forward_kinematics(poses[:1], rest, skeleton.PARENTS)
    joint_shift = (out.joints[0] - out.joints[1]).norm(dim=-1) * 1000
    vertex_shift = (out.vertices[0] - out.vertices[1]).norm(dim=-1).max() * 1000
    parent_rot = transforms[0, skeleton.PARENTS[joint], :3, :3]
    origin = out.joints[0, joint]
    fig = viz.mesh_figure(out.vertices[0], bm.faces, out.joints[0], skeleton.PARENTS, opacity=0.6, ranges=ranges,
                          title=title or f"{skeleton.JOINT_NAMES[joint]}: swing {swing_deg:.0f} deg "
                                         f"(direction {swing_direction_deg:.0f}), twist {twist_deg:.0f} deg")
    _line(fig, origin, origin + 1.3 * parent_rot @ bone, name="rest bone", color="gray", dash="dash")
    _line(fig, origin, origin + 1.3 * (out.joints[0, child] - origin), name="bone", color="orange")
    fig.layout.meta = dict(joint=joint, bone_child=child, compensate=bool(compensate),
                           joint_shift_mm=[round(v, 3) for v in joint_shift.tolist()],
                           vertex_shift_mm=round(vertex_shift.item(), 3))
    return fig


def _subtree(joint: int) -> list[int]:
    """``joint`` and every joint below it in the tree, in index order."""
    below = {joint}
    for j, p in enumerate(skeleton.PARENTS):
        if p in below:
            below.add(j)
    return sorted(below)


def twist_readout(fig) -> str:
    """HTML: what the twist of :func:`twist_swing_figure` moves (from ``fig.layout.meta``)."""
    meta = fig.layout.meta
    names, shift = skeleton.JOINT_NAMES, meta["joint_shift_mm"]
    joint, child = meta["joint"], meta["bone_child"]
    others = [j for j in _subtree(joint) if j not in (joint, child)]
    lines = [f"<b>What the twist moves</b> (against the same swing, no twist):",
             f"bone child <i>{names[child]}</i>: <b>{shift[child]:.1f} mm</b> (the twist turns about its bone)"]
    if others:
        far = max(others, key=lambda j: shift[j])
        lines.append(f"the other {len(others)} joints below <i>{names[joint]}</i>: up to "
                     f"<b>{shift[far]:.1f} mm</b> (<i>{names[far]}</i>)")
    else:
        lines.append(f"no other joint hangs below <i>{names[joint]}</i>")
    lines.append(f"the flesh: up to <b>{meta['vertex_shift_mm']:.1f} mm</b>")
    if child >= 24:
        lines.append("child compensates: nothing to undo, the bone child is a leaf")
    else:
        lines.append("child compensates: <b>on</b>, the child's global rotation is kept" if meta["compensate"]
                     else "child compensates: <b>off</b>, the child turns with the twist")
    return "<br>".join(lines)


def move_target(joints: torch.Tensor, joint: int, offset) -> torch.Tensor:
    """Move one target joint and everything below it in the tree by ``offset`` (metres).

    ``joints (B, 29, 3)`` -> a new ``(B, 29, 3)``; the subtree moves rigidly so that, e.g.,
    the hand follows a moved wrist.
    """
    moved = joints.clone()
    idx = _subtree(joint)
    moved[:, idx] = joints[:, idx] + torch.as_tensor(offset, dtype=joints.dtype, device=joints.device)
    return moved


def ik_figure(bm, targets: torch.Tensor, phi: torch.Tensor, *, betas=None, mode: str = "adaptive",
              title: str | None = None, ranges=None):
    """Solve the IK for one body and draw the result (plotly Figure).

    ``targets (29, 3)`` or ``(1, 29, 3)``, ``phi (23, 2)`` or ``(1, 23, 2)``. Traces: ``mesh``, the
    solved skeleton, ``targets`` (markers) and ``errors`` (a line from each reached joint to its
    target). The mesh is drawn where the targets are (the solver works root-relative; the root
    translation is added back). Both IK modes are solved: ``layout.meta["errors_mm"]`` holds each
    mode's distance from every reached joint to its target ``{mode: 29 numbers}``, and
    ``layout.meta["mode"]`` the mode drawn (:func:`ik_readout` prints them).
    """
    if mode not in ik.MODES:
        raise ValueError(f"mode must be one of {ik.MODES}, got {mode!r}")
    dtype = bm.v_template.dtype
    shape = _betas(bm, betas)
    targets = targets.reshape(1, 29, 3).to(dtype)
    phi = phi.reshape(1, 23, 2).to(dtype)
    with torch.no_grad():                                  # both modes in one batch: [k] is ik.MODES[k]
        rest = bm.rest_joints(shape)
        rots = torch.cat([ik.solve(targets, phi, rest, mode=m) for m in ik.MODES])
        out = bm(shape.expand(len(ik.MODES), -1), rots, transl=(targets[:, 0] - rest[:, 0]).expand(len(ik.MODES), -1))
        missed = (out.joints - targets).norm(dim=-1) * 1000
    errors = {m: [round(v, 3) for v in row] for m, row in zip(ik.MODES, missed.tolist())}
    drawn = ik.MODES.index(mode)
    joints = out.joints[drawn]
    fig = viz.mesh_figure(out.vertices[drawn], bm.faces, joints, skeleton.PARENTS, opacity=0.6, ranges=ranges,
                          title=title or f"IK ({mode}): mean joint error {sum(errors[mode]) / 29:.1f} mm")
    viz.add_points(fig, targets[0], name="targets", color="orange", size=4, text=list(skeleton.JOINT_NAMES))
    gaps = torch.full_like(joints, float("nan"))                  # a gap after each segment, as in viz.add_skeleton
    pts = viz.to_numpy(torch.stack([joints, targets[0], gaps], 1).reshape(-1, 3))
    import plotly.graph_objects as go

    fig.add_trace(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="lines", connectgaps=False, name="errors",
                               line=dict(color="#e377c2", width=5), hoverinfo="skip"))
    fig.layout.meta = dict(mode=mode, errors_mm=errors)
    return fig


def ik_readout(fig, rows: int = 8) -> str:
    """HTML: the joints the IK of :func:`ik_figure` misses most, naive and adaptive side by side, as
    bars (from ``fig.layout.meta``), and the mean over the 29 joints."""
    meta = fig.layout.meta
    errors = meta["errors_mm"]
    peak = [max(errors[m][j] for m in ik.MODES) for j in range(29)]
    worst = [j for j in sorted(range(29), key=lambda j: -peak[j])[:rows] if peak[j] >= 0.05]   # reached: not listed
    scale = max([10.0] + [peak[j] for j in worst])
    colours = {"naive": "#ff7f0e", "adaptive": "#1f77b4"}

    def bar(value, colour):
        width = int(round(110 * value / scale))
        return (f'<span style="display:inline-block;width:{width}px;height:9px;background:{colour}"></span> '
                f"{value:.1f}")

    head = "".join(f"<th style='text-align:left'>{m}{' (drawn)' if m == meta['mode'] else ''}</th>" for m in ik.MODES)
    body = "".join(f"<tr><td>{skeleton.JOINT_NAMES[j]}</td>"
                   + "".join(f"<td>{bar(errors[m][j], colours[m])}</td>" for m in ik.MODES) + "</tr>"
                   for j in worst)
    means = ", ".join(f"{m} <b>{sum(errors[m]) / 29:.1f} mm</b>" for m in ik.MODES)
    if not worst:
        return f"<b>Reached joint to its target</b>: every joint within 0.05 mm in both modes ({', '.join(ik.MODES)})"
    return (f"<b>Reached joint to its target</b>, mm (the {len(worst)} largest; the other joints within 0.05 mm):"
            f"<table style='font-size:12px'><tr><th></th>{head}</tr>{body}</table>mean over the 29 joints: {means}")


def ik_explorer_figure(bm, joint: int = 20, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0,
                       twist_joint: int = 18, twist_deg: float = 0.0, *, stretch: float = 0.0,
                       mode: str = "adaptive", base_pose: torch.Tensor | None = None, betas=None, ranges=None):
    """Start from a pose, move one target joint, then solve and draw (plotly Figure, see :func:`ik_figure`).

    ``stretch``: metres along its bone from its parent, that joint's target alone (a wrong bone
    length, as in notebook 03, section 5); ``(dx, dy, dz)``: metres, with its subtree (the hand
    follows a moved wrist); ``twist_deg`` is added to ``twist_joint``'s twist.
    """
    dtype, device = bm.v_template.dtype, bm.v_template.device
    shape = _betas(bm, betas)
    pose = demo_pose(dtype, device) if base_pose is None else base_pose.to(dtype)
    with torch.no_grad():
        out = bm(shape, pose)
        phi = ik.twist_from_pose(pose, out.rest_joints)
    along = out.joints[0, joint] - out.joints[0, skeleton.PARENTS[joint]]
    targets = move_target(out.joints, joint, torch.tensor([dx, dy, dz], dtype=dtype, device=device))
    targets[0, joint] += stretch * along / along.norm()
    angle = torch.atan2(phi[0, twist_joint - 1, 1], phi[0, twist_joint - 1, 0]) + math.radians(twist_deg)
    phi = phi.clone()
    phi[0, twist_joint - 1] = torch.stack([torch.cos(angle), torch.sin(angle)])
    moved = f"{stretch:+.2f} m along its bone, " if stretch else ""
    twist = f"; {skeleton.JOINT_NAMES[twist_joint]} twist {twist_deg:+.0f} deg" if twist_deg else ""
    return ik_figure(bm, targets[0], phi[0], betas=betas, mode=mode, ranges=ranges,
                     title=f"{mode} IK: {skeleton.JOINT_NAMES[joint]} {moved}({dx:+.2f}, {dy:+.2f}, {dz:+.2f}) m{twist}")


def _joint_options(joints):
    return [(f"{j} {skeleton.JOINT_NAMES[j]}", j) for j in joints]


def twist_swing_ranges(bm, base_pose: torch.Tensor | None = None) -> tuple:
    """Axis ranges that hold every body :func:`twist_swing_explorer` shows: each joint swung by 90 and
    180 degrees in eight directions, and twisted by 180 degrees, from the base pose."""
    base = demo_pose() if base_pose is None else base_pose.float().cpu()
    rest = bm.rest_joints(_betas(bm)).float().cpu()
    settings = [(s, d, 0.0) for s in (90.0, 180.0) for d in range(-180, 180, 45)] + [(0.0, 0.0, 180.0)]
    poses = []
    for joint in range(1, 24):
        bone = rest[0, skeleton.BONE_CHILD[joint]] - rest[0, joint]
        for swing, direction, twist in settings:
            pose = base.clone()
            pose[0, joint] = joint_rotation(bone, swing, direction, twist)
            poses.append(pose)
    return reach_ranges(bm, torch.cat(poses))


def twist_swing_explorer(bm, *, view: str | None = None) -> "Explorer":
    """The joint, swing angle, swing direction, twist angle and "child compensates", over
    :func:`twist_swing_figure`, with :func:`twist_readout` beside it (see :class:`Explorer`)."""
    import ipywidgets as widgets

    ranges = twist_swing_ranges(bm)
    controls = dict(joint=_dropdown("joint", _joint_options(range(1, 24)), 16),
                    swing_deg=_slider("swing (deg)", 0, 180, 5),
                    swing_direction_deg=_slider("swing direction (deg)", -180, 180, 15),
                    twist_deg=_slider("twist (deg)", -180, 180, 5),
                    compensate=widgets.Checkbox(value=False, description="child compensates",
                                                layout=widgets.Layout(width="470px")))

    def draw(**values):
        return twist_swing_figure(bm, **values, ranges=ranges)

    return Explorer(controls, draw, twist_readout, view=view)


def ik_explorer(bm, *, view: str | None = None) -> "Explorer":
    """A target joint and its offset (alone along its bone; with its subtree in x, y, z), a joint's extra twist and the
    IK mode, over :func:`ik_explorer_figure`, with :func:`ik_readout` beside it (see :class:`Explorer`)."""
    import ipywidgets as widgets

    with torch.no_grad():
        ranges = reach_ranges(bm, demo_pose(), reach=0.35)
    controls = dict(joint=_dropdown("move", _joint_options(range(1, 29)), 20),
                    stretch=_slider("along its bone (m)", -0.1, 0.1, 0.01),
                    dx=_slider("dx (m)", -0.3, 0.3, 0.02), dy=_slider("dy (m)", -0.3, 0.3, 0.02),
                    dz=_slider("dz (m)", -0.3, 0.3, 0.02),
                    twist_joint=_dropdown("twist", _joint_options(range(1, 24)), 18),
                    twist_deg=_slider("twist (deg)", -180, 180, 10),
                    mode=widgets.ToggleButtons(options=list(ik.MODES), value="adaptive", description="mode",
                                               style={"description_width": "140px", "button_width": "100px"}))

    def draw(**values):
        return ik_explorer_figure(bm, **values, ranges=ranges)

    return Explorer(controls, draw, ik_readout, view=view)


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
    browser = widgets.VBox([widgets.HBox([menu, slider]), caption, picture])
    browser.add_class("hybrik-explorer")                  # for the browser test (tests/test_browser.py)
    return browser
