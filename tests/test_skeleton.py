import pytest

from hybrik_lite import skeleton


def test_tree_matches_hybrik_facts():
    assert len(skeleton.JOINT_NAMES) == len(skeleton.PARENTS) == 29
    assert skeleton.PARENTS == (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17,
                                18, 19, 20, 21, 15, 22, 23, 10, 11)
    # every leaf hangs off the joint whose name says so
    for leaf, parent in zip(skeleton.LEAF_JOINT_NAMES, skeleton.LEAF_PARENTS):
        part = {"head_top": "head", "left_middle_fingertip": "left_hand",
                "right_middle_fingertip": "right_hand", "left_big_toe": "left_foot",
                "right_big_toe": "right_foot"}[leaf]
        assert skeleton.JOINT_NAMES[parent] == part


def test_bone_child_convention():
    child = skeleton.bone_child()
    assert child[0] == 3 and child[9] == 12  # pelvis -> spine1, spine3 -> neck
    assert all(child[j] > j for j in range(24))  # every SMPL joint has a child (thanks to the leaves)
    assert all(child[j] == -1 for j in range(24, 29))


def test_levels_cover_tree_once_and_respect_parents():
    levels = skeleton.levels()
    flat = sorted(j for level in levels for j in level)
    assert flat == list(range(29))
    depth = skeleton.depth()
    for j, p in enumerate(skeleton.PARENTS):
        if p >= 0:
            assert depth[j] == depth[p] + 1
    assert len(levels) == 10  # pelvis ... collar, shoulder, elbow, wrist, hand, fingertip


def test_flip_index_is_an_involution_swapping_sides():
    flip = skeleton.FLIP_INDEX
    assert all(flip[flip[j]] == j for j in range(29))
    for left, right in skeleton.LEFT_RIGHT_PAIRS:
        assert skeleton.JOINT_NAMES[left].replace("left_", "") == skeleton.JOINT_NAMES[right].replace("right_", "")
    assert len(skeleton.LEFT_RIGHT_PAIRS) == 11


def test_bad_input():
    with pytest.raises(ValueError, match="topologically"):
        skeleton.depth([-1, 2, 0])
    with pytest.raises(ValueError, match="24"):
        skeleton.parents_tensor(17)
