"""The leaderboard as one pandas DataFrame: one row per measured run or reported (paper) number.

``collect_rows`` reads a leaderboard folder (and any extra runs) into rows, ``board_frame``
puts them in display order with their rank, and ``render`` turns that one frame into the CSV,
the Markdown and the HTML tables.

Ranking rule: rows are grouped by dataset, backbone and judge (name, version and model);
they are sorted by total accuracy inside a group and never ranked across groups, so a new
judge version or dataset starts a new table (lm-evaluation-harness #2211: scores moved
when prompts changed). The paper's rows form their own judge group. A measured row's rank is
a range where the paired clustered comparison cannot separate it from others (``ranks``);
partial and smoke-preset rows are shown, marked, but not ranked.

Intervals are the clustered ones (``actionbench.results.metrics``). A file from before clustered intervals stores
the image bootstrap; its row shows the clustered interval recomputed from its records, and says so.

Leak: judges that read an image's context (mini-v2) also count per image whether it shows an
attribute or background of the target action's context signature that the prompt did not ask for
(``leak``), and whether action and subject are right with no leak (``total_clean``). A row carries
them, with the leak on animal subjects alone, where its results have them; they are shown but not
ranked by (``total`` stays the paper's measure).

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

from .entries import read_verified, records_hash
from .ranks import rank_ranges, range_text
from actionbench.run.runfolder import RESULTS_FILE, resolve_results_path

from .validate import METRICS, REPORTED_FILE, ValidationError, check_reported, entry_caveats, load_valid_results, ranked

# The columns of a row, in CSV order; every metric adds a mean and a 95% interval (fractions).
FIELDS = ("kind", "name", "method", "label", "method_version", "dataset", "backbone", "judge_name", "judge_version",
          "judge_model", "judge_pretrained", "judge_human")
SCORE_COLUMNS = tuple(f"{m}{part}" for m in METRICS for part in ("", "_ci_lo", "_ci_hi"))
LEAK_METRICS = ("leak", "leak_animal", "total_clean")  # judges that read context only; NA for the others
LEAK_COLUMNS = tuple(f"{m}{part}" for m in LEAK_METRICS for part in ("", "_ci_lo", "_ci_hi"))
RUN_FIELDS = ("n", "seeds", "complete", "ranked", "rank_range", "preset", "run_name", "machine", "run_date",
              "spec_hash", "config_hash", "manifest_sha256", "records_sha256", "interval", "per_seed", "caveats", "verified",
              "lift", "mutual_information_bits", "source", "results_file", "grid")
PER_ACTION = "per_action."  # per-action columns: per_action.<action>.<metric>


def slug(text: Any) -> str:
    """``text`` as a safe file name and HTML anchor."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "x"


def missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a cell with no value."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def display_metrics(data: Mapping) -> tuple[Mapping, str]:
    """The metrics a row shows and the name of their interval: the stored block when its interval is
    clustered; otherwise (files from before clustered intervals: the image bootstrap) the clustered one recomputed
    from the records, named as such."""
    from actionbench.results.metrics import compute_metrics
    from actionbench.results.stats import base_kind

    metrics = data["metrics"]
    stored = metrics.get("interval") if isinstance(metrics.get("interval"), Mapping) else {}
    kind = str(stored.get("kind") or "")
    if base_kind(kind) == "cluster":
        return metrics, kind
    recomputed = compute_metrics(data["records"])
    return recomputed, (f"{recomputed['interval']['kind']}, recomputed from the records (the file stores the "
                        f"{kind or 'image'} bootstrap)")


def floor_of(data: Mapping) -> Mapping:
    """The run's floor block (false alarms, lift, confusion, mutual information); computed for older files."""
    from actionbench.results.floor import floor_measures

    stored = data.get("floor")
    return stored if isinstance(stored, Mapping) else floor_measures(data["records"])


def machine_text(provenance: Mapping) -> str | None:
    """The machine's one-line summary (schema 2), else the device line older files have."""
    machine = provenance.get("machine")
    if isinstance(machine, Mapping) and machine.get("summary"):
        return str(machine["summary"])
    return provenance.get("device")


def verified_text(verified: Mapping | None) -> str | None:
    """``verified by rejudge: 368 of 368 verdicts agree (2026-12-01)`` or the disagreement it found."""
    if not verified:
        return None
    agree, n = verified.get("agree"), verified.get("n")
    when = str(verified.get("rejudged_at") or "")[:10]
    head = "verified by rejudge" if verified.get("verified") else "rejudged, NOT verified"
    return f"{head}: {agree} of {n} verdicts agree" + (f" ({when})" if when else "")


