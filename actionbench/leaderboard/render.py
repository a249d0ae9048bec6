"""Rendering a leaderboard folder: Markdown, CSV and HTML from one frame.

Layout of a leaderboard folder::

    leaderboard/reported.json          the paper's numbers (Huang et al., CVPR 2024, Table 1), marked reported
    leaderboard/results/<name>.json    byte-for-byte copies of results files (``entries.add_result``)
    leaderboard/grids/<name>.png       image grid of each added run at native size, drawn at add time
    leaderboard/verified/<name>.json   re-judgings of an entry's images (``actionbench rejudge --record``)
    leaderboard/LEADERBOARD.md, leaderboard.csv, index.html      written by ``render_leaderboard``

A personal board (``render_leaderboard(PROJECT_BOARD, runs, page_dir=personal_board_dir(runs))``)
shows the project's rows next to your runs without touching the project's folder.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from actionbench.io import atomic_write_text

from .charts import bar_chart, heat_map
from .entries import PROJECT_BOARD, add_result, default_name  # noqa: F401 - the board's API, kept importable here
from .tables import display_width
from .tables import FIELDS, LEAK_COLUMNS, LEAK_METRICS, PER_ACTION, RUN_FIELDS, SCORE_COLUMNS, board_frame, \
    collect_rows, has_leak, marker, missing, per_action, rank_text, score_text, sections, text_or

PERSONAL_BOARD = "leaderboard"  # a personal board's folder inside a run folder
COLUMNS = ("#", "method", "action %", "subject %", "total %", "n", "seeds", "preset", "run", "machine", "run date",
           "spec hash", "status")
LEFT_COLUMNS = ("method", "preset", "run", "machine", "run date", "spec hash", "status")  # left-aligned in Markdown
LEAK_HEADERS = ("leak %", "leak on animals %", "total clean %")  # after total %, in tables whose judge reads context
WRAPPED = ("machine", "status")  # long cells the page lets wrap
INTRO = (
    "Per generated image a judge answers two yes/no questions: is the target action shown, is the target "
    "subject shown. *Action* and *subject* are the percentages of yes; *total* counts an image only when both "
    "are yes on that same image. Measured rows show a 95% clustered interval in brackets (actions, with their "
    "training seeds, and subjects resampled). Rows are ranked by total only within one dataset, backbone and "
    "judge (name, version and model): never across them."
)
READING_DOC = Path(__file__).resolve().parents[2] / "docs" / "reading-the-leaderboard.md"
HOW_TO_READ = (
    ("Intervals", "the 95% interval treats actions (with their training seeds) and subjects as the sampled units: "
                  "it says where the score would land with new actions and subjects like these. Rows from files "
                  "written before clustered intervals show it recomputed from their records."),
    ("Ranks", "a rank such as 2-4 means the paired clustered comparison (`actionbench compare`) cannot tell the "
              "row from the rows at those places. Overlapping intervals alone do not decide it; the paper's rows "
              "have no records and get plain ranks. Partial and smoke-preset rows are shown but not ranked."),
    ("The floor", "a method can score by drawing benchmark poses whatever it is asked. Lift (hit rate minus "
                  "false-alarm rate; `leaderboard.csv`) and each run's confusion heat map show whether the judged "
                  "pose depends on the target; a `null` row is what the judge says when nothing was learned."),
    ("Total", "counts an image only when action and subject are both right on it, so it falls far below "
              "action x subject when a method copies the exemplars' people instead of keeping the subject."),
    ("Leak", "the share of images showing an attribute or background of the target action's context that the "
             "prompt did not ask for: lower is better, shown also for animal subjects alone. `total clean` counts "
             "an image only when action and subject are right and nothing leaked. Only judges that read context "
             "(e.g. mini-v2) measure it; rows are still ranked by total."),
    ("Status", "`verified by rejudge`: someone with the images re-judged the entry with the same judge and the "
               "verdicts agreed. `legacy`: a file from before image hashes; nothing ties its numbers to images. "
               "`partial`, `smoke preset`, `test backbone`: not the full protocol."),
    ("Seeds, run, machine", "training seeds per action, the run's name and its machine: CPU training rounds "
                            "differently across CPUs, so two runs of one spec are two rows."),
)


# --- one frame, three renderings ---------------------------------------------------------------


def table_columns(leak: bool) -> list[str]:
    """The headers of a judge's table: ``COLUMNS``, with the leak scores after ``total %`` when it has them."""
    at = COLUMNS.index("total %") + 1
    return [*COLUMNS[:at], *(LEAK_HEADERS if leak else ()), *COLUMNS[at:]]


