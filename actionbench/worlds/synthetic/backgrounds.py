"""Backgrounds: the named ones (captions mention them) and random ones chosen by a render's seed.

A background is painted from its ``kind``: one function per kind in ``BACKGROUND_KINDS``
turns the spec into one colour per image row. A new kind is a new function there; the
random backgrounds draw only from ``RANDOM_KINDS``, which stays as it is so that seeded
renders never change.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from actionbench.errors import DatasetError
from actionbench.raster import RGB


@dataclass(frozen=True)
class Background:
    """kind: "solid" (top), "gradient" (top to bottom) or "horizon" (top/bottom above, floor below)."""

    name: str
    words: str  # caption phrase, e.g. "on a light blue background"
    kind: str
    top: RGB
    bottom: RGB
    floor: RGB | None = None


BACKGROUNDS: dict[str, Background] = {
    b.name: b
    for b in (
        Background("light_blue", "on a light blue background", "solid", (170, 205, 240), (170, 205, 240)),
        Background("pale_yellow", "on a pale yellow background", "solid", (248, 236, 170), (248, 236, 170)),
        Background("sunset", "against an orange sunset sky", "gradient", (120, 90, 170), (250, 170, 90)),
        Background("park", "in a green park", "horizon", (150, 200, 245), (200, 230, 250), (110, 180, 80)),
        Background("beach", "on a sandy beach", "horizon", (120, 185, 240), (190, 225, 250), (235, 215, 160)),
        Background("room", "in a room with a wooden floor", "horizon", (235, 225, 205), (225, 212, 190), (160, 110, 70)),
        Background("grey", "on a plain grey background", "solid", (200, 200, 200), (200, 200, 200)),
        Background("studio", "in a bright studio", "gradient", (252, 252, 252), (200, 215, 230)),
        Background("street", "on a city sidewalk", "horizon", (185, 205, 225), (215, 225, 235), (150, 150, 155)),
        Background("mint", "on a mint green background", "solid", (185, 235, 205), (185, 235, 205)),
        Background("pink", "on a pink background", "solid", (248, 200, 215), (248, 200, 215)),
        Background("snow", "in a snowy field", "horizon", (200, 215, 235), (225, 232, 242), (245, 248, 252)),
    )
}

# Colours the random backgrounds start from (each then jittered by the seed).
RANDOM_PALETTE = (
    (170, 205, 240), (248, 236, 170), (185, 235, 205), (248, 200, 215), (205, 205, 205), (235, 220, 190),
    (210, 195, 235), (250, 210, 170), (150, 200, 245), (235, 215, 160), (110, 180, 80), (160, 110, 70),
    (150, 150, 155), (245, 245, 245), (250, 240, 215), (160, 220, 215), (240, 170, 120), (120, 150, 200),
)  # fmt: skip
# The kinds a seed picks from; changing this tuple changes every render with background=None.
RANDOM_KINDS = ("solid", "gradient", "horizon")


def _jitter_colour(rng: random.Random, col, amount: int = 10) -> RGB:
    return tuple(min(255, max(0, int(v + (rng.random() * 2 - 1) * amount))) for v in col)


def choose_background(background, rng: random.Random) -> Background:
    """The background a render asked for: None (a random one drawn from ``rng``), a BACKGROUNDS
    name, a ``Background``, or an RGB tuple (a solid colour)."""
    if background is None:
        kind = RANDOM_KINDS[int(rng.random() * len(RANDOM_KINDS)) % len(RANDOM_KINDS)]
        n = len(RANDOM_PALETTE)
        top = _jitter_colour(rng, RANDOM_PALETTE[int(rng.random() * n) % n])
        bottom = _jitter_colour(rng, RANDOM_PALETTE[int(rng.random() * n) % n])
        floor = _jitter_colour(rng, RANDOM_PALETTE[int(rng.random() * n) % n])
        return Background(f"random-{kind}", "", kind, top, top if kind == "solid" else bottom, floor)
    if isinstance(background, Background):
        return background
    if isinstance(background, str):
        if background not in BACKGROUNDS:
            raise DatasetError(f"unknown background '{background}'; known: {', '.join(BACKGROUNDS)}")
        return BACKGROUNDS[background]
    col = tuple(int(v) for v in background)
    return Background("solid-" + "-".join(map(str, col)), "", "solid", col, col)


# --- one colour per row (y: the row centres as a column vector), for each kind ----------------


def _solid_rows(spec: Background, size: int, horizon: float, y: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.array(spec.top, dtype=np.float64), (size, 3))


def _gradient_rows(spec: Background, size: int, horizon: float, y: np.ndarray) -> np.ndarray:
    top, bottom = np.array(spec.top, dtype=np.float64), np.array(spec.bottom, dtype=np.float64)
    t = y / size
    return top * (1.0 - t) + bottom * t


def _horizon_rows(spec: Background, size: int, horizon: float, y: np.ndarray) -> np.ndarray:
    """A sky gradient down to the horizon, then a floor that darkens slightly towards the bottom."""
    top, bottom = np.array(spec.top, dtype=np.float64), np.array(spec.bottom, dtype=np.float64)
    t = np.clip(y / horizon, 0.0, 1.0)
    sky = top * (1.0 - t) + bottom * t
    floor = np.array(spec.floor, dtype=np.float64)
    ft = np.clip((y - horizon) / max(size - horizon, 1.0), 0.0, 1.0)
    ground = floor * (1.0 - 0.12 * ft)
    coverage = np.clip(y - horizon + 0.5, 0.0, 1.0)  # the horizon row is anti-aliased
    return sky * (1.0 - coverage) + ground * coverage


BACKGROUND_KINDS = {"solid": _solid_rows, "gradient": _gradient_rows, "horizon": _horizon_rows}


def background_pixels(size: int, spec: Background, horizon: float) -> np.ndarray:
    """The background as a size x size x 3 float64 array (``horizon``: the y of the floor's edge)."""
    try:
        rows = BACKGROUND_KINDS[spec.kind]
    except KeyError:
        raise DatasetError(f"unknown background kind '{spec.kind}'; known: {', '.join(BACKGROUND_KINDS)}") from None
    y = (np.arange(size, dtype=np.float64) + 0.5)[:, None]
    col = rows(spec, size, horizon, y)
    return np.ascontiguousarray(np.broadcast_to(col[:, None, :], (size, size, 3))).copy()