def per_seed_text(data: Mapping) -> str | None:
    """``0: 17.12; 1: 15.01`` (total % per training seed) for a run with several seeds, else None."""
    from actionbench.results.schema import per_seed_summary

    summary = data.get("per_seed") if isinstance(data.get("per_seed"), Mapping) else per_seed_summary(data["records"])
    if summary.get("count", 0) < 2:
        return None
    return "; ".join(f"{seed}: {100 * values['total']:.2f}" for seed, values in summary["per_seed"].items())


def measured_row(data: Mapping, name: str, results_file: str, grid: str | None,
                 verified: Mapping | None = None) -> dict:
    """A row from a valid results record. ``results_file`` and ``grid`` are relative to the page.

    The row keeps the record under ``_results`` (for the rank ranges and the heat map), outside the frame."""
    spec, judge, prov = data["spec"], data["judge"], data.get("provenance", {})
    metrics, interval = display_metrics(data)
    floor = floor_of(data)
    mutual = floor.get("mutual_information") or {}
    row = {
        "kind": "measured", "name": name, "method": spec["method"], "label": spec["method"],
        "method_version": str(spec.get("method_version")), "dataset": spec["dataset"],
        "backbone": spec["backbone"]["id"], "judge_name": str(judge["name"]), "judge_version": str(judge["version"]),
        "judge_model": judge.get("model"), "judge_pretrained": judge.get("pretrained"),
        "judge_human": judge.get("human"),
        "n": metrics["n"], "seeds": len(spec.get("train_seeds") or [None]), "complete": data.get("complete", True),
        "ranked": ranked(data), "preset": spec.get("preset"), "run_name": data.get("run_name"),
        "machine": machine_text(prov),
        "run_date": str(prov.get("finished_at") or prov.get("started_at") or "")[:10] or None,
        "spec_hash": data["spec_hash"], "config_hash": spec.get("config_hash"),
        "manifest_sha256": spec.get("manifest_sha256"), "records_sha256": records_hash(data), "interval": interval,
        "caveats": "; ".join(entry_caveats(data)) or None, "verified": verified_text(verified),
        "per_seed": per_seed_text(data), "lift": floor.get("lift"), "mutual_information_bits": mutual.get("bits"),
        "source": "measured", "results_file": results_file, "grid": grid, "confusion": floor.get("confusion"),
        "_results": data,
    }
    for m in METRICS:
        lo, hi = metrics[m]["ci95"] or (None, None)
        row.update({m: metrics[m]["mean"], f"{m}_ci_lo": lo, f"{m}_ci_hi": hi})
    for action, values in metrics.get("per_action", {}).items():
        row.update({f"{PER_ACTION}{action}.{m}": values[m] for m in METRICS})
    row.update(leak_scores(metrics))
    return row


def leak_scores(metrics: Mapping) -> dict:
    """``leak``, ``leak_animal`` and ``total_clean`` with their intervals, for the ones the metrics block has.

    Only judges that read context (mini-v2) write them; the others' rows leave the columns NA, which
    is how the tables know to leave them out. ``leak_animal`` is the animal subjects' own leak
    (``metrics.per_category.animal.leak``): the measure the mini-v2 pre-registration reads
    contamination off (``docs/mini-v2-preregistration.md``), so a reader finds it on the board."""
    by_category = metrics.get("per_category")
    animal = by_category.get("animal") if isinstance(by_category, Mapping) else None
    blocks = {"leak": metrics.get("leak"), "total_clean": metrics.get("total_clean"),
              "leak_animal": animal.get("leak") if isinstance(animal, Mapping) else None}
    out = {}
    for name, block in blocks.items():
        if isinstance(block, Mapping) and block.get("mean") is not None:
            lo, hi = block.get("ci95") or (None, None)
            out.update({name: block["mean"], f"{name}_ci_lo": lo, f"{name}_ci_hi": hi})
    return out


def has_leak(table: pd.DataFrame) -> bool:
    """Whether any row of a judge's table has a leak score: only then does it show the leak columns."""
    return bool(table["leak"].notna().any())


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
            "n": row.get("n"), "complete": True, "ranked": True, "run_date": row.get("date"),
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
        data = load_valid_results(path)
        verified = read_verified(board, path.stem, records_hash(data))
        rows.append(_with_grid(measured_row(data, path.stem, _link(path, page_dir),
                                            _link(grid, page_dir) if grid.is_file() else None, verified), grid))
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
    label = row["judge_name"] if missing(row.get("judge_version")) else f"{row['judge_name']}, version {row['judge_version']}"
    if not missing(row.get("judge_model")):
        pretrained = row.get("judge_pretrained")
        label += f" ({row['judge_model']}" + (f", {pretrained})" if not missing(pretrained) else ")")
    return label


