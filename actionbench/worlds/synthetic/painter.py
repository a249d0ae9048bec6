"""The figure painter: turns a look and a figure's pixel geometry into outlined shapes on a canvas.

Each body part is one method that builds a list of (shape, colour) items and paints them as
one group (all outlines, then all fills), so a part reads as one piece. ``draw`` fixes the
order of the parts (back to front); heads, hair and hats are in ``heads``; worn attributes
(``wearables``) are painted over the parts they cover, at the depths ``draw`` calls them. To draw
something new (a garment, a prop), add it to the part that owns that region, or add a part and
call it from ``draw`` at its depth.
"""
from __future__ import annotations

import math

from actionbench.pose import KEYPOINT_INDEX
from actionbench.raster import (RGB, Canvas, Point, add, capsule, disc, ellipse, lerp, outline_colour, polygon, shade,
                                sub, unit)

from . import heads, wearables
from .figure import TAIL_SHAPES, FigureGeometry, hip_center
from .looks import Look

# how long a skirt, dress or robe is: a fraction of the thigh, or past the knee (> 1: down the shin)
LOWER_GARMENT_REACH = {"skirt": 0.6, "dress": 0.85, "robe": 1.5}


class FigurePainter:
    """Draws one figure in pixel space, ``pixels_per_unit`` pixels per body unit."""

    def __init__(self, canvas: Canvas, look: Look, geometry: FigureGeometry, pixels_per_unit: float,
                 attributes: tuple = ()):
        self.canvas, self.look, self.geometry, self.pixels_per_unit = canvas, look, geometry, pixels_per_unit
        self.attributes = attributes  # canonical wearables names (wearables.canonical_attributes)
        self.outline_width = max(0.5, 0.013 * pixels_per_unit)  # in pixels
        self.human = look.species == "human"
        self.side = geometry.near is not None
        self.neck = self.joint("neck")
        self.hip = hip_center(geometry.keypoints)
        self.up = unit(sub(self.neck, self.hip))
        if self.side:
            self.lateral = geometry.facing
        else:  # image-right when upright (the person's left)
            self.lateral = unit(sub(self.joint("l_shoulder"), self.joint("r_shoulder")))

    # -- primitives ----------------------------------------------------------------------
    def group(self, items: list, outline: bool = True, darken: float = 1.0) -> None:
        """Paint (shape, colour) items: all outlines first, then all fills, so a part reads as one piece."""
        if darken != 1.0:
            items = [(s, shade(col, darken)) for s, col in items]
        if outline:
            for shape, col in items:
                self.canvas.fill(shape, outline_colour(col), grow=self.outline_width)
        for shape, col in items:
            self.canvas.fill(shape, col)

    def pixels(self, body_units: float) -> float:
        """A length in body units as pixels."""
        return body_units * self.pixels_per_unit

    def joint(self, name: str) -> Point:
        """A keypoint by its OpenPose name (pixel coordinates)."""
        return self.geometry.keypoints[KEYPOINT_INDEX[name]]

    @property
    def limb_fur(self) -> RGB:
        return self.look.limbs or self.look.skin

    # -- the whole figure ------------------------------------------------------------------
    def draw(self) -> None:
        """All parts, back to front (the mat, under the shadow, is the scene's to paint first)."""
        wearables.paint_stool(self)
        self.prop()
        self.tail()
        if self.side:
            far, near = ("r", "l") if self.geometry.near == "l" else ("l", "r")
            self.arm(far, darken=0.8)
            self.leg(far, darken=0.8)
            heads.paint_hair_behind(self)
            self.torso(with_lower=False)
            self.leg(near)
            self.lower_garment()
            self.torso_details()
            wearables.paint_garment(self)
            heads.paint_head(self)
            wearables.paint_head_gear(self)
            self.arm(near)
        else:
            heads.paint_hair_behind(self)
            self.leg("r")
            self.leg("l")
            self.torso()
            self.torso_details()
            wearables.paint_garment(self)
            heads.paint_head(self)
            wearables.paint_head_gear(self)
            self.arm("r")
            self.arm("l")

    # -- limbs ---------------------------------------------------------------------------
    def arm(self, side: str, darken: float = 1.0) -> None:
        """Upper arm, forearm (a short sleeve over the upper arm) and the hand in its pose's style."""
        look = self.look
        shoulder, elbow, wrist = (self.joint(f"{side}_{n}") for n in ("shoulder", "elbow", "wrist"))
        arm_radius = self.pixels(0.036 * look.build * look.scale)
        if self.human:
            upper = look.skin if look.sleeves == "none" else look.shirt
            fore = look.shirt if look.sleeves == "long" else look.skin
            hand = look.accent if (side == "r" and "glove_r" in look.details) else look.skin
        else:
            upper = fore = self.limb_fur
            hand = look.shoes
        items = [(capsule(shoulder, elbow, arm_radius), upper), (capsule(elbow, wrist, arm_radius * 0.95), fore)]
        if self.human and look.sleeves == "short":
            items.append((capsule(shoulder, lerp(shoulder, elbow, 0.55), arm_radius * 1.15), look.shirt))
        style, pointing = self.geometry.hands[0 if side == "r" else 1]
        forearm_dir = unit(sub(wrist, elbow))
        hand_radius = self.pixels(0.036 * math.sqrt(look.build) * look.scale)
        if style == "point":
            pointing = pointing or forearm_dir
            items.append((capsule(wrist, add(wrist, pointing, self.pixels(0.09 * look.scale)),
                                  max(hand_radius * 0.4, 0.6)), hand))
            items.append((disc(add(wrist, forearm_dir, hand_radius * 0.3), hand_radius), hand))
        elif style == "palm":
            pointing = pointing or forearm_dir
            items.append((ellipse(add(wrist, pointing, hand_radius * 0.9), hand_radius * 0.75, hand_radius * 1.45,
                                  pointing), hand))
        elif style == "open":
            items.append((disc(add(wrist, forearm_dir, hand_radius * 0.6), hand_radius * 1.22), hand))
        else:  # fist
            items.append((disc(add(wrist, forearm_dir, hand_radius * 0.4), hand_radius), hand))
        self.group(items, darken=darken)
        if look.stripes:
            self.limb_stripes([(shoulder, elbow, arm_radius), (elbow, wrist, arm_radius)], darken)

    def leg(self, side: str, darken: float = 1.0) -> None:
        """Thigh and shin in what the look wears on them, then the shoe (a side view's points forward)."""
        look = self.look
        hip, knee, ankle = (self.joint(f"{side}_{n}") for n in ("hip", "knee", "ankle"))
        leg_radius = self.pixels(0.043 * look.build * look.scale)
        bare = look.legs or look.skin
        if not self.human:
            thigh = shin = self.limb_fur
        elif look.lower in ("trousers", "robe"):
            thigh = shin = look.pants
        else:  # shorts, skirt, dress: bare legs (or the look's legwear)
            thigh = shin = bare
        items = [(capsule(hip, knee, leg_radius), thigh), (capsule(knee, ankle, leg_radius * 0.95), shin)]
        if self.human and look.lower == "shorts":
            items.append((capsule(hip, lerp(hip, knee, 0.72), leg_radius * 1.15), look.pants))
            if "socks" not in look.details:
                items[1] = (items[1][0], look.skin)
        shin_dir = unit(sub(ankle, knee))
        if self.side:
            facing = self.geometry.facing
            across = (-shin_dir[1], shin_dir[0])
            dot = across[0] * facing[0] + across[1] * facing[1]
            if abs(dot) < 0.3:
                toe_dir = shin_dir
            else:
                toe_dir = across if dot > 0 else (-across[0], -across[1])
            heel = add(ankle, shin_dir, leg_radius * 0.3)
            items.append((capsule(heel, add(heel, toe_dir, self.pixels(0.07 * look.scale)), leg_radius * 0.78),
                          look.shoes))
        else:
            items.append((ellipse(add(ankle, shin_dir, leg_radius * 0.75), leg_radius * 1.12, leg_radius * 0.75,
                                  shin_dir), look.shoes))
        self.group(items, darken=darken)
        if self.human and look.lower == "trousers" and "socks" in look.details:
            self.group([(capsule(lerp(knee, ankle, 0.78), ankle, leg_radius * 0.96), bare)], outline=False,
                       darken=darken)
        if look.stripes:
            self.limb_stripes([(hip, knee, leg_radius), (knee, ankle, leg_radius)], darken)

    def limb_stripes(self, segments, darken: float) -> None:
        """Three fur stripes across each limb segment, from alternating edges."""
        items = []
        for a, b, r in segments:
            d = unit(sub(b, a))
            n = (-d[1], d[0])
            for t, sign in ((0.3, 1), (0.55, -1), (0.8, 1)):
                p = lerp(a, b, t)
                items.append((capsule(add(p, n, sign * r * 1.0), add(p, n, sign * r * 0.15), r * 0.3),
                              self.look.stripes))
        self.group(items, outline=False, darken=darken)

    # -- body ----------------------------------------------------------------------------
    def torso(self, with_lower: bool = True) -> None:
        """Neck, then the trunk (shoulders to hips) with a skirt, dress or robe in the same group."""
        look = self.look
        torso_radius = self.pixels((0.07 if self.side else 0.045) * look.build * look.scale)
        neck_radius = self.pixels(0.034 * look.build * look.scale)
        self.group([(capsule(self.neck, lerp(self.neck, self.geometry.head_center, 0.7), neck_radius), look.skin)])
        corners = [self.joint("r_shoulder"), self.joint("l_shoulder"), self.joint("r_hip"), self.joint("l_hip")]
        items = [(polygon(corners, torso_radius), look.shirt)]
        if with_lower and self.human and look.lower in LOWER_GARMENT_REACH:
            items.append(self.lower_garment_shape())
        self.group(items)

    def lower_garment_shape(self) -> tuple:
        """A skirt, dress or robe: a hull from the waist, flaring down each leg to its reach."""
        look = self.look
        reach = LOWER_GARMENT_REACH[look.lower]
        col = look.shirt if look.lower in ("dress", "robe") else look.pants
        pts = []
        for side in ("r", "l"):
            hip, knee, ankle = (self.joint(f"{side}_{n}") for n in ("hip", "knee", "ankle"))
            waist = add(hip, self.up, self.pixels(0.06 * look.scale))
            for sign in (1, -1):
                pts.append(add(waist, self.lateral, sign * self.pixels(0.05 * look.scale)))
            hem = lerp(hip, knee, reach) if reach <= 1 else lerp(knee, ankle, reach - 1)
            d = unit(sub(hem, hip))
            n = (-d[1], d[0])
            flare = self.pixels((0.075 + 0.045 * reach) * look.scale)
            pts += [add(hem, n, flare), add(hem, n, -flare)]
        return (polygon(pts, self.pixels(0.01)), col)

    def lower_garment(self) -> None:
        """The skirt, dress or robe on its own (a side view paints it over the near leg)."""
        if self.human and self.look.lower in LOWER_GARMENT_REACH:
            self.group([self.lower_garment_shape()])

    def torso_details(self) -> None:
        """Fur markings of animals; the shirt front, tie, badge, buttons and such of humans."""
        if not self.human:
            self._fur_markings()
        elif self.side:
            self._side_details()
        else:
            self._front_details()

    def _fur_markings(self) -> None:
        look, s = self.look, self.look.scale
        up, lateral, neck, hip = self.up, self.lateral, self.neck, self.hip
        outlined: list = []
        plain: list = []
        if look.patches:  # panda shoulder band
            outlined.append((polygon([self.joint("r_shoulder"), self.joint("l_shoulder")],
                                     self.pixels(0.06 * look.build * s)), look.patches))
        if look.belly:
            c = lerp(neck, hip, 0.58)
            if self.side:
                c = add(c, lateral, self.pixels(0.03 * s))
                plain.append((ellipse(c, self.pixels(0.045 * look.build * s), self.pixels(0.12 * s), up), look.belly))
            else:
                plain.append((ellipse(c, self.pixels(0.075 * look.build * s), self.pixels(0.125 * s), up), look.belly))
        if look.stripes:
            for t in (0.25, 0.45, 0.65, 0.85):
                p = lerp(neck, hip, t)
                if self.side:
                    a = add(p, lateral, -self.pixels(0.075 * look.build * s))
                    plain.append((capsule(a, add(a, lateral, self.pixels(0.05 * s)), self.pixels(0.014 * s)),
                                  look.stripes))
                else:
                    half = self.pixels((0.15 - 0.04 * t) * look.build * s)
                    for sign in (1, -1):
                        a = add(p, lateral, sign * half)
                        plain.append((capsule(a, add(a, lateral, -sign * self.pixels(0.055 * s)),
                                               self.pixels(0.014 * s)), look.stripes))
        self.group(outlined)
        self.group(plain, outline=False)

    def _side_details(self) -> None:
        look, s = self.look, self.look.scale
        down = (-self.up[0], -self.up[1])
        items: list = []
        front = add(lerp(self.neck, self.hip, 0.25), self.lateral, self.pixels(0.055 * s))
        if "tie" in look.details:
            items.append((capsule(add(self.neck, down, self.pixels(0.03 * s)), add(front, down, self.pixels(0.06 * s)),
                                  self.pixels(0.012 * s)), look.accent))
        self.group(items, outline=False)

    def _front_details(self) -> None:
        look, s = self.look, self.look.scale
        up, lateral, neck, hip = self.up, self.lateral, self.neck, self.hip
        down = (-up[0], -up[1])
        details = look.details
        plain: list = []
        if "shirt_front" in details:
            plain.append((polygon([add(neck, lateral, self.pixels(0.055 * s)), add(neck, lateral, -self.pixels(0.055 * s)),
                                   add(neck, down, self.pixels(0.14 * s))]), (245, 245, 245)))
        if "neckerchief" in details:
            plain.append((polygon([add(neck, lateral, self.pixels(0.06 * s)), add(neck, lateral, -self.pixels(0.06 * s)),
                                   add(neck, down, self.pixels(0.07 * s))], self.pixels(0.008)), look.accent))
        if "stripes" in details:
            for offset in (-0.075, 0.0, 0.075):
                a = add(add(neck, down, self.pixels(0.03 * s)), lateral, self.pixels(offset * s))
                b = add(add(hip, up, self.pixels(0.0)), lateral, self.pixels(offset * 0.8 * s))
                plain.append((capsule(a, b, self.pixels(0.017 * s)), look.accent))
        if "buttons" in details:
            for t in (0.25, 0.45, 0.65):
                for sign in (1, -1):
                    plain.append((disc(add(lerp(neck, hip, t), lateral, sign * self.pixels(0.035 * s)),
                                       self.pixels(0.012 * s)), (150, 150, 150)))
        if "sparkles" in details:
            for t, across in ((0.3, -0.06), (0.45, 0.05), (0.6, -0.02), (0.75, 0.07), (0.9, -0.08), (1.1, 0.02),
                              (1.2, -0.1), (1.25, 0.11)):
                plain.append((disc(add(lerp(neck, hip, t), lateral, self.pixels(across * s)), self.pixels(0.011 * s)),
                              (250, 250, 255)))
        if "tie" in details:
            knot_l = add(add(neck, down, self.pixels(0.03 * s)), lateral, self.pixels(0.013 * s))
            knot_r = add(add(neck, down, self.pixels(0.03 * s)), lateral, -self.pixels(0.013 * s))
            blade_l = add(add(neck, down, self.pixels(0.16 * s)), lateral, self.pixels(0.024 * s))
            blade_r = add(add(neck, down, self.pixels(0.16 * s)), lateral, -self.pixels(0.024 * s))
            tip = add(neck, down, self.pixels(0.19 * s))
            plain.append((polygon([knot_l, knot_r, blade_l, blade_r, tip]), look.accent))
            if "tie_stripes" in details:  # a school tie's gold bands
                for t in (0.08, 0.13):
                    c = add(neck, down, self.pixels(t * s))
                    plain.append((capsule(add(c, lateral, -self.pixels(0.015 * s)), add(c, lateral, self.pixels(0.015 * s)),
                                          self.pixels(0.008 * s)), (240, 190, 50)))
        if "badge" in details:
            c = add(lerp(self.joint("l_shoulder"), self.joint("l_hip"), 0.22), lateral, -self.pixels(0.035 * s))
            plain.append((disc(c, self.pixels(0.022 * s)), look.accent))
        self.group(plain, outline=False)

    # -- extras --------------------------------------------------------------------------
    def tail(self) -> None:
        """A tail along its centre line (a puff when it is one point), striped like the body."""
        look, g = self.look, self.geometry
        if not g.tail:
            return
        r = self.pixels(TAIL_SHAPES[look.tail][1] * look.build * look.scale)
        if look.species == "panda":
            col = look.shoes
        else:
            col = look.belly if look.species == "rabbit" and look.belly else look.skin
        if len(g.tail) == 1:
            self.group([(disc(g.tail[0], r), col)])
            return
        segments = list(zip(g.tail[:-1], g.tail[1:]))
        self.group([(capsule(a, b, r), col) for a, b in segments])
        if look.stripes:
            items = []
            for a, b in segments[1:]:
                d = unit(sub(b, a))
                n = (-d[1], d[0])
                p = lerp(a, b, 0.5)
                items.append((capsule(add(p, n, r), add(p, n, -r), r * 0.35), look.stripes))
            self.group(items, outline=False)

    def prop(self) -> None:
        """The pose's prop (see figure.PROP_OUTLINES), behind the figure."""
        if not self.geometry.prop:
            return
        PROP_PAINTERS[self.geometry.prop_kind](self, self.geometry.prop)


def _paint_box_seat(painter: FigurePainter, corners: list) -> None:
    """A wooden box: the body, then a lighter top edge."""
    painter.group([(polygon(corners, painter.pixels(0.01)), (176, 124, 72))])
    painter.group([(capsule(corners[0], corners[1], painter.pixels(0.018)), (200, 150, 95))], outline=False)


# Pose.prop -> how it is painted from its outline.
PROP_PAINTERS = {"box": _paint_box_seat}
