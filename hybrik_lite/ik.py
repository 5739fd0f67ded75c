"""HybrIK's analytical inverse kinematics: joint positions + twist angles -> joint rotations.

Joint positions fix every joint's *swing* (where its bone points) but not its *twist* (how far
it turns about the bone; see :mod:`hybrik_lite.twist_swing`). HybrIK predicts both and puts
them together along the kinematic tree, parents before children:

1. **Root (pelvis).** Its three children (left hip, right hip, spine1) fix its rotation: the
   rotation ``R0`` that best maps the rest offsets ``r_k = t_k - t_0`` onto the target offsets
   ``d_k = p_k - p_0`` (orthogonal Procrustes). With ``H = sum_k r_k d_k^T = U diag(sigma) V^T``,
   ``R0 = V diag(1, 1, det(V U^T)) U^T``; the determinant fix rules out reflections.
2. **Every other joint j** (child ``c``, parent's global rotation ``G_parent``): bring the
   target bone into j's own frame, ``d = G_parent^T (p_c - q_j)``, take the swing that turns the
   rest bone ``t_c - t_j`` onto ``d``, and the twist ``phi_j`` about the rest bone:
   ``R_j = R_swing @ R_twist``, ``G_j = G_parent @ R_j``.

``q_j`` is where joint j aims from. **naive**: the target itself, ``q_j = p_j``. **adaptive**
(HybrIK at test time): where j actually is after its ancestors turned,
``q_j = q_parent + G_parent (t_j - t_parent)``, so an error in a parent is absorbed by its
children instead of carried down the chain.

Joints at the same depth of the tree only depend on their parents, so they are solved together:
one batched step per level (8 for the 24 SMPL joints) rather than one per joint (23).
:func:`solve_joint_by_joint` is the plain per-joint loop, kept for comparison and testing.

**Translation.** Only offsets between targets matter: targets are made root-relative and the
result poses the rest skeleton about its own rest root, so
``forward_kinematics(R, rest_joints)`` reproduces ``joints - joints[:, :1] + rest_joints[:, :1]``.
Add ``joints[:, :1] - rest_joints[:, :1]`` to put the posed body back where the targets were.

**Degenerate inputs** (every finite input gives proper rotations, det = +1):

* a target bone of zero length (child on top of the joint): no direction to aim at, the swing is
  the identity (the twist still applies);
* a target bone opposite to the rest bone: a 180-degree swing about the deterministic axis
  :func:`hybrik_lite.twist_swing.perpendicular` of the rest bone;
* a rest bone of zero length: the y axis stands in for its direction;
* twist pairs ``(cos, sin)`` need not be unit; a zero pair means no twist;
* root children collinear with the root, or all on top of it: the rotation about their common
  line is not fixed by the targets; the root then takes the smallest rotation that turns the
  rest children's principal direction onto the targets' (the identity when all targets sit on
  the root);
* non-finite values raise ``ValueError``.

**Precision** (exact targets and true twists, N(0, 0.3) rad poses, open body model shapes):
float64 recovers joints to ~2e-12 mm and rotations to ~2e-12 degrees; float32 to ~4e-4 mm
(max) and ~2e-4 degrees, with ``|R R^T - I| <= 2e-7``. What it takes: every rotation is built
from well-conditioned formulas (no ``acos``, no ``1 / (1 + cos)`` near a flip, no absolute
epsilons) and finished with one Newton-Schulz step (:func:`~hybrik_lite.twist_swing.orthonormalize`);
the root's 3x3 SVD runs in float64 (a float32 SVD alone costs ~1e-4 degrees at the root, which
reaches every joint); adaptive aiming absorbs what is left along each chain.
Near a 180-degree swing (``pi - swing = delta``) the child the swing aims at stays exact, but
the joint's rotation, and the side branches hanging from it, are only good to about
``eps / delta`` (bench/ik_bench.py measures it).

**Speed.** Each level is a few dozen batched tensor operations, and branches that only rare
inputs need (the root's collinear fallback, the 180-degree swing axis) run only when some sample
needs them. For small batches the per-operation overhead of torch dominates; ``compiled=True``
runs the chain as one fused C loop instead (``_ik_kernel.c``, the same formulas in float64; the
backward pass differentiates this solver). bench/ik_bench.py times both against a plain
joint-by-joint loop.

Shapes: joints ``(B, 29, 3)`` (metres), phi ``(B, 23, 2)`` with joint j's twist at ``j - 1``,
rest joints ``(B, 29, 3)``, rotations ``(B, 24, 3, 3)`` acting on column vectors.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

import torch

from . import skeleton
from ._checks import check_finite, check_same, check_tensor
from .twist_swing import (_swing_units, _twist_units, _unit_or_up,
                          orthonormalize, swing_rotation, twist_cos_sin, unit_cos_sin, unit_vectors)

__all__ = ["solve", "solve_joint_by_joint", "twist_from_pose", "root_rotation", "MODES"]

MODES = ("adaptive", "naive")
NUM_TWISTS = skeleton.NUM_SMPL_JOINTS - 1          # joints 1..23, stored at index j - 1
ROOT_CHILDREN = (1, 2, 3)                          # left hip, right hip, spine1

_PARENTS = skeleton.PARENTS
_CHILD = skeleton.BONE_CHILD
#: The rotating joints 1..23 grouped by tree depth: the solver's sequential steps.
LEVELS: tuple[tuple[int, ...], ...] = tuple(
    tuple(j for j in level if j < skeleton.NUM_SMPL_JOINTS)
    for level in skeleton.levels()[1:] if any(j < skeleton.NUM_SMPL_JOINTS for j in level))
# solve() concatenates the levels' rotations, so they must come out in joint order 1..23, each level
# a run of consecutive joints whose parents all sit on the level above
assert [j for level in LEVELS for j in level] == list(range(1, skeleton.NUM_SMPL_JOINTS))
assert all(list(level) == list(range(level[0], level[-1] + 1)) for level in LEVELS)
assert all(_PARENTS[j] in above for above, level in zip(((0,),) + LEVELS, LEVELS) for j in level)


# --- the root: orthogonal Procrustes ---------------------------------------------------------
def _det3(m: torch.Tensor) -> torch.Tensor:
    """Determinant of 3x3 matrices as a triple product (torch.linalg.det is slow for small batches)."""
    return (m[..., 0] * torch.linalg.cross(m[..., 1], m[..., 2], dim=-1)).sum(-1)


class _Procrustes(torch.autograd.Function):
    """``S (B, 3, 3) -> R = V diag(1, 1, det(V U^T)) U^T`` with an SVD-free backward.

    The generic SVD gradient divides by ``sigma_i^2 - sigma_j^2`` and turns NaN when singular
    values coincide, although the rotation itself is smooth there. From ``R S`` symmetric
    (``= V diag(lambda) V^T``, ``lambda = sigma * (1, 1, d)``), a change ``dR = W R`` (W skew)
    satisfies ``W A + A W = -(R dS - dS^T R^T)``, which in V's basis reads
    ``W'_ij = -C'_ij / (lambda_i + lambda_j)``. Those sums are >= 0; they vanish only where the
    rotation is not determined (collinear children), and are clamped there to keep gradients
    finite. Also returns ``U[:, :, 0]``, ``V[:, :, 0]`` and ``sigma`` (not differentiable).
    """

    @staticmethod
    def forward(ctx, cov):
        u, sigma, vh = torch.linalg.svd(cov.double() if cov.dtype == torch.float32 else cov)
        v = vh.transpose(-1, -2)
        det = _det3(v) * _det3(u)                                    # det(V U^T), +-1
        sign = torch.where(det < 0, -torch.ones_like(det), torch.ones_like(det))
        flip = torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], -1)
        rot = ((v * flip[..., None, :]) @ u.transpose(-1, -2)).to(cov.dtype)
        u, v, sigma, flip = u.to(cov.dtype), v.to(cov.dtype), sigma.to(cov.dtype), flip.to(cov.dtype)
        ctx.save_for_backward(rot, v, sigma * flip)
        u1, v1 = u[..., :, 0].contiguous(), v[..., :, 0].contiguous()
        ctx.mark_non_differentiable(u1, v1, sigma)
        return rot, u1, v1, sigma

    @staticmethod
    def backward(ctx, grad_rot, _gu, _gv, _gs):
        rot, v, lam = ctx.saved_tensors
        h = v.transpose(-1, -2) @ grad_rot @ rot.transpose(-1, -2) @ v
        denom = lam[..., :, None] + lam[..., None, :]
        floor = torch.finfo(lam.dtype).eps * lam[..., :1, None].abs() + torch.finfo(lam.dtype).tiny
        k = (h - h.transpose(-1, -2)) / torch.maximum(denom, floor)
        return -rot.transpose(-1, -2) @ v @ k @ v.transpose(-1, -2)


def root_rotation(rest_offsets: torch.Tensor, target_offsets: torch.Tensor) -> torch.Tensor:
    """The rotation that best maps rest offsets onto target offsets (orthogonal Procrustes).

    ``rest_offsets (B, N, 3)``, ``target_offsets (B, N, 3)`` (vectors from the root to its
    children) -> ``R0 (B, 3, 3)`` minimising ``sum_k |R0 r_k - d_k|^2`` over proper rotations:
    with ``H = sum_k r_k d_k^T = U diag(sigma) V^T``, ``R0 = V diag(1, 1, det(V U^T)) U^T``.

    Each set is rescaled by its largest component first (the rotation does not change), so
    tiny or huge inputs neither underflow nor overflow; float32 input is decomposed in float64
    (a float32 3x3 SVD is only good to ~1e-4 degrees, and the root's error reaches every joint).
    When the offsets are collinear (or all zero), ``sigma_2 <= 1000 eps sigma_1``, the rotation
    about their line is free; then the smallest rotation taking the principal rest direction
    ``H v1`` onto the principal target direction ``H^T u1`` is returned (the identity when all
    offsets vanish). Gradients stay finite there.
    """
    check_tensor(rest_offsets, "rest_offsets", (None, 3))
    check_tensor(target_offsets, "target_offsets", (None, 3))
    check_same({"rest_offsets": rest_offsets, "target_offsets": target_offsets})
    if rest_offsets.shape != target_offsets.shape or rest_offsets.dim() != 3:
        raise ValueError(f"rest_offsets and target_offsets must both be (B, N, 3), got "
                         f"{tuple(rest_offsets.shape)} and {tuple(target_offsets.shape)}")

    def rescaled(x):
        scale = x.abs().amax((-1, -2), keepdim=True)
        return x / torch.where(scale == 0, torch.ones_like(scale), scale)

    cov = rescaled(rest_offsets).transpose(-1, -2) @ rescaled(target_offsets)   # sum r_k d_k^T
    rot, u1, v1, sigma = _Procrustes.apply(cov)
    degenerate = sigma[..., 1] <= 1000 * torch.finfo(sigma.dtype).eps * sigma[..., 0]
    if not bool(degenerate.any()):                                      # the usual case: no fallback
        return rot
    along_rest = (cov @ v1[..., None])[..., 0]                          # sigma_1 u_1
    along_target = (cov.transpose(-1, -2) @ u1[..., None])[..., 0]      # sigma_1 v_1
    return torch.where(degenerate[..., None, None], swing_rotation(along_rest, along_target), rot)


# --- input checks ------------------------------------------------------------------------------
def _check_inputs(joints, phi, rest_joints, mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_tensor(joints, "joints", (skeleton.NUM_JOINTS, 3))
    check_tensor(phi, "phi", (NUM_TWISTS, 2))
    check_tensor(rest_joints, "rest_joints", (skeleton.NUM_JOINTS, 3))
    for name, x in (("joints", joints), ("phi", phi), ("rest_joints", rest_joints)):
        if x.dim() != 3:
            raise ValueError(f"{name} must have exactly one batch dimension, got shape "
                             f"{tuple(x.shape)}; reshape with {name}.reshape(-1, *{name}.shape[-2:])")
    check_same({"joints": joints, "phi": phi, "rest_joints": rest_joints})
    if joints.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the IK runs in float32 or float64, got {joints.dtype}; convert with .float()")
    sizes = {joints.shape[0], phi.shape[0], rest_joints.shape[0]}
    if len(sizes) != 1:
        raise ValueError(f"joints, phi and rest_joints must share the batch size, got "
                         f"{joints.shape[0]}, {phi.shape[0]} and {rest_joints.shape[0]}; "
                         f"e.g. rest_joints.expand({joints.shape[0]}, -1, -1) for one shared shape")
    check_finite(joints, "joints")
    check_finite(phi, "phi")
    check_finite(rest_joints, "rest_joints")


class _Prepared:
    """What every joint needs and that does not depend on the order of solving."""

    def __init__(self, joints, phi, rest_joints):
        targets = joints - joints[:, :1]                                # root-relative
        self.targets = targets
        joint_ids = list(range(1, skeleton.NUM_SMPL_JOINTS))
        child_ids = [_CHILD[j] for j in joint_ids]
        parent_ids = [_PARENTS[j] for j in joint_ids]
        self.rest_offsets = rest_joints[:, joint_ids] - rest_joints[:, parent_ids]   # (B, 23, 3)
        self.rest_dirs = _unit_or_up(rest_joints[:, child_ids] - rest_joints[:, joint_ids])
        cos, sin = unit_cos_sin(phi[..., 0], phi[..., 1])
        self.twists = _twist_units(self.rest_dirs, cos, sin)                      # (B, 23, 3, 3)
        root_kids = list(ROOT_CHILDREN)
        self.root = root_rotation(rest_joints[:, root_kids] - rest_joints[:, :1], targets[:, root_kids])


def _joint_rotations(g_parent, aim_from, target_child, rest_dir, twist):
    """Local rotations of joints whose parents are solved. Shapes ``(B, L, ...)``.

    ``g_parent (B, L, 3, 3)`` parents' global rotations, ``aim_from (B, L, 3)`` where each
    joint aims from, ``target_child (B, L, 3)``, ``rest_dir (B, L, 3)`` the unit rest bone,
    ``twist (B, L, 3, 3)``. Returns ``R_j (B, L, 3, 3)``.
    """
    aim = target_child - aim_from
    aim_local = (aim[..., None, :] @ g_parent)[..., 0, :]               # G_parent^T aim: the joint's frame
    direction, no_aim = unit_vectors(aim_local)
    if bool(no_aim.any()):
        direction = torch.where(no_aim[..., None], rest_dir, direction)  # zero bone: no swing
    swing = _swing_units(rest_dir, direction)
    return orthonormalize(swing @ twist)


_PLAN_CACHE: dict = {}


def _level_plan(device):
    """Per level of :data:`LEVELS`: the joints' twist slots ``j - 1`` as a slice (each level lists
    consecutive joints), each joint's parent's position in the level above, and the bone
    children, as index tensors on ``device``. Cached per device."""
    key = str(device)
    if key not in _PLAN_CACHE:
        plan, above = [], [0]
        for level in LEVELS:
            plan.append((slice(level[0] - 1, level[-1]),
                         torch.tensor([above.index(_PARENTS[j]) for j in level], device=device),
                         torch.tensor([_CHILD[j] for j in level], device=device)))
            above = list(level)
        _PLAN_CACHE[key] = plan
    return _PLAN_CACHE[key]


def solve(joints: torch.Tensor, phi: torch.Tensor, rest_joints: torch.Tensor,
          mode: str = "adaptive", detach_targets: bool = False, compiled: bool = False) -> torch.Tensor:
    """HybrIK's analytical IK, one batched step per tree level.

    Args:
        joints: ``(B, 29, 3)`` target joint positions (any root position; see the module doc).
        phi: ``(B, 23, 2)`` twist of joints 1..23 as ``(cos, sin)``, joint j at ``j - 1``; need not
            be unit (normalised here; ``(0, 0)`` means no twist).
        rest_joints: ``(B, 29, 3)`` rest-pose joints of the body's shape.
        mode: ``"adaptive"`` (aim from where each joint actually is) or ``"naive"`` (aim from
            the target of the joint).
        detach_targets: cut the gradient to ``joints`` (as HybrIK does in training); gradients
            still reach ``phi`` and ``rest_joints``.
        compiled: run the joint chain as one fused C loop (CPU only; compiled with the system's
            C compiler on first use, then cached). Same result to rounding (computed in float64,
            so a little more accurate in float32), same gradients (the backward pass recomputes
            with this plain-torch solver), several times faster for small batches. Off by
            default: the plain-torch solver is the teaching version and runs on every device.

    Returns:
        ``(B, 24, 3, 3)`` local joint rotations (the root's is global), proper rotations to
        rounding for every finite input. Differentiable w.r.t. all three inputs.

    Raises:
        ValueError for wrong shapes, dtypes, devices, an unknown mode or non-finite values.
    """
    _check_inputs(joints, phi, rest_joints, mode)
    if compiled:
        return _CompiledSolve.apply(joints, phi, rest_joints, mode, detach_targets)
    if detach_targets:
        joints = joints.detach()
    prep = _Prepared(joints, phi, rest_joints)
    adaptive = mode == "adaptive"
    g_level = prep.root[:, None]                                        # (B, L, 3, 3), level by level
    q_level = torch.zeros_like(prep.targets[:, :1])                     # q, root-relative
    local = [g_level]
    for slots, parent_pos, children in _level_plan(joints.device):
        g_parent = g_level.index_select(1, parent_pos)                  # parents sit on the level above
        if adaptive:
            offsets = prep.rest_offsets[:, slots]
            aim_from = q_level.index_select(1, parent_pos) + (g_parent @ offsets[..., None])[..., 0]
        else:
            aim_from = prep.targets[:, slots.start + 1:slots.stop + 1]
        rot = _joint_rotations(g_parent, aim_from, prep.targets.index_select(1, children),
                               prep.rest_dirs[:, slots], prep.twists[:, slots])
        local.append(rot)
        g_level, q_level = g_parent @ rot, aim_from
    return torch.cat(local, 1)  # levels list the joints in index order (checked at import)


def solve_joint_by_joint(joints: torch.Tensor, phi: torch.Tensor, rest_joints: torch.Tensor,
                         mode: str = "adaptive", detach_targets: bool = False) -> torch.Tensor:
    """The same IK as :func:`solve`, written as the plain loop over joints 1..23.

    One Python step per joint (23), each computing its own swing and twist with the same
    formulas; the root by the same Procrustes. Same arguments, result and guarantees as
    :func:`solve`; slower, mostly for small batches where per-step overhead dominates. Kept as
    the readable version and as a check of :func:`solve` (tests, notebook 03).
    """
    _check_inputs(joints, phi, rest_joints, mode)
    if detach_targets:
        joints = joints.detach()
    targets = joints - joints[:, :1]
    rest = rest_joints - rest_joints[:, :1]
    kids = list(ROOT_CHILDREN)
    global_rot = [root_rotation(rest[:, kids], targets[:, kids])] + [None] * NUM_TWISTS
    position = [torch.zeros_like(targets[:, 0])] + [None] * NUM_TWISTS
    local = [global_rot[0]]
    for j in range(1, skeleton.NUM_SMPL_JOINTS):
        parent, child = _PARENTS[j], _CHILD[j]
        g_parent = global_rot[parent]
        position[j] = position[parent] + (g_parent @ (rest[:, j] - rest[:, parent])[..., None])[..., 0]
        aim_from = position[j] if mode == "adaptive" else targets[:, j]
        rest_dir = _unit_or_up(rest[:, child] - rest[:, j])
        twist = _twist_units(rest_dir, *unit_cos_sin(phi[:, j - 1, 0], phi[:, j - 1, 1]))
        local.append(_joint_rotations(g_parent[:, None], aim_from[:, None], targets[:, child][:, None],
                                      rest_dir[:, None], twist[:, None])[:, 0])
        global_rot[j] = g_parent @ local[j]
    return torch.stack(local, 1)


def twist_from_pose(rot_mats: torch.Tensor, rest_joints: torch.Tensor) -> torch.Tensor:
    """Ground-truth twist of a pose: ``(B, 24, 3, 3), (B, 29, 3) -> phi (B, 23, 2)`` as (cos, sin).

    For joint j (1..23) with rest bone ``u = t[BONE_CHILD[j]] - t[j]``, ``R_j`` splits into
    ``R_swing @ R_twist`` (:func:`hybrik_lite.twist_swing.decompose`); phi is the angle of
    ``R_twist`` about the rest bone direction ``u`` (from joint j towards its child), by the
    right-hand rule: positive is counter-clockwise seen from the child looking back at the joint
    (against ``u``), whatever the pose. ``solve(joints_of(R), twist_from_pose(R, t), t)`` gives
    ``R`` back.
    """
    check_tensor(rot_mats, "rot_mats", (skeleton.NUM_SMPL_JOINTS, 3, 3))
    check_tensor(rest_joints, "rest_joints", (skeleton.NUM_JOINTS, 3))
    check_same({"rot_mats": rot_mats, "rest_joints": rest_joints})
    if rot_mats.dim() != 4 or rest_joints.dim() != 3 or rot_mats.shape[0] != rest_joints.shape[0]:
        raise ValueError(f"expected rot_mats (B, 24, 3, 3) and rest_joints (B, 29, 3) with one batch "
                         f"size, got {tuple(rot_mats.shape)} and {tuple(rest_joints.shape)}")
    joint_ids = list(range(1, skeleton.NUM_SMPL_JOINTS))
    bones = rest_joints[:, [_CHILD[j] for j in joint_ids]] - rest_joints[:, joint_ids]
    _, cos, sin = twist_cos_sin(rot_mats[:, 1:], bones)
    return torch.stack([cos, sin], -1)


# --- the opt-in fused kernel (solve(..., compiled=True)) ----------------------------------------
_KERNEL_SOURCE = Path(__file__).with_name("_ik_kernel.c")
_kernel_function = None


def _kernel():
    """The fused joint chain of ``_ik_kernel.c``, compiled with the system's C compiler on first use.

    The shared library is cached in ``$HYBRIK_LITE_CACHE`` (default ``~/.cache/hybrik_lite``) under
    a name that hashes the source, so an edited kernel is rebuilt.
    """
    global _kernel_function
    if _kernel_function is None:
        source = _KERNEL_SOURCE.read_bytes()
        digest = hashlib.sha256(source + platform.machine().encode()).hexdigest()[:16]
        cache = Path(os.environ.get("HYBRIK_LITE_CACHE", Path.home() / ".cache" / "hybrik_lite"))
        library = cache / f"ik_kernel_{digest}.so"
        if not library.exists():
            compiler = os.environ.get("CC", "cc")
            if shutil.which(compiler) is None:
                raise RuntimeError(f"ik.solve(..., compiled=True) needs a C compiler ({compiler!r} was not found; "
                                   f"install gcc, or set CC), or use the default compiled=False")
            cache.mkdir(parents=True, exist_ok=True)
            partial = library.with_name(f"{library.stem}.{os.getpid()}.partial.so")
            build = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(partial), str(_KERNEL_SOURCE),
                                    "-lm"], capture_output=True, text=True)
            if build.returncode != 0:
                raise RuntimeError(f"compiling {_KERNEL_SOURCE.name} failed ({compiler}):\n{build.stderr[-2000:]}\n"
                                   f"use the default compiled=False")
            os.replace(partial, library)                 # atomic: no half-written library is ever loaded
        function = ctypes.CDLL(str(library)).ik_chain
        function.restype = None
        function.argtypes = [ctypes.c_long] + [ctypes.c_void_p] * 6 + [ctypes.c_int, ctypes.c_double, ctypes.c_void_p]
        _kernel_function = function
    return _kernel_function


#: the tree as the kernel reads it: parents and bone children of joints 0..23 (the root's entries unused)
_TREE = (torch.tensor(_PARENTS[:skeleton.NUM_SMPL_JOINTS], dtype=torch.long),
         torch.tensor(_CHILD[:skeleton.NUM_SMPL_JOINTS], dtype=torch.long))


class _CompiledSolve(torch.autograd.Function):
    """:func:`solve` with the chain in C (float64); the backward pass differentiates the plain solver."""

    @staticmethod
    def forward(ctx, joints, phi, rest_joints, mode, detach_targets):
        if joints.device.type != "cpu":
            raise ValueError(f"ik.solve(..., compiled=True) runs on the CPU, got tensors on {joints.device}; "
                             f"use compiled=False on {joints.device.type}")
        ctx.save_for_backward(joints, phi, rest_joints)
        ctx.mode, ctx.detach_targets = mode, detach_targets
        targets = (joints - joints[:, :1]).double().contiguous()
        rest = rest_joints.double().contiguous()
        kids = list(ROOT_CHILDREN)
        root = root_rotation(rest[:, kids] - rest[:, :1], targets[:, kids]).contiguous()
        phi64 = phi.double().contiguous()
        out = torch.empty(joints.shape[0], skeleton.NUM_SMPL_JOINTS, 3, 3, dtype=torch.float64)
        parents, children = _TREE
        _kernel()(joints.shape[0], targets.data_ptr(), rest.data_ptr(), phi64.data_ptr(), root.data_ptr(),
                  parents.data_ptr(), children.data_ptr(), int(mode == "adaptive"),
                  float(torch.finfo(joints.dtype).eps), out.data_ptr())
        return out.to(joints.dtype)

    @staticmethod
    def backward(ctx, grad_rot):
        inputs = [x.detach().requires_grad_(x.requires_grad) for x in ctx.saved_tensors]
        wanted = [x for x in inputs if x.requires_grad]
        grads = iter(())
        if wanted:
            with torch.enable_grad():
                out = solve(*inputs, mode=ctx.mode, detach_targets=ctx.detach_targets)
                grads = iter(torch.autograd.grad(out, wanted, grad_rot, allow_unused=True))
        return tuple(next(grads) if x.requires_grad else None for x in inputs) + (None, None)
