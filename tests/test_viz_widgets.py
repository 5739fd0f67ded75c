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
    assert torch.allclose(pose[0, 18], torch.tensor([0.0, -math.pi / 2, 0.0]))        # about -y: forwards
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


def test_render_people_frames_and_projects_the_body(bm_low):
    from hybrik_lite import camera

    rot = kinematics.rodrigues(torch.zeros(2, 24, 3))
    rot[:, 0] = camera.CAMERA_FROM_BODY                                  # facing the camera
    betas = torch.zeros(2, 10)
    betas[1, 0] = 2.0
    images, joints_2d, root = viz.render_people(bm_low, rot, betas, fill=0.7, size=64, background=0.0)
    assert images.shape == (2, 3, 64, 64) and joints_2d.shape == (2, 29, 2) and root.shape == (2, 3)
    out = bm_low(betas, rot)                                              # independent: place the joints ourselves
    want = camera.project(out.joints - out.joints[:, :1] + root[:, None], camera.intrinsics(64))
    assert torch.allclose(joints_2d, want, atol=1e-4)
    for k in range(2):
        body = images[k].amax(0) > 0                                      # black background: the body's pixels
        rows, cols = body.any(1).nonzero()[:, 0], body.any(0).nonzero()[:, 0]
        side = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1).item()
        assert abs(side - 0.7 * 64) <= 2                                  # fills 70% of the crop
        u, v = joints_2d[k, 3].long()                                     # spine1 lies on the body
        assert body[v, u]
    assert root[1, 2] > 1.05 * root[0, 2]                                 # the taller person stands further away


def test_image_grid_shows_the_images_and_joints():
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    joints = torch.tensor([[[1.5, 2.5], [4.0, 6.0]]]).expand(3, -1, -1)
    fig = viz.image_grid(images, ["a", "b", "c"], joints, ncols=2)
    axes = fig.axes
    assert len(axes) == 4 and [ax.get_title() for ax in axes[:3]] == ["a", "b", "c"] and not axes[3].images
    assert np.allclose(axes[1].images[0].get_array(), images[1].permute(1, 2, 0).numpy())
    dots = [c for c in axes[2].collections if c.get_gid() == "joints"][0]
    assert np.allclose(dots.get_offsets(), [[1.0, 2.0], [3.5, 5.5]])     # imshow: pixel centres at integers
    plt.close(fig)


def test_draw_sample_marks_visible_and_hidden_joints_and_boxes():
    image = torch.zeros(3, 16, 16)
    image[0, 3, 5] = 1.0
    joints = torch.tensor([[2.5, 3.5]] * 29)
    joints[7] = torch.tensor([10.5, 12.5])
    visible = torch.ones(29, dtype=torch.bool)
    visible[7] = False
    fig, ax = plt.subplots()
    viz.draw_sample(ax, image, joints, visible, torch.tensor([[8.0, 10.0, 13.0, 15.0]]), title="s")
    assert ax.images[0].get_array()[3, 5, 0] == 1.0 and ax.get_title() == "s"
    scatter = {c.get_gid(): c.get_offsets() for c in ax.collections}
    assert np.allclose(scatter["hidden"], [[10.0, 12.0]]) and len(scatter["visible"]) == 28
    (box,) = [p for p in ax.patches if p.get_gid() == "box"]
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (7.5, 9.5, 5.0, 5.0)
    assert len(ax.lines) == 28                                            # one white line per bone
    plt.close(fig)
    fig, ax = plt.subplots()
    viz.draw_sample(ax, image, joints, visible, bones=False)
    assert not ax.lines and not ax.patches
    plt.close(fig)


# --- the explorers (hybrik_lite.widgets): what the figures and readouts show --------------------

def _markers(fig, name="skeleton joints"):
    trace = next(t for t in fig.data if t.name == name)
    return torch.tensor(np.stack([trace.x, trace.y, trace.z], 1), dtype=torch.float64)


def _mesh(fig):
    return torch.tensor(np.stack([fig.data[0].x, fig.data[0].y, fig.data[0].z], 1), dtype=torch.float64)


@pytest.mark.parametrize("side", ["left", "right"])
def test_elbow_sliders_bend_the_forearm_forwards(bm_low, side):
    """In the T-pose the forearm lies along +-x; a positive bend swings the wrist to +z, where the
    body faces (a negative one would be a hyperextension)."""
    pose = kinematics.rodrigues(widgets.pose_from_sliders({f"{side}_elbow_bend": 90.0}))
    joints = bm_low(torch.zeros(1, 10), pose).joints[0]
    names = skeleton.JOINT_NAMES
    forearm = joints[names.index(f"{side}_wrist")] - joints[names.index(f"{side}_elbow")]
    assert forearm[2] > 0.95 * forearm.norm()


