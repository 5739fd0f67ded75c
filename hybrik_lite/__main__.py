"""``python -m hybrik_lite <command> [options]``: dispatch only; each command is a ``main(argv) -> int``."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "demo": ("hybrik_lite.demo", "the shipped checkpoint on one image: a figure with joints and mesh"),
    "train": ("hybrik_lite.train", "train the network on synthetic data (resumable; torchrun for several processes)"),
    "eval": ("hybrik_lite.evaluate", "MPJPE, PA-MPJPE, PVE of a checkpoint on the frozen split or a fresh one"),
    "synthetic": ("hybrik_lite.synthetic", "regenerate the frozen synthetic split"),
    "photo": ("hybrik_lite.photo", "a real photo (MediaPipe landmarks, the photo extra) -> our joints, twists, IK, mesh"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = "\n".join(f"  {name:10s} {text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: python -m hybrik_lite <command> [options]\n\ncommands:\n{lines}\n\n"
              f"python -m hybrik_lite <command> --help for its options")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
