"""Wearables and builds: garments, head gear and props that any figure can carry (animals too).

A render takes them as ``attributes`` (``WEARABLES`` names, in any order) and ``build`` (a
``BUILDS`` name). With no attributes and the ``regular`` build nothing here runs, so the
pixels are the v1 renderer's.

Each attribute has a colour no other attribute uses and a place of its own, so that it reads
at 32 pixels on every subject and in every pose:

    uniform     an olive jacket over the torso, worn open, a dark belt with a brass buckle
    robe        a plum robe over the torso, worn open, reaching a little below the hips
    sportswear  a lime tank top with a navy hem
    cap         a yellow peaked cap (it replaces a human's own hat; an animal's ears poke through it)
    headband    a thick cyan band across the forehead, its knot's two ends flying out at the side
    scarf       a thick pink band round the neck with a long hanging end
    mat         a deep violet mat on the floor under the figure
    stool       a large blue stool standing beside the figure

The body garments cover the torso only, so that the figure stays recognisable in them: arms,
legs and head keep the subject's own colours, and the uniform and the robe, worn open, show a
strip of what is under them down the chest in a front view (docs/mini-v2-design.md, "The
world change").

Garments are painted over the body part they cover, at that part's depth:
``painter.FigurePainter.draw`` calls ``paint_garment`` after the torso, ``paint_head_gear`` after
the head and ``paint_stool`` first; ``paint_mat`` is painted by the scene under the shadow.
Props get outlines in body units (``attach_props``), so the layout fits the stool. A seed that
places a prop (the stool's side) comes from its own random stream, so the figure's layout draws
are the same with and without attributes.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Protocol

from actionbench.errors import DatasetError
from actionbench.raster import RGB, Point, add, capsule, disc, lerp, polygon, sub

from . import heads
from .figure import FigureGeometry
from .looks import Look
from .poses import Pose


@dataclass(frozen=True)
class Wearable:
    """One attribute: what it is called, where it goes and its colours."""

    name: str
    words: str  # a caption phrase, e.g. "in an olive uniform"
    slot: str  # body (one garment at most), head, forehead, neck, floor, beside
    colour: RGB  # the main colour, used by no other attribute
    trim: RGB  # a second colour: belt, peak, shorts, stool legs, mat edge


WEARABLES: dict[str, Wearable] = {
    w.name: w
    for w in (
        Wearable("uniform", "in an olive uniform", "body", (96, 110, 48), (58, 40, 24)),
        Wearable("robe", "in a plum robe", "body", (122, 36, 100), (92, 24, 74)),
        Wearable("sportswear", "in a lime tank top", "body", (172, 230, 28), (30, 44, 120)),
        Wearable("cap", "wearing a yellow cap", "head", (252, 226, 20), (30, 26, 28)),
        Wearable("headband", "wearing a cyan headband", "forehead", (24, 206, 236), (24, 206, 236)),
        Wearable("scarf", "wearing a pink scarf", "neck", (238, 52, 150), (250, 200, 225)),
        Wearable("mat", "on a violet mat", "floor", (142, 88, 222), (190, 160, 245)),
        Wearable("stool", "next to a blue stool", "beside", (36, 86, 218), (125, 125, 135)),
    )
}
ATTRIBUTES = tuple(WEARABLES)
# Body builds: how much thicker (or thinner) limbs and trunk are than the subject's own build.
BUILDS: dict[str, float] = {"slim": 0.72, "regular": 1.0, "broad": 1.4}
DEFAULT_BUILD = "regular"
# A cap reaches this many head radii above the head's centre (figure_extent's HEAD_TOP_REACH),
# and sits this much higher on a headband.
CAP_TOP_REACH = 2.05
CAP_LIFT_ON_HEADBAND = 0.3
_BRASS = (236, 196, 64)
_SHIRT_FRONT = (245, 245, 245)  # painter's shirt-front white


def canonical_attributes(attributes) -> tuple[str, ...]:
    """The attributes as a tuple in ``WEARABLES`` order (so the order they were given in never
    changes a pixel); a single name may be passed as a string.

    Raises:
        DatasetError: an unknown name, a repeated one, or two garments for the body.
    """
    if attributes is None:
        return ()
    names = (attributes,) if isinstance(attributes, str) else tuple(attributes)
    unknown = [n for n in names if n not in WEARABLES]
    if unknown:
        raise DatasetError(f"unknown attribute(s) {', '.join(map(repr, unknown))}; known: {', '.join(ATTRIBUTES)}")
    if len(set(names)) != len(names):
        raise DatasetError(f"attributes {names!r} name one twice; give each at most once")
    body = [n for n in names if WEARABLES[n].slot == "body"]
    if len(body) > 1:
        raise DatasetError(f"attributes {' and '.join(body)} are both worn on the body; choose one of them")
    return tuple(n for n in ATTRIBUTES if n in names)


def check_build(build: str) -> str:
    """``build`` if it is a ``BUILDS`` name.

    Raises:
        DatasetError: an unknown build.
    """
    if build not in BUILDS:
        raise DatasetError(f"unknown build {build!r}; known: {', '.join(BUILDS)}")
    return build


def dress(look: Look, attributes: tuple, build: str = DEFAULT_BUILD) -> Look:
    """The look the painter draws under these attributes and this build.

    The build scales limb and trunk thickness. A cap takes the place of a human's own hat;
    everything else is painted over the figure, which keeps its own clothes under it.
    """
    changes: dict = {}
    if BUILDS[build] != 1.0:
        changes["build"] = look.build * BUILDS[build]
    if look.species == "human" and "cap" in attributes and look.hat is not None:
        changes["hat"] = None
    return replace(look, **changes) if changes else look


def body_garment(attributes: tuple) -> str | None:
    """The one attribute worn on the body (uniform, robe, sportswear), or None."""
    return next((n for n in attributes if WEARABLES[n].slot == "body"), None)


def head_top_reach(attributes: tuple) -> float:
    """How far above the head's centre (in head radii) the attributes reach; 0 when not at all."""
    if "cap" not in attributes:
        return 0.0
    return CAP_TOP_REACH + (CAP_LIFT_ON_HEADBAND if "headband" in attributes else 0.0)


