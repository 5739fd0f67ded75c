"""Helpers the notebooks share: the setup cell's device/seed choice and fast mode.

``HYBRIK_LITE_FAST=1`` (set by the tests) shrinks work sizes only: epochs, samples,
sweep lengths. It never changes a check.
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

REPO_URL = "https://github.com/hybrik-lite/hybrik-lite"


def fast_mode() -> bool:
    """True when ``HYBRIK_LITE_FAST`` is set to a non-empty value other than ``0``."""
    return os.environ.get("HYBRIK_LITE_FAST", "0") not in ("", "0")


def pick(full, fast):
    """``fast`` in fast mode, else ``full`` (for sizes: epochs, samples, sweep points)."""
    return fast if fast_mode() else full


def on_colab() -> bool:
    return "google.colab" in sys.modules


def setup(seed: int = 0, *, verbose: bool = True) -> torch.device:
    """Seed python, numpy and torch; pick CUDA when present; on Colab enable widgets.

    Returns the device the notebook should use.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if on_colab():  # plotly/ipywidgets outputs need Colab's custom widget manager
        from google.colab import output  # type: ignore

        output.enable_custom_widget_manager()
    if verbose:
        import hybrik_lite

        print(f"hybrik-lite {hybrik_lite.__version__} | torch {torch.__version__} | device: {device}"
              f" | fast mode: {fast_mode()} | seed: {seed}")
    return device
