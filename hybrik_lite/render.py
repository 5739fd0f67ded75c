"""A z-buffer rasteriser in plain PyTorch.

This module turns a batch of triangle meshes, given in camera coordinates, into
images.  It needs nothing but ``torch``: no OpenGL, no compiled extension.  The
same code runs on CPU and CUDA; every tensor it creates follows the device and
dtype of ``vertices_cam`` (float32 and float64 both work).

Conventions
-----------
Camera frame (OpenCV)
    x points right, y points down, z points forward (into the scene).  The
    camera sits at the origin and sees points with z > 0.

Pixels
    Image coordinates (u, v) are continuous: u grows to the right, v grows
    downwards, and (0, 0) is the *top-left corner* of the top-left pixel.
    Pixel (row i, column j) covers the unit square [j, j+1] x [i, i+1] and is
    sampled at its centre ``(u, v) = (j + 0.5, i + 0.5)``.  A triangle covers a
    pixel when the triangle contains that centre.

Intrinsics
    A pinhole matrix ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` maps a point
    to ``u = (fx * x + s * y) / z + cx`` and ``v = fy * y / z + cy``
    (:func:`project_points`).  With the pixel convention above, ``cx = W / 2``
    and ``cy = H / 2`` put the principal point at the exact centre of the image.
    (OpenCV itself puts pixel centres at integer coordinates; to use a K from
    ``cv2.calibrateCamera`` add 0.5 to its cx and cy.)

Winding and back faces
    A triangle (v0, v1, v2) is counter-clockwise seen from outside the mesh: its
    outward normal is ``n = (v1 - v0) x (v2 - v0)`` (right-hand rule).  It faces
    the camera when ``n . v0 < 0`` (the normal points back towards the origin).
    Because the image's v axis points *down*, a front-facing triangle has a
    *negative* signed area ``(u1-u0)(v2-v0) - (v1-v0)(u2-u0)`` in pixel
    coordinates, although on screen it still looks counter-clockwise to a
    viewer.  Precisely, signed_area = fx * fy * det[v0, v1, v2] / (z0 z1 z2),
    so a mirroring K (fx * fy < 0) flips the sign; the rasteriser accounts for
    that and always culls by the 3-D rule above.

Depth
    ``depth`` is the camera-frame z of the visible surface (not the distance to
    the camera).  Background pixels hold ``+inf``.

How it works
------------
For every pixel we want the nearest triangle that contains the pixel centre.
The obvious approach, every triangle against every pixel, does B * F * H * W
tests.  Instead:

1. **Cull the whole batch at once.**  Drop triangles that face away from the
   camera, that have a vertex at ``z <= z_near`` (there is no clipping: such a
   triangle is dropped whole) and whose bounding box contains no pixel centre.
   On a body mesh at 128 x 128 most triangles are smaller than a pixel, so this
   removes the large majority of the work.

2. **Bucket the survivors by bounding-box size.**  A triangle whose box spans
   ``w x h`` pixel centres goes to the bucket of size ``gw x gh`` with gw, gh the
   next powers of two.  Inside a bucket every triangle is tested against the
   same ``gh x gw`` grid of candidate pixels (offsets from its box corner), so
   the whole bucket is one dense tensor, processed in chunks of bounded size.

3. **Everything is a plane.**  Within a triangle, the (signed, normalised) edge
   functions and ``1/z`` are *linear* functions of the pixel position
   (perspective-correct interpolation: 1/z, not z, is linear in screen space).
   Each is stored as ``a * dx + b * dy + c`` with (dx, dy) the integer offset
   from the triangle's box corner, which keeps the numbers small and accurate.
   A candidate pixel is inside when all three edge functions are
   ``>= -EDGE_EPS_PX`` (a tolerance of 1e-4 pixel, so that a pixel centre lying
   exactly on an edge shared by two triangles is never lost to rounding).

4. **One scatter does the depth test.**  For positive IEEE floats the bit
   pattern, read as an integer, orders like the float.  Each fragment gets an
   int64 key ``(bits(1/z) << 32) | triangle_id``, and one
   ``scatter_reduce(..., "amax")`` over the pixel index keeps, per pixel, the
   fragment with the largest 1/z (the nearest), ties going to the larger
   triangle id.  The result is deterministic and needs no second pass.  (The
   key uses 1/z rounded to float32 also for float64 input; depth and
   barycentrics are then recomputed in the input dtype.)

5. **Interpolate only where visible.**  Barycentrics and depth are computed
   once per covered pixel, for its winning triangle only.

Shading (:func:`shade`) then evaluates Lambert lighting with face normals
(``flat=True``) or interpolated vertex normals, again only at visible pixels.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    "Fragments",
    "RenderOutput",
    "EDGE_EPS_PX",
    "project_points",
    "rasterize",
    "shade",
    "render",
]

#: Inside-test tolerance, in pixels: a pixel centre up to this far outside a
#: triangle still counts as covered, so shared edges never leave holes.
EDGE_EPS_PX = 1e-4

#: Upper bound on (triangle, candidate pixel) pairs evaluated at once.  It
#: bounds the rasteriser's working memory (about 16 bytes per pair in float32).
DEFAULT_CHUNK_PAIRS = 1 << 20


class Fragments(NamedTuple):
    """What the rasteriser sees at each pixel.

    face_index: (B, H, W) int64, index into ``faces`` of the visible triangle,
        -1 for background.
    depth: (B, H, W) camera-frame z of the visible surface, +inf for background.
    bary: (B, H, W, 3) perspective-correct barycentric coordinates of the pixel
        centre in the visible triangle (sum to 1), zeros for background.
    mask: (B, H, W) bool, True where some triangle is visible.
    """

    face_index: Tensor
    depth: Tensor
    bary: Tensor
    mask: Tensor


class RenderOutput(NamedTuple):
    """image: (B, 3, H, W) in [0, 1]; depth, face_index, mask as in :class:`Fragments`."""

    image: Tensor
    depth: Tensor
    face_index: Tensor
    mask: Tensor


# ---------------------------------------------------------------------------
# Input checks.  Every error says what was expected, what was given, and how
# to fix it.
# ---------------------------------------------------------------------------


def _fail(what: str, expected: str, got: str, fix: str) -> None:
    raise ValueError(f"{what}: expected {expected}, got {got}. {fix}")


def _check_points(name: str, points: Tensor) -> None:
    if not isinstance(points, Tensor):
        _fail(name, "a torch.Tensor of shape (B, N, 3)", type(points).__name__,
              "Convert it with torch.as_tensor(...).")
    if points.dim() != 3 or points.shape[-1] != 3:
        _fail(name, "shape (B, N, 3)", f"shape {tuple(points.shape)}",
              "Add a batch dimension with x[None] for a single mesh.")
    if points.dtype not in (torch.float32, torch.float64):
        _fail(name, "dtype float32 or float64", f"dtype {points.dtype}",
              "Convert it with x.float().")
    if not bool(torch.isfinite(points).all()):
        _fail(name, "finite values", "NaN or Inf entries",
              "Check the upstream computation (e.g. with torch.isfinite).")


def _check_faces(faces: Tensor, num_vertices: int, device: torch.device) -> Tensor:
    if not isinstance(faces, Tensor):
        _fail("faces", "a torch.Tensor of shape (F, 3)", type(faces).__name__,
              "Convert it with torch.as_tensor(faces, dtype=torch.long).")
    if faces.dim() != 2 or faces.shape[1] != 3:
        _fail("faces", "shape (F, 3)", f"shape {tuple(faces.shape)}",
              "All meshes of a batch share one triangle list (F, 3).")
    if faces.dtype.is_floating_point or faces.dtype == torch.bool or faces.is_complex():
        _fail("faces", "an integer dtype (torch.long)", f"dtype {faces.dtype}",
              "Convert it with faces.long().")
    if faces.device != device:
        _fail("faces", f"device {device} (that of vertices_cam)", f"device {faces.device}",
              f"Move it with faces.to('{device}').")
    if faces.numel() > 0:
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= num_vertices:
            _fail("faces", f"vertex indices in [0, {num_vertices - 1}]", f"range [{lo}, {hi}]",
                  "Faces must index rows of vertices_cam (0-based).")
    return faces.long()


def _check_K(K: Tensor, batch: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Validate intrinsics and return them as (B, 3, 3)."""
    if not isinstance(K, Tensor):
        _fail("K", "a torch.Tensor of shape (3, 3) or (B, 3, 3)", type(K).__name__,
              "Convert it with torch.as_tensor(K, dtype=vertices_cam.dtype).")
    if K.shape[-2:] != (3, 3) or K.dim() not in (2, 3) or (K.dim() == 3 and K.shape[0] != batch):
        _fail("K", f"shape (3, 3) or ({batch}, 3, 3)", f"shape {tuple(K.shape)}",
              "Pass one pinhole matrix for all images or one per image.")
    if K.dtype != dtype:
        _fail("K", f"dtype {dtype} (that of the points)", f"dtype {K.dtype}",
              "Convert it with K.to(points.dtype).")
    if K.device != device:
        _fail("K", f"device {device} (that of the points)", f"device {K.device}",
              f"Move it with K.to('{device}').")
    K = K.expand(batch, 3, 3)
    last_row = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)
    if not bool(torch.isfinite(K).all()):
        _fail("K", "finite values", "NaN or Inf entries", "Check how K was built.")
    if not bool((K[:, 2] == last_row).all() & (K[:, 1, 0] == 0).all()):
        _fail("K", "a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]",
              f"last row {K[0, 2].tolist()} and K[1, 0] = {K[0, 1, 0].item()} (first image)",
              "Normalise K by K[2, 2]; a lower-left entry is not supported.")
    if not bool((K[:, 0, 0] * K[:, 1, 1] != 0).all()):
        _fail("K", "non-zero focal lengths fx and fy", "fx * fy == 0", "Fix the intrinsics.")
    return K


