"""The 29-joint HybrIK skeleton: names, parents, children, left/right pairs.

SMPL has 24 joints. HybrIK adds five *leaf* joints (head top, two middle
fingertips, two big toes) so that every joint that rotates has a child whose
direction it moves: a joint's rotation can only be read off the positions of
its children.

    index  name                  parent
    0      pelvis                -1 (root)
    1      left_hip              0
    ...
    24     head_top              15  (leaf)
    28     right_big_toe         11  (leaf)

Everything here is plain Python/NumPy/torch data; nothing depends on a body
model file.
"""
from __future__ import annotations

import torch

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)
LEAF_JOINT_NAMES: tuple[str, ...] = (
    "head_top", "left_middle_fingertip", "right_middle_fingertip",
    "left_big_toe", "right_big_toe",
)
JOINT_NAMES: tuple[str, ...] = SMPL_JOINT_NAMES + LEAF_JOINT_NAMES

NUM_SMPL_JOINTS = 24
NUM_JOINTS = 29

#: Parent of each of the 29 joints (-1 for the root).
PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
    20, 21, 15, 22, 23, 10, 11,
)
#: Parent of each of the 24 SMPL joints.
SMPL_PARENTS: tuple[int, ...] = PARENTS[:NUM_SMPL_JOINTS]

#: The leaf joints' parents, in leaf order (head, left/right hand, left/right foot).
LEAF_PARENTS: tuple[int, ...] = PARENTS[NUM_SMPL_JOINTS:]


def children(parents: tuple[int, ...] | list[int] = PARENTS) -> list[list[int]]:
    """All children of each joint, in increasing index order."""
    kids: list[list[int]] = [[] for _ in parents]
    for joint, parent in enumerate(parents):
        if parent >= 0:
            kids[parent].append(joint)
    return kids


def bone_child(parents: tuple[int, ...] | list[int] = PARENTS) -> list[int]:
    """HybrIK's child convention: the joint whose direction each joint's rotation moves.

    The bone direction of joint ``j`` is ``joints[bone_child[j]] - joints[j]``: the
    lowest-index child, except the pelvis, which uses spine1 (3) rather than a hip
    (the IK solves the pelvis from all three of its children anyway). So spine3 (9)
    uses the neck (12), not a collar; leaves have no child (-1).
    """
    child = [kids[0] if kids else -1 for kids in children(parents)]
    if len(parents) >= 4 and parents[3] == 0:  # SMPL's tree: pelvis -> spine1
        child[0] = 3
    return child


#: ``BONE_CHILD[j]``: the child that defines joint j's bone direction (-1 for the leaves).
BONE_CHILD: tuple[int, ...] = tuple(bone_child())


def depth(parents: tuple[int, ...] | list[int] = PARENTS) -> list[int]:
    """Number of edges from the root to each joint (the root has depth 0)."""
    levels = []
    for joint, parent in enumerate(parents):
        if parent >= joint:
            raise ValueError(f"parents must be topologically sorted (parent < joint); joint {joint} has parent {parent}")
        levels.append(0 if parent < 0 else levels[parent] + 1)
    return levels


def levels(parents: tuple[int, ...] | list[int] = PARENTS) -> list[list[int]]:
    """Joints grouped by tree depth: ``levels()[d]`` are the joints at depth ``d``.

    Joints of one level are independent given their parents, so a solver can
    treat each level as one batched step.
    """
    d = depth(parents)
    return [[j for j in range(len(parents)) if d[j] == level] for level in range(max(d) + 1)]


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_"):]
    if name.startswith("right_"):
        return "left_" + name[len("right_"):]
    return name


#: For each joint, the index of its mirror image (itself on the midline).
FLIP_INDEX: tuple[int, ...] = tuple(JOINT_NAMES.index(_mirror_name(n)) for n in JOINT_NAMES)

#: (left, right) index pairs among the 29 joints.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, FLIP_INDEX[i]) for i, n in enumerate(JOINT_NAMES) if n.startswith("left_")
)


def parents_tensor(num_joints: int = NUM_JOINTS, device=None) -> torch.Tensor:
    """The parents as a long tensor, ``(num_joints,)`` for 24 or 29 joints."""
    if num_joints not in (NUM_SMPL_JOINTS, NUM_JOINTS):
        raise ValueError(f"num_joints must be 24 (SMPL) or 29 (SMPL + 5 leaves), got {num_joints}")
    return torch.tensor(PARENTS[:num_joints], dtype=torch.long, device=device)


#: Human3.6M's 17 joints (as regressed from the mesh in HybrIK's evaluation) and
#: the 14 of them scored on 3DPW / Human3.6M (protocol of the paper).
H36M_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "spine", "thorax", "neck_nose", "head", "left_shoulder",
    "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)
H36M_EVAL_14: tuple[int, ...] = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
