"""Scenes: one subject in one pose on a background, laid out by a seed and rendered to pixels.

``render`` is the world's one drawing entry point: the seed fixes the figure's jitter, lean
and mirror, its scale and place in the frame, and (when none is given) the background, in
that order of random draws, so the same seed gives the same composition at every size.
Attributes and builds (``wearables``) and background types (``background_types``) are
optional; without them a render is the v1 renderer's, pixel for pixel.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from actionbench.errors import DatasetError
from actionbench.pose import render_pose_map
from actionbench.raster import Canvas, ellipse

from . import wearables
from .background_types import choose_scene_background, scene_background_pixels
from .backgrounds import Background
from .benchmark import SUBJECT_IDS
from .figure import FigureGeometry, body_geometry, figure_extent
from .looks import EXEMPLAR_LOOKS, LOOKS, Look
from .painter import FigurePainter
from .poses import POSES, Pose

RENDERER_VERSION = 1  # part of every render's seed: bump it when a change is meant to alter pixels


@dataclass(frozen=True)
class RenderedImage:
    """One render and what it shows: the image and the OpenPose keypoints of the figure drawn."""

    image: object  # PIL.Image.Image, RGB
    keypoints: tuple  # 18 (x, y) pixel coordinates, None where hidden
    subject_id: str
    pose: str
    size: int
    seed: int
    background: str  # a BACKGROUNDS name, "random-<kind>", or "type:<type>[:<variant>]"
    attributes: tuple = ()  # wearables.WEARABLES names, in canonical order
    build: str = wearables.DEFAULT_BUILD

    def keypoints_array(self) -> np.ndarray:
        """18x2 float array of pixel coordinates, NaN where hidden."""
        return np.array([(np.nan, np.nan) if p is None else p for p in self.keypoints], dtype=np.float64)

    def pose_map(self, stickwidth: float | None = None):
        """The OpenPose map of this render's skeleton (``actionbench.pose.render_pose_map``)."""
        return render_pose_map(self.keypoints, self.size, stickwidth=stickwidth)


def seeded_rng(*parts) -> random.Random:
    """A ``random.Random`` seeded from SHA-256 of the parts (never Python's salted ``hash()``)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return random.Random(int(digest[:16], 16))


def look_of(subject_id: str) -> Look:
    try:
        return LOOKS[subject_id]
    except KeyError:
        raise DatasetError(
            f"unknown synthetic subject '{subject_id}'; known: {', '.join(SUBJECT_IDS)} "
            f"and exemplar looks {', '.join(EXEMPLAR_LOOKS)}"
        ) from None


def pose_of(pose: str) -> Pose:
    try:
        return POSES[pose]
    except KeyError:
        raise DatasetError(f"unknown synthetic pose '{pose}'; known: {', '.join(POSES)}") from None


@dataclass
class Scene:
    """A laid-out scene, in pixels."""

    look: Look
    pose: Pose
    background: Background
    geometry: FigureGeometry  # pixel space
    pixels_per_unit: float
    ground_px: float  # y of the floor line
    horizon: float  # y where a "horizon" background's floor begins
    shadow: tuple  # (cx, rx) in pixels


def lay_out_scene(subject_id: str, pose: str, size: int, seed: int, background, attributes: tuple = (),
                  build: str = wearables.DEFAULT_BUILD) -> Scene:
    """Place the seeded figure in a ``size`` square: scale, floor line, horizontal position, background.

    ``attributes`` must be canonical (``wearables.canonical_attributes``). They and the build
    may change the figure's size in the frame (the layout fits a stool, a cap or a broad build),
    never the random draws: the stool's side comes from a stream of its own.
    """
    look, p = wearables.dress(look_of(subject_id), attributes, wearables.check_build(build)), pose_of(pose)
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    rng = seeded_rng("actionbench-synthetic", RENDERER_VERSION, subject_id, p.name, int(seed))
    g, _ = body_geometry(look, p, rng)
    scale_f, ground_f, x_f, horizon_f = rng.random(), rng.random(), rng.random(), rng.random()
    # the background is drawn after the figure's numbers, so it never changes the layout
    bg = choose_scene_background(background, rng)
    if attributes:
        prop_rng = seeded_rng("actionbench-synthetic-props", RENDERER_VERSION, subject_id, p.name, int(seed))
        wearables.attach_props(g, p, look, attributes, prop_rng)

    # layout: pixels per body unit, floor line, horizontal position
    x0, y0, x1, y1 = figure_extent(look, g, wearables.head_top_reach(attributes), wearables.points_to_fit(g))
    margin = 0.03 * size
    u = size * (0.66 + 0.2 * scale_f)
    ground_px = min(size * (0.84 + 0.11 * ground_f), size - 1 - max(y1 - p.ground, 0.0) * u)
    u = min(u, (ground_px - margin) / max(p.ground - y0, 1e-6), (size - 2 * margin) / max(x1 - x0, 1e-6))
    lo, hi = margin - x0 * u, size - margin - x1 * u
    ox = lo + (hi - lo) * x_f
    oy = ground_px - p.ground * u
    in_pixels = g.transformed(lambda q: (ox + q[0] * u, oy + q[1] * u), lambda v: v)
    horizon = min(ground_px - 0.06 * size, size * (0.35 + 0.3 * horizon_f))
    # the shadow spans what is near the floor (or, for a figure in the air, all of it)
    low = [q for q in g.keypoints if q is not None and q[1] > p.ground - 0.3] or [q for q in g.keypoints if q is not None]
    lx0, lx1 = min(q[0] for q in low), max(q[0] for q in low)
    shadow = (ox + (lx0 + lx1) / 2 * u, max(0.16, (lx1 - lx0) / 2 + 0.08) * u)
    return Scene(look, p, bg, in_pixels, u, ground_px, horizon, shadow)


def pixel_keypoints(scene: Scene) -> tuple:
    """The scene's keypoints rounded to 1e-3 px (None where hidden), as ``RenderedImage`` records them."""
    return tuple(None if q is None else (round(q[0], 3) + 0.0, round(q[1], 3) + 0.0) for q in scene.geometry.keypoints)


