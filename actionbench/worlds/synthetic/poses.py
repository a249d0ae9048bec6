"""Poses: the 8 benchmark actions and 11 everyday poses as OpenPose keypoints in a body frame.

The body frame: x to the right of the image, y down, a standing figure 1 unit tall with its
feet on ``GROUND``. A pose is built once from a few joint angles or targets (with trigonometry)
and its points are rounded to 1e-4, so the table is the same on every machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actionbench.pose import KEYPOINT_INDEX, KEYPOINT_NAMES
from actionbench.raster import Point, add, sub, unit

from .benchmark import ACTION_IDS

# Body proportions in body units (a standing figure is 1 tall).
UPPER_ARM, FOREARM, THIGH, SHIN, TORSO = 0.17, 0.16, 0.22, 0.22, 0.31
SHOULDER_W, HIP_W = 0.11, 0.07
HEAD_R = 0.095
NECK_TO_HEAD = 0.12
GROUND = 0.99  # y of the floor in the body frame (soles of a standing figure)


def _mirrored_label(name: str) -> str:
    return name.replace("r_", "#").replace("l_", "r_").replace("#", "l_")


# For each keypoint, the index of its left/right counterpart (itself for nose and neck):
# the labels swap when a side-view figure is mirrored.
MIRRORED_KEYPOINTS = [KEYPOINT_INDEX[_mirrored_label(n)] for n in KEYPOINT_NAMES]


@dataclass(frozen=True)
class Pose:
    """A named pose in the normalised body frame.

    ``keypoints`` are the 18 OpenPose points (None where hidden: the far eye and ear of a
    side view); ``view`` is "front" (facing the camera; the person's right is image-left)
    or "side" (facing image-right; the left side is the near one). ``hands`` gives each
    hand's style ("fist", "open", "point", "palm") and, for "point"/"palm", its direction.
    """

    name: str
    kind: str  # "action" or "everyday"
    description: str
    view: str
    keypoints: tuple
    head_center: Point
    head_up: Point  # unit vector from the chin to the top of the head
    facing: Point  # unit vector the chest faces in a side view; (0, 0) in a front view
    hands: tuple  # ((style, direction-or-None) for the right hand, same for the left)
    prop: str | None = None  # "box": a seat under the hips
    ground: float = GROUND

    def array(self) -> np.ndarray:
        """The keypoints as an 18x2 float array, NaN where hidden."""
        return np.array([(np.nan, np.nan) if p is None else p for p in self.keypoints], dtype=np.float64)


def direction(degrees: float) -> Point:
    """Unit vector for an angle in degrees: 0 = down, 90 = image-right, 180 = up, -90 = image-left."""
    r = math.radians(degrees)
    return (math.sin(r), math.cos(r))


def _solve_limb(root: Point, spec: tuple, upper: float, lower: float) -> tuple[Point, Point]:
    """Joint and end point of a two-segment limb whose segments are ``upper`` and ``lower`` long.

    spec: ("fk", angle1, angle2) absolute segment angles; ("ik", target, bend) reach
    ``target`` with the joint on the side of the ``bend`` vector; ("pts", joint, end).
    """
    kind = spec[0]
    if kind == "fk":
        joint = add(root, direction(spec[1]), upper)
        return joint, add(joint, direction(spec[2]), lower)
    if kind == "pts":
        return spec[1], spec[2]
    if kind == "ik":
        target, bend = spec[1], spec[2]
        d = sub(target, root)
        dist = math.sqrt(d[0] * d[0] + d[1] * d[1])
        dist = min(max(dist, abs(upper - lower) + 1e-6), upper + lower - 1e-6)
        u = unit(d)
        # the joint lies where the circles around root (radius upper) and end (radius lower) cross
        a = (upper * upper - lower * lower + dist * dist) / (2 * dist)
        h = math.sqrt(max(upper * upper - a * a, 0.0))
        perp = (-u[1], u[0])
        if perp[0] * bend[0] + perp[1] * bend[1] < 0:
            perp = (u[1], -u[0])
        joint = (root[0] + a * u[0] + h * perp[0], root[1] + a * u[1] + h * perp[1])
        return joint, add(root, u, dist)
    raise ValueError(f"unknown limb spec {spec!r}")


def _round_point(p: Point | None) -> Point | None:
    """Rounded to 1e-4 (and -0.0 made 0.0), so that trigonometry's last bits never reach a pixel."""
    return None if p is None else (round(p[0], 4) + 0.0, round(p[1], 4) + 0.0)


def _make_pose(
    name: str,
    kind: str,
    description: str,
    *,
    view: str = "front",
    hip: Point = (0.0, 0.525),
    torso: float = 180.0,
    head: float | None = None,
    r_arm: tuple = ("fk", -10, -4),
    l_arm: tuple = ("fk", 10, 4),
    r_leg: tuple = ("fk", -4, -1),
    l_leg: tuple = ("fk", 4, 1),
    hands: tuple = (("fist", None), ("fist", None)),
    prop: str | None = None,
) -> Pose:
    """A pose from the hip centre, the torso and head angles and each limb's spec (see ``_solve_limb``)."""
    spine = direction(torso)  # hip centre -> neck
    neck = add(hip, spine, TORSO)
    head_dir = direction(head) if head is not None else spine
    head_center = add(neck, head_dir, NECK_TO_HEAD)
    if view == "front":
        right = (-spine[1], spine[0]) if -spine[1] < 0 or (-spine[1] == 0 and spine[0] < 0) else (spine[1], -spine[0])
        if abs(right[0]) < 1e-9:
            right = (-1.0, 0.0)
        head_right = (-head_dir[1], head_dir[0]) if -head_dir[1] < 0 else (head_dir[1], -head_dir[0])
        r_shoulder = add(add(neck, spine, -0.015), right, SHOULDER_W)
        l_shoulder = add(add(neck, spine, -0.015), right, -SHOULDER_W)
        r_hip, l_hip = add(hip, right, HIP_W), add(hip, right, -HIP_W)
        nose = add(head_center, head_dir, -0.015)
        r_eye = add(add(head_center, head_dir, 0.015), head_right, 0.032)
        l_eye = add(add(head_center, head_dir, 0.015), head_right, -0.032)
        r_ear, l_ear = add(head_center, head_right, 0.08), add(head_center, head_right, -0.08)
        facing = (0.0, 0.0)
    else:
        facing = (-spine[1], spine[0])
        head_forward = (-head_dir[1], head_dir[0])
        r_shoulder = add(add(neck, spine, -0.015), facing, -0.012)
        l_shoulder = add(add(neck, spine, -0.015), facing, 0.012)
        r_hip, l_hip = add(hip, facing, -0.01), add(hip, facing, 0.01)
        nose = add(add(head_center, head_forward, 0.075), head_dir, -0.01)
        l_eye = add(add(head_center, head_forward, 0.045), head_dir, 0.015)
        l_ear = add(head_center, head_forward, -0.02)
        r_eye = r_ear = None
    r_elbow, r_wrist = _solve_limb(r_shoulder, r_arm, UPPER_ARM, FOREARM)
    l_elbow, l_wrist = _solve_limb(l_shoulder, l_arm, UPPER_ARM, FOREARM)
    r_knee, r_ankle = _solve_limb(r_hip, r_leg, THIGH, SHIN)
    l_knee, l_ankle = _solve_limb(l_hip, l_leg, THIGH, SHIN)
    points = (nose, neck, r_shoulder, r_elbow, r_wrist, l_shoulder, l_elbow, l_wrist, r_hip, r_knee, r_ankle,
              l_hip, l_knee, l_ankle, r_eye, l_eye, r_ear, l_ear)
    hand_styles = tuple((style, None if d is None else _round_point(direction(d))) for style, d in hands)
    return Pose(
        name=name,
        kind=kind,
        description=description,
        view=view,
        keypoints=tuple(_round_point(p) for p in points),
        head_center=_round_point(head_center),
        head_up=_round_point(unit(head_dir)),
        facing=_round_point(facing),
        hands=hand_styles,
        prop=prop,
    )


def _build_poses() -> dict[str, Pose]:
    poses = {}

    def add_pose(pose: Pose) -> None:
        poses[pose.name] = pose

    # ---- the 8 benchmark actions -------------------------------------------------------
    add_pose(_make_pose("cheer", "action", "both arms raised high in a V above the head",
                        r_arm=("fk", -148, -162), l_arm=("fk", 148, 162),
                        r_leg=("fk", -7, -3), l_leg=("fk", 7, 3),
                        hands=(("open", None), ("open", None))))
    add_pose(_make_pose("gesture", "action", "right arm straight up, index finger pointing up; left arm down",
                        r_arm=("fk", -170, 178), l_arm=("fk", 9, 4),
                        hands=(("point", 180), ("fist", None))))
    add_pose(_make_pose("handstand", "action", "upside down on both hands, straight arms, legs up in a narrow V",
                        hip=(0.0, 0.335), torso=0.0,
                        r_arm=("fk", -2, -2), l_arm=("fk", 2, 2),
                        r_leg=("fk", -171, -172), l_leg=("fk", 171, 172),
                        hands=(("open", None), ("open", None))))
    add_pose(_make_pose("meditate", "action", "seated cross-legged on the floor, hands resting on the knees",
                        hip=(0.0, 0.895),
                        r_arm=("ik", (-0.245, 0.875), (-1, 0)), l_arm=("ik", (0.245, 0.875), (1, 0)),
                        r_leg=("pts", (-0.27, 0.925), (0.075, 0.955)), l_leg=("pts", (0.27, 0.925), (-0.075, 0.945)),
                        hands=(("open", None), ("open", None))))
    add_pose(_make_pose("pray", "action", "palms pressed together in front of the chest, elbows out and down",
                        r_arm=("ik", (-0.014, 0.305), (-1, 0.6)), l_arm=("ik", (0.014, 0.305), (1, 0.6)),
                        hands=(("palm", 180), ("palm", 180))))
    add_pose(_make_pose("salute", "action", "right hand flat at the forehead, elbow out to the side; left arm down",
                        r_arm=("ik", (-0.06, 0.035), (-1, -0.2)), l_arm=("fk", 9, 4),
                        hands=(("palm", 150), ("fist", None))))
    add_pose(_make_pose("sit", "action", "sitting upright on a box seat, thighs horizontal, shins vertical, hands on thighs",
                        view="side", hip=(0.0, 0.735),
                        r_arm=("ik", (0.13, 0.68), (-1, 0)), l_arm=("ik", (0.16, 0.675), (-1, 0)),
                        r_leg=("fk", 88, -2), l_leg=("fk", 90, 0),
                        prop="box"))
    add_pose(_make_pose("squat", "action", "deep squat: knees bent forward, hips below the knees, arms straight forward",
                        view="side", hip=(-0.10, 0.80), torso=148,
                        r_arm=("fk", 86, 88), l_arm=("fk", 92, 92),
                        r_leg=("ik", (0.0, 0.955), (1, -0.2)), l_leg=("ik", (0.025, 0.955), (1, -0.2)),
                        hands=(("fist", None), ("fist", None))))

    # ---- everyday poses (the mini world's negatives) ------------------------------------
    add_pose(_make_pose("stand", "everyday", "standing upright, arms relaxed at the sides"))
    add_pose(_make_pose("walk", "everyday", "walking: legs in a stride, arms swinging",
                        view="side", hip=(0.0, 0.535),
                        r_arm=("fk", 25, 45), l_arm=("fk", -25, -12),
                        r_leg=("fk", -20, -34), l_leg=("fk", 22, 6)))
    add_pose(_make_pose("run", "everyday",
                        "running: leaning forward, front knee high, back foot kicked up behind, elbows bent",
                        view="side", hip=(0.0, 0.60), torso=160,
                        r_arm=("fk", 45, 140), l_arm=("fk", -50, 20),
                        r_leg=("fk", 75, -5), l_leg=("fk", -28, -115)))
    add_pose(_make_pose("wave", "everyday", "right upper arm out to the side, forearm up, open hand waving; left arm down",
                        r_arm=("fk", -100, -172), l_arm=("fk", 9, 4),
                        hands=(("open", None), ("fist", None))))
    add_pose(_make_pose("lie", "everyday", "lying flat on the back on the floor, arms along the body",
                        view="side", hip=(0.07, 0.905), torso=-90,
                        r_arm=("fk", 80, 86), l_arm=("fk", 84, 90),
                        r_leg=("fk", 90, 90), l_leg=("fk", 91, 91)))
    add_pose(_make_pose("touch_toes", "everyday", "bending forward at the hips with straight legs, hands reaching the feet",
                        view="side", hip=(-0.06, 0.53), torso=72, head=40,
                        r_arm=("fk", -8, -14), l_arm=("fk", -14, -18),
                        r_leg=("fk", 6, 0), l_leg=("fk", 8, 2)))
    add_pose(_make_pose("jump", "everyday", "star jump in the air: arms out to the sides, legs spread wide",
                        hip=(0.0, 0.40),
                        r_arm=("fk", -102, -108), l_arm=("fk", 102, 108),
                        r_leg=("fk", -26, -24), l_leg=("fk", 26, 24),
                        hands=(("open", None), ("open", None))))
    add_pose(_make_pose("kick", "everyday", "standing on one leg, the other leg kicked forward horizontally, leaning back",
                        view="side", hip=(0.0, 0.525), torso=196,
                        r_arm=("fk", -60, -20), l_arm=("fk", 50, 160),
                        r_leg=("fk", -4, 0), l_leg=("fk", 96, 100)))
    add_pose(_make_pose("arms_crossed", "everyday", "standing with the forearms folded across the belly",
                        r_arm=("pts", (-0.165, 0.385), (0.105, 0.40)), l_arm=("pts", (0.165, 0.395), (-0.105, 0.415)),
                        hands=(("fist", None), ("fist", None))))
    add_pose(_make_pose("hands_on_hips", "everyday", "standing with both hands on the hips, elbows out wide",
                        r_arm=("pts", (-0.29, 0.335), (-0.135, 0.49)), l_arm=("pts", (0.29, 0.335), (0.135, 0.49))))
    add_pose(_make_pose("kneel", "everyday", "kneeling on one knee, the other foot flat in front, torso upright",
                        view="side", hip=(0.0, 0.725),
                        r_arm=("fk", -6, -2), l_arm=("ik", (0.19, 0.675), (-1, 0)),
                        r_leg=("pts", (-0.015, 0.945), (-0.235, 0.955)), l_leg=("fk", 88, 2)))
    return poses


POSES: dict[str, Pose] = _build_poses()
ACTION_POSES = {a: a for a in ACTION_IDS}  # action id -> pose name
EVERYDAY_POSES = tuple(n for n, p in POSES.items() if p.kind == "everyday")


def pose_distance(a: str | Pose, b: str | Pose) -> float:
    """Largest displacement of any of the 14 body keypoints between two poses (body units),
    after aligning their hip centres."""
    pose_a = POSES[a] if isinstance(a, str) else a
    pose_b = POSES[b] if isinstance(b, str) else b
    r_hip, l_hip = KEYPOINT_INDEX["r_hip"], KEYPOINT_INDEX["l_hip"]
    body_a, body_b = pose_a.array()[:14], pose_b.array()[:14]
    body_a = body_a - (body_a[r_hip] + body_a[l_hip]) / 2
    body_b = body_b - (body_b[r_hip] + body_b[l_hip]) / 2
    d = body_a - body_b
    return float(np.sqrt((d * d).sum(axis=1)).max())
