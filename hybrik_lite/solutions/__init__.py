"""Reference answers to the notebooks' exercises, one module per notebook (``nb05`` ...).

Notebooks never print these: :func:`hybrik_lite.tutorial.check_exercise` uses them only when
the tests ask for it (``HYBRIK_LITE_EXERCISES=solutions`` proves every check can pass,
``HYBRIK_LITE_EXERCISES=wrong`` proves every check can fail). Each module has ``SOLUTIONS``
(exercise name -> function) and ``WRONG`` (exercise name -> a plausible wrong answer).
"""
from __future__ import annotations

import importlib


def lookup(name: str, which: str = "solution"):
    """The reference (``which="solution"``) or wrong answer of exercise ``"nb05.soft_argmax"``."""
    module_name, _, exercise = name.partition(".")
    module = importlib.import_module(f"{__name__}.{module_name}")
    table = module.SOLUTIONS if which == "solution" else module.WRONG
    if exercise not in table:
        raise KeyError(f"no {which} for exercise {name!r}; known: {sorted(table)}")
    return table[exercise]
