"""losses.py: the visibility policy, each term against a hand computation, clear errors."""
from __future__ import annotations

import pytest
import torch

from hybrik_lite import camera, losses, synthetic


@pytest.fixture(scope="module")
def batch():
    split = synthetic.load_split()
    return {k: v[:8] for k, v in split.items() if k != "meta"}


def test_uvd_weights_keep_occluded_joints_and_drop_unreachable_ones(batch):
    w = losses.uvd_weights(batch["uvd"])
    inside = (batch["uvd"].abs() < 0.5).all(-1)
    assert torch.equal(w.bool(), inside)
    occluded_but_inside = inside & ~batch["visible"]
    assert (w[occluded_but_inside] == 1).all()
    uvd = torch.zeros(1, 3, 3)
    uvd[0, 1, 0] = 0.6       # outside the crop
    uvd[0, 2, 2] = -0.55     # more than 1.1 m in front of the root
    assert losses.uvd_weights(uvd).tolist() == [[1.0, 0.0, 0.0]]


def test_uvd_l1_by_hand():
    target = torch.zeros(2, 3, 3)
    pred = torch.ones(2, 3, 3) * 0.1
    pred[1, 2] = 5.0                                 # a joint with weight 0 does not count
    weight = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    assert torch.isclose(losses.uvd_l1(pred, target, weight), torch.tensor(0.1 * 5 / 6))
    assert losses.uvd_l1(target, target, weight) == 0


def test_weighted_mse_by_hand():
    pred, target = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]]), torch.zeros(1, 2, 2)
    assert torch.isclose(losses.weighted_mse(pred, target), torch.tensor(10.0 / 4))
    assert torch.isclose(losses.weighted_mse(pred, target, torch.tensor([[1.0, 0.0]])), torch.tensor(0.5))


def test_targets_and_total_loss(batch):
    targets = losses.targets_from_batch(batch)
    assert torch.allclose(camera.root_from_camera_params(targets["camera"]), batch["joints_cam"][:, 0], atol=1e-5)
    assert targets["joints"][:, 0].abs().max() == 0
    perfect = {"uvd": batch["uvd"], "betas": batch["betas"], "phi_raw": batch["phi"] * 3, "phi": batch["phi"],
               "camera": targets["camera"], "rot_mats": batch["pose"], "joints": targets["joints"]}
    weights = losses.LossWeights(twist_raw=0.0, twist_unit=1.0, joints=1.0)
    total, terms = losses.hybrik_loss(perfect, targets, weights)
    assert total.abs() < 1e-12 and set(terms) == {"uvd", "betas", "twist_unit", "camera", "rotation", "joints"}
    off = dict(perfect, betas=batch["betas"] + 0.5)
    total, terms = losses.hybrik_loss(off, targets, weights)
    assert torch.isclose(total, torch.tensor(0.25)) and torch.isclose(terms["betas"], torch.tensor(0.25))
    # the raw twist term sees the scale of the pair, the unit term does not
    _, terms = losses.hybrik_loss(perfect, targets, losses.LossWeights(twist_raw=1.0))
    assert terms["twist_raw"] > 0.5


def test_vertex_targets_need_a_body_and_match_it(batch):
    from hybrik_lite import body_model

    bm = body_model.load(resolution="low")
    targets = losses.targets_from_batch(batch, bm)
    out = bm(batch["betas"], batch["pose"])
    assert torch.allclose(targets["vertices"], out.vertices - out.joints[:, :1])
    _, terms = losses.hybrik_loss({"vertices": targets["vertices"] + 0.01}, targets,
                                  losses.LossWeights(uvd=0, betas=0, twist_raw=0, camera=0, rotation=0, vertices=1))
    assert torch.isclose(terms["vertices"], torch.tensor(0.01))


def test_errors_are_clear(batch):
    targets = losses.targets_from_batch(batch)
    with pytest.raises(ValueError, match="twist_raw.*phi_raw.*LossWeights"):
        losses.hybrik_loss({"uvd": batch["uvd"], "betas": batch["betas"], "camera": targets["camera"],
                            "rot_mats": batch["pose"]}, targets)
    with pytest.raises(ValueError, match="nothing to train"):
        losses.hybrik_loss({}, targets, losses.LossWeights(0, 0, 0, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="did you mean 'twist_raw'"):
        losses.LossWeights.from_dict({"twist_rwa": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        losses.LossWeights(uvd=-1.0)
    assert losses.LossWeights.from_dict(losses.LossWeights().to_dict()) == losses.LossWeights()
