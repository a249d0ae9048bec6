"""The page's small charts, as inline SVG (no scripts, no network): per-action bars and the confusion heat map."""
from __future__ import annotations

import html
from typing import Mapping

from .tables import per_action

HEAT_CELL = 13  # pixels per confusion cell: 8 x 19 cells stay under 300 pixels wide
HEAT_COLOR = (8, 81, 156)  # the colour of a cell holding a whole row's images


def bar_chart(row: Mapping) -> str:
    """Per-action action / subject / total accuracy as grouped bars."""
    values = per_action(row)
    actions = list(values)
    colors = {"action": "#1f77b4", "subject": "#ff7f0e", "total": "#2ca02c"}
    group_w, bar_w, left, top, plot_h = 66, 16, 34, 22, 140
    width, height = left + max(1, len(actions)) * group_w + 10, top + plot_h + 34
    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="per-action accuracy of {esc(row["name"])}" font-family="sans-serif" font-size="10">']
    for tick in (0, 25, 50, 75, 100):
        y = top + plot_h - plot_h * tick / 100
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#555">{tick}</text>')
    for k, (metric, color) in enumerate(colors.items()):
        parts.append(f'<rect x="{left + k * 70}" y="4" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + k * 70 + 14}" y="13">{metric}</text>')
    for i, action in enumerate(actions):
        x0 = left + i * group_w + 8
        for k, metric in enumerate(colors):
            value = float(values[action].get(metric, 0.0))
            h = plot_h * value
            parts.append(f'<rect x="{x0 + k * bar_w}" y="{top + plot_h - h:.1f}" width="{bar_w - 2}" '
                         f'height="{h:.1f}" fill="{colors[metric]}"><title>{esc(action)} {metric}: '
                         f'{100 * value:.1f}%</title></rect>')
        parts.append(f'<text x="{x0 + 1.5 * bar_w - 1}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f'{esc(action[:11])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _shade(share: float) -> str:
    """White for 0, ``HEAT_COLOR`` for a whole row."""
    r, g, b = (round(255 - share * (255 - c)) for c in HEAT_COLOR)
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(confusion: Mapping, name: str) -> str:
    """The confusion matrix, target action (rows) x judged pose class (columns), as a heat map.

    A cell's shade is its share of the row (the images made for that action); the diagonal (judged
    as the target) is outlined; hovering a cell shows its count. A method that learned the actions
    has a dark diagonal; one that draws the same poses whatever it is asked has dark columns.
    """
    rows, columns, counts = confusion["rows"], confusion["columns"], confusion["counts"]
    esc = html.escape
    cell, left, top = HEAT_CELL, 72, 66
    width, height = max(330, left + len(columns) * cell + 4), top + len(rows) * cell + 16
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="confusion matrix of {esc(name)}: target action by judged pose class" '
             'font-family="sans-serif" font-size="9">']
    for j, column in enumerate(columns):
        x = left + j * cell + cell / 2 + 3
        parts.append(f'<text transform="translate({x:.1f},{top - 3}) rotate(-60)">{esc(str(column)[:12])}</text>')
    for i, target in enumerate(rows):
        y = top + i * cell
        total = sum(counts[i]) or 1
        parts.append(f'<text x="{left - 3}" y="{y + cell - 3}" text-anchor="end">{esc(str(target)[:12])}</text>')
        for j, column in enumerate(columns):
            count = counts[i][j]
            stroke = ' stroke="#222" stroke-width="1.2"' if column == target else ' stroke="#eee"'
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                         f'fill="{_shade(count / total)}"{stroke}><title>made for {esc(str(target))}, judged '
                         f'{esc(str(column))}: {count} of {total} ({100 * count / total:.0f}%)</title></rect>')
    parts.append(f'<text x="4" y="{height - 3}" fill="#555">rows: target action; columns: judged pose; '
                 'shade: share of the row</text></svg>')
    return "".join(parts)
