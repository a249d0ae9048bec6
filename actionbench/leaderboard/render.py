"""Writing a leaderboard folder: adding a run, and rendering Markdown, CSV and HTML from one frame.

Layout of a leaderboard folder::

    leaderboard/reported.json          the paper's numbers (Huang et al., CVPR 2024, Table 1), marked reported
    leaderboard/results/<name>.json    byte-for-byte copies of results files (``add_result``)
    leaderboard/grids/<name>.png       image grid of each added run at native size, drawn at add time
    leaderboard/LEADERBOARD.md, leaderboard.csv, index.html      written by ``render_leaderboard``

A personal board (``render_leaderboard(PROJECT_BOARD, runs, page_dir=personal_board_dir(runs))``)
shows the project's rows next to your runs without touching the project's folder.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from actionbench.errors import ActionBenchError, ConfigError
from actionbench.io import atomic_write_bytes, atomic_write_text, read_json, save_image

from .grids import display_width, make_grid
from .tables import FIELDS, PER_ACTION, RUN_FIELDS, SCORE_COLUMNS, board_frame, collect_rows, marker, missing, \
    per_action, score_text, sections, slug, text_or
from .validate import load_valid_results, resolve_results_path

PROJECT_BOARD = Path("leaderboard")  # the project's board, relative to the checkout
PERSONAL_BOARD = "leaderboard"  # a personal board's folder inside a run folder
COLUMNS = ("#", "method", "action %", "subject %", "total %", "n", "preset", "run date", "spec hash", "source")
LEFT_COLUMNS = ("method", "preset", "run date", "spec hash", "source")  # left-aligned in the Markdown tables
INTRO = (
    "Per generated image a judge answers two yes/no questions: is the target action shown, is the target "
    "subject shown. *Action* and *subject* are the percentages of yes; *total* counts an image only when both "
    "are yes on that same image. Measured rows show a 95% bootstrap interval in brackets. Rows are ranked by "
    "total only within one dataset, backbone and judge (name, version and model): never across them."
)


# --- one frame, three renderings ---------------------------------------------------------------


def display_frame(table: pd.DataFrame, method_cell, marker_cell=marker) -> pd.DataFrame:
    """The shown columns of one judge's table, as text: rank, method, scores with intervals, run facts."""
    cells = [[str(row["rank"]), method_cell(row), score_text(row, "action"), score_text(row, "subject"),
              score_text(row, "total"), text_or(row["n"]), text_or(row["preset"]),
              text_or(row["run_date"]), text_or(row["spec_hash"]), marker_cell(row)]
             for row in table.to_dict("records")]
    return pd.DataFrame(cells, columns=list(COLUMNS))


