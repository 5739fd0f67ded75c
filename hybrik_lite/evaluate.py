"""Evaluation the way papers report it: MPJPE, PA-MPJPE, PVE (mm), per joint and per view.

    python -m hybrik_lite eval                                # the shipped checkpoint, the frozen split
    python -m hybrik_lite eval --checkpoint runs/x/last.pt --seed 7 --num 512 --json out.json
    python -m hybrik_lite eval --data 3dpw --h36m-regressor J_regressor_h36m.npy   # a real test set

Protocol (synthetic data): 24 SMPL joints after the body model (the regressor of Human3.6M's
17 joints is not ours to ship), root-aligned for MPJPE, similarity-aligned for PA-MPJPE; PVE
on the full-resolution open model, root-aligned; the 2D error of the mesh in pixels (its
vertices projected with the predicted root ``transl``, against the true ones). Views are bins of
the person's heading seen from the camera: front (|yaw| < 45 deg), side, back (> 135 deg).
Both IK modes run on the same network outputs; the regression baseline has one mode, ``direct``.

Protocol (3DPW and Human3.6M test sets, :func:`evaluate_dataset`, the paper's): 17 Human3.6M
joints regressed from the predicted mesh with a Human3.6M joint regressor (a ``(17, V)`` array
for the network's mesh, which the user supplies: it is not ours to ship), against the file's
17 joints (regressed from the true SMPL mesh); both root-aligned at the pelvis, 14 of them
scored (:data:`hybrik_lite.skeleton.H36M_EVAL_14`). PA-MPJPE: 3DPW selects the 14 and then
aligns; Human3.6M aligns all 17 and then selects the 14. Test-time IK (adaptive), no flip test.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from . import camera, checkpoint, metrics, skeleton, synthetic

__all__ = ["VIEWS", "heading_deg", "view_of", "modes_of", "predict", "score", "summarise", "evaluate", "format_table",
           "PROTOCOLS", "load_regressor", "h36m_protocol_errors", "evaluate_dataset", "main"]

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


#: Real test sets the H36M-joint protocol scores (MPI-INF-3DHP's PCK/AUC is not implemented).
PROTOCOLS = ("3dpw", "h36m")


def load_regressor(path, num_vertices: int | None = None) -> torch.Tensor:
    """A Human3.6M joint regressor ``(17, V)`` from a ``.npy`` file (float32); ``num_vertices``: the mesh it
    must fit."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Human3.6M joint regressor {path} does not exist; pass the path of a .npy array of "
                                f"shape (17, V) for the network's mesh")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path} is not a plain .npy array ({err}); save the regressor with numpy.save") from None
    if array.ndim != 2 or array.shape[0] != 17 or (num_vertices is not None and array.shape[1] != num_vertices):
        want = f"(17, {num_vertices})" if num_vertices is not None else "(17, V)"
        raise ValueError(f"the Human3.6M regressor {path} has shape {array.shape}, expected {want}: 17 joints by the "
                         f"vertices of the mesh the network predicts (a regressor for SMPL has 6890 columns and "
                         f"fits only a network on SMPL's mesh)")
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def h36m_protocol_errors(pred: torch.Tensor, gt: torch.Tensor, protocol: str) -> dict:
    """The paper's errors on 17 Human3.6M joints ``(B, 17, 3), (B, 17, 3)`` -> ``mpjpe``, ``pa_mpjpe`` ``(B,)`` and
    ``per_joint`` ``(B, 14)`` (root-aligned), metres, over the 14 scored joints. ``protocol``: ``"3dpw"`` selects
    the 14 and then aligns (PA); ``"h36m"`` aligns the 17 and then selects."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if pred.shape != gt.shape or pred.shape[1:] != (17, 3):
        raise ValueError(f"expected pred and gt (B, 17, 3), got {tuple(pred.shape)} and {tuple(gt.shape)}")
    scored = list(skeleton.H36M_EVAL_14)
    per_joint = metrics.joint_errors(pred, gt)[:, scored]
    if protocol == "3dpw":
        pa = metrics.pa_mpjpe(pred[:, scored], gt[:, scored])
    else:
        pa = metrics.joint_errors(pred, gt, "procrustes")[:, scored].mean(-1)
    return {"mpjpe": per_joint.mean(-1), "pa_mpjpe": pa, "per_joint": per_joint}


@torch.no_grad()
def evaluate_dataset(net, dataset, regressor: torch.Tensor, *, protocol: str | None = None, mode: str | None = None,
                     batch_size: int = 32, device="cpu", limit: int | None = None) -> dict:
    """Score ``net`` on a real test set (:mod:`hybrik_lite.datasets`, samples with ``h36m_joints``) the
    paper's way (module docstring). ``regressor`` ``(17, V)`` for the network's mesh; ``protocol``
    defaults to the dataset's name; ``mode`` to the network's test-time mode; ``limit``: the first
    samples only. Returns means in mm and the per-sample errors (metres)."""
    protocol = protocol or dataset.name
    mode = mode or modes_of(net)[0]
    count = len(dataset) if limit is None else min(limit, len(dataset))
    rows = {"mpjpe": [], "pa_mpjpe": [], "per_joint": []}
    for start in range(0, count, batch_size):
        batch = dataset.batch(range(start, min(start + batch_size, count)))
        if "h36m_joints" not in batch:
            raise ValueError(f"{dataset.title} {dataset.split} has no h36m_joints to score against")
        vertices = predict(net, batch["image"], mode=mode, batch_size=batch_size, device=device, keys=("vertices",),
                           output_device="cpu")["vertices"]
        if vertices.shape[1] != regressor.shape[1]:
            raise ValueError(f"the regressor has {regressor.shape[1]} columns but the network predicts "
                             f"{vertices.shape[1]} vertices; use a Human3.6M regressor for the network's mesh")
        pred = torch.einsum("jv,bvc->bjc", regressor.to(vertices), vertices)
        for k, v in h36m_protocol_errors(pred, batch["h36m_joints"].to(pred), protocol).items():
            rows[k].append(v)
    per_sample = {k: torch.cat(v) for k, v in rows.items()}
    names = [skeleton.H36M_JOINT_NAMES[j] for j in skeleton.H36M_EVAL_14]
    per_joint = per_sample["per_joint"].mean(0) * 1000
    return {"dataset": dataset.title, "split": dataset.split, "protocol": protocol, "mode": mode, "samples": count,
            "mpjpe_mm": float(per_sample["mpjpe"].mean()) * 1000,
            "pa_mpjpe_mm": float(per_sample["pa_mpjpe"].mean()) * 1000,
            "per_joint_mpjpe_mm": dict(zip(names, per_joint.tolist())), "per_sample": per_sample}


def _main_dataset(args, device) -> int:
    """``eval --data NAME``: a real test set, the paper's protocol."""
    from . import body_model, datasets

    try:
        if args.data not in PROTOCOLS:
            raise ValueError(f"eval --data {args.data}: the real test sets scored here are {list(PROTOCOLS)} (the "
                             f"paper's Human3.6M-joint protocol); MPI-INF-3DHP's PCK/AUC is not implemented")
        if args.h36m_regressor is None:
            raise ValueError(f"eval --data {args.data} scores 14 of the 17 Human3.6M joints regressed from the mesh, "
                             f"as the paper does: pass --h36m-regressor PATH, a .npy array of shape (17, V) for the "
                             f"network's mesh (not shipped: Human3.6M's regressor is derived from licensed data; "
                             f"users supply it)")
        body = body_model.load(resolution="full").to(device)
        regressor = load_regressor(args.h36m_regressor, int(body.v_template.shape[0]))
        net, payload = checkpoint.load_model(args.checkpoint, body=body, device=device)
        dataset = datasets.load(args.data, "test", args.data_root, image_size=net.config.image_size)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}")
        return 2
    result = evaluate_dataset(net, dataset, regressor, device=device, limit=args.limit)
    per_sample = result.pop("per_sample")
    result["checkpoint"] = str(args.checkpoint or checkpoint.shipped_checkpoint_path())
    result["trained_steps"] = payload["step"]
    print(f"checkpoint {result['checkpoint']} (step {payload['step']}) on {result['dataset']} {result['split']} "
          f"({result['samples']} samples, {result['mode']} IK)")
    print(f"MPJPE {result['mpjpe_mm']:.1f} mm, PA-MPJPE {result['pa_mpjpe_mm']:.1f} mm (14 Human3.6M joints, "
          f"{'aligned on 17, then 14 selected' if result['protocol'] == 'h36m' else '14 selected, then aligned'})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if math.isfinite(float(per_sample["mpjpe"].mean())) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybrik_lite eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="a checkpoint (default: the shipped one)")
    parser.add_argument("--split", default=None, help="a split folder (default: the shipped frozen split)")
    parser.add_argument("--seed", type=int, default=None, help="render a fresh split with this seed instead")
    parser.add_argument("--num", type=int, default=512, help="samples of the fresh split (with --seed)")
    parser.add_argument("--json", default=None, help="also write the full result (per joint, per view) here")
    parser.add_argument("--device", default=None)
    parser.add_argument("--data", default="synthetic",
                        help="synthetic (default: --split/--seed) or a real test set: 3dpw, h36m "
                             "(needs --h36m-regressor)")
    parser.add_argument("--data-root", default=None, help="folder holding pw3d/, h36m/ (default: $HYBRIK_LITE_DATA)")
    parser.add_argument("--h36m-regressor", default=None, metavar="NPY",
                        help="Human3.6M joint regressor, a .npy of shape (17, V) for the network's mesh")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N samples of a real test set")
    args = parser.parse_args(argv)
    from . import body_model

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.data != "synthetic":
        return _main_dataset(args, device)
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
