"""Crops and augmentations shared by the synthetic data and the real datasets: small pure functions.

Pixel coordinates are continuous, as everywhere in the package: ``(0, 0)`` is the top-left
corner of the top-left pixel, pixel ``k`` has its centre at ``k + 0.5``. Camera frame: OpenCV
(x right, y down, z forward), metres.

The crop (HybrIK's training targets)
------------------------------------
1. :func:`box_xywh_to_xyxy`: a COCO box ``[x, y, w, h]`` (covering pixel indices ``x .. x + w - 1``)
   clipped to the image, as corners ``(x0, y0, x1, y1)``.
2. :func:`square_box`: its centre and a square side ``max(w, h) * enlarge`` (1.25; 1.0 for
   Human3.6M, whose boxes are already loose), times a scale jitter.
3. :func:`crop_affine`: ``q = s R(theta) (p - centre) + S / 2`` with ``s = S / side``: source pixel
   ``p`` -> crop pixel ``q`` ``(B, 2, 3)``; :func:`apply_affine` maps points, :func:`warp_image`
   resamples the image (bilinear) with the same matrix.
4. :func:`crop_camera`: the crop is a pinhole view too. ``A K = K' R_z`` (an RQ split of the
   2x2 block): ``K'`` is the crop's upper-triangular intrinsics and ``R_z`` a rotation about the
   optical axis, so camera-frame points and the root's orientation turn with ``R_z`` and still
   project onto the mapped 2D joints exactly (``project(R_z X, K') = A project(X, K)``).
5. :func:`flip_sample`: mirror a sample (image, joints, pose, twist, intrinsics, weights).

Augmentation (:class:`AugmentConfig`, defaults from HybrIK's training): scale jitter
``clip(N(1, 0.3), 0.7, 1.3)``; rotation with probability 0.6 from ``N(0, 30 deg)`` clipped to
60; horizontal flip; colour gain ``U(0.8, 1.2)`` per channel; a rectangle of uniform noise
(occlusion). :func:`draw_augmentation` draws them from one generator, in a fixed order.

Flip (:func:`flip_sample`): the image is mirrored about its vertical centre line (``u -> S - u``).
Left and right joints swap (:data:`hybrik_lite.skeleton.FLIP_INDEX`); camera-frame points are
mirrored through the plane ``x = 0`` (``x -> -x``; root-relative, this negates x about the root)
and the intrinsics follow (``c_x -> S - c_x``, skew negated), so the mirrored joints project onto
the mirrored 2D joints. Each local rotation becomes ``D R D`` with ``D = diag(-1, 1, 1)``: the
y and z components of its axis-angle are negated. A twist about the mirrored bone turns the
other way: ``sin(phi)`` is negated (exact when the rest skeleton is left/right symmetric).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import camera, skeleton
from ._checks import check_tensor

__all__ = [
    "AugmentConfig", "H36M_FLIP_INDEX", "box_xywh_to_xyxy", "square_box", "crop_affine", "apply_affine", "warp_image",
    "crop_camera", "mirror_rotations", "flip_twist", "flip_sample", "color_gain", "pixel_centres", "paint_boxes",
    "points_in_boxes", "inside_crop", "noise_boxes", "draw_augmentation", "no_augmentation",
]


#: Mirror index of Human3.6M's 17 joints (:data:`hybrik_lite.skeleton.H36M_JOINT_NAMES`), as
#: :data:`hybrik_lite.skeleton.FLIP_INDEX` is of the 29.
H36M_FLIP_INDEX: tuple[int, ...] = tuple(skeleton.H36M_JOINT_NAMES.index(skeleton._mirror_name(n))
                                         for n in skeleton.H36M_JOINT_NAMES)
#: Mirror index of the 23 twists (joint ``j`` at ``j - 1``).
_TWIST_FLIP_INDEX: tuple[int, ...] = tuple(skeleton.FLIP_INDEX[j] - 1 for j in range(1, skeleton.NUM_SMPL_JOINTS))


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (HybrIK's values; the occluder's size and rate are ours)."""
    scale_sigma: float = 0.3               # box side x clip(N(1, sigma), 1 - sigma, 1 + sigma)
    rotation_probability: float = 0.6
    rotation_sigma_deg: float = 30.0
    rotation_max_deg: float = 60.0
    flip_probability: float = 0.5          # HybrIK: 0.25 on its SMPL datasets (the loaders set it)
    gain_range: tuple = (0.8, 1.2)         # per colour channel
    occlusion_probability: float = 0.5
    occlusion_area: tuple = (0.05, 0.3)    # share of the crop the noise rectangle covers
    occlusion_aspect: tuple = (0.5, 2.0)   # its width / height

    def __post_init__(self):
        probabilities = (self.rotation_probability, self.flip_probability, self.occlusion_probability)
        if not 0 <= self.scale_sigma < 1 or any(not 0 <= p <= 1 for p in probabilities):
            raise ValueError(f"AugmentConfig: scale_sigma in [0, 1) and probabilities in [0, 1] expected, got {self}")