def test_pose_shape_explorer_redraws_one_figure_in_place(bm_low):
    ui = widgets.pose_shape_explorer(bm_low, num_betas=2, view="plotly")
    assert set(ui.controls) == set(widgets.POSE_SLIDERS) | {"beta0", "beta1"}
    for control in ui.controls.values():
        assert control.continuous_update is False and control.layout.width == "470px"   # long, redraw on release
    shown = ui.view.widget
    ranges = [tuple(getattr(shown.layout.scene, f"{a}axis").range) for a in "xyz"]
    assert shown.layout.uirevision is not None and shown.data[0].flatshading is False
    ui.controls["right_elbow_bend"].value = 60.0
    ui.controls["beta0"].value = 1.5
    assert ui.view.widget is shown                                       # the same FigureWidget, updated
    pose = torch.zeros(1, 24, 3)
    pose[0, skeleton.JOINT_NAMES.index("right_elbow")] = torch.tensor([0.0, math.radians(60.0), 0.0])
    want = bm_low(torch.tensor([[1.5] + [0.0] * 9]), kinematics.rodrigues(pose))
    assert torch.allclose(_mesh(shown), want.vertices[0].double(), atol=1e-5)
    assert torch.allclose(_markers(shown), want.joints[0].double(), atol=1e-5)
    assert [tuple(getattr(shown.layout.scene, f"{a}axis").range) for a in "xyz"] == ranges     # the box stays put
    # the box holds the extremes: both arms raised, spine bent, on the tallest shape the sliders allow
    extreme = kinematics.rodrigues(widgets.pose_from_sliders({"left_shoulder_raise": 90, "right_shoulder_raise": 90,
                                                               "spine_bend": -90, "left_hip_flex": 90}))
    for beta0 in (-3.0, 3.0):
        verts = bm_low(torch.tensor([[beta0] + [0.0] * 9]), extreme).vertices[0]
        for axis, (low, high) in enumerate(ranges):
            assert low <= verts[:, axis].min() and verts[:, axis].max() <= high


def test_figure_view_keeps_its_traces_and_draws_images():
    one = viz.mesh_figure(torch.tensor([[0.5, 0.0, 0.0], [0.9, 0.0, 0.0], [0.7, 0.4, 0.0]]), torch.tensor([[0, 1, 2]]),
                          ranges=((-1, 1), (-1, 1), (-1, 1)))
    view = widgets.FigureView(one, "plotly")
    with pytest.raises(ValueError, match="keep their traces"):
        view.show(viz.add_points(viz.mesh_figure(torch.rand(3, 3), torch.tensor([[0, 1, 2]])), torch.rand(2, 3), name="p"))
    with pytest.raises(ValueError, match="view must be one of"):
        widgets.FigureView(one, "webgl")
    # the image view (Colab): our rasteriser, the camera from sliders
    image = widgets.FigureView(one, "image")
    from PIL import Image
    import io

    def covered(png):
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        return (np.abs(rgb - 255).sum(-1) > 30)

    image.azimuth.value = 0.0
    image.elevation.value = 0.0
    front = covered(image._image.value)
    half = front.shape[1] // 2
    assert front[:, half:].sum() > 100 and front[:, :half].sum() < 10   # +x (the body's left) on our right
    image.azimuth.value = 180.0                                          # seen from behind: on our left
    back = covered(image._image.value)
    assert back[:, :half].sum() > 100 and back[:, half:].sum() < 10


def test_default_view(monkeypatch):
    from hybrik_lite import tutorial

    monkeypatch.setenv("HYBRIK_LITE_VIEW", "image")
    assert widgets.default_view() == "image"
    monkeypatch.setenv("HYBRIK_LITE_VIEW", "3d")
    with pytest.raises(ValueError, match="HYBRIK_LITE_VIEW"):
        widgets.default_view()
    monkeypatch.delenv("HYBRIK_LITE_VIEW")
    monkeypatch.setattr(tutorial, "on_colab", lambda: True)
    assert widgets.default_view() == "image"                             # FigureWidget is unreliable on Colab


