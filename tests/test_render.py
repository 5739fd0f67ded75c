"""Tests for hybrik_lite.render: geometry against analytic answers and against
an independent, slow but obvious ray caster written here (Moller-Trumbore)."""

from __future__ import annotations

import math

import pytest
import torch

from hybrik_lite.render import (
    Fragments,
    RenderOutput,
    project_points,
    rasterize,
    render,
    shade,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ---------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------


def intrinsics(f, H, W, dtype=torch.float32, cx=None, cy=None):
    return torch.tensor([[f, 0.0, W / 2 if cx is None else cx],
                         [0.0, f, H / 2 if cy is None else cy],
                         [0.0, 0.0, 1.0]], dtype=dtype)


def icosphere(level):
    """Unit icosphere (V, 3) float64, faces (F, 3) counter-clockwise from outside."""
    t = (1 + 5 ** 0.5) / 2
    v = torch.tensor([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                      [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
                     dtype=torch.float64)
    f = torch.tensor([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9],
                      [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2],
                      [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10],
                      [8, 6, 7], [9, 8, 1]])
    v = v / v.norm(dim=1, keepdim=True)
    for _ in range(level):
        edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(dim=1).values
        unique, inverse = torch.unique(edges, dim=0, return_inverse=True)
        mid = v[unique].mean(1)
        mid = mid / mid.norm(dim=1, keepdim=True)
        m = inverse.view(3, -1) + len(v)                       # midpoints of edges 01, 12, 20
        v = torch.cat([v, mid])
        a, b, c = f.t()
        f = torch.cat([torch.stack([a, m[0], m[2]], 1), torch.stack([b, m[1], m[0]], 1),
                       torch.stack([c, m[2], m[1]], 1), torch.stack([m[0], m[1], m[2]], 1)])
    return v, f


def outward(v, f):
    """Flip faces whose normal points towards the origin (star-shaped meshes)."""
    p = v[f]
    n = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=1)
    flip = (n * p.mean(1)).sum(1) < 0
    f = f.clone()
    f[flip] = f[flip][:, [0, 2, 1]]
    return f


def cube():
    v = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
                     dtype=torch.float64)
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    f = torch.tensor([[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads])
    return v, outward(v, f)


def rotation(ax, ay, az):
    def r(axis, a):
        c, s = math.cos(a), math.sin(a)
        m = torch.eye(3, dtype=torch.float64)
        i, j = [(1, 2), (0, 2), (0, 1)][axis]
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m
    return r(2, az) @ r(1, ay) @ r(0, ax)


def triangle_soup(seed, n):
    """n random, overlapping and interpenetrating triangles in front of the camera."""
    g = torch.Generator().manual_seed(seed)
    centres = 2 * torch.rand(n, 1, 3, generator=g, dtype=torch.float64) \
        + torch.tensor([-1.0, -1.0, 3.0])
    v = centres + 0.6 * torch.randn(n, 3, 3, generator=g, dtype=torch.float64)
    return v.reshape(-1, 3), torch.arange(3 * n).view(n, 3)


def bumpy_sphere(level=3):
    """A closed, non-convex (star-shaped) mesh."""
    v, f = icosphere(level)
    r = 1 + 0.25 * torch.sin(5 * v[:, 0]) * torch.cos(4 * v[:, 1])
    return v * r[:, None], f


def scenes_small():
    """(name, vertices (V, 3) camera frame float64, faces) for 24 x 24 images."""
    out = []
    for seed in range(3):
        v, f = triangle_soup(seed, 30)
        out.append((f"soup{seed}", v, f))
    v, f = cube()
    out.append(("cube", v @ rotation(0.5, 0.7, 0.2).t() * 0.8 + torch.tensor([0.1, -0.2, 4.0]), f))
    v, f = bumpy_sphere(2)
    out.append(("bumpy", v @ rotation(0.3, -0.4, 0.0).t() + torch.tensor([-0.2, 0.1, 4.0]), f))
    # Two large triangles crossing each other (interpenetration line in view).
    v = torch.tensor([[-2.0, -2, 3], [2, -2, 5], [0, 2, 4], [-2, 1.5, 5], [0, -2, 3], [2, 1.5, 4]],
                     dtype=torch.float64)
    out.append(("crossing", v, torch.tensor([[0, 2, 1], [3, 5, 4]])))
    return out


# ---------------------------------------------------------------------------
# Independent reference: one ray per pixel centre, Moller-Trumbore against
# every triangle, nearest hit.
# ---------------------------------------------------------------------------


def pixel_rays(K, H, W):
    """Unnormalised ray directions (H*W, 3) with z = 1 through the pixel centres."""
    K = K.double()
    i, j = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                          torch.arange(W, dtype=torch.float64), indexing="ij")
    y = ((i + 0.5) - K[1, 2]) / K[1, 1]
    x = ((j + 0.5) - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return torch.stack([x, y, torch.ones_like(x)], -1).reshape(-1, 3)


def ray_cast(vertices, faces, K, H, W, cull=True):
    """Returns hit t (P, F) (+inf for miss), min barycentric margin (P, F) and
    barycentrics (P, F, 3), all float64."""
    d = pixel_rays(K, H, W)[:, None, :]                                     # (P, 1, 3)
    p = vertices.double()[faces]                                            # (F, 3, 3)
    v0, e1, e2 = p[:, 0], p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    pvec = torch.cross(d.expand(-1, len(faces), -1), e2.expand(d.shape[0], -1, -1), dim=-1)
    det = (e1 * pvec).sum(-1)
    inv = 1.0 / det
    tvec = -v0                                                              # origin - v0
    bu = (tvec * pvec).sum(-1) * inv
    qvec = torch.cross(tvec, e1, dim=-1)                                    # (F, 3)
    bv = (d * qvec).sum(-1) * inv
    t = (e2 * qvec).sum(-1) * inv
    bary = torch.stack([1 - bu - bv, bu, bv], -1)
    margin = bary.amin(-1)
    front = (torch.cross(e1, e2, dim=-1) * v0).sum(-1) < 0
    ok = (det != 0) & (t > 0)
    if cull:
        ok = ok & front
    t = torch.where(ok, t, torch.full_like(t, math.inf))
    margin = torch.where(ok, margin, torch.full_like(margin, -math.inf))
    return t, margin, bary


def reference(vertices, faces, K, H, W, cull=True):
    t, margin, bary = ray_cast(vertices, faces, K, H, W, cull)
    t_hit = torch.where(margin >= 0, t, torch.full_like(t, math.inf))
    depth, face = t_hit.min(1)
    face = torch.where(torch.isinf(depth), torch.full_like(face, -1), face)
    return face.view(H, W), depth.view(H, W), t, margin, bary


def assert_matches_reference(frags, vertices, faces, K, H, W, cull=True, max_bad=2):
    """Face ids equal except at exact-edge pixels; depth and barycentrics close."""
    ref_face, ref_depth, t, margin, bary = reference(vertices.cpu(), faces.cpu(), K.cpu(),
                                                     H, W, cull)
    ours = frags.face_index[0].cpu()
    tol = 1e-3  # barycentric margin that counts as "on an edge"
    bad = 0
    for p in (ours != ref_face).reshape(-1).nonzero().squeeze(1).tolist():
        o, r = int(ours.view(-1)[p]), int(ref_face.view(-1)[p])
        ok_o = o < 0 or margin[p, o] > -tol                   # ours (nearly) covers it
        ok_r = r < 0 or margin[p, r] < tol or (o >= 0 and t[p, o] <= t[p, r] * (1 + 1e-5))
        bad += not (ok_o and ok_r)
    n_diff = int((ours != ref_face).sum())
    assert bad == 0, f"{bad} pixels disagree with the reference away from edges"
    assert n_diff <= max_bad, f"{n_diff} edge pixels differ (allowed {max_bad})"
    same = (ours == ref_face) & (ours >= 0)
    d_ours = frags.depth[0].cpu().double()
    assert torch.allclose(d_ours[same], ref_depth[same], rtol=1e-5, atol=0)
    assert torch.isinf(d_ours[~frags.mask[0].cpu()]).all()
    idx = same.reshape(-1).nonzero().squeeze(1)
    ref_bary = bary[idx, ours.reshape(-1)[idx]]
    ours_bary = frags.bary[0].cpu().double().reshape(-1, 3)[idx]
    assert torch.allclose(ours_bary, ref_bary, atol=2e-4)


# ---------------------------------------------------------------------------
# Projection and conventions
# ---------------------------------------------------------------------------


def test_project_points_pixel_centre_convention():
    K = torch.tensor([[100.0, 2.0, 32.0], [0.0, 110.0, 24.0], [0.0, 0.0, 1.0]])
    pts = torch.tensor([[[0.0, 0.0, 2.0], [0.2, -0.1, 2.0]]])
    uv = project_points(pts, K)
    assert uv.shape == (1, 2, 2)
    assert torch.allclose(uv[0, 0], torch.tensor([32.0, 24.0]))
    assert torch.allclose(uv[0, 1], torch.tensor([100 * 0.1 + 2 * -0.05 + 32, 110 * -0.05 + 24]))
    # A tiny triangle around the point that projects to (j + 0.5, i + 0.5)
    # covers exactly pixel (i, j).
    H, W, i, j = 8, 10, 3, 6
    K = intrinsics(50.0, H, W)
    z = 2.0
    cu, cv = (j + 0.5 - W / 2) * z / 50, (i + 0.5 - H / 2) * z / 50
    s = 0.01
    tri = torch.tensor([[[cu - s, cv + s, z], [cu + s, cv + s, z], [cu, cv - s, z]]])
    frags = rasterize(tri, torch.tensor([[0, 1, 2]]), K, (H, W), cull_backfaces=False)
    assert frags.mask[0].nonzero().tolist() == [[i, j]]


# ---------------------------------------------------------------------------
# Analytic sphere
# ---------------------------------------------------------------------------


def sphere_scene(level=5, radius=0.5, centre=(0.25, -0.15, 3.0), f=300.0, H=200, W=240):
    v, faces = icosphere(level)
    C = torch.tensor(centre, dtype=torch.float64)
    K = intrinsics(f, H, W, torch.float64)
    return v * radius + C, faces, K, C, radius, H, W


def sphere_ellipse_area(C, r, K):
    """Area in pixels of the image of a sphere: the cone x^T (C C^T - (|C|^2 - r^2) I) x = 0
    cut by the plane z = 1 is an ellipse; its area is pi |det Q| / det(Q[:2, :2])^(3/2)."""
    Q = torch.outer(C, C) - (C.dot(C) - r * r) * torch.eye(3, dtype=torch.float64)
    area = math.pi * abs(torch.det(Q)) / torch.det(Q[:2, :2]) ** 1.5
    return float(area * K[0, 0] * K[1, 1])


def test_sphere_silhouette_area_and_bounds():
    v, faces, K, C, r, H, W = sphere_scene()
    frags = rasterize(v[None].float(), faces, K.float(), (H, W))
    area = int(frags.mask.sum())
    expected = sphere_ellipse_area(C, r, K)
    assert abs(area - expected) / expected < 0.005, (area, expected)

    # Distance of each pixel ray from the sphere centre.
    d = pixel_rays(K, H, W)
    dist = torch.cross(d / d.norm(dim=1, keepdim=True), C.expand_as(d), dim=1).norm(dim=1)
    # The mesh is inscribed: no foreground outside the sphere's silhouette ...
    mask = frags.mask[0].reshape(-1)
    assert (dist[mask] <= r * (1 + 1e-5)).all()
    # ... and no hole inside the ball that the polyhedron contains.
    p = v[faces]
    n = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=1)
    r_in = float(((p[:, 0] - C) * n / n.norm(dim=1, keepdim=True)).sum(1).min())
    assert 0.99 * r < r_in < r
    assert mask[dist < r_in * (1 - 1e-5)].all()