def assign_rank_ranges(rows: list[dict]) -> None:
    """Set ``rank_range`` on every ranked measured row, per ranking group (``ranks.rank_ranges``)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["kind"] == "measured" and row.get("ranked") and row.get("_results") is not None:
            groups.setdefault((row["dataset"], row["backbone"], judge_label(row)), []).append(row)
    for members in groups.values():
        for row, (best, worst) in zip(members, rank_ranges([row["_results"] for row in members])):
            row["rank_range"] = range_text(best, worst)


def board_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as one DataFrame in display order, with ``judge_label``, ``reported_judge``, ``rank``,
    ``rank_range`` and ``order`` columns.

    Display order: by dataset and backbone; inside, measured judges (by label) before the
    paper's; inside a judge, ranked rows by total accuracy (then method, name), then the unranked
    ones (partial, smoke preset). ``rank`` counts ranked rows within one dataset, backbone and
    judge (NA for unranked rows); ``rank_range`` is the range the paired comparisons allow;
    ``order`` is the row's place in ``rows``. Per-action columns come in the order the actions
    first appear in ``rows``.
    """
    assign_rank_ranges(rows)
    per_action = list(dict.fromkeys(k for row in rows for k in row if k.startswith(PER_ACTION)))
    columns = [*FIELDS, *SCORE_COLUMNS, *LEAK_COLUMNS, *RUN_FIELDS, "grid_width", "confusion", *per_action]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    floats = (*SCORE_COLUMNS, *LEAK_COLUMNS, "lift", "mutual_information_bits", *per_action)
    frame = frame.astype({"n": "Int64", "seeds": "Int64", "grid_width": "Int64", **{c: "float64" for c in floats}})
    frame["ranked"] = frame["ranked"].fillna(True).astype(bool)
    frame["judge_label"] = [judge_label(row) for row in rows]
    frame["order"] = range(len(frame))
    frame["reported_judge"] = frame["kind"] != "measured"  # the paper's judges after the measured ones
    frame["unranked"] = ~frame["ranked"]
    frame["sort_total"] = -frame["total"].fillna(-1.0)
    group = ["dataset", "backbone", "reported_judge", "judge_label"]
    frame = frame.sort_values([*group, "unranked", "sort_total", "method", "name"], kind="stable", ignore_index=True)
    frame["rank"] = (frame.groupby([*group, "unranked"]).cumcount() + 1).astype("Int64")
    frame.loc[frame["unranked"], "rank"] = pd.NA
    return frame.drop(columns=["sort_total", "unranked"])


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


def rank_text(row: Mapping) -> str:
    """The rank shown: the range for measured rows (``2-4``), the plain rank for the paper's, ``-`` if unranked."""
    if missing(row.get("rank")):
        return "-"
    return str(row["rank_range"]) if not missing(row.get("rank_range")) else str(row["rank"])


def marker(row: Mapping) -> str:
    """``reported``, ``measured``, ``measured, verified by rejudge``, or with the row's caveats in brackets
    (``measured (partial: 3 of 368 images; smoke preset)``)."""
    if row["kind"] == "reported":
        return "reported"
    text = "measured"
    if not missing(row.get("verified")) and str(row["verified"]).startswith("verified"):
        text += ", verified by rejudge"
    elif not missing(row.get("verified")):
        text += ", rejudged: NOT verified"
    caveats = row.get("caveats")
    return f"{text} ({caveats})" if not missing(caveats) and caveats else text


def text_or(value: Any, default: str = "-") -> str:
    """``value`` as text, or ``default`` where it is missing or empty."""
    return default if missing(value) or value == "" else str(value)


DISPLAY_WIDTH = 840  # the page shows a grid at most this wide, scaled up by a whole factor


def display_width(grid_width: int | None) -> int | None:
    """The width to show a grid at in the page: a whole multiple of its own, up to ``DISPLAY_WIDTH``."""
    if not grid_width:
        return None
    return grid_width * max(1, DISPLAY_WIDTH // grid_width)


def image_width(path: str | Path) -> int | None:
    """The width of an image file in pixels (reads the header only); None if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.width
    except (OSError, UnidentifiedImageError):
        return None
