"""Load a body model: the shipped open SMPL-format model, or a real SMPL file, through smplx.

    from hybrik_lite import body_model
    bm = body_model.load()                  # the open model that ships with the package
    bm = body_model.load("SMPL_NEUTRAL.pkl") # a real SMPL file, if you have one
    out = bm(betas, pose)                   # betas (B, 10); pose (B, 24, 3) or (B, 24, 3, 3)
    out.vertices, out.joints                # (B, V, 3), (B, 29, 3)
    toy = body_model.BodyModel(body_model.toy_smpl_arrays())  # a toy SMPL-format model with pose correctives

The 29 joints are SMPL's 24 (regressed from the shaped mesh, then posed) followed
by HybrIK's 5 leaves (head top, middle fingertips, big toes), which are single
vertices of the posed mesh.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import _data, skeleton
from ._checks import check_finite, check_same, check_tensor
from .kinematics import forward_kinematics, rodrigues

__all__ = ["BodyModel", "BodyModelOutput", "load", "default_model_path", "toy_smpl_arrays",
           "SMPL_LEAF_VERTEX_IDS"]

#: Leaf vertices on SMPL's 6,890-vertex mesh (HybrIK's choice): head top, left/right
#: middle fingertip, left/right big toe.
SMPL_LEAF_VERTEX_IDS = (411, 2445, 5905, 3216, 6617)

_MODEL_FILES = {"full": "open_body_model.npz", "low": "open_body_model_lowres.npz"}


def default_model_path(resolution: str = "full") -> Path:
    """Path of the shipped open model: ``resolution`` is ``"full"`` or ``"low"``."""
    if resolution not in _MODEL_FILES:
        raise ValueError(f"resolution must be 'full' or 'low', got {resolution!r}")
    return _data.find("body_models", _MODEL_FILES[resolution], "the open body model")


@dataclass
class BodyModelOutput:
    """What a body model returns. Shapes: vertices ``(B, V, 3)``, joints ``(B, 29, 3)``,
    rot_mats ``(B, 24, 3, 3)`` (local rotations used), rest_joints ``(B, 29, 3)``."""
    vertices: torch.Tensor
    joints: torch.Tensor
    rot_mats: torch.Tensor
    rest_joints: torch.Tensor


class _ChumpyStandIn:
    """Stands in for chumpy arrays while unpickling, keeping their state (the array is ``x``)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


class _SMPLUnpickler(pickle.Unpickler):
    """Reads SMPL pickles without chumpy: chumpy objects become their plain arrays."""

    def find_class(self, module, name):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStandIn
        return super().find_class(module, name)


def _plain(value, key: str, path: Path):
    if isinstance(value, _ChumpyStandIn):
        state = value.state if isinstance(getattr(value, "state", None), dict) else {}
        if "x" not in state:
            raise ValueError(
                f"{path}: entry {key!r} is a chumpy expression, not a plain chumpy array, so it cannot "
                f"be read without chumpy. Install chumpy in a separate environment (pip install chumpy; "
                f"it needs an old numpy), load the file there and save it as npz with "
                f"np.savez(out, **{{k: np.asarray(v) for k, v in data.items()}}), then load the npz.")
        return np.asarray(state["x"])
    if hasattr(value, "toarray"):  # scipy sparse (SMPL's J_regressor)
        return value.toarray()
    return value


