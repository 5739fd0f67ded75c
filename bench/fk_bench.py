"""Benchmark: our from-scratch SMPL forward pass vs smplx's, same model, same inputs.

    python bench/fk_bench.py [--resolution full|low] [--threads 2] [--repeats 5]

Prints, for batch 1, 64 and 1024 (float32, CPU), the best-of-N time of each and the ratio
(ours / smplx; below 1 means ours is faster), and the largest vertex difference.
"""
import argparse
import time

import smplx.lbs
import torch

from hybrik_lite import body_model, kinematics, skeleton


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", default="full", choices=["full", "low"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bm = body_model.load(resolution=args.resolution)
    print(f"model: {bm.v_template.shape[0]} vertices | float32 | CPU | {args.threads} threads | "
          f"best of {args.repeats}")
    print(f"{'batch':>6} {'ours (ms)':>10} {'smplx (ms)':>11} {'ratio':>7} {'max |dv| (m)':>13}")
    for batch in args.batches:
        g = torch.Generator().manual_seed(batch)
        betas = torch.randn(batch, 10, generator=g)
        pose = torch.randn(batch, 24, 3, generator=g) * 0.3
        with torch.no_grad():
            def ours():
                return kinematics.smpl_forward(betas, kinematics.rodrigues(pose), bm.v_template, bm.shapedirs,
                                               bm.posedirs, bm.J_regressor, skeleton.SMPL_PARENTS,
                                               bm.lbs_weights)[0]

            def theirs():
                return smplx.lbs.lbs(betas, pose.reshape(batch, -1), bm.v_template, bm.shapedirs, bm.posedirs,
                                     bm.J_regressor, bm.smpl_parents, bm.lbs_weights, pose2rot=True)[0]

            t_ours, t_theirs = best_time(ours, args.repeats), best_time(theirs, args.repeats)
            diff = (ours() - theirs()).abs().max().item()
        print(f"{batch:>6} {t_ours * 1e3:>10.2f} {t_theirs * 1e3:>11.2f} {t_ours / t_theirs:>7.2f} {diff:>13.2e}")


if __name__ == "__main__":
    main()
