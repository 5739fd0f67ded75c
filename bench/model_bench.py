"""Benchmark of the network: images/s of both presets, and where a training step's time goes.

    python bench/model_bench.py                # 1 CPU thread (other work shares these cores)
    python bench/model_bench.py --threads 2    # the issue's targets are for 2 threads
    python bench/model_bench.py --quick        # fewer rounds (a smoke run)

Prints, in one run (CPU, and CUDA with bf16 autocast when present):
1. forward (eval, no grad) and training-step (forward + loss + backward + Adam) images/s for
   ``cpu-small`` and ``paper``, beside a **reference**: the same ``cpu-small`` backbone and head
   written out plainly with ``torch.nn`` in this file (sharing no code with ``hybrik_lite.model``)
   and trained on the uvd loss alone, without a HybrIK layer. Rounds are interleaved.
2. the share of a ``cpu-small`` training step spent in backbone (with the optimizer step), head,
   soft-argmax, parameter heads + IK, and body model: the differences between cumulative
   pipelines (backbone; + head; + soft-argmax; + heads and IK; + body model and the full loss),
   timed interleaved, medians.

Targets (2 CPU threads): ``cpu-small`` trains at >= 50 images/s including the HybrIK layer, and
the HybrIK layer (IK + body model) takes <= 15% of a step.

Recorded (2 CPU cores, torch 2.13.0 CPU, ``--threads 2``, quiet machine, 2026-12-01):

    parameters: cpu-small 3,303,723 | paper 27,592,891 | reference 3,156,976
                                       batch  forward img/s  train img/s
    cpu-small (with HybrIK layer)         32          396.5        120.1
    paper (with HybrIK layer)              2            7.9          2.4
    reference cpu-small (no IK, plain)    32          471.6        137.1
    cpu-small training step, batch 32: staged 263 ms (the model's own step: 249 ms)
      backbone (+ Adam step)     190.8 ms   72.7%
      heatmap head                28.0 ms   10.7%
      soft-argmax                 10.6 ms    4.0%
      IK (+ parameter heads)      25.7 ms    9.8%
      body model (+ loss)          7.4 ms    2.8%
      HybrIK layer (IK + body model, with the parameter heads and the loss): 12.6%
"""
from __future__ import annotations

import argparse
import platform

import torch
from torch import nn

from _timing import median_times
from hybrik_lite import camera, ik, losses, model, synthetic


