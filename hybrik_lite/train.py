"""Training: synthetic data rendered on the fly, exact resume, AMP on CUDA, DDP through torchrun.

    python -m hybrik_lite train                                  # the cpu-small preset
    python -m hybrik_lite train --preset cpu-small --set train.steps=200 --set train.lr=3e-4
    python -m hybrik_lite train --name my-run --resume           # continue runs/my-run/last.pt exactly
    python -m hybrik_lite train --data synthetic,h36m,3dpw --name mixed   # real data from $HYBRIK_LITE_DATA
    torchrun --nproc_per_node 2 -m hybrik_lite train             # several processes (GPUs, or gloo on CPU)

A run writes ``runs/<name>/config.json``, ``metrics.jsonl`` (one JSON line per logged step:
step, losses, lr, images/s, data-wait share; and per validation: MPJPE, PA-MPJPE, PVE in mm on
the frozen split) and ``last.pt`` (:mod:`hybrik_lite.checkpoint`).

The data: step ``k`` trains on samples ``k B ... (k + 1) B - 1`` of the synthetic stream with
seed ``data.seed``; process ``r`` of ``W`` renders its ``B / W`` slice of that global batch.
Each sample is a pure function of ``(seed, index)``, so a resumed run sees exactly the data the
uninterrupted one would, and the global batch does not depend on ``W``. ``--data`` mixes in real
datasets (:mod:`hybrik_lite.datasets`; ``--data synthetic,h36m,3dpw`` or ``synthetic:0.5,3dpw:0.5``):
sample ``i``'s source, annotation and augmentation are then drawn from ``(seed, i)`` too.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint, datasets, losses, model, synthetic
from ._checks import config_from_dict

__all__ = ["DataConfig", "TrainConfig", "RunConfig", "PRESETS", "preset", "apply_overrides", "learning_rate",
           "StepBatches", "validate", "read_metrics", "train", "main"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataConfig:
    """The training stream and the validation split."""
    seed: int = 0                      # training stream (the frozen split is seed 2026: never trained on)
    resolution: str = "full"           # mesh the images are rendered from
    occlusion_probability: float = 0.3
    num_workers: int = 1               # DataLoader processes rendering batches on the CPU (render_on="cpu")
    render_on: str = "cpu"             # "cpu": in num_workers processes (0: the training process);
                                       # "device": in the training process on its device (a GPU renders itself)
    val_split: str = ""                # a split folder; "" = the shipped frozen split
    val_samples: int = 256             # how many of its samples to validate on
    data: str = "synthetic"            # training sources and ratios, e.g. "synthetic,h36m,3dpw" or
                                       # "synthetic:0.5,3dpw:0.5" (hybrik_lite.datasets.parse_mix)
    data_root: str = ""                # folder holding h36m/, pw3d/, 3dhp/, coco/; "" = $HYBRIK_LITE_DATA

    def __post_init__(self):
        try:
            datasets.parse_mix(self.data)
        except ValueError as err:
            raise ValueError(f"DataConfig.data: {err}") from None
        if self.resolution not in ("full", "low"):
            raise ValueError(f"DataConfig.resolution: expected 'full' or 'low', got {self.resolution!r}")
        if self.render_on not in ("cpu", "device"):
            raise ValueError(f"DataConfig.render_on: expected 'cpu' (DataLoader workers) or 'device' (the training "
                             f"device, e.g. the GPU), got {self.render_on!r}")
        if self.num_workers < 0 or self.val_samples < 1 or not 0 <= self.occlusion_probability <= 1:
            raise ValueError(f"DataConfig: num_workers >= 0, val_samples >= 1 and occlusion_probability in "
                             f"[0, 1] expected, got {self}")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation. ``lr_milestones`` are shares of ``steps`` where the rate is multiplied by
    ``lr_gamma`` (HybrIK: x0.1 at epochs 90 and 120 of 200, i.e. 0.45 and 0.6)."""
    steps: int = 10_000
    batch_size: int = 32               # global: split across processes
    lr: float = 1e-3
    lr_milestones: tuple = (0.7, 0.9)
    lr_gamma: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 5.0             # max gradient norm; 0 = no clipping
    seed: int = 123123                 # the reference's seed
    amp: bool = True                   # bf16 (or fp16 + GradScaler) autocast, on CUDA only
    threads: int = 0                   # torch CPU threads of the training process (0 = torch's choice)
    log_every: int = 20
    val_every: int = 500
    ckpt_every: int = 250
    name: str = "cpu-small"
    out_dir: str = "runs"

    def __post_init__(self):
        for field in ("steps", "batch_size", "log_every", "val_every", "ckpt_every"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ValueError(f"TrainConfig.{field}: expected a positive int, got {getattr(self, field)!r}")
        if not self.lr > 0 or not 0 < self.lr_gamma <= 1 or any(not 0 < m < 1 for m in self.lr_milestones):
            raise ValueError(f"TrainConfig: lr > 0, lr_gamma in (0, 1] and milestones in (0, 1) expected, got "
                             f"lr={self.lr}, lr_gamma={self.lr_gamma}, lr_milestones={self.lr_milestones}")


_SECTIONS = {"model": model.ModelConfig, "loss": losses.LossWeights, "data": DataConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; saved as ``config.json`` and inside every checkpoint."""
    model: model.ModelConfig = model.ModelConfig()
    loss: losses.LossWeights = losses.LossWeights()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()

    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        unknown = [k for k in data if k not in _SECTIONS]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(_SECTIONS), n=1)
            raise ValueError(f"unknown config section {unknown[0]!r}; "
                             f"{'did you mean ' + repr(close[0]) + '? ' if close else ''}sections: {list(_SECTIONS)}")
        return cls(**{name: config_from_dict(kind, data.get(name, {})) for name, kind in _SECTIONS.items()})


#: Named presets. ``cpu-small``: the shipped checkpoint's recipe: on 2 CPU cores one renders the
#: data and one trains (about 68 images/s: 10,000 steps of 32 in about 80 minutes).
#: ``gpu-short``: the same network on a GPU for a few minutes (Colab), rendering its data on the GPU
#: (a Colab VM has 2 CPU cores: CPU workers would starve it). ``paper``: HybrIK's ResNet-34.
PRESETS: dict[str, RunConfig] = {
    "cpu-small": RunConfig(train=TrainConfig(threads=1)),
    "gpu-short": RunConfig(data=DataConfig(num_workers=0, render_on="device"),
                           train=TrainConfig(steps=3000, batch_size=128, lr=2e-3, name="gpu-short")),
    "paper": RunConfig(model=model.PRESETS["paper"], loss=losses.LossWeights(twist_raw=0.01),
                       data=DataConfig(num_workers=8),
                       train=TrainConfig(steps=200_000, batch_size=256, lr_milestones=(0.45, 0.6), name="paper",
                                         val_every=5000, ckpt_every=2000)),
}


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        raise ValueError(f"unknown training preset {name!r}; {'did you mean ' + repr(close[0]) + '? ' if close else ''}"
                         f"presets: {list(PRESETS)}")
    return PRESETS[name]


def _parse_value(text: str, current):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if isinstance(current, bool) and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(current, str) and not isinstance(value, str):
        value = text
    if type(value) is not type(current):
        raise ValueError(f"expected a {type(current).__name__} like {current!r}, got {text!r}")
    return value


def apply_overrides(config: RunConfig, overrides) -> RunConfig:
    """``["train.lr=3e-4", "model.width=0.25"]`` -> a new config; unknown keys get a "did you mean"."""
    data = config.to_dict()
    for item in overrides or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set expects section.key=value (e.g. train.lr=3e-4), got {item!r}")
        key, text = item.split("=", 1)
        section, field = key.split(".", 1)
        if section not in data:
            close = difflib.get_close_matches(section, list(data), n=1)
            raise ValueError(f"--set {item}: unknown section {section!r}; "
                             f"{'did you mean ' + repr(close[0]) + '? ' if close else ''}sections: {list(data)}")
        if field not in data[section]:
            close = difflib.get_close_matches(field, list(data[section]), n=1)
            raise ValueError(f"--set {item}: {section} has no key {field!r}; "
                             f"{'did you mean ' + repr(section + '.' + close[0]) + '? ' if close else ''}"
                             f"keys: {', '.join(data[section])}")
        try:
            data[section][field] = _parse_value(text, data[section][field])
        except ValueError as err:
            raise ValueError(f"--set {item}: {err}") from None
    return RunConfig.from_dict(data)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then steps of ``lr_gamma`` at the milestones."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    drops = sum(step >= round(m * cfg.steps) for m in cfg.lr_milestones)
    return cfg.lr * warm * cfg.lr_gamma ** drops


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------

class StepBatches(torch.utils.data.Dataset):
    """Item ``k`` is this process's slice of the global batch of step ``start + k``, rendered."""

    def __init__(self, dataset: synthetic.SyntheticDataset, global_batch: int, start: int, steps: int,
                 rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ValueError(f"train.batch_size {global_batch} must be divisible by the number of processes {world}")
        self.dataset, self.global_batch, self.start, self.steps = dataset, global_batch, start, steps
        self.local, self.rank = global_batch // world, rank

    def __len__(self):
        return max(0, self.steps - self.start)

    def indices(self, k: int) -> range:
        first = (self.start + k) * self.global_batch + self.rank * self.local
        return range(first, first + self.local)

    def __getitem__(self, k: int) -> dict:
        batch = self.dataset.batch(self.indices(k))
        batch.pop("mask", None)
        return batch


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

def validate(net, split: dict, *, batch_size: int = 64, device="cpu") -> dict:
    """MPJPE, PA-MPJPE and PVE in mm on a split (:func:`hybrik_lite.evaluate.evaluate` in the network's
    first test mode: adaptive IK for HybrIK, direct for the baseline; on the network's own mesh); the
    network's train/eval mode is restored."""
    from . import evaluate

    was_training = net.training
    body = net.hybrik.body if hasattr(net, "hybrik") else net.body
    mode = evaluate.modes_of(net)[0]
    scores = evaluate.evaluate(net, split, body, modes=(mode,), batch_size=batch_size, device=device)
    net.train(was_training)
    summary = scores["modes"][mode]
    return {k: summary[k] for k in ("mpjpe_mm", "pa_mpjpe_mm", "pve_mm")}


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------

def _distributed():
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return rank, world, int(os.environ.get("LOCAL_RANK", "0"))


def _precision(device: torch.device, amp: bool):
    """(autocast dtype or None, GradScaler or None): bf16 where supported, else fp16 with a scaler."""
    if device.type != "cuda" or not amp:
        return None, None
    if torch.cuda.get_device_capability(device)[0] >= 8:        # Ampere and newer: native bf16 (not emulated)
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def read_metrics(path) -> tuple[list[dict], list[dict]]:
    """A run's ``metrics.jsonl`` -> (training records, validation records), in the order written."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in rows if "validation" not in r], [r["validation"] for r in rows if "validation" in r]


def _truncate_log(path: Path, step: int) -> None:
    """Keep the records of ``metrics.jsonl`` up to ``step`` (rewritten atomically; a missing log is fine)."""
    if not path.exists():
        return

    def step_of(record: dict) -> int:
        return record["validation"]["step"] if "validation" in record else record["step"]

    kept = [line for line in path.read_text().splitlines() if line.strip() and step_of(json.loads(line)) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def _log_line(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def train(config: RunConfig, *, resume: bool = False, device: str | None = None, progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Run (or resume) training; returns the last logged record and the last validation.

    ``stop_after`` ends the run early after that many steps of *this* call (a test's stand-in
    for an interruption); the checkpoint is written there.
    """
    from . import body_model

    rank, world, local_rank = _distributed()
    tcfg, dcfg = config.train, config.data
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    threads_before = torch.get_num_threads()
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)          # restored when the run ends
    run_dir = Path(tcfg.out_dir) / tcfg.name
    last = run_dir / "last.pt"
    if not resume and last.exists():
        raise FileExistsError(f"{run_dir} already holds a run ({last}); continue it with --resume, or pick "
                              f"another --name (nothing there is overwritten)")
    torch.manual_seed(tcfg.seed)

    body = body_model.load(resolution=config.model.body_resolution).to(device)
    net = model.build(config.model, body=body).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    amp_dtype, scaler = _precision(device, tcfg.amp)
    identity = checkpoint.body_identity(body, config.model.body_resolution)
    start = 0
    if resume:
        payload = checkpoint.load(last)
        saved = RunConfig.from_dict(payload["config"]).to_dict()   # fields added since then: their defaults
        checkpoint.check_compatible({**payload, "config": saved}, config=config.to_dict(), body_model=identity,
                                    sections=("model", "loss", "data"))
        net.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        if scaler is not None and "scaler" in payload:
            scaler.load_state_dict(payload["scaler"])
        checkpoint.set_rng_state(payload["rng"])
        start = payload["step"]
    train_net = net
    if world > 1:
        train_net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    # the data stream, before anything is written (a missing dataset leaves no run folder behind)
    syn_cfg = synthetic.SyntheticConfig(image_size=config.model.image_size, resolution=dcfg.resolution,
                                        occlusion_probability=dcfg.occlusion_probability)
    render_device = device if dcfg.render_on == "device" else torch.device("cpu")
    stream = synthetic.SyntheticDataset(2 ** 31 - 1, seed=dcfg.seed, config=syn_cfg, device=render_device)
    stream = datasets.training_stream(dcfg.data, stream, root=dcfg.data_root or None,
                                      image_size=config.model.image_size, seed=dcfg.seed)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resume:       # records an interrupted run wrote after its last checkpoint are redone now
            _truncate_log(run_dir / "metrics.jsonl", start)
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        log.info("run %s: world size %d, device %s, %s, steps %d -> %d", run_dir, world, device,
                 f"autocast {amp_dtype}" if amp_dtype else "float32", start, tcfg.steps)

    end = tcfg.steps if stop_after is None else min(tcfg.steps, start + stop_after)
    batches = StepBatches(stream, tcfg.batch_size, start, end, rank, world)
    if dcfg.render_on == "device":       # rendered here, on the training device, one step at a time
        loader = (batches[k] for k in range(len(batches)))
    else:
        loader = torch.utils.data.DataLoader(
            batches, batch_size=None, shuffle=False, num_workers=dcfg.num_workers,
            worker_init_fn=synthetic.SyntheticDataset.worker_init, generator=torch.Generator(),  # not the global RNG
            persistent_workers=False, prefetch_factor=2 if dcfg.num_workers else None)
    val_split = None
    if rank == 0:
        val = synthetic.load_split(dcfg.val_split or None)
        val_split = {k: (v[:dcfg.val_samples] if k != "meta" else v) for k, v in val.items()}

    vertex_body = body if config.loss.vertices > 0 else None
    from tqdm.auto import tqdm

    bar = tqdm(total=end - start, initial=0, desc=f"train {tcfg.name}", disable=not progress or rank != 0)
    record, last_val = {}, {}
    window = {"t0": time.perf_counter(), "wait": 0.0, "images": 0, "terms": {}, "n": 0}
    t_wait = time.perf_counter()
    train_net.train()
    step = start
    for step_offset, batch in enumerate(loader):
        step = start + step_offset
        window["wait"] += time.perf_counter() - t_wait
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        targets = losses.targets_from_batch(batch, vertex_body)
        lr = learning_rate(step, tcfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            out = train_net(batch["image"])
            loss, terms = losses.hybrik_loss(out, targets, config.loss)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip if tcfg.grad_clip > 0 else math.inf)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        window["images"] += tcfg.batch_size
        window["n"] += 1
        for k, v in {"loss": loss.detach(), "grad_norm": grad_norm.detach(), **terms}.items():
            window["terms"][k] = window["terms"].get(k, 0.0) + v
        done = step + 1
        bar.update(1)
        if done % tcfg.log_every == 0 or done == end:
            elapsed = time.perf_counter() - window["t0"]
            means = {k: float(v) / window["n"] for k, v in window["terms"].items()}
            if world > 1:
                import torch.distributed as dist

                packed = torch.tensor(list(means.values()), device=device)
                dist.all_reduce(packed)
                means = dict(zip(means, (packed / world).tolist()))
            record = {"step": done, **means, "lr": lr, "images_per_s": window["images"] / elapsed,
                      "data_wait_share": window["wait"] / elapsed}
            if rank == 0:
                _log_line(run_dir / "metrics.jsonl", record)
                bar.set_postfix(loss=f"{means['loss']:.4f}", img_s=f"{record['images_per_s']:.0f}")
            window = {"t0": time.perf_counter(), "wait": 0.0, "images": 0, "terms": {}, "n": 0}
        t_side = time.perf_counter()         # validation and checkpoints: left out of the throughput
        if rank == 0 and (done % tcfg.val_every == 0 or done == tcfg.steps):
            last_val = {"step": done, **validate(net, val_split, device=device)}
            _log_line(run_dir / "metrics.jsonl", {"validation": last_val})
            log.info("step %d validation %s", done, last_val)
        if rank == 0 and (done % tcfg.ckpt_every == 0 or done == end):
            checkpoint.save(last, model=net, config=config.to_dict(), body_model=identity, step=done,
                            optimizer=optimizer, scaler=scaler, extra={"validation": last_val})
        t_wait = time.perf_counter()
        window["t0"] += t_wait - t_side
    bar.close()
    torch.set_num_threads(threads_before)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return {"last": record, "validation": last_val, "step": start + len(batches)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybrik_lite train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu-small", help=f"one of {list(PRESETS)}")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=3e-4 (repeatable)")
    parser.add_argument("--name", default=None, help="run name: writes runs/<name>/ (default: the preset's)")
    parser.add_argument("--data", default=None, metavar="SOURCES",
                        help="training sources, e.g. synthetic,h36m,3dpw or synthetic:0.5,3dpw:0.5 "
                             "(= --set data.data=...; "
                             "real datasets are read from $HYBRIK_LITE_DATA or --set data.data_root=DIR)")
    parser.add_argument("--resume", action="store_true", help="continue runs/<name>/last.pt exactly")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = apply_overrides(preset(args.preset), args.set + ([f"data.data={args.data}"] if args.data else []))
        if args.name:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, name=args.name))
        result = train(config, resume=args.resume, device=args.device, progress=not args.no_progress)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"error: {err}")
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result))
    return 0
