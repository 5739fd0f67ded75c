"""model.py: soft-argmax, shapes of both presets, gradient paths, the HybrIK layer on ground truth,
an overfit, and clear errors."""
from __future__ import annotations

import pytest
import torch

from hybrik_lite import body_model, camera, losses, metrics, model, synthetic

F64 = torch.float64


@pytest.fixture(scope="module")
def split():
    return synthetic.load_split()


@pytest.fixture(scope="module")
def low_body():
    return body_model.load(resolution="low")


# --- soft-argmax -------------------------------------------------------------------------

def test_soft_argmax_recovers_a_delta_exactly():
    D, H, W = 5, 7, 9
    g = torch.Generator().manual_seed(0)
    logits = torch.full((3, 4, D, H, W), -1e4, dtype=F64)
    where = [(int(torch.randint(D, (1,), generator=g)), int(torch.randint(H, (1,), generator=g)),
              int(torch.randint(W, (1,), generator=g))) for _ in range(12)]
    for n, (k, i, j) in enumerate(where):
        logits[n // 4, n % 4, k, i, j] = 0.0
    uvd = model.soft_argmax_3d(logits)
    for n, (k, i, j) in enumerate(where):
        expected = torch.tensor([(j + 0.5) / W - 0.5, (i + 0.5) / H - 0.5, (k + 0.5) / D - 0.5], dtype=F64)
        assert torch.equal(uvd[n // 4, n % 4], expected)


def test_soft_argmax_bins_are_pixel_centres():
    # a heatmap as fine as the image puts bin k exactly at pixel k's u (camera.py's convention)
    S = 16
    K = camera.intrinsics(S, F64)
    pixel_centres = torch.arange(S, dtype=F64) + 0.5
    point_on_ray = torch.stack([(pixel_centres - K[0, 2]) / K[0, 0] * 5, torch.zeros(S, dtype=F64),
                                torch.full((S,), 5.0, dtype=F64)], -1)
    u = camera.cam_to_uvd(point_on_ray[None], K, S)[0, :, 0]
    assert torch.allclose(model.bin_centres(S, F64), u, atol=1e-15)
    assert abs(camera.DEPTH_FACTOR / 16 / 2 - 0.06875) < 1e-12      # half a bin of 16 is 69 mm of depth


def test_soft_argmax_is_the_expectation_and_passes_gradcheck():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, 5, 6, generator=g, dtype=F64)
    p = torch.softmax(logits.reshape(2, 3, -1), -1).reshape(logits.shape)
    # independent: sum over the whole grid of p * coordinate
    grid_d, grid_v, grid_u = torch.meshgrid(*[(torch.arange(n, dtype=F64) + 0.5) / n - 0.5 for n in (4, 5, 6)],
                                            indexing="ij")
    expected = torch.stack([(p * grid_u).sum((2, 3, 4)), (p * grid_v).sum((2, 3, 4)), (p * grid_d).sum((2, 3, 4))], -1)
    assert torch.allclose(model.soft_argmax_3d(logits), expected, atol=1e-14)
    small = torch.randn(1, 2, 2, 3, 4, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(model.soft_argmax_3d, (small,))


def test_soft_argmax_under_half_precision_returns_float32():
    logits = torch.randn(1, 2, 4, 4, 4).to(torch.bfloat16)
    assert model.soft_argmax_3d(logits).dtype == torch.float32


# --- architecture -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cpu-small", "paper"])
def test_every_output_shape(name):
    cfg = model.preset(name)
    net = model.build(cfg).eval()
    S, D, Hm = cfg.image_size, cfg.heatmap_depth, cfg.heatmap_size
    features = net.backbone(net.input(torch.rand(1, 3, S, S)))
    assert features.shape == (1, net.backbone.out_channels, S // 32, S // 32)
    with torch.no_grad():
        out = net(torch.rand(1, 3, S, S))
    V = net.hybrik.body.v_template.shape[0]
    expected = {"heatmaps": (1, 29, D, Hm, Hm), "uvd": (1, 29, 3), "betas": (1, 10), "phi_raw": (1, 23, 2),
                "phi": (1, 23, 2), "camera": (1, 3), "joints_xyz": (1, 29, 3), "rot_mats": (1, 24, 3, 3),
                "joints": (1, 29, 3), "vertices": (1, V, 3), "transl": (1, 3), "rest_joints": (1, 29, 3)}
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert torch.allclose(out["phi"].norm(dim=-1), torch.ones(1, 23))
    # the heatmaps start uniform, the camera at the data's mean
    assert out["uvd"].abs().max() < 0.02
    assert torch.allclose(out["camera"], torch.tensor([cfg.init_camera]), atol=0.02)
    if name == "paper":
        assert (D, Hm) == (64, 64) and cfg.backbone == "resnet34" and 25e6 < model.count_parameters(net) < 30e6


def test_camera_init_matches_the_data(split):
    cam = camera.camera_params_from_root(split["joints_cam"][:, 0].double())
    init = torch.tensor(model.ModelConfig().init_camera, dtype=F64)
    assert torch.allclose(cam.mean(0), init, atol=0.01)


def test_state_dict_holds_weights_only_and_the_body_follows_the_module():
    net = model.build("cpu-small")
    keys = list(net.state_dict())
    assert not any("v_template" in k or "shapedirs" in k or "posedirs" in k for k in keys)
    net = net.double()
    assert net.hybrik.body.v_template.dtype == F64


def test_regression_baseline_starts_upright_and_shares_the_output_keys():
    cfg = model.preset("cpu-small", kind="regression")
    net = model.build(cfg).eval()
    torch.nn.init.zeros_(net.out.weight)
    with torch.no_grad():
        out = net(torch.rand(2, 3, 128, 128))
    assert torch.allclose(out["rot_mats"][:, 0], camera.CAMERA_FROM_BODY.expand(2, 3, 3), atol=1e-6)
    assert torch.allclose(out["rot_mats"][:, 1:], torch.eye(3).expand(2, 23, 3, 3), atol=1e-6)
    ref = camera.cam_to_uvd(out["joints"] + out["transl"][:, None], camera.intrinsics(128), 128)
    assert torch.allclose(out["uvd"], ref)
    assert set(out) == {"uvd", "betas", "camera", "rot_mats", "joints", "joints_xyz", "vertices", "transl",
                        "rest_joints"}


def test_rotation_6d_gives_rotations_and_inverts_the_first_two_columns():
    from scipy.spatial.transform import Rotation

    R = torch.from_numpy(Rotation.random(32, random_state=0).as_matrix())
    six = R[..., :2].transpose(-1, -2).reshape(32, 6)
    assert torch.allclose(model.rotation_6d_to_matrix(six), R, atol=1e-12)
    got = model.rotation_6d_to_matrix(torch.randn(32, 6, dtype=F64))
    assert torch.allclose(got @ got.transpose(-1, -2), torch.eye(3, dtype=F64).expand(32, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(got), torch.ones(32, dtype=F64))


# --- the HybrIK layer ---------------------------------------------------------------------

def test_hybrik_layer_on_ground_truth_returns_the_true_pose(split):
    layer = model.HybrIKLayer(model.preset("cpu-small", body_resolution="full")).eval()
    cam = camera.camera_params_from_root(split["joints_cam"][:, 0])
    rel = split["joints_cam"] - split["joints_cam"][:, :1]
    for mode in ("adaptive", "naive"):
        out = layer(split["uvd"], split["phi"], split["betas"], cam, mode=mode)
        assert out["rot_mats"].dtype == torch.float32
        # the floor is the float32 storage of the split (joints 7 m away): float64 IK on the
        # stored joints themselves reaches 9.1e-4 degrees
        assert metrics.rotation_angles_deg(out["rot_mats"], split["pose"]).max() < 1e-3
        assert metrics.joint_errors(out["joints"], rel, "none").max() < 1e-5          # metres
        assert metrics.joint_errors(out["joints_xyz"], rel, "none").max() < 1e-5
        assert (out["transl"] - split["joints_cam"][:, 0]).norm(dim=-1).max() < 1e-5


def test_hybrik_layer_runs_in_float32_under_autocast(low_body):
    net = model.build("cpu-small", body=low_body).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.rand(2, 3, 128, 128))
    assert out["heatmaps"].dtype == torch.bfloat16
    for key in ("uvd", "joints_xyz", "rot_mats", "joints", "vertices", "phi", "betas", "camera"):
        assert out[key].dtype == torch.float32, key


def _grad_norm(module):
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return sum(float(g.abs().sum()) for g in grads)


def test_gradients_reach_the_backbone_through_the_ik_when_not_detached(split, low_body):
    net = model.build(model.preset("cpu-small", dropout=0.0), body=low_body).train()
    images = split["image"][:4]
    out = net(images, ik_mode="adaptive", detach_targets=False)
    out["vertices"].square().sum().backward()                      # a loss downstream of the IK only
    assert _grad_norm(net.heatmap_head.final) > 0
    assert _grad_norm(net.backbone.stem) > 0
    assert _grad_norm(net.parameter_head.phi) > 0 and _grad_norm(net.parameter_head.betas) > 0
    # the reference's training mode: naive, detached targets: mesh terms reach only phi and betas
    net.zero_grad(set_to_none=True)
    out = net(images)
    out["vertices"].square().sum().backward()
    assert _grad_norm(net.heatmap_head.final) == 0
    assert _grad_norm(net.parameter_head.phi) > 0 and _grad_norm(net.parameter_head.betas) > 0


def test_train_and_eval_use_the_configured_ik_modes(split, low_body, monkeypatch):
    from hybrik_lite import ik

    seen = []
    real = ik.solve

    def spy(*args, mode, detach_targets):
        seen.append((mode, detach_targets))
        return real(*args, mode=mode, detach_targets=detach_targets)

    monkeypatch.setattr(ik, "solve", spy)
    net = model.build("cpu-small", body=low_body)
    net.train()(split["image"][:2])
    with torch.no_grad():
        net.eval()(split["image"][:2])
    assert seen == [("naive", True), ("adaptive", False)]


def test_overfitting_eight_images_cuts_the_loss_tenfold(split, low_body):
    torch.manual_seed(0)
    net = model.build(model.preset("cpu-small", dropout=0.0), body=low_body).train()
    batch = {k: v[:8] for k, v in split.items() if k != "meta"}
    targets = losses.targets_from_batch(batch)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    history = []
    for _ in range(80):
        loss, _ = losses.hybrik_loss(net(batch["image"]), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert history[-1] < history[0] / 10, (history[0], history[-1])


# --- bad input ----------------------------------------------------------------------------

def test_bad_input_gets_a_clear_error(low_body):
    net = model.build("cpu-small", body=low_body).eval()
    with pytest.raises(ValueError, match=r"\(B, 3, 128, 128\).*image_size=64"):
        net(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, 128, 128\)"):
        net(torch.rand(1, 4, 128, 128))
    with pytest.raises(ValueError, match="float in \\[0, 1\\].*uint8"):
        net(torch.zeros(1, 3, 128, 128, dtype=torch.uint8))
    with pytest.raises(ValueError, match="did you mean 'heatmap_depth'"):
        model.ModelConfig.from_dict({"heatmap_dpth": 16})
    with pytest.raises(ValueError, match="did you mean 'cpu-small'"):
        model.preset("cpu-smal")
    with pytest.raises(ValueError, match="heatmap_size"):
        model.ModelConfig(heatmap_size=24)
    with pytest.raises(ValueError, match="image_size"):
        model.ModelConfig(image_size=100)
    with pytest.raises(ValueError, match="train_ik_mode"):
        model.ModelConfig(train_ik_mode="fast")
    with pytest.raises(ValueError, match="logits must be"):
        model.soft_argmax_3d(torch.zeros(2, 29, 16, 16))
    cfg = model.preset("paper")
    assert model.ModelConfig.from_dict(cfg.to_dict()) == cfg
    import json

    assert model.ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