# ---------------------------------------------------------------------------------------
# Boxes and the crop
# ---------------------------------------------------------------------------------------

def box_xywh_to_xyxy(box: torch.Tensor, width, height) -> torch.Tensor:
    """COCO boxes ``(B, 4)`` ``[x, y, w, h]`` -> corners ``(B, 4)`` ``(x0, y0, x1, y1)``, clipped to the image.

    The box covers pixel indices ``x .. x + max(w - 1, 0)`` (inclusive, clipped to ``0 .. width - 1``),
    i.e. the continuous span ``[x0, x1)`` with ``x1 = last index + 1``. ``width``, ``height``: ints or ``(B,)``.
    """
    check_tensor(box, "box", (4,))
    w_lim = torch.as_tensor(width, dtype=box.dtype, device=box.device) - 1
    h_lim = torch.as_tensor(height, dtype=box.dtype, device=box.device) - 1
    x, y, w, h = box.unbind(-1)
    zero = torch.zeros_like(x)
    x0 = torch.minimum(torch.maximum(x, zero), w_lim)
    y0 = torch.minimum(torch.maximum(y, zero), h_lim)
    x1 = torch.minimum(torch.maximum(x + (w - 1).clamp_min(0), zero), w_lim)
    y1 = torch.minimum(torch.maximum(y + (h - 1).clamp_min(0), zero), h_lim)
    return torch.stack([x0, y0, x1 + 1, y1 + 1], -1)


def square_box(xyxy: torch.Tensor, enlarge: float = 1.25, scale: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners ``(B, 4)`` -> centre ``(B, 2)`` and side ``(B,)`` of a square box:
    ``side = max(x1 - x0, y1 - y0) * enlarge * scale`` (``scale`` ``(B,)``, the jitter; default 1)."""
    check_tensor(xyxy, "xyxy", (4,))
    centre = (xyxy[..., :2] + xyxy[..., 2:]) / 2
    side = (xyxy[..., 2:] - xyxy[..., :2]).amax(-1) * enlarge
    return centre, side if scale is None else side * scale


def crop_affine(centre: torch.Tensor, side: torch.Tensor, rotation_deg: torch.Tensor, size: int) -> torch.Tensor:
    """The affine ``(B, 2, 3)`` from source pixels to an ``size``-pixel crop:
    ``q = s R (p - centre) + size / 2``, ``s = size / side``, ``R = [[cos, -sin], [sin, cos]]`` of
    ``rotation_deg`` (positive turns the content clockwise on screen, y pointing down).
    ``centre (B, 2)``, ``side (B,)``, ``rotation_deg (B,)``."""
    check_tensor(centre, "centre", (2,))
    theta = torch.deg2rad(rotation_deg.to(centre))
    s = size / side.to(centre)
    cos, sin = torch.cos(theta) * s, torch.sin(theta) * s
    m = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)       # (B, 2, 2)
    t = size / 2 - (m @ centre[..., None])[..., 0]
    return torch.cat([m, t[..., None]], -1)


def apply_affine(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Points ``(B, N, 2)`` mapped by affines ``(B, 2, 3)``: ``q = M p + t``."""
    check_tensor(points, "points", (None, 2), min_dims=3)
    check_tensor(affine, "affine", (2, 3))
    return points @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]


