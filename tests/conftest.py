"""Shared fixtures: SMPL-format model files that the tests write themselves."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from hybrik_lite import skeleton


def make_smpl_like_arrays(num_verts: int = 6890, num_betas: int = 10, seed: int = 0) -> dict:
    """A random but well-formed SMPL-format model with nonzero pose correctives.

    Vertices scatter around a T-shaped stick figure so that joints, regressor and weights
    have SMPL's structure: 24 joints, regressor rows summing to 1, weights summing to 1.
    """
    rng = np.random.default_rng(seed)
    joints = np.zeros((24, 3))
    offsets = {1: (0.07, -0.09, 0), 2: (-0.07, -0.09, 0), 3: (0, 0.11, 0), 4: (0.03, -0.38, 0),
               5: (-0.03, -0.38, 0), 6: (0, 0.13, 0), 7: (-0.01, -0.4, -0.04), 8: (0.01, -0.4, -0.04),
               9: (0, 0.05, 0.02), 10: (0.02, -0.06, 0.12), 11: (-0.02, -0.06, 0.12), 12: (0, 0.21, -0.03),
               13: (0.07, 0.11, -0.01), 14: (-0.07, 0.11, -0.01), 15: (0, 0.09, 0.05), 16: (0.12, 0.04, -0.01),
               17: (-0.12, 0.04, -0.01), 18: (0.26, -0.01, -0.02), 19: (-0.26, -0.01, -0.02),
               20: (0.25, 0.01, 0), 21: (-0.25, 0.01, 0), 22: (0.08, -0.01, -0.01), 23: (-0.08, -0.01, -0.01)}
    for j in range(1, 24):
        joints[j] = joints[skeleton.SMPL_PARENTS[j]] + np.array(offsets[j])
    part = rng.integers(0, 24, num_verts)
    v_template = joints[part] + rng.normal(0, 0.04, (num_verts, 3))
    weights = rng.random((num_verts, 24)) ** 8
    weights[np.arange(num_verts), part] += 2.0
    weights /= weights.sum(1, keepdims=True)
    regressor = np.zeros((24, num_verts))
    for j in range(24):
        ids = np.flatnonzero(part == j)[:12]
        regressor[j, ids] = rng.random(len(ids)) + 0.1
    regressor /= regressor.sum(1, keepdims=True)
    kintree = np.stack([np.array(skeleton.SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in SMPL's own files
    return {
        "v_template": v_template.astype(np.float32),
        "shapedirs": (rng.normal(0, 0.01, (num_verts, 3, num_betas))).astype(np.float32),
        "posedirs": (rng.normal(0, 0.003, (num_verts, 3, 207))).astype(np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "f": rng.integers(0, num_verts, (2 * num_verts, 3)).astype(np.int64),
    }


@pytest.fixture(scope="session")
def fake_smpl_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "FAKE_SMPL.npz"
    np.savez(path, **make_smpl_like_arrays())
    return path


@pytest.fixture(scope="session")
def fake_smpl_pkl(tmp_path_factory):
    """A chumpy-free pickle, like the SMPL files that were re-saved without chumpy."""
    path = tmp_path_factory.mktemp("models") / "FAKE_SMPL.pkl"
    with open(path, "wb") as f:
        pickle.dump(make_smpl_like_arrays(seed=1), f, protocol=2)
    return path


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param