def _check_image_size(image_size) -> Tuple[int, int]:
    ok = (isinstance(image_size, (tuple, list, torch.Size)) and len(image_size) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size))
    if not ok:
        _fail("image_size", "a pair of positive ints (H, W)", repr(image_size),
              "For example image_size=(256, 256).")
    return int(image_size[0]), int(image_size[1])


# ---------------------------------------------------------------------------
# Projection
# ---------------------------------------------------------------------------


def _project(points: Tensor, K: Tensor) -> Tuple[Tensor, Tensor]:
    """Pinhole projection without checks.

    points: (B, N, 3) camera frame;  K: (B, 3, 3).  Returns u, v: (B, N).
    """
    x, y, z = points.unbind(-1)
    inv_z = 1.0 / z
    fx, s, cx = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 0, 2, None]
    fy, cy = K[:, 1, 1, None], K[:, 1, 2, None]
    u = (fx * x + s * y) * inv_z + cx
    v = fy * y * inv_z + cy
    return u, v


def project_points(points_cam: Tensor, K: Tensor) -> Tensor:
    """Project camera-frame points to pixel coordinates.

    points_cam: (B, N, 3) in the OpenCV camera frame.
    K: (3, 3) or (B, 3, 3) pinhole intrinsics, same dtype and device.
    Returns (B, N, 2) pixel coordinates (u, v); pixel (i, j) has its centre at
    (j + 0.5, i + 0.5) (see the module docstring).  Points with z <= 0 are not
    checked: their coordinates are meaningless (mirrored or infinite).
    """
    _check_points("points_cam", points_cam)
    K = _check_K(K, points_cam.shape[0], points_cam.dtype, points_cam.device)
    u, v = _project(points_cam, K)
    return torch.stack([u, v], dim=-1)


