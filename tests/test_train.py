"""train.py and checkpoint.py: exact resume, DDP on CPU (gloo), the checkpoint's guarantees, the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hybrik_lite import checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=0.125", "model.head_channels=16", "model.fc_dim=32", "train.batch_size=4",
        "train.log_every=1", "train.val_every=1000", "train.ckpt_every=2", "train.warmup_steps=2",
        "data.num_workers=0", "data.val_samples=4", "data.resolution=low"]


def tiny_config(tmp_path, steps=4, extra=()):
    return train.apply_overrides(train.preset("cpu-small"),
                                 TINY + [f"train.steps={steps}", f"train.out_dir={tmp_path}", *extra])


def losses_of(run_dir: Path) -> list[tuple[int, float]]:
    records, _ = train.read_metrics(run_dir / "metrics.jsonl")
    return [(r["step"], r["loss"]) for r in records]


def test_an_interrupted_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit(tmp_path):
    straight = tiny_config(tmp_path / "a")
    train.train(straight, progress=False)
    interrupted = tiny_config(tmp_path / "b")
    train.train(interrupted, progress=False, stop_after=2)
    assert checkpoint.load(tmp_path / "b" / "cpu-small" / "last.pt")["step"] == 2
    with open(tmp_path / "b" / "cpu-small" / "metrics.jsonl", "a") as log:   # a crash after the checkpoint
        log.write(json.dumps({"step": 3, "loss": -1.0}) + "\n" + json.dumps({"validation": {"step": 3}}) + "\n")
    train.train(interrupted, progress=False, resume=True)
    a, b = losses_of(tmp_path / "a" / "cpu-small"), losses_of(tmp_path / "b" / "cpu-small")
    assert [s for s, _ in a] == [1, 2, 3, 4] and a == b            # the same floats, exactly
    wa = checkpoint.load(tmp_path / "a" / "cpu-small" / "last.pt")["model"]
    wb = checkpoint.load(tmp_path / "b" / "cpu-small" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_run_is_never_overwritten_and_resume_refuses_another_config(tmp_path):
    cfg = tiny_config(tmp_path, steps=2)
    threads = torch.get_num_threads()
    train.train(cfg, progress=False)
    assert torch.get_num_threads() == threads                      # the run's thread count does not leak
    before = (tmp_path / "cpu-small" / "last.pt").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train.train(cfg, progress=False)
    other = tiny_config(tmp_path, steps=2, extra=["model.width=0.25"])
    with pytest.raises(ValueError, match=r"model\.width = 0\.125.*0\.25"):
        train.train(other, progress=False, resume=True)
    assert (tmp_path / "cpu-small" / "last.pt").read_bytes() == before


def test_ddp_with_two_cpu_processes_gives_the_single_process_losses(tmp_path):
    # dropout off: with it, the masks would depend on how the batch is split
    args = [a for item in TINY + ["train.steps=2", "model.dropout=0.0", f"train.out_dir={tmp_path}"]
            for a in ("--set", item)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    one = subprocess.run([sys.executable, "-m", "hybrik_lite", "train", "--no-progress", "--name", "one", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stdout + one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29533", "-m", "hybrik_lite", "train", "--no-progress", "--name", "two", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "world size 2" in two.stdout + two.stderr
    a, b = losses_of(tmp_path / "one"), losses_of(tmp_path / "two")
    assert [s for s, _ in a] == [s for s, _ in b] == [1, 2]
    for (_, la), (_, lb) in zip(a, b):
        assert abs(la - lb) <= 1e-4 * abs(la), (a, b)


def test_checkpoint_errors_are_clear(tmp_path):
    net = torch.nn.Linear(2, 2)
    good = checkpoint.save(tmp_path / "good.pt", model=net, config={"model": {"width": 1}}, body_model={"sha256": "x"})
    payload = checkpoint.load(good)
    assert payload["format"] == checkpoint.FORMAT and payload["format_version"] == checkpoint.FORMAT_VERSION
    assert {"package_version", "config", "body_model", "model", "step", "rng", "extra"} <= set(payload)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        checkpoint.load(truncated)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(1000))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        checkpoint.load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": net.state_dict()}, foreign)
    with pytest.raises(ValueError, match="not a hybrik-lite checkpoint"):
        checkpoint.load(foreign)
    with pytest.raises(ValueError, match="body model"):
        checkpoint.check_compatible(payload, body_model={"sha256": "y", "file": "other.npz"})
    with pytest.raises(ValueError, match=r"model\.width = 1.*2"):
        checkpoint.check_compatible(payload, config={"model": {"width": 2}})


def test_a_failed_save_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    net = torch.nn.Linear(2, 2)
    path = checkpoint.save(tmp_path / "last.pt", model=net, config={}, body_model={}, step=7)
    before = path.read_bytes()

    def crash(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, model=net, config={}, body_model={}, step=8)
    assert path.read_bytes() == before and checkpoint.load(path)["step"] == 7


def test_rng_states_round_trip():
    import random

    import numpy as np

    state = checkpoint.rng_state()
    first = (torch.rand(3), random.random(), np.random.rand(2))
    checkpoint.set_rng_state(state)
    again = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(first[0], again[0]) and first[1] == again[1] and (first[2] == again[2]).all()


def test_config_overrides_and_their_errors():
    cfg = train.apply_overrides(train.preset("cpu-small"), ["train.lr=3e-4", "model.width=0.25",
                                                             "train.lr_milestones=[0.5, 0.8]", "train.amp=false"])
    assert cfg.train.lr == 3e-4 and cfg.model.width == 0.25 and cfg.train.lr_milestones == (0.5, 0.8)
    assert cfg.train.amp is False
    assert train.RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="did you mean 'train.lr'"):
        train.apply_overrides(cfg, ["train.lrr=1"])
    with pytest.raises(ValueError, match="did you mean 'train'"):
        train.apply_overrides(cfg, ["trian.lr=1"])
    with pytest.raises(ValueError, match="expected a int"):
        train.apply_overrides(cfg, ["train.steps=many"])
    with pytest.raises(ValueError, match="section.key=value"):
        train.apply_overrides(cfg, ["lr=1"])
    with pytest.raises(ValueError, match="did you mean 'cpu-small'"):
        train.preset("cpu_small")


def test_learning_rate_schedule():
    cfg = train.TrainConfig(steps=100, lr=1.0, warmup_steps=10, lr_milestones=(0.5, 0.8), lr_gamma=0.1)
    assert train.learning_rate(0, cfg) == pytest.approx(0.1)
    assert train.learning_rate(9, cfg) == 1.0 and train.learning_rate(49, cfg) == 1.0
    assert train.learning_rate(50, cfg) == pytest.approx(0.1) and train.learning_rate(80, cfg) == pytest.approx(0.01)


def test_cli_reports_bad_options(tmp_path, capsys):
    assert train.main(["--set", "train.stpes=3", "--set", f"train.out_dir={tmp_path}"]) == 2
    assert "did you mean 'train.steps'" in capsys.readouterr().out


def test_rendering_on_the_training_device_gives_the_worker_streams_losses(tmp_path):
    # the same samples rendered in a DataLoader worker process or in the training process itself
    workers = tiny_config(tmp_path / "w", steps=2, extra=["data.num_workers=1"])
    here = tiny_config(tmp_path / "d", steps=2, extra=["data.render_on=device"])
    train.train(workers, progress=False, device="cpu")
    train.train(here, progress=False, device="cpu")
    a, b = losses_of(tmp_path / "w" / "cpu-small"), losses_of(tmp_path / "d" / "cpu-small")
    assert [s for s, _ in a] == [1, 2] and a == b
    with pytest.raises(ValueError, match="render_on.*'cpu'.*'device'"):
        train.apply_overrides(train.preset("cpu-small"), ["data.render_on=gpu"])
    assert train.preset("gpu-short").data.render_on == "device"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU rendering in training not run")
def test_training_renders_on_the_gpu(tmp_path):
    cfg = tiny_config(tmp_path, steps=2, extra=["data.render_on=device"])
    result = train.train(cfg, progress=False, device="cuda")
    assert result["step"] == 2 and all(torch.isfinite(torch.tensor(loss)) for _, loss in losses_of(tmp_path / "cpu-small"))


def test_a_checkpoint_from_before_a_config_field_existed_still_resumes(tmp_path):
    # a field added later (with the old behaviour as its default) must not block --resume
    cfg = tiny_config(tmp_path, steps=3)
    train.train(cfg, progress=False, stop_after=2)
    last = tmp_path / "cpu-small" / "last.pt"
    payload = checkpoint.load(last)
    del payload["config"]["data"]["render_on"]
    torch.save(payload, last)
    train.train(cfg, progress=False, resume=True)
    assert checkpoint.load(last)["step"] == 3


def test_throughput_leaves_out_validation_and_checkpoints(tmp_path, monkeypatch):
    import time

    def slow_validation(*args, **kwargs):
        time.sleep(2.0)
        return {"mpjpe_mm": 1.0, "pa_mpjpe_mm": 1.0, "pve_mm": 1.0}

    monkeypatch.setattr(train, "validate", slow_validation)
    cfg = tiny_config(tmp_path, steps=3, extra=["train.val_every=1"])
    train.train(cfg, progress=False)
    records, validations = train.read_metrics(tmp_path / "cpu-small" / "metrics.jsonl")
    assert len(validations) == 3
    # with the 2 s validations counted, windows 2 and 3 would be under 4 images / 2 s = 2 images/s
    assert all(r["images_per_s"] > 4 for r in records), [r["images_per_s"] for r in records]
