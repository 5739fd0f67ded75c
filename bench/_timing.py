"""Timing helpers the benchmarks share (run as ``python bench/<name>.py``, which puts bench/ on sys.path)."""
from __future__ import annotations

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
