"""Shared fixtures: SMPL-format model files (the toy model with pose correctives) that the tests write themselves."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from hybrik_lite import body_model


@pytest.fixture(scope="session")
def fake_smpl_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "FAKE_SMPL.npz"
    np.savez(path, **body_model.toy_smpl_arrays())
    return path


@pytest.fixture(scope="session")
def fake_smpl_pkl(tmp_path_factory):
    """A chumpy-free pickle, like the SMPL files that were re-saved without chumpy."""
    path = tmp_path_factory.mktemp("models") / "FAKE_SMPL.pkl"
    with open(path, "wb") as f:
        pickle.dump(body_model.toy_smpl_arrays(seed=1), f, protocol=2)
    return path


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param
