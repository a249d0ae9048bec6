"""Heads: hair, faces, hats and animal heads, painted by a ``painter.FigurePainter``.

Positions on a head are given in head radii in the head's own frame (``HeadFrame.at``): up
along the chin-to-crown axis, across to the image-right of an upright front view, and, in
a side view, forward to where the face looks. A new hat is a function in ``HATS`` (and, if it
is tall, an entry in ``figure.HEAD_TOP_REACH``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from actionbench.raster import Point, add, capsule, disc, ellipse, lerp, polygon, shade, unit

from .figure import FigureGeometry
from .looks import Look
from .poses import HEAD_R


class Painter(Protocol):
    """What a head needs of ``painter.FigurePainter`` (named here so that painter can import heads)."""

    look: Look
    geometry: FigureGeometry
    human: bool
    side: bool

    def group(self, items: list, outline: bool = True, darken: float = 1.0) -> None: ...

    def pixels(self, body_units: float) -> float: ...


@dataclass(frozen=True)
class HeadFrame:
    """A head's centre and radius in pixels, and its unit axes."""

    center: Point
    radius: float
    up: Point
    across: Point  # image-right of an upright front view
    forward: Point  # side view: towards the face; (0, 0) in a front view

    def at(self, up: float, across: float = 0.0, forward: float = 0.0) -> Point:
        """The point ``up``, ``across`` and ``forward`` head radii from the centre."""
        c, r, u, a, f = self.center, self.radius, self.up, self.across, self.forward
        return (c[0] + r * (up * u[0] + across * a[0] + forward * f[0]),
                c[1] + r * (up * u[1] + across * a[1] + forward * f[1]))


def head_radius(painter: Painter) -> float:
    look = painter.look
    return painter.pixels(HEAD_R * look.head_scale * look.scale)


def head_frame(painter: Painter) -> HeadFrame:
    g = painter.geometry
    up = g.head_up
    across = (-up[1], up[0])
    forward = (0.0, 0.0)
    if painter.side:
        f = g.facing
        forward = across if across[0] * f[0] + across[1] * f[1] >= 0 else (-across[0], -across[1])
    return HeadFrame(g.head_center, head_radius(painter), up, across, forward)


def paint_hair_behind(painter: Painter) -> None:
    """Long hair (and bangs) that falls behind the shoulders: painted before the body."""
    look = painter.look
    if not painter.human or look.hair is None or look.hair_style not in ("long", "bangs"):
        return
    r = head_radius(painter)
    c, up = painter.geometry.head_center, painter.geometry.head_up
    if painter.side:
        back = (-painter.geometry.facing[0], -painter.geometry.facing[1])
        pts = [add(c, up, r * 0.6), add(c, back, r * 0.95), add(add(c, up, -r * 1.75), back, r * 0.85),
               add(add(c, up, -r * 1.75), back, r * 0.2)]
    else:
        across = (-up[1], up[0])
        pts = [add(c, up, r * 0.6)]
        for sign in (1, -1):
            pts += [add(c, across, sign * r * 1.0), add(add(c, up, -r * 1.8), across, sign * r * 1.05)]
    painter.group([(polygon(pts, r * 0.12), look.hair)])


def paint_head(painter: Painter) -> None:
    """The whole head: a human's (hair, face, hat) or an animal's (ears, face)."""
    head = head_frame(painter)
    if painter.human:
        _human_head(painter, head)
    else:
        _animal_head(painter, head)


# --- humans ---------------------------------------------------------------------------------


