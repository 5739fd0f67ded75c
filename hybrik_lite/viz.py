"""Figures: matplotlib for static plots, plotly for 3D meshes you can turn.

Every function takes plain tensors or arrays and returns (or draws into) a figure,
so notebooks, widgets and tests all call the same code.
"""
from __future__ import annotations

import numpy as np
import torch

from . import skeleton

__all__ = ["to_numpy", "view_coordinates", "plot_skeleton", "mesh_figure", "add_skeleton", "add_points", "bone_colors",
           "PIPELINE_STAGES", "PARAMETER_STAGE", "pipeline_figure", "mesh_overlay",
           "draw_skeleton_2d", "prediction_figure", "figure_png",
           "PERSON_COLORS", "render_people", "image_grid", "draw_sample"]

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
                color: str = "#c9b8a8", opacity: float = 1.0, height: int = 500, ranges=None):
    """A plotly figure of a mesh ``(V, 3)``/``(F, 3)``, with an optional skeleton ``(J, 3)`` on top.

    The scene shows body coordinates as they are: Y up, the person facing +Z (towards you).
    The mesh is smooth-shaded (``flatshading=False``: with flat shading, software WebGL draws
    the body as a dark silhouette). ``ranges``: fixed axis ranges ``((x0, x1), (y0, y1), (z0, z1))``
    in metres (an explorer passes them so that the box does not jump as the body moves), or
    None to fit the data. ``layout.uirevision`` is set, so a redraw keeps the learner's camera.
    """
    import plotly.graph_objects as go

    v, f = to_numpy(vertices), to_numpy(faces).astype(np.int64)
    fig = go.Figure()
    fig.add_trace(go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=f[:, 0], j=f[:, 1], k=f[:, 2], color=color,
                            opacity=opacity, flatshading=False, name="mesh",
                            lighting=dict(ambient=0.5, diffuse=0.75, specular=0.05, roughness=0.9),
                            lightposition=dict(x=1, y=2, z=4)))
    if joints is not None:
        add_skeleton(fig, joints, parents)
    axes = {axis: dict(title=label) for axis, label in zip("xyz", ("x", "y (up)", "z (front)"))}
    scene = dict(aspectmode="data", camera=dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.3, y=0.15, z=2.0)))
    if ranges is not None:
        ranges = [tuple(float(end) for end in r) for r in ranges]
        if len(ranges) != 3 or any(len(r) != 2 or not r[0] < r[1] for r in ranges):
            raise ValueError(f"ranges must be ((x0, x1), (y0, y1), (z0, z1)) with x0 < x1 etc., got {ranges}")
        sizes = [r[1] - r[0] for r in ranges]
        scene.update(aspectmode="manual", aspectratio=dict(zip("xyz", (size / max(sizes) for size in sizes))))
        for axis, r in zip("xyz", ranges):
            axes[axis].update(range=list(r), autorange=False)
    scene.update({f"{axis}axis": value for axis, value in axes.items()})
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      showlegend=False, uirevision="keep", scene=scene)
    return fig


def add_skeleton(fig, joints, parents=skeleton.PARENTS, *, name: str = "skeleton", color=None, width: int = 6):
    """Add the bones as one line trace coloured per bone (plotly; blue left, red right, green midline,
    or ``color``), and the joints as markers (trace ``name + " joints"``). One trace for all bones
    keeps a redraw cheap in the browser."""
    import plotly.graph_objects as go

    j = to_numpy(joints)
    colors = bone_colors(parents)
    pts, point_colors = [], []
    for child, parent in enumerate(parents):
        if parent >= 0:
            pts.extend([j[parent], j[child], [np.nan] * 3])
            point_colors.extend([color or colors[child]] * 3)
    pts = np.array(pts, dtype=float)
    fig.add_trace(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="lines", connectgaps=False,
                               line=dict(color=point_colors, width=width), name=name, hoverinfo="skip"))
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


# --- the pipeline figure that the notebooks from 05 on start with -----------------------------
#: The stages in the order the data flows: key -> (title, what comes out, the notebook that explains it).
PIPELINE_STAGES = {
    "image": ("image", "RGB crop\n$3 \\times S \\times S$", "nb 04"),
    "heatmaps": ("3D heatmaps", "logits\n$29 \\times D \\times H \\times W$", "nb 05"),
    "uvd": ("soft-argmax", "$(u, v, d)$ per joint\nin $[-\\frac{1}{2}, \\frac{1}{2}]^3$", "nb 05"),
    "xyz": ("back-projection", "root-relative xyz (m)\n$z_\\mathrm{root} = f\\,/\\,(S s)$", "nb 04, 05"),
    "ik": ("analytical IK", "24 rotations\nfrom xyz, $\\phi$, $\\beta$", "nb 02, 03"),
    "mesh": ("body model", "mesh\n$V \\times 3$", "nb 01"),
}
PARAMETER_STAGE = ("parameter head", "pooled features $\\to$ FC $\\to$ FC $\\to$\n"
                   "$\\beta$ (10), $\\phi$ (23 $\\times$ 2), camera $(s, t_x, t_y)$", "nb 05")
