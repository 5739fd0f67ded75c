"""Answers to notebook 06's exercises (written independently of the module they are checked against)."""
from __future__ import annotations


def learning_rate(step, cfg):
    """Linear warm-up to ``cfg.lr`` over ``cfg.warmup_steps`` (step 0 at lr / warmup), then a factor
    ``cfg.lr_gamma`` at each milestone step ``round(m * cfg.steps)`` that has been reached."""
    rate = cfg.lr
    if cfg.warmup_steps > 0 and step + 1 < cfg.warmup_steps:
        rate *= (step + 1) / cfg.warmup_steps
    for share in cfg.lr_milestones:
        if step >= round(share * cfg.steps):
            rate *= cfg.lr_gamma
    return rate


def step_indices(step, batch, rank, world):
    """The samples process ``rank`` of ``world`` renders at ``step``: its contiguous ``batch / world``
    slice of the global batch ``step * batch ... (step + 1) * batch - 1``."""
    local = batch // world
    first = step * batch + rank * local
    return list(range(first, first + local))


def _wrong_learning_rate(step, cfg):
    """Warm-up from zero (step / warmup): the very first step would not move the weights at all."""
    rate = cfg.lr * (min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0)
    return rate * cfg.lr_gamma ** sum(step >= round(m * cfg.steps) for m in cfg.lr_milestones)


def _wrong_step_indices(step, batch, rank, world):
    """Interleaved like torch's DistributedSampler: the right global batch, the wrong slice per process."""
    return list(range(step * batch + rank, (step + 1) * batch, world))


SOLUTIONS = {"learning_rate": learning_rate, "step_indices": step_indices}
WRONG = {"learning_rate": _wrong_learning_rate, "step_indices": _wrong_step_indices}