def test_twist_readout_measures_what_the_twist_moves(bm_low):
    names = skeleton.JOINT_NAMES
    shoulder, spine3 = names.index("left_shoulder"), names.index("spine3")
    base = widgets.twist_swing_figure(bm_low, shoulder, 30.0, 45.0, 0.0)
    below = [names.index(n) for n in ("left_wrist", "left_hand", "left_middle_fingertip")]
    for compensate in (False, True):
        fig = widgets.twist_swing_figure(bm_low, shoulder, 30.0, 45.0, 70.0, compensate=compensate)
        moved = 1000 * (_markers(fig) - _markers(base)).norm(dim=-1)          # from the joints drawn
        meta = fig.layout.meta
        assert torch.allclose(torch.tensor(meta["joint_shift_mm"], dtype=torch.float64), moved, atol=0.01)
        assert moved[names.index("left_elbow")] < 0.01                       # the bone child never moves
        assert (moved[below].max() < 0.01) == compensate                     # the bent forearm swings unless undone
        assert meta["vertex_shift_mm"] > 10                                   # the flesh turns either way
        html = widgets.twist_readout(fig)
        assert f"{moved[below].max():.1f} mm" in html and ("<b>on</b>" in html) == compensate
    # spine3, the neck compensating: everything below the collars turns rigidly about spine3's posed
    # bone, so a joint at distance d from that line moves by 2 d sin(phi / 2)
    fig = widgets.twist_swing_figure(bm_low, spine3, 0.0, 0.0, 20.0, compensate=True)
    zero = torch.zeros(1, 10)
    pose = widgets.demo_pose()
    rest = bm_low.rest_joints(zero)[0].double()
    posed, frames = kinematics.forward_kinematics(pose.double(), rest[None], skeleton.PARENTS)
    axis = frames[0, spine3, :3, :3] @ (rest[names.index("neck")] - rest[spine3])
    axis = axis / axis.norm()
    rel = posed[0] - posed[0, spine3]
    d = (rel - (rel @ axis)[:, None] * axis).norm(dim=-1)
    collars = [names.index("left_collar"), names.index("right_collar")]
    below_collars = [j for j in range(29) if any(c in _ancestors(j) for c in collars)]
    shift = torch.tensor(fig.layout.meta["joint_shift_mm"], dtype=torch.float64)
    assert torch.allclose(shift[below_collars], 2000 * d[below_collars] * math.sin(math.radians(10)), atol=0.05)
    assert shift[[names.index("neck"), names.index("head")]].max() < 0.01 and shift[collars].min() > 5


def _ancestors(j):
    out = {j}
    while skeleton.PARENTS[j] >= 0:
        j = skeleton.PARENTS[j]
        out.add(j)
    return out


def test_ik_readout_shows_each_modes_errors(bm_low):
    names = skeleton.JOINT_NAMES
    elbow = names.index("left_elbow")
    fig = widgets.ik_explorer_figure(bm_low, elbow, stretch=0.04, mode="naive")
    errors = fig.layout.meta["errors_mm"]
    drawn = 1000 * (_markers(fig) - _markers(fig, "targets")).norm(dim=-1)  # the naive body is drawn
    assert torch.allclose(torch.tensor(errors["naive"], dtype=torch.float64), drawn, atol=0.01)
    errors_trace = next(t for t in fig.data if t.name == "errors")
    assert len(errors_trace.x) == 3 * 29                                  # one segment per joint, always
    below = [names.index(n) for n in ("left_wrist", "left_hand", "left_middle_fingertip")]
    for mode in ("naive", "adaptive"):
        assert abs(errors[mode][elbow] - 40.0) < 0.1                     # the upper arm cannot grow 4 cm
    assert max(errors["adaptive"][j] for j in below) < 0.1               # adaptive aims from where the elbow is
    assert min(errors["naive"][j] for j in below) > 30                   # naive carries the error down the arm
    html = widgets.ik_readout(fig)
    assert "left_wrist" in html and f"{errors['naive'][names.index('left_wrist')]:.1f}" in html
    assert "naive (drawn)" in html
    ui = widgets.ik_explorer(bm_low, view="plotly")
    ui.controls["joint"].value = elbow
    ui.controls["stretch"].value = 0.04
    assert ui.readout.value == widgets.ik_readout(ui.figure)
    assert abs(ui.figure.layout.meta["errors_mm"]["adaptive"][elbow] - 40.0) < 0.1
    assert torch.allclose(_markers(ui.view.widget), _markers(ui.figure))  # the widget shows the new figure


def test_image_view_explorer_redraws(bm_low):
    ui = widgets.twist_swing_explorer(bm_low, view="image")
    first = ui.view._image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    ui.controls["twist_deg"].value = 90.0
    assert ui.view._image.value != first and "What the twist moves" in ui.readout.value