def render(subject_id: str, pose: str, size: int = 64, seed: int = 0, background=None, attributes=(),
           build: str = wearables.DEFAULT_BUILD) -> RenderedImage:
    """Draw one subject in one pose; deterministic per (subject_id, pose, size, seed, background,
    attributes, build).

    Args:
        subject_id: one of SUBJECT_IDS, or an EXEMPLAR_LOOKS id.
        pose: a POSES name (the 8 action ids are pose names too).
        size: image side in pixels (any size from 16; 64 to 512 are the intended ones).
        seed: varies the background, position, scale, lean and joint jitter; the layout is
            the same at every size for the same seed.
        background: None (chosen by the seed), a BACKGROUNDS name, a Background, an RGB tuple, or
            a background type: ``"type:<type>"`` or ``"type:<type>:<variant>"``
            (``background_types.BACKGROUND_TYPES``; the seed varies its colours and details).
        attributes: wearables.WEARABLES names the figure wears or has with it, e.g.
            ``("uniform", "cap")``; their order does not matter; () draws the v1 figure.
        build: a wearables.BUILDS name (slim, regular, broad); "regular" is the subject's own.

    Raises:
        DatasetError: unknown subject, pose, background, attribute or build; two body garments.
    """
    size = int(size)
    attributes = wearables.canonical_attributes(attributes)
    scene = lay_out_scene(subject_id, pose, size, seed, background, attributes, build)
    canvas = Canvas(scene_background_pixels(size, scene.background, scene.horizon))
    painter = FigurePainter(canvas, scene.look, scene.geometry, scene.pixels_per_unit, attributes)
    wearables.paint_mat(painter)  # on the floor, under the shadow
    shadow_x, shadow_rx = scene.shadow
    canvas.fill(ellipse((shadow_x, scene.ground_px), shadow_rx, 0.035 * scene.pixels_per_unit), (0, 0, 0), alpha=0.18)
    painter.draw()
    return RenderedImage(canvas.to_image(), pixel_keypoints(scene), subject_id, scene.pose.name, size, int(seed),
                         scene.background.name, attributes, build)


def render_keypoints(subject_id: str, pose: str, size: int = 64, seed: int = 0, attributes=(),
                     build: str = wearables.DEFAULT_BUILD) -> tuple:
    """The keypoints ``render`` would return, without drawing (they never depend on the background;
    a stool, a cap or a build can change the figure's size in the frame)."""
    attributes = wearables.canonical_attributes(attributes)
    return pixel_keypoints(lay_out_scene(subject_id, pose, int(size), seed, (0, 0, 0), attributes, build))


def contact_sheet(subjects: Sequence[str] | None = None, poses: Sequence[str] | None = None, size: int = 96,
                  seed: int = 0, background=None):
    """A grid image: one row per subject, one column per pose (for eyeballing the world)."""
    from PIL import Image

    subjects = list(subjects or SUBJECT_IDS)
    poses = list(poses or POSES)
    sheet = Image.new("RGB", (size * len(poses), size * len(subjects)), (255, 255, 255))
    for row, sid in enumerate(subjects):
        for col, pose_name in enumerate(poses):
            image = render(sid, pose_name, size=size, seed=seed + 7919 * row + col, background=background).image
            sheet.paste(image, (col * size, row * size))
    return sheet