def test_sphere_depth_matches_ray_sphere_intersection():
    v, faces, K, C, r, H, W = sphere_scene(level=4)
    frags = rasterize(v[None].float(), faces, K.float(), (H, W))
    d = pixel_rays(K, H, W)                                   # z component 1
    dn = d / d.norm(dim=1, keepdim=True)
    along = dn @ C
    dist2 = C.dot(C) - along ** 2
    inner = dist2 < (0.9 * r) ** 2
    t = along - torch.sqrt((r * r - dist2).clamp(min=0))
    sphere_z = (t * dn[:, 2])[inner]
    mesh_z = frags.depth[0].reshape(-1).double()[inner]
    assert frags.mask[0].reshape(-1)[inner].all()
    # The faceted surface lies inside the sphere, at most the sagitta deeper.
    p = v[faces]
    n = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=1)
    r_in = float(((p[:, 0] - C) * n / n.norm(dim=1, keepdim=True)).sum(1).min())
    cos_min = math.sqrt(1 - 0.81)
    assert (mesh_z >= sphere_z - 1e-5).all()
    assert (mesh_z - sphere_z <= (r - r_in) / cos_min + 1e-5).all()


def test_perspective_correct_depth_and_barycentrics_on_a_slanted_plane():
    H, W = 32, 40
    K = intrinsics(30.0, H, W, torch.float64)
    # One large triangle, strongly slanted in depth (z from 1.5 to 6).
    v = torch.tensor([[[-3.0, -2.0, 1.5], [4.0, -1.0, 6.0], [-1.0, 4.0, 3.0]]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2]])
    frags = rasterize(v, f, K, (H, W), cull_backfaces=False)
    m = frags.mask[0].reshape(-1)
    assert m.sum() > 200
    # Every visible pixel: bary-weighted 3-D point lies on that pixel's ray, at the depth found.
    point = (frags.bary[0].reshape(-1, 3)[m, :, None] * v[0]).sum(1)       # (M, 3)
    ray = pixel_rays(K, H, W)[m]
    assert torch.allclose(point / point[:, 2:], ray, atol=1e-9)
    assert torch.allclose(point[:, 2], frags.depth[0].reshape(-1)[m], rtol=1e-9)
    # Depth equals the ray-plane intersection (linear-in-z interpolation would not).
    n = torch.cross(v[0, 1] - v[0, 0], v[0, 2] - v[0, 0], dim=0)
    t = (v[0, 0] @ n) / (ray @ n)
    assert torch.allclose(frags.depth[0].reshape(-1)[m], t, rtol=1e-9)


