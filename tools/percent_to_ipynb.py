"""Maintainer tool: turn a percent-format script (``# %%`` / ``# %% [markdown]`` cells) into a
notebook without outputs. Handy for writing notebooks in an editor:

    python tools/percent_to_ipynb.py draft.py notebooks/0X_name.ipynb
"""
import argparse
import re
from pathlib import Path

import nbformat


def convert(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    chunks = re.split(r"^# %%(.*)$", text, flags=re.M)
    for header, body in zip(chunks[1::2], chunks[2::2]):
        body = body.strip("\n")
        if "[markdown]" in header:
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines()]
            nb.cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        elif body.strip():
            nb.cells.append(nbformat.v4.new_code_cell(body))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    return nb


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("notebook", type=Path)
    args = parser.parse_args()
    nbformat.write(convert(args.source.read_text()), args.notebook)


if __name__ == "__main__":
    main()