def _human_head(painter: Painter, head: HeadFrame) -> None:
    look, side, at, r = painter.look, painter.side, head.at, head.radius
    hair, style = look.hair, look.hair_style if look.hair is not None else "none"
    # hair behind the head: bun, pigtails, wild curls, the tufts of a bald head
    back: list = []
    if style == "bun":
        back.append((disc(at(1.0, 0, -0.35 if side else 0), r * 0.42), hair))
    if style == "pigtails":
        for b in ((-1.15, 1.15) if not side else (0.0,)):
            back.append((disc(at(0.05, b, -1.1 if side else 0), r * 0.36), hair))
    if style == "wild":
        for a, b, size in ((0.55, 0.85, 0.55), (0.55, -0.85, 0.55), (0.95, 0.0, 0.6), (0.85, 0.45, 0.55),
                           (0.85, -0.45, 0.55), (0.1, 1.1, 0.45), (0.1, -1.1, 0.45)):
            if side:
                back.append((disc(at(a, 0, -abs(b) * 0.9), r * size), hair))
            else:
                back.append((disc(at(a, b), r * size), hair))
    if style == "bald":
        for b in ((0.92, -0.92) if not side else (0.0,)):
            back.append((disc(at(0.05, b, -0.85 if side else 0), r * 0.3), hair))
    if back:
        painter.group(back)
    # the head: a cap of hair with the face in front, or a bare head
    head_items: list = []
    if style in ("short", "long", "bangs", "bun", "pigtails"):
        head_items.append((ellipse(at(0.1, 0, -0.1 if side else 0), r * 1.04, r * 1.0, head.up), hair))
        if style == "bangs":
            head_items.append((ellipse(at(-0.22, 0, 0.1 if side else 0), r * 0.86, r * 0.76, head.up), look.skin))
        else:
            head_items.append((ellipse(at(-0.12, 0, 0.12 if side else 0), r * 0.9, r * 0.86, head.up), look.skin))
    else:
        head_items.append((disc(at(0, 0), r * (0.96 if style == "wild" else 1.0)), look.skin))
    if side:
        head_items.append((disc(at(-0.15, 0, 0.93), r * 0.17), look.skin))  # the nose
    painter.group(head_items)
    _human_face(painter, head, hair)
    if look.hat is not None:
        try:
            paint_hat = HATS[look.hat]
        except KeyError:
            raise ValueError(f"look '{look.id}' wears an unknown hat '{look.hat}'; known: {', '.join(HATS)}") from None
        paint_hat(painter, head)


def _human_face(painter: Painter, head: HeadFrame, hair) -> None:
    """Glasses, eyes, beard, mouth and moustache (no outlines)."""
    look, side, at, r = painter.look, painter.side, head.at, head.radius
    eye = (40, 30, 30)
    feats: list = []
    eyes = [at(0.02, 0, 0.5)] if side else [at(0.02, 0.36), at(0.02, -0.36)]
    if "glasses" in look.details:
        for e in eyes:
            feats.append((disc(e, r * 0.25), (70, 60, 60)))
            feats.append((disc(e, r * 0.17), shade(look.skin, 1.06)))
        if not side:
            feats.append((capsule(at(0.05, 0.12), at(0.05, -0.12), r * 0.05), (70, 60, 60)))
    for e in eyes:
        feats.append((disc(e, r * 0.11), eye))
    if "beard" in look.details:
        if side:
            feats.append((polygon([at(-0.1, 0, -0.1), at(-0.75, 0, 0.1), at(-0.95, 0, 0.6), at(-0.45, 0, 0.85)],
                                  r * 0.05), hair))
        else:
            feats.append((polygon([at(-0.15, 0.86), at(-0.15, -0.86), at(-0.75, 0.5), at(-0.75, -0.5), at(-1.0, 0)],
                                  r * 0.04), hair))
    mouth_col = (200, 35, 60) if "lips" in look.details else (150, 70, 65)
    mouth_radius = r * (0.08 if "lips" in look.details else 0.05)
    if side:
        feats.append((capsule(at(-0.45, 0, 0.55), at(-0.45, 0, 0.78), mouth_radius), mouth_col))
    else:
        feats.append((capsule(at(-0.47, 0.17), at(-0.47, -0.17), mouth_radius), mouth_col))
    if "moustache" in look.details:
        if side:
            feats.append((capsule(at(-0.3, 0, 0.45), at(-0.32, 0, 0.85), r * 0.12), hair))
        else:
            feats.append((capsule(at(-0.3, 0.32), at(-0.3, -0.32), r * 0.13), hair))
    painter.group(feats, outline=False)


def _police_cap(painter: Painter, head: HeadFrame) -> None:
    """A crown in the shirt's colour, a black peak, a badge in the accent colour."""
    look, side, at, r = painter.look, painter.side, head.at, head.radius
    if not side:
        crown = [at(0.6, 0.95), at(0.6, -0.95), at(1.3, 0.85), at(1.3, -0.85)]
        brim = (at(0.62, 1.08), at(0.62, -1.08))
    else:
        crown = [at(0.6, 0, -0.95), at(0.6, 0, 0.8), at(1.3, 0, -0.85), at(1.3, 0, 0.7)]
        brim = (at(0.62, 0, -0.5), at(0.55, 0, 1.35))
    painter.group([(polygon(crown, r * 0.06), look.shirt), (capsule(brim[0], brim[1], r * 0.13), (15, 15, 25))])
    painter.group([(disc(at(1.0, 0, 0.4 if side else 0), r * 0.17), look.accent)], outline=False)