def pixel_centres(size: int, dtype, device) -> torch.Tensor:
    """Continuous coordinates of the centres of ``size`` pixels ``(size,)``: ``k + 0.5``."""
    return torch.arange(size, dtype=dtype, device=device) + 0.5


def warp_image(images: torch.Tensor, affine: torch.Tensor, size: int) -> torch.Tensor:
    """Resample images ``(B, C, H, W)`` into ``(B, C, size, size)`` crops: crop pixel centre ``q`` takes
    the bilinear value at ``p = M^{-1} (q - t)`` of the source (zero outside it)."""
    check_tensor(images, "images", (None, None, None))
    check_tensor(affine, "affine", (2, 3))
    b, _, h, w = images.shape
    a = affine.double()
    m_inv = torch.linalg.inv(a[:, :, :2])
    c = pixel_centres(size, torch.float64, images.device)
    q = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(1, -1, 2) - a[:, None, :, 2]
    p = q @ m_inv.transpose(1, 2)                                     # (B, size * size, 2) source pixels
    grid = torch.stack([p[..., 0] * (2 / w) - 1, p[..., 1] * (2 / h) - 1], -1).reshape(b, size, size, 2)
    return torch.nn.functional.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros",
                                           align_corners=False)


def crop_camera(K: torch.Tensor, affine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop's pinhole camera: ``A K = K' R_z`` -> ``K' (B, 3, 3)`` (upper triangular, ``K'[1, 1] > 0``)
    and ``R_z (B, 3, 3)``, a rotation about the optical axis (``theta`` of :func:`crop_affine` when
    ``f_x = f_y``). Points of the source camera's frame go to the crop's by ``X' = R_z X``."""
    check_tensor(K, "K", (3, 3))
    check_tensor(affine, "affine", (2, 3))
    m = affine[:, :, :2]
    block = m @ K[:, :2, :2]
    principal = (m @ K[:, :2, 2:])[..., 0] + affine[:, :, 2]
    a, b, c, d = block[:, 0, 0], block[:, 0, 1], block[:, 1, 0], block[:, 1, 1]
    t22 = torch.hypot(c, d)
    sin, cos = c / t22, d / t22
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    k_crop = torch.stack([torch.stack([a * cos - b * sin, a * sin + b * cos, principal[:, 0]], -1),
                          torch.stack([zero, t22, principal[:, 1]], -1),
                          torch.stack([zero, zero, one], -1)], -2)
    r_z = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1),
                       torch.stack([zero, zero, one], -1)], -2)
    return k_crop, r_z


# ---------------------------------------------------------------------------------------
# Flip
# ---------------------------------------------------------------------------------------

def mirror_rotations(rot_mats: torch.Tensor) -> torch.Tensor:
    """``D R D`` with ``D = diag(-1, 1, 1)`` for rotations ``(..., 3, 3)`` (axis-angle ``(x, -y, -z)``);
    joints are not swapped here."""
    sign = torch.tensor([-1.0, 1.0, 1.0], dtype=rot_mats.dtype, device=rot_mats.device)
    return rot_mats * sign[:, None] * sign[None, :]


def flip_twist(phi: torch.Tensor) -> torch.Tensor:
    """Twists ``(B, 23, 2)`` (cos, sin) of a mirrored pose: left/right swapped, ``sin`` negated."""
    check_tensor(phi, "phi", (23, 2))
    return phi[:, list(_TWIST_FLIP_INDEX)] * torch.tensor([1.0, -1.0], dtype=phi.dtype, device=phi.device)