# ---------------------------------------------------------------------------
# Rasterisation
# ---------------------------------------------------------------------------


def _gather_triangles(vertices_cam: Tensor, faces: Tensor, K: Tensor) -> Tensor:
    """Per-triangle screen data, channel-major so each channel is contiguous.

    vertices_cam: (B, V, 3);  faces: (F, 3);  K: (B, 3, 3).
    Returns (4, 3, B*F): channels (u, v, z, 1/z) for corners 0, 1, 2 of the
    triangles of all meshes, triangle t = b * F + f.
    """
    B, V, _ = vertices_cam.shape
    u, v = _project(vertices_cam, K)
    z = vertices_cam[..., 2]
    per_vertex = torch.stack([u, v, z, 1.0 / z]).reshape(4, B * V)        # (4, B*V)
    offsets = torch.arange(B, device=faces.device).mul_(V)
    corner_ids = (faces.t()[:, None, :] + offsets[None, :, None]).reshape(-1)  # (3*B*F,)
    return per_vertex.index_select(1, corner_ids).view(4, 3, -1)


def _signed_area(u: Tensor, v: Tensor) -> Tensor:
    """Twice the signed area in pixel coordinates.  u, v: (3, T) -> (T,)."""
    return (u[1] - u[0]) * (v[2] - v[0]) - (v[1] - v[0]) * (u[2] - u[0])