def _chef_hat(painter: Painter, head: HeadFrame) -> None:
    """A tall white toque with three puffs on top and a band."""
    side, at, r = painter.side, head.at, head.radius
    if not side:
        body = [at(0.6, 0.78), at(0.6, -0.78), at(1.85, 0.88), at(1.85, -0.88)]
        puffs = [at(2.0, 0.5), at(2.0, -0.5), at(2.15, 0)]
        band = (at(0.72, 0.8), at(0.72, -0.8))
    else:
        body = [at(0.6, 0, 0.78), at(0.6, 0, -0.78), at(1.85, 0, 0.88), at(1.85, 0, -0.88)]
        puffs = [at(2.0, 0, 0.5), at(2.0, 0, -0.5), at(2.15, 0, 0)]
        band = (at(0.72, 0, 0.8), at(0.72, 0, -0.8))
    painter.group([(polygon(body, r * 0.06), (250, 250, 250))] + [(disc(p, r * 0.55), (250, 250, 250)) for p in puffs])
    painter.group([(capsule(band[0], band[1], r * 0.09), (225, 225, 230))], outline=False)


def _fedora(painter: Painter, head: HeadFrame) -> None:
    """A black fedora with a wide brim and a white band."""
    side, at, r = painter.side, head.at, head.radius
    if not side:
        crown = [at(0.7, 0.78), at(0.7, -0.78), at(1.42, 0.62), at(1.42, -0.62)]
        brim = (at(0.72, 1.38), at(0.72, -1.38))
        band = (at(0.9, 0.8), at(0.9, -0.8))
    else:
        crown = [at(0.7, 0, 0.78), at(0.7, 0, -0.78), at(1.42, 0, 0.62), at(1.42, 0, -0.62)]
        brim = (at(0.72, 0, 1.38), at(0.72, 0, -1.38))
        band = (at(0.9, 0, 0.8), at(0.9, 0, -0.8))
    painter.group([(polygon(crown, r * 0.08), (20, 20, 24)), (capsule(brim[0], brim[1], r * 0.12), (20, 20, 24))])
    painter.group([(capsule(band[0], band[1], r * 0.1), (235, 235, 235))], outline=False)


# Look.hat -> how it is painted (after the face).
HATS = {"police": _police_cap, "chef": _chef_hat, "fedora": _fedora}


# --- animals --------------------------------------------------------------------------------


def _animal_head(painter: Painter, head: HeadFrame) -> None:
    look, side, at, r, up = painter.look, painter.side, head.at, head.radius, head.up
    species = look.species
    ear_col, ear_inner = look.ear_color or look.skin, look.ear_inner
    sides = (1, -1) if not side else (0,)  # a side view shows one ear (and one of each feature)
    _animal_ears(painter, head, sides, ear_col, ear_inner)
    if species == "gorilla":
        painter.group([(ellipse(at(0.1, 0), r * 0.95, r * 1.1, up), look.skin)])
    else:
        painter.group([(disc(at(0, 0), r), look.skin)])
    dark = (30, 25, 25)
    # muzzle, eye patches and face stripes
    feats: list = []
    if species == "monkey":
        if side:
            feats += [(disc(at(0.1, 0, 0.45), r * 0.42), look.muzzle),
                      (ellipse(at(-0.3, 0, 0.55), r * 0.45, r * 0.42, up), look.muzzle)]
        else:
            feats += [(disc(at(0.12, 0.3), r * 0.38), look.muzzle), (disc(at(0.12, -0.3), r * 0.38), look.muzzle),
                      (ellipse(at(-0.32, 0), r * 0.6, r * 0.45, up), look.muzzle)]
    elif species == "gorilla":
        if side:
            feats += [(ellipse(at(-0.1, 0, 0.45), r * 0.5, r * 0.6, up), look.muzzle)]
        else:
            feats += [(ellipse(at(-0.15, 0), r * 0.62, r * 0.7, up), look.muzzle)]
    elif look.muzzle:
        feats.append((ellipse(at(-0.38, 0, 0.55 if side else 0), r * (0.42 if side else 0.52), r * 0.38, up),
                      look.muzzle))
    if look.patches:
        for b in ((0.38, -0.38) if not side else (0,)):
            feats.append((ellipse(at(0.08, b, 0.45 if side else 0), r * 0.24, r * 0.32, up), look.patches))
    if species == "tiger":
        for a0, b0, a1, b1 in ((1.0, 0.0, 0.62, 0.0), (0.95, 0.32, 0.65, 0.25), (0.95, -0.32, 0.65, -0.25)):
            if side:
                feats.append((capsule(at(a0, 0, b0 - 0.2), at(a1, 0, b1 - 0.2), r * 0.07), look.stripes))
            else:
                feats.append((capsule(at(a0, b0), at(a1, b1), r * 0.07), look.stripes))
        for sign in sides:
            if side:
                feats.append((capsule(at(0.0, 0, -0.95), at(-0.05, 0, -0.6), r * 0.07), look.stripes))
            else:
                feats.append((capsule(at(0.0, sign * 0.98), at(-0.05, sign * 0.68), r * 0.07), look.stripes))
    painter.group(feats, outline=False)
    # eyes, nose, mouth and whiskers
    feats = []
    eyes = [at(0.12, 0, 0.45)] if side else [at(0.12, 0.36), at(0.12, -0.36)]
    for e in eyes:
        if look.patches:
            feats.append((disc(e, r * 0.1), (245, 245, 245)))
            feats.append((disc(e, r * 0.055), dark))
        else:
            feats.append((disc(e, r * 0.12), dark))
    nose_col = (230, 120, 140) if species in ("cat", "rabbit") else dark
    nose = at(-0.22, 0, 0.9) if side else at(-0.22, 0)
    feats.append((ellipse(nose, r * 0.15, r * 0.11, up), nose_col))
    if side:
        feats.append((capsule(at(-0.5, 0, 0.6), at(-0.5, 0, 0.8), r * 0.05), dark))
    else:
        feats.append((capsule(at(-0.5, 0.14), at(-0.5, -0.14), r * 0.05), dark))
    if species == "cat":
        for sign in sides:
            for droop in (0.08, -0.12):
                if side:
                    feats.append((capsule(at(-0.3, 0, 0.8), at(-0.3 + droop, 0, 1.5), r * 0.03), (90, 90, 95)))
                else:
                    feats.append((capsule(at(-0.32, sign * 0.3), at(-0.32 + droop, sign * 1.2), r * 0.03), (90, 90, 95)))
    painter.group(feats, outline=False)
    if look.ears == "floppy":  # they hang in front of the head
        items = []
        for sign in sides:
            if side:
                items.append((ellipse(at(0.0, 0, -0.25), r * 0.3, r * 0.62, up), ear_col))
            else:
                tilt = unit(add(up, head.across, -sign * 0.25))
                items.append((ellipse(at(0.0, sign * 0.92), r * 0.28, r * 0.62, tilt), ear_col))
        painter.group(items)


