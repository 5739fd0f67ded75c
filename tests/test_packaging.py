"""Project hygiene: dependency lists agree, notebooks carry no outputs, the model ships in the wheel."""
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for r in project["optional-dependencies"]["notebooks"]}
    wanted |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    listed = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^\s+-\s+([A-Za-z0-9_.\-]+)", line)
        if m and m.group(1) not in ("pip", "python", "-e"):
            listed.add(CONDA_NAMES.get(m.group(1).lower(), m.group(1).lower()))
    assert wanted == listed, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_torch_requirement_is_a_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if _name(d) == "torch")
    assert "==" not in torch_req and "<" in torch_req and ">=" in torch_req


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{notebook.name}: cells {dirty} hold outputs; clear them (Kernel > Restart & Clear Outputs)"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_follow_the_skeleton(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    text = ["".join(c["source"]) for c in cells]
    assert text[0].startswith("# ") and "colab-badge.svg" in text[0] and notebook.name in text[0]
    assert any("You will learn" in t for t in text[:3])
    setup = [t for t in text if "tutorial.setup(" in t]
    assert len(setup) == 1, "exactly one setup cell"
    assert any(re.search(r"^## 1\.", t, re.M) for t in text), "numbered sections"
    appendix = re.match(r"\d+[a-z]_", notebook.name) is not None     # e.g. 04b_...: checks behind a notebook
    assert appendix or any("xercise" in t for t in text), "exercises"
    assert any("## Summary" in t for t in text), "a summary"
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert sum("assert " in t for t in code) >= 3, "checks against the module"


def test_wheel_carries_the_open_body_model(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("hybrik_lite-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "hybrik_lite/_body_models/open_body_model.npz" in names
    assert "hybrik_lite/_body_models/open_body_model_lowres.npz" in names
    assert any(n.startswith("hybrik_lite/_body_models/LICENSE") for n in names)
    assert "hybrik_lite/body_model.py" in names
    assert "hybrik_lite/_synthetic/frozen_128/annotations.npz" in names
    assert sum(n.startswith("hybrik_lite/_synthetic/frozen_128/images/") for n in names) == 256
    assert "hybrik_lite/solutions/nb05.py" in names
    # a plain (non-editable) install: unpack the wheel elsewhere, run from outside the checkout
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import torch; from hybrik_lite import body_model; "
            "bm = body_model.load(); print(body_model.default_model_path()); "
            "print(tuple(bm(torch.zeros(1, 10), torch.zeros(1, 24, 3)).joints.shape)); "
            "from hybrik_lite import synthetic; print(len(synthetic.load_split()['image']))")
    run = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, capture_output=True, text=True,
                         env={k: v for k, v in __import__("os").environ.items() if k != "HYBRIK_LITE_DATA"})
    assert run.returncode == 0, run.stderr
    path, shape, count = run.stdout.split("\n")[:3]
    assert path.startswith(str(site)) and shape == "(1, 29, 3)" and count == "256"


@pytest.mark.parametrize("checkpoint", ["hybrik_cpu_small", "baseline_cpu_small"])
def test_readme_quotes_the_shipped_checkpoints_evaluation(checkpoint):
    readme = (ROOT / "README.md").read_text()
    for name in ("frozen", "fresh_seed7"):
        result = json.loads((ROOT / "data_samples" / "checkpoints" / f"{checkpoint}.eval_{name}.json").read_text())
        for mode, s in result["modes"].items():
            row = (f"| {mode} | {s['mpjpe_mm']:.1f} | {s['pa_mpjpe_mm']:.1f} | {s['pve_mm']:.1f} | "
                   f"{s['reproj_px']:.2f} |")
            assert row in readme, f"README's table is stale for {name}/{mode}: expected {row}"
