"""The headless commands: eval and demo on a checkpoint the test trains, dispatch, clear errors."""
from __future__ import annotations

import json

import pytest
import torch

from hybrik_lite import __main__ as cli
from hybrik_lite import checkpoint, demo, evaluate, train

TINY = ["model.width=0.125", "model.head_channels=16", "model.fc_dim=32", "train.batch_size=4", "train.steps=2",
        "train.val_every=1000", "data.num_workers=0", "data.val_samples=4", "data.resolution=low"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    train.train(train.apply_overrides(train.preset("cpu-small"), TINY + [f"train.out_dir={out}"]), progress=False)
    return out / "cpu-small" / "last.pt"


def test_eval_on_a_fresh_split_writes_every_breakdown(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert cli.main(["eval", "--checkpoint", str(tiny_checkpoint), "--seed", "3", "--num", "6", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MPJPE" in printed and "adaptive" in printed and "naive" in printed
    result = json.loads(out.read_text())
    assert result["samples"] == 6 and sum(result["views"].values()) == 6
    for mode in ("adaptive", "naive"):
        s = result["modes"][mode]
        assert s["pa_mpjpe_mm"] <= s["mpjpe_mm"] + 1e-6            # alignment can only help
        assert len(s["per_joint_mpjpe_mm"]) == 24 and set(s["per_view"]) <= set(evaluate.VIEWS)


def test_evaluate_scores_perfect_predictions_zero():
    from hybrik_lite import body_model, synthetic

    split = {k: v[:6] for k, v in synthetic.load_split().items() if k != "meta"}
    body = body_model.load(resolution="low")

    class Oracle(torch.nn.Module):      # returns the truth: every error must vanish
        def forward(self, images, ik_mode=None):
            i = [int(torch.nonzero((split["image"] == img).flatten(1).all(1))[0]) for img in images]
            out = body(split["betas"][i], split["pose"][i])
            return {"joints": out.joints - out.joints[:, :1], "vertices": out.vertices - out.joints[:, :1],
                    "transl": split["joints_cam"][i, 0]}

    result = evaluate.evaluate(Oracle(), split, body, batch_size=4)
    for s in result["modes"].values():
        assert s["mpjpe_mm"] < 1e-3 and s["pa_mpjpe_mm"] < 1e-3 and s["pve_mm"] < 1e-3 and s["reproj_px"] < 1e-3


def test_heading_bins():
    from hybrik_lite import camera
    from hybrik_lite.kinematics import rodrigues

    yaws = torch.tensor([0.0, 30.0, 90.0, -100.0, 170.0, 180.0])
    R = camera.CAMERA_FROM_BODY @ rodrigues(torch.stack([torch.zeros(6), torch.deg2rad(yaws), torch.zeros(6)], -1))
    assert torch.allclose(evaluate.heading_deg(R).abs(), yaws.abs(), atol=1e-4)
    assert evaluate.view_of(R) == ["front", "front", "side", "side", "back", "back"]


def test_demo_writes_its_figure(tiny_checkpoint, tmp_path, capsys):
    png = tmp_path / "demo.png"
    assert cli.main(["demo", "--checkpoint", str(tiny_checkpoint), "--sample", "3", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_demo_on_a_user_image_and_its_errors(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    square = tmp_path / "crop.png"
    Image.new("RGB", (200, 200), (120, 90, 60)).save(square)
    png = tmp_path / "mine.png"
    assert demo.main(["--checkpoint", str(tiny_checkpoint), "--image", str(square), "--out", str(png)]) == 0
    assert png.is_file()
    wide = tmp_path / "wide.png"
    Image.new("RGB", (300, 100)).save(wide)
    assert demo.main(["--checkpoint", str(tiny_checkpoint), "--image", str(wide), "--out", str(png)]) == 2
    assert "square crop" in capsys.readouterr().out
    assert demo.main(["--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().out


def test_dispatch_lists_the_commands(capsys):
    assert cli.main([]) == 2
    printed = capsys.readouterr().out
    assert all(name in printed for name in ("train", "eval", "demo", "synthetic"))
    assert cli.main(["--help"]) == 0


def test_load_model_restores_the_weights(tiny_checkpoint):
    net, payload = checkpoint.load_model(tiny_checkpoint)
    state = payload["model"]
    assert all(torch.equal(net.state_dict()[k].float(), v.float()) for k, v in state.items())
    assert not net.training


def test_export_makes_a_small_float16_checkpoint_that_loads(tiny_checkpoint, tmp_path):
    shipped = checkpoint.export(tiny_checkpoint, tmp_path / "ship.pt")
    slim = checkpoint.load(shipped)
    assert "optimizer" not in slim and "rng" not in slim
    assert all(v.dtype == torch.float16 for v in slim["model"].values() if v.is_floating_point())
    assert shipped.stat().st_size < 0.6 * tiny_checkpoint.stat().st_size
    full, _ = checkpoint.load_model(tiny_checkpoint)
    half, _ = checkpoint.load_model(shipped)
    for k, v in full.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(half.state_dict()[k], v, rtol=1e-3, atol=1e-4), k


def test_the_demo_runs_on_the_shipped_checkpoint(tmp_path, capsys):
    png = tmp_path / "demo.png"
    assert cli.main(["demo", "--out", str(png)]) == 0                 # no --checkpoint: the one that ships
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net, payload = checkpoint.load_model()
    assert payload["config"]["model"]["kind"] == "hybrik" and payload["step"] > 0
    assert checkpoint.shipped_checkpoint_path().stat().st_size < 20e6


@pytest.mark.parametrize("name", ["hybrik_cpu_small", "baseline_cpu_small"])
def test_the_shipped_checkpoints_recorded_evaluation_is_reproduced(tmp_path, name):
    path = checkpoint.shipped_checkpoint_path(f"{name}.pt")
    recorded = json.loads(path.with_suffix(".eval_frozen.json").read_text())
    out = tmp_path / "again.json"
    assert cli.main(["eval", "--checkpoint", str(path), "--json", str(out)]) == 0
    again = json.loads(out.read_text())
    assert set(again["modes"]) == set(recorded["modes"]) == ({"direct"} if name.startswith("baseline") else
                                                             {"adaptive", "naive"})
    for mode, s in recorded["modes"].items():
        for key in ("mpjpe_mm", "pa_mpjpe_mm", "pve_mm", "reproj_px"):
            assert abs(again["modes"][mode][key] - s[key]) < 0.05, (mode, key)


def test_the_baseline_is_scored_in_its_one_mode_and_ik_modes_are_refused():
    from hybrik_lite import body_model, model, synthetic

    split = {k: v[:4] for k, v in synthetic.load_split().items() if k != "meta"}
    body = body_model.load(resolution="low")
    torch.manual_seed(0)
    base = model.build(model.ModelConfig(kind="regression", width=0.125, fc_dim=32), body=body)
    hyb = model.build(model.ModelConfig(width=0.125, head_channels=16, fc_dim=32), body=body)
    assert evaluate.modes_of(base) == ("direct",) and evaluate.modes_of(hyb) == ("adaptive", "naive")
    result = evaluate.evaluate(base, split, body, batch_size=3)
    assert list(result["modes"]) == ["direct"]
    with pytest.raises(ValueError, match="'adaptive' is not one of this network's test modes"):
        evaluate.predict(base, split["image"], mode="adaptive")
    # the per-sample scores average to the summary, and predictions in two batch sizes agree
    pred = evaluate.predict(base, split["image"], mode="direct", batch_size=3)
    per = evaluate.score({"direct": pred}, split, body, batch_size=2)["direct"]
    assert per["mpjpe"].shape == (4,) and per["per_joint"].shape == (4, 24)
    assert abs(float(per["mpjpe"].mean()) * 1000 - result["modes"]["direct"]["mpjpe_mm"]) < 1e-3
    again = evaluate.predict(base, split["image"], mode="direct", batch_size=4)
    assert torch.allclose(again["joints"], pred["joints"], atol=1e-5)
    full = body_model.load(resolution="full")
    with pytest.raises(ValueError, match="same mesh|mesh the network predicts"):
        evaluate.score({"direct": pred}, split, full)


def test_the_shipped_baseline_is_alive():
    # with plain ReLUs, HybrIK's recipe killed the baseline's trunk: 0.4% of the first layer's units were ever
    # positive, and it predicted one body for every image; the shipped one must have live units
    from hybrik_lite import synthetic

    net, payload = checkpoint.load_model(checkpoint.shipped_checkpoint_path("baseline_cpu_small.pt"))
    assert payload["config"]["model"]["kind"] == "regression"
    images = synthetic.load_split()["image"][:64]
    with torch.no_grad():
        features = net.backbone(net.input(images)).mean((2, 3))
        first = net.trunk[0](features)                                   # pre-activations (B, fc_dim)
    alive = float((first > 0).any(0).float().mean())
    assert alive > 0.1, f"only {alive:.1%} of the baseline's first trunk layer is ever active on 64 images"
    out = evaluate.predict(net, images[:8], mode="direct", keys=("joints",))
    assert out["joints"].std(0).max() > 1e-3                             # and its output depends on the image