def display_frame(table: pd.DataFrame, method_cell, marker_cell=marker) -> pd.DataFrame:
    """The shown columns of one judge's table, as text: rank (range), method, scores with intervals, run facts.

    The leak columns appear only in a table where some row has leak: the tables of judges that do not
    read context stay as they always were."""
    leak = has_leak(table)
    cells = [[rank_text(row), method_cell(row), score_text(row, "action"), score_text(row, "subject"),
              score_text(row, "total"), *(score_text(row, m) for m in (LEAK_METRICS if leak else ())),
              text_or(row["n"]), text_or(row["seeds"]), text_or(row["preset"]),
              text_or(row["run_name"]), text_or(row["machine"]), text_or(row["run_date"]), text_or(row["spec_hash"]),
              marker_cell(row)]
             for row in table.to_dict("records")]
    return pd.DataFrame(cells, columns=table_columns(leak))


def reading_link(page_dir: str | Path | None) -> str:
    """Where the page links ``docs/reading-the-leaderboard.md``: relative to the page where the checkout has it."""
    if page_dir is not None and READING_DOC.is_file():
        return Path(os.path.relpath(READING_DOC, Path(page_dir).resolve())).as_posix()
    return "docs/reading-the-leaderboard.md"


def how_to_read_markdown(page_dir: str | Path | None) -> list[str]:
    lines = ["## How to read the leaderboard", ""]
    lines += [f"- **{title}**: {text}" for title, text in HOW_TO_READ]
    return lines + ["", f"More: [How to read the leaderboard]({reading_link(page_dir)}).", ""]


def md_text(value) -> str:
    """A string from a results file as Markdown text: HTML escaped, so a run named ``<script>`` is shown,
    not run, where the Markdown is rendered; its backticks too, so it cannot open a code span."""
    return html.escape(str(value), quote=False).replace("`", "&#96;")


def md_code(value) -> str:
    """A string from a results file as inline code: in backticks (where nothing is HTML), or as an escaped
    ``<code>`` element where it holds a backtick of its own."""
    text = str(value)
    return f"<code>{md_text(text)}</code>" if "`" in text else f"`{text}`"


def markdown_table(frame: pd.DataFrame, left: Iterable[str] = LEFT_COLUMNS, markup: Iterable[str] = ("method",)) \
        -> list[str]:
    """A GitHub pipe table of a text frame (pandas' ``to_markdown`` needs ``tabulate``, not a dependency); cells
    are escaped (``md_text``) but for the ``markup`` columns, which the caller built from escaped parts."""
    left, markup = set(left), set(markup)
    lines = ["| " + " | ".join(frame.columns) + " |",
             "|" + "|".join("---" if c in left else "---:" for c in frame.columns) + "|"]
    for row in frame.itertuples(index=False):
        cells = (str(cell) if column in markup else md_text(cell) for column, cell in zip(frame.columns, row))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def _reported_sources(frame: pd.DataFrame) -> list[str]:
    return sorted({s for s in frame.loc[frame["kind"] == "reported", "source"] if not missing(s) and s})