def test_no_holes_on_shared_edges_through_pixel_centres():
    """A grid mesh whose vertices sit on pixel centres (so edges, diagonals
    included, run through pixel centres) at random depths must cover every
    pixel: the projections hit the centres only up to rounding, which is what
    the inside-test tolerance is for."""
    H = W = 128
    f = 50.0
    K = intrinsics(f, H, W)
    n = 65
    g = torch.round(torch.linspace(-2, 130, n)) + 0.5
    uu, vv = torch.meshgrid(g, g, indexing="xy")
    idx = torch.arange(n * n).view(n, n)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = torch.cat([torch.stack([a, c, b], -1).reshape(-1, 3),
                       torch.stack([b, c, d], -1).reshape(-1, 3)])
    gen = torch.Generator().manual_seed(0)
    zz = 2.0 + 3.0 * torch.rand(3, n, n, generator=gen)
    verts = torch.stack([(uu - W / 2) * zz / f, (vv - H / 2) * zz / f, zz], -1)
    frags = rasterize(verts.reshape(3, -1, 3), faces, K, (H, W))
    assert frags.mask.all()

    H = W = 16
    z = 2.0
    K = intrinsics(20.0, H, W)
    # Fan of thin triangles around a vertex at a pixel centre.
    centre = torch.tensor([[(5.5 - W / 2) * z / 20, (7.5 - H / 2) * z / 20, z]])
    ang = torch.linspace(0, 2 * math.pi, 37)[:-1]
    ring = torch.stack([centre[0, 0] + torch.cos(ang), centre[0, 1] + torch.sin(ang),
                        torch.full_like(ang, z)], 1)
    verts = torch.cat([centre, ring])[None]
    k = torch.arange(36)
    faces = torch.stack([torch.zeros_like(k), (k + 1) % 36 + 1, k + 1], 1)
    frags = rasterize(verts, faces, K, (H, W))
    u, v = torch.meshgrid(torch.arange(W) + 0.5, torch.arange(H) + 0.5, indexing="xy")
    inside = (u - 5.5) ** 2 + (v - 7.5) ** 2 < (20 / z * math.cos(math.pi / 36)) ** 2 - 1e-3
    assert frags.mask[0][inside].all() and frags.mask[0][7, 5]