def points_to_fit(g: FigureGeometry) -> list:
    """The props' points the layout must keep in the frame: the stool's. (A mat may run out of the
    frame at the side, so that it never moves the figure.)"""
    return list(g.extras.get("stool", ()))


# --- props in body units -----------------------------------------------------------------------


def attach_props(g: FigureGeometry, pose: Pose, look: Look, attributes: tuple, rng: random.Random) -> None:
    """Outline the mat and the stool (body units) into ``g.extras``; ``rng`` picks the stool's side."""
    points = [p for p in g.keypoints if p is not None]
    ground = pose.ground
    if "mat" in attributes:
        # under what touches the floor (for a figure in the air: under all of it)
        low = [p for p in points if p[1] > ground - 0.3 * look.scale] or points
        x0, x1 = min(p[0] for p in low), max(p[0] for p in low)
        centre, half = (x0 + x1) / 2, max((x1 - x0) / 2 + 0.16, 0.32)
        top, bottom = ground - 0.07, ground + 0.06
        g.extras["mat"] = [(centre - half + 0.05, top), (centre + half - 0.05, top),
                           (centre + half, bottom), (centre - half, bottom)]
    if "stool" in attributes:
        right = rng.random() < 0.5
        xs = [p[0] for p in points] + [p[0] for p in (g.prop or [])]
        centre = (max(xs) + 0.25) if right else (min(xs) - 0.25)
        seat = ground - 0.35
        # seat left, seat right, the two feet, the crossbar's ends
        g.extras["stool"] = [(centre - 0.145, seat), (centre + 0.145, seat), (centre - 0.165, ground),
                             (centre + 0.165, ground), (centre - 0.125, ground - 0.14), (centre + 0.125, ground - 0.14)]


# --- painting ----------------------------------------------------------------------------------


class Painter(heads.Painter, Protocol):
    """What the wearables need of ``painter.FigurePainter``."""

    attributes: tuple
    neck: Point
    hip: Point
    up: Point
    lateral: Point

    def joint(self, name: str) -> Point: ...


