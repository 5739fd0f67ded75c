"""The notebooks' exercise checks can pass and can fail.

nbval runs every notebook as committed (exercises unanswered: their checks are skipped,
visibly). Here each notebook that uses ``tutorial.check_exercise`` runs twice more: with the
reference solutions filled in (every check must pass) and with wrong answers (every check must
reject its answer; a wrong answer that passes raises and fails the run).
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def notebooks_with_exercises():
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        names = [line.split('"')[1] for s in sources for line in s.splitlines()
                 if "tutorial.check_exercise(" in line and '"' in line]
        if names:
            found.append((path, names))
    return found


CASES = notebooks_with_exercises()


def test_some_notebook_has_exercises():
    assert CASES, "no notebook calls tutorial.check_exercise"


def _run(path: Path, mode: str, monkeypatch) -> str:
    monkeypatch.setenv("HYBRIK_LITE_EXERCISES", mode)
    monkeypatch.setenv("HYBRIK_LITE_FAST", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


@pytest.mark.parametrize("mode", ["solutions", "wrong"])
@pytest.mark.parametrize("path,names", CASES, ids=[p.name for p, _ in CASES])
def test_exercise_checks_pass_with_solutions_and_fail_with_wrong_answers(path, names, mode, monkeypatch):
    printed = _run(path, mode, monkeypatch)
    for name in names:
        expected = f"{name}: correct!" if mode == "solutions" else f"{name}: the wrong answer was rejected"
        assert expected in printed, f"{path.name}: {name} did not report {expected!r}"
