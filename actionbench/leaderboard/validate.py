"""What may enter a leaderboard: results files and the paper's reported rows, checked.

A results file is checked by ``actionbench.results.check_results`` (the schema lives there,
beside the builder the runner uses); this module finds and reads the files, and raises one
``ValidationError`` that lists every problem.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from actionbench.errors import ActionBenchError, SchemaError
from actionbench.io import read_json
from actionbench.results import check_results

RESULTS_FILE = "results.json"  # the runner's name for a run folder's results
REPORTED_FILE = "reported.json"
METRICS = ("action", "subject", "total")


class ValidationError(SchemaError):
    """A results (or reported) file failed validation; ``problems`` lists every finding."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source} is not a valid results file:\n- " + "\n- ".join(self.problems))


def resolve_results_path(run_dir_or_results_path: str | Path) -> Path:
    """A results JSON path from a run folder (its ``results.json``) or the path itself."""
    path = Path(run_dir_or_results_path)
    if path.is_dir():
        if (path / RESULTS_FILE).is_file():
            return path / RESULTS_FILE
        found = sorted(p.name for p in path.glob("*.json"))
        raise ActionBenchError(
            f"no {RESULTS_FILE} in {path} (JSON files there: {', '.join(found) or 'none'}); finish the run with "
            f"`actionbench judge --out {path}`, or pass the results file itself"
        )
    if not path.is_file():
        raise ActionBenchError(f"results file not found: {path}")
    return path


def _load(path_or_dict: str | Path | Mapping) -> tuple[Any, str]:
    if isinstance(path_or_dict, Mapping):
        return path_or_dict, "results"
    path = Path(path_or_dict)
    return read_json(path, "results file"), str(path)


def validate_results(path_or_dict: str | Path | Mapping) -> list[str]:
    """Every problem found in a results file or record (empty list: valid).

    Reads the file (a truncated one is a problem, not a crash) and runs
    ``actionbench.results.check_results`` on it: schema version, required keys and types, spec
    hash, metrics recomputed from the records, unique unit ids.
    """
    try:
        data, _ = _load(path_or_dict)
    except ActionBenchError as exc:
        return [str(exc)]
    return check_results(data)


def load_valid_results(path_or_dict: str | Path | Mapping) -> dict:
    """The results record of a file (or a record itself), once it is valid.

    Raises:
        ValidationError: the file cannot be read or fails ``validate_results``; every problem is listed.
    """
    try:
        data, source = _load(path_or_dict)
    except ActionBenchError as exc:
        raise ValidationError(str(path_or_dict), [str(exc)]) from None
    problems = check_results(data)
    if problems:
        raise ValidationError(source, problems)
    return dict(data)


def check_reported(data: Any) -> list[str]:
    """Every problem of a ``reported.json`` (the paper's rows): a method id and three percentages per row."""
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return ["rows is missing; expected a list of reported rows"]
    problems = []
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("method"), str):
            problems.append(f"{where}.method is missing; expected a method registry id such as 'adi'")
            continue
        for metric in METRICS:
            value = row.get(f"{metric}_pct")
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100):
                problems.append(f"{where}.{metric}_pct is {value!r}; expected a percentage between 0 and 100")
    return problems
