"""Input checks shared by the modules: clear errors instead of silent wrong answers."""
from __future__ import annotations

from typing import Sequence

import torch


def check_tensor(x, name: str, trailing: Sequence[int | None], *, min_dims: int | None = None,
                 floating: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor whose last dims are ``trailing`` (None = any size).

    ``min_dims`` defaults to ``len(trailing) + 1`` (one batch dimension at least).
    Raises ValueError saying what was expected, what was given and how to fix it.
    """
    want = "(" + ", ".join(["B"] + ["*" if t is None else str(t) for t in trailing]) + ")"
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a torch.Tensor of shape {want}, got {type(x).__name__}; "
                         f"wrap it with torch.as_tensor(...)")
    need = len(trailing) + 1 if min_dims is None else min_dims
    if x.dim() < need or any(t is not None and s != t
                             for s, t in zip(x.shape[x.dim() - len(trailing):], trailing)):
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{name} must be float32 or float64, got {x.dtype}; use {name}.float()")
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ValueError if ``x`` holds NaN or inf (they would spread silently)."""
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or inf); "
                         f"clean the input (e.g. torch.nan_to_num) before calling")
    return x


def check_same(tensors: dict[str, torch.Tensor]) -> None:
    """All tensors on one device and of one floating dtype (nothing is moved or cast for you)."""
    items = list(tensors.items())
    name0, t0 = items[0]
    for name, t in items[1:]:
        if t.device != t0.device:
            raise ValueError(f"{name} is on {t.device} but {name0} is on {t0.device}; "
                             f"move them to one device, e.g. {name}.to({name0}.device)")
        if t.is_floating_point() and t0.is_floating_point() and t.dtype != t0.dtype:
            raise ValueError(f"{name} is {t.dtype} but {name0} is {t0.dtype}; "
                             f"use one dtype, e.g. {name}.to({name0}.dtype)")


def config_from_dict(cls, data: dict):
    """Build the frozen config dataclass ``cls`` from a dict; an unknown key is refused with a
    "did you mean" (a typo must not be silently ignored). Lists become tuples (JSON round trip)."""
    import dataclasses
    import difflib

    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{cls.__name__} has no field {key!r}; {hint}known fields: {', '.join(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
