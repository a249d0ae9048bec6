"""The leaderboard as one pandas DataFrame: one row per measured run or reported (paper) number.

``collect_rows`` reads a leaderboard folder (and any extra runs) into rows, ``board_frame``
puts them in display order with their rank, and ``render`` turns that one frame into the CSV,
the Markdown and the HTML tables.

Ranking rule: rows are grouped by dataset, backbone and judge (name, version and model);
they are sorted by total accuracy inside a group and never ranked across groups, so a new
judge version or dataset starts a new table (lm-evaluation-harness #2211: scores moved
when prompts changed). The paper's rows form their own judge group.

Accuracies in the frame are fractions; the tables show percentages.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd

from actionbench.io import TMP_MARKER, read_json

from .grids import image_width
from .validate import METRICS, REPORTED_FILE, RESULTS_FILE, ValidationError, check_reported, load_valid_results, \
    resolve_results_path

# The columns of a row, in CSV order; every metric adds a mean and a 95% interval (fractions).
FIELDS = ("kind", "name", "method", "label", "method_version", "dataset", "backbone", "judge_name", "judge_version",
          "judge_model", "judge_pretrained", "judge_human")
SCORE_COLUMNS = tuple(f"{m}{part}" for m in METRICS for part in ("", "_ci_lo", "_ci_hi"))
RUN_FIELDS = ("n", "complete", "preset", "run_name", "run_date", "spec_hash", "config_hash", "manifest_sha256",
              "source", "results_file", "grid")
PER_ACTION = "per_action."  # per-action columns: per_action.<action>.<metric>


def slug(text: Any) -> str:
    """``text`` as a safe file name and HTML anchor."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "x"


def missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a cell with no value."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def measured_row(data: Mapping, name: str, results_file: str, grid: str | None) -> dict:
    """A row from a valid results record. ``results_file`` and ``grid`` are relative to the page."""
    spec, judge, metrics, prov = data["spec"], data["judge"], data["metrics"], data.get("provenance", {})
    row = {
        "kind": "measured", "name": name, "method": spec["method"], "label": spec["method"],
        "method_version": str(spec.get("method_version")), "dataset": spec["dataset"],
        "backbone": spec["backbone"]["id"], "judge_name": str(judge["name"]), "judge_version": str(judge["version"]),
        "judge_model": judge.get("model"), "judge_pretrained": judge.get("pretrained"),
        "judge_human": judge.get("human"),
        "n": metrics["n"], "complete": data.get("complete", True), "preset": spec.get("preset"),
        "run_name": data.get("run_name"),
        "run_date": str(prov.get("finished_at") or prov.get("started_at") or "")[:10] or None,
        "spec_hash": data["spec_hash"], "config_hash": spec.get("config_hash"),
        "manifest_sha256": spec.get("manifest_sha256"), "source": "measured", "results_file": results_file,
        "grid": grid,
    }
    for m in METRICS:
        lo, hi = metrics[m]["ci95"] or (None, None)
        row.update({m: metrics[m]["mean"], f"{m}_ci_lo": lo, f"{m}_ci_hi": hi})
    for action, values in metrics.get("per_action", {}).items():
        row.update({f"{PER_ACTION}{action}.{m}": values[m] for m in METRICS})
    return row


def load_reported(path: str | Path, relative_to: str | Path | None = None) -> list[dict]:
    """The paper's rows from ``reported.json`` (percentages there; fractions in the rows).

    Raises:
        ValidationError: a row lacks its method or a percentage.
    """
    path = Path(path)
    data = read_json(path, "reported results")
    problems = check_reported(data)
    if problems:
        raise ValidationError(str(path), problems)
    rows = []
    for row in data["rows"]:
        rows.append({
            "kind": "reported", "name": f"reported-{slug(row['method'])}", "method": row["method"],
            "label": row.get("label", row["method"]), "dataset": str(row.get("dataset", "v1")),
            "backbone": str(row.get("backbone", "sd21")), "judge_name": str(row.get("judge", "paper")),
            "n": row.get("n"), "complete": True, "run_date": row.get("date"),
            "source": row.get("source", data.get("source")),
            "results_file": os.path.relpath(path, relative_to) if relative_to is not None else path.name,
            **{m: row[f"{m}_pct"] / 100.0 for m in METRICS},
        })
    return rows


