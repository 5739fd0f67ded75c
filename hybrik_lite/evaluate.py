"""Evaluation the way papers report it: MPJPE, PA-MPJPE, PVE (mm), per joint and per view.

    python -m hybrik_lite eval                                # the shipped checkpoint, the frozen split
    python -m hybrik_lite eval --checkpoint runs/x/last.pt --seed 7 --num 512 --json out.json

Protocol (synthetic data): 24 SMPL joints after the body model (the regressor of Human3.6M's
17 joints is not ours to ship), root-aligned for MPJPE, similarity-aligned for PA-MPJPE; PVE
on the full-resolution open model, root-aligned; the 2D error of the mesh in pixels (its
vertices projected with the predicted root ``transl``, against the true ones). Views are bins of
the person's heading seen from the camera: front (|yaw| < 45 deg), side, back (> 135 deg).
Both IK modes run on the same network outputs; the regression baseline has one mode, ``direct``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from . import camera, checkpoint, metrics, skeleton, synthetic

__all__ = ["VIEWS", "heading_deg", "view_of", "modes_of", "predict", "score", "summarise", "evaluate", "format_table",
           "main"]

VIEWS = ("front", "side", "back")


def heading_deg(root_rotation: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` camera-frame root rotations -> ``(B,)`` yaw of the body's forward (+Z) axis
    about the camera's vertical, 0 when the person faces the camera, +-180 from behind."""
    forward = root_rotation[..., :, 2]
    return torch.rad2deg(torch.atan2(forward[..., 0], -forward[..., 2]))


def view_of(root_rotation: torch.Tensor) -> list[str]:
    yaw = heading_deg(root_rotation).abs()
    return [VIEWS[0] if a < 45 else VIEWS[2] if a > 135 else VIEWS[1] for a in yaw.tolist()]


def _fresh_split(seed: int, num: int, batch: int = 64) -> dict:
    ds = synthetic.SyntheticDataset(num, seed=seed)
    parts = [ds.batch(range(s, min(s + batch, num))) for s in range(0, num, batch)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0] if k != "mask"}


def modes_of(net) -> tuple[str, ...]:
    """The test-time modes a network has: both IK modes for HybrIK, ``("direct",)`` for the
    regression baseline (no IK to choose)."""
    kind = getattr(getattr(net, "config", None), "kind", "hybrik")
    return ("direct",) if kind == "regression" else ("adaptive", "naive")


@torch.no_grad()
def predict(net, images: torch.Tensor, *, mode: str, batch_size: int = 64, device="cpu",
            keys=("joints", "vertices", "transl", "betas", "uvd"), output_device="cpu") -> dict:
    """Run ``net`` in eval mode on ``images`` ``(N, 3, S, S)`` in batches; returns the outputs named
    in ``keys`` concatenated on ``output_device`` (e.g. ``joints`` ``(N, 29, 3)`` root-relative, ``vertices``
    ``(N, V, 3)`` root-relative, ``transl`` ``(N, 3)`` the root in the camera frame). ``mode``:
    one of :func:`modes_of` (``"adaptive"``/``"naive"`` IK, or ``"direct"``)."""
    if mode not in modes_of(net):
        raise ValueError(f"mode {mode!r} is not one of this network's test modes {modes_of(net)}")
    net.eval()
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(device)
        out = net(batch) if mode == "direct" else net(batch, ik_mode=mode)
        parts.append({k: out[k].float().to(output_device) for k in keys if k in out})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


@torch.no_grad()
def score(predictions: dict, split: dict, body, *, batch_size: int = 64) -> dict:
    """Per-sample errors of several models' predictions against a split's truth.

    ``predictions``: ``name -> `` :func:`predict`'s output. Returns ``name -> {...}`` with ``(N,)``
    tensors ``mpjpe``, ``pa_mpjpe``, ``pve`` (metres; 24 SMPL joints, root-aligned and
    similarity-aligned; the mesh root-aligned), ``reproj_px`` (the mesh's vertices projected with
    the predicted root against the true ones, mean pixels) and ``per_joint`` ``(N, 24)``
    (root-aligned, metres), on the CPU. The truth comes from ``body`` (on its device) with the
    split's pose and shape, once per batch for all the predictions, so their ``vertices`` must be
    on the same mesh.
    """
    device = body.v_template.device
    n, S = len(split["image"]), split["image"].shape[-1]
    K = camera.intrinsics(S, device=device)
    rows = {name: {k: [] for k in ("mpjpe", "pa_mpjpe", "pve", "reproj_px", "per_joint")} for name in predictions}
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        gt = body(split["betas"][sl].to(device), split["pose"][sl].to(device))
        gt_joints = gt.joints[:, :24] - gt.joints[:, :1]
        gt_vertices = gt.vertices - gt.joints[:, :1]
        gt_uv = camera.project(gt_vertices + split["joints_cam"][sl, :1].to(device), K)
        for name, pred in predictions.items():
            joints = pred["joints"][sl, :24].to(device)
            vertices = pred["vertices"][sl].to(device)
            if vertices.shape != gt_vertices.shape:
                raise ValueError(f"{name}: predicted vertices {tuple(vertices.shape)} and the body's "
                                 f"{tuple(gt_vertices.shape)} differ: score on the same mesh the network predicts "
                                 f"(load the network with body=that body)")
            row = rows[name]
            row["mpjpe"].append(metrics.mpjpe(joints, gt_joints))
            row["pa_mpjpe"].append(metrics.pa_mpjpe(joints, gt_joints))
            row["pve"].append(metrics.pve(vertices, gt_vertices))
            row["per_joint"].append(metrics.joint_errors(joints, gt_joints))
            uv = camera.project(vertices + pred["transl"][sl, None].to(device), K)
            row["reproj_px"].append((uv - gt_uv).norm(dim=-1).mean(-1))
    return {name: {k: torch.cat(v).cpu() for k, v in row.items()} for name, row in rows.items()}


