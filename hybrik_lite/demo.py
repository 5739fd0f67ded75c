"""The headless image-to-mesh demo: the shipped checkpoint on one image, one figure out.

    python -m hybrik_lite demo                          # frozen-split sample 0 -> demo.png
    python -m hybrik_lite demo --sample 17 --out me.png
    python -m hybrik_lite demo --image person.png       # a square crop of one person (resized)

The figure: the input, the predicted 2D joints, the predicted mesh rendered over the image with
our rasteriser, and the mesh in 3D. CPU, no network, a few seconds.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from . import camera, checkpoint, synthetic, viz

__all__ = ["load_image", "predict", "figure", "main"]


def load_image(path, size: int) -> torch.Tensor:
    """An image file -> ``(1, 3, size, size)`` float in [0, 1]; it must be (nearly) square."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image at {path}")
    try:
        img = Image.open(path).convert("RGB")
    except Exception as err:
        raise ValueError(f"{path} is not an image PIL can read ({err})") from err
    w, h = img.size
    if abs(w - h) > 0.05 * max(w, h):
        raise ValueError(f"{path} is {w}x{h}: the network expects a square crop around one person; crop it to a "
                         f"square first (e.g. PIL's img.crop((left, top, left + s, top + s)))")
    img = img.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def predict(net, image: torch.Tensor) -> dict:
    """Run the network in eval mode (adaptive IK) on ``(1, 3, S, S)``; adds ``joints_2d`` (pixels)
    and the camera-frame ``vertices_cam``."""
    out = net.eval()(image)
    S = image.shape[-1]
    K = camera.intrinsics(S)
    out["vertices_cam"] = out["vertices"] + out["transl"][:, None]
    out["joints_2d"] = camera.project(out["joints"] + out["transl"][:, None], K)
    out["K"] = K
    return out


def figure(image: torch.Tensor, out: dict, faces: torch.Tensor, title: str = ""):
    """The demo figure (matplotlib): input, 2D joints, mesh overlay, 3D mesh."""
    import matplotlib.pyplot as plt

    img = image[0].permute(1, 2, 0).numpy()
    overlay = viz.mesh_overlay(image, out["vertices_cam"], faces, out["K"])[0][0]
    uv = out["joints_2d"][0].numpy()
    fig = plt.figure(figsize=(13, 3.6))
    ax = [fig.add_subplot(1, 4, k + 1) for k in range(3)] + [fig.add_subplot(1, 4, 4, projection="3d")]
    ax[0].imshow(img)
    ax[0].set_title("input")
    ax[1].imshow(img)
    viz.draw_skeleton_2d(ax[1], uv)
    ax[1].scatter(uv[:, 0] - 0.5, uv[:, 1] - 0.5, s=6, c="k")
    ax[1].set_title("2D joints")
    ax[2].imshow(overlay)
    ax[2].set_title("mesh over the image")
    for a in ax[:3]:
        a.axis("off")
    # 3D: camera frame turned to the body convention for viewing (y up)
    verts = camera.camera_to_body(out["vertices"])[0].numpy()
    pts = viz.view_coordinates(verts, "front")
    f = faces.numpy()
    ax[3].plot_trisurf(pts[:, 0], pts[:, 1], pts[:, 2], triangles=f, color="#8fb3d9", linewidth=0, alpha=0.9)
    ax[3].set_title("mesh in 3D (camera view)")
    ax[3].set_axis_off()
    span = (pts.max(0) - pts.min(0)).max() / 2
    mid = (pts.max(0) + pts.min(0)) / 2
    for setter, m in zip((ax[3].set_xlim, ax[3].set_ylim, ax[3].set_zlim), mid):
        setter(m - span, m + span)
    ax[3].view_init(elev=10, azim=-90)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybrik_lite demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=None, help="a square crop of one person (default: a frozen-split sample)")
    parser.add_argument("--sample", type=int, default=0, help="which frozen-split sample (without --image)")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint")
    parser.add_argument("--out", default="demo.png", help="the figure to write (PNG)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")        # headless: the command only writes a file
    t0 = time.perf_counter()
    try:
        net, payload = checkpoint.load_model(args.checkpoint)
        S = net.config.image_size
        if args.image:
            image, source = load_image(args.image, S), str(args.image)
        else:
            split = synthetic.load_split()
            if not 0 <= args.sample < len(split["image"]):
                raise ValueError(f"--sample must be in [0, {len(split['image']) - 1}], got {args.sample}")
            image, source = split["image"][args.sample:args.sample + 1], f"frozen-split sample {args.sample}"
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}")
        return 2
    out = predict(net, image)
    fig = figure(image, out, net.hybrik.body.faces.cpu(),
                 title=f"{source} | checkpoint step {payload['step']} | adaptive IK")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0