# ---------------------------------------------------------------------------
# Reference comparisons
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cull", [True, False])
@pytest.mark.parametrize("name,vertices,faces", scenes_small(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_matches_ray_casting_reference(name, vertices, faces, cull):
    H, W = 24, 24
    K = intrinsics(22.0, H, W)
    frags = rasterize(vertices[None].float(), faces, K, (H, W), cull_backfaces=cull)
    assert frags.mask.any()
    assert_matches_reference(frags, vertices, faces, K, H, W, cull)


def test_matches_reference_with_skew_and_offset_principal_point():
    H, W = 20, 28
    K = torch.tensor([[25.0, 4.0, 12.3], [0.0, 19.0, 9.1], [0.0, 0.0, 1.0]])
    v, f = triangle_soup(7, 40)
    frags = rasterize(v[None].float(), f, K, (H, W))
    assert_matches_reference(frags, v, f, K, H, W)


def test_large_triangles_clipped_by_the_image():
    """Triangles extending far outside the image (exercises large buckets)."""
    H, W = 24, 32
    K = intrinsics(20.0, H, W)
    v = torch.tensor([[-30.0, -20, 5], [40, -25, 9], [0, 30, 7], [-5, -5, 4], [6, -4, 4],
                      [0, 6, 6]], dtype=torch.float64)
    f = torch.tensor([[0, 2, 1], [3, 5, 4]])
    frags = rasterize(v[None].float(), f, K, (H, W), chunk_pairs=1000)
    assert frags.mask.all()
    assert_matches_reference(frags, v, f, K, H, W)


# ---------------------------------------------------------------------------
# Back faces
# ---------------------------------------------------------------------------


def test_single_triangle_seen_from_behind_vanishes():
    K = intrinsics(20.0, 16, 16)
    front = torch.tensor([[[-1.0, -1.0, 3.0], [-1.0, 1.0, 3.0], [1.0, 0.0, 3.0]]])
    n = torch.cross(front[0, 1] - front[0, 0], front[0, 2] - front[0, 0], dim=0)
    assert n[2] < 0  # outward normal points at the camera
    f = torch.tensor([[0, 1, 2]])
    assert rasterize(front, f, K, (16, 16)).mask.sum() > 20
    back = f[:, [0, 2, 1]]
    assert not rasterize(front, back, K, (16, 16)).mask.any()
    shown = rasterize(front, back, K, (16, 16), cull_backfaces=False)
    assert torch.equal(shown.mask, rasterize(front, f, K, (16, 16)).mask)


@pytest.mark.parametrize("mesh", ["sphere", "bumpy", "cube"])
def test_closed_mesh_same_with_and_without_culling(mesh):
    v, f = {"sphere": lambda: icosphere(3), "bumpy": lambda: bumpy_sphere(3), "cube": cube}[mesh]()
    v = (v @ rotation(0.4, 0.9, -0.3).t() + torch.tensor([0.2, 0.1, 4.0]))[None].float()
    K = intrinsics(40.0, 48, 64)
    a = rasterize(v, f, K, (48, 64), cull_backfaces=True)
    b = rasterize(v, f, K, (48, 64), cull_backfaces=False)
    assert a.mask.sum() > 250
    assert torch.equal(a.face_index, b.face_index)
    assert torch.equal(a.depth, b.depth)


def test_mirrored_intrinsics_flip_the_image_and_keep_culling_right():
    """fx < 0 mirrors the image; culling is defined in 3-D so nothing else changes."""
    v, f = bumpy_sphere(2)
    v = (v @ rotation(0.2, 0.5, 0.1).t() + torch.tensor([0.3, -0.1, 4.0]))[None].float()
    H, W = 40, 48
    K = intrinsics(30.0, H, W)
    Km = K.clone()
    Km[0, 0] = -Km[0, 0]
    a = rasterize(v, f, K, (H, W))
    b = rasterize(v, f, Km, (H, W))
    assert (a.face_index != b.face_index.flip(-1)).sum() <= 2


def test_mirrored_mesh_gives_mirrored_image():
    """x -> -x with the winding reversed is the same surface, seen in a mirror."""
    H, W = 40, 48
    K = intrinsics(30.0, H, W)
    for v, f in [bumpy_sphere(2), triangle_soup(3, 40)]:
        v = (v + torch.tensor([0.3, -0.1, 4.0]) * (v[:, 2].min() < 1))[None].float()
        mirrored = v * torch.tensor([-1.0, 1.0, 1.0])
        a = render(v, f, K, (H, W))
        b = render(mirrored, f[:, [0, 2, 1]], K, (H, W))
        diff = a.face_index != b.face_index.flip(-1)
        assert diff.sum() <= 2
        assert torch.allclose(a.depth[~diff], b.depth.flip(-1)[~diff], rtol=1e-5)
        assert torch.allclose(a.image.flip(-1)[:, :, ~diff[0]], b.image[:, :, ~diff[0].flip(-1)],
                              atol=1e-5)


# ---------------------------------------------------------------------------
# Determinism, batching, dtypes, chunking, near plane
# ---------------------------------------------------------------------------


def posed_batch(n=3, dtype=torch.float32):
    v, f = bumpy_sphere(3)
    batch = torch.stack([v @ rotation(0.3 * k, 0.5 - 0.4 * k, 0.2).t()
                         + torch.tensor([0.2 * k, -0.1, 3.5 + 0.5 * k]) for k in range(n)])
    return batch.to(dtype), f


def test_deterministic():
    v, f = posed_batch()
    K = intrinsics(50.0, 64, 64)
    a, b = rasterize(v, f, K, (64, 64)), rasterize(v, f, K, (64, 64))
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_batched_equals_one_by_one():
    v, f = posed_batch(3)
    Ks = torch.stack([intrinsics(50.0 + 5 * k, 64, 80) for k in range(3)])
    batched = render(v, f, Ks, (64, 80), vertex_colors=v.abs() / 3, flat=False)
    for k in range(3):
        single = render(v[k:k + 1], f, Ks[k], (64, 80), vertex_colors=v[k:k + 1].abs() / 3,
                        flat=False)
        for x, y in zip(single, batched):
            assert torch.equal(x[0], y[k])


def test_chunk_size_does_not_change_the_result():
    v, f = posed_batch(2)
    K = intrinsics(60.0, 64, 64)
    a = rasterize(v, f, K, (64, 64))
    b = rasterize(v, f, K, (64, 64), chunk_pairs=64)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_float64():
    v, f = posed_batch(2, torch.float64)
    K = intrinsics(50.0, 48, 48, torch.float64)
    frags = rasterize(v, f, K, (48, 48))
    assert frags.depth.dtype == torch.float64 and frags.bary.dtype == torch.float64
    out = render(v, f, K, (48, 48))
    assert out.image.dtype == torch.float64
    f32 = rasterize(v.float(), f, K.float(), (48, 48))
    assert (f32.face_index != frags.face_index).sum() <= 2
    same = f32.face_index == frags.face_index
    assert torch.allclose(f32.depth[same].double(), frags.depth[same], rtol=1e-5)
    v0, f0 = triangle_soup(1, 30)
    frags = rasterize(v0[None], f0, intrinsics(22.0, 24, 24, torch.float64), (24, 24))
    assert_matches_reference(frags, v0, f0, intrinsics(22.0, 24, 24), 24, 24)


def test_triangles_crossing_the_near_plane_or_behind_the_camera_are_dropped():
    K = intrinsics(20.0, 16, 16)
    v = torch.tensor([[[-1.0, -1, 3], [-1, 1, 3], [1, 0, 3],          # in front
                       [-1.0, -1, -1], [-1, 1, 2], [1, 0, 2],         # one vertex behind
                       [0.1, 0.1, -2], [0.5, 0.1, -2], [0.1, 0.5, -2]]])  # all behind
    f = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [6, 8, 7]])
    frags = rasterize(v, f, K, (16, 16), cull_backfaces=False)
    assert set(frags.face_index.unique().tolist()) == {-1, 0}


