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


def check_exercise(name: str, answer, check) -> bool:
    """Run ``check(answer)`` for exercise ``name`` (e.g. ``"nb05.soft_argmax"``) without revealing the answer.

    ``answer`` is the learner's function; ``check`` calls it and asserts what a right answer
    must satisfy. An answer that raises ``NotImplementedError`` (the template) is reported as
    not answered yet and the check is skipped, visibly. The tests set
    ``HYBRIK_LITE_EXERCISES=solutions`` to check the reference answer instead (every check can
    pass) and ``=wrong`` to check a wrong one (every check can fail: a wrong answer that passes
    raises ``RuntimeError``). Returns True when the check passed.
    """
    mode = os.environ.get("HYBRIK_LITE_EXERCISES", "")
    result = _check(name, answer, check, mode)
    log = os.environ.get("HYBRIK_LITE_EXERCISE_LOG")     # the tests read the outcomes from here
    if log:
        with open(log, "a") as f:
            f.write(f"{name}: {result}\n")
    return result == "correct!"


def _check(name: str, answer, check, mode: str) -> str:
    """check_exercise's work; returns the outcome as printed after the exercise's name."""
    from . import solutions

    if mode not in ("", "solutions", "wrong"):
        raise ValueError(f"HYBRIK_LITE_EXERCISES must be unset, 'solutions' or 'wrong', got {mode!r}")
    if mode:
        answer = solutions.lookup(name, "solution" if mode == "solutions" else "wrong")
    try:
        check(answer)
    except NotImplementedError:
        print(f"{name}: not answered yet, so its check is skipped. Write your answer and run the cell again.")
        return "not answered yet"
    except AssertionError as err:
        if mode == "wrong":
            print(f"{name}: the wrong answer was rejected ({err})")
            return "the wrong answer was rejected"
        raise
    if mode == "wrong":
        raise RuntimeError(f"{name}: a wrong answer passed the check, so the check cannot catch mistakes")
    print(f"{name}: correct!")
    return "correct!"


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
