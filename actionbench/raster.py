"""A small deterministic rasteriser: anti-aliased signed-distance shapes on a float64 canvas.

Shapes are convex hulls grown by a radius (``capsule``, ``disc``, ``polygon``) and rotated
ellipses (``ellipse``). ``Canvas.fill`` paints one shape over the pixels it covers: the
coverage of a pixel is ``clip(0.5 - d, 0, 1)`` of the signed distance ``d`` from its centre
to the shape's edge (negative inside), or a hard 0/1 step.

Determinism: the geometry uses only + - * / and sqrt on float64, and the pixels come from
numpy's element-wise float64 arithmetic, so the result is the same on every IEEE-754 machine.
Used by the OpenPose pose maps (``actionbench.pose``) and the synthetic world's figures.
"""
from __future__ import annotations

import math
from typing import Iterable, NamedTuple

import numpy as np

RGB = tuple  # (r, g, b) ints 0..255
Point = tuple  # (x, y) floats; also used for 2-D vectors

# --------------------------------------------------------------------------------------
# 2-D points and vectors (plain tuples, exact float64 arithmetic); colours
# --------------------------------------------------------------------------------------


def add(p: Point, v: Point, k: float = 1.0) -> Point:
    """``p + k * v``."""
    return (p[0] + k * v[0], p[1] + k * v[1])


def sub(a: Point, b: Point) -> Point:
    """``a - b``."""
    return (a[0] - b[0], a[1] - b[1])


def unit(v: Point) -> Point:
    """``v`` scaled to length 1, or (0, 0) for the zero vector."""
    n = math.sqrt(v[0] * v[0] + v[1] * v[1])
    return (v[0] / n, v[1] / n) if n > 0 else (0.0, 0.0)


def lerp(a: Point, b: Point, t: float) -> Point:
    """The point a fraction ``t`` of the way from ``a`` to ``b``."""
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def shade(colour, factor: float) -> RGB:
    """``colour`` scaled by ``factor``, capped at 255."""
    return tuple(min(255, int(v * factor)) for v in colour)


def outline_colour(colour, factor: float = 0.42) -> RGB:
    """An outline for a fill: a darker shade, or a lighter one for near-black fills so parts stay apart."""
    if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 60:
        return tuple(min(255, int(v + 55)) for v in colour)
    return tuple(int(v * factor) for v in colour)


# --------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------


class Hull(NamedTuple):
    """A convex polygon (1, 2 or more vertices in order) grown by ``radius``: disc, capsule, rounded polygon."""

    points: list
    radius: float


class Ellipse(NamedTuple):
    """An ellipse with half-axes ``rx`` (across) and ``ry`` (along ``up``, a unit vector)."""

    center: Point
    rx: float
    ry: float
    up: Point


def capsule(a: Point, b: Point, radius: float) -> Hull:
    """A segment from ``a`` to ``b`` with round ends (a disc when ``a == b``)."""
    return Hull([a] if a == b else [a, b], radius)


def polygon(points: Iterable[Point], radius: float = 0.0) -> Hull:
    """The convex hull of ``points``, its corners rounded by ``radius``."""
    return Hull(convex_hull(points), radius)


def ellipse(center: Point, rx: float, ry: float, up: Point = (0.0, -1.0)) -> Ellipse:
    """An ellipse; ``up`` is the unit direction of the ``ry`` half-axis (default: image-up)."""
    return Ellipse(center, rx, ry, up)


def disc(center: Point, radius: float) -> Hull:
    """A filled circle."""
    return Hull([center], radius)


# --------------------------------------------------------------------------------------
# Signed distances
# --------------------------------------------------------------------------------------


def segment_distance(X, Y, a: Point, b: Point):
    """Distance from each pixel centre (X, Y) to the segment a-b."""
    bax, bay = b[0] - a[0], b[1] - a[1]
    pax, pay = X - a[0], Y - a[1]
    den = bax * bax + bay * bay
    if den <= 1e-12:
        return np.sqrt(pax * pax + pay * pay)
    h = np.clip((pax * bax + pay * bay) / den, 0.0, 1.0)
    dx, dy = pax - bax * h, pay - bay * h
    return np.sqrt(dx * dx + dy * dy)


def convex_hull(points: Iterable[Point]) -> list[Point]:
    """Andrew's monotone chain; fewer than 3 distinct points come back as they are (sorted)."""
    pts = sorted(set((float(p[0]), float(p[1])) for p in points))
    if len(pts) <= 2:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 1e-12:
            lower.pop()
        lower.append(p)
    upper: list[Point] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 1e-12:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return hull if len(hull) >= 3 else [pts[0], pts[-1]]