PLAIN_COLOUR, HERE_COLOUR, HERE_EDGE = "#e8eef7", "#ffe28a", "#c0392b"


def pipeline_figure(here=(), ax=None):
    """HybrIK from image to mesh, as boxes and arrows, with the stages in ``here`` marked "you are here".

    ``here``: a key or keys of PIPELINE_STAGES, or "params" (the parameter head). ``ax``: a matplotlib
    axis to draw into (default: a new figure). Returns the figure. Each box is a FancyBboxPatch whose
    gid is its key; the marker is the annotation with gid "you-are-here" (for tests).
    """
    here = {here} if isinstance(here, str) else set(here)
    unknown = here - set(PIPELINE_STAGES) - {"params"}
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; expected keys of {list(PIPELINE_STAGES)} or 'params'")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(14, 4.6))
    step, w, h, y_main, y_par = 2.3, 1.9, 1.15, 2.2, 0.35
    boxes = {}

    def box(key, cx, cy, width, title, detail, where):
        on = key in here
        patch = FancyBboxPatch((cx - width / 2, cy - h / 2), width, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                               facecolor=HERE_COLOUR if on else PLAIN_COLOUR, edgecolor=HERE_EDGE if on else "0.35",
                               lw=2.5 if on else 1.0, gid=key)
        ax.add_patch(patch)
        ax.text(cx, cy + 0.3, title, ha="center", va="center", fontsize=10.5, weight="bold")
        ax.text(cx, cy - 0.14, detail, ha="center", va="center", fontsize=8.5, linespacing=1.3)
        ax.text(cx, cy - h / 2 - 0.14, where, ha="center", va="top", fontsize=7.5, color="0.45")
        boxes[key] = (cx, cy, width)

    for i, (key, (title, detail, where)) in enumerate(PIPELINE_STAGES.items()):
        box(key, i * step, y_main, w, title, detail, where)
    box("params", 1.5 * step, y_par, step + w, *PARAMETER_STAGE)

    def arrow(start, end, label=None, **kw):
        ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.3, **kw))
        if label:             # beside the last (vertical) leg
            ax.text(end[0] + 0.08, (start[1] + end[1]) / 2, label, fontsize=9, color="0.25", ha="left", va="center")

    keys = list(PIPELINE_STAGES)
    for a, b in zip(keys, keys[1:]):
        arrow((boxes[a][0] + w / 2, y_main), (boxes[b][0] - w / 2, y_main))
    px, _, pw = boxes["params"]
    arrow((0.0, y_main - h / 2), (px - pw / 2, y_par), connectionstyle="angle,angleA=-90,angleB=180,rad=0")
    side = 0.55 * w / 2          # the legs enter right of centre, clear of the notebook labels
    arrow((px + pw / 2, y_par + 0.2), (boxes["xyz"][0] + side, y_main - h / 2), "camera",
          connectionstyle="angle,angleA=180,angleB=-90,rad=0")
    arrow((px + pw / 2, y_par - 0.2), (boxes["ik"][0] + side, y_main - h / 2), "$\\phi$, $\\beta$",
          connectionstyle="angle,angleA=180,angleB=-90,rad=0")

    main_here = [boxes[k] for k in keys if k in here]
    if main_here:
        left, right = main_here[0][0] - w / 2, main_here[-1][0] + w / 2
        top = y_main + h / 2 + 0.12
        ax.plot([left, left, right, right], [top, top + 0.12, top + 0.12, top], color=HERE_EDGE, lw=2)
        tip = ((left + right) / 2, top + 0.14)
        ax.annotate("you are here", xy=tip, xytext=(tip[0], tip[1] + 0.55), ha="center", va="bottom",
                    fontsize=11, weight="bold", color=HERE_EDGE, gid="you-are-here",
                    arrowprops=dict(arrowstyle="-|>", color=HERE_EDGE, lw=2))
    elif "params" in here:
        tip = (px + pw / 2 + 0.05, y_par)
        ax.annotate("you are here", xy=tip, xytext=(tip[0] + 0.9, y_par), ha="left", va="center", fontsize=11,
                    weight="bold", color=HERE_EDGE, gid="you-are-here",
                    arrowprops=dict(arrowstyle="-|>", color=HERE_EDGE, lw=2))
    ax.set_xlim(-w / 2 - 0.2, (len(keys) - 1) * step + w / 2 + 0.2)
    ax.set_ylim(y_par - h / 2 - 0.4, y_main + h / 2 + 1.25)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax.figure