def summarise(per_sample: dict, views: list[str]) -> dict:
    """Means of :func:`score`'s per-sample errors in mm (and px), per view and per joint."""
    summary = {f"{k}_mm": float(per_sample[k].mean()) * 1000 for k in ("mpjpe", "pa_mpjpe", "pve")}
    summary["reproj_px"] = float(per_sample["reproj_px"].mean())
    by_view = {}
    for v in VIEWS:
        rows = torch.tensor([x == v for x in views])
        if rows.any():
            by_view[v] = {f"{k}_mm": float(per_sample[k][rows].mean()) * 1000 for k in ("mpjpe", "pa_mpjpe", "pve")}
    per_joint = per_sample["per_joint"].mean(0) * 1000
    summary["per_view"] = by_view
    summary["per_joint_mpjpe_mm"] = {skeleton.SMPL_JOINT_NAMES[j]: float(per_joint[j]) for j in range(24)}
    return summary


def evaluate(net, split: dict, body, *, modes=None, batch_size: int = 64, device="cpu") -> dict:
    """Run ``net`` on ``split`` and score each test mode (default :func:`modes_of`: both IK modes
    for HybrIK, ``direct`` for the baseline). ``body``: the mesh the PVE is measured on (the
    network's own HybrIK layer uses it too). Returns per-mode summaries and breakdowns."""
    modes = modes_of(net) if modes is None else tuple(modes)
    views = view_of(split["pose"][:, 0])
    result = {"samples": len(split["image"]), "image_size": split["image"].shape[-1],
              "views": {v: views.count(v) for v in VIEWS}, "modes": {}}
    preds = {mode: predict(net, split["image"], mode=mode, batch_size=batch_size, device=device,
                           keys=("joints", "vertices", "transl"), output_device=body.v_template.device)
             for mode in modes}
    for mode, per_sample in score(preds, split, body, batch_size=batch_size).items():
        result["modes"][mode] = summarise(per_sample, views)
    return result


def format_table(result: dict) -> str:
    """The summary as a plain-text table."""
    lines = [f"{result['samples']} samples ({', '.join(f'{k} {v}' for k, v in result['views'].items())})",
             f"{'mode':10s}{'MPJPE':>9s}{'PA-MPJPE':>10s}{'PVE':>8s}{'2D px':>8s}   (mm, 24 SMPL joints)"]
    for mode, s in result["modes"].items():
        lines.append(f"{mode:10s}{s['mpjpe_mm']:9.1f}{s['pa_mpjpe_mm']:10.1f}{s['pve_mm']:8.1f}{s['reproj_px']:8.2f}")
    for mode, s in result["modes"].items():
        views = "  ".join(f"{v}: {d['mpjpe_mm']:.1f}/{d['pa_mpjpe_mm']:.1f}" for v, d in s["per_view"].items())
        lines.append(f"{mode} per view (MPJPE/PA-MPJPE): {views}")
        worst = sorted(s["per_joint_mpjpe_mm"].items(), key=lambda kv: -kv[1])[:5]
        lines.append(f"{mode} worst joints (MPJPE): " + ", ".join(f"{k} {v:.0f}" for k, v in worst))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybrik_lite eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="a checkpoint (default: the shipped one)")
    parser.add_argument("--split", default=None, help="a split folder (default: the shipped frozen split)")
    parser.add_argument("--seed", type=int, default=None, help="render a fresh split with this seed instead")
    parser.add_argument("--num", type=int, default=512, help="samples of the fresh split (with --seed)")
    parser.add_argument("--json", default=None, help="also write the full result (per joint, per view) here")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    from . import body_model

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        if args.seed is not None and args.split is not None:
            raise ValueError("pass --split DIR or --seed S (with --num N), not both")
        body = body_model.load(resolution="full").to(device)
        net, payload = checkpoint.load_model(args.checkpoint, body=body, device=device)
        split = _fresh_split(args.seed, args.num) if args.seed is not None else synthetic.load_split(args.split)
        if split["image"].shape[-1] != net.config.image_size:
            raise ValueError(f"the split has {split['image'].shape[-1]}-pixel images but the network expects "
                             f"{net.config.image_size}")
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}")
        return 2
    result = evaluate(net, split, body, device=device)
    source = f"fresh split seed {args.seed}" if args.seed is not None else (args.split or "frozen split")
    result["checkpoint"] = str(args.checkpoint or checkpoint.shipped_checkpoint_path())
    result["split"] = source
    result["trained_steps"] = payload["step"]
    print(f"checkpoint {result['checkpoint']} (step {payload['step']}) on the {source}")
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if all(math.isfinite(s["mpjpe_mm"]) for s in result["modes"].values()) else 1
