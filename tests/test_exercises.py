"""The notebooks' exercise checks can pass and can fail.

nbval runs every notebook as committed (exercises unanswered: their checks are skipped,
visibly). Here each notebook that uses ``tutorial.check_exercise`` runs twice more: with the
reference solutions filled in (every check must pass) and with wrong answers (every check must
reject its answer; a wrong answer that passes raises and fails the run).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _run(path: Path, mode: str, tmp_path: Path) -> str:
    """Run the notebook under nbval (as the main suite does) with the exercise mode set; return what
    ``tutorial.check_exercise`` logged. (nbclient's NotebookClient was used before: it can block until
    the cell timeout after a cell that shows ipywidgets, jupyter/nbclient#312.)"""
    log = tmp_path / "exercises.log"
    env = dict(os.environ, HYBRIK_LITE_EXERCISES=mode, HYBRIK_LITE_FAST="1", HYBRIK_LITE_EXERCISE_LOG=str(log))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, f"{path.name} with HYBRIK_LITE_EXERCISES={mode} failed:\n{run.stdout[-3000:]}"
    return log.read_text() if log.exists() else ""


@pytest.mark.parametrize("mode", ["solutions", "wrong"])
@pytest.mark.parametrize("path,names", CASES, ids=[p.name for p, _ in CASES])
def test_exercise_checks_pass_with_solutions_and_fail_with_wrong_answers(path, names, mode, tmp_path):
    printed = _run(path, mode, tmp_path)
    for name in names:
        expected = f"{name}: correct!" if mode == "solutions" else f"{name}: the wrong answer was rejected"
        assert expected in printed, f"{path.name}: {name} did not report {expected!r}"
