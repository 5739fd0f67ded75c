"""Root conftest: the tests (and the notebook kernels nbval starts) run in fast mode."""
import os

os.environ.setdefault("HYBRIK_LITE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
