"""viz.py and widgets.py: the plain figure functions behind the notebooks' explorers."""
import math

import numpy as np

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hybrik_lite import body_model, kinematics, skeleton, viz, widgets  # noqa: E402


@pytest.fixture(scope="module")
def bm_low():
    return body_model.load(resolution="low")


def test_pose_from_sliders_builds_axis_angle():
    pose = widgets.pose_from_sliders({"left_elbow_bend": 90.0, "head_turn": -30.0})
    assert pose.shape == (1, 24, 3)
    assert torch.allclose(pose[0, 18], torch.tensor([0.0, math.pi / 2, 0.0]))
    assert torch.allclose(pose[0, 15], torch.tensor([0.0, -math.pi / 6, 0.0]))
    assert pose[0, [j for j in range(24) if j not in (15, 18)]].abs().max() == 0
    with pytest.raises(ValueError, match="unknown slider"):
        widgets.pose_from_sliders({"tail_wag": 10})


def test_shoulder_slider_raises_the_arm(bm_low):
    """The slider's sign is what its name says: +45 degrees raises the left arm."""
    pose = kinematics.rodrigues(widgets.pose_from_sliders({"left_shoulder_raise": 45.0}))
    joints = bm_low(torch.zeros(1, 10), pose).joints[0]
    arm = joints[20] - joints[16]
    assert arm[1] > 0.25 * arm.norm()


def test_pose_shape_figure_shows_posed_mesh(bm_low):
    fig = widgets.pose_shape_figure(bm_low, {"right_knee_bend": 60.0}, betas=[1.5])
    mesh = fig.data[0]
    assert mesh.type == "mesh3d" and len(mesh.i) == bm_low.faces.shape[0]
    expected = bm_low(torch.tensor([[1.5] + [0.0] * 9]),
                      kinematics.rodrigues(widgets.pose_from_sliders({"right_knee_bend": 60.0}))).vertices[0]
    assert torch.allclose(torch.tensor(mesh.x, dtype=torch.float32), expected[:, 0], atol=1e-6)
    assert any(t.type == "scatter3d" for t in fig.data)  # the skeleton
    with pytest.raises(ValueError, match="at most 10 betas"):
        widgets.pose_shape_figure(bm_low, {}, betas=[0.0] * 11)


def test_explorer_wires_every_slider(bm_low):
    ui = widgets.pose_shape_explorer(bm_low, num_betas=2)
    names = {c.description for c in ui.children[:-1]}
    assert set(widgets.POSE_SLIDERS) | {"beta 0", "beta 1"} == names


def test_plot_skeleton_and_mesh_figure():
    joints = torch.randn(29, 3)
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    viz.plot_skeleton(ax, joints, view="side")
    assert len(ax.lines) == 28  # one line per bone
    plt.close(fig)
    with pytest.raises(ValueError, match="view must be"):
        viz.plot_skeleton(plt.figure().add_subplot(projection="3d"), joints, view="top")
    mf = viz.mesh_figure(torch.randn(10, 3), torch.tensor([[0, 1, 2]]), joints, skeleton.PARENTS, title="t")
    viz.add_points(mf, torch.randn(4, 3), name="pts")
    assert [t.type for t in mf.data].count("mesh3d") == 1 and mf.data[-1].name == "pts"
    assert viz.bone_colors()[skeleton.JOINT_NAMES.index("left_knee")] != viz.bone_colors()[skeleton.JOINT_NAMES.index("right_knee")]


def test_pipeline_figure_marks_exactly_the_stages_asked_for():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import FancyBboxPatch

    fig = viz.pipeline_figure(here=("ik", "mesh"))
    ax = fig.axes[0]
    boxes = {p.get_gid(): p for p in ax.patches if isinstance(p, FancyBboxPatch)}
    assert list(boxes) == [*viz.PIPELINE_STAGES, "params"]
    for key, patch in boxes.items():
        want = viz.HERE_COLOUR if key in ("ik", "mesh") else viz.PLAIN_COLOUR
        assert tuple(patch.get_facecolor()[:3]) == pytest.approx(to_rgb(want)), key
    marker = [t for t in ax.texts if t.get_gid() == "you-are-here"]
    assert len(marker) == 1
    left, right = boxes["ik"].get_x(), boxes["mesh"].get_x() + boxes["mesh"].get_width()
    assert left < marker[0].xy[0] < right
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown stages"):
        viz.pipeline_figure(here="backbone")