def test_empty_inputs():
    K = intrinsics(10.0, 8, 8)
    out = render(torch.ones(0, 3, 3), torch.tensor([[0, 1, 2]]), K, (8, 8))
    assert out.image.shape == (0, 3, 8, 8)
    out = render(torch.rand(2, 3, 3) + 1, torch.zeros(0, 3, dtype=torch.long), K, (8, 8))
    assert out.image.shape == (2, 3, 8, 8) and not out.mask.any()
    assert (out.image == 1).all() and torch.isinf(out.depth).all()


# ---------------------------------------------------------------------------
# Shading
# ---------------------------------------------------------------------------


def test_render_flat_shading_values():
    H, W = 16, 16
    K = intrinsics(20.0, H, W)
    quad = torch.tensor([[[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [1.0, 1.0, 2.0], [-1.0, 1.0, 2.0]]])
    f = torch.tensor([[0, 2, 1], [0, 3, 2]])    # facing the camera: normal (0, 0, -1)
    out = render(quad, f, K, (H, W), face_colors=torch.tensor([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0]]),
                 background=(0.0, 0.0, 1.0))
    assert isinstance(out, RenderOutput) and out.image.shape == (1, 3, H, W)
    assert out.mask.all()
    assert torch.allclose(out.image[0, :, 5, 5], torch.tensor([1.0, 0.5, 0.0]))
    # Light from the side at 60 degrees: ambient + diffuse * cos(60).
    light = (math.sin(math.pi / 3), 0.0, -math.cos(math.pi / 3))
    out = render(quad, f, K, (H, W), light_dir=light, ambient=0.2, diffuse=0.8)
    assert torch.allclose(out.image[0, :, 3, 9], torch.full((3,), 0.75 * (0.2 + 0.8 * 0.5)))
    # Background image and colour where nothing is drawn.
    small = quad * torch.tensor([0.3, 0.3, 1.0])
    bg = torch.rand(1, 3, H, W)
    out = render(small, f, K, (H, W), background=bg)
    assert torch.equal(out.image[:, :, ~out.mask[0]], bg[:, :, ~out.mask[0]])
    assert 0 < out.mask.sum() < H * W


