"""The one finder for shipped data (body models, the frozen split, checkpoints).

Looked up in order: ``$HYBRIK_LITE_DATA/<kind>`` (a ``data_samples`` folder you point at), the
installed wheel (``hybrik_lite/_<kind>``), then a source checkout (``data_samples/<kind>``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["search_dirs", "find"]

_HERE = Path(__file__).resolve().parent


def search_dirs(kind: str) -> list[Path]:
    """Where data of ``kind`` (``"body_models"``, ``"synthetic"``, ``"checkpoints"``; or a real dataset's folder,
    ``"h36m"``, ``"pw3d"``, ``"3dhp"``, ``"coco"``, which only the user provides: :mod:`hybrik_lite.datasets`)
    may live, in order."""
    dirs = []
    if os.environ.get("HYBRIK_LITE_DATA"):
        dirs.append(Path(os.environ["HYBRIK_LITE_DATA"]) / kind)
    return dirs + [_HERE / f"_{kind}", _HERE.parent / "data_samples" / kind]


def find(kind: str, name: str, what: str) -> Path:
    """The first ``<dir>/<name>`` that exists (file or folder); a clear error naming every place tried."""
    for folder in search_dirs(kind):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{what} ({name}) was not found in any of {[str(d) for d in search_dirs(kind)]}; "
                            f"reinstall hybrik-lite or set HYBRIK_LITE_DATA to the data_samples folder of a checkout")
