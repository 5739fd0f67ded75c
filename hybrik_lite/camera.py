"""The camera: intrinsics, projection, body <-> camera frame, and HybrIK's uvd <-> camera xyz.

Frames and pixels
-----------------
Camera frame: OpenCV (x right, y down, z forward). The body model's frame: Y up, facing +Z;
:data:`CAMERA_FROM_BODY` turns one into the other so that the camera sees the person's front.
Pixel coordinates are continuous: ``(0, 0)`` is the top-left *corner* of the top-left pixel, so
pixel ``k`` has its centre at ``k + 0.5`` and ``cx = S / 2`` is the exact centre of an ``S``-pixel
crop (:mod:`hybrik_lite.render` uses the same convention).

HybrIK's normalised coordinates ("uvd")
---------------------------------------
On a square crop of ``S`` pixels, joint ``j`` at pixel ``(u_px, v_px)`` and camera depth ``z_j``:

.. math::

    u = u_{px} / S - 0.5, \\qquad v = v_{px} / S - 0.5, \\qquad d = (z_j - z_{root}) / 2.2\\,\\mathrm{m}

so ``u, v`` lie in ``[-0.5, 0.5]`` for joints inside the crop, and ``d`` in ``[-0.5, 0.5]`` for
joints within 1.1 m of the root's depth. Going back needs the root's depth ``z_root``: then
``z_j = z_root + 2.2 d`` and ``x_j = (u_px - c_x) z_j / f_x`` (a pinhole back-projection).

HybrIK's camera parameters ``(s, t_x, t_y)``: focal length 1000 px per 256 px of crop, and a
scale ``s`` that sets the root depth, ``z_root = 1000 / (256 s)`` (= ``f / (S s)``). Under
that focal length ``u ~= s (x_rel + t_x)`` for a point near the root's depth, which makes
``(t_x, t_y)`` the root's camera-frame ``(x, y)`` in metres.
"""
from __future__ import annotations

import torch

from ._checks import check_same, check_tensor

__all__ = [
    "FOCAL_PER_256", "DEPTH_FACTOR", "CAMERA_FROM_BODY", "focal_length", "intrinsics", "pinhole", "project",
    "body_to_camera", "camera_to_body", "cam_to_uvd", "pixels_to_uvd", "uvd_to_cam", "uvd_to_root_relative", "root_depth_from_scale",
    "scale_from_root_depth", "camera_params_from_root", "root_from_camera_params",
]

#: HybrIK's camera: focal length 1000 px on a 256-pixel crop (scaled with the crop size).
FOCAL_PER_256 = 1000.0
#: Root-relative depth is normalised by this many metres (HybrIK's ``depth_factor``).
DEPTH_FACTOR = 2.2
#: The rotation from the body frame (Y up, facing +Z) to the OpenCV camera frame (y down,
#: z forward) that puts the camera in front of the person: 180 degrees about x.
CAMERA_FROM_BODY = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def focal_length(image_size: int) -> float:
    """HybrIK's focal length in pixels for a square crop of ``image_size`` pixels: ``1000 S / 256``."""
    return FOCAL_PER_256 * image_size / 256