def _read_model_file(path: Path) -> dict:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    if path.suffix == ".pkl":
        with open(path, "rb") as f:
            try:
                raw = _SMPLUnpickler(f, encoding="latin1").load()
            except (pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as err:
                raise ValueError(f"{path} is not a readable SMPL pickle ({err}); expected the file from the "
                                 f"SMPL website (e.g. SMPL_NEUTRAL.pkl) or an npz with the same keys") from err
        if not isinstance(raw, dict):
            raise ValueError(f"{path} holds a {type(raw).__name__}, expected a dict of SMPL arrays")
        return {k: _plain(v, k, path) for k, v in raw.items()}
    raise ValueError(f"{path}: expected a .npz or .pkl SMPL-format file, got suffix {path.suffix!r}")


_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


class BodyModel(nn.Module):
    """An SMPL-format body model with HybrIK's 29 joints (24 SMPL joints + 5 leaf vertices).

    Wraps ``smplx.SMPLLayer``; its buffers (``v_template``, ``shapedirs``, ``posedirs``,
    ``J_regressor``, ``lbs_weights``) are exposed for the from-scratch code in
    :mod:`hybrik_lite.kinematics`. Move it with ``.to(device)``/``.double()`` like any module.
    """

    def __init__(self, data: dict, *, num_betas: int = 10, name: str = "body model",
                 leaf_vertex_ids=None):
        super().__init__()
        import smplx  # imported here so the rest of the package imports without it
        from smplx.utils import Struct

        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"{name}: missing SMPL arrays {missing}; expected keys {list(_REQUIRED)}")
        num_verts = np.asarray(data["v_template"]).shape[0]
        available = np.asarray(data["shapedirs"]).shape[-1]
        if not 1 <= num_betas <= available:
            raise ValueError(f"num_betas must be between 1 and {available} (the shape components in "
                             f"{name}), got {num_betas}")
        if np.asarray(data["J_regressor"]).shape[0] != 24:
            raise ValueError(f"{name}: expected 24 SMPL joints in J_regressor, got "
                             f"{np.asarray(data['J_regressor']).shape[0]}")
        if leaf_vertex_ids is None:
            if "leaf_vertex_ids" in data:
                leaf_vertex_ids = np.asarray(data["leaf_vertex_ids"]).tolist()
            elif num_verts == 6890:
                leaf_vertex_ids = list(SMPL_LEAF_VERTEX_IDS)
            else:
                raise ValueError(f"{name} has {num_verts} vertices and no 'leaf_vertex_ids'; pass "
                                 f"leaf_vertex_ids=(head_top, l_fingertip, r_fingertip, l_toe, r_toe)")
        vertex_ids = {k[len("vertex_id_"):]: int(v) for k, v in data.items() if k.startswith("vertex_id_")}
        struct = Struct(**{k: data[k] for k in _REQUIRED})
        # smplx keeps min(num_betas, 10) for models with fewer than 300 components; slice
        # the components ourselves so that any count the file holds can be used.
        struct.shapedirs = np.asarray(data["shapedirs"])[:, :, :num_betas]
        if num_betas > 10:
            struct.shapedirs = np.concatenate(
                [struct.shapedirs, np.zeros(struct.shapedirs.shape[:2] + (300 - num_betas,), np.float32)], -1) \
                if num_betas < 300 else struct.shapedirs
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta models
            self.layer = smplx.SMPLLayer(model_path=name, data_struct=struct, num_betas=num_betas,
                                         vertex_ids=vertex_ids or None)
        if self.layer.num_betas != num_betas:
            raise RuntimeError(f"smplx kept {self.layer.num_betas} shape components, expected {num_betas}")
        self.register_buffer("leaf_vertex_ids", torch.as_tensor(leaf_vertex_ids, dtype=torch.long))
        self.register_buffer("parents", torch.tensor(skeleton.PARENTS, dtype=torch.long))
        self.name = name
        self.info = json.loads(str(data["info"])) if "info" in data else {}

    # --- the model's arrays -------------------------------------------------------
    @property
    def num_betas(self) -> int:
        return self.layer.num_betas

    @property
    def faces(self) -> torch.Tensor:
        """``(F, 3)`` long: triangles, counter-clockwise seen from outside."""
        return self.layer.faces_tensor

    @property
    def v_template(self) -> torch.Tensor:
        return self.layer.v_template

    @property
    def shapedirs(self) -> torch.Tensor:
        return self.layer.shapedirs

    @property
    def posedirs(self) -> torch.Tensor:
        return self.layer.posedirs

    @property
    def J_regressor(self) -> torch.Tensor:  # noqa: N802 (SMPL's name)
        return self.layer.J_regressor

    @property
    def lbs_weights(self) -> torch.Tensor:
        return self.layer.lbs_weights

    @property
    def smpl_parents(self) -> torch.Tensor:
        """``(24,)`` the kinematic tree as read from the model file."""
        return self.layer.parents

    # --- checks ------------------------------------------------------------------
    def _check_betas(self, betas: torch.Tensor) -> torch.Tensor:
        check_tensor(betas, "betas", (self.num_betas,), min_dims=2)
        if betas.dim() != 2:
            raise ValueError(f"betas must have shape (B, {self.num_betas}), got {tuple(betas.shape)}")
        check_same({"body model": self.v_template, "betas": betas})
        return check_finite(betas, "betas")

    def _pose_to_rot_mats(self, pose: torch.Tensor) -> torch.Tensor:
        if torch.is_tensor(pose) and pose.dim() == 3 and pose.shape[1:] == (24, 3):
            check_finite(pose, "pose")
            return rodrigues(pose)
        if torch.is_tensor(pose) and pose.dim() == 4 and pose.shape[1:] == (24, 3, 3):
            return check_finite(pose, "pose")
        shape = tuple(pose.shape) if torch.is_tensor(pose) else type(pose).__name__
        raise ValueError(f"pose must be (B, 24, 3) axis-angle or (B, 24, 3, 3) rotation matrices, got {shape}; "
                         f"a flat (B, 72) pose can be reshaped with pose.reshape(-1, 24, 3)")

    # --- forward -------------------------------------------------------------------
    def _arrays(self) -> dict:
        """The model's arrays laid out for :meth:`forward`, rebuilt when a buffer moves or changes.

        Coordinates are stored *planar*, ``(3, V)`` rather than ``(V, 3)``, so that every per-vertex
        step is a few long contiguous vector operations. The joints are regressed once, from the
        template and the shape directions (``J(beta) = J T + (J S) beta``, the same sum in another
        order), and the pose correctives are skipped when ``posedirs`` is all zero (the open model).
        """
        sources = (self.v_template, self.shapedirs, self.posedirs, self.J_regressor, self.lbs_weights,
                   self.leaf_vertex_ids)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
        if getattr(self, "_arrays_key", None) != key:
            v_template, shapedirs, posedirs, regressor, weights, leaves = sources
            num_verts, num_betas = v_template.shape[0], shapedirs.shape[-1]
            joint_template = torch.cat([regressor @ v_template, v_template[leaves]])               # (29, 3)
            joint_dirs = torch.cat([torch.einsum("jv,vck->jck", regressor, shapedirs), shapedirs[leaves]])
            self._arrays_cache = {
                "template": v_template.t().reshape(-1),                                          # (3V,)
                "shape_dirs": shapedirs.permute(2, 1, 0).reshape(num_betas, -1),                 # (K, 3V)
                "pose_dirs": (posedirs.reshape(-1, num_verts, 3).transpose(1, 2).reshape(posedirs.shape[0], -1)
                              if bool(posedirs.any()) else None),                               # (207, 3V)
                "joint_template": joint_template.reshape(-1),                                   # (87,)
                "joint_dirs": joint_dirs.permute(2, 0, 1).reshape(num_betas, -1),                # (K, 87)
                "weights": weights.t().contiguous(),                                              # (24, V)
            }
            self._arrays_key = key
        return self._arrays_cache

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """The 29 rest-pose joints of shape ``betas``: ``(B, 10) -> (B, 29, 3)``."""
        self._check_betas(betas)
        arrays = self._arrays()
        return torch.addmm(arrays["joint_template"], betas, arrays["joint_dirs"]).reshape(betas.shape[0], -1, 3)

    def forward(self, betas: torch.Tensor, pose: torch.Tensor, transl: torch.Tensor | None = None
                ) -> BodyModelOutput:
        """Pose and shape the mesh: SMPL's ``M(beta, theta)``.

        Args:
            betas: ``(B, num_betas)`` shape coefficients.
            pose: ``(B, 24, 3)`` axis-angle or ``(B, 24, 3, 3)`` local rotation matrices.
            transl: optional ``(B, 3)`` translation added to vertices and joints.

        The maths of :func:`hybrik_lite.kinematics.smpl_forward` (and of smplx's ``lbs``; the
        tests check both), arranged for speed: planar coordinates, joints regressed once, no pose
        correctives for a model without any, and each vertex's blended transform applied as
        twelve long multiply-adds instead of one tiny matrix product per vertex.
        """
        self._check_betas(betas)
        rot_mats = self._pose_to_rot_mats(pose)
        check_same({"betas": betas, "pose": rot_mats})
        batch = betas.shape[0]
        if rot_mats.shape[0] != batch:
            raise ValueError(f"betas and pose must have the same batch size, got {batch} and {rot_mats.shape[0]}")
        arrays = self._arrays()
        rest_joints = self.rest_joints(betas)
        points = torch.addmm(arrays["template"], betas, arrays["shape_dirs"])                # (B, 3V) shaped
        if arrays["pose_dirs"] is not None:                                                  # pose correctives
            eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
            points = torch.addmm(points, (rot_mats[:, 1:] - eye).reshape(batch, -1), arrays["pose_dirs"])
        posed, transforms = forward_kinematics(rot_mats, rest_joints[:, :24], self.smpl_parents)
        # skinning: x -> sum_j w_j (G_j x + p_j - G_j t_j); blend the joints' 3x4 [G_j | p_j - G_j t_j]
        rotations = transforms[:, :, :3, :3]
        moves = posed - (rotations @ rest_joints[:, :24, :, None])[..., 0]
        per_joint = torch.cat([rotations, moves[..., None]], -1).reshape(batch, 24, 12)
        blended = (per_joint.transpose(1, 2) @ arrays["weights"]).reshape(batch, 3, 4, -1)   # (B, 3, 4, V)
        points = points.reshape(batch, 3, 1, -1)
        planar = blended[:, :, 3]
        for k in range(3):
            planar = torch.addcmul(planar, blended[:, :, k], points[:, k])
        vertices = planar.transpose(1, 2).contiguous()                                        # (B, V, 3)
        joints = torch.cat([posed, vertices[:, self.leaf_vertex_ids]], dim=1)
        if transl is not None:
            check_tensor(transl, "transl", (3,), min_dims=2)
            vertices, joints = vertices + transl[:, None], joints + transl[:, None]
        return BodyModelOutput(vertices=vertices, joints=joints, rot_mats=rot_mats, rest_joints=rest_joints)