def flip_sample(sample: dict, size: int) -> dict:
    """Mirror a batch of samples ``(B, ...)`` on ``size``-pixel crops (see the module docstring).

    Handles the sample schema's keys (``image``, ``joints_2d``, ``uvd``, ``joints_cam``, ``pose``,
    ``betas``, ``phi``, ``K``, ``visible``, ``mask``) and the real datasets' ``uvd_weight``,
    ``phi_weight``, ``pose_weight``, ``betas_weight``, ``camera_weight`` and ``h36m_joints``; any other
    key raises (it would be left unflipped). Flipping twice gives the sample back.
    """
    flip = list(skeleton.FLIP_INDEX)
    out = {}
    for key, x in sample.items():
        if key in ("image", "mask"):
            out[key] = x.flip(-1)
        elif key == "joints_2d":
            out[key] = torch.stack([size - x[..., 0], x[..., 1]], -1)[:, flip]
        elif key == "uvd":
            out[key] = torch.stack([-x[..., 0], x[..., 1], x[..., 2]], -1)[:, flip]
        elif key in ("joints_cam", "h36m_joints"):
            index = flip if key == "joints_cam" else list(H36M_FLIP_INDEX)
            out[key] = torch.stack([-x[..., 0], x[..., 1], x[..., 2]], -1)[:, index]
        elif key == "pose":
            out[key] = mirror_rotations(x)[:, flip[:skeleton.NUM_SMPL_JOINTS]]
        elif key == "phi":
            out[key] = flip_twist(x)
        elif key == "phi_weight":
            out[key] = x[:, list(_TWIST_FLIP_INDEX)]
        elif key in ("visible", "uvd_weight"):
            out[key] = x[:, flip]
        elif key == "K":
            row0 = torch.stack([x[:, 0, 0], -x[:, 0, 1], size - x[:, 0, 2]], -1)
            out[key] = torch.cat([row0[:, None], x[:, 1:]], 1)
        elif key in ("betas", "pose_weight", "betas_weight", "camera_weight"):
            out[key] = x
        else:
            raise ValueError(f"flip_sample does not know how to mirror {key!r}; expected the sample schema's keys "
                             f"(image, joints_2d, uvd, joints_cam, pose, betas, phi, K, visible and the weights)")
    return out


# ---------------------------------------------------------------------------------------
# Colour and occlusion
# ---------------------------------------------------------------------------------------