def test_vertex_colours_and_smooth_normals():
    v, f = icosphere(3)
    v = (v + torch.tensor([0.0, 0.0, 4.0]))[None].float()
    K = intrinsics(60.0, 48, 48)
    colours = torch.tensor([1.0, 0.2, 0.6]).expand(v.shape[1], 3)
    smooth = render(v, f, K, (48, 48), vertex_colors=colours, flat=False, ambient=0.0, diffuse=1.0)
    flat = render(v, f, K, (48, 48), vertex_colors=colours, flat=True, ambient=0.0, diffuse=1.0)
    assert torch.allclose(smooth.image[0, :, 24, 24], torch.tensor([1.0, 0.2, 0.6]), atol=0.02)
    assert ((smooth.image >= 0) & (smooth.image <= 1)).all()
    # Smooth shading varies less between neighbouring pixels than flat shading.
    m = smooth.mask[0, :, 1:] & smooth.mask[0, :, :-1]
    jump = lambda img: (img[0, 0, :, 1:] - img[0, 0, :, :-1]).abs()[m].max()  # noqa: E731
    assert jump(smooth.image) < jump(flat.image)
    # Interpolated vertex colours: a red-to-green gradient along x.
    grad = torch.stack([(1 - v[0, :, 0]) / 2, (1 + v[0, :, 0]) / 2, torch.zeros(v.shape[1])], 1)
    img = render(v, f, K, (48, 48), vertex_colors=grad[None], ambient=1.0, diffuse=0.0).image
    assert img[0, 0, 24, 14] > img[0, 0, 24, 34] and img[0, 1, 24, 14] < img[0, 1, 24, 34]