def hull_signed_distance(X, Y, hull: list[Point]):
    """Signed distance to a convex polygon (negative inside); to a point or segment for 1 or 2 vertices."""
    if len(hull) == 1:
        dx, dy = X - hull[0][0], Y - hull[0][1]
        return np.sqrt(dx * dx + dy * dy)
    if len(hull) == 2:
        return segment_distance(X, Y, hull[0], hull[1])
    cx = sum(p[0] for p in hull) / len(hull)
    cy = sum(p[1] for p in hull) / len(hull)
    inside = None
    outside = None
    for i, a in enumerate(hull):
        b = hull[(i + 1) % len(hull)]
        ex, ey = b[0] - a[0], b[1] - a[1]
        n = math.sqrt(ex * ex + ey * ey)
        if n <= 1e-12:
            continue
        nx, ny = ey / n, -ex / n  # the edge's outward normal
        if nx * (cx - a[0]) + ny * (cy - a[1]) > 0:
            nx, ny = -nx, -ny
        s = (X - a[0]) * nx + (Y - a[1]) * ny
        d = segment_distance(X, Y, a, b)
        inside = s if inside is None else np.maximum(inside, s)
        outside = d if outside is None else np.minimum(outside, d)
    return np.where(inside <= 0, inside, outside)


def ellipse_signed_distance(X, Y, center: Point, rx: float, ry: float, up: Point):
    """First-order signed distance to an ellipse: the implicit function over its gradient's length."""
    ux, uy = up
    dx, dy = X - center[0], Y - center[1]
    lx = dx * (-uy) + dy * ux
    ly = dx * ux + dy * uy
    f = (lx / rx) * (lx / rx) + (ly / ry) * (ly / ry) - 1.0
    gx, gy = lx / (rx * rx), ly / (ry * ry)
    g = 2.0 * np.sqrt(gx * gx + gy * gy)
    return f / np.maximum(g, 1e-12)


# --------------------------------------------------------------------------------------
# The canvas
# --------------------------------------------------------------------------------------


class Canvas:
    """An H x W x 3 float64 picture that shapes are painted onto; ``to_image`` rounds it to 8-bit RGB."""

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        self.height, self.width = pixels.shape[:2]

    def fill(self, shape: Hull | Ellipse, colour, grow: float = 0.0, alpha: float = 1.0, hard: bool = False) -> None:
        """Paint ``shape`` (grown by ``grow`` pixels) in ``colour`` at opacity ``alpha``.

        ``hard``: full colour inside, none outside (no anti-aliasing), as OpenPose maps are drawn.
        """
        if isinstance(shape, Hull):
            hull, r = shape.points, shape.radius + grow
            xs, ys = [p[0] for p in hull], [p[1] for p in hull]
            box = (min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r)
        else:
            c, rx, ry = shape.center, shape.rx + grow, shape.ry + grow
            m = max(rx, ry)
            box = (c[0] - m, c[1] - m, c[0] + m, c[1] + m)
        # only the pixels near the shape's bounding box are evaluated
        i0, i1 = max(int(math.floor(box[0])) - 1, 0), min(int(math.ceil(box[2])) + 2, self.width)
        j0, j1 = max(int(math.floor(box[1])) - 1, 0), min(int(math.ceil(box[3])) + 2, self.height)
        if i0 >= i1 or j0 >= j1 or (isinstance(shape, Hull) and r <= 0 and len(hull) < 3):
            return
        X = np.arange(i0, i1, dtype=np.float64)[None, :] + 0.5
        Y = np.arange(j0, j1, dtype=np.float64)[:, None] + 0.5
        if isinstance(shape, Hull):
            d = hull_signed_distance(X, Y, hull) - r
        else:
            d = ellipse_signed_distance(X, Y, c, rx, ry, shape.up)
        coverage = (d <= 0).astype(np.float64) if hard else np.clip(0.5 - d, 0.0, 1.0)
        if alpha != 1.0:
            coverage = coverage * alpha
        region = self.pixels[j0:j1, i0:i1]
        region += (np.asarray(colour, dtype=np.float64) - region) * coverage[..., None]

    def to_image(self):
        """The canvas as an RGB ``PIL.Image`` (rounded half up, clipped to 0..255)."""
        from PIL import Image

        arr = np.clip(np.floor(self.pixels + 0.5), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "RGB")
