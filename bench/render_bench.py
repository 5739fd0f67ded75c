"""Benchmark hybrik_lite.render against a straightforward reference rasteriser.

Renders the body mesh (``data_samples/body_models/open_body_model.npz`` when
present, otherwise a synthetic stand-in of similar size) seen from the front,
batch 16, flat shading, at 128 x 128 and 256 x 256, and prints for each size:
images/s of ours and of the reference (measured side by side in this run), the
ratio, peak memory, the target and PASS/MISS.

The reference is the obvious dense approach, written here: the same culling,
then every surviving triangle against every pixel of the largest bounding box
(no bucketing), in chunks, followed by a classic two-pass depth test
(scatter "amin" of depth, then the largest triangle id among the fragments
that reached the minimum).

    python bench/render_bench.py                 # CPU, 2 threads
    python bench/render_bench.py --device cuda   # when a GPU is available

Timings are best-of-N with ours and the reference taking turns, because the
machine may be shared; the peak memory is that of live tensors during one
call (CUDA: allocator peak).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hybrik_lite import render as R  # noqa: E402

BODY_NPZ = ROOT / "data_samples" / "body_models" / "open_body_model.npz"
TARGETS = {128: 500.0, 256: 200.0}  # images/s on 2 CPU threads


# ---------------------------------------------------------------------------
# Mesh and camera
# ---------------------------------------------------------------------------


def _ellipsoid(centre, radii, n_lat, n_lon):
    """UV ellipsoid: vertices (n_lat-1)*n_lon + 2, faces CCW from outside."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    st, ct = np.sin(lat)[:, None], np.cos(lat)[:, None]
    ring = np.stack([st * np.cos(lon), ct.repeat(n_lon, 1), st * np.sin(lon)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * radii + centre
    idx = lambda r, k: 1 + r * n_lon + k % n_lon  # noqa: E731
    faces = []
    for k in range(n_lon):
        faces.append([0, idx(0, k + 1), idx(0, k)])
        last = len(verts) - 1
        faces.append([last, idx(n_lat - 2, k), idx(n_lat - 2, k + 1)])
        for r in range(n_lat - 2):
            faces.append([idx(r, k), idx(r, k + 1), idx(r + 1, k)])
            faces.append([idx(r, k + 1), idx(r + 1, k + 1), idx(r + 1, k)])
    faces = np.asarray(faces, dtype=np.int64)
    # Make the winding outward (check on one face, flip all if needed).
    v0, v1, v2 = verts[faces[len(faces) // 2]]
    if np.dot(np.cross(v1 - v0, v2 - v0), v0 - centre) < 0:
        faces = faces[:, ::-1].copy()
    return verts, faces


def synthetic_body():
    """A T-posed stand-in body (ellipsoids), ~1.7 m, Y up, facing +Z, ~27k faces."""
    parts = [  # centre, radii
        ((0.0, 1.25, 0.0), (0.17, 0.28, 0.11)),    # torso
        ((0.0, 1.62, 0.0), (0.09, 0.11, 0.10)),    # head
        ((0.0, 0.90, 0.0), (0.16, 0.10, 0.10)),    # pelvis
        ((-0.10, 0.45, 0.0), (0.07, 0.43, 0.07)),  # legs
        ((0.10, 0.45, 0.0), (0.07, 0.43, 0.07)),
        ((-0.50, 1.45, 0.0), (0.33, 0.05, 0.05)),  # arms
        ((0.50, 1.45, 0.0), (0.33, 0.05, 0.05)),
    ]
    verts, faces, offset = [], [], 0
    for centre, radii in parts:
        v, f = _ellipsoid(np.array(centre), np.array(radii), 45, 44)
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts).astype(np.float32), np.concatenate(faces)


def load_body():
    if BODY_NPZ.exists():
        data = np.load(BODY_NPZ)
        return data["v_template"].astype(np.float32), data["f"].astype(np.int64), BODY_NPZ.name
    v, f = synthetic_body()
    return v, f, "synthetic stand-in (open_body_model.npz not found)"


def front_camera(verts: np.ndarray, size: int, distance: float = 2.8):
    """Camera at +Z looking at the body's front: p_cam = diag(1, -1, -1) p + t.

    Returns camera-frame vertices and K such that the body fills ~90% of the
    image height.
    """
    centre = 0.5 * (verts.min(0) + verts.max(0))
    cam = (verts - centre) * np.array([1.0, -1.0, -1.0], dtype=np.float32)
    cam[:, 2] += distance
    height = verts[:, 1].max() - verts[:, 1].min()
    focal = 0.9 * size * distance / height
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]], dtype=np.float32)
    return cam, K


