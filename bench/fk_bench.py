"""Benchmark of the body model: what users call, ``bm(betas, pose)``, against smplx on the same model.

    python bench/fk_bench.py                    # 1 thread, batch 1, 64, 1024, both models
    python bench/fk_bench.py --threads 2 --rounds 5 --batches 64

Times, in one run, interleaved round by round, float32 (and on CUDA when present):
- ``bm(betas, rot_mats)``: hybrik-lite's forward (:class:`hybrik_lite.body_model.BodyModel`);
- ``smplx.SMPLLayer(betas=, global_orient=, body_pose=)``: smplx's layer on the same arrays (the
  layer ``bm`` holds, so the inputs and the model are identical; it shares no code with ours);
- ``smplx.lbs.lbs``: smplx's bare function underneath the layer (no leaf joints, no wrapping).
All three get rotation matrices, so no one converts axis-angles. Prints the medians, the ratio
SMPLLayer / ours (above 1: ours is faster; the target is >= 1.5 at batch 64 and 1024) and the
largest vertex difference, on two models: the shipped open model (no pose correctives) and an
SMPL-format model with nonzero ``posedirs`` (the open model's arrays plus random correctives of
SMPL's magnitude, since the licensed SMPL file is not here).

Recorded 2026-12-04 (2 CPU cores, torch 2.13.0 CPU, 1 thread, float32, a quiet machine; no CUDA
device was lent, so no GPU figures). Medians in ms; the ratio is SMPLLayer / ours:

    open model (13,718 vertices, no pose correctives)
    batch   bm(betas, pose)   SMPLLayer     lbs   SMPLLayer/ours   max |dv| (m)
        1              1.14        3.12    2.91            2.73x        3.0e-07
       64             21.62      102.87   80.05            4.76x        4.2e-07
     1024            764.59     2757.04 1604.38            3.61x        4.9e-07
    open model + random pose correctives (SMPL-format, posedirs nonzero)
        1              3.42        3.38    3.02            0.99x        7.2e-07
       64             46.60      112.50   98.60            2.41x        4.2e-07
     1024            940.91     2182.20 1596.99            2.32x        4.8e-07
    before (the forward went through smplx's layer, then regressed the rest joints again):
    0.83x / 0.94x at batch 64 / 1024 on the open model, 0.86x / 0.86x with pose correctives.
"""
from __future__ import annotations

import argparse
import platform

import numpy as np
import smplx.lbs
import torch

from _timing import median_times
from hybrik_lite import body_model, kinematics


def with_pose_correctives(seed: int = 0) -> body_model.BodyModel:
    """The open model's arrays with random pose correctives (std 3 mm per unit of R - I, like SMPL's)."""
    with np.load(body_model.default_model_path()) as f:
        data = {k: f[k] for k in f.files}
    rng = np.random.default_rng(seed)
    data["posedirs"] = rng.normal(0, 0.003, data["posedirs"].shape).astype(np.float32)
    return body_model.BodyModel(data, name="open model + random posedirs")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: by batch)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = f"yes: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "no CUDA device"
    print(f"hybrik-lite body-model benchmark | torch {torch.__version__} | {platform.machine()} | "
          f"{args.threads} thread(s) | float32 | CUDA: {cuda}")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    models = [body_model.load(), with_pose_correctives()]
    for device in devices:
        for bm in models:
            bm = bm.to(device)
            print(f"\n== {bm.name.split('/')[-1]}: {bm.v_template.shape[0]} vertices, posedirs "
                  f"{'nonzero' if bm.posedirs.any() else 'zero'}, {device} (median ms) ==")
            print(f"{'batch':>6} {'bm(betas, pose)':>16} {'SMPLLayer':>10} {'lbs':>8} {'SMPLLayer/ours':>15} "
                  f"{'lbs/ours':>9} {'max |dv| (m)':>13}")
            for batch in args.batches:
                g = torch.Generator().manual_seed(batch)
                betas = torch.randn(batch, 10, generator=g).to(device)
                rot = kinematics.rodrigues(0.5 * torch.randn(batch, 24, 3, generator=g)).to(device)
                layer = bm.layer
                with torch.no_grad():
                    fns = {
                        "ours": lambda: bm(betas, rot).vertices,
                        "layer": lambda: layer(betas=betas, global_orient=rot[:, :1], body_pose=rot[:, 1:]).vertices,
                        "lbs": lambda: smplx.lbs.lbs(betas, rot, layer.v_template, layer.shapedirs, layer.posedirs,
                                                     layer.J_regressor, layer.parents, layer.lbs_weights,
                                                     pose2rot=False)[0],
                    }
                    rounds = args.rounds or (30 if batch <= 64 else 7)
                    t = median_times(fns, rounds, device)
                    diff = (fns["ours"]() - fns["layer"]()).abs().max().item()
                print(f"{batch:>6} {t['ours'] * 1e3:>16.2f} {t['layer'] * 1e3:>10.2f} {t['lbs'] * 1e3:>8.2f} "
                      f"{t['layer'] / t['ours']:>14.2f}x {t['lbs'] / t['ours']:>8.2f}x {diff:>13.1e}")
                if batch in (64, 1024):
                    met = t["layer"] / t["ours"] >= 1.5 and diff <= 1e-6
                    print(f"       target at batch {batch} (>= 1.5x SMPLLayer, |dv| <= 1e-6 m): "
                          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
