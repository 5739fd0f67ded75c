"""Synthetic training data: poses a body can do, shapes, cameras, backgrounds, rendered images.

Every sample ``i`` of a dataset with seed ``s`` is a pure function of ``(s, i)``: the same
random draws on any machine, in any DataLoader worker, on CPU or GPU. The same call gives
bit-identical results; rendering a sample in another batch (or on another device) changes
only float rounding, which can flip a handful of pixels on triangle edges (about 0.01%).

Ground truth per sample (``S`` = crop size in pixels):

===============  =================  ==============================================================
key              shape              meaning
===============  =================  ==============================================================
image            (3, S, S) float    RGB in [0, 1]
joints_2d        (29, 2)            pixel coordinates (u right, v down; pixel centres at +0.5)
uvd              (29, 3)            HybrIK's target: u, v = pixel / S - 0.5; d = (z - z_root) / 2.2 m
joints_cam       (29, 3)            camera frame (OpenCV: x right, y down, z forward), metres
pose             (24, 3, 3)         local rotations; the root's is the camera-frame orientation
betas            (10,)              shape
phi              (23, 2)            twist (cos, sin) of joints 1..23 (``ik.twist_from_pose``)
K                (3, 3)             intrinsics
visible          (29,) bool         inside the crop and not under an occluding box
===============  =================  ==============================================================

Joint limits are Euler angles in degrees, ``R = Rz(z) @ Ry(y) @ Rx(x)`` in each joint's
local frame (the T-pose frame: x to the body's left, y up, z forward). Right-side limits
are the mirror images of the left ones (x kept, y and z negated and swapped).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from . import camera, ik, render, skeleton
from .transforms import inside_crop, paint_boxes, points_in_boxes  # shared with the real datasets
from .kinematics import rodrigues

__all__ = [
    "JOINT_LIMITS_DEG", "CANONICAL_POSES_DEG",
    "euler_to_matrix", "joint_limits", "canonical_euler", "sample_euler", "sample_global_orientation",
    "sample_pose", "frame_person", "vertex_regions", "sample_region_colors",
    "sample_backgrounds", "sample_occluders", "paint_boxes", "points_in_boxes", "SyntheticConfig",
    "sample_generator", "sample_parameters", "render_samples", "SyntheticDataset", "ANNOTATION_KEYS",
    "default_split_path", "save_split", "load_split",
]

# ---------------------------------------------------------------------------------------
# 1. Poses a body can do
# ---------------------------------------------------------------------------------------

#: (x, y, z) Euler limits in degrees, for the midline joints and the LEFT side; the right
#: side is mirrored. Sign guide in the T-pose frame (body faces +z, left at +x, y up):
#: hip x < 0 swings the leg forward; knee x > 0 bends it; spine/neck x > 0 bends forward;
#: left shoulder z > 0 raises the arm, y < 0 brings it forward; left elbow y < 0 bends it.
JOINT_LIMITS_DEG: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "pelvis": ((0, 0), (0, 0), (0, 0)),           # the root: set by the global orientation
    "left_hip": ((-120, 35), (-40, 40), (-25, 50)),
    "spine1": ((-20, 45), (-25, 25), (-20, 20)),
    "left_knee": ((0, 150), (-5, 5), (-5, 5)),
    "spine2": ((-15, 30), (-20, 20), (-15, 15)),
    "left_ankle": ((-35, 45), (-20, 20), (-20, 20)),
    "spine3": ((-15, 30), (-20, 20), (-15, 15)),
    "left_foot": ((-25, 25), (-5, 5), (-5, 5)),
    "neck": ((-35, 45), (-45, 45), (-25, 25)),
    "left_collar": ((-10, 10), (-15, 15), (-10, 30)),
    "head": ((-30, 35), (-45, 45), (-20, 20)),
    "left_shoulder": ((-70, 70), (-100, 40), (-90, 80)),
    "left_elbow": ((-80, 80), (-145, 0), (-5, 5)),
    "left_wrist": ((-30, 30), (-35, 35), (-70, 70)),
    "left_hand": ((-10, 10), (-10, 10), (-15, 15)),
}

#: Canonical poses as Euler angles in degrees (left side; right side mirrored unless given).
CANONICAL_POSES_DEG: dict[str, dict[str, tuple[float, float, float]]] = {
    "t_pose": {},
    "standing": {"left_shoulder": (0, 0, -75), "right_shoulder": (0, 0, 75),
                 "left_elbow": (0, -10, 0), "right_elbow": (0, 10, 0)},
    "walking": {"left_hip": (-25, 0, 0), "right_hip": (20, 0, 0), "right_knee": (35, 0, 0), "left_knee": (10, 0, 0),
                "left_shoulder": (0, 20, -75), "right_shoulder": (0, 20, 75),
                "left_elbow": (0, -25, 0), "right_elbow": (0, 25, 0)},
    "sitting": {"left_hip": (-90, 0, 8), "right_hip": (-90, 0, -8), "left_knee": (90, 0, 0), "right_knee": (90, 0, 0),
                "left_shoulder": (0, -30, -65), "right_shoulder": (0, 30, 65),
                "left_elbow": (0, -60, 0), "right_elbow": (0, 60, 0)},
    "reaching": {"left_shoulder": (0, -70, 30), "right_shoulder": (0, 0, 70),
                 "left_elbow": (0, -10, 0), "spine1": (15, 10, 0), "spine2": (10, 0, 0),
                 "left_hip": (-10, 0, 0)},
    "crouching": {"left_hip": (-110, 0, 15), "right_hip": (-110, 0, -15), "left_knee": (130, 0, 0),
                  "right_knee": (130, 0, 0), "left_ankle": (30, 0, 0), "right_ankle": (30, 0, 0),
                  "spine1": (25, 0, 0), "spine2": (10, 0, 0), "left_shoulder": (0, -40, -50),
                  "right_shoulder": (0, 40, 50), "left_elbow": (0, -70, 0), "right_elbow": (0, 70, 0)},
}


def _mirror_limits(lim):
    (x0, x1), (y0, y1), (z0, z1) = lim
    return (x0, x1), (-y1, -y0), (-z1, -z0)


def joint_limits(dtype=torch.float32, device=None) -> torch.Tensor:
    """The limits of the 24 joints as a tensor ``(24, 3, 2)`` of (min, max) in radians."""
    rows = []
    for name in skeleton.SMPL_JOINT_NAMES:
        if name.startswith("right_"):
            rows.append(_mirror_limits(JOINT_LIMITS_DEG["left_" + name[len("right_"):]]))
        else:
            rows.append(JOINT_LIMITS_DEG[name])
    return torch.tensor(rows, dtype=dtype, device=device) * (math.pi / 180)


def canonical_euler(name: str, dtype=torch.float32, device=None) -> torch.Tensor:
    """A canonical pose as Euler angles ``(24, 3)`` in radians (mirrored where not given)."""
    if name not in CANONICAL_POSES_DEG:
        raise ValueError(f"unknown canonical pose {name!r}; expected one of {list(CANONICAL_POSES_DEG)}")
    spec = CANONICAL_POSES_DEG[name]
    euler = torch.zeros(24, 3, dtype=dtype, device=device)
    for j, joint in enumerate(skeleton.SMPL_JOINT_NAMES):
        if joint in spec:
            euler[j] = torch.tensor(spec[joint], dtype=dtype, device=device)
        elif joint.startswith("right_") and "left_" + joint[6:] in spec:
            x, y, z = spec["left_" + joint[6:]]
            euler[j] = torch.tensor((x, -y, -z), dtype=dtype, device=device)
    return euler * (math.pi / 180)


def euler_to_matrix(euler: torch.Tensor) -> torch.Tensor:
    """``R = Rz(z) @ Ry(y) @ Rx(x)``. ``(..., 3)`` radians -> ``(..., 3, 3)``."""
    axes = torch.eye(3, dtype=euler.dtype, device=euler.device)
    rx, ry, rz = (rodrigues(euler[..., k, None] * axes[k]) for k in range(3))
    return rz @ ry @ rx


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[torch.Tensor, torch.Tensor]:
    """Joint limits ``(24, 3, 2)`` and canonical poses ``(C, 24, 3)``, float64 radians (cached)."""
    return joint_limits(torch.float64), torch.stack([canonical_euler(n, torch.float64) for n in CANONICAL_POSES_DEG])


def sample_euler(num: int, generator: torch.Generator, *, noise_deg: float = 15.0,
                 canonical_share: float = 0.7, dtype=torch.float32) -> torch.Tensor:
    """Body poses (without the root) as Euler angles ``(num, 24, 3)`` inside the joint limits.

    A share ``canonical_share`` starts from a random canonical pose plus Gaussian noise of
    ``noise_deg``; the rest are uniform inside the limits shrunk to their middle 40%.
    Angles past a limit are reflected back inside (clamping would pile them up exactly on
    the limit, e.g. many perfectly straight knees). The root (index 0) is zero.
    """
    limits, canon = _tables()
    low, high = limits[..., 0], limits[..., 1]
    choice = torch.randint(len(canon), (num,), generator=generator)
    noise = torch.randn(num, 24, 3, generator=generator, dtype=torch.float64) * math.radians(noise_deg)
    from_canon = canon[choice] + noise
    middle, half = (low + high) / 2, (high - low) / 2 * 0.4
    uniform = middle + (torch.rand(num, 24, 3, generator=generator, dtype=torch.float64) * 2 - 1) * half
    use_canon = torch.rand(num, generator=generator) < canonical_share
    euler = torch.where(use_canon[:, None, None], from_canon, uniform)
    return reflect_into(euler, low, high).to(dtype)


def reflect_into(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Fold ``x`` into ``[low, high]`` by reflecting at the bounds (a zero-width range gives ``low``)."""
    width = high - low
    period = torch.where(width > 0, 2 * width, torch.ones_like(width))
    y = torch.remainder(x - low, period)
    y = torch.where(y > width, period - y, y)
    return torch.where(width > 0, low + y, low)