# ---------------------------------------------------------------------------
# Reference: dense, no bucketing, two-pass depth test
# ---------------------------------------------------------------------------


def reference_rasterize(vertices_cam, faces, K, image_size, chunk_pairs=1 << 20):
    """Every surviving triangle against all pixels of the largest box."""
    B, V, _ = vertices_cam.shape
    H, W = image_size
    F = faces.shape[0]
    device, dtype = vertices_cam.device, vertices_cam.dtype
    uv = R.project_points(vertices_cam, K)                                # (B, V, 2)
    tri_uv = uv[:, faces].reshape(B * F, 3, 2)
    tri_z = vertices_cam[:, faces, 2].reshape(B * F, 3)
    u, v = tri_uv[..., 0], tri_uv[..., 1]
    area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
    x0 = torch.ceil(u.amin(1) - 0.5).clamp(min=0)
    x1 = torch.floor(u.amax(1) - 0.5).clamp(max=W - 1)
    y0 = torch.ceil(v.amin(1) - 0.5).clamp(min=0)
    y1 = torch.floor(v.amax(1) - 0.5).clamp(max=H - 1)
    keep = (tri_z.amin(1) > 1e-3) & (area < 0) & (x1 >= x0) & (y1 >= y0)   # fx, fy > 0 here
    ids = keep.nonzero().squeeze(1)
    u, v, z, area = u[ids], v[ids], tri_z[ids], area[ids]
    x0, y0, x1, y1 = x0[ids], y0[ids], x1[ids], y1[ids]
    gw, gh = int((x1 - x0).max()) + 1, int((y1 - y0).max()) + 1
    dy, dx = torch.meshgrid(torch.arange(gh, device=device, dtype=dtype),
                            torch.arange(gw, device=device, dtype=dtype), indexing="ij")
    dx, dy = dx.reshape(-1), dy.reshape(-1)
    all_pix, all_depth, all_tri = [], [], []
    step = max(1, chunk_pairs // (gh * gw))
    for lo in range(0, len(ids), step):
        s = slice(lo, lo + step)
        px = x0[s, None] + dx + 0.5                                       # (n, P)
        py = y0[s, None] + dy + 0.5
        bary = []
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            e = (u[s, k] - u[s, j])[:, None] * (py - v[s, j, None]) \
                - (v[s, k] - v[s, j])[:, None] * (px - u[s, j, None])
            bary.append(e / area[s, None])
        bary = torch.stack(bary)                                           # (3, n, P)
        inside = (bary >= -1e-6).all(0) & (px < W) & (py < H) \
            & (px <= x1[s, None] + 0.5) & (py <= y1[s, None] + 0.5)
        inv_z = (bary / z[s].t()[:, :, None]).sum(0)
        b_of = torch.div(ids[s], F, rounding_mode="floor")
        pix = b_of[:, None] * (H * W) + (py - 0.5).long() * W + (px - 0.5).long()
        all_pix.append(pix[inside])
        all_depth.append(1.0 / inv_z[inside])
        all_tri.append(ids[s, None].expand_as(pix)[inside])
    pix, depth, tri = torch.cat(all_pix), torch.cat(all_depth), torch.cat(all_tri)
    zbuf = torch.full((B * H * W,), float("inf"), dtype=dtype, device=device)
    zbuf.scatter_reduce_(0, pix, depth, reduce="amin")
    winner = depth == zbuf[pix]
    tri_buf = torch.full((B * H * W,), -1, dtype=torch.int64, device=device)
    tri_buf.scatter_reduce_(0, pix[winner], tri[winner], reduce="amax")
    face_index = torch.where(tri_buf >= 0, tri_buf % F, tri_buf).view(B, H, W)
    return face_index, zbuf.view(B, H, W)


def reference_render(vertices_cam, faces, K, image_size):
    """Reference rasteriser + flat Lambert shading (headlight), same formula as ours."""
    face_index, depth = reference_rasterize(vertices_cam, faces, K, image_size)
    B, V, _ = vertices_cam.shape
    p = vertices_cam[:, faces]                                            # (B, F, 3, 3)
    n = torch.nn.functional.normalize(torch.cross(p[:, :, 1] - p[:, :, 0],
                                                  p[:, :, 2] - p[:, :, 0], dim=-1), dim=-1)
    lambert = (-n[..., 2]).clamp(min=0)                                   # light (0, 0, -1)
    shade = (0.75 * (0.3 + 0.7 * lambert)).clamp(0, 1)                    # (B, F)
    mask = face_index >= 0
    value = torch.gather(shade, 1, face_index.clamp(min=0).view(B, -1)).view_as(depth)
    image = torch.where(mask, value, torch.ones_like(value))[:, None].expand(-1, 3, -1, -1)
    return image.contiguous(), depth, face_index, mask


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _seconds_per_call(fn, device, min_time):
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        _sync(device)
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return elapsed / n


def time_side_by_side(fns, device, repeats, min_time=0.3):
    """Best-of-`repeats` seconds per call for each function.

    The functions take turns within every repeat, so a burst of load from
    other processes hits them alike; the best repeat is the least disturbed.
    """
    for fn in fns:
        fn()
    _sync(device)
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            best[k] = min(best[k], _seconds_per_call(fn, device, min_time))
    return best


def peak_memory_mb(fn, device):
    """Peak extra memory of one call, in MiB.

    CUDA: the caching allocator's peak.  CPU: torch's allocator is invisible to
    tracemalloc, so replay the profiler's allocation ([op] self memory) and
    free ([memory]) events in time order and take the peak of live tensor bytes.
    """
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    from torch.profiler import ProfilerActivity, profile
    stderr = os.dup(2)
    try:  # the profiler backend may chatter on stderr
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                fn()
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
    changes = []
    for e in prof.events():
        delta = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if delta:
            changes.append((e.time_range.start, delta))
    live = peak = 0
    for _, delta in sorted(changes):
        live += delta
        peak = max(peak, live)
    return peak / 2 ** 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--strict", action="store_true", help="exit with status 1 on a MISS")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    verts_np, faces_np, source = load_body()
    print(f"mesh: {source}: {len(verts_np)} vertices, {len(faces_np)} triangles")
    print(f"device: {device}, threads: {torch.get_num_threads()}, batch: {args.batch}, "
          f"flat shading, best of {args.repeats}")
    faces = torch.from_numpy(faces_np).to(device)
    header = f"{'size':>8} {'ours img/s':>11} {'ref img/s':>10} {'ratio':>6} " \
             f"{'ours MB':>8} {'ref MB':>7} {'target':>7}  result"
    print(header)
    all_pass = True
    for size in args.sizes:
        cam, K = front_camera(verts_np, size)
        # A slightly different small rotation per image, so the batch is not 16 copies.
        angles = torch.linspace(-0.3, 0.3, args.batch, dtype=torch.float64)
        c, s = torch.cos(angles), torch.sin(angles)
        rot = torch.zeros(args.batch, 3, 3, dtype=torch.float64)
        rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
        v = torch.from_numpy(cam).double()
        centre = torch.tensor([0.0, 0.0, 2.8], dtype=torch.float64)
        vertices = ((v - centre) @ rot.transpose(1, 2) + centre).float().to(device)
        K_t = torch.from_numpy(K).to(device)

        ours = lambda: R.render(vertices, faces, K_t, (size, size), flat=True)  # noqa: E731
        ref = lambda: reference_render(vertices, faces, K_t, (size, size))      # noqa: E731

        # Sanity: the two agree on almost every pixel.
        a, b = ours(), ref()
        agree = (a.face_index == b[2]).float().mean().item()

        t_ours, t_ref = time_side_by_side([ours, ref], device, args.repeats)
        m_ours, m_ref = peak_memory_mb(ours, device), peak_memory_mb(ref, device)
        ips_ours, ips_ref = args.batch / t_ours, args.batch / t_ref
        target = TARGETS.get(size) if device.type == "cpu" and args.threads == 2 else None
        result = "-" if target is None else ("PASS" if ips_ours >= target else "MISS")
        all_pass &= result != "MISS"
        print(f"{size:>4}x{size:<3} {ips_ours:>11.0f} {ips_ref:>10.0f} {ips_ours / ips_ref:>6.1f} "
              f"{m_ours:>8.1f} {m_ref:>7.1f} {target or '-':>7}  {result}"
              f"   (face ids agree on {100 * agree:.3f}% of pixels)")
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"maxrss of this process: {maxrss_mb:.0f} MB")
    load = os.getloadavg()[0]
    if device.type == "cpu" and load > args.threads + 0.5:
        print(f"note: 1-minute load average {load:.1f} on {os.cpu_count()} CPUs: other processes "
              "were running, so these numbers are likely low; rerun when the machine is idle.")
    return 1 if args.strict and not all_pass else 0


if __name__ == "__main__":
    sys.exit(main())
