"""The network: a ResNet backbone, 3D heatmaps read out by soft-argmax, parameter heads, and the
HybrIK layer (our analytical IK and the body model) as its last, weight-free layer.

    image (B, 3, S, S) in [0, 1]
      -> ResNet backbone                     features (B, C, S/32, S/32)
      -> deconvolution head + 1x1 conv       heatmap logits (B, 29, D, H, W)
      -> soft_argmax_3d                      uvd (B, 29, 3) in [-0.5, 0.5]
      -> pooled features -> FC, FC           betas (B, 10), phi (B, 23, 2), camera (B, 3) = (s, t_x, t_y)
      -> HybrIKLayer: uvd + camera -> root-relative xyz (m) -> ik.solve(xyz, phi, rest(betas))
                      -> body model -> vertices (B, V, 3), joints (B, 29, 3)

Where a heatmap bin sits (the soft-argmax convention)
----------------------------------------------------
Bin ``k`` of an axis with ``n`` bins covers ``[k/n, (k+1)/n)`` of the crop (or of the depth
range) and sits at its centre, ``(k + 0.5) / n - 0.5``. With ``n = S`` this is exactly pixel
``k``'s centre in :mod:`hybrik_lite.camera` (``u = (k + 0.5) / S - 0.5``), so a heatmap is a
down-sampled image grid. The reachable range is ``[-0.5 + 1/(2n), 0.5 - 1/(2n)]``, symmetric
about the crop centre. (HybrIK's reference uses ``k / n - 0.5``: half a bin up-left, and
``0.5`` is out of reach on one side only.) Depth ``d`` is in units of 2.2 m, so with
``D = 16`` bins a bin is 137.5 mm deep and half a bin is 69 mm.

Gradients
---------
Heatmaps -> uvd -> xyz -> IK. In training the IK runs in ``naive`` mode with its target joints
**detached** (as the reference does): the uvd loss alone trains the heatmaps, and the mesh and
rotation terms reach the network only through ``phi`` and ``betas``. In evaluation the IK runs
in ``adaptive`` mode. Both are set in :class:`ModelConfig` and can be overridden per call.

Everything here is plain PyTorch (no torchvision) and trains from scratch: there are no
pretrained weights to download. Presets: :data:`PRESETS` (``cpu-small``, ``paper``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from . import camera, ik, skeleton
from .twist_swing import unit_cos_sin
from ._checks import check_tensor, config_from_dict

__all__ = [
    "ModelConfig", "PRESETS", "preset", "BatchNorm2d", "ResNet", "HeatmapHead", "ParameterHead", "soft_argmax_3d",
    "bin_centres", "HybrIKLayer", "HybrIKNet", "RegressionBaseline", "rotation_6d_to_matrix", "build",
    "count_parameters", "IMAGENET_MEAN", "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LAYOUTS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
_IK_MODES = ik.MODES


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes the network's architecture (saved in every checkpoint).

    ``init_camera`` starts the camera head at the data's mean ``(s, t_x, t_y)``: our synthetic
    root depths span 3.5-10.9 m (mean ``s = 0.554``, i.e. 7.1 m; HybrIK's 0.9 would mean 4.3 m).
    ``body_resolution`` is the mesh of the HybrIK layer (``"low"`` for cheap training mesh terms).
    """
    kind: str = "hybrik"                 # "hybrik" or "regression" (the direct-regression baseline)
    image_size: int = 128                # square input crop, pixels
    backbone: str = "resnet18"           # "resnet18" or "resnet34"
    width: float = 0.5                   # channel multiplier: 1.0 gives 64-128-256-512
    head_channels: int = 64              # channels of each deconvolution
    heatmap_size: int = 16               # H = W of the heatmaps (S/32 doubled per deconvolution)
    heatmap_depth: int = 16              # D, bins over d in [-0.5, 0.5] (x 2.2 m)
    fc_dim: int = 256                    # width of the two FC layers of the parameter branch
    dropout: float = 0.5
    num_betas: int = 10
    init_camera: tuple = (0.554, 0.0, -0.031)
    body_resolution: str = "low"         # "full" or "low": the open model's mesh in the HybrIK layer
    train_ik_mode: str = "naive"
    eval_ik_mode: str = "adaptive"
    detach_ik_targets: bool = True       # in training (as the reference); never in evaluation

    def __post_init__(self):
        def bad(field, expected):
            raise ValueError(f"ModelConfig.{field}: expected {expected}, got {getattr(self, field)!r}")
        if self.kind not in ("hybrik", "regression"):
            bad("kind", "'hybrik' or 'regression'")
        if self.backbone not in _LAYOUTS:
            bad("backbone", f"one of {list(_LAYOUTS)}")
        if not isinstance(self.image_size, int) or self.image_size < 32 or self.image_size % 32:
            bad("image_size", "a multiple of 32 (the backbone's stride), e.g. 128 or 256")
        if not self.width > 0 or round(64 * self.width) < 4:
            bad("width", "a positive multiplier with at least 4 channels in the first stage (>= 0.0625)")
        feature = self.image_size // 32
        ratio = self.heatmap_size / feature
        if not isinstance(self.heatmap_size, int) or ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            bad("heatmap_size", f"image_size/32 = {feature} times a power of two (one doubling per "
                                f"deconvolution), e.g. {feature * 4}")
        for field in ("heatmap_depth", "head_channels", "fc_dim", "num_betas"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                bad(field, "a positive int")
        if not 0 <= self.dropout < 1:
            bad("dropout", "a probability in [0, 1)")
        if len(self.init_camera) != 3 or not self.init_camera[0] > 0:
            bad("init_camera", "(s, t_x, t_y) with s > 0")
        if self.body_resolution not in ("full", "low"):
            bad("body_resolution", "'full' or 'low'")
        for field in ("train_ik_mode", "eval_ik_mode"):
            if getattr(self, field) not in _IK_MODES:
                bad(field, f"one of {_IK_MODES}")

    @property
    def num_deconv(self) -> int:
        """Deconvolutions in the head: each doubles the feature map from ``S/32`` to ``heatmap_size``."""
        return round(math.log2(self.heatmap_size / (self.image_size // 32)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """The inverse of :meth:`to_dict`; unknown keys are refused with a "did you mean"."""
        return config_from_dict(cls, data)


#: Named presets. ``cpu-small`` trains on 2 CPU cores; ``paper`` is HybrIK's ResNet-34 setup.
PRESETS: dict[str, ModelConfig] = {
    "cpu-small": ModelConfig(),
    "paper": ModelConfig(image_size=256, backbone="resnet34", width=1.0, head_channels=256, heatmap_size=64,
                         heatmap_depth=64, fc_dim=1024, body_resolution="full"),
}


def preset(name: str, **overrides) -> ModelConfig:
    """A preset by name, optionally with fields replaced (``preset("cpu-small", width=0.25)``)."""
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        raise ValueError(f"unknown model preset {name!r}; {'did you mean ' + repr(close[0]) + '? ' if close else ''}"
                         f"presets: {list(PRESETS)}")
    return ModelConfig.from_dict({**PRESETS[name].to_dict(), **overrides})


# ---------------------------------------------------------------------------------------
# Backbone and heads
# ---------------------------------------------------------------------------------------

class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics span every process of a distributed run.

    In one process it is exactly ``nn.BatchNorm2d``. Under ``torch.distributed`` (any backend,
    CPU included; torch's ``SyncBatchNorm`` needs GPUs) the per-channel sums are all-reduced, so
    a batch split across ``W`` processes is normalised as the whole batch would be, and a run's
    results do not depend on its number of processes.
    """

    def forward(self, x):
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        C = x.shape[1]
        xf = x.float()
        count = torch.full((1,), xf.numel() / C, device=x.device)
        stats = all_reduce(torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:C] / n
        var = (stats[C:2 * C] / n - mean * mean).clamp_min(0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_((var * n / (n - 1)).detach(), self.momentum)
        scale = self.weight * torch.rsqrt(var + self.eps)
        return (xf * scale[:, None, None] + (self.bias - mean * scale)[:, None, None]).to(x.dtype)


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34's block)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(cout)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity: stable from scratch
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-18/34 without the classifier: ``(B, 3, S, S) -> (B, C, S/32, S/32)``.

    ``width`` scales every stage's channels (``64, 128, 256, 512`` at 1.0); ``C`` is the last.
    """

    def __init__(self, layout: str = "resnet18", width: float = 1.0):
        super().__init__()
        channels = [max(4, round(c * width)) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 7, 2, 3, bias=False), BatchNorm2d(channels[0]),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], channels[0]
        for stage, (blocks, cout) in enumerate(zip(_LAYOUTS[layout], channels)):
            layers = [_BasicBlock(cin, cout, 1 if stage == 0 else 2)]
            layers += [_BasicBlock(cout, cout, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.stages(self.stem(x))


class HeatmapHead(nn.Module):
    """Deconvolutions (4x4, stride 2, BN, ReLU), then a 1x1 conv to ``J * D`` channels.

    ``(B, C, h, w) -> (B, J, D, h 2^n, w 2^n)`` logits: channel ``j * D + k`` is depth bin ``k`` of joint ``j``.
    """

    def __init__(self, in_channels: int, channels: int, num_deconv: int, depth: int,
                 num_joints: int = skeleton.NUM_JOINTS):
        super().__init__()
        layers, cin = [], in_channels
        for _ in range(num_deconv):
            layers += [nn.ConvTranspose2d(cin, channels, 4, 2, 1, bias=False), BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
            cin = channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(cin, num_joints * depth, 1)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)       # start from uniform volumes: uvd = 0 for every joint
        self.num_joints, self.depth = num_joints, depth

    def forward(self, features):
        x = self.final(self.deconv(features))
        return x.reshape(x.shape[0], self.num_joints, self.depth, x.shape[-2], x.shape[-1])


def bin_centres(num_bins: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Where each of ``num_bins`` heatmap bins sits: ``(k + 0.5) / n - 0.5``, ``(n,)`` in ``(-0.5, 0.5)``."""
    return (torch.arange(num_bins, dtype=dtype, device=device) + 0.5) / num_bins - 0.5


def soft_argmax_3d(logits: torch.Tensor) -> torch.Tensor:
    """Integral regression: ``(B, J, D, H, W)`` logits -> ``(B, J, 3)`` expected (u, v, d).

    A softmax over each joint's whole volume gives a probability ``p(d, v, u)``; the output is
    the expectation of each axis's marginal at the bin centres (:func:`bin_centres`):
    ``u = sum_k p_W(k) ((k + 0.5) / W - 0.5)``, likewise v over H and d over D. Computed in
    float32 at least (under autocast too): the softmax of a large volume needs it.
    """
    if not torch.is_tensor(logits) or logits.dim() != 5:
        got = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(f"logits must be (B, J, D, H, W) heatmap volumes, got {got}")
    check_tensor(logits, "logits", (None, None, None, None))
    B, J, D, H, W = logits.shape
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    prob = torch.softmax(x.reshape(B, J, -1), -1).reshape(B, J, D, H, W)
    u = (prob.sum((2, 3)) * bin_centres(W, x.dtype, x.device)).sum(-1)
    v = (prob.sum((2, 4)) * bin_centres(H, x.dtype, x.device)).sum(-1)
    d = (prob.sum((3, 4)) * bin_centres(D, x.dtype, x.device)).sum(-1)
    return torch.stack([u, v, d], -1)


class ParameterHead(nn.Module):
    """Pooled features ``(B, C)`` -> betas ``(B, 10)``, raw phi ``(B, 23, 2)``, camera ``(B, 3)``.

    Two FC layers (ReLU, dropout), then linear read-outs that start near zero, added to a
    starting point: betas to their mean, phi to ``(1, 0)`` (no twist), camera to ``init_camera``.
    """

    def __init__(self, in_features: int, config: ModelConfig):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(in_features, config.fc_dim), nn.ReLU(inplace=True),
                                   nn.Dropout(config.dropout), nn.Linear(config.fc_dim, config.fc_dim),
                                   nn.ReLU(inplace=True), nn.Dropout(config.dropout))
        self.betas = nn.Linear(config.fc_dim, config.num_betas)
        self.phi = nn.Linear(config.fc_dim, ik.NUM_TWISTS * 2)
        self.camera = nn.Linear(config.fc_dim, 3)
        for layer in (self.betas, self.phi, self.camera):
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
            nn.init.zeros_(layer.bias)
        self.register_buffer("mean_betas", torch.zeros(config.num_betas))
        self.register_buffer("init_phi", torch.tensor([1.0, 0.0]).repeat(ik.NUM_TWISTS))
        self.register_buffer("init_camera", torch.tensor(config.init_camera, dtype=torch.float32))

    def forward(self, pooled):
        x = self.trunk(pooled)
        phi = (self.init_phi + self.phi(x)).reshape(-1, ik.NUM_TWISTS, 2)
        return self.mean_betas + self.betas(x), phi, self.init_camera + self.camera(x)


# ---------------------------------------------------------------------------------------
# The HybrIK layer
# ---------------------------------------------------------------------------------------

class _BodyHolder(nn.Module):
    """Holds a body model *without* registering it: its arrays are data, not weights, so they stay
    out of ``state_dict`` (checkpoints) and DDP's buffer broadcast, but follow ``.to()``."""

    def __init__(self, body):
        super().__init__()
        self.__dict__["body"] = body

    def _apply(self, fn, recurse=True):
        self.body._apply(fn)
        return super()._apply(fn, recurse)


def _load_body(resolution: str):
    from . import body_model

    return body_model.load(resolution=resolution)


class HybrIKLayer(_BodyHolder):
    """uvd + camera + phi + betas -> rotations, joints and mesh. No weights.

    1. ``z_root = 1000 / (256 s)``; every joint is back-projected and the root subtracted
       (:func:`camera.uvd_to_root_relative`): ``joints_xyz (B, 29, 3)``, root-relative, metres
       (HybrIK's ``pred_xyz_29``).
    2. ``rest = body.rest_joints(betas)``; ``rot_mats = ik.solve(joints_xyz, phi, rest, mode)``.
    3. ``body(betas, rot_mats)``: ``vertices (B, V, 3)`` and ``joints (B, 29, 3)`` (after FK:
       HybrIK's ``pred_xyz_29_struct``), both root-relative; ``transl (B, 3)`` puts them in the
       camera frame.

    Runs in float32 (or float64 when given float64), also under autocast. ``mode`` and
    ``detach_targets`` default to the config's training values in ``train()`` and to adaptive,
    not detached, in ``eval()``.
    """

    def __init__(self, config: ModelConfig, body=None):
        super().__init__(body if body is not None else _load_body(config.body_resolution))
        self.config = config
        self.register_buffer("K", camera.intrinsics(config.image_size), persistent=False)

    def forward(self, uvd, phi, betas, camera_params, *, mode: str | None = None,
                detach_targets: bool | None = None) -> dict:
        if mode is None:
            mode = self.config.train_ik_mode if self.training else self.config.eval_ik_mode
        if detach_targets is None:
            detach_targets = self.config.detach_ik_targets and self.training
        device_type = uvd.device.type
        with torch.autocast(device_type, enabled=False):
            dtype = torch.float64 if uvd.dtype == torch.float64 else torch.float32
            uvd, phi, betas, camera_params = (t.to(dtype) for t in (uvd, phi, betas, camera_params))
            root_depth = camera.root_depth_from_scale(camera_params[:, 0])
            K = self.K.to(dtype)
            joints_xyz = camera.uvd_to_root_relative(uvd, K, self.config.image_size, root_depth)
            transl = camera.uvd_to_cam(uvd[:, :1], K, self.config.image_size, root_depth)[:, 0]
            body = self.body
            if body.v_template.dtype != dtype:
                raise ValueError(f"the HybrIK layer's body model is {body.v_template.dtype} but its inputs are "
                                 f"{dtype}; move the model with model.to({dtype})")
            rest = body.rest_joints(betas)
            rot_mats = ik.solve(joints_xyz, phi, rest, mode=mode, detach_targets=detach_targets)
            out = body(betas, rot_mats)
            root = out.joints[:, :1]
        return {"joints_xyz": joints_xyz, "rot_mats": rot_mats, "joints": out.joints - root,
                "vertices": out.vertices - root, "transl": transl, "rest_joints": rest}


# ---------------------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------------------

class _ImageInput(nn.Module):
    """Checks images ``(B, 3, S, S)`` in [0, 1] and normalises them with ImageNet statistics."""

    def __init__(self, image_size: int):
        super().__init__()
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images):
        S = self.image_size
        if not torch.is_tensor(images) or images.dim() != 4 or images.shape[1:] != (3, S, S):
            got = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise ValueError(f"images must be (B, 3, {S}, {S}) RGB crops (the config's image_size), got {got}; "
                             f"resize with torch.nn.functional.interpolate or use a config with "
                             f"image_size={images.shape[-1] if torch.is_tensor(images) else '...'}")
        if not images.is_floating_point():
            raise ValueError(f"images must be float in [0, 1], got {images.dtype}; use images.float() / 255 "
                             f"for uint8 pixels")
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)


class HybrIKNet(nn.Module):
    """HybrIK: backbone -> 3D heatmaps + parameters -> HybrIK layer. See the module docstring.

    ``forward(images)`` with images ``(B, 3, S, S)`` float in [0, 1] returns a dict:

    ==============  ====================  ===============================================
    heatmaps        (B, 29, D, H, W)      logits
    uvd             (B, 29, 3)            soft-argmax of the heatmaps, in [-0.5, 0.5]
    betas           (B, 10)
    phi_raw, phi    (B, 23, 2)            twist (cos, sin) as predicted, and normalised
    camera          (B, 3)                (s, t_x, t_y)
    joints_xyz      (B, 29, 3)            root-relative metres, from the heatmaps
    rot_mats        (B, 24, 3, 3)         from the IK
    joints          (B, 29, 3)            root-relative metres, after FK
    vertices        (B, V, 3)             root-relative metres
    transl          (B, 3)                the root in the camera frame
    ==============  ====================  ===============================================
    """

    def __init__(self, config: ModelConfig = ModelConfig(), body=None):
        super().__init__()
        if config.kind != "hybrik":
            raise ValueError(f"HybrIKNet needs ModelConfig(kind='hybrik'), got kind={config.kind!r}; "
                             f"use model.build(config) to get the right class")
        self.config = config
        self.input = _ImageInput(config.image_size)
        self.backbone = ResNet(config.backbone, config.width)
        self.heatmap_head = HeatmapHead(self.backbone.out_channels, config.head_channels, config.num_deconv,
                                        config.heatmap_depth)
        self.parameter_head = ParameterHead(self.backbone.out_channels, config)
        self.hybrik = HybrIKLayer(config, body)

    def forward(self, images, *, ik_mode: str | None = None, detach_targets: bool | None = None) -> dict:
        features = self.backbone(self.input(images))
        heatmaps = self.heatmap_head(features)
        uvd = soft_argmax_3d(heatmaps)
        betas, phi_raw, camera_params = self.parameter_head(features.mean((2, 3)))
        phi = torch.stack(unit_cos_sin(phi_raw[..., 0].float(), phi_raw[..., 1].float()), -1)
        out = self.hybrik(uvd, phi, betas, camera_params, mode=ik_mode, detach_targets=detach_targets)
        return {"heatmaps": heatmaps, "uvd": uvd, "betas": betas.float(), "phi_raw": phi_raw.float(), "phi": phi,
                "camera": camera_params.float(), **out}


def rotation_6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """The continuous 6D rotation representation (Zhou et al. 2019): ``(..., 6) -> (..., 3, 3)``.

    The two 3-vectors are the first two columns before Gram-Schmidt; the third is their cross product.
    """
    a, b = x[..., :3], x[..., 3:]
    c1 = torch.nn.functional.normalize(a, dim=-1)
    c2 = torch.nn.functional.normalize(b - (c1 * b).sum(-1, keepdim=True) * c1, dim=-1)
    c3 = torch.linalg.cross(c1, c2, dim=-1)
    return torch.stack([c1, c2, c3], -1)


class RegressionBaseline(_BodyHolder):
    """The direct-regression baseline: the same backbone, pooled features -> FC (leaky ReLU) -> 24
    rotations (6D), betas and camera -> body model. No heatmaps, no IK.

    Returns the same keys as :class:`HybrIKNet` where they exist (``uvd`` is the projection of
    the posed joints, so the same losses and metrics apply), without ``heatmaps`` and ``phi``.
    Starts from an upright T-pose facing the camera at ``init_camera``.
    """

    def __init__(self, config: ModelConfig = ModelConfig(kind="regression"), body=None):
        super().__init__(body if body is not None else _load_body(config.body_resolution))
        if config.kind != "regression":
            raise ValueError(f"RegressionBaseline needs ModelConfig(kind='regression'), got kind={config.kind!r}")
        self.config = config
        self.input = _ImageInput(config.image_size)
        self.backbone = ResNet(config.backbone, config.width)
        c = self.backbone.out_channels
        # Leaky: with plain ReLUs, HybrIK's recipe (Adam, lr 1e-3) killed this trunk (after 3,250 steps 0.4%
        # of the first layer's units ever active, the same output for every image), probably pushed below
        # zero by the large gradients that reach it through the body model. HybrIK's head keeps its ReLUs.
        self.trunk = nn.Sequential(nn.Linear(c, config.fc_dim), nn.LeakyReLU(0.1, inplace=True), nn.Dropout(config.dropout),
                                   nn.Linear(config.fc_dim, config.fc_dim), nn.LeakyReLU(0.1, inplace=True),
                                   nn.Dropout(config.dropout))
        self.out = nn.Linear(config.fc_dim, 24 * 6 + config.num_betas + 3)
        nn.init.xavier_uniform_(self.out.weight, gain=0.01)
        nn.init.zeros_(self.out.bias)
        eye6 = torch.eye(3)[:, :2].T.reshape(6)
        root6 = camera.CAMERA_FROM_BODY[:, :2].T.reshape(6)
        self.register_buffer("init", torch.cat([root6, eye6.repeat(23), torch.zeros(config.num_betas),
                                                torch.tensor(config.init_camera, dtype=torch.float32)]))
        self.register_buffer("K", camera.intrinsics(config.image_size), persistent=False)

    def forward(self, images, **_ignored) -> dict:
        cfg = self.config
        features = self.backbone(self.input(images))
        raw = self.init + self.out(self.trunk(features.mean((2, 3))))
        with torch.autocast(images.device.type, enabled=False):
            raw = raw.float() if raw.dtype != torch.float64 else raw
            rot6d = raw[:, :144].reshape(-1, 24, 6)
            rot_mats = rotation_6d_to_matrix(rot6d)
            betas = raw[:, 144:144 + cfg.num_betas]
            camera_params = raw[:, 144 + cfg.num_betas:]
            out = self.body(betas, rot_mats)
            root = out.joints[:, :1]
            joints = out.joints - root
            transl = camera.root_from_camera_params(camera_params)
            uvd = camera.cam_to_uvd(joints + transl[:, None], self.K.to(raw.dtype), cfg.image_size)
        return {"uvd": uvd, "betas": betas, "camera": camera_params, "rot_mats": rot_mats, "joints": joints,
                "joints_xyz": joints, "vertices": out.vertices - root, "transl": transl,
                "rest_joints": out.rest_joints}


def build(config: ModelConfig | str = "cpu-small", body=None) -> nn.Module:
    """The network a config describes (a preset name works too): HybrIKNet or RegressionBaseline."""
    if isinstance(config, str):
        config = preset(config)
    return HybrIKNet(config, body) if config.kind == "hybrik" else RegressionBaseline(config, body)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