def test_shade_matches_render():
    v, f = posed_batch(2)
    K = intrinsics(50.0, 40, 40)
    frags = rasterize(v, f, K, (40, 40))
    assert isinstance(frags, Fragments)
    out = render(v, f, K, (40, 40), flat=False, face_colors=torch.rand(2, f.shape[0], 3))
    img = shade(frags, v, f, flat=False, face_colors=None)
    assert img.shape == (2, 3, 40, 40)
    fc = torch.rand(f.shape[0], 3)
    assert torch.equal(shade(frags, v, f, face_colors=fc),
                       render(v, f, K, (40, 40), face_colors=fc).image)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def _good():
    v = torch.tensor([[[-1.0, -1.0, 3.0], [-1.0, 1.0, 3.0], [1.0, 0.0, 3.0]]])
    return v, torch.tensor([[0, 1, 2]]), intrinsics(20.0, 8, 8)


def _nan_vertices():
    v, f, K = _good()
    v[0, 1, 2] = float("nan")
    return v, f, K


BAD = {
    "vertices 2-D": lambda v, f, K: (v[0], f, K, (8, 8)),
    "vertices int": lambda v, f, K: (v.long(), f, K, (8, 8)),
    "vertices nan": lambda v, f, K: (_nan_vertices()[0], f, K, (8, 8)),
    "faces float": lambda v, f, K: (v, f.float(), K, (8, 8)),
    "faces (F, 4)": lambda v, f, K: (v, torch.tensor([[0, 1, 2, 0]]), K, (8, 8)),
    "faces out of range": lambda v, f, K: (v, torch.tensor([[0, 1, 3]]), K, (8, 8)),
    "faces negative": lambda v, f, K: (v, torch.tensor([[0, -1, 2]]), K, (8, 8)),
    "faces device": lambda v, f, K: (v, f.to("meta"), K, (8, 8)),
    "K shape": lambda v, f, K: (v, f, K[:2], (8, 8)),
    "K batch": lambda v, f, K: (v, f, K.expand(2, 3, 3), (8, 8)),
    "K dtype": lambda v, f, K: (v, f, K.double(), (8, 8)),
    "K device": lambda v, f, K: (v, f, K.to("meta"), (8, 8)),
    "K last row": lambda v, f, K: (v, f, K * 2, (8, 8)),
    "image_size zero": lambda v, f, K: (v, f, K, (0, 8)),
    "image_size one number": lambda v, f, K: (v, f, K, 8),
    "image_size float": lambda v, f, K: (v, f, K, (8.0, 8)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_value_error(case):
    args = BAD[case](*_good())
    with pytest.raises(ValueError, match="expected .*, got .*"):
        rasterize(*args)
    with pytest.raises(ValueError, match="expected .*, got .*"):
        render(*args)


def test_bad_shading_input_raises_value_error():
    v, f, K = _good()
    for kwargs in [dict(face_colors=torch.rand(2, 3)), dict(vertex_colors=torch.rand(3, 4)),
                   dict(vertex_colors=torch.rand(3, 3), face_colors=torch.rand(1, 3)),
                   dict(background=torch.rand(1, 3, 4, 4)), dict(background=(1.0, 0.0)),
                   dict(light_dir=(0.0, 1.0)),
                   dict(face_colors=torch.ones(1, 3, dtype=torch.long))]:
        with pytest.raises(ValueError, match="expected .*, got .*"):
            render(v, f, K, (8, 8), **kwargs)
    with pytest.raises(ValueError, match="expected .*, got .*"):
        project_points(v[0], K)


# ---------------------------------------------------------------------------
# CUDA: the same checks on the GPU, and agreement with the CPU.
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_reference_and_cpu():
    H, W = 24, 24
    K = intrinsics(22.0, H, W)
    for name, v, f in scenes_small():
        frags = rasterize(v[None].float().cuda(), f.cuda(), K.cuda(), (H, W))
        assert frags.face_index.device.type == "cuda"
        assert_matches_reference(frags, v, f, K, H, W)
    v, faces, Kd, C, r, H, W = sphere_scene()
    frags = rasterize(v[None].float().cuda(), faces.cuda(), Kd.float().cuda(), (H, W))
    expected = sphere_ellipse_area(C, r, Kd)
    assert abs(int(frags.mask.sum()) - expected) / expected < 0.005
    vb, fb = posed_batch(3)
    Kb = intrinsics(50.0, 64, 64)
    cpu = render(vb, fb, Kb, (64, 64), vertex_colors=vb.abs() / 3, flat=False)
    gpu = render(vb.cuda(), fb.cuda(), Kb.cuda(), (64, 64), vertex_colors=vb.abs().cuda() / 3,
                 flat=False)
    assert (cpu.face_index != gpu.face_index.cpu()).sum() <= 3
    same = cpu.face_index == gpu.face_index.cpu()
    assert torch.allclose(cpu.depth[same], gpu.depth.cpu()[same], rtol=1e-5)
    assert torch.allclose(cpu.image.permute(0, 2, 3, 1)[same],
                          gpu.image.cpu().permute(0, 2, 3, 1)[same], atol=1e-4)
    again = render(vb.cuda(), fb.cuda(), Kb.cuda(), (64, 64))
    twice = render(vb.cuda(), fb.cuda(), Kb.cuda(), (64, 64))
    assert torch.equal(again.face_index, twice.face_index)


def test_a_non_contiguous_background_image_is_accepted():
    v, f, K = _good()
    background = torch.rand(1, 8, 8, 3).permute(0, 3, 1, 2)          # channels-last in memory
    assert not background.is_contiguous()
    out = render(v, f, K, (8, 8), background=background)
    same = render(v, f, K, (8, 8), background=background.contiguous())
    assert torch.equal(out.image, same.image)
