"""The one checkpoint format: saved atomically, loaded safely, mismatches explained.

A checkpoint is a ``torch.save``'d dict of plain data (tensors, numbers, strings, lists, dicts),
so it loads with ``torch.load(weights_only=True)``:

==================  =========================================================================
format              ``"hybrik-lite-checkpoint"``; ``format_version`` an int
package_version     the hybrik-lite version that wrote it
config              the run's config: ``{"model": ..., "loss": ..., "data": ..., "train": ...}``
body_model          the body model's identity: file name, sha256, vertices, betas, resolution
model               the network's ``state_dict`` (float16 when saved with ``half=True``)
optimizer, scaler   their ``state_dict``s, or absent
step                optimisation steps done; the data sampler resumes at ``step`` (sample ``i``
                    of the stream is a pure function of ``(seed, i)``)
rng                 torch (CPU and CUDA), python and numpy random states
extra               anything else the writer adds (e.g. the last validation metrics)
==================  =========================================================================

:func:`save` writes ``<path>.tmp``, flushes it to disk, then renames it over ``path``: a crash
mid-write leaves the last good checkpoint untouched.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from . import __version__, _data

__all__ = ["FORMAT", "FORMAT_VERSION", "save", "load", "body_identity", "check_compatible", "rng_state",
           "set_rng_state", "load_model", "shipped_checkpoint_path", "export"]

log = logging.getLogger(__name__)

FORMAT = "hybrik-lite-checkpoint"
FORMAT_VERSION = 1


@functools.lru_cache(maxsize=8)
def _sha256(path: str, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def body_identity(body, resolution: str | None = None) -> dict:
    """What identifies a body model: its file's name and sha256, vertices, shape components."""
    path = Path(body.name)
    digest = _sha256(str(path), path.stat().st_mtime) if path.is_file() else "unknown"
    return {"file": path.name, "sha256": digest, "num_vertices": int(body.v_template.shape[0]),
            "num_betas": int(body.num_betas), "resolution": resolution}


def rng_state() -> dict:
    """Every random state a training run draws from (torch CPU and CUDA, python, numpy)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]) + [random.getstate()[0]],
             "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
             "numpy_gauss": [int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`'s output."""
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[-1], tuple(python[:-1]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_gauss"][0], state["numpy_gauss"][1]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path, *, model: torch.nn.Module, config: dict, body_model: dict, step: int = 0,
         optimizer=None, scaler=None, rng: bool = True, extra: dict | None = None, half: bool = False) -> Path:
    """Write a checkpoint atomically (temp file, fsync, rename) and return its path.

    ``half=True`` stores floating weights in float16 (for a small shipped file); they load back
    into float32 modules. Optimizer state is kept only when ``optimizer`` is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
               "config": config, "body_model": body_model, "step": int(step),
               "model": {k: v.detach().cpu() for k, v in state.items()}, "extra": extra or {}}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scaler is not None:
        payload["scaler"] = scaler.state_dict()
    if rng:
        payload["rng"] = rng_state()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    log.info("saved checkpoint %s (step %d)", path, step)
    return path


def load(path, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; clear errors for a missing, corrupt, truncated
    or foreign file and for a newer format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; pass the path of a .pt file written by "
                                f"hybrik_lite (e.g. runs/<name>/last.pt)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip/pickle errors differ by torch version: one clear message for all
        raise ValueError(f"{path} could not be read as a checkpoint: it is corrupt or truncated, or not a "
                         f"torch file ({type(err).__name__}: {str(err)[:200]}). If a run was interrupted while "
                         f"saving, the previous checkpoint is intact: look for the other .pt files of the run") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = f"a dict with keys {sorted(payload)[:6]}" if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a hybrik-lite checkpoint (it holds {what}); checkpoints are written by "
                         f"hybrik_lite.checkpoint.save, e.g. by python -m hybrik_lite train")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format {payload['format_version']}, newer than this hybrik-lite "
                         f"({__version__}, format {FORMAT_VERSION}); upgrade hybrik-lite to read it")
    return payload


def check_compatible(payload: dict, *, config: dict | None = None, body_model: dict | None = None,
                     sections=("model",)) -> None:
    """Raise ``ValueError`` naming the first differing key when the checkpoint was written for another
    model config (``sections`` of ``config`` compared) or another body model."""
    if config is not None:
        for section in sections:
            have, want = payload["config"].get(section, {}), config.get(section, {})
            for key in sorted(set(have) | set(want)):
                if have.get(key) != want.get(key):
                    raise ValueError(
                        f"the checkpoint was written with {section}.{key} = {have.get(key)!r}, but this run has "
                        f"{want.get(key)!r}; use the checkpoint's config (--preset/--set {section}.{key}=...) or "
                        f"start a new run without --resume")
    if body_model is not None:
        have = payload["body_model"]
        for key in ("sha256", "num_vertices", "num_betas"):
            if have.get(key) != body_model.get(key):
                raise ValueError(
                    f"the checkpoint was trained with body model {have.get('file')} ({key} {have.get(key)!r}), but "
                    f"this one is {body_model.get('file')} ({key} {body_model.get(key)!r}); load the same body "
                    f"model file the checkpoint names")


def shipped_checkpoint_path(name: str = "hybrik_cpu_small.pt") -> Path:
    """The checkpoint that ships with the package (checkout, wheel or ``HYBRIK_LITE_DATA``)."""
    return _data.find("checkpoints", name, "the shipped checkpoint (train one with python -m hybrik_lite train)")


def load_model(path=None, *, body=None, device="cpu"):
    """Build the network a checkpoint describes and load its weights (float32, eval mode).

    Returns ``(model, payload)``. ``path`` defaults to the shipped checkpoint. ``body`` (a
    :class:`hybrik_lite.body_model.BodyModel`) replaces the config's body model, e.g. the
    full-resolution mesh for evaluation; the IK's skeleton then comes from it.
    """
    from . import model as model_lib

    payload = load(shipped_checkpoint_path() if path is None else path)
    config = model_lib.ModelConfig.from_dict(payload["config"]["model"])
    net = model_lib.build(config, body=body)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: the weights do not fit the network its config describes (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}); the file was written by another version of the model")
    return net.to(device).eval(), payload


def export(src, dst, *, half: bool = True) -> Path:
    """A shippable copy of a training checkpoint: weights (float16 by default), config, body model
    identity, step and ``extra``; no optimizer or RNG state (it cannot be resumed, only loaded)."""
    payload = load(src)
    state = payload["model"]
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    slim = {k: payload[k] for k in ("format", "format_version", "package_version", "config", "body_model", "step",
                                    "extra")}
    slim["model"] = state
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(slim, tmp)
    os.replace(tmp, dst)
    return dst
