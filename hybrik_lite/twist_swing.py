"""Twist and swing: split a joint rotation into what the child joint shows, and what it hides.

A joint rotation ``R`` moves the joint's bone, the unit vector ``u`` from the joint to its
child, onto ``v = R u``. Write ``R`` as two rotations, the twist first:

    R = R_swing @ R_twist

* ``R_twist`` turns about the bone itself by an angle ``phi``: right-hand rule about ``u``, so a
  positive ``phi`` is counter-clockwise seen from the child looking back at the joint. It
  leaves ``u`` where it is, so the child cannot show it (it only turns the flesh around the
  bone, and any *other* children of the joint: spine3's twist about its bone to the neck
  swings the collars).
* ``R_swing`` is the *smallest* rotation taking ``u`` onto ``v``: its axis ``u x v`` is
  perpendicular to the bone, its angle the angle between ``u`` and ``v``. It is fixed by
  the two joint positions alone.

HybrIK's network predicts joint positions, which give every swing, plus the twist angles,
which positions cannot give; the analytical IK (:mod:`hybrik_lite.ik`) puts them together.

Formulas used here (``c = u . v``, ``k = u x v``, ``|k| = sin`` of the swing angle):

    R_swing = c I + [k]x + w k k^T,   w = 1 / (1 + c)     when c > 0 (smooth at the identity)
                                      w = (1 - c) / |k|^2  when c <= 0 (no 1 / (1 + c) blow-up)
    R_twist = cos(phi) I + sin(phi) [u]x + (1 - cos(phi)) u u^T

The two weights are equal for unit ``(c, |k|)`` (``1 - c^2 = |k|^2``); each is used where it is
numerically safe. (With ``k = sin(alpha) n`` this is Rodrigues' ``cos I + sin [n]x + (1 - cos) n n^T``.)

**The singular case.** When ``v = -u`` (the rotation flips the bone by 180 degrees) every
axis perpendicular to ``u`` gives a smallest rotation, and ``u x v = 0`` picks none. We then
use the deterministic axis :func:`perpendicular` ``(u)``: ``u x e`` normalised, where ``e``
is the coordinate axis least aligned with ``u`` (the first such axis on ties). The switch
happens when ``|u x v| <= 4 eps`` of the dtype, i.e. when ``v`` equals ``-u`` up to rounding;
the resulting swing still maps ``u`` onto ``v`` to within ``8 eps``. Near (not at) the flip the
swing axis is ill-conditioned: a change of ``v`` by ``delta`` turns the axis by about
``delta / sin(angle)``, and the twist absorbs the difference, so ``R`` itself stays exact.

Zero-length bones have no direction: the y axis (SMPL's up) is used in their place.
Bones need not have unit length; every function here normalises them (safely for tiny and
huge vectors, see :func:`unit_vectors`).

**Precision.** Each formula above is orthonormal to rounding, but in float32 the rounding of
the unit axis and of ``(cos, sin)`` adds up to ``|R R^T - I|`` of about 1e-6 (10 eps). Every
public function ends with one Newton-Schulz step (:func:`orthonormalize`), which brings that
down to about 2e-7, the rounding of a float32 rotation matrix itself.

Shapes: rotations ``(..., 3, 3)``, bones and directions ``(..., 3)``, angles ``(...)``;
leading dimensions broadcast. Rotations act on column vectors. Works in float32 and
float64 on any device, and is differentiable (finite gradients at the flip and at
zero-length bones, where the result is defined by the fallbacks above).
"""
from __future__ import annotations

import torch

from ._checks import check_same, check_tensor
from .kinematics import skew

__all__ = [
    "decompose", "compose", "swing_rotation", "twist_rotation", "twist_cos_sin",
    "perpendicular", "unit_vectors", "unit_cos_sin", "orthonormalize",
]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1, keepdim=True)


_EYES: dict = {}