def collect_rows(board: str | Path, extra_results: Iterable[str | Path] = (), page_dir: str | Path | None = None
                 ) -> list[dict]:
    """Rows of a leaderboard folder's results, the extra runs and its ``reported.json``, in that order.

    Every results file is validated. Links (results file, grid) are relative to ``page_dir``,
    where the page is written (default: ``board``). Names are made unique (they are anchors).

    Raises:
        ValidationError: a results file or ``reported.json`` is invalid; the message names it.
    """
    board = Path(board)
    page_dir = board if page_dir is None else Path(page_dir)
    rows: list[dict] = []
    results_dir = board / "results"
    files = sorted(p for p in results_dir.glob("*.json") if not p.name.startswith(TMP_MARKER)) \
        if results_dir.is_dir() else []
    for path in files:
        grid = board / "grids" / f"{path.stem}.png"
        rows.append(_with_grid(measured_row(load_valid_results(path), path.stem, _link(path, page_dir),
                                            _link(grid, page_dir) if grid.is_file() else None), grid))
    for item in extra_results:
        path = resolve_results_path(item)
        name = path.parent.name if path.name == RESULTS_FILE else path.stem
        grid = path.parent / "grid.png"
        rows.append(_with_grid(measured_row(load_valid_results(path), slug(name), _link(path, page_dir),
                                            _link(grid, page_dir) if grid.is_file() else None), grid))
    if (board / REPORTED_FILE).is_file():
        rows.extend(load_reported(board / REPORTED_FILE, page_dir))
    seen: Counter = Counter()
    for row in rows:
        seen[row["name"]] += 1
        if seen[row["name"]] > 1:
            row["name"] = f"{row['name']}-{seen[row['name']]}"
    return rows


def _link(path: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(path, page_dir)).as_posix()


def _with_grid(row: dict, grid: Path) -> dict:
    """The grid's width in pixels, so the page can scale it up by a whole factor."""
    row["grid_width"] = image_width(grid) if row["grid"] else None
    return row


def judge_label(row: Mapping) -> str:
    """``name vVERSION (model, pretrained)``: the judge group a row is ranked in."""
    label = row["judge_name"] if missing(row.get("judge_version")) else f"{row['judge_name']} v{row['judge_version']}"
    if not missing(row.get("judge_model")):
        pretrained = row.get("judge_pretrained")
        label += f" ({row['judge_model']}" + (f", {pretrained})" if not missing(pretrained) else ")")
    return label


def board_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as one DataFrame in display order, with ``judge_label``, ``reported_judge``, ``rank``
    and ``order`` columns.

    Display order: by dataset and backbone; inside, measured judges (by label) before the
    paper's; inside a judge, by total accuracy (then method, name). ``rank`` counts within
    one dataset, backbone and judge; ``order`` is the row's place in ``rows``. Per-action
    columns come in the order the actions first appear in ``rows``.
    """
    per_action = list(dict.fromkeys(k for row in rows for k in row if k.startswith(PER_ACTION)))
    columns = [*FIELDS, *SCORE_COLUMNS, *RUN_FIELDS, "grid_width", *per_action]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame = frame.astype({"n": "Int64", "grid_width": "Int64",
                          **{c: "float64" for c in (*SCORE_COLUMNS, *per_action)}})
    frame["judge_label"] = [judge_label(row) for row in rows]
    frame["order"] = range(len(frame))
    frame["reported_judge"] = frame["kind"] != "measured"  # the paper's judges after the measured ones
    frame["sort_total"] = -frame["total"].fillna(-1.0)
    frame = frame.sort_values(["dataset", "backbone", "reported_judge", "judge_label", "sort_total", "method", "name"],
                              kind="stable", ignore_index=True)
    frame["rank"] = frame.groupby(["dataset", "backbone", "reported_judge", "judge_label"]).cumcount() + 1
    return frame.drop(columns=["sort_total"])


def sections(frame: pd.DataFrame) -> Iterator[tuple[tuple[str, str], list[tuple[str, pd.DataFrame]]]]:
    """``((dataset, backbone), [(judge label, its rows), ...])`` in display order."""
    for section, rows in frame.groupby(["dataset", "backbone"], sort=False):
        yield section, [(label, table) for (_, label), table in rows.groupby(["reported_judge", "judge_label"],
                                                                             sort=False)]


def per_action(row: Mapping) -> dict[str, dict[str, float]]:
    """``{action: {metric: fraction}}`` of a row, for the actions it has."""
    out: dict[str, dict[str, float]] = {}
    for key, value in row.items():
        if isinstance(key, str) and key.startswith(PER_ACTION) and not missing(value):
            action, metric = key[len(PER_ACTION):].rsplit(".", 1)
            out.setdefault(action, {})[metric] = float(value)
    return out


def pct(value: Any, digits: int = 2) -> str:
    return "-" if missing(value) else f"{100 * value:.{digits}f}"


def score_text(row: Mapping, metric: str) -> str:
    """``mean [lo, hi]`` in percent; the interval only where there is one."""
    text = pct(row[metric])
    lo, hi = row[f"{metric}_ci_lo"], row[f"{metric}_ci_hi"]
    if not missing(lo) and not missing(hi):
        text += f" [{pct(lo, 1)}, {pct(hi, 1)}]"
    return text


def marker(row: Mapping) -> str:
    """``reported``, ``measured`` or ``measured (incomplete)``."""
    if row["kind"] == "reported":
        return "reported"
    incomplete = not missing(row["complete"]) and not bool(row["complete"])
    return "measured (incomplete)" if incomplete else "measured"


def text_or(value: Any, default: str = "-") -> str:
    """``value`` as text, or ``default`` where it is missing or empty."""
    return default if missing(value) or value == "" else str(value)
