#!/usr/bin/env bash
# hybrik-lite: set up a virtual environment, then run the tutorial or the tests.
#   ./run.sh tutorial    open notebooks/ in JupyterLab
#   ./run.sh execute     run every notebook headless (writes executed copies to runs/notebooks/)
#   ./run.sh test        run the whole test suite (unit tests + every notebook under nbval)
# Environment: VENV (default .venv), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  python -m pip install -q --upgrade pip
  # torch first, pinned: an unpinned torch would pull a multi-GB CUDA build as a dependency.
  python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[notebooks,dev]"
}

case "${1:-}" in
  tutorial)
    setup
    # JupyterLab refuses to run as root (e.g. in a container) without --allow-root
    if [ "$(id -u)" -eq 0 ]; then set -- --allow-root; else set --; fi
    exec jupyter lab "$@" notebooks/
    ;;
  execute)
    setup
    mkdir -p runs/notebooks
    for nb in notebooks/*.ipynb; do
      echo "== $nb"
      jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
        --output-dir runs/notebooks "$nb"
    done
    ;;
  test)
    setup
    shift
    HYBRIK_LITE_FAST=1 python -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh tutorial | execute | test [pytest args]" >&2
    exit 2
    ;;
esac
