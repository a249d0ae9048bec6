"""Background types: room, beach, gym, studio and outdoors, each drawn with seeded variation.

A render asks for one as ``background="type:<name>"`` (``"type:gym"``), or pins a variant where
a type has them (``"type:gym:rubber"``, ``"type:studio:teal"``). The render's seed picks the
colours, the variant when none is given, and where things are (a window, the trees, a court
line), after every layout draw, so a typed background never moves the figure. The image
records the variant it drew: ``RenderedImage.background`` is ``"type:studio:teal"``.

What tells the types apart at 32 pixels:

    room      a pale wall with a window or a picture, a white skirting board, a brown wooden floor
    beach     blue sky, a band of sea with a white surf line, sand
    gym       a grey wall with a coloured padding band; honey floorboards with a white court line,
              or dark rubber tiles
    studio    one saturated colour from wall to floor (``STUDIO_COLOURS``), no horizon
    outdoors  sky, a line of dark green trees, grass

The named backgrounds and the random ones (``backgrounds``) are untouched by this module.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from actionbench.errors import DatasetError
from actionbench.raster import RGB, Canvas, capsule, disc, polygon, shade

from .backgrounds import Background, background_pixels, choose_background

TYPE_PREFIX = "type:"
BACKGROUND_TYPES = ("room", "beach", "gym", "studio", "outdoors")
# Saturated studio backdrops, away from the wearables' colours so that every attribute shows on each.
STUDIO_COLOURS: dict[str, RGB] = {
    "orange": (240, 128, 32), "yellow": (244, 204, 44), "green": (52, 164, 78), "teal": (22, 148, 138),
    "azure": (48, 146, 232), "crimson": (192, 30, 64),
}  # fmt: skip
VARIANTS: dict[str, tuple[str, ...]] = {"gym": ("boards", "rubber"), "studio": tuple(STUDIO_COLOURS)}
TYPE_WORDS = {"room": "in a room", "beach": "on a beach", "gym": "in a gym", "studio": "in a {variant} studio",
              "outdoors": "outdoors on the grass"}

_ROOM_WALLS = ((238, 228, 208), (214, 228, 238), (236, 216, 214), (222, 234, 212), (242, 234, 196))
_ROOM_FLOORS = ((150, 100, 60), (122, 80, 50), (168, 116, 72))
_GYM_PADS = ((40, 62, 124), (60, 60, 70), (30, 110, 80))
_PICTURE_COLOURS = ((200, 80, 60), (60, 120, 180), (90, 150, 80), (220, 180, 60))


@dataclass(frozen=True)
class TypedBackground(Background):
    """A ``Background`` of one of the ``BACKGROUND_TYPES`` (its ``kind``) with its seeded details."""

    variant: str = ""
    accent: RGB = (0, 0, 0)  # window or picture frame, gym padding, sea, trees
    features: tuple = ()  # seeded fractions in [0, 1): positions and sizes, per type


def _jitter(rng: random.Random, colour, amount: int = 10) -> RGB:
    return tuple(min(255, max(0, int(v + (rng.random() * 2 - 1) * amount))) for v in colour)


def _pick(rng: random.Random, options):
    return options[int(rng.random() * len(options)) % len(options)]


def typed_background(request: str, rng: random.Random) -> TypedBackground:
    """The background for ``"<type>"`` or ``"<type>:<variant>"`` (without the ``type:`` prefix), its
    colours, variant and details drawn from ``rng``.

    Raises:
        DatasetError: an unknown type, or a variant the type does not have.
    """
    kind, _, variant = request.partition(":")
    if kind not in BACKGROUND_TYPES:
        raise DatasetError(f"unknown background type {kind!r}; known: {', '.join(BACKGROUND_TYPES)} "
                           f"(ask for one as background='{TYPE_PREFIX}<type>')")
    variants = VARIANTS.get(kind, ())
    if variant and variant not in variants:
        raise DatasetError(f"background type {kind!r} has no variant {variant!r}; "
                           f"known: {', '.join(variants) if variants else 'none'}")
    drawn = _pick(rng, variants) if variants else ""  # drawn even when pinned, so the details stay put
    variant = variant or drawn
    features = tuple(rng.random() for _ in range(8))
    if kind == "room":
        top, floor = _jitter(rng, _pick(rng, _ROOM_WALLS), 8), _jitter(rng, _pick(rng, _ROOM_FLOORS), 12)
        accent = _pick(rng, _PICTURE_COLOURS)
    elif kind == "beach":
        top, floor = _jitter(rng, (96, 166, 234), 14), _jitter(rng, (236, 214, 160), 10)
        accent = _jitter(rng, (30, 118, 186), 14)
    elif kind == "gym":
        top = _jitter(rng, (206, 208, 212), 8)
        floor = _jitter(rng, (214, 160, 88) if variant == "boards" else (58, 60, 66), 10)
        accent = _pick(rng, _GYM_PADS)
    elif kind == "studio":
        top = floor = _jitter(rng, STUDIO_COLOURS[variant], 8)
        accent = top
    else:  # outdoors
        top, floor = _jitter(rng, (120, 182, 240), 14), _jitter(rng, (92, 168, 64), 14)
        accent = _jitter(rng, (34, 92, 42), 10)
    words = TYPE_WORDS[kind].format(variant=variant)
    name = TYPE_PREFIX + kind + (f":{variant}" if variant else "")
    return TypedBackground(name, words, kind, top, top, floor, variant=variant, accent=accent, features=features)


def choose_scene_background(background, rng: random.Random) -> Background:
    """What ``backgrounds.choose_background`` gives, and a ``TypedBackground`` for a ``"type:..."`` name."""
    if isinstance(background, str) and background.startswith(TYPE_PREFIX):
        return typed_background(background[len(TYPE_PREFIX):], rng)
    return choose_background(background, rng)


def scene_background_pixels(size: int, spec: Background, horizon: float) -> np.ndarray:
    """The background as a size x size x 3 float64 array: a typed one, or ``background_pixels``."""
    paint = TYPE_PAINTERS.get(spec.kind) if isinstance(spec, TypedBackground) else None
    if paint is None:
        return background_pixels(size, spec, horizon)
    canvas = Canvas(np.zeros((size, size, 3), dtype=np.float64))
    paint(canvas, spec, float(size), horizon)
    return canvas.pixels


# --- painters: (canvas, spec, size, horizon), all lengths in pixels ----------------------------


def _rows(canvas: Canvas, top, bottom, y0: float, y1: float) -> None:
    """A vertical gradient from ``top`` at row ``y0`` to ``bottom`` at ``y1``, over the rows from ``y0`` down
    (the first row anti-aliased)."""
    y = np.arange(canvas.height, dtype=np.float64)[:, None] + 0.5
    t = np.clip((y - y0) / max(y1 - y0, 1.0), 0.0, 1.0)
    colour = np.array(top, dtype=np.float64) * (1.0 - t) + np.array(bottom, dtype=np.float64) * t
    coverage = np.clip(y - y0 + 0.5, 0.0, 1.0)[:, :, None]
    canvas.pixels += (colour[:, None, :] - canvas.pixels) * coverage


def _paint_room(canvas: Canvas, spec: TypedBackground, size: float, horizon: float) -> None:
    f = spec.features
    _rows(canvas, spec.top, shade(spec.top, 0.94), -1.0, horizon)
    _rows(canvas, spec.floor, shade(spec.floor, 0.86), horizon, size)
    for k in (0.22, 0.5, 0.82):  # floorboard seams, closer together towards the wall
        y = horizon + (size - horizon) * k * k
        canvas.fill(capsule((0.0, y), (size, y), size * 0.006), shade(spec.floor, 0.78))
    canvas.fill(capsule((-1.0, horizon), (size + 1.0, horizon), size * 0.018), (248, 246, 240))  # skirting
    # a window (sky and a cross of bars) or a picture, on the wall
    width = size * (0.2 + 0.08 * f[1])
    x0 = size * 0.04 + (size * 0.92 - width) * f[0]
    y0, y1 = size * (0.06 + 0.06 * f[2]), min(horizon - size * 0.1, size * 0.06 + width * 1.2)
    if y1 - y0 < size * 0.08:
        return
    corners = [(x0, y0), (x0 + width, y0), (x0 + width, y1), (x0, y1)]
    if f[3] < 0.6:
        canvas.fill(polygon(corners), (250, 250, 250), grow=size * 0.02)
        canvas.fill(polygon(corners), (164, 206, 240))
        mid_x, mid_y = x0 + width / 2, (y0 + y1) / 2
        canvas.fill(capsule((mid_x, y0), (mid_x, y1), size * 0.01), (250, 250, 250))
        canvas.fill(capsule((x0, mid_y), (x0 + width, mid_y), size * 0.01), (250, 250, 250))
    else:
        canvas.fill(polygon(corners), (96, 64, 40), grow=size * 0.02)
        canvas.fill(polygon(corners), spec.accent)


def _paint_beach(canvas: Canvas, spec: TypedBackground, size: float, horizon: float) -> None:
    f = spec.features
    sea_top = horizon - size * (0.12 + 0.08 * f[0])
    _rows(canvas, spec.top, shade(spec.top, 1.25), -1.0, sea_top)
    _rows(canvas, spec.accent, shade(spec.accent, 1.2), sea_top, horizon)
    _rows(canvas, shade(spec.floor, 0.9), spec.floor, horizon, horizon + size * 0.12)
    canvas.fill(capsule((-1.0, horizon), (size + 1.0, horizon), size * 0.016), (250, 252, 252))  # surf
    if f[1] < 0.5:  # the sun
        canvas.fill(disc((size * (0.1 + 0.8 * f[2]), size * (0.08 + 0.08 * f[3])), size * 0.05), (252, 236, 140))


def _paint_gym(canvas: Canvas, spec: TypedBackground, size: float, horizon: float) -> None:
    f = spec.features
    _rows(canvas, spec.top, shade(spec.top, 0.95), -1.0, horizon)
    pad = horizon - size * (0.1 + 0.05 * f[0])
    _rows(canvas, spec.accent, spec.accent, pad, horizon)
    _rows(canvas, spec.floor, shade(spec.floor, 0.88), horizon, size)
    seam = shade(spec.floor, 0.8) if spec.variant == "boards" else shade(spec.floor, 1.35)
    vanish = (size * (0.3 + 0.4 * f[1]), horizon - size * 1.5)
    for k in range(-6, 13):  # boards (or tile rows) running towards the wall
        bottom = (size * k / 6.0, size)
        top = (vanish[0] + (bottom[0] - vanish[0]) * 0.6, vanish[1] + (bottom[1] - vanish[1]) * 0.6)
        if top[1] < horizon:
            t = (horizon - vanish[1]) / (bottom[1] - vanish[1])
            top = (vanish[0] + (bottom[0] - vanish[0]) * t, horizon)
        canvas.fill(capsule(top, bottom, size * 0.005), seam)
    if spec.variant == "rubber":
        for k in (0.25, 0.6):
            y = horizon + (size - horizon) * k
            canvas.fill(capsule((0.0, y), (size, y), size * 0.005), seam)
    else:  # a court line across the floor
        y = horizon + (size - horizon) * (0.3 + 0.25 * f[2])
        canvas.fill(capsule((-1.0, y), (size + 1.0, y), size * 0.014), (248, 248, 244))


def _paint_studio(canvas: Canvas, spec: TypedBackground, size: float, horizon: float) -> None:
    # one colour, a little darker at the top, the floor sweeping up into the wall without a line
    _rows(canvas, shade(spec.top, 0.84), spec.top, -1.0, size)


def _paint_outdoors(canvas: Canvas, spec: TypedBackground, size: float, horizon: float) -> None:
    f = spec.features
    _rows(canvas, spec.top, shade(spec.top, 1.22), -1.0, horizon)
    _rows(canvas, shade(spec.floor, 1.08), shade(spec.floor, 0.84), horizon, size)
    count = 3 + int(f[0] * 4)
    for k in range(count):  # a row of trees on the horizon, spread over the width
        x = size * (k + 0.2 + 0.6 * f[(k + 1) % 8]) / count
        radius = size * (0.07 + 0.04 * f[(k + 3) % 8])
        canvas.fill(capsule((x, horizon), (x, horizon - radius * 1.2), size * 0.015), (96, 66, 40))
        canvas.fill(disc((x, horizon - radius * 1.5), radius), spec.accent)
        canvas.fill(disc((x - radius * 0.35, horizon - radius * 1.15), radius * 0.75), spec.accent)


TYPE_PAINTERS: dict[str, Callable] = {"room": _paint_room, "beach": _paint_beach, "gym": _paint_gym,
                                      "studio": _paint_studio, "outdoors": _paint_outdoors}