def _pixel_box(u: Tensor, v: Tensor, height: int, width: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Range of pixel centres inside each triangle's bounding box, clipped to the image.

    u, v: (3, T).  Returns float (T,) tensors x0, y0, x1, y1 of integer values:
    columns x0..x1 and rows y0..y1 (inclusive); empty when x1 < x0 or y1 < y0.
    Pixel j has its centre at j + 0.5, so the first column is ceil(u_min - 0.5).
    """
    x0 = torch.ceil(u.amin(0) - 0.5).clamp_(min=0)
    x1 = torch.floor(u.amax(0) - 0.5).clamp_(max=width - 1)
    y0 = torch.ceil(v.amin(0) - 0.5).clamp_(min=0)
    y1 = torch.floor(v.amax(0) - 0.5).clamp_(max=height - 1)
    return x0, y0, x1, y1


def _visible_triangles(tris: Tensor, K: Tensor, num_faces: int, height: int, width: int,
                       cull_backfaces: bool, z_near: float) -> Tensor:
    """Indices (N,) into B*F of the triangles that can cover a pixel.

    tris: (4, 3, B*F) from :func:`_gather_triangles`;  K: (B, 3, 3).
    Keeps a triangle when all its vertices have z > z_near, its screen area is
    non-zero, it faces the camera (if cull_backfaces) and its bounding box
    contains at least one pixel centre.
    """
    u, v, z = tris[0], tris[1], tris[2]
    keep = z.amin(0) > z_near
    area = _signed_area(u, v)
    if cull_backfaces:
        # Front-facing <=> det[v0, v1, v2] < 0 <=> area * sign(fx * fy) < 0.
        mirror = torch.sign(K[:, 0, 0] * K[:, 1, 1])[:, None]        # (B, 1)
        keep &= (area.view(-1, num_faces) * mirror < 0).view(-1)
    else:
        keep &= area != 0
    x0, y0, x1, y1 = _pixel_box(u, v, height, width)
    keep &= (x1 >= x0) & (y1 >= y0)
    return keep.nonzero().squeeze(1)


def _triangle_planes(tris: Tensor, corner_u: Tensor, corner_v: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Linear functions a * dx + b * dy + c of the pixel offset from a corner.

    tris: (4, 3, N) screen data;  corner_u, corner_v: (N,) centre of each
    triangle's first candidate pixel.  Returns a, b, c of shape (4, N):
    rows 0-2 are the signed distances (pixels, positive inside) to the edges
    opposite vertices 0, 1, 2; row 3 is 1/z (perspective-correct depth).
    """
    u, v, w = tris[0], tris[1], tris[3]                   # (3, N) each
    # Edge opposite vertex i runs from vertex j = i+1 to vertex k = i+2.
    uj, vj = u.roll(-1, 0), v.roll(-1, 0)
    eu, ev = u.roll(-2, 0) - uj, v.roll(-2, 0) - vj       # (3, N)
    # Edge function E_i(p) = cross(e_i, p - p_j): zero on the edge, and
    # E_i / area is the screen-space barycentric coordinate of vertex i.
    e_at_corner = eu * (corner_v - vj) - ev * (corner_u - uj)
    area = _signed_area(u, v)
    # Signed distance to the edge, positive inside whatever the orientation.
    to_dist = torch.sign(area) * torch.rsqrt(eu * eu + ev * ev)
    # 1/z = sum_i bary_i / z_i, with bary_i = E_i / area.
    to_bary = w / area
    a = torch.cat([-ev * to_dist, (-ev * to_bary).sum(0, keepdim=True)])
    b = torch.cat([eu * to_dist, (eu * to_bary).sum(0, keepdim=True)])
    c = torch.cat([e_at_corner * to_dist, (e_at_corner * to_bary).sum(0, keepdim=True)])
    return a, b, c


def _bucket_fragments(a: Tensor, b: Tensor, c: Tensor, last_dx: Tensor, last_dy: Tensor,
                      grid_h: int, grid_w: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Test n triangles against their gh x gw grids of candidate pixels.

    a, b, c: (4, n) planes;  last_dx, last_dy: (n,) last offset inside each box.
    Returns (tri, offset, inv_z) for the covered pixels (M,): which triangle of
    the chunk, which grid cell (dy * gw + dx), and 1/z there.
    """
    device, dtype = a.device, a.dtype
    dx = torch.arange(grid_w, device=device, dtype=dtype)
    dy = torch.arange(grid_h, device=device, dtype=dtype)
    # Separable evaluation: plane(dx, dy) = (c + a * dx) + (b * dy).
    row_x = c[:, :, None] + a[:, :, None] * dx                        # (4, n, gw)
    row_y = b[:, :, None] * dy                                        # (4, n, gh)
    # Candidates beyond the triangle's (image-clipped) box get -inf on the
    # edge rows, so they fail the inside test below.
    row_x[:3].masked_fill_((dx > last_dx[:, None])[None], float("-inf"))
    row_y[:3].masked_fill_((dy > last_dy[:, None])[None], float("-inf"))
    planes = row_y[:, :, :, None] + row_x[:, :, None, :]              # (4, n, gh, gw)
    inside = torch.minimum(torch.minimum(planes[0], planes[1]), planes[2]) >= -EDGE_EPS_PX
    flat = inside.view(-1).nonzero().squeeze(1)                       # (M,)
    cells = grid_h * grid_w
    inv_z = planes[3].reshape(-1).index_select(0, flat)
    return torch.div(flat, cells, rounding_mode="floor"), flat % cells, inv_z


def _depth_keys(inv_z: Tensor, tri_ids: Tensor) -> Tensor:
    """int64 keys ordering fragments by 1/z (nearest is largest), then by id."""
    inv_z = inv_z.to(torch.float32).clamp_(min=1e-30)  # positive: bits order like values
    return (inv_z.view(torch.int32).to(torch.int64) << 32) | tri_ids


def _resolve_visible(keys: Tensor, tris: Tensor, num_faces: int, height: int, width: int):
    """Decode the z-buffer and interpolate at the visible pixels only.

    keys: (B*H*W,) int64 z-buffer (0 = background);  tris: (4, 3, B*F).
    Returns (pixels, face, depth, bary) for the M visible pixels.
    """
    pixels = (keys > 0).nonzero().squeeze(1)                          # (M,)
    tri = keys.index_select(0, pixels) & 0xFFFFFFFF                   # index into B*F
    face = tri % num_faces
    corner = tris.index_select(2, tri)                                # (4, 3, M)
    u, v, w = corner[0], corner[1], corner[3]
    in_image = pixels % (height * width)
    pu = (in_image % width).to(u.dtype) + 0.5
    pv = torch.div(in_image, width, rounding_mode="floor").to(u.dtype) + 0.5
    # Screen-space barycentrics from the three edge functions.
    uj, vj = u.roll(-1, 0), v.roll(-1, 0)
    edge = (u.roll(-2, 0) - uj) * (pv - vj) - (v.roll(-2, 0) - vj) * (pu - uj)   # (3, M)
    screen_bary = (edge / _signed_area(u, v)).clamp_(min=0)
    # Perspective correction: weight by 1/z_i and renormalise.
    weighted = screen_bary * w
    inv_z = weighted.sum(0)
    return pixels, face, 1.0 / inv_z, (weighted / inv_z).t()


def rasterize(vertices_cam: Tensor, faces: Tensor, K: Tensor, image_size: Sequence[int],
              cull_backfaces: bool = True, *, z_near: float = 1e-3,
              chunk_pairs: int = DEFAULT_CHUNK_PAIRS) -> Fragments:
    """Rasterise a batch of meshes with a z-buffer.

    vertices_cam: (B, V, 3) float32/float64, OpenCV camera frame.
    faces: (F, 3) integer vertex indices, counter-clockwise seen from outside.
    K: (3, 3) or (B, 3, 3) pinhole intrinsics, dtype/device of vertices_cam.
    image_size: (H, W).
    cull_backfaces: drop triangles whose outward normal points away from the
        camera.  Triangles with a vertex at z <= z_near are always dropped.
    chunk_pairs: at most this many (triangle, candidate pixel) pairs are
        evaluated at once (bounds memory; results do not depend on it).
    Returns :class:`Fragments` with (B, H, W) face_index / depth / mask and
    (B, H, W, 3) perspective-correct barycentrics.
    """
    _check_points("vertices_cam", vertices_cam)
    B, V, _ = vertices_cam.shape
    device, dtype = vertices_cam.device, vertices_cam.dtype
    faces = _check_faces(faces, V, device)
    K = _check_K(K, B, dtype, device)
    H, W = _check_image_size(image_size)
    F = faces.shape[0]
    if B * F >= 2 ** 31:
        _fail("vertices_cam/faces", "B * F < 2**31 triangles per call", f"{B} * {F}",
              "Split the batch into smaller calls.")

    tris = _gather_triangles(vertices_cam, faces, K)                  # (4, 3, B*F)
    ids = _visible_triangles(tris, K, F, H, W, cull_backfaces, z_near)  # (N,)
    alive = tris.index_select(2, ids)                                 # (4, 3, N)

    # Box of candidate pixels for each surviving triangle.
    x0, y0, x1, y1 = _pixel_box(alive[0], alive[1], H, W)
    last_dx, last_dy = (x1 - x0), (y1 - y0)
    # Bucket = (log2 of grid height, log2 of grid width), grid = next power of two.
    exp_w = torch.frexp(last_dx.float()).exponent.long()
    exp_h = torch.frexp(last_dy.float()).exponent.long()
    order = torch.argsort(exp_h * 64 + exp_w, stable=True)
    buckets, counts = torch.unique_consecutive((exp_h * 64 + exp_w)[order], return_counts=True)

    ids, alive = ids[order], alive.index_select(2, order)
    x0, y0, last_dx, last_dy = x0[order], y0[order], last_dx[order], last_dy[order]
    a, b, c = _triangle_planes(alive, x0 + 0.5, y0 + 0.5)             # (4, N) each
    batch_of = torch.div(ids, F, rounding_mode="floor")
    first_pixel = batch_of * (H * W) + y0.long() * W + x0.long()      # (N,)

    keys = torch.zeros(B * H * W, dtype=torch.int64, device=device)
    start = 0
    for bucket, count in zip(buckets.tolist(), counts.tolist()):
        grid_h = min(2 ** (bucket // 64), H)
        grid_w = min(2 ** (bucket % 64), W)
        cell_to_pixel = (torch.arange(grid_h, device=device)[:, None] * W
                         + torch.arange(grid_w, device=device)).reshape(-1)
        step = max(1, chunk_pairs // (grid_h * grid_w))
        for lo in range(start, start + count, step):
            hi = min(lo + step, start + count)
            tri, cell, inv_z = _bucket_fragments(
                a[:, lo:hi], b[:, lo:hi], c[:, lo:hi], last_dx[lo:hi], last_dy[lo:hi],
                grid_h, grid_w)
            pixel = first_pixel[lo:hi].index_select(0, tri) + cell_to_pixel.index_select(0, cell)
            key = _depth_keys(inv_z, ids[lo:hi].index_select(0, tri))
            keys.scatter_reduce_(0, pixel, key, reduce="amax")
        start += count

    pixels, face, depth, bary = _resolve_visible(keys, tris, F, H, W)
    face_index = torch.full((B * H * W,), -1, dtype=torch.int64, device=device)
    face_index[pixels] = face
    depth_map = torch.full((B * H * W,), float("inf"), dtype=dtype, device=device)
    depth_map[pixels] = depth
    bary_map = torch.zeros(B * H * W, 3, dtype=dtype, device=device)
    bary_map[pixels] = bary
    return Fragments(face_index.view(B, H, W), depth_map.view(B, H, W),
                     bary_map.view(B, H, W, 3), (face_index >= 0).view(B, H, W))


# ---------------------------------------------------------------------------
# Shading
# ---------------------------------------------------------------------------


ColourLike = Union[float, Sequence[float], Tensor]


def _as_background(background: ColourLike, B: int, H: int, W: int, dtype, device) -> Tensor:
    """Background as a fresh (B, 3, H, W) tensor."""
    if isinstance(background, Tensor) and background.dim() == 4:
        if tuple(background.shape) != (B, 3, H, W):
            _fail("background", f"shape ({B}, 3, {H}, {W}), a colour (3,) or a scalar",
                  f"shape {tuple(background.shape)}", "Match the batch and image size.")
        if background.device != device:
            _fail("background", f"device {device}", f"device {background.device}",
                  f"Move it with background.to('{device}').")
        return background.to(dtype=dtype, copy=True)
    colour = torch.as_tensor(background, dtype=dtype, device=device)
    if colour.numel() not in (1, 3):
        _fail("background", "a scalar, a colour (3,) or an image (B, 3, H, W)",
              f"shape {tuple(colour.shape)}", "For example background=(1.0, 1.0, 1.0).")
    return colour.reshape(1, -1, 1, 1).expand(B, 3, H, W).clone()


def _check_colours(name: str, colours: Tensor, count: int, B: int, dtype, device) -> Tensor:
    """Return colours as (B, count, 3) (a view when broadcasting)."""
    if not isinstance(colours, Tensor) or colours.shape[-2:] != (count, 3) \
            or colours.dim() not in (2, 3) or (colours.dim() == 3 and colours.shape[0] != B):
        got = f"shape {tuple(colours.shape)}" if isinstance(colours, Tensor) else type(colours).__name__
        _fail(name, f"a tensor of shape ({count}, 3) or ({B}, {count}, 3)", got,
              "Give one RGB colour in [0, 1] per element.")
    if colours.device != device:
        _fail(name, f"device {device}", f"device {colours.device}",
              f"Move it with {name}.to('{device}').")
    if not colours.dtype.is_floating_point:
        _fail(name, "a floating dtype", f"dtype {colours.dtype}", f"Convert it with {name}.float().")
    return colours.to(dtype).expand(B, count, 3)


def _normalize(x: Tensor, dim: int = -1) -> Tensor:
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-12)


def shade(fragments: Fragments, vertices_cam: Tensor, faces: Tensor, *,
          vertex_colors: Optional[Tensor] = None, face_colors: Optional[Tensor] = None,
          light_dir: ColourLike = (0.0, 0.0, -1.0), ambient: float = 0.3,
          diffuse: float = 0.7, background: ColourLike = 1.0, flat: bool = True) -> Tensor:
    """Lambert-shade rasterised fragments.

    fragments: from :func:`rasterize` of the same vertices_cam (B, V, 3) and faces (F, 3).
    vertex_colors: (V, 3) or (B, V, 3), interpolated perspective-correctly; or
    face_colors: (F, 3) or (B, F, 3); neither gives a light grey (0.75).
    light_dir: (3,) or (B, 3), direction from the surface *towards* the light,
        camera frame; the default (0, 0, -1) is a headlight at the camera.
    colour = albedo * (ambient + diffuse * max(0, n . l)), clipped to [0, 1].
    flat: face normals if True, else interpolated area-weighted vertex normals.
        Normals are outward (right-hand rule); back faces, which only show
        with culling off, are lit as such (usually dark).
    background: scalar, (3,) colour or (B, 3, H, W) image.
    Returns image (B, 3, H, W).
    """
    _check_points("vertices_cam", vertices_cam)
    B, V, _ = vertices_cam.shape
    device, dtype = vertices_cam.device, vertices_cam.dtype
    faces = _check_faces(faces, V, device)
    F = faces.shape[0]
    if fragments.face_index.dim() != 3 or fragments.face_index.shape[0] != B:
        _fail("fragments", f"face_index of shape ({B}, H, W)",
              f"shape {tuple(fragments.face_index.shape)}", "Rasterise the same batch.")
    _, H, W = fragments.face_index.shape
    if vertex_colors is not None and face_colors is not None:
        _fail("colours", "vertex_colors or face_colors", "both", "Pass only one of them.")
    image = _as_background(background, B, H, W, dtype, device)

    pixels = fragments.mask.reshape(-1).nonzero().squeeze(1)          # (M,)
    batch_of = torch.div(pixels, H * W, rounding_mode="floor")
    face = fragments.face_index.reshape(-1).index_select(0, pixels)
    bary = fragments.bary.reshape(-1, 3).index_select(0, pixels)      # (M, 3)
    corner_ids = faces.index_select(0, face) + (batch_of * V)[:, None]  # (M, 3) into B*V
    flat_vertices = vertices_cam.reshape(B * V, 3)

    if flat:
        p = flat_vertices.index_select(0, corner_ids.reshape(-1)).view(-1, 3, 3)
        normal = _normalize(torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=-1))
    else:
        p = vertices_cam[:, faces]                                    # (B, F, 3, 3)
        face_n = torch.cross(p[:, :, 1] - p[:, :, 0], p[:, :, 2] - p[:, :, 0], dim=-1)
        vertex_n = torch.zeros(B * V, 3, dtype=dtype, device=device)
        face_ids = (faces[None] + V * torch.arange(B, device=device)[:, None, None]).reshape(-1)
        vertex_n.index_add_(0, face_ids, face_n[:, :, None].expand(B, F, 3, 3).reshape(-1, 3))
        vertex_n = _normalize(vertex_n)
        n3 = vertex_n.index_select(0, corner_ids.reshape(-1)).view(-1, 3, 3)
        normal = _normalize((bary[:, :, None] * n3).sum(1))

    if face_colors is not None:
        colours = _check_colours("face_colors", face_colors, F, B, dtype, device)
        albedo = colours.reshape(B * F, 3).index_select(0, batch_of * F + face) \
            if colours.stride(0) != 0 else colours[0].index_select(0, face)
    elif vertex_colors is not None:
        colours = _check_colours("vertex_colors", vertex_colors, V, B, dtype, device)
        c3 = colours.reshape(B * V, 3).index_select(0, corner_ids.reshape(-1)).view(-1, 3, 3)
        albedo = (bary[:, :, None] * c3).sum(1)
    else:
        albedo = torch.full((pixels.shape[0], 3), 0.75, dtype=dtype, device=device)

    light = torch.as_tensor(light_dir, dtype=dtype, device=device)
    if light.shape not in ((3,), (B, 3)):
        _fail("light_dir", f"shape (3,) or ({B}, 3)", f"shape {tuple(light.shape)}",
              "Give a direction towards the light in the camera frame.")
    light = _normalize(light.expand(B, 3)).index_select(0, batch_of)  # (M, 3)
    lambert = (normal * light).sum(-1).clamp_(min=0)
    colour = (albedo * (ambient + diffuse * lambert)[:, None]).clamp_(0, 1)

    # Write the M x 3 colours into the channel-first image.
    channel_ids = (batch_of * 3 * H * W + pixels % (H * W))[:, None] \
        + torch.arange(3, device=device) * (H * W)
    image.view(-1)[channel_ids.reshape(-1)] = colour.reshape(-1)
    return image


def render(vertices_cam: Tensor, faces: Tensor, K: Tensor, image_size: Sequence[int], *,
           vertex_colors: Optional[Tensor] = None, face_colors: Optional[Tensor] = None,
           light_dir: ColourLike = (0.0, 0.0, -1.0), ambient: float = 0.3, diffuse: float = 0.7,
           background: ColourLike = 1.0, flat: bool = True, cull_backfaces: bool = True,
           z_near: float = 1e-3) -> RenderOutput:
    """Rasterise and shade: :func:`rasterize` followed by :func:`shade`.

    vertices_cam: (B, V, 3);  faces: (F, 3);  K: (3, 3) or (B, 3, 3);
    image_size: (H, W).  Other arguments as in :func:`shade` / :func:`rasterize`.
    Returns :class:`RenderOutput` (image (B, 3, H, W), depth, face_index, mask).
    """
    frags = rasterize(vertices_cam, faces, K, image_size, cull_backfaces, z_near=z_near)
    image = shade(frags, vertices_cam, faces, vertex_colors=vertex_colors,
                  face_colors=face_colors, light_dir=light_dir, ambient=ambient,
                  diffuse=diffuse, background=background, flat=flat)
    return RenderOutput(image, frags.depth, frags.face_index, frags.mask)