def intrinsics(image_size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Pinhole ``K (3, 3)`` of a square crop: focal ``1000 * S / 256``, principal point at the centre."""
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size <= 0:
        raise ValueError(f"image_size must be a positive int (pixels of a square crop), got {image_size!r}")
    f = focal_length(image_size)
    return torch.tensor([[f, 0, image_size / 2], [0, f, image_size / 2], [0, 0, 1]], dtype=dtype, device=device)


def _batched_K(K: torch.Tensor, batch: int) -> torch.Tensor:
    check_tensor(K, "K", (3, 3), min_dims=2)
    if K.dim() == 2:
        return K.expand(batch, 3, 3)
    if K.dim() != 3 or K.shape[0] not in (1, batch):
        raise ValueError(f"K must be (3, 3) or ({batch}, 3, 3), got {tuple(K.shape)}")
    return K.expand(batch, 3, 3)


def _check_back_projection(uvd, K, root_depth) -> torch.Tensor:
    """Checks of :func:`uvd_to_cam` / :func:`uvd_to_root_relative`; returns ``K`` as ``(B, 3, 3)``."""
    check_tensor(uvd, "uvd", (None, 3), min_dims=3)
    check_tensor(root_depth, "root_depth", (), min_dims=1)
    if uvd.dim() != 3 or root_depth.shape != uvd.shape[:1]:
        raise ValueError(f"expected uvd (B, J, 3) and root_depth (B,), got {tuple(uvd.shape)} and "
                         f"{tuple(root_depth.shape)}")
    check_same({"uvd": uvd, "K": K, "root_depth": root_depth})
    return _batched_K(K, uvd.shape[0])


def pinhole(points: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pinhole formula without input checks (for hot paths that checked already).

    ``points (B, N, 3)`` camera frame, ``K (B, 3, 3)`` -> ``u, v (B, N)`` pixels:
    ``u = (f_x x + s y) / z + c_x``, ``v = f_y y / z + c_y`` (``s`` the skew, usually 0).
    """
    x, y, z = points.unbind(-1)
    inv_z = 1.0 / z
    fx, s, cx = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 0, 2, None]
    fy, cy = K[:, 1, 1, None], K[:, 1, 2, None]
    return (fx * x + s * y) * inv_z + cx, fy * y * inv_z + cy