def color_gain(images: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` in [0, 1] times a per-channel gain ``(B, 3)``, clipped to [0, 1]."""
    return (images * gain[:, :, None, None].to(images)).clamp(0, 1)


def paint_boxes(images: torch.Tensor, boxes: torch.Tensor, active: torch.Tensor, fills: torch.Tensor) -> torch.Tensor:
    """Paint active boxes over images ``(B, C, S, S)``; boxes ``(B, K, 4)`` (u0, v0, u1, v1) pixels cover
    the pixels whose centres they contain. ``fills``: flat colours ``(B, K, C)`` or textures
    ``(B, K, C, S, S)`` (e.g. uniform noise); ``active (B, K)`` bool."""
    size = images.shape[-1]
    c = pixel_centres(size, images.dtype, images.device)
    out = images
    for k in range(boxes.shape[1]):
        b = boxes[:, k].to(images)
        inside = ((c[None, None, :] >= b[:, 0, None, None]) & (c[None, None, :] < b[:, 2, None, None])
                  & (c[None, :, None] >= b[:, 1, None, None]) & (c[None, :, None] < b[:, 3, None, None]))
        inside = inside & active[:, k, None, None].to(images.device)
        fill = fills[:, k, :, None, None] if fills.dim() == 3 else fills[:, k]
        out = torch.where(inside[:, None], fill.to(images), out)
    return out


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """``(B, N, 2)`` pixels inside any active box ``(B, K, 4)`` -> ``(B, N)`` bool."""
    u, v = points[..., 0, None], points[..., 1, None]
    b = boxes[:, None].to(points)
    inside = (u >= b[..., 0]) & (u < b[..., 2]) & (v >= b[..., 1]) & (v < b[..., 3]) & active[:, None].to(points.device)
    return inside.any(-1)


def inside_crop(points: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, N, 2)`` pixels -> ``(B, N)`` bool: inside the ``size``-pixel crop."""
    return ((points >= 0) & (points < size)).all(-1)


def noise_boxes(num: int, size: int, generator: torch.Generator, config: AugmentConfig = AugmentConfig(),
                dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One noise rectangle per sample: ``boxes (num, 1, 4)`` pixels inside the crop, ``active (num, 1)``
    (with ``config.occlusion_probability``), ``textures (num, 1, 3, size, size)`` of uniform noise."""
    active = torch.rand(num, 1, generator=generator) < config.occlusion_probability
    area = (config.occlusion_area[0] + torch.rand(num, generator=generator, dtype=torch.float64)
            * (config.occlusion_area[1] - config.occlusion_area[0])) * size * size
    aspect = config.occlusion_aspect[0] + torch.rand(num, generator=generator, dtype=torch.float64) \
        * (config.occlusion_aspect[1] - config.occlusion_aspect[0])
    wh = torch.stack([(area * aspect).sqrt(), (area / aspect).sqrt()], -1).clamp(max=size)
    corner = torch.rand(num, 2, generator=generator, dtype=torch.float64) * (size - wh)
    boxes = torch.cat([corner, corner + wh], -1)[:, None]
    textures = torch.rand(num, 1, 3, size, size, generator=generator, dtype=dtype)
    return boxes.to(dtype), active, textures


# ---------------------------------------------------------------------------------------
# One sample's random augmentation
# ---------------------------------------------------------------------------------------

def draw_augmentation(generator: torch.Generator, size: int, config: AugmentConfig = AugmentConfig()) -> dict:
    """The random draws of one sample, in a fixed order: ``scale ()``, ``rotation_deg ()``, ``flip ()``
    bool, ``gain (3,)``, and :func:`noise_boxes`' ``boxes (1, 4)``, ``active (1,)``, ``textures (1, 3, S, S)``."""
    sigma = config.scale_sigma
    scale = (torch.randn((), generator=generator, dtype=torch.float64) * sigma + 1).clamp(1 - sigma, 1 + sigma)
    rotate = torch.rand((), generator=generator) < config.rotation_probability
    angle = (torch.randn((), generator=generator, dtype=torch.float64) * config.rotation_sigma_deg).clamp(
        -config.rotation_max_deg, config.rotation_max_deg)
    flip = torch.rand((), generator=generator) < config.flip_probability
    low, high = config.gain_range
    gain = low + torch.rand(3, generator=generator, dtype=torch.float64) * (high - low)
    boxes, active, textures = noise_boxes(1, size, generator, config)
    return {"scale": scale, "rotation_deg": torch.where(rotate, angle, torch.zeros_like(angle)), "flip": flip,
            "gain": gain, "boxes": boxes[0], "active": active[0], "textures": textures[0]}


def no_augmentation() -> dict:
    """:func:`draw_augmentation`'s keys for an unaugmented sample (evaluation)."""
    f64 = torch.float64
    return {"scale": torch.ones((), dtype=f64), "rotation_deg": torch.zeros((), dtype=f64),
            "flip": torch.zeros((), dtype=torch.bool), "gain": torch.ones(3, dtype=f64),
            "boxes": torch.zeros(1, 4), "active": torch.zeros(1, dtype=torch.bool),
            "textures": torch.zeros(1, 3, 1, 1)}