def render_markdown(frame: pd.DataFrame, page_dir: str | Path | None = None) -> str:
    """LEADERBOARD.md: how to read it, then one table per dataset, backbone and judge (``board_frame`` order)."""
    def method_cell(row):
        label = md_text(row["label"])
        return label if row["kind"] == "measured" else f"{label} ({md_code(row['method'])})"

    lines = ["# ActionBench leaderboard", "", INTRO, "", *how_to_read_markdown(page_dir)]
    for (dataset, backbone), tables in sections(frame):
        lines += [f"## Dataset {md_code(dataset)}, backbone {md_code(backbone)}", ""]
        for judge_label, table in tables:
            lines += [f"### Judge: {md_text(judge_label)}", "", *markdown_table(display_frame(table, method_cell)), ""]
    sources = _reported_sources(frame)
    if sources:
        lines += ["Reported rows: " + md_text("; ".join(sources)) + ". Numbers as printed; n = 368 is inferred "
                  "(every value is a multiple of 1/368); the paper's 23 subjects are not public.", ""]
    return "\n".join(lines)


def _percent(value) -> float | None:
    return None if missing(value) else round(100 * value, 4)


def render_csv(frame: pd.DataFrame) -> str:
    """leaderboard.csv: every row with all its fields, accuracies in percent (4 decimals), per-action columns.

    The leak columns (``leak_pct``, ``leak_animal_pct``, ``total_clean_pct`` and their intervals) are always
    there, so one file reads the same whatever judges it holds; they are empty for judges without leak."""
    out = frame[list(FIELDS)].copy()
    for column in (*SCORE_COLUMNS, *LEAK_COLUMNS):  # action, action_ci_lo, action_ci_hi, subject, ..., leak, ...
        out[f"{column}_pct"] = frame[column].map(_percent)
    for column in RUN_FIELDS:
        out[column] = frame[column]
    for column in (c for c in frame.columns if c.startswith(PER_ACTION)):
        out[f"{column}_pct"] = frame[column].map(_percent)
    return out.to_csv(index=False, lineterminator="\n", na_rep="")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1440px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3} td:nth-child(2),th:nth-child(2),td:nth-child(n+8),th:nth-child(n+8){text-align:left}