def project(points_cam: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Project camera-frame points ``(B, N, 3)`` with ``K (3, 3)`` or ``(B, 3, 3)`` -> pixels ``(B, N, 2)``.

    Pixel ``k`` has its centre at ``k + 0.5``. Points at ``z <= 0`` give meaningless pixels
    (not checked).
    """
    check_tensor(points_cam, "points_cam", (None, 3), min_dims=3)
    if points_cam.dim() != 3:
        raise ValueError(f"points_cam must be (B, N, 3), got {tuple(points_cam.shape)}")
    check_same({"points_cam": points_cam, "K": K})
    return torch.stack(pinhole(points_cam, _batched_K(K, points_cam.shape[0])), -1)


def body_to_camera(points_body: torch.Tensor, rotation: torch.Tensor | None = None,
                   translation: torch.Tensor | None = None) -> torch.Tensor:
    """Body-frame points ``(B, N, 3)`` -> camera frame: ``x_cam = R x_body + t``.

    ``rotation`` ``(3, 3)`` or ``(B, 3, 3)`` defaults to :data:`CAMERA_FROM_BODY` (the camera in
    front of the person); ``translation`` ``(B, 3)`` defaults to zero.
    """
    check_tensor(points_body, "points_body", (None, 3), min_dims=3)
    R = CAMERA_FROM_BODY.to(points_body) if rotation is None else rotation
    check_same({"points_body": points_body, "rotation": R})
    out = points_body @ R.transpose(-1, -2)
    if translation is not None:
        check_tensor(translation, "translation", (3,), min_dims=2)
        out = out + translation[:, None]
    return out


def camera_to_body(points_cam: torch.Tensor, rotation: torch.Tensor | None = None,
                   translation: torch.Tensor | None = None) -> torch.Tensor:
    """The inverse of :func:`body_to_camera`: ``x_body = R^T (x_cam - t)``."""
    check_tensor(points_cam, "points_cam", (None, 3), min_dims=3)
    R = CAMERA_FROM_BODY.to(points_cam) if rotation is None else rotation
    check_same({"points_cam": points_cam, "rotation": R})
    if translation is not None:
        check_tensor(translation, "translation", (3,), min_dims=2)
        points_cam = points_cam - translation[:, None]
    return points_cam @ R


def cam_to_uvd(joints_cam: torch.Tensor, K: torch.Tensor, image_size: int, root: int = 0) -> torch.Tensor:
    """Camera-frame joints ``(B, J, 3)`` -> HybrIK's uvd ``(B, J, 3)`` on a square ``image_size`` crop.

    ``u, v = pixel / S - 0.5``; ``d = (z - z_root) / 2.2 m`` with the root joint ``root``.
    """
    return pixels_to_uvd(project(joints_cam, K), joints_cam, image_size, root)


def pixels_to_uvd(pixels: torch.Tensor, joints_cam: torch.Tensor, image_size: int, root: int = 0) -> torch.Tensor:
    """:func:`cam_to_uvd` with the joints' crop pixels ``(B, J, 2)`` given (e.g. mapped by a crop's affine)."""
    depth = (joints_cam[..., 2:] - joints_cam[:, root:root + 1, 2:]) / DEPTH_FACTOR
    return torch.cat([pixels / image_size - 0.5, depth], -1)


def uvd_to_cam(uvd: torch.Tensor, K: torch.Tensor, image_size: int, root_depth: torch.Tensor) -> torch.Tensor:
    """HybrIK's uvd ``(B, J, 3)`` and the root's depth ``(B,)`` (metres) -> camera-frame joints ``(B, J, 3)``.

    ``z_j = z_root + 2.2 d_j``; pixel ``= (u + 0.5) S``; then the pinhole is inverted at depth
    ``z_j``: ``y = (v_px - c_y) z / f_y``, ``x = ((u_px - c_x) z - s y) / f_x``. The exact inverse
    of :func:`cam_to_uvd` when ``root_depth`` is the true root depth.
    """
    K = _check_back_projection(uvd, K, root_depth)
    z = root_depth[:, None] + DEPTH_FACTOR * uvd[..., 2]
    u_px, v_px = (uvd[..., 0] + 0.5) * image_size, (uvd[..., 1] + 0.5) * image_size
    y = (v_px - K[:, 1, 2, None]) * z / K[:, 1, 1, None]
    x = ((u_px - K[:, 0, 2, None]) * z - K[:, 0, 1, None] * y) / K[:, 0, 0, None]
    return torch.stack([x, y, z], -1)


def uvd_to_root_relative(uvd: torch.Tensor, K: torch.Tensor, image_size: int, root_depth: torch.Tensor,
                         root: int = 0) -> torch.Tensor:
    """Like :func:`uvd_to_cam` minus the root joint, ``(B, J, 3)``, computed without cancellation.

    Subtracting two points 7 m away loses float32 digits (``eps * 7 m = 0.4 um``); instead, with
    ``a = u_px - c_x`` and ``Delta`` the difference to the root,
    ``x_j - x_r = (S (u_j - u_r) z_r + 2.2 a_j (d_j - d_r)) / f_x`` (skew term likewise), and
    ``z_j - z_r = 2.2 (d_j - d_r)``: small numbers throughout.
    """
    K = _check_back_projection(uvd, K, root_depth)
    z_root = root_depth[:, None] + DEPTH_FACTOR * uvd[:, root:root + 1, 2]       # (B, 1)
    delta = uvd - uvd[:, root:root + 1]
    dz = DEPTH_FACTOR * delta[..., 2]
    a = (uvd[..., 0] + 0.5) * image_size - K[:, 0, 2, None]
    b = (uvd[..., 1] + 0.5) * image_size - K[:, 1, 2, None]
    dy = (image_size * delta[..., 1] * z_root + b * dz) / K[:, 1, 1, None]
    dx = (image_size * delta[..., 0] * z_root + a * dz - K[:, 0, 1, None] * dy) / K[:, 0, 0, None]
    return torch.stack([dx, dy, dz], -1)


def root_depth_from_scale(scale: torch.Tensor) -> torch.Tensor:
    """HybrIK's camera scale ``s (...)`` -> root depth ``z = 1000 / (256 s)`` metres (any crop size)."""
    return FOCAL_PER_256 / (256 * scale)


def scale_from_root_depth(depth: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`root_depth_from_scale`: ``s = 1000 / (256 z)``."""
    return FOCAL_PER_256 / (256 * depth)


def camera_params_from_root(root_cam: torch.Tensor) -> torch.Tensor:
    """The root's camera-frame position ``(B, 3)`` -> HybrIK's camera ``(B, 3)`` = ``(s, t_x, t_y)``."""
    check_tensor(root_cam, "root_cam", (3,), min_dims=2)
    return torch.cat([scale_from_root_depth(root_cam[:, 2:]), root_cam[:, :2]], -1)


def root_from_camera_params(camera: torch.Tensor) -> torch.Tensor:
    """HybrIK's camera ``(B, 3)`` = ``(s, t_x, t_y)`` -> the root's camera-frame position ``(B, 3)``."""
    check_tensor(camera, "camera", (3,), min_dims=2)
    return torch.cat([camera[:, 1:], root_depth_from_scale(camera[:, :1])], -1)