def load(path: str | os.PathLike | None = None, *, resolution: str = "full", num_betas: int = 10,
         leaf_vertex_ids=None) -> BodyModel:
    """Load a body model.

    Args:
        path: ``None`` for the shipped open model; else an SMPL-format ``.pkl`` (the original,
            chumpy-pickled files are read without chumpy) or ``.npz`` file.
        resolution: for the open model, ``"full"`` (13,718 vertices) or ``"low"`` (1,229 vertices).
        num_betas: number of shape components to use (at most what the file holds, e.g. 300 in SMPL v1.1).
        leaf_vertex_ids: five vertex ids for the leaf joints; defaults to the ids stored in the file,
            or HybrIK's ids for SMPL's 6,890-vertex mesh.
    """
    if path is None:
        path = default_model_path(resolution)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the model file itself, e.g. {path}/SMPL_NEUTRAL.pkl")
    if not path.is_file():
        raise FileNotFoundError(f"body model file {path} does not exist; call body_model.load() for the "
                                f"shipped open model, or pass the path of an SMPL .pkl/.npz file")
    return BodyModel(_read_model_file(path), num_betas=num_betas, name=str(path),
                     leaf_vertex_ids=leaf_vertex_ids)


# The toy model's skeleton: each joint's rest offset from its parent (metres; Y up, the body faces +Z,
# its left at +X, arms out in a T), for SMPL's 24 joints and HybrIK's 5 leaves (skeleton.PARENTS order),
# and the radius of the tube around the bone that ends at the joint.
_TOY_OFFSETS = (
    (0, 0, 0), (0.07, -0.09, 0), (-0.07, -0.09, 0), (0, 0.11, 0), (0.03, -0.38, 0), (-0.03, -0.38, 0),
    (0, 0.13, 0), (-0.01, -0.4, -0.04), (0.01, -0.4, -0.04), (0, 0.05, 0.02), (0.02, -0.06, 0.12),
    (-0.02, -0.06, 0.12), (0, 0.21, -0.03), (0.07, 0.11, -0.01), (-0.07, 0.11, -0.01), (0, 0.09, 0.05),
    (0.12, 0.04, -0.01), (-0.12, 0.04, -0.01), (0.26, -0.01, -0.02), (-0.26, -0.01, -0.02), (0.25, 0.01, 0),
    (-0.25, 0.01, 0), (0.08, -0.01, -0.01), (-0.08, -0.01, -0.01),
    (0, 0.12, 0.01), (0.09, 0, 0), (-0.09, 0, 0), (0, -0.02, 0.06), (0, -0.02, 0.06))
