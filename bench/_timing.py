"""Timing helpers the benchmarks share (run as ``python bench/<name>.py``, which puts bench/ on sys.path)."""
from __future__ import annotations

import statistics
import time

import torch


def sync(device) -> None:
    """Wait for queued GPU work (CUDA kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    """Wall seconds of one call of ``fn``, synchronised on both ends."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def median_times(fns: dict, rounds: int, device) -> dict:
    """Median seconds per call of each function, rounds interleaved, after one warm-up call each."""
    for fn in fns.values():        # warm-up
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():  # interleaved
            times[k].append(timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}
