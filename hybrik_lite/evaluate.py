"""Evaluation the way papers report it: MPJPE, PA-MPJPE, PVE (mm), per joint and per view.

    python -m hybrik_lite eval                                # the shipped checkpoint, the frozen split
    python -m hybrik_lite eval --checkpoint runs/x/last.pt --seed 7 --num 512 --json out.json

Protocol (synthetic data): 24 SMPL joints after the body model (the regressor of Human3.6M's
17 joints is not ours to ship), root-aligned for MPJPE, similarity-aligned for PA-MPJPE; PVE
on the full-resolution open model, root-aligned; the 2D error of the mesh in pixels (its
vertices projected with the predicted root ``transl``, against the true ones). Views are bins of
the person's heading seen from the camera: front (|yaw| < 45 deg), side, back (> 135 deg).
Both IK modes run on the same network outputs.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from . import camera, checkpoint, metrics, skeleton, synthetic

__all__ = ["VIEWS", "heading_deg", "view_of", "evaluate", "format_table", "main"]

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


@torch.no_grad()
def evaluate(net, split: dict, body, *, modes=("adaptive", "naive"), batch_size: int = 64, device="cpu") -> dict:
    """Run ``net`` on ``split`` and score each IK mode. ``body``: the mesh the PVE is measured on
    (the network's own HybrIK layer uses it too). Returns per-mode summaries and breakdowns."""
    net.eval()
    n = len(split["image"])
    S = split["image"].shape[-1]
    K = camera.intrinsics(S, device=device)
    per = {m: {"mpjpe": [], "pa_mpjpe": [], "pve": [], "reproj_px": [], "per_joint": []} for m in modes}
    for start in range(0, n, batch_size):
        part = {k: v[start:start + batch_size].to(device) for k, v in split.items() if k != "meta"}
        gt = body(part["betas"], part["pose"])
        gt_joints = gt.joints[:, :24] - gt.joints[:, :1]
        gt_vertices = gt.vertices - gt.joints[:, :1]
        gt_root = part["joints_cam"][:, 0]
        gt_uv = camera.project(gt_vertices + gt_root[:, None], K)
        for mode in modes:
            out = net(part["image"], ik_mode=mode)
            joints = out["joints"][:, :24]
            per[mode]["mpjpe"].append(metrics.mpjpe(joints, gt_joints))
            per[mode]["pa_mpjpe"].append(metrics.pa_mpjpe(joints, gt_joints))
            per[mode]["pve"].append(metrics.pve(out["vertices"], gt_vertices))
            per[mode]["per_joint"].append(metrics.joint_errors(joints, gt_joints))
            uv = camera.project(out["vertices"] + out["transl"][:, None], K)
            per[mode]["reproj_px"].append((uv - gt_uv).norm(dim=-1).mean(-1))
    views = view_of(split["pose"][:, 0])
    result = {"samples": n, "image_size": S, "views": {v: views.count(v) for v in VIEWS}, "modes": {}}
    for mode in modes:
        cat = {k: torch.cat(v) for k, v in per[mode].items()}
        summary = {f"{k}_mm": float(cat[k].mean()) * 1000 for k in ("mpjpe", "pa_mpjpe", "pve")}
        summary["reproj_px"] = float(cat["reproj_px"].mean())
        by_view = {}
        for v in VIEWS:
            rows = torch.tensor([x == v for x in views])
            if rows.any():
                by_view[v] = {f"{k}_mm": float(cat[k][rows].mean()) * 1000 for k in ("mpjpe", "pa_mpjpe", "pve")}
        per_joint = cat["per_joint"].mean(0) * 1000
        summary["per_view"] = by_view
        summary["per_joint_mpjpe_mm"] = {skeleton.SMPL_JOINT_NAMES[j]: float(per_joint[j]) for j in range(24)}
        result["modes"][mode] = summary
    return result


def format_table(result: dict) -> str:
    """The summary as a plain-text table."""
    lines = [f"{result['samples']} samples ({', '.join(f'{k} {v}' for k, v in result['views'].items())})",
             f"{'IK mode':10s}{'MPJPE':>9s}{'PA-MPJPE':>10s}{'PVE':>8s}{'2D px':>8s}   (mm, 24 SMPL joints)"]
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