td:nth-child(10),td:nth-child(13){white-space:normal;min-width:12rem;font-size:.8rem}
tr:has(.reported) td{color:#555;font-style:italic}
.run{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin-bottom:2rem}
.run img{max-width:100%;border:1px solid #ccc}
.run img.grid{image-rendering:pixelated;height:auto}
.meta{font-size:.85rem;color:#444} code{font-size:.85em}
.howto{font-size:.9rem;max-width:900px} .howto li{margin:.2rem 0}
"""


def leak_css() -> str:
    """The alignment of a leak table (``class="board leak"``): ``CSS`` places its left-aligned and wrapping
    columns by position, and the three leak columns move the run facts three places to the right."""
    columns = table_columns(leak=True)
    place = {name: i + 1 for i, name in enumerate(columns)}
    left = ",".join(f".leak td:nth-child({place[c]}),.leak th:nth-child({place[c]})" for c in LEFT_COLUMNS)
    wrapped = ",".join(f".leak td:nth-child({place[c]})" for c in WRAPPED)
    return (".leak td,.leak th{text-align:right;white-space:nowrap;min-width:0;font-size:inherit}\n"
            f"{left}{{text-align:left}}\n{wrapped}{{white-space:normal;min-width:12rem;font-size:.8rem}}\n")


def _code(text: str) -> str:
    """`name` (already escaped) as <code>name</code>."""
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _run_meta(row: Mapping) -> str:
    """The facts line of a run on the page: spec, judge, seeds, machine, interval, floor, status, links."""
    esc = html.escape
    facts = [f'method <code>{esc(row["method"])}</code> v{esc(str(row["method_version"]))}, dataset '
             f'<code>{esc(row["dataset"])}</code>, backbone <code>{esc(row["backbone"])}</code>, judge '
             f'{esc(row["judge_label"])}, preset {esc(text_or(row["preset"], "none"))}, spec '
             f'<code>{esc(text_or(row["spec_hash"], "-"))}</code>, run {esc(text_or(row["run_name"], "-"))} '
             f'({esc(text_or(row["run_date"], "-"))}), n = {row["n"]}, training seeds {text_or(row["seeds"])}'
             + (f' (total per seed: {esc(row["per_seed"])})' if not missing(row.get("per_seed")) else "")]
    facts.append(f'machine: {esc(text_or(row["machine"]))}')
    facts.append(f'interval: {esc(text_or(row["interval"]))}')
    if not missing(row["lift"]):
        mutual = "" if missing(row["mutual_information_bits"]) else \
            f', mutual information {row["mutual_information_bits"]:.2f} bits'
        facts.append(f'lift {100 * row["lift"]:.1f} points{mutual}')
    facts.append(f'status: {esc(marker(row))}' + (f'; {esc(row["verified"])}' if not missing(row["verified"]) else ""))
    facts.append(f'record set <code>{esc(text_or(row["records_sha256"], "-"))[:16]}</code>; '
                 f'<a href="{esc(text_or(row["results_file"], ""))}">results JSON</a>')
    return "; ".join(facts)


def render_html(frame: pd.DataFrame, page_dir: str | Path | None = None) -> str:
    """index.html: how to read it, the tables (``DataFrame.to_html``), then each run's grid, per-action bars
    and confusion heat map. Static: no scripts, no network; grids are scaled up by a whole factor with
    ``image-rendering: pixelated``."""
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
           f'<title>ActionBench leaderboard</title><style>{CSS}{leak_css()}</style></head><body>',
           '<h1>ActionBench leaderboard</h1>', f'<p>{esc(INTRO).replace("*", "")}</p>',
           '<section class="howto" id="how-to-read"><h2>How to read the leaderboard</h2><ul>',
           *[f'<li><b>{esc(title)}</b>: {_code(esc(text))}</li>' for title, text in HOW_TO_READ],
           f'</ul><p>More: <a href="{esc(reading_link(page_dir))}">How to read the leaderboard</a>.</p></section>']
    for (dataset, backbone), tables in sections(frame):
        out.append(f'<h2>Dataset <code>{esc(dataset)}</code>, backbone <code>{esc(backbone)}</code></h2>')
        for judge_label, table in tables:
            shown = display_frame(table, method_cell, marker_cell)
            for column in shown.columns.drop(["method", "status"]):  # method and status cells are markup already
                shown[column] = shown[column].map(esc)
            out.append(f'<h3>Judge: {esc(judge_label)}</h3>')
            classes = "board leak" if has_leak(table) else "board"
            out.append(shown.to_html(index=False, escape=False, border=0, classes=classes))
    sources = _reported_sources(frame)
    if sources:
        out.append(f'<p class="meta">Reported rows: {esc("; ".join(sources))}. Numbers as printed; n = 368 is '
                   'inferred; the paper\'s 23 subjects are not public.</p>')
    measured = frame[frame["kind"] == "measured"].sort_values("order").to_dict("records")
    if measured:
        out.append('<h2>Runs</h2>')
    for row in measured:
        name = esc(row["name"])
        out.append(f'<section id="run-{name}"><h3>{name}</h3>')
        out.append(f'<p class="meta">{_run_meta(row)}</p><div class="run">')
        if not missing(row["grid"]) and row["grid"]:
            width = display_width(None if missing(row["grid_width"]) else int(row["grid_width"]))
            leaked = ", orange: right but leaking" if not missing(row["leak"]) else ""
            out.append(f'<img class="grid" src="{esc(row["grid"])}"' + (f' width="{width}"' if width else "")
                       + f' alt="image grid of {name}: rows actions, columns subjects; '
                       f'green border: action and subject right{leaked}, red: not" loading="lazy">')
        if per_action(row):
            out.append(bar_chart(row))
        confusion = row.get("confusion")
        if isinstance(confusion, Mapping) and confusion.get("rows"):
            out.append(heat_map(confusion, row["name"]))
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
        "markdown": atomic_write_text(page / "LEADERBOARD.md", render_markdown(frame, page)),
        "csv": atomic_write_text(page / "leaderboard.csv", render_csv(frame)),
        "html": atomic_write_text(page / "index.html", render_html(frame, page)),
    }


def personal_board_dir(runs: Iterable[str | Path]) -> Path:
    """Where a personal board of ``runs`` goes: ``<first run folder>/leaderboard``."""
    first = Path(next(iter(runs)))
    return (first if first.is_dir() else first.parent) / PERSONAL_BOARD