_TOY_RADII = (0, 0.08, 0.08, 0.1, 0.07, 0.07, 0.11, 0.05, 0.05, 0.11, 0.04, 0.04, 0.09, 0.06, 0.06, 0.05,
              0.05, 0.05, 0.045, 0.045, 0.035, 0.035, 0.03, 0.03, 0.08, 0.025, 0.025, 0.035, 0.035)


def toy_smpl_arrays(num_verts: int = 6890, num_betas: int = 10, seed: int = 0) -> dict:
    """A toy SMPL-format model *with pose correctives*, for teaching and tests: ``{key: array}``.

    Not a human body: a tube around each of the 28 bones of HybrIK's tree (SMPL's 23 plus the
    5 leaves), in SMPL's frame (metres, Y up, facing +Z, left at +X, T-pose), with SMPL's arrays
    and shapes: ``v_template (V, 3)``, ``shapedirs (V, 3, num_betas)`` (beta 0 scales the body,
    the others thicken or thin the tubes), ``posedirs (V, 3, 207)`` (random but nonzero: each of
    a joint's 9 features swells or slims the tubes that the joint or its parent skins),
    ``J_regressor (24, V)`` (rows average nearby vertices), ``weights (V, 24)`` (each tube follows
    the joint it starts at, and blends with the neighbouring joints near its ends), ``kintree_table``
    and ``f`` (each tube triangulated, facing outwards, open along one seam).
    With 6,890 vertices (SMPL's count) the leaf joints are SMPL's leaf vertex ids, as for a real
    SMPL file; with any other count the arrays name their own (``leaf_vertex_ids``, and
    ``vertex_id_*`` for smplx's 21 extra keypoints, placed on arbitrary vertices).

        arrays = body_model.toy_smpl_arrays(seed=0)
        bm = body_model.BodyModel(arrays, name="toy")       # as a model
        np.savez("TOY_SMPL.npz", **arrays)                  # as a file: body_model.load("TOY_SMPL.npz")
    """
    from scipy.spatial import Delaunay
    from smplx.vertex_ids import vertex_ids as smplx_vertex_ids

    parents = skeleton.PARENTS
    bones = list(range(1, len(parents)))                       # bone b ends at joint b, starts at parents[b]
    if num_verts < 8 * len(bones):
        raise ValueError(f"num_verts must be at least {8 * len(bones)} (8 per bone), got {num_verts}")
    if num_betas < 1:
        raise ValueError(f"num_betas must be at least 1, got {num_betas}")
    rng = np.random.default_rng(seed)
    joints = np.zeros((len(parents), 3))
    for j in bones:
        joints[j] = joints[parents[j]] + np.array(_TOY_OFFSETS[j])
    lengths = np.array([np.linalg.norm(_TOY_OFFSETS[b]) for b in bones])
    area = lengths * np.array([_TOY_RADII[b] for b in bones])
    counts = np.maximum(8, np.floor(area / area.sum() * num_verts)).astype(int)
    counts[np.argmax(counts)] += num_verts - counts.sum()      # exactly num_verts

    leaf = lambda b: b >= skeleton.NUM_SMPL_JOINTS             # noqa: E731
    verts, faces, bone_of, along, radial, tips = [], [], [], [], [], {}
    for b, n in zip(bones, counts):
        start, axis = joints[parents[b]], joints[b] - joints[parents[b]]
        unit = axis / np.linalg.norm(axis)
        e1 = np.cross(unit, [0.0, 0.0, 1.0] if abs(unit[2]) < 0.9 else [1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(unit, e1)                                # (e1, e2, unit) right-handed
        s, angle = rng.random(n), rng.random(n) * 2 * np.pi
        if leaf(b):                                            # a dome closing at the leaf vertex
            s[0], angle[0] = 1.0, np.pi
            tips[b] = len(bone_of)
        radius = _TOY_RADII[b] * (np.sqrt(np.clip(1 - s ** 2, 0, 1)) if leaf(b) else 1.0)
        out = np.cos(angle)[:, None] * e1 + np.sin(angle)[:, None] * e2
        tri = Delaunay(np.stack([s * np.linalg.norm(axis), angle * _TOY_RADII[b]], 1)).simplices
        uv = np.stack([s, angle], 1)[tri]                      # make every triangle face outwards
        (du1, dv1), (du2, dv2) = (uv[:, 1] - uv[:, 0]).T, (uv[:, 2] - uv[:, 0]).T
        flip = du1 * dv2 - dv1 * du2 > 0                       # counter-clockwise in (s, angle): inwards
        tri[flip] = tri[flip][:, ::-1]
        faces.append(tri + len(bone_of))
        verts.append(start + s[:, None] * axis + np.atleast_1d(radius)[..., None] * out)
        bone_of += [b] * n
        along.append(s)
        radial.append(out)
    verts, faces, bone_of = np.concatenate(verts), np.concatenate(faces), np.array(bone_of)
    along, radial = np.concatenate(along), np.concatenate(radial)

    # skinning: a tube follows the joint it starts at, and blends half-way into the next joint
    # (its end) and the previous one (its start's parent) near its ends
    num_smpl = skeleton.NUM_SMPL_JOINTS
    weights = np.zeros((num_verts, num_smpl))
    start = np.array([parents[b] for b in bone_of])
    to_end = np.where(bone_of < num_smpl, 0.5 * np.clip((along - 0.6) / 0.4, 0, 1), 0.0)
    grand = np.array([parents[j] for j in start])
    to_start = np.where(grand >= 0, 0.5 * np.clip((0.4 - along) / 0.4, 0, 1), 0.0)
    rows = np.arange(num_verts)
    weights[rows, start] = 1 - to_end - to_start
    np.add.at(weights, (rows, np.minimum(bone_of, num_smpl - 1)), to_end)
    np.add.at(weights, (rows, np.maximum(grand, 0)), to_start)

    regressor = np.zeros((num_smpl, num_verts))
    for j in range(num_smpl):
        near = np.argsort(np.linalg.norm(verts - joints[j], axis=1))[:12]
        regressor[j, near] = rng.random(12) + 0.5
    regressor /= regressor.sum(1, keepdims=True)

    thickness = rng.normal(0, 0.01, (len(parents), num_betas))[bone_of]          # (V, num_betas)
    shapedirs = radial[:, :, None] * thickness[:, None, :] + rng.normal(0, 0.001, (num_verts, 3, num_betas))
    shapedirs[:, :, 0] = 0.06 * verts                                            # beta 0: overall size
    # pose correctives: each feature (R_k - I)[a, b] swells or slims each tube by its own random
    # amount, only where joint k or its parent skins it
    skinned_by = weights + weights[:, [max(p, 0) for p in skeleton.SMPL_PARENTS]]
    swell = rng.normal(0, 0.01, (len(parents), num_smpl - 1, 9))[bone_of]       # (V, 23, 9)
    posedirs = radial[:, :, None, None] * (swell * skinned_by[:, 1:, None])[:, None]

    # where the leaf vertices go: SMPL's ids on SMPL's vertex count, else wherever the tubes put them
    order = np.arange(num_verts)                                                 # new index -> old
    tip_ids = [tips[b] for b in range(num_smpl, len(parents))]
    if num_verts == 6890:
        rest_ids = np.setdiff1d(order, SMPL_LEAF_VERTEX_IDS)
        order[list(SMPL_LEAF_VERTEX_IDS)] = tip_ids
        order[rest_ids] = np.setdiff1d(np.arange(num_verts), tip_ids)
    new_index = np.argsort(order)
    kintree = np.stack([np.array(skeleton.SMPL_PARENTS), np.arange(num_smpl)]).astype(np.int64)
    kintree[0, 0] = 4294967295                                                   # as in SMPL's own files
    arrays = {
        "v_template": verts[order].astype(np.float32),
        "shapedirs": shapedirs[order].astype(np.float32),
        "posedirs": posedirs[order].reshape(num_verts, 3, 207).astype(np.float32),
        "J_regressor": regressor[:, order].astype(np.float32),
        "weights": weights[order].astype(np.float32),
        "kintree_table": kintree,
        "f": new_index[faces].astype(np.int64),
    }
    if num_verts != 6890:
        arrays["leaf_vertex_ids"] = new_index[tip_ids].astype(np.int64)
        for k, name in enumerate(sorted(smplx_vertex_ids["smplh"])):
            arrays[f"vertex_id_{name}"] = np.array((37 * k) % num_verts, dtype=np.int64)
    return arrays