def paint_mat(painter: Painter) -> None:
    """The mat: a flat trapezoid on the floor, with a lighter front edge."""
    corners = painter.geometry.extras.get("mat")
    if not corners:
        return
    mat = WEARABLES["mat"]
    painter.group([(polygon(corners, painter.pixels(0.008)), mat.colour)])
    painter.group([(capsule(corners[0], corners[1], painter.pixels(0.016)), mat.trim)], outline=False)


def paint_stool(painter: Painter) -> None:
    """The stool: splayed grey legs and a crossbar under a thick blue seat."""
    points = painter.geometry.extras.get("stool")
    if not points:
        return
    stool = WEARABLES["stool"]
    seat_l, seat_r, foot_l, foot_r, bar_l, bar_r = points
    leg = painter.pixels(0.026)
    inset = 0.18  # the legs start a little inside the seat's ends
    painter.group([(capsule(lerp(seat_l, seat_r, inset), foot_l, leg), stool.trim),
                   (capsule(lerp(seat_r, seat_l, inset), foot_r, leg), stool.trim),
                   (capsule(bar_l, bar_r, leg * 0.8), stool.trim),
                   (capsule(seat_l, seat_r, painter.pixels(0.045)), stool.colour)])


def paint_garment(painter: Painter) -> None:
    """The body garment over the torso (after the torso's own details, before the head); arms and legs
    stay the figure's own."""
    garment = body_garment(painter.attributes)
    if garment is None:
        return
    wearable = WEARABLES[garment]
    look = painter.look
    s, b = look.scale, look.build
    down = (-painter.up[0], -painter.up[1])
    trunk_radius = painter.pixels((0.07 if painter.side else 0.045) * b * s)
    r_shoulder, l_shoulder, r_hip, l_hip = (painter.joint(n) for n in ("r_shoulder", "l_shoulder", "r_hip", "l_hip"))
    hem = painter.pixels({"uniform": 0.05, "robe": 0.12, "sportswear": 0.015}[garment] * s)
    painter.group([(polygon([r_shoulder, l_shoulder, add(r_hip, down, hem), add(l_hip, down, hem)],
                            trunk_radius * 1.12), wearable.colour)])
    waist = lerp(painter.neck, painter.hip, 0.9)
    if garment in ("uniform", "robe") and not painter.side:
        _paint_open_front(painter, add(waist, down, hem if garment == "robe" else 0.0))
    if garment == "sportswear":  # a navy hem across the hips
        half = _trunk_half_width(painter, trunk_radius)
        hips = painter.hip
        painter.group([(capsule(add(hips, painter.lateral, half), add(hips, painter.lateral, -half),
                                painter.pixels(0.026 * s)), wearable.trim)], outline=False)
    elif garment == "uniform":  # a dark belt with a brass buckle
        half = _trunk_half_width(painter, trunk_radius)
        front = add(waist, painter.lateral, half * 0.8) if painter.side else waist
        painter.group([(capsule(add(waist, painter.lateral, half), add(waist, painter.lateral, -half),
                                painter.pixels(0.022 * s)), wearable.trim),
                       (disc(front, painter.pixels(0.02 * s)), _BRASS)], outline=False)


def _paint_open_front(painter: Painter, bottom: Point) -> None:
    """A strip down the chest, from the neck to ``bottom``, of what the open garment is worn over: the
    shirt (white where it has a shirt front) and its tie, or an animal's belly."""
    look = painter.look
    s = look.scale
    top = lerp(painter.neck, painter.hip, 0.05)
    if painter.human:
        colour = _SHIRT_FRONT if "shirt_front" in look.details else look.shirt
    else:
        colour = look.belly or look.skin
    items = [(capsule(top, bottom, painter.pixels(0.026 * s)), colour)]
    if painter.human and "tie" in look.details:
        items.append((capsule(top, lerp(top, bottom, 0.7), painter.pixels(0.012 * s)), look.accent))
    painter.group(items, outline=False)


