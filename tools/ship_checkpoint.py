"""Copy a finished training run into data_samples/checkpoints: float16 weights, config, log, command.

    python tools/ship_checkpoint.py runs/cpu-small --name hybrik_cpu_small \
        --command "python -m hybrik_lite train --preset cpu-small" --note "2 CPU cores, 81 min"
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from hybrik_lite import checkpoint

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run folder with last.pt, config.json and metrics.jsonl")
    parser.add_argument("--name", required=True)
    parser.add_argument("--command", required=True, help="the exact command that trained it")
    parser.add_argument("--note", default="", help="hardware and wall time")
    args = parser.parse_args()
    run, out = Path(args.run), ROOT / "data_samples" / "checkpoints"
    dst = checkpoint.export(run / "last.pt", out / f"{args.name}.pt")
    shutil.copy(run / "config.json", out / f"{args.name}.config.json")
    shutil.copy(run / "metrics.jsonl", out / f"{args.name}.metrics.jsonl")
    (out / f"{args.name}.command.txt").write_text(f"{args.command}\n{args.note}\n")
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