# --- the reference: a plain ResNet-18 (width 0.5) + deconvolution head, written from scratch ----------
class _RefBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def reference_network(cfg: model.ModelConfig) -> nn.Module:
    c = [round(k * cfg.width) for k in (64, 128, 256, 512)]
    layers = [nn.Conv2d(3, c[0], 7, 2, 3, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = c[0]
    for i, cout in enumerate(c):
        layers += [_RefBlock(cin, cout, 1 if i == 0 else 2), _RefBlock(cout, cout, 1)]
        cin = cout
    for _ in range(cfg.num_deconv):
        layers += [nn.ConvTranspose2d(cin, cfg.head_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(cfg.head_channels),
                   nn.ReLU()]
        cin = cfg.head_channels
    layers.append(nn.Conv2d(cin, 29 * cfg.heatmap_depth, 1))
    return nn.Sequential(*layers)


def reference_uvd(logits: torch.Tensor, depth: int) -> torch.Tensor:
    B, _, H, W = logits.shape
    p = logits.reshape(B, 29, -1).softmax(-1).reshape(B, 29, depth, H, W)
    centres = [(torch.arange(n, device=logits.device) + 0.5) / n - 0.5 for n in (W, H, depth)]
    return torch.stack([(p.sum((2, 3)) * centres[0]).sum(-1), (p.sum((2, 4)) * centres[1]).sum(-1),
                        (p.sum((3, 4)) * centres[2]).sum(-1)], -1)


# --- batches and steps -------------------------------------------------------------------------------
def make_batch(size, n, device):
    ds = synthetic.SyntheticDataset(n, seed=11, config=synthetic.SyntheticConfig(image_size=size))
    b = ds.batch(range(n))
    return {k: v.to(device) for k, v in b.items()}


def autocast(device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def step_fn(net, opt, batch, targets, device):
    def step():
        with autocast(device):
            out = net(batch["image"])
            loss, _ = losses.hybrik_loss(out, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def forward_fn(net, batch, device):
    def fwd():
        with torch.no_grad(), autocast(device):
            net(batch["image"])
    return fwd


def reference_step_fn(ref, opt, batch, cfg, device):
    weight = losses.uvd_weights(batch["uvd"])[..., None]

    def step():
        with autocast(device):
            uvd = reference_uvd(ref(batch["image"]), cfg.heatmap_depth)
            loss = ((uvd.float() - batch["uvd"]).abs() * weight).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def staged_step_fn(net, opt, batch, targets, upto, device):
    """A training step through the first stages only (for the time shares)."""
    layer = net.hybrik
    S = net.config.image_size

    def step():
        with autocast(device):
            f = net.backbone(net.input(batch["image"]))
            loss = f.float().mean()
            if upto >= 1:
                h = net.heatmap_head(f)
                loss = loss + h.float().mean()
            if upto >= 2:
                uvd = model.soft_argmax_3d(h)
                loss = loss + (uvd - batch["uvd"]).abs().mean()
            if upto >= 3:
                betas, phi_raw, cam = net.parameter_head(f.mean((2, 3)))
                with torch.autocast(device.type, enabled=False):
                    betas, phi_raw, cam = betas.float(), phi_raw.float(), cam.float()
                    xyz = camera.uvd_to_root_relative(uvd, layer.K, S, camera.root_depth_from_scale(cam[:, 0]))
                    rot = ik.solve(xyz, phi_raw, layer.body.rest_joints(betas), mode="naive", detach_targets=True)
                    loss = loss + rot.mean() + betas.square().mean() + cam.square().mean()
            if upto >= 4:
                with torch.autocast(device.type, enabled=False):
                    vertices = layer.body(betas, rot).vertices
                    out = {"uvd": uvd, "betas": betas, "phi_raw": phi_raw, "camera": cam, "rot_mats": rot}
                    loss = loss + losses.hybrik_loss(out, targets)[0] + vertices.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def run(device, rounds, batch_small, batch_paper):
    print(f"\n== {device} ({'bf16 autocast' if device.type == 'cuda' else 'float32'}), "
          f"{torch.get_num_threads()} CPU threads")
    small_cfg, paper_cfg = model.preset("cpu-small"), model.preset("paper")
    small = model.build(small_cfg).to(device)
    paper = model.build(paper_cfg).to(device)
    ref = reference_network(small_cfg).to(device)
    print(f"parameters: cpu-small {model.count_parameters(small):,} | paper {model.count_parameters(paper):,} | "
          f"reference {sum(p.numel() for p in ref.parameters()):,}")
    b_small = make_batch(small_cfg.image_size, batch_small, device)
    b_paper = make_batch(paper_cfg.image_size, batch_paper, device)
    t_small, t_paper = losses.targets_from_batch(b_small), losses.targets_from_batch(b_paper)
    opt_small, opt_paper = torch.optim.Adam(small.parameters()), torch.optim.Adam(paper.parameters())
    opt_ref = torch.optim.Adam(ref.parameters())

    small.eval(); paper.eval(); ref.eval()
    fwd = median_times({"cpu-small": forward_fn(small, b_small, device), "paper": forward_fn(paper, b_paper, device),
                        "reference": forward_fn(ref, b_small, device)}, rounds, device)
    small.train(); paper.train(); ref.train()
    train = median_times({"cpu-small": step_fn(small, opt_small, b_small, t_small, device),
                          "paper": step_fn(paper, opt_paper, b_paper, t_paper, device),
                          "reference": reference_step_fn(ref, opt_ref, b_small, small_cfg, device)}, rounds, device)
    batches = {"cpu-small": batch_small, "paper": batch_paper, "reference": batch_small}
    print(f"{'':34s}{'batch':>6s}{'forward img/s':>15s}{'train img/s':>13s}")
    labels = {"cpu-small": "cpu-small (with HybrIK layer)", "paper": "paper (with HybrIK layer)",
              "reference": "reference cpu-small (no IK, plain)"}
    for k in fwd:
        print(f"{labels[k]:34s}{batches[k]:6d}{batches[k] / fwd[k]:15.1f}{batches[k] / train[k]:13.1f}")

    stages = ["backbone (+ Adam step)", "heatmap head", "soft-argmax", "IK (+ parameter heads)", "body model (+ loss)"]
    fns = {i: staged_step_fn(small, opt_small, b_small, t_small, i, device) for i in range(len(stages))}
    fns["full"] = step_fn(small, opt_small, b_small, t_small, device)
    med = median_times(fns, rounds, device)
    cumulative = [med[i] for i in range(len(stages))]
    shares = [cumulative[0]] + [b - a for a, b in zip(cumulative, cumulative[1:])]
    total = cumulative[-1]
    print(f"cpu-small training step, batch {batch_small}: staged {1000 * total:.0f} ms "
          f"(the model's own step: {1000 * med['full']:.0f} ms)")
    for name, t in zip(stages, shares):
        print(f"  {name:24s} {1000 * t:7.1f} ms  {t / total:6.1%}")
    hybrik_share = (shares[3] + shares[4]) / total
    print(f"  HybrIK layer (IK + body model, with the parameter heads and the loss): {hybrik_share:.1%}")
    return batch_small / train["cpu-small"], hybrik_share


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rounds = 2 if args.quick else args.rounds
    print(f"torch {torch.__version__} | {platform.processor() or platform.machine()} | threads {args.threads}")
    rate, share = run(torch.device("cpu"), rounds, batch_small=32, batch_paper=2)
    print(f"targets (2 threads): cpu-small >= 50 img/s training [{rate:.1f}], HybrIK layer <= 15% [{share:.1%}]")
    if torch.cuda.is_available():
        run(torch.device("cuda"), rounds, batch_small=256, batch_paper=32)
    else:
        print("\nCUDA: skipped (no CUDA device)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