def paint_head_gear(painter: Painter) -> None:
    """Scarf, headband and cap, in that order, over the head (an animal's ears on top of its head
    stay in sight: beside a narrower crown, or over the cap in a side view)."""
    attributes = painter.attributes
    if "scarf" in attributes:
        _paint_scarf(painter)
    if "headband" not in attributes and "cap" not in attributes:
        return
    head = heads.head_frame(painter)
    at, r = head.at, head.radius
    if "headband" in attributes:
        band = WEARABLES["headband"]
        if painter.side:  # the knot at the back of the head
            ends = (at(0.5, 0, -1.0), at(0.5, 0, 0.96))
            knot, tails = ends[0], (at(-0.05, 0, -1.95), at(0.45, 0, -2.1))
        else:  # the knot at the image-left side
            ends = (at(0.5, 0.97), at(0.5, -0.97))
            knot, tails = ends[1], (at(-0.2, -1.9), at(0.4, -2.05))
        painter.group([(capsule(ends[0], ends[1], r * 0.45), band.colour)]
                      + [(capsule(knot, tail, r * 0.32), band.colour) for tail in tails])
    if "cap" in attributes:
        cap = WEARABLES["cap"]
        lift = CAP_LIFT_ON_HEADBAND if "headband" in attributes else 0.0  # it sits on a headband, not over it
        ears_on_top = not painter.human and painter.look.ears in ("pointed", "round")
        if painter.side:
            crown = [at(0.5 + lift, 0, -1.05), at(0.5 + lift, 0, 0.95), at(1.75 + lift, 0, -0.95),
                     at(1.75 + lift, 0, 0.8)]
            peak = (at(0.55 + lift, 0, 0.35), at(0.45 + lift, 0, 2.0))
        elif ears_on_top:  # a narrower, taller crown between the ears, which show on either side
            crown = [at(0.5 + lift, 0.55), at(0.5 + lift, -0.55), at(1.9 + lift, 0.47), at(1.9 + lift, -0.47)]
            peak = (at(0.55 + lift, 0.9), at(0.55 + lift, -0.9))
        else:
            crown = [at(0.5 + lift, 1.1), at(0.5 + lift, -1.1), at(1.75 + lift, 0.95), at(1.75 + lift, -0.95)]
            peak = (at(0.55 + lift, 1.4), at(0.55 + lift, -1.4))
        painter.group([(polygon(crown, r * 0.08), cap.colour), (capsule(peak[0], peak[1], r * 0.26), cap.trim)])
        if ears_on_top and painter.side:  # seen from the side the crown covers the ear: it pokes through
            heads.paint_animal_ears(painter, head)


def _paint_scarf(painter: Painter) -> None:
    """A thick band round the neck, and one end hanging down the chest."""
    scarf = WEARABLES["scarf"]
    look = painter.look
    s, b = look.scale, math.sqrt(look.build)
    knot = lerp(painter.neck, painter.geometry.head_center, 0.15)
    down = (-painter.up[0], -painter.up[1])
    half = painter.pixels(0.08 * b * s)
    band = capsule(add(knot, painter.lateral, half), add(knot, painter.lateral, -half), painter.pixels(0.05 * b * s))
    start = add(knot, painter.lateral, half * 0.55)
    end = add(start, down, painter.pixels(0.26 * s))
    hanging = capsule(start, end, painter.pixels(0.042 * b * s))
    painter.group([(hanging, scarf.colour), (band, scarf.colour)])
    # a light fringe at the hanging end
    painter.group([(capsule(lerp(start, end, 0.86), end, painter.pixels(0.03 * b * s)), scarf.trim)], outline=False)


# --- shapes ------------------------------------------------------------------------------------


def _trunk_half_width(painter: Painter, trunk_radius: float) -> float:
    """Half the trunk's width across the body at the waist, in pixels."""
    if painter.side:
        return trunk_radius
    r_hip, l_hip = painter.joint("r_hip"), painter.joint("l_hip")
    d = sub(l_hip, r_hip)
    return math.sqrt(d[0] * d[0] + d[1] * d[1]) / 2 + trunk_radius