def _eye_like(x: torch.Tensor) -> torch.Tensor:
    """The 3x3 identity in ``x``'s dtype and device (made once per dtype and device)."""
    key = (x.dtype, x.device)
    if key not in _EYES:
        _EYES[key] = torch.eye(3, dtype=x.dtype, device=x.device)
    return _EYES[key]


def unit_vectors(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise vectors safely. ``(..., 3) -> (unit (..., 3), is_zero (...) bool)``.

    The vector is first divided by its largest absolute component, so that neither tiny
    (1e-30) nor huge (1e30) vectors underflow or overflow when squared. A zero vector comes
    back as zeros with ``is_zero`` set; its gradient is zero, never NaN.
    """
    scale = vectors.abs().amax(-1, keepdim=True)
    is_zero = scale == 0
    scaled = vectors / torch.where(is_zero, torch.ones_like(scale), scale)
    norm = torch.linalg.vector_norm(scaled, dim=-1, keepdim=True)   # in [1, sqrt(3)] unless zero
    return scaled / torch.where(is_zero, torch.ones_like(norm), norm), is_zero[..., 0]


def _unit_or_up(vectors: torch.Tensor) -> torch.Tensor:
    """Unit vectors, with the y axis standing in for zero vectors."""
    unit, is_zero = unit_vectors(vectors)
    up = torch.zeros_like(unit)
    up[..., 1] = 1
    return torch.where(is_zero[..., None], up, unit)


def perpendicular(bones: torch.Tensor) -> torch.Tensor:
    """A deterministic unit vector perpendicular to each bone. ``(..., 3) -> (..., 3)``.

    ``normalise(u x e)`` where ``e`` is the coordinate axis least aligned with the bone
    (``argmin |u_i|``, the first one on ties). E.g. a bone along +y gives ``y x x = -z``,
    a bone along +x gives ``x x y = +z``. Used as the swing axis when a rotation flips the
    bone by 180 degrees.
    """
    check_tensor(bones, "bones", (3,), min_dims=1)
    return _perpendicular_units(_unit_or_up(bones))


def _perpendicular_units(u: torch.Tensor) -> torch.Tensor:
    axis = torch.nn.functional.one_hot(u.abs().argmin(-1), 3).to(u.dtype)
    return unit_vectors(torch.linalg.cross(u, axis, dim=-1))[0]


def swing_rotation(from_dirs: torch.Tensor, to_dirs: torch.Tensor) -> torch.Tensor:
    """The smallest rotation taking one direction onto another. ``(..., 3), (..., 3) -> (..., 3, 3)``.

    Directions need not be unit. A zero ``to_dirs`` (no target direction) gives the identity;
    a zero ``from_dirs`` is replaced by the y axis. Antiparallel directions (a 180-degree
    swing) turn about :func:`perpendicular` ``(from_dirs)``. The result is a proper rotation to
    rounding (``|R R^T - I|`` of a few eps) for every finite input.
    """
    check_tensor(from_dirs, "from_dirs", (3,), min_dims=1)
    check_tensor(to_dirs, "to_dirs", (3,), min_dims=1)
    check_same({"from_dirs": from_dirs, "to_dirs": to_dirs})
    from_dirs, to_dirs = torch.broadcast_tensors(from_dirs, to_dirs)
    u = _unit_or_up(from_dirs)
    v, v_zero = unit_vectors(to_dirs)
    v = torch.where(v_zero[..., None], u, v)                   # no target: stay (identity swing)
    return orthonormalize(_swing_units(u, v))


def _swing_units(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The swing between unit vectors ``u -> v``, before :func:`orthonormalize` (~10 eps in float32).

    One formula, ``c I + [k]x + w k k^T``, whose scalar weight ``w`` switches form (see the module
    doc); the flip axis :func:`perpendicular` ``(u)`` is computed only when some swing is a flip.
    """
    c = _dot(u, v)                                        # (..., 1) cosine of the swing angle
    k = torch.linalg.cross(u, v, dim=-1)
    k = k - _dot(k, u) * u                                # exactly perpendicular to the bone
    s2 = _dot(k, k)
    r = (c * c + s2).sqrt()                               # rescale (c, |k|) onto the unit circle
    c, k, s2 = c / r, k / r, s2 / (r * r)
    pos = c > 0
    # w = 1 / (1 + c) for c > 0, (1 - c) / |k|^2 otherwise: equal on the unit circle, each safe on its side
    w = torch.where(pos, 1 / (1 + c.clamp_min(0)), (1 - c) / torch.where(pos, torch.ones_like(s2), s2))
    flipped = ~pos & (s2 <= (4 * torch.finfo(u.dtype).eps) ** 2)   # v = -u up to rounding: turn about perp(u)
    axis = k
    if bool(flipped.any()):
        axis = torch.where(flipped, _perpendicular_units(u), k)
        k = torch.where(flipped, torch.zeros_like(k), k)
        w = torch.where(flipped, 1 - c, w)
    outer = axis[..., :, None] * axis[..., None, :]
    return c[..., None] * _eye_like(u) + skew(k) + w[..., None] * outer


def twist_rotation(bones: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotation about each bone by the angle with the given cosine and sine.

    ``bones (..., 3)``, ``cos (...)``, ``sin (...)`` -> ``(..., 3, 3)``. ``(cos, sin)`` need not be
    unit: it is normalised (a zero pair means angle 0). The sign follows the right-hand rule
    about the bone direction.
    """
    check_tensor(bones, "bones", (3,), min_dims=1)
    check_tensor(cos, "cos", (), min_dims=0)
    check_tensor(sin, "sin", (), min_dims=0)
    check_same({"bones": bones, "cos": cos, "sin": sin})
    return orthonormalize(_twist_units(_unit_or_up(bones), *unit_cos_sin(cos, sin)))


def unit_cos_sin(cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale ``(cos, sin)`` pairs to unit length; a zero pair becomes ``(1, 0)`` (angle 0).

    ``(...), (...) -> (...), (...)``. Safe for tiny and huge pairs; zero gradient at the zero pair.
    """
    pair, is_zero = unit_vectors(torch.stack([cos, sin, torch.zeros_like(cos)], -1))
    return torch.where(is_zero, torch.ones_like(pair[..., 0]), pair[..., 0]), pair[..., 1]


def _twist_units(u: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotation about the unit vectors ``u`` by a unit ``(cos, sin)``, before :func:`orthonormalize`."""
    c, s = cos[..., None, None], sin[..., None, None]
    # 1 - cos without cancellation for small angles: sin^2 / (1 + cos)
    one_minus_c = torch.where(c > 0, s * s / torch.where(c > 0, 1 + c, torch.ones_like(c)), 1 - c)
    return c * _eye_like(u) + s * skew(u) + one_minus_c * (u[..., :, None] * u[..., None, :])


def orthonormalize(rot_mats: torch.Tensor) -> torch.Tensor:
    """One Newton-Schulz step towards the nearest rotation: ``R + R (I - R^T R) / 2``.

    ``(..., 3, 3) -> (..., 3, 3)``. For a matrix that is a rotation up to rounding it squares the
    deviation from orthonormality, leaving only the rounding of this step (about 1.5 eps
    instead of about 10 eps after a few float32 products). Its derivative at a rotation keeps
    tangent directions unchanged, so gradients are those of the exact rotation.
    """
    flat = rot_mats.reshape(-1, 3, 3)
    defect = _eye_like(flat) - torch.bmm(flat.transpose(1, 2), flat)          # I - R^T R, small
    return torch.baddbmm(flat, flat, defect, alpha=0.5).reshape(rot_mats.shape)  # R + R (I - R^T R) / 2


def _check_pair(rot_mats: torch.Tensor, bones: torch.Tensor, name: str = "rot_mats"
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a ``(..., 3, 3)`` / ``(..., 3)`` pair; return both expanded to common leading dims."""
    check_tensor(rot_mats, name, (3, 3), min_dims=2)
    check_tensor(bones, "bones", (3,), min_dims=1)
    check_same({name: rot_mats, "bones": bones})
    try:
        lead = torch.broadcast_shapes(rot_mats.shape[:-2], bones.shape[:-1])
    except RuntimeError:
        raise ValueError(f"{name} (..., 3, 3) and bones (..., 3) must have broadcastable leading "
                         f"dimensions, got {tuple(rot_mats.shape)} and {tuple(bones.shape)}") from None
    return rot_mats.expand(lead + (3, 3)), bones.expand(lead + (3,))


def twist_cos_sin(rot_mats: torch.Tensor, bones: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Like :func:`decompose`, with the twist as ``(cos, sin)`` rather than an angle.

    Returns ``swing (..., 3, 3)``, ``cos (...)``, ``sin (...)``. The twist rotation
    ``R_twist = R_swing^T R`` turns about the bone; its cosine is ``(trace - 1) / 2`` and its
    sine the component of its rotation vector ``vee(R_twist - R_twist^T) / 2`` along the bone.
    The pair is rescaled to unit length.
    """
    rot_mats, bones = _check_pair(rot_mats, bones)
    u = _unit_or_up(bones)
    v, v_zero = unit_vectors((rot_mats @ u[..., None])[..., 0])
    v = torch.where(v_zero[..., None], u, v)                   # only for a singular "rotation"
    swing = orthonormalize(_swing_units(u, v))
    twist = swing.transpose(-1, -2) @ rot_mats
    cos = (twist[..., 0, 0] + twist[..., 1, 1] + twist[..., 2, 2] - 1) / 2
    axial = torch.stack([twist[..., 2, 1] - twist[..., 1, 2], twist[..., 0, 2] - twist[..., 2, 0],
                         twist[..., 1, 0] - twist[..., 0, 1]], -1) / 2
    sin = (axial * u).sum(-1)
    cos, sin = unit_cos_sin(cos, sin)
    return swing, cos, sin


def decompose(rot_mats: torch.Tensor, bones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split rotations into swing and twist about the bones: ``R = swing @ twist``.

    Args:
        rot_mats: ``(..., 3, 3)`` rotations.
        bones: ``(..., 3)`` bone vectors (any nonzero length), e.g. ``child - joint`` in the
            rest pose. Leading dimensions broadcast with ``rot_mats``'.

    Returns:
        swing ``(..., 3, 3)``: the smallest rotation taking the bone onto ``R @ bone``;
        twist_angle ``(...)`` in ``[-pi, pi]``: the angle of ``swing^T R`` about the bone
        (right-hand rule). ``compose(swing, twist_angle, bones)`` gives ``R`` back to rounding.

    If ``R`` flips the bone (``R u = -u``) the swing axis is :func:`perpendicular` ``(u)``.
    """
    swing, cos, sin = twist_cos_sin(rot_mats, bones)
    return swing, torch.atan2(sin, cos)


def compose(swing: torch.Tensor, twist_angle: torch.Tensor, bones: torch.Tensor) -> torch.Tensor:
    """Put swing and twist back together: ``swing @ R_twist(bone, twist_angle)``.

    ``swing (..., 3, 3)``, ``twist_angle (...)``, ``bones (..., 3)`` -> ``(..., 3, 3)``.
    """
    swing, bones = _check_pair(swing, bones, "swing")
    check_tensor(twist_angle, "twist_angle", (), min_dims=0)
    check_same({"swing": swing, "twist_angle": twist_angle})
    twist = _twist_units(_unit_or_up(bones), torch.cos(twist_angle), torch.sin(twist_angle))
    return orthonormalize(swing @ twist)
