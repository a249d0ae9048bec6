"""Image grids of a run: one row per action, one column per subject, a judgment border per image.

Borders: green when action and subject are right (total), red when not, grey without a judgment;
orange when right but the judge saw a leak (``detail.leak``: the target action's context signature,
which the prompt did not ask for; judges that read context, e.g. mini-v2).

Columns: when a run has more subjects than a grid shows, they are taken round-robin across the
subject categories (human, personality, animal; ``metrics.per_category`` of the results), so every
category appears: ActionBench lists its 8 humans first, so the first 8 subjects would hide the
personalities and animals (the mini-v2 pre-registration reads contamination off the animals). Without
categories, the first subjects in record order.

Grids are stored at native size: each image as it was generated (up to ``NATIVE_MAX`` pixels;
larger ones are shrunk), never scaled up, so a grid of 32-pixel images stays a few tens of
kilobytes. The leaderboard's page scales it up by a whole factor with ``image-rendering: pixelated``
(``actionbench.leaderboard.tables.display_width``), which shows the same pixels an upscaled file would.

The runner draws one into every finished run folder (``grid.png``) and the leaderboard draws one for each
entry it adds, so the drawing lives with the run, below the leaderboard.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ActionBenchError
from ..io import read_json
from .runfolder import resolve_results_path

NATIVE_MAX = 128  # a native grid shows larger images (e.g. SD's 512 pixels) shrunk to this side
GREEN, RED, GREY, ORANGE = (46, 160, 67), (207, 34, 46), (190, 190, 190), (240, 140, 0)
TITLE_H, HEAD_H = 18, 16


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _fit(draw, text: str, font, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."


def _vertical_label(grid, draw, text: str, font, x: int, bottom: int, width: int, height: int) -> None:
    """Write ``text`` bottom to top, centred in the column ``[x, x + width)`` and ending at ``bottom``."""
    from PIL import Image, ImageDraw

    text = _fit(draw, text, font, height)
    label = Image.new("L", (int(draw.textlength(text, font=font)) + 2, HEAD_H - 2), 0)
    ImageDraw.Draw(label).text((1, 0), text, fill=255, font=font)
    label = label.rotate(90, expand=True)
    grid.paste((0, 0, 0), (x + (width - label.width) // 2, bottom - label.height), mask=label)


def subject_categories(record: dict) -> dict[str, str]:
    """Subject id -> category, from the results' ``metrics.per_category`` (empty where it has none)."""
    metrics = record.get("metrics")
    by_category = metrics.get("per_category") if isinstance(metrics, dict) else None
    if not isinstance(by_category, dict):
        return {}
    return {str(s): str(c) for c, block in by_category.items()
            if isinstance(block, dict) and isinstance(block.get("subjects"), list) for s in block["subjects"]}


def choose_subjects(subjects: list, categories: dict[str, str], count: int) -> list:
    """``count`` of ``subjects`` (record order), taken round-robin across their categories so that each
    category shows; kept in record order. Subjects without a category form one group of their own."""
    if len(subjects) <= count:
        return list(subjects)
    groups: dict = {}
    for subject in subjects:
        groups.setdefault(categories.get(str(subject)), []).append(subject)
    chosen: set = set()
    for depth in range(max(len(g) for g in groups.values())):
        for group in groups.values():
            if len(chosen) < count and depth < len(group):
                chosen.add(group[depth])
    return [s for s in subjects if s in chosen]


def border_color(r: dict | None) -> tuple[int, int, int]:
    """Green: action and subject right; orange: right but leaking (``detail.leak`` is True); red: wrong;
    grey: no judgment."""
    if r is None or not isinstance(r.get("action_ok"), bool) or not isinstance(r.get("subject_ok"), bool):
        return GREY
    if not (r["action_ok"] and r["subject_ok"]):
        return RED
    detail = r.get("detail")
    return ORANGE if isinstance(detail, dict) and detail.get("leak") is True else GREEN