def mesh_overlay(images: torch.Tensor, vertices_cam: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, *,
                 opacity: float = 0.65, color=None) -> tuple[np.ndarray, np.ndarray]:
    """Meshes rendered over their images with our rasteriser (shaded grey-blue, or ``color`` RGB).

    ``images`` ``(B, 3, H, W)`` in [0, 1] (square crops or whole photos); ``vertices_cam`` ``(B, V, 3)``
    camera frame (metres); ``faces`` ``(F, 3)``; ``K`` ``(3, 3)`` or ``(B, 3, 3)``. Returns ``(B, H, W, 3)``
    float RGB and the ``(B, H, W)`` coverage mask, as numpy arrays for ``imshow``.
    """
    from . import render

    size = tuple(images.shape[-2:])
    colours = None
    if color is not None:
        colours = torch.as_tensor(color, dtype=vertices_cam.dtype, device=vertices_cam.device).expand(
            vertices_cam.shape[1], 3)
    out = render.render(vertices_cam, faces, K, size, vertex_colors=colours, light_dir=(0.3, -0.4, -1.0),
                        background=0.0)
    img = images.permute(0, 2, 3, 1).detach().cpu().numpy()
    shaded = out.image.permute(0, 2, 3, 1).detach().cpu().numpy()
    mask = out.mask.detach().cpu().numpy()
    blended = np.where(mask[..., None], (1 - opacity) * img + opacity * shaded, img)
    return blended.clip(0, 1), mask


def draw_skeleton_2d(ax, uv, color=None, *, parents=skeleton.PARENTS, lw=1.5, gid=None):
    """Bones of ``uv`` ``(J, 2)`` (pixels, centres at integers + 0.5) on an image axis: one line per
    bone to its parent, in ``color`` (one colour, or one per joint; default :func:`bone_colors`)."""
    uv = to_numpy(uv)
    colors = bone_colors(parents) if color is None else [color] * len(uv) if isinstance(color, str) else color
    for j, p in enumerate(parents[: len(uv)]):
        if p >= 0:
            ax.plot(uv[[p, j], 0] - 0.5, uv[[p, j], 1] - 0.5, color=colors[j], lw=lw, gid=gid)


def prediction_figure(image, truth_joints_2d, predictions, faces, K, *, title: str = ""):
    """One sample and what each model made of it (matplotlib).

    ``image`` ``(3, S, S)`` in [0, 1]; ``truth_joints_2d`` ``(J, 2)`` pixels; ``predictions``: a
    mapping ``name -> {"vertices_cam": (V, 3), "joints_2d": (J, 2), "errors": {"MPJPE": mm, ...}}``.
    Panel 0: the input with the true skeleton (white). Then one panel per model: its mesh over the
    image (our rasteriser), its 2D skeleton (coloured by side) and the true one (white, thin), and
    its errors in the title. Each prediction's skeleton lines carry ``gid=name`` (for tests).
    """
    import matplotlib.pyplot as plt

    names = list(predictions)
    S = image.shape[-1]
    vertices = torch.stack([torch.as_tensor(predictions[n]["vertices_cam"]) for n in names])
    overlays, _ = mesh_overlay(image[None].expand(len(names), -1, -1, -1), vertices, faces, K)
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(3.3 * (1 + len(names)), 3.6))
    axes[0].imshow(image.permute(1, 2, 0).cpu().numpy())
    draw_skeleton_2d(axes[0], truth_joints_2d, "white", gid="truth")
    axes[0].set_title("input and the true 2D skeleton", fontsize=9)
    for ax, name, overlay in zip(axes[1:], names, overlays):
        ax.imshow(overlay)
        draw_skeleton_2d(ax, truth_joints_2d, "white", lw=0.8, gid="truth")
        draw_skeleton_2d(ax, predictions[name]["joints_2d"], gid=name)
        errors = " | ".join(f"{k} {v:.0f}" for k, v in predictions[name].get("errors", {}).items())
        ax.set_title(f"{name}\n{errors}", fontsize=9)
    for ax in axes:
        ax.set_xlim(-0.5, S - 0.5)
        ax.set_ylim(S - 0.5, -0.5)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.text(0.5, 0.01, "skeletons: blue = left side, red = right side, green = midline; white = the truth",
             ha="center", va="bottom", fontsize=8, color="0.3", gid="key")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def figure_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes (for an ``ipywidgets.Image``); the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


