"""Figure geometry: a pose made into one figure (seeded jitter, lean and mirror, the look's size),
with its prop and tail, in body units; and the box everything drawn will fill.

Determinism: only + - * / on float64 and ``random.Random.random()`` draws in a fixed order.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from actionbench.pose import KEYPOINT_INDEX, KEYPOINT_NAMES
from actionbench.raster import Point, add, lerp, sub, unit

from .looks import Look
from .poses import HEAD_R, MIRRORED_KEYPOINTS, Pose

# Tail centre lines in a frame at the hip (x: away from the chest, y: up the spine), and the
# tail's thickness, both in body units; a one-point tail is a round puff.
TAIL_SHAPES = {
    "long": ([(0.0, 0.0), (0.10, 0.01), (0.19, 0.06), (0.24, 0.15), (0.25, 0.25), (0.21, 0.32)], 0.022),
    "curl": ([(0.0, 0.0), (0.12, 0.0), (0.22, 0.05), (0.27, 0.15), (0.25, 0.25), (0.18, 0.29), (0.14, 0.24),
              (0.17, 0.19)], 0.018),
    "short": ([(0.0, 0.02), (0.07, 0.08), (0.11, 0.15)], 0.028),
    "puff": ([(0.04, 0.0)], 0.045),
}  # fmt: skip
# How far above the head centre (in head radii) a hat, ears or hair reach; 1.2 when not listed.
# A new tall hat or hair style needs its entry here, or the layout may crop it.
HEAD_TOP_REACH = {"chef": 2.65, "police": 1.45, "fedora": 1.6, "long": 2.35, "pointed": 1.5, "wild": 1.65, "bun": 1.5}


@dataclass
class FigureGeometry:
    """Where everything of one figure is: in body units first, in pixels after ``transformed``."""

    keypoints: list  # 18 points, None where hidden
    head_center: Point
    head_up: Point  # unit vector from the chin to the top of the head
    facing: Point  # side view: the unit vector the chest faces; (0, 0) in a front view
    hands: list  # [(style, direction or None)] for the right hand, then the left
    near: str | None  # side view: the side facing the camera, "l" or "r"; None in a front view
    prop_kind: str | None  # a key of PROP_OUTLINES ("box") or None
    prop: list | None  # the prop's outline points
    tail: list | None  # the tail's centre line
    extras: dict = field(default_factory=dict)  # worn props' outline points by name (wearables.attach_props)

    def transformed(self, point: Callable[[Point], Point], vector: Callable[[Point], Point]) -> FigureGeometry:
        """The same figure with every point mapped by ``point`` and every direction by ``vector``."""
        return FigureGeometry(
            keypoints=[None if p is None else point(p) for p in self.keypoints],
            head_center=point(self.head_center),
            head_up=vector(self.head_up),
            facing=vector(self.facing),
            hands=[(s, None if d is None else vector(d)) for s, d in self.hands],
            near=self.near,
            prop_kind=self.prop_kind,
            prop=None if self.prop is None else [point(p) for p in self.prop],
            tail=None if self.tail is None else [point(p) for p in self.tail],
            extras={name: [point(p) for p in points] for name, points in self.extras.items()},
        )


def hip_center(keypoints) -> Point:
    """The midpoint of the two hips."""
    return lerp(keypoints[KEYPOINT_INDEX["r_hip"]], keypoints[KEYPOINT_INDEX["l_hip"]], 0.5)


def _box_seat(pose: Pose, geometry: FigureGeometry, hip: Point) -> list[Point]:
    """A box under the hips, from just below them to the floor, reaching further behind than in front."""
    forward = 1.0 if pose.facing[0] >= 0 else -1.0
    kp = geometry.keypoints
    top = max(kp[KEYPOINT_INDEX["r_hip"]][1], kp[KEYPOINT_INDEX["l_hip"]][1]) + 0.04
    back, front = hip[0] - 0.15 * forward, hip[0] + 0.08 * forward
    return [(back, top), (front, top), (front, pose.ground), (back, pose.ground)]


# Pose.prop -> the prop's outline in body units (drawn by the painter's PROP_PAINTERS).
PROP_OUTLINES = {"box": _box_seat}


def body_geometry(look: Look, pose: Pose, rng: random.Random) -> tuple[FigureGeometry, dict]:
    """The figure in body units after the seed's jitter, lean, mirror and the look's scale."""
    draw = rng.random  # fixed order of draws: lean, mirror (side views only), 18 jitters (x, y)
    lean = (draw() * 2.0 - 1.0) * 0.04
    mirror = pose.view == "side" and draw() < 0.5
    jitter = [((draw() * 2.0 - 1.0) * 0.012, (draw() * 2.0 - 1.0) * 0.012) for _ in range(len(KEYPOINT_NAMES))]
    head_jitter = jitter[0]  # the face points move with the head, together
    keypoints = []
    for i, p in enumerate(pose.keypoints):
        if p is None:
            keypoints.append(None)
        else:
            j = head_jitter if i in (0, 14, 15, 16, 17) else jitter[i]
            keypoints.append((p[0] + j[0], p[1] + j[1]))
    g = FigureGeometry(
        keypoints=keypoints,
        head_center=(pose.head_center[0] + head_jitter[0], pose.head_center[1] + head_jitter[1]),
        head_up=pose.head_up,
        facing=pose.facing,
        hands=list(pose.hands),
        near="l" if pose.view == "side" else None,
        prop_kind=pose.prop,
        prop=None,
        tail=None,
    )
    hip = hip_center(g.keypoints)
    if pose.prop is not None:
        g.prop = PROP_OUTLINES[pose.prop](pose, g, hip)
    if look.tail:
        up = unit(sub(g.keypoints[KEYPOINT_INDEX["neck"]], hip))
        if pose.view == "side":
            back = (-pose.facing[0], -pose.facing[1])
            if back[1] > 0.7:  # lying on the back: the tail lies along the floor
                back = (1.0, 0.0)
        else:
            back = (-up[1], up[0]) if -up[1] >= 0 else (up[1], -up[0])
        base = add(hip, up, 0.02)
        g.tail = [(base[0] + x * back[0] + y * up[0], base[1] + x * back[1] + y * up[1])
                  for x, y in TAIL_SHAPES[look.tail][0]]
    # lean: a small rational rotation about the floor point under the hips (no trig: exact everywhere)
    if pose.prop is None and lean != 0.0:
        c, s = (1 - lean * lean) / (1 + lean * lean), 2 * lean / (1 + lean * lean)
        px, py = hip[0], pose.ground

        def rotate_point(p):
            dx, dy = p[0] - px, p[1] - py
            return (px + c * dx - s * dy, py + s * dx + c * dy)

        def rotate_vector(v):
            return (c * v[0] - s * v[1], s * v[0] + c * v[1])

        g = g.transformed(rotate_point, rotate_vector)
    if mirror:
        cx = hip_center(g.keypoints)[0]
        g = g.transformed(lambda p: (2 * cx - p[0], p[1]), lambda v: (-v[0], v[1]))
        g.keypoints = [g.keypoints[MIRRORED_KEYPOINTS[i]] for i in range(len(g.keypoints))]
        g.hands = [g.hands[1], g.hands[0]]
        g.near = "r"
    if look.scale != 1.0:
        px, py, k = hip_center(g.keypoints)[0], pose.ground, look.scale
        g = g.transformed(lambda p: (px + (p[0] - px) * k, py + (p[1] - py) * k), lambda v: v)
    return g, {"lean": lean, "mirror": mirror}


def figure_extent(look: Look, g: FigureGeometry, head_top: float = 0.0,
                  more: list | tuple = ()) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) of everything drawn, in body units.

    ``head_top``: how far above the head's centre (in head radii) something worn reaches, when
    that is higher than the look's own hat, ears and hair; ``more``: other points to fit.
    """
    xs, ys = [], []
    margin = 0.075 * max(look.build, 1.0) * look.scale  # limb thickness around each joint
    for p in g.keypoints:
        if p is not None:
            xs += [p[0] - margin, p[0] + margin]
            ys += [p[1] - margin, p[1] + margin]
    head_radius = HEAD_R * look.head_scale * look.scale
    top = max(HEAD_TOP_REACH.get(look.hat or "", 1.2), HEAD_TOP_REACH.get(look.ears or "", 1.2),
              HEAD_TOP_REACH.get(look.hair_style, 1.2), head_top)
    side = (-g.head_up[1], g.head_up[0])
    # points around the head, in head radii along (up, side)
    for a, b in ((top, 0.0), (top * 0.8, 1.4), (top * 0.8, -1.4), (-1.1, 1.3), (-1.1, -1.3), (0.0, 1.5), (0.0, -1.5)):
        xs.append(g.head_center[0] + head_radius * (a * g.head_up[0] + b * side[0]))
        ys.append(g.head_center[1] + head_radius * (a * g.head_up[1] + b * side[1]))
    for p in (g.prop or []) + (g.tail or []) + list(more):
        xs += [p[0] - 0.05, p[0] + 0.05]
        ys += [p[1] - 0.05, p[1] + 0.05]
    return min(xs), min(ys), max(xs), max(ys)