def _one_triangle_scene():
    from hybrik_lite import camera

    K = camera.intrinsics(64)
    vertices = torch.tensor([[[-0.5, -0.5, 5.0], [0.5, -0.5, 5.0], [0.0, 0.5, 5.0]]])      # in front of the camera
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)), vertices, torch.tensor([[0, 2, 1]]), K


def test_mesh_overlay_paints_only_where_the_mesh_projects():
    from hybrik_lite import camera

    images, vertices, faces, K = _one_triangle_scene()
    blended, mask = viz.mesh_overlay(images, vertices, faces, K, opacity=1.0, color=(1.0, 0.0, 0.0))
    assert blended.shape == (1, 64, 64, 3) and mask.shape == (1, 64, 64)
    img = images.permute(0, 2, 3, 1).numpy()
    assert (blended[~mask] == img[~mask]).all()                       # untouched outside the mesh
    assert mask.sum() > 50 and (blended[mask][:, 1:] < 1e-6).all()    # pure red (shaded) inside
    centroid = camera.project(vertices.mean(1, keepdim=True), K)[0, 0]
    u, v = int(centroid[0]), int(centroid[1])
    assert mask[0, v, u]                                              # the triangle's centre is covered
    corners = camera.project(vertices, K)[0]
    assert not mask[0, :, : int(corners[:, 0].min()) - 1].any()       # nothing left of its leftmost corner


def test_prediction_figure_draws_what_it_is_given():
    images, vertices, faces, K = _one_triangle_scene()
    truth = torch.tensor([[10.0, 10.0]] * 24)
    truth[1] = torch.tensor([20.0, 30.0])
    uv = truth + 5.0
    preds = {"A": {"vertices_cam": vertices[0], "joints_2d": uv, "errors": {"MPJPE": 123.4}},
             "B": {"vertices_cam": vertices[0], "joints_2d": uv + 1, "errors": {"MPJPE": 56.0}}}
    fig = viz.prediction_figure(images[0], truth, preds, faces, K, title="t")
    axes = fig.axes
    assert len(axes) == 3 and "MPJPE 123" in axes[1].get_title() and "MPJPE 56" in axes[2].get_title()
    lines_a = [line for line in axes[1].lines if line.get_gid() == "A"]
    assert len(lines_a) == 23                                          # one line per bone of the 24 joints
    hip = [line for line in lines_a if np.allclose(line.get_xdata(), [15 - 0.5, 25 - 0.5])]
    assert hip and np.allclose(hip[0].get_ydata(), [15 - 0.5, 35 - 0.5])     # pelvis -> left hip, pixel centres
    assert len([line for line in axes[0].lines if line.get_gid() == "truth"]) == 23
    plt.close(fig)
    png = viz.figure_png(viz.prediction_figure(images[0], truth, preds, faces, K))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_browse_order_and_the_browser_redraws_in_place():
    errors = {"A": {"MPJPE": torch.tensor([3.0, 1.0, 2.0])}, "B": {"MPJPE": torch.tensor([1.0, 5.0, 2.5])}}
    assert widgets.browse_order(errors, "index") == [0, 1, 2]
    assert widgets.browse_order(errors, "worst A") == [0, 2, 1]
    assert widgets.browse_order(errors, "A beats B") == [1, 2, 0]     # B - A: 4, 0.5, -2
    with pytest.raises(ValueError, match="unknown order.*worst A"):
        widgets.browse_order(errors, "best A")
    images, vertices, faces, K = _one_triangle_scene()
    images = images.expand(3, -1, -1, -1).clone()
    images[1] = 0.0
    preds = {name: {"vertices_cam": vertices.expand(3, -1, -1), "joints_2d": torch.rand(3, 24, 2) * 60, "errors": e}
             for name, e in errors.items()}
    ui = widgets.prediction_browser(images, torch.rand(3, 24, 2) * 60, preds, faces, K)
    (menu, slider), caption, picture = ui.children[0].children, ui.children[1], ui.children[2]
    first = picture.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and "sample <b>0</b>" in caption.value
    slider.value = 1
    assert picture.value != first and "sample <b>1</b>" in caption.value
    menu.value = "worst B"
    assert "sample <b>2</b>" in caption.value                        # position 1 of the worst-B order [1, 2, 0]