def paint_animal_ears(painter: Painter, head: HeadFrame) -> None:
    """An animal's ears on their own, e.g. again over a cap, so that they poke through it."""
    look = painter.look
    _animal_ears(painter, head, (1, -1) if not painter.side else (0,), look.ear_color or look.skin, look.ear_inner)


def _animal_ears(painter: Painter, head: HeadFrame, sides: tuple, ear_col, ear_inner) -> None:
    """Ears behind the head (floppy ones hang in front and are painted after the face)."""
    look, side, at, r = painter.look, painter.side, head.at, head.radius
    outer: list = []
    inner: list = []
    back = -0.2 if side else 0.0  # side view: ears sit a little behind the head's centre
    if look.ears == "pointed":
        for sign in sides:
            o = [at(0.45, sign * 0.25, back), at(0.6, sign * 0.95, back - (0.5 if side else 0)),
                 at(1.4, sign * 0.72, back - (0.2 if side else 0))]
            outer.append((polygon(o, r * 0.06), ear_col))
            centre = lerp(lerp(o[0], o[1], 0.5), o[2], 0.33)
            inner.append((polygon([lerp(p, centre, 0.45) for p in o]), ear_inner))
    elif look.ears == "long":
        for sign in sides:
            tilt = unit(add(head.up, head.across, sign * 0.22))
            c = at(1.45, sign * 0.38, back)
            outer.append((ellipse(c, r * 0.25, r * 0.78, tilt), ear_col))
            inner.append((ellipse(c, r * 0.12, r * 0.58, tilt), ear_inner))
    elif look.ears in ("round", "small"):
        size = 0.32 if look.ears == "round" else 0.2
        a, b = (0.78, 0.72) if look.ears == "round" else (0.25, 0.98)
        for sign in sides:
            c = at(a, sign * b, back)
            outer.append((disc(c, r * size), ear_col))
            if ear_inner:
                inner.append((disc(c, r * size * 0.55), ear_inner))
    elif look.ears == "side":
        for sign in sides:
            c = at(0.1, sign * 1.02, back - (0.1 if side else 0))
            outer.append((disc(c, r * 0.4), ear_col))
            inner.append((disc(c, r * 0.24), ear_inner))
    painter.group(outer)
    painter.group(inner, outline=False)
