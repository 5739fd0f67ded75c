"""Load a body model: the shipped open SMPL-format model, or a real SMPL file, through smplx.

    from hybrik_lite import body_model
    bm = body_model.load()                  # the open model that ships with the package
    bm = body_model.load("SMPL_NEUTRAL.pkl") # a real SMPL file, if you have one
    out = bm(betas, pose)                   # betas (B, 10); pose (B, 24, 3) or (B, 24, 3, 3)
    out.vertices, out.joints                # (B, V, 3), (B, 29, 3)

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
from .kinematics import rodrigues

__all__ = ["BodyModel", "BodyModelOutput", "load", "default_model_path", "SMPL_LEAF_VERTEX_IDS"]

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
    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """The 29 rest-pose joints of shape ``betas``: ``(B, 10) -> (B, 29, 3)``."""
        self._check_betas(betas)
        v_shaped = self.v_template + torch.einsum("bk,vck->bvc", betas, self.shapedirs)
        joints = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)
        return torch.cat([joints, v_shaped[:, self.leaf_vertex_ids]], dim=1)

    def forward(self, betas: torch.Tensor, pose: torch.Tensor, transl: torch.Tensor | None = None
                ) -> BodyModelOutput:
        """Pose and shape the mesh.

        Args:
            betas: ``(B, num_betas)`` shape coefficients.
            pose: ``(B, 24, 3)`` axis-angle or ``(B, 24, 3, 3)`` local rotation matrices.
            transl: optional ``(B, 3)`` translation added to vertices and joints.
        """
        self._check_betas(betas)
        rot_mats = self._pose_to_rot_mats(pose)
        check_same({"betas": betas, "pose": rot_mats})
        if rot_mats.shape[0] != betas.shape[0]:
            raise ValueError(f"betas and pose must have the same batch size, got {betas.shape[0]} and "
                             f"{rot_mats.shape[0]}")
        out = self.layer(betas=betas, global_orient=rot_mats[:, :1], body_pose=rot_mats[:, 1:])
        joints = torch.cat([out.joints[:, :24], out.vertices[:, self.leaf_vertex_ids]], dim=1)
        vertices = out.vertices
        if transl is not None:
            check_tensor(transl, "transl", (3,), min_dims=2)
            vertices, joints = vertices + transl[:, None], joints + transl[:, None]
        return BodyModelOutput(vertices=vertices, joints=joints, rot_mats=rot_mats,
                               rest_joints=self.rest_joints(betas))


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