def make_grid(run_dir_or_results_path: str | Path, max_actions: int = 8, max_subjects: int = 8,
              cell: int | None = None):
    """A labelled grid of a run's images: one row per action, one column per subject (image k=0).

    Each image gets a green border when it was judged right on both counts (total), orange when
    right but leaking (``detail.leak``), red when not, and grey when it has no judgment. Missing
    images are drawn as grey "missing" cells. Subject names that do not fit a column are written upwards.

    Args:
        run_dir_or_results_path: a run folder (with ``results.json``) or a results JSON; image
            paths in the records are relative to the folder holding the JSON.
        max_actions: the first ones in record order are shown.
        max_subjects: at most this many subjects, round-robin across their categories (``choose_subjects``),
            in record order.
        cell: side of one cell in pixels, images scaled to fit. None: native size, every image
            pasted pixel for pixel (shrunk only above ``NATIVE_MAX``), inside a border.

    Returns:
        A ``PIL.Image`` (RGB).
    """
    from PIL import Image, ImageDraw, ImageOps

    from actionbench.io import load_image

    path = resolve_results_path(run_dir_or_results_path)
    record = read_json(path, "results file")
    records = [r for r in record.get("records", []) if isinstance(r, dict)]
    actions = list(dict.fromkeys(r.get("action_id") for r in records))[:max_actions]
    subjects = choose_subjects(list(dict.fromkeys(r.get("subject_id") for r in records)),
                               subject_categories(record), max_subjects)
    first: dict[tuple, dict] = {}
    for r in records:
        key = (r.get("action_id"), r.get("subject_id"))
        if key not in first or int(r.get("k", 0)) < int(first[key].get("k", 0)):
            first[key] = r
    images = {}
    for key in ((a, s) for a in actions for s in subjects):
        r = first.get(key)
        if r is not None and isinstance(r.get("image"), str):
            try:
                images[key] = load_image(path.parent / r["image"])
            except ActionBenchError:
                pass

    native = cell is None
    if native:  # the cell fits the largest image, up to NATIVE_MAX
        inner = min(NATIVE_MAX, max((max(image.size) for image in images.values()), default=32))
        border = max(2, inner // 16)
        cell = inner + 2 * (border + 1)
    else:
        border = max(2, cell // 16)
        inner = cell - 2 * (border + 1)
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    upright = all(probe.textlength(str(s), font=font) <= cell - 6 for s in subjects)
    head_h = HEAD_H if upright else min(120, max(int(probe.textlength(str(s), font=font)) for s in subjects)) + 6
    label_w = max(64, cell * 3 // 4)
    width = label_w + max(1, len(subjects)) * cell
    height = TITLE_H + head_h + max(1, len(actions)) * cell
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    spec, judge = record.get("spec") or {}, record.get("judge") or {}
    title = f"{spec.get('method', '?')} | {record.get('run_name', path.stem)}"
    if judge:
        title += f" | judge {judge.get('name')} v{judge.get('version')} | green: action and subject right"
        if any(isinstance(r.get("detail"), dict) and isinstance(r["detail"].get("leak"), bool) for r in records):
            title += ", orange: right but leaking"
    draw.text((4, 3), _fit(draw, title, font, width - 8), fill="black", font=font)
    for j, subject in enumerate(subjects):
        x = label_w + j * cell
        if upright:
            draw.text((x + 3, TITLE_H + 2), _fit(draw, str(subject), font, cell - 6), fill="black", font=font)
        else:
            _vertical_label(grid, draw, str(subject), font, x, TITLE_H + head_h - 3, cell, head_h - 6)
    for i, action in enumerate(actions):
        y = TITLE_H + head_h + i * cell
        draw.text((4, y + cell // 2 - 6), _fit(draw, str(action), font, label_w - 8), fill="black", font=font)
        for j, subject in enumerate(subjects):
            x = label_w + j * cell
            draw.rectangle([x + 1, y + 1, x + cell - 2, y + cell - 2], fill=border_color(first.get((action, subject))))
            image = images.get((action, subject))
            if image is None:
                draw.rectangle([x + 1 + border, y + 1 + border, x + cell - 2 - border, y + cell - 2 - border],
                               fill=(225, 225, 225))
                draw.text((x + border + 4, y + cell // 2 - 6), _fit(draw, "missing", font, inner - 4),
                          fill=(90, 90, 90), font=font)
                continue
            if not native or max(image.size) > inner:  # a given cell scales images up and down; native only down
                image = ImageOps.contain(image, (inner, inner))
            grid.paste(image, (x + 1 + border + (inner - image.width) // 2, y + 1 + border + (inner - image.height) // 2))
    return grid