def _orientation_angles(num: int, generator: torch.Generator, max_pitch_deg: float = 15.0,
                        max_roll_deg: float = 10.0) -> torch.Tensor:
    """The random draws of :func:`sample_global_orientation`: ``(num, 3)`` float64 (yaw, pitch, roll)."""
    yaw = torch.rand(num, generator=generator, dtype=torch.float64) * 2 * math.pi
    pitch = (torch.rand(num, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_pitch_deg)
    roll = (torch.rand(num, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(max_roll_deg)
    return torch.stack([yaw, pitch, roll], -1)


def _orientation_from_angles(angles: torch.Tensor) -> torch.Tensor:
    """``(num, 3)`` (yaw, pitch, roll) -> ``(num, 3, 3)`` float64, as :func:`sample_global_orientation`."""
    yaw, pitch, roll = angles.unbind(-1)
    zero = torch.zeros_like(yaw)
    r_yaw = rodrigues(torch.stack([zero, yaw, zero], -1))
    r_pitch = rodrigues(torch.stack([pitch, zero, zero], -1))
    r_roll = rodrigues(torch.stack([zero, zero, roll], -1))
    return camera.CAMERA_FROM_BODY.double() @ r_pitch @ r_roll @ r_yaw


def sample_global_orientation(num: int, generator: torch.Generator, *, max_pitch_deg: float = 15.0,
                              max_roll_deg: float = 10.0, dtype=torch.float32) -> torch.Tensor:
    """Camera-frame root rotations ``(num, 3, 3)``: any heading (front, side and back views)
    with a little pitch and roll. ``R = camera.CAMERA_FROM_BODY @ Rx(pitch) @ Rz(roll) @ Ry(yaw)``."""
    return _orientation_from_angles(_orientation_angles(num, generator, max_pitch_deg, max_roll_deg)).to(dtype)


def _pose_from_draws(euler: torch.Tensor, orientation_angles: torch.Tensor) -> torch.Tensor:
    """Body Euler angles ``(num, 24, 3)`` and root (yaw, pitch, roll) ``(num, 3)`` -> ``(num, 24, 3, 3)``."""
    rot = euler_to_matrix(euler)
    rot[:, 0] = _orientation_from_angles(orientation_angles)
    return rot


def sample_pose(num: int, generator: torch.Generator, dtype=torch.float32, **kwargs) -> torch.Tensor:
    """Full poses ``(num, 24, 3, 3)``: camera-frame root orientation + body joints within limits."""
    euler = sample_euler(num, generator, dtype=torch.float64, **kwargs)
    return _pose_from_draws(euler, _orientation_angles(num, generator)).to(dtype)


# ---------------------------------------------------------------------------------------
# 2. Camera, appearance, background, occluders
# ---------------------------------------------------------------------------------------

def _extent(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample bounding box ``(B, N, C) -> (B, C), (B, C)`` (min, max). Reduced over a contiguous
    ``(B, C, N)`` copy: exactly ``amin(1)``/``amax(1)``, several times faster on a CPU."""
    flat = points.transpose(1, 2).contiguous()
    return flat.amin(-1), flat.amax(-1)


def frame_person(vertices: torch.Tensor, root: torch.Tensor, K: torch.Tensor, image_size: int,
                 fill: torch.Tensor, shift: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """Where to put the root so the person fills a square crop, like HybrIK's person crops.

    Args:
        vertices: ``(B, V, 3)`` posed vertices (camera orientation, any position).
        root: ``(B, 3)`` the posed root joint of those vertices.
        K: ``(3, 3)`` intrinsics; ``fill``: ``(B,)`` share of the crop the larger side of the
            person's 2D box should take; ``shift``: ``(B, 2)`` offset of the box centre from the
            image centre, as a share of the crop.

    Returns:
        ``(B, 3)`` root position in the camera frame. A few fixed-point iterations correct for
        perspective (near parts look bigger).
    """
    rel = vertices - root[:, None]
    f, c = K[0, 0], K[0, 2]
    lo, hi = _extent(rel[..., :2])
    half = (hi - lo).amax(-1) / 2
    z = f * half / (fill * image_size / 2)
    xy = -(hi + lo) / 2
    for _ in range(iterations):
        uv = camera.project(rel + torch.cat([xy, z[:, None]], -1)[:, None], K)
        lo, hi = _extent(uv)
        size = (hi - lo).amax(-1)
        z = z * size / (fill * image_size)
        target_centre = c + shift * image_size
        xy = xy - ((lo + hi) / 2 - target_centre) * z[:, None] / f
    return torch.cat([xy, z[:, None]], -1)


#: Regions of the body for colouring, by the SMPL part with the largest skinning weight.
_REGION_OF_PART = {  # 0 skin, 1 top, 2 bottom, 3 shoes
    **{j: 1 for j in (3, 6, 9, 13, 14, 16, 17, 18, 19)}, **{j: 2 for j in (0, 1, 2, 4, 5)},
    **{j: 3 for j in (7, 8, 10, 11)}, **{j: 0 for j in (12, 15, 20, 21, 22, 23)},
}


def vertex_regions(lbs_weights: torch.Tensor) -> torch.Tensor:
    """Region of each vertex ``(V,)``: 0 skin, 1 top, 2 bottom, 3 shoes."""
    table = torch.tensor([_REGION_OF_PART[j] for j in range(24)], device=lbs_weights.device)
    return table[lbs_weights.argmax(1)]


def sample_region_colors(num: int, generator: torch.Generator) -> torch.Tensor:
    """Colours ``(num, 4, 3)`` of skin, top, bottom and shoes."""
    skin_tones = torch.tensor([[0.96, 0.80, 0.69], [0.87, 0.67, 0.53], [0.72, 0.51, 0.36],
                               [0.55, 0.37, 0.25], [0.36, 0.24, 0.16]], dtype=torch.float64)
    skin = skin_tones[torch.randint(len(skin_tones), (num,), generator=generator)]
    clothes = torch.rand(num, 3, 3, generator=generator, dtype=torch.float64) * 0.85 + 0.1
    return torch.cat([skin[:, None], clothes], 1)


def sample_backgrounds(num: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Backgrounds ``(num, 3, size, size)`` in [0, 1]: flat colours, gradients and noise textures."""
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    out = []
    for _ in range(num):
        kind = int(torch.randint(3, (1,), generator=generator))
        c0 = torch.rand(3, 1, 1, generator=generator)
        if kind == 0:                                   # a flat colour
            out.append(c0.expand(3, size, size))
        elif kind == 1:                                 # a linear gradient between two colours
            c1 = torch.rand(3, 1, 1, generator=generator)
            angle = float(torch.rand(1, generator=generator)) * 2 * math.pi
            ramp = math.cos(angle) * grid[None, :] + math.sin(angle) * grid[:, None]
            ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
            out.append(c0 + (c1 - c0) * ramp)
        else:                                           # smooth colour blobs plus fine noise
            coarse = torch.rand(1, 3, 6, 6, generator=generator) * 0.7 + 0.3 * c0[None]
            texture = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
            out.append(texture + 0.06 * torch.randn(3, size, size, generator=generator))
    return torch.stack(out).clamp(0, 1)


def sample_occluders(num: int, size: int, generator: torch.Generator, probability: float, max_boxes: int = 2
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Occluding boxes: ``boxes (num, max_boxes, 4)`` as (u0, v0, u1, v1) pixels, ``active (num, max_boxes)``
    bool, ``colors (num, max_boxes, 3)``."""
    centre = torch.rand(num, max_boxes, 2, generator=generator, dtype=torch.float64) * 0.7 + 0.15
    half = (torch.rand(num, max_boxes, 2, generator=generator, dtype=torch.float64) * 0.15 + 0.07)
    boxes = torch.cat([centre - half, centre + half], -1).clamp(0, 1) * size
    count = torch.randint(1, max_boxes + 1, (num,), generator=generator)
    active = (torch.rand(num, generator=generator) < probability)[:, None] & (torch.arange(max_boxes)[None] < count[:, None])
    colors = torch.rand(num, max_boxes, 3, generator=generator, dtype=torch.float64)
    return boxes, active, colors


# ---------------------------------------------------------------------------------------
# 3. Samples: parameters from (seed, index), then one batched render
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticConfig:
    """What the generator varies, and by how much."""
    image_size: int = 128
    occlusion_probability: float = 0.3
    canonical_share: float = 0.7
    pose_noise_deg: float = 15.0
    fill_range: tuple[float, float] = (0.65, 0.9)
    max_shift: float = 0.05
    resolution: str = "full"


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The random stream of sample ``index`` of dataset ``seed`` (independent of batch and worker)."""
    if not (0 <= seed < 2 ** 31 and 0 <= index < 2 ** 31):
        raise ValueError(f"seed and index must be in [0, 2**31), got seed={seed}, index={index}")
    return torch.Generator().manual_seed(seed * 2 ** 31 + index)


def sample_parameters(seed: int, indices, config: SyntheticConfig = SyntheticConfig()) -> dict:
    """Everything random about samples ``indices``, drawn per sample from its own stream (CPU, float64).

    The Python loop over samples is deliberate: each sample has its own generator, which is
    what makes sample ``i`` independent of the batch and worker it lands in. The draws are
    small (about 1 ms per sample); the heavy work (posing, rendering) is batched afterwards.
    """
    rows = []
    S = config.image_size
    for index in indices:
        g = sample_generator(seed, int(index))
        boxes, active, box_colors = sample_occluders(1, S, g, config.occlusion_probability)
        light = torch.tensor([0.0, -0.3, -1.0], dtype=torch.float64) + \
            (torch.rand(3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor([1.2, 0.8, 0.4], dtype=torch.float64)
        rows.append({
            "betas": torch.randn(1, 10, generator=g, dtype=torch.float64),
            # the pose's draws here, in sample_pose's order; the matrices below, for the whole batch
            "euler": sample_euler(1, g, dtype=torch.float64, noise_deg=config.pose_noise_deg,
                                  canonical_share=config.canonical_share),
            "orientation": _orientation_angles(1, g),
            "fill": config.fill_range[0] + torch.rand(1, generator=g, dtype=torch.float64)
            * (config.fill_range[1] - config.fill_range[0]),
            "shift": (torch.rand(1, 2, generator=g, dtype=torch.float64) * 2 - 1) * config.max_shift,
            "region_colors": sample_region_colors(1, g),
            "light_dir": light[None] / light.norm(),
            "brightness": 0.75 + 0.4 * torch.rand(1, generator=g, dtype=torch.float64),
            "background": sample_backgrounds(1, S, g),
            "boxes": boxes, "box_active": active, "box_colors": box_colors,
        })
    params = {k: torch.cat([r[k] for r in rows]) for k in rows[0]}
    params["pose"] = _pose_from_draws(params.pop("euler"), params.pop("orientation"))
    return params


def render_samples(bm, params: dict, config: SyntheticConfig = SyntheticConfig()) -> dict:
    """Pose, frame, render and annotate a batch of samples (on ``bm``'s device and dtype).

    Returns the ground-truth dict described in the module docstring, batched.
    """
    dtype, device = bm.v_template.dtype, bm.v_template.device
    p = {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) for k, v in params.items()}
    S = config.image_size
    K = camera.intrinsics(S, dtype, device)
    with torch.no_grad():
        out = bm(p["betas"], p["pose"])
        root = out.joints[:, 0]
        root_cam = frame_person(out.vertices, root, K, S, p["fill"], p["shift"])
        offset = (root_cam - root)[:, None]
        vertices, joints = out.vertices + offset, out.joints + offset
        regions = vertex_regions(bm.lbs_weights)
        colors = (p["region_colors"][:, regions] * p["brightness"][:, None, None]).clamp(0, 1)  # (B, V, 3)
        rendered = render.render(vertices, bm.faces, K, (S, S), vertex_colors=colors, light_dir=p["light_dir"],
                                 ambient=0.35, diffuse=0.65, background=p["background"], flat=True)
        image = paint_boxes(rendered.image, p["boxes"], p["box_active"], p["box_colors"])
        joints_2d = camera.project(joints, K)
        in_crop = inside_crop(joints_2d, S)
        occluded = points_in_boxes(joints_2d, p["boxes"], p["box_active"])
        uvd = camera.cam_to_uvd(joints, K, S)
        phi = ik.twist_from_pose(p["pose"], out.rest_joints)
    return {
        "image": image.clamp(0, 1), "joints_2d": joints_2d, "uvd": uvd, "joints_cam": joints,
        "pose": p["pose"], "betas": p["betas"], "phi": phi, "K": K.repeat(len(image), 1, 1),
        "visible": in_crop & ~occluded, "mask": rendered.mask,
    }


# ---------------------------------------------------------------------------------------
# 4. The dataset
# ---------------------------------------------------------------------------------------

class SyntheticDataset(torch.utils.data.Dataset):
    """``length`` rendered samples; sample ``i`` is a pure function of ``(seed, i)``.

    Args:
        length: number of samples.
        seed: the dataset's seed.
        config: what to vary (:class:`SyntheticConfig`).
        device: where to pose and render (``"cuda"`` renders on the GPU; then use
            ``num_workers=0``). Samples come back on this device.

    Use :meth:`batch` to render many samples in one go (much faster than one by one), or a
    ``DataLoader`` with ``worker_init_fn=SyntheticDataset.worker_init`` (one torch thread per
    worker). The body model is loaded lazily in each process.
    """

    def __init__(self, length: int, seed: int = 0, config: SyntheticConfig = SyntheticConfig(),
                 device: str | torch.device = "cpu"):
        if length < 1:
            raise ValueError(f"length must be a positive number of samples, got {length}")
        self.length, self.seed, self.config, self.device = length, seed, config, torch.device(device)
        self._body = None

    def __len__(self) -> int:
        return self.length

    @property
    def body(self):
        if self._body is None:
            from . import body_model

            self._body = body_model.load(resolution=self.config.resolution).to(self.device)
        return self._body

    def __getstate__(self):  # do not pickle the body model into workers
        state = dict(self.__dict__)
        state["_body"] = None
        return state

    @staticmethod
    def worker_init(worker_id: int) -> None:
        """DataLoader ``worker_init_fn``: one torch thread per worker (the workers run in parallel)."""
        torch.set_num_threads(1)

    def batch(self, indices) -> dict:
        """Render samples ``indices`` together: a dict of batched tensors."""
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < self.length]
        if bad:
            raise IndexError(f"indices {bad[:5]} out of range for a dataset of {self.length} samples")
        return render_samples(self.body, sample_parameters(self.seed, indices, self.config), self.config)

    def __getitem__(self, index: int) -> dict:
        return {k: v[0] for k, v in self.batch([index]).items()}


# ---------------------------------------------------------------------------------------
# 5. The frozen split that ships in data_samples/synthetic
# ---------------------------------------------------------------------------------------

#: Annotation keys stored beside the images of a frozen split.
ANNOTATION_KEYS = ("joints_2d", "uvd", "joints_cam", "pose", "betas", "phi", "K", "visible")
FROZEN_SEED, FROZEN_COUNT = 2026, 256


def default_split_path() -> "Path":
    """The shipped frozen split's folder (checkout, wheel or ``HYBRIK_LITE_DATA``)."""
    from . import _data

    name = f"frozen_{SyntheticConfig().image_size}"
    try:
        return _data.find("synthetic", name, "the frozen synthetic split")
    except FileNotFoundError:
        return _data.search_dirs("synthetic")[-1] / name      # where a checkout regenerates it


def _display_path(folder) -> str:
    """``folder`` relative to the repository root when inside it (no machine-specific paths in files)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    try:
        return str(Path(folder).resolve().relative_to(root))
    except ValueError:
        return str(folder)


def save_split(folder, dataset: SyntheticDataset, *, batch_size: int = 32, overwrite: bool = False) -> dict:
    """Render all of ``dataset`` into ``folder``: ``images/000000.png ...`` (lossless), ``annotations.npz``,
    ``meta.json``. Refuses to overwrite an existing split unless ``overwrite=True``."""
    import json
    from pathlib import Path

    import numpy as np
    from PIL import Image

    folder = Path(folder)
    if (folder / "meta.json").exists() and not overwrite:
        raise FileExistsError(f"{folder} already holds a split; pass overwrite=True (--overwrite) to replace it")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    annotations = {k: [] for k in ANNOTATION_KEYS}
    for start in range(0, len(dataset), batch_size):
        batch = dataset.batch(range(start, min(start + batch_size, len(dataset))))
        pixels = (batch["image"].permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        for k, img in enumerate(pixels):
            Image.fromarray(img).save(folder / "images" / f"{start + k:06d}.png", optimize=True)
        for key in ANNOTATION_KEYS:
            annotations[key].append(batch[key].cpu().numpy())
    arrays = {k: np.concatenate(v) for k, v in annotations.items()}
    np.savez_compressed(folder / "annotations.npz", **arrays)
    meta = {"seed": dataset.seed, "count": len(dataset), "config": dataset.config.__dict__,
            "image_format": "png, uint8 RGB", "annotation_keys": list(ANNOTATION_KEYS),
            "regenerate": f"python -m hybrik_lite.synthetic --out {_display_path(folder)} "
                          f"--count {len(dataset)} --seed {dataset.seed} --overwrite"}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=list))
    return meta


def load_split(folder=None) -> dict:
    """Load a frozen split: a dict of tensors, ``image`` ``(N, 3, S, S)`` float in [0, 1] and the
    annotations, plus ``meta``."""
    import json
    from pathlib import Path

    import numpy as np
    from PIL import Image

    folder = Path(folder) if folder is not None else default_split_path()
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no frozen split in {folder} (meta.json missing); regenerate it with "
                                f"python -m hybrik_lite.synthetic --out {folder}")
    meta = json.loads((folder / "meta.json").read_text())
    images = np.stack([np.asarray(Image.open(folder / "images" / f"{i:06d}.png").convert("RGB"))
                       for i in range(meta["count"])])
    out = {"image": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float() / 255}
    with np.load(folder / "annotations.npz") as f:
        out.update({k: torch.from_numpy(f[k]) for k in f.files})
    out["meta"] = meta
    return out


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Regenerate the frozen synthetic split (data_samples/synthetic).")
    parser.add_argument("--out", default=None, help="folder (default: data_samples/synthetic/frozen_128)")
    parser.add_argument("--count", type=int, default=FROZEN_COUNT)
    parser.add_argument("--seed", type=int, default=FROZEN_SEED)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or default_split_path()
    meta = save_split(out, SyntheticDataset(args.count, seed=args.seed), overwrite=args.overwrite)
    print(f"wrote {meta['count']} samples to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
