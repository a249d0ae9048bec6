"""Contact sheets of the wearables, builds and background types, for people to eyeball.

``attribute_sheet`` shows subjects (rows) wearing each attribute, on each background type and
in each build (columns); ``attribute_pose_sheet`` shows one subject wearing each attribute
(rows) in every pose (columns). Both render at the mini world's size (32 px) and scale the
pixels up without smoothing, so what the sheet shows is what a 32 px model sees.
"""
from __future__ import annotations

from typing import Sequence

from .background_types import BACKGROUND_TYPES, TYPE_PREFIX
from .poses import POSES
from .scene import render
from .wearables import ATTRIBUTES

SHEET_SUBJECTS = ("man", "woman", "cat", "dog", "gorilla", "rabbit")  # two humans, four animals
SHEET_BACKGROUND = (222, 222, 222)  # attributes are shown on a plain light grey
_LABEL_HEIGHT = 14  # pixels of the (scaled) sheet above the cells, for the column names


def _grid(cells: list[list[dict]], column_names: Sequence[str], size: int, scale: int, labels: bool):
    """Render ``cells[row][column]`` (keyword arguments of ``render``) into one image, scaled up."""
    from PIL import Image, ImageDraw

    rows, columns = len(cells), len(column_names)
    cell = size * scale
    top = _LABEL_HEIGHT if labels else 0
    sheet = Image.new("RGB", (cell * columns, top + cell * rows), (255, 255, 255))
    for r, row in enumerate(cells):
        for c, kwargs in enumerate(row):
            image = render(size=size, **kwargs).image.resize((cell, cell), Image.NEAREST)
            sheet.paste(image, (c * cell, top + r * cell))
    if labels:
        draw = ImageDraw.Draw(sheet)
        for c, name in enumerate(column_names):
            draw.text((c * cell + 3, 1), name, fill=(0, 0, 0))
    return sheet


def attribute_sheet(subjects: Sequence[str] = SHEET_SUBJECTS, size: int = 32, scale: int = 4, seed: int = 0,
                    labels: bool = True):
    """Rows of subjects; columns: plain, each attribute, each background type, then the slim and
    broad builds. Each cell has its own pose (they cycle through ``POSES``) and seed.

    Returns:
        a ``PIL.Image``, ``size * scale`` pixels per cell, with the column names on top when ``labels``.
    """
    poses = list(POSES)
    columns: list[tuple[str, dict]] = [("plain", {"background": SHEET_BACKGROUND})]
    columns += [(a, {"background": SHEET_BACKGROUND, "attributes": (a,)}) for a in ATTRIBUTES]
    columns += [(t, {"background": TYPE_PREFIX + t}) for t in BACKGROUND_TYPES]
    columns += [(b, {"background": SHEET_BACKGROUND, "build": b}) for b in ("slim", "broad")]
    cells = [[{"subject_id": subject, "pose": poses[(7 * r + 3 * c) % len(poses)], "seed": seed + 101 * r + c, **kw}
              for c, (_, kw) in enumerate(columns)] for r, subject in enumerate(subjects)]
    return _grid(cells, [name for name, _ in columns], size, scale, labels)


def attribute_pose_sheet(subject: str = "man", size: int = 32, scale: int = 4, seed: int = 0, background=None,
                         labels: bool = True):
    """Rows: the subject plain, then wearing each attribute; columns: every pose in ``POSES``.

    Returns:
        a ``PIL.Image`` as ``attribute_sheet`` makes it.
    """
    background = SHEET_BACKGROUND if background is None else background
    rows = [()] + [(a,) for a in ATTRIBUTES]
    cells = [[{"subject_id": subject, "pose": pose, "seed": seed + 31 * r + c, "background": background,
               "attributes": attrs} for c, pose in enumerate(POSES)] for r, attrs in enumerate(rows)]
    return _grid(cells, list(POSES), size, scale, labels)
