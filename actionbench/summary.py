"""The closing line of a run: each metric with its 95 % interval, and the ``null`` floor's total for
the same suite where a leaderboard at hand has it (so the number can be read without opening one)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .io import read_json
from .results.schema import judge_label

FLOOR_METHOD = "null"
"""The method that learns nothing (it draws the subject alone): the total any method must beat."""


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _with_interval(entry: Mapping) -> str:
    ci = entry.get("ci95")
    return _pct(entry["mean"]) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def board_dirs() -> list[Path]:
    """Leaderboards to look in: ``./leaderboard`` and the checkout's, when installed from one."""
    return list(dict.fromkeys([Path("leaderboard").resolve(), Path(__file__).resolve().parents[1] / "leaderboard"]))


def find_floor(record: Mapping, boards: Iterable[Path]) -> tuple[Mapping, Path] | None:
    """The ``null`` entry (``results/SUITE-null.json``; the dataset's name for records without a suite) with
    the record's dataset, subjects and prompts, and judge (name and version), or None: a floor judged otherwise is
    not the same scale."""
    suite = record["spec"].get("suite") or record["spec"].get("dataset")  # older records name no suite
    if not suite or record["spec"]["method"] == FLOOR_METHOD:
        return None
    for board in boards:
        path = Path(board) / "results" / f"{suite}-{FLOOR_METHOD}.json"
        if not path.is_file():
            continue
        try:
            floor = read_json(path)
        except Exception:  # a damaged board entry costs the floor, never the run's summary
            continue
        same = (floor["spec"].get("dataset") == record["spec"].get("dataset")
                and floor["spec"].get("custom") == record["spec"].get("custom")  # your own subjects: another scale
                and floor["judge"].get("name") == record["judge"].get("name")
                and str(floor["judge"].get("version")) == str(record["judge"].get("version")))
        if same:
            return floor, path
    return None


def closing_lines(record: Mapping, floor: tuple[Mapping, Path] | None = None) -> list[str]:
    """``METHOD on DATASET (BACKBONE, judge NAME (version N)): action ..% [lo, hi] ...`` and the floor's line."""
    m, spec, judge = record["metrics"], record["spec"], record["judge"]
    kind = (m.get("interval") or {}).get("kind", "")
    lines = [
        f"{spec['method']} on {spec['dataset']} ({spec['backbone']['id']}, judge "
        f"{judge_label(judge['name'], judge.get('version'))}): action {_with_interval(m['action'])}  "
        f"subject {_with_interval(m['subject'])}  total {_with_interval(m['total'])}  "
        f"(n={m['n']}; 95% intervals{', ' + kind if kind else ''})"
    ]
    if floor is not None:
        entry, path = floor
        lines.append(f"floor: {FLOOR_METHOD} total {_with_interval(entry['metrics']['total'])} on the same suite and "
                     f"judge ({path})")
    return lines
