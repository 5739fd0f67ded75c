"""Real photos: landmarks -> joints -> twists -> IK -> mesh -> camera (hybrik_lite.photo), and the CLI.

The mapping and the twist estimates are tested without MediaPipe, on landmarks made from our own
body model's posed joints (placed where MediaPipe's would be). The photo tests need the optional
extra (MediaPipe, scikit-image) and skip, with the reason, without it; they compare MediaPipe's
landmarks with values recorded once (MediaPipe is deterministic) and check properties of our
reconstruction against the landmarks: bone directions, pixels, the IK's reach, what twist changes.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hybrik_lite import body_model, camera, ik, kinematics, photo, skeleton

ROOT = Path(__file__).resolve().parents[1]
J = skeleton.JOINT_NAMES.index
# MediaPipe Pose's landmark order, written out here from its documentation (checked against the
# PoseLandmark enum below when MediaPipe is installed)
MEDIAPIPE_ORDER = ("nose left_eye_inner left_eye left_eye_outer right_eye_inner right_eye right_eye_outer left_ear "
                   "right_ear mouth_left mouth_right left_shoulder right_shoulder left_elbow right_elbow left_wrist "
                   "right_wrist left_pinky right_pinky left_index right_index left_thumb right_thumb left_hip "
                   "right_hip left_knee right_knee left_ankle right_ankle left_heel right_heel left_foot_index "
                   "right_foot_index").split()
LM = MEDIAPIPE_ORDER.index


def test_landmark_names_are_mediapipes_order():
    assert photo.LANDMARK_NAMES == tuple(MEDIAPIPE_ORDER)


# --- synthetic landmarks from our own body model ------------------------------------------------------
@pytest.fixture(scope="module")
def body():
    return body_model.load(resolution="low").double()


def synthetic_pose(batch: int, seed: int, *, head: bool = False) -> torch.Tensor:
    """Axis-angle ``(B, 24, 3)``: a random body orientation, hips and shoulders; knees and elbows bend
    about their hinge axes only (knees +X, left elbow -Y, right elbow +Y), ankles about X, wrists
    about Z (so that the foot stays in the shin's plane and the palm keeps its line), a turned neck;
    spine, collars, feet and hands at rest (the torso and hand frames then hold exactly)."""
    g = torch.Generator().manual_seed(seed)
    aa = torch.zeros(batch, 24, 3, dtype=torch.float64)

    def rand(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    def bend():
        return 0.2 + 1.4 * torch.rand(batch, generator=g, dtype=torch.float64)

    aa[:, 0] = rand(batch, 3)
    for name in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"):
        aa[:, J(name)] = rand(batch, 3, scale=0.5)
    aa[:, J("neck")] = rand(batch, 3, scale=0.3)
    if head:
        aa[:, J("head")] = rand(batch, 3, scale=0.3)
    aa[:, J("left_knee"), 0], aa[:, J("right_knee"), 0] = bend(), bend()
    aa[:, J("left_elbow"), 1], aa[:, J("right_elbow"), 1] = -bend(), bend()
    for name in ("left_ankle", "right_ankle"):
        aa[:, J(name), 0] = rand(batch, scale=0.3)
    for name in ("left_wrist", "right_wrist"):
        aa[:, J(name), 2] = rand(batch, scale=0.3)
    return aa


def fake_landmarks(joints: torch.Tensor, globals_: torch.Tensor) -> torch.Tensor:
    """Body-frame landmarks ``(B, 33, 3)`` where MediaPipe would put them on a body posed as
    ``joints (B, 29, 3)`` with global rotations ``globals_ (B, 24, 3, 3)``: limb landmarks at the
    joints; ears 7 cm either side of the head joint and the nose 10 cm before it; index and pinky
    3.5 cm either side of the hand joint (thumb side +Z at rest); the heel at photo.HEEL_OFFSET from
    the ankle, turned with it; the foot tip at the big toe."""
    lm = torch.zeros(joints.shape[0], 33, 3, dtype=joints.dtype)

    def at(joint, offset):
        return joints[:, J(joint)] + globals_[:, J(joint)] @ torch.tensor(offset, dtype=joints.dtype)

    for side in ("left", "right"):
        for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            lm[:, LM(f"{side}_{part}")] = joints[:, J(f"{side}_{part}")]
        lm[:, LM(f"{side}_foot_index")] = joints[:, J(f"{side}_big_toe")]
        lm[:, LM(f"{side}_heel")] = at(f"{side}_ankle", photo.HEEL_OFFSET)
        hand, turn = joints[:, J(f"{side}_hand")], globals_[:, J(f"{side}_wrist")]
        for name, z in (("index", 0.035), ("pinky", -0.035), ("thumb", 0.06)):
            lm[:, LM(f"{side}_{name}")] = hand + turn @ torch.tensor([0.0, 0.0, z], dtype=joints.dtype)
    lm[:, LM("left_ear")], lm[:, LM("right_ear")] = at("head", [0.07, 0, 0]), at("head", [-0.07, 0, 0])
    for name in ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
                 "right_eye_outer", "mouth_left", "mouth_right"):
        lm[:, LM(name)] = at("head", [0, 0, 0.1])
    return lm


def posed(body, aa, betas):
    out = body(betas, aa)
    _, transforms = kinematics.forward_kinematics(out.rot_mats, out.rest_joints[:, :24], skeleton.SMPL_PARENTS)
    return out, transforms[..., :3, :3]


def twist_angles(phi):
    return torch.atan2(phi[..., 1], phi[..., 0])


def no_twist(batch, dtype=torch.float64):
    phi = torch.zeros(batch, ik.NUM_TWISTS, 2, dtype=dtype)
    phi[..., 0] = 1
    return phi


def test_frame_is_a_rotation_and_turns_with_its_inputs():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(50, 3, generator=g, dtype=torch.float64), torch.randn(50, 3, generator=g, dtype=torch.float64)
    F = photo.frame(a, b)
    eye = torch.eye(3, dtype=torch.float64)
    assert (F.transpose(-1, -2) @ F - eye).abs().max() < 1e-12 and (torch.linalg.det(F) - 1).abs().max() < 1e-12
    assert torch.allclose(F[..., 0], a / a.norm(dim=-1, keepdim=True))
    assert (torch.linalg.cross(F[..., 0], F[..., 1], dim=-1) * b).sum(-1).abs().max() < 1e-12  # b lies in (e1, e2)
    assert ((F[..., 1] * b).sum(-1) > 0).all()
    R = kinematics.rodrigues(torch.randn(50, 3, generator=g, dtype=torch.float64))
    turned = photo.frame((R @ a[..., None])[..., 0], (R @ b[..., None])[..., 0])
    assert (turned - R @ F).abs().max() < 1e-12
    # the secondary along the primary: still a rotation
    F = photo.frame(a, 3 * a)
    assert (F.transpose(-1, -2) @ F - eye).abs().max() < 1e-12


def test_landmarks_to_joints_gives_back_the_posed_joints(body):
    """Landmarks placed on our own posed body map back onto its joints exactly, for any shape."""
    g = torch.Generator().manual_seed(0)
    betas = 0.8 * torch.randn(16, 10, generator=g, dtype=torch.float64)
    out, globals_ = posed(body, synthetic_pose(16, seed=0, head=True), betas)
    lm = fake_landmarks(out.joints, globals_)
    joints = photo.with_bone_lengths(photo.landmarks_to_joints(lm, out.rest_joints), out.rest_joints)
    assert (joints - out.joints).norm(dim=-1).max() < 1e-9
    # MediaPipe's frame (camera-aligned, hip-centred) round-trips through camera_to_body
    world = camera.body_to_camera(lm - (lm[:, [LM("left_hip")]] + lm[:, [LM("right_hip")]]) / 2)
    joints = photo.landmarks_to_joints(camera.camera_to_body(world), out.rest_joints)
    mid_hip = (out.joints[:, [1]] + out.joints[:, [2]]) / 2
    assert (joints - (out.joints - mid_hip)).norm(dim=-1).max() < 1e-9


def test_with_bone_lengths_keeps_directions_and_sets_rest_lengths(body):
    g = torch.Generator().manual_seed(2)
    rest = body.rest_joints(torch.randn(4, 10, generator=g, dtype=torch.float64))
    joints = torch.randn(4, 29, 3, generator=g, dtype=torch.float64)
    out = photo.with_bone_lengths(joints, rest)
    parents = list(skeleton.PARENTS)
    child, parent = list(range(1, 29)), parents[1:]
    bone_out, bone_in = out[:, child] - out[:, parent], joints[:, child] - joints[:, parent]
    bone_rest = rest[:, child] - rest[:, parent]
    assert torch.allclose(bone_out.norm(dim=-1), bone_rest.norm(dim=-1), atol=1e-12)
    cos = (bone_out * bone_in).sum(-1) / (bone_out.norm(dim=-1) * bone_in.norm(dim=-1))
    assert (cos > 1 - 1e-12).all()
    assert torch.equal(out[:, 0], joints[:, 0])


def test_joint_visibility_is_the_least_of_its_landmarks():
    vis = torch.ones(1, 33)
    vis[0, LM("left_knee")] = 0.1
    vis[0, LM("right_ear")] = 0.3
    vis[0, LM("right_hip")] = 0.2
    got = photo.joint_visibility(vis)[0]
    assert got[J("left_knee")] == pytest.approx(0.1) and got[J("left_ankle")] == 1.0
    assert got[J("head")] == pytest.approx(0.3) and got[J("head_top")] == pytest.approx(0.3)
    assert got[J("pelvis")] == pytest.approx(0.2) and got[J("spine1")] == pytest.approx(0.2)
    assert got[J("left_shoulder")] == 1.0 and got[J("left_collar")] == 1.0


def test_twist_updates_measure_a_known_turn(body):
    """Turn one observed cue by a known angle about its bone: the update is that angle."""
    betas = torch.zeros(1, 10, dtype=torch.float64)
    out, globals_ = posed(body, synthetic_pose(1, seed=3), betas)
    rest = out.rest_joints
    ids = [J(joint) for joint, _, _ in photo.CUES]
    cues = (globals_[:, ids] @ photo.rest_cue_directions(rest)[..., None])[..., 0]         # exactly met
    assert photo.twist_updates(out.rot_mats, rest, cues, torch.ones(1, len(ids))).abs().max() < 1e-9
    k = [joint for joint, _, _ in photo.CUES].index("left_elbow")
    bone = globals_[0, J("left_elbow")] @ (rest[0, J("left_wrist")] - rest[0, J("left_elbow")])
    turned = cues.clone()
    turned[0, k] = kinematics.rodrigues((0.7 * bone / bone.norm())[None])[0] @ cues[0, k]
    weight = torch.zeros(1, len(ids), dtype=torch.float64)
    weight[0, k] = 1
    update = photo.twist_updates(out.rot_mats, rest, turned, weight)
    assert update[0, J("left_elbow") - 1] == pytest.approx(0.7, abs=1e-9)
    assert update.abs().sum() == pytest.approx(0.7, abs=1e-9)     # no cue elsewhere (weight 0): no update


def test_estimated_twists_recover_the_pose(body):
    """On poses whose knees and elbows are hinges, the cues give the twists back: the arms' and the
    spine's exactly, the legs' within a few degrees (our rest legs are not quite straight, so the
    knee's hinge is not quite +X); the mesh comes out much closer than with no twist."""
    g = torch.Generator().manual_seed(4)
    betas = 0.5 * torch.randn(16, 10, generator=g, dtype=torch.float64)
    out, globals_ = posed(body, synthetic_pose(16, seed=4), betas)
    rest = out.rest_joints
    lm = fake_landmarks(out.joints, globals_)
    joints = photo.with_bone_lengths(photo.landmarks_to_joints(lm, rest), rest)
    phi = photo.estimate_twist(joints, rest, *photo.twist_cues(lm))
    truth = twist_angles(ik.twist_from_pose(out.rot_mats, rest))
    error = ((twist_angles(phi) - truth + math.pi) % (2 * math.pi) - math.pi).abs() * 180 / math.pi
    for name, bound in (("left_shoulder", 1), ("right_shoulder", 1), ("left_elbow", 1), ("right_elbow", 1),
                        ("spine1", 0.01), ("spine2", 0.01), ("spine3", 0.01), ("neck", 0.01),
                        ("left_hip", 12), ("right_hip", 12), ("left_knee", 10), ("right_knee", 10)):
        assert error[:, J(name) - 1].max() < bound, f"{name}: twist off by {error[:, J(name) - 1].max():.2f} deg"
    # the estimate is a fixed point: the cues are met to rounding
    rot = ik.solve(joints, phi, rest)
    assert photo.twist_updates(rot, rest, *photo.twist_cues(lm)).abs().max() < 1e-9

    def surface(phi):
        o = body(betas, ik.solve(joints, phi, rest))
        return o.vertices - o.joints[:, :1], o.joints - o.joints[:, :1]

    true_vertices = out.vertices - out.joints[:, :1]
    (v_est, j_est), (v_none, j_none) = surface(phi), surface(no_twist(16))
    pve_est = (v_est - true_vertices).norm(dim=-1).mean(-1)
    pve_none = (v_none - true_vertices).norm(dim=-1).mean(-1)
    assert (pve_est < 0.5 * pve_none).all() and pve_est.mean() < 0.15 * pve_none.mean() and pve_est.max() < 0.004, \
        (pve_est, pve_none)
    # twist turns the surface, not the joints
    joint_moves, surface_moves = (j_est - j_none).norm(dim=-1).amax(-1), (v_est - v_none).norm(dim=-1).amax(-1)
    assert joint_moves.max() < 0.002 and surface_moves.median() > 0.05 and (surface_moves > 10 * joint_moves).all()


def test_fit_camera_recovers_a_known_translation():
    g = torch.Generator().manual_seed(5)
    points = 0.5 * torch.randn(2, 20, 3, generator=g, dtype=torch.float64)
    K = photo.photo_K((480, 640))
    assert K[0, 0] == 2500 and K[0, 2] == 320 and K[1, 2] == 240       # 1000 px per 256 px of 640
    t = torch.tensor([[0.3, -0.2, 6.0], [-0.5, 0.4, 9.0]], dtype=torch.float64)
    uv = camera.project(points + t[:, None], K.double())
    weight = torch.rand(2, 20, generator=g, dtype=torch.float64) + 0.1
    assert (photo.fit_camera(points, uv, weight, K) - t).abs().max() < 1e-9
    # a zero weight silences a point: move one far away, it must not matter
    uv[:, 0] += 300
    weight[:, 0] = 0
    assert (photo.fit_camera(points, uv, weight, K) - t).abs().max() < 1e-9


def test_reconstruct_on_synthetic_landmarks(body):
    """The whole chain on landmarks of a known body seen by a known camera: the pose comes back and
    the camera puts the joints on the pixels."""
    betas = torch.zeros(1, 10, dtype=torch.float64)
    out, globals_ = posed(body, synthetic_pose(1, seed=6), betas)
    lm = fake_landmarks(out.joints, globals_)
    hip_mid = (lm[:, [LM("left_hip")]] + lm[:, [LM("right_hip")]]) / 2
    world = camera.body_to_camera(lm - hip_mid)
    K = photo.photo_K((512, 512)).double()
    true_t = torch.tensor([[0.1, 0.2, 6.0]], dtype=torch.float64)
    pixels = camera.project(world + true_t[:, None], K)
    landmarks = photo.Landmarks(world, pixels, torch.ones(1, 33, dtype=torch.float64), (512, 512))
    fit = photo.reconstruct(landmarks, body, betas)
    true_joints = out.joints - out.joints[:, :1]
    assert (fit.joints - true_joints).norm(dim=-1).max() < 1e-6
    assert fit.reprojection_px < 1e-3
    assert fit.guessed == []
    # the camera: the hip centre sits at true_t
    mid = camera.body_to_camera((fit.joints[:, [1]] + fit.joints[:, [2]]) / 2, translation=fit.transl)
    assert (mid[0, 0] - true_t[0]).abs().max() < 1e-6


# --- the photos (MediaPipe) ---------------------------------------------------------------------------
def _mediapipe():
    try:
        return photo._mediapipe_pose()
    except ImportError as err:
        pytest.skip(str(err))


def _skimage():
    return pytest.importorskip("skimage.data", reason=f"scikit-image is not installed: {photo.INSTALL_HINT}")


# Recorded once from mediapipe 0.10.14 (model complexity 1; deterministic): landmark -> world (m),
# pixels, visibility.
RECORDED = {
    "astronaut": {
        "nose": ((0.061333, -0.613519, -0.273385), (222.735, 127.964), 0.99928),
        "left_shoulder": ((0.201912, -0.460302, -0.051468), (306.240, 256.644), 0.99766),
        "left_elbow": ((0.220958, -0.250816, -0.052660), (322.547, 374.948), 0.32696),
        "left_knee": ((0.073266, 0.284008, -0.031314), (245.047, 738.578), 0.05594),
    },
    "camera": {
        "nose": ((0.362667, -0.317808, -0.341067), (247.004, 169.611), 0.98499),
        "left_shoulder": ((0.323237, -0.353147, -0.155522), (219.606, 169.131), 0.99716),
        "left_hip": ((0.084571, -0.019486, 0.075881), (113.352, 322.617), 0.95598),
        "left_knee": ((0.329815, 0.105104, 0.134572), (236.063, 366.454), 0.16158),
    },
}


@pytest.fixture(scope="module")
def photos():
    _mediapipe()
    _skimage()
    body = body_model.load()
    found = {}
    for name in ("astronaut", "camera"):
        image = photo.sample_image(name)
        landmarks = photo.detect(image)
        found[name] = (image, landmarks, photo.reconstruct(landmarks, body), photo.reconstruct(landmarks, body,
                                                                                                 twist=False))
    return body, found


def test_mediapipe_landmark_order_is_ours():
    pose = _mediapipe()
    assert [m.name.lower() for m in sorted(pose.PoseLandmark, key=int)] == MEDIAPIPE_ORDER


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_landmarks_match_the_recorded_ones(photos, name):
    _, found = photos
    _, landmarks, _, _ = found[name]
    assert landmarks.image_size == (512, 512)
    for landmark, (world, pixels, visibility) in RECORDED[name].items():
        k = LM(landmark)
        assert landmarks.world[0, k].tolist() == pytest.approx(world, abs=2e-3), landmark
        assert landmarks.pixels[0, k].tolist() == pytest.approx(pixels, abs=1.0), landmark
        assert landmarks.visibility[0, k].item() == pytest.approx(visibility, abs=0.02), landmark


LIMBS = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
         for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_reconstruction_follows_the_landmarks(photos, name):
    body, found = photos
    image, landmarks, fit, fit_without_twist = found[name]
    lm = camera.camera_to_body(landmarks.world)[0]
    # the posed mesh's limbs point where MediaPipe's do
    for a, b in LIMBS:
        ours = fit.joints[0, J(b)] - fit.joints[0, J(a)]
        theirs = lm[LM(b)] - lm[LM(a)]
        cos = float(ours @ theirs / (ours.norm() * theirs.norm()))
        assert cos > 0.99, f"{name}: {a} -> {b} cosine {cos:.4f}"
    # the IK reaches the joints it was asked for
    reach = (fit.joints - fit.targets).norm(dim=-1).max()
    assert reach < 0.015, f"{name}: the IK misses a joint by {1000 * reach:.1f} mm"
    # the camera puts the seen joints onto MediaPipe's pixels (recomputed here from the fit)
    uv, w = photo.landmark_targets_2d(landmarks)
    projected = camera.project(camera.body_to_camera(fit.joints, translation=fit.transl), fit.K)
    seen = w[0] >= photo.VISIBLE
    error = (projected[0] - uv[0]).norm(dim=-1)[seen]
    assert seen.sum() >= 4 and error.mean() < 25 and error.mean() == pytest.approx(fit.reprojection_px, rel=1e-4)
    assert float(fit.transl[0, 2]) > 1.0                          # the person is in front of the camera
    # twist: the same joints, a different surface
    assert (fit.joints - fit_without_twist.joints).norm(dim=-1).max() < 0.006
    assert (fit.vertices - fit_without_twist.vertices).norm(dim=-1).max() > 0.03
    print(f"{name}: reprojection {fit.reprojection_px:.1f} px on {int(seen.sum())} seen joints, IK reach "
          f"{1000 * reach:.1f} mm, twist moves the surface by up to "
          f"{1000 * (fit.vertices - fit_without_twist.vertices).norm(dim=-1).max():.0f} mm, seconds {fit.seconds}")


def test_guessed_parts_are_the_ones_out_of_view(photos):
    _, found = photos
    _, landmarks, astronaut, _ = found["astronaut"]
    assert landmarks.pixels[0, LM("left_knee"), 1] > 512              # MediaPipe invents legs below the frame
    assert {"left_knee", "right_knee", "left_ankle", "right_ankle"} <= set(astronaut.guessed)
    assert "head" not in astronaut.guessed and "left_shoulder" not in astronaut.guessed
    _, _, cameraman, _ = found["camera"]
    assert {"left_knee", "left_ankle"} <= set(cameraman.guessed)
    assert "right_hip" not in cameraman.guessed and "head" not in cameraman.guessed


def test_figure_marks_the_guessed_joints(photos):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    body, found = photos
    image, _, fit, _ = found["camera"]
    fig = photo.figure(image, fit, body.faces)
    note = [t for t in fig.texts if t.get_gid() == "guessed-note"]
    assert len(note) == 1 and "left knee" in note[0].get_text() and "right hip" not in note[0].get_text()
    guessed = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "guessed"]
    assert sum(len(c.get_offsets()) for c in guessed) == (fit.visibility[0] < photo.VISIBLE).sum() + (
        fit.landmarks.visibility[0] < photo.VISIBLE).sum()
    plt.close(fig)


def test_no_person_is_a_clear_error():
    _mediapipe()
    with pytest.raises(ValueError, match="no person"):
        photo.detect(np.zeros((240, 320, 3), np.uint8))


# --- the command line -----------------------------------------------------------------------------------
def test_cli_missing_mediapipe_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mediapipe", None)               # import mediapipe -> ImportError
    image = tmp_path / "grey.png"
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    assert photo.main([str(image), "--out", str(tmp_path / "x.png")]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("error: MediaPipe cannot be imported") and 'hybrik-lite[photo]' in out[0]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("content,message", [(None, "no image at"), (b"not a picture", "is not an image")])
def test_cli_bad_image_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "person.png"
    if content is not None:
        path.write_bytes(content)
    assert photo.main([str(path), "--out", str(tmp_path / "x.png")]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("error: ") and message in out[0]


def test_cli_no_person(tmp_path, capsys):
    _mediapipe()
    from PIL import Image

    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(tmp_path / "empty.png")
    assert photo.main([str(tmp_path / "empty.png"), "--out", str(tmp_path / "x.png")]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "no person" in out[0]


def test_cli_writes_the_figure_and_json(tmp_path):
    """``python -m hybrik_lite photo`` with no image: the astronaut, a PNG and a JSON, no traceback."""
    _mediapipe()
    _skimage()
    run = subprocess.run([sys.executable, "-m", "hybrik_lite", "photo", "--out", str(tmp_path / "a.png"),
                          "--json", str(tmp_path / "a.json")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and run.stdout.startswith("wrote ")
    from PIL import Image

    assert Image.open(tmp_path / "a.png").size[0] > 500
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["image_size"] == [512, 512] and "astronaut" in data["image"]
    assert np.array(data["pose_axis_angle"]).shape == (24, 3) and np.array(data["twist_cos_sin"]).shape == (23, 2)
    assert np.array(data["landmarks"]["world_m"])[LM("nose")] == pytest.approx(RECORDED["astronaut"]["nose"][0],
                                                                               abs=2e-3)
    assert 0 < data["reprojection_px"] < 25 and "left_knee" in data["joints"]["guessed"]


def test_dispatch_lists_photo(capsys):
    from hybrik_lite import __main__ as cli

    assert cli.main([]) == 2
    assert "photo" in capsys.readouterr().out


def _pip_lines(text: str) -> list[tuple[str, ...]]:
    """The arguments of each ``pip install`` line in a shell text, quotes and -q dropped."""
    import shlex

    found = []
    for line in text.splitlines():
        if "pip install" in line and ("mediapipe==" in line or "opencv-python-headless" in line):
            words = shlex.split(line.split("#")[0])
            found.append(tuple(w for w in words[words.index("install") + 1:] if w != "-q"))
    return found


def test_light_install_is_the_same_everywhere():
    """photo.LIGHT_INSTALL (the notebook's Colab install), .ci/run and the README run the same two pip commands."""
    want = [tuple(args) for args in photo.LIGHT_INSTALL]
    assert _pip_lines((ROOT / ".ci" / "run").read_text().replace('"$VENV/bin/python" -m ', "")) == want
    readme = (ROOT / "README.md").read_text()
    assert all(args in _pip_lines(readme) for args in want)
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["photo"]
    assert any(r.startswith("mediapipe==0.10.14") for r in extra) and "mediapipe==0.10.14" in want[1]
    assert any(r.startswith("scikit-image") for r in extra) and "scikit-image>=0.21" in want[0]