def markdown_table(frame: pd.DataFrame, left: Iterable[str] = LEFT_COLUMNS) -> list[str]:
    """A GitHub pipe table of a text frame (pandas' ``to_markdown`` needs ``tabulate``, not a dependency)."""
    left = set(left)
    lines = ["| " + " | ".join(frame.columns) + " |",
             "|" + "|".join("---" if c in left else "---:" for c in frame.columns) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    return lines


def _reported_sources(frame: pd.DataFrame) -> list[str]:
    return sorted({s for s in frame.loc[frame["kind"] == "reported", "source"] if not missing(s) and s})


def render_markdown(frame: pd.DataFrame) -> str:
    """LEADERBOARD.md: one table per dataset, backbone and judge (``board_frame`` order)."""
    def method_cell(row):
        return row["label"] if row["kind"] == "measured" else f"{row['label']} (`{row['method']}`)"

    lines = ["# ActionBench leaderboard", "", INTRO, ""]
    for (dataset, backbone), tables in sections(frame):
        lines += [f"## Dataset `{dataset}`, backbone `{backbone}`", ""]
        for judge_label, table in tables:
            lines += [f"### Judge: {judge_label}", "", *markdown_table(display_frame(table, method_cell)), ""]
    sources = _reported_sources(frame)
    if sources:
        lines += ["Reported rows: " + "; ".join(sources) + ". Numbers as printed; n = 368 is inferred "
                  "(every value is a multiple of 1/368); the paper's 23 subjects are not public.", ""]
    return "\n".join(lines)


def _percent(value) -> float | None:
    return None if missing(value) else round(100 * value, 4)


def render_csv(frame: pd.DataFrame) -> str:
    """leaderboard.csv: every row with all its fields, accuracies in percent (4 decimals), per-action columns."""
    out = frame[list(FIELDS)].copy()
    for column in SCORE_COLUMNS:  # action, action_ci_lo, action_ci_hi, subject, ...
        out[f"{column}_pct"] = frame[column].map(_percent)
    for column in RUN_FIELDS:
        out[column] = frame[column]
    for column in (c for c in frame.columns if c.startswith(PER_ACTION)):
        out[f"{column}_pct"] = frame[column].map(_percent)
    return out.to_csv(index=False, lineterminator="\n", na_rep="")


def _bar_chart(row: Mapping) -> str:
    """Per-action action / subject / total accuracy as grouped bars (inline SVG, no scripts)."""
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


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3} td:nth-child(2),th:nth-child(2),td:last-child,th:last-child{text-align:left}
tr:has(.reported) td{color:#555;font-style:italic}
.run{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin-bottom:2rem}
.run img{max-width:100%;border:1px solid #ccc}
.run img.grid{image-rendering:pixelated;height:auto}
.meta{font-size:.85rem;color:#444} code{font-size:.85em}
"""


def render_html(frame: pd.DataFrame) -> str:
    """index.html: the tables (``DataFrame.to_html``), then each run's grid and per-action bars. Static:
    no scripts, no network; grids are scaled up by a whole factor with ``image-rendering: pixelated``."""
    esc = html.escape

    def method_cell(row):
        method = esc(row["label"]) if row["kind"] == "measured" else \
            f'{esc(row["label"])} (<code>{esc(row["method"])}</code>)'
        return f'<a href="#run-{esc(row["name"])}">{method}</a>' if row["kind"] == "measured" else method

    def marker_cell(row):
        if row["kind"] != "reported":
            return esc(marker(row))
        title = f' title="{esc(row["source"])}"' if not missing(row["source"]) and row["source"] else ""
        return f'<span class="reported"{title}>reported</span>'

    out = ['<!doctype html>', '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f'<title>ActionBench leaderboard</title><style>{CSS}</style></head><body>',
           '<h1>ActionBench leaderboard</h1>', f'<p>{esc(INTRO).replace("*", "")}</p>']
    for (dataset, backbone), tables in sections(frame):
        out.append(f'<h2>Dataset <code>{esc(dataset)}</code>, backbone <code>{esc(backbone)}</code></h2>')
        for judge_label, table in tables:
            shown = display_frame(table, method_cell, marker_cell)
            for column in ("#", *COLUMNS[2:-1]):  # text cells; method and source cells are markup already
                shown[column] = shown[column].map(esc)
            out.append(f'<h3>Judge: {esc(judge_label)}</h3>')
            out.append(shown.to_html(index=False, escape=False, border=0, classes="board"))
    sources = _reported_sources(frame)
    if sources:
        out.append(f'<p class="meta">Reported rows: {esc("; ".join(sources))}. Numbers as printed; n = 368 is '
                   'inferred; the paper\'s 23 subjects are not public.</p>')
    measured = frame[frame["kind"] == "measured"].sort_values("order").to_dict("records")
    if measured:
        out.append('<h2>Runs</h2>')
    for row in measured:
        name = esc(row["name"])
        incomplete = marker(row) == "measured (incomplete)"
        out.append(f'<section id="run-{name}"><h3>{name}</h3>')
        meta = (f'method <code>{esc(row["method"])}</code> v{esc(str(row["method_version"]))}, dataset '
                f'<code>{esc(row["dataset"])}</code>, backbone <code>{esc(row["backbone"])}</code>, judge '
                f'{esc(row["judge_label"])}, preset {esc(text_or(row["preset"], "none"))}, spec '
                f'<code>{esc(text_or(row["spec_hash"], "-"))}</code>, run {esc(text_or(row["run_date"], "-"))}, '
                f'n = {row["n"]}{" (incomplete)" if incomplete else ""}; '
                f'<a href="{esc(text_or(row["results_file"], ""))}">results JSON</a>')
        out.append(f'<p class="meta">{meta}</p><div class="run">')
        if not missing(row["grid"]) and row["grid"]:
            width = display_width(None if missing(row["grid_width"]) else int(row["grid_width"]))
            out.append(f'<img class="grid" src="{esc(row["grid"])}"' + (f' width="{width}"' if width else "")
                       + f' alt="image grid of {name}: rows actions, columns subjects; '
                       'green border: action and subject right, red: not" loading="lazy">')
        if per_action(row):
            out.append(_bar_chart(row))
        out.append('</div></section>')
    out.append('</body></html>')
    return "\n".join(out) + "\n"


# --- writing a board -----------------------------------------------------------------------------


def render_leaderboard(leaderboard_dir: str | Path = PROJECT_BOARD, extra_results: Iterable[str | Path] = (),
                       page_dir: str | Path | None = None) -> dict[str, Path]:
    """Render every results file in ``<leaderboard_dir>/results`` plus ``reported.json`` (and extras).

    Writes ``LEADERBOARD.md``, ``leaderboard.csv`` and ``index.html`` (static, no scripts, no
    network) atomically into ``page_dir`` (default: ``leaderboard_dir`` itself), with links
    relative to it. A ``leaderboard_dir`` that does not exist gives a board of the extras only.

    Args:
        leaderboard_dir: the leaderboard folder whose rows are shown (read only unless it is ``page_dir``).
        extra_results: results files or run folders to show without adding them.
        page_dir: where the three files go, e.g. ``personal_board_dir(runs)`` to leave the project's board alone.

    Returns:
        ``{"markdown": path, "csv": path, "html": path}``.

    Raises:
        ValidationError: a results file (or reported.json) is invalid; the message names it.
    """
    board = Path(leaderboard_dir)
    page = board if page_dir is None else Path(page_dir)
    frame = board_frame(collect_rows(board, extra_results, page))
    return {
        "markdown": atomic_write_text(page / "LEADERBOARD.md", render_markdown(frame)),
        "csv": atomic_write_text(page / "leaderboard.csv", render_csv(frame)),
        "html": atomic_write_text(page / "index.html", render_html(frame)),
    }


def personal_board_dir(runs: Iterable[str | Path]) -> Path:
    """Where a personal board of ``runs`` goes: ``<first run folder>/leaderboard``."""
    first = Path(next(iter(runs)))
    return (first if first.is_dir() else first.parent) / PERSONAL_BOARD


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_name(results: Mapping) -> str:
    """``<method>-<spec hash>-<judge>-v<version>``: one leaderboard row per spec and judge version."""
    judge = results.get("judge") or {}
    return slug(f"{results['spec']['method']}-{results['spec_hash']}-{judge.get('name')}-v{judge.get('version')}")[:100]


def _judge_id(results: Mapping) -> tuple:
    judge = results.get("judge") or {}
    return judge.get("name"), str(judge.get("version")), judge.get("model"), judge.get("pretrained")


def add_result(results_path: str | Path, leaderboard_dir: str | Path = PROJECT_BOARD, name: str | None = None) -> Path:
    """Validate a results file and add it to a leaderboard folder; returns the copy's path.

    The JSON is copied byte for byte to ``<leaderboard_dir>/results/<name>.json`` (image paths in
    it stay relative to the original run folder) and the run's image grid, drawn now from the
    run folder at native size, goes to ``<leaderboard_dir>/grids/<name>.png``. Adding the same
    run (same spec and judge) again replaces it.

    Raises:
        ValidationError: the results file is invalid (every problem is listed).
        ConfigError: ``name`` is not a safe file name, or already names a different run.
    """
    source = resolve_results_path(results_path)
    data = load_valid_results(source)
    name = default_name(data) if name is None else name
    if not _SAFE_NAME.match(name):
        raise ConfigError(f"leaderboard entry name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    board = Path(leaderboard_dir)
    target = board / "results" / f"{name}.json"
    if target.exists():
        try:
            existing = read_json(target, "leaderboard results file")
        except ActionBenchError:
            existing = None  # a damaged copy is simply replaced
        if isinstance(existing, dict) and (existing.get("spec_hash"), _judge_id(existing)) != (
                data.get("spec_hash"), _judge_id(data)):
            raise ConfigError(
                f"{target} already holds a different run (spec {existing.get('spec_hash')}, judge "
                f"{_judge_id(existing)}); choose another name=..., or delete that file to replace it"
            )
    grid = make_grid(source)  # from the run folder, now: the copy's image paths point there
    atomic_write_bytes(target, source.read_bytes())
    save_image(grid, board / "grids" / f"{name}.png")
    return target