# --- synthetic people (notebook 04) -----------------------------------------------------------
#: RGB of the four body regions of :func:`synthetic.vertex_regions`: skin, top, bottom, shoes.
PERSON_COLORS = ((0.87, 0.67, 0.53), (0.25, 0.45, 0.75), (0.3, 0.3, 0.35), (0.15, 0.1, 0.1))


def render_people(bm, rot_mats: torch.Tensor, betas: torch.Tensor, *, fill: float = 0.8, size: int = 128,
                  background=1.0, light_dir=(0.3, -0.4, -1.0)):
    """Pose and shape people, frame each one centred in a square crop, and render them.

    What :func:`synthetic.render_samples` does, minus the randomness: no shift, no occluders, the
    fixed :data:`PERSON_COLORS`. ``rot_mats`` ``(B, 24, 3, 3)`` local rotations whose root is the
    camera-frame orientation, ``betas`` ``(B, 10)``, both on ``bm``'s device; ``fill`` is the share of
    the ``size``-pixel crop that the larger side of the person's box fills. Returns ``images``
    ``(B, 3, size, size)`` in [0, 1], ``joints_2d`` ``(B, 29, 2)`` pixels and ``root`` ``(B, 3)`` the
    camera-frame pelvis in metres.
    """
    from . import camera, render, synthetic

    dtype, device = bm.v_template.dtype, bm.v_template.device
    B = len(rot_mats)
    K = camera.intrinsics(size, dtype, device)
    colors = torch.tensor(PERSON_COLORS, dtype=dtype, device=device)[synthetic.vertex_regions(bm.lbs_weights)]
    with torch.no_grad():
        out = bm(betas.to(dtype), rot_mats.to(dtype))
        root = synthetic.frame_person(out.vertices, out.joints[:, 0], K, size,
                                      torch.full((B,), fill, dtype=dtype, device=device),
                                      torch.zeros(B, 2, dtype=dtype, device=device))
        offset = (root - out.joints[:, 0])[:, None]
        image = render.render(out.vertices + offset, bm.faces, K, (size, size), vertex_colors=colors,
                              light_dir=light_dir, background=background).image
    return image.clamp(0, 1), camera.project(out.joints + offset, K), root


def image_grid(images, titles=None, joints_2d=None, *, ncols: int | None = None, size: float = 2.2):
    """Images ``(N, 3, H, W)`` in [0, 1] in a grid of ``ncols`` columns (default: one row), titled by
    ``titles`` (N strings) and, if given, with their 2D joints ``(N, J, 2)`` (pixels, centres at +0.5)
    as green dots (``gid="joints"``). ``size``: inches per panel. Returns the matplotlib figure."""
    import math

    import matplotlib.pyplot as plt

    n = len(images)
    ncols = ncols or n
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.05), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(to_numpy(images[k]).transpose(1, 2, 0).clip(0, 1))
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
        if joints_2d is not None:
            uv = to_numpy(joints_2d[k])
            ax.scatter(uv[:, 0] - 0.5, uv[:, 1] - 0.5, s=5, c="tab:green", gid="joints")
    fig.tight_layout()
    return fig


def draw_sample(ax, image, joints_2d, visible, boxes=None, *, title: str | None = None, bones: bool = True):
    """One sample on an image axis: the image ``(3, H, W)``, its bones in white (if ``bones``), its
    joints ``(J, 2)`` (pixels, centres at +0.5) in green where ``visible`` ``(J,)`` and red where not
    (scatter gids "visible", "hidden"), and occluding boxes ``(K, 4)`` as ``(u0, v0, u1, v1)`` pixel
    edges, dashed yellow (patch gid "box")."""
    from matplotlib.patches import Rectangle

    img = to_numpy(image).transpose(1, 2, 0)
    ax.imshow(img.clip(0, 1))
    uv, shown = to_numpy(joints_2d), to_numpy(visible).astype(bool)
    if bones:
        draw_skeleton_2d(ax, uv, "white", lw=0.8)
    for keep, colour, gid in ((shown, "lime", "visible"), (~shown, "red", "hidden")):
        ax.scatter(uv[keep, 0] - 0.5, uv[keep, 1] - 0.5, s=7, c=colour, edgecolors="k", linewidths=0.3,
                   zorder=3, gid=gid)
    for u0, v0, u1, v1 in ([] if boxes is None else to_numpy(boxes).tolist()):
        ax.add_patch(Rectangle((u0 - 0.5, v0 - 0.5), u1 - u0, v1 - v0, fill=False, ls="--", color="yellow",
                               lw=1, gid="box"))
    ax.set_xlim(-0.5, img.shape[1] - 0.5)
    ax.set_ylim(img.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
