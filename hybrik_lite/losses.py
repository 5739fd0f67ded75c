"""Training losses, weighted by :class:`LossWeights` (HybrIK's ResNet-34 configuration by default).

=============  =====================================================  ======================
term           what                                                   default weight
=============  =====================================================  ======================
uvd            L1 on the soft-argmax uvd, per joint weight (below)    1
betas          MSE on the shape                                       1
twist_raw      MSE on the predicted (cos, sin) before normalising     1 (0.01 in HybrIK R34)
twist_unit     MSE on the normalised (cos, sin)                       0
camera         MSE on (s, t_x, t_y)                                   1
rotation       MSE on the 24 rotation matrices from the IK            0.01
joints         L1 on the 29 root-relative joints after FK (metres)    0
vertices       L1 on the root-relative vertices (metres)              0
=============  =====================================================  ======================

Visibility policy for the uvd term. Every joint whose target lies **inside the heatmap volume**
(``|u|, |v|, |d| < 0.5``) is supervised, visible or hidden behind an occluder alike: learning to
place hidden joints from context is the point of occlusion augmentation, and the reference
does the same. Joints **outside** the volume get weight 0: a soft-argmax cannot reach them, and
an L1 pull towards an unreachable point would only bias the border bins. The raw twist term
keeps its gradient when a pair is near zero; the unit term is scale-free. A dataset can mark
unknown twists (Human3.6M's -999) with ``phi_weight`` ``(B, 23)``.

Real datasets (:mod:`hybrik_lite.datasets`) say what they know with more weights in the batch:
``uvd_weight`` ``(B, 29, 3)`` (per coordinate: COCO has no ``d``; 3DPW no leaves), multiplied
into the volume test and also weighting the ``joints`` term; ``pose_weight`` ``(B,)`` (rotation
and vertices terms), ``betas_weight`` ``(B,)``, ``camera_weight`` ``(B,)``; and a ``camera``
target of their own. A batch without them (synthetic data) is scored exactly as before.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from . import camera
from ._checks import config_from_dict

__all__ = ["LossWeights", "uvd_weights", "uvd_l1", "weighted_mse", "weighted_l1", "targets_from_batch", "hybrik_loss"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (see the module docstring); 0 switches a term off."""
    uvd: float = 1.0
    betas: float = 1.0
    twist_raw: float = 1.0
    twist_unit: float = 0.0
    camera: float = 1.0
    rotation: float = 0.01
    joints: float = 0.0
    vertices: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"LossWeights.{f.name}: expected a number >= 0, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LossWeights":
        return config_from_dict(cls, data)


def uvd_weights(target_uvd: torch.Tensor) -> torch.Tensor:
    """``(B, J, 3) -> (B, J)`` float: 1 where the target lies inside the heatmap volume, else 0."""
    return (target_uvd.abs() < 0.5).all(-1).to(target_uvd.dtype)


def uvd_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted L1, averaged over all ``B * J * 3`` entries (weight-0 joints count as zero):
    ``(B, J, 3), (B, J, 3), (B, J) or (B, J, 3) -> ()``. A plain mean, so the average over the halves of a
    batch split across processes equals the whole batch's value (results do not depend on the
    number of GPUs); the reference divides by the weight sum instead."""
    if pred.shape != target.shape or weight.shape not in (pred.shape[:2], pred.shape):
        raise ValueError(f"expected pred and target (B, J, 3) and weight (B, J) or (B, J, 3), got "
                         f"{tuple(pred.shape)}, {tuple(target.shape)} and {tuple(weight.shape)}")
    weight = weight[..., None] if weight.dim() == 2 else weight
    return ((pred - target).abs() * weight.to(pred.dtype)).mean()


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error; ``weight`` (broadcastable over the leading dims) zeroes entries out."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return _weighted_mean((pred - target) ** 2, weight)


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error; ``weight`` (broadcastable over the leading dims) zeroes entries out."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have one shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return _weighted_mean((pred - target).abs(), weight)


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    w = weight.to(values.dtype)
    while w.dim() < values.dim():
        w = w[..., None]
    w = w.expand_as(values)
    return (values * w).sum() / w.sum().clamp_min(1)


def targets_from_batch(batch: dict, body=None) -> dict:
    """Loss targets from a synthetic (or real) batch: ``uvd``, ``uvd_weight``, ``betas``, ``phi``,
    ``camera`` (``(s, t_x, t_y)`` from the root), ``pose``, root-relative ``joints``; and, given a
    body model, root-relative ``vertices`` of the true pose on that body's mesh."""
    joints_cam = batch["joints_cam"]
    targets = {"uvd": batch["uvd"], "uvd_weight": uvd_weights(batch["uvd"]), "betas": batch["betas"],
               "phi": batch["phi"], "camera": batch["camera"] if "camera" in batch else
               camera.camera_params_from_root(joints_cam[:, 0]),
               "pose": batch["pose"], "joints": joints_cam - joints_cam[:, :1]}
    if "uvd_weight" in batch:                  # real datasets: per coordinate, 0 where not labelled
        targets["joints_weight"] = batch["uvd_weight"][..., 2]
        targets["uvd_weight"] = targets["uvd_weight"][..., None] * batch["uvd_weight"].to(batch["uvd"])
    for key in ("phi_weight", "pose_weight", "betas_weight", "camera_weight"):
        if key in batch:
            targets[key] = batch[key]
    if body is not None:
        with torch.no_grad():
            out = body(batch["betas"].to(body.v_template), batch["pose"].to(body.v_template))
        targets["vertices"] = out.vertices - out.joints[:, :1]
    return targets


#: term -> (the model output it scores, the target it is scored against)
_TERMS = {"uvd": ("uvd", "uvd"), "betas": ("betas", "betas"), "twist_raw": ("phi_raw", "phi"),
          "twist_unit": ("phi", "phi"), "camera": ("camera", "camera"), "rotation": ("rot_mats", "pose"),
          "joints": ("joints", "joints"), "vertices": ("vertices", "vertices")}
#: term -> the optional target weight that masks it (absent: every entry counts)
_WEIGHT_OF = {"betas": "betas_weight", "twist_raw": "phi_weight", "twist_unit": "phi_weight",
              "camera": "camera_weight", "rotation": "pose_weight", "joints": "joints_weight",
              "vertices": "pose_weight"}


def hybrik_loss(out: dict, targets: dict, weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict]:
    """The weighted sum of the active terms, and each term (detached tensors: convert with float() when logging).

    ``out``: a model's output dict; ``targets``: :func:`targets_from_batch`. A term with a
    positive weight whose prediction or target is missing raises (e.g. twist for the regression
    baseline: set its weight to 0).
    """
    terms = {}
    for name, (key, target_key) in _TERMS.items():
        w = getattr(weights, name)
        if w == 0:
            continue
        if key not in out or target_key not in targets:
            raise ValueError(f"loss term {name!r} has weight {w} but the model output has no {key!r} or the "
                             f"targets no {target_key!r}; set LossWeights({name}=0) or provide it")
        pred, target = out[key], targets[target_key].to(out[key])
        weight = targets.get(_WEIGHT_OF.get(name, ""))
        if name == "uvd":
            value = uvd_l1(pred, target, targets["uvd_weight"])
        elif name in ("joints", "vertices"):
            value = weighted_l1(pred, target, weight)
        else:
            value = weighted_mse(pred, target, weight)
        terms[name] = (w, value)
    if not terms:
        raise ValueError("every loss weight is 0: nothing to train")
    total = sum(w * v for w, v in terms.values())
    return total, {name: v.detach() for name, (_, v) in terms.items()}
