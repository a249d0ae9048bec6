"""What may enter a leaderboard: results files and the paper's reported rows, checked.

A results file is checked by ``actionbench.results.check.check_results`` (the schema lives in
``actionbench.results.schema``, beside the builder the runner uses) and, given its run folder,
by ``actionbench.results.verify.verify_run``; this module finds and reads the files, raises one
``ValidationError`` that lists every problem, and says why an entry is not a full-protocol one
(``entry_caveats``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from actionbench.custom import describe as describe_custom
from actionbench.errors import ActionBenchError, SchemaError
from actionbench.evidence import evidence_caveats
from actionbench.io import read_json
from actionbench.results.check import check_results
from actionbench.results.schema import SMOKE_PRESET, TEST_BACKBONES, is_legacy
from actionbench.results.verify import RunCheck, verify_run

REPORTED_FILE = "reported.json"
METRICS = ("action", "subject", "total")


class ValidationError(SchemaError):
    """A results (or reported) file failed validation; ``problems`` lists every finding."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source} is not a valid results file:\n- " + "\n- ".join(self.problems))


def _load(path_or_dict: str | Path | Mapping) -> tuple[Any, str]:
    if isinstance(path_or_dict, Mapping):
        return path_or_dict, "results"
    path = Path(path_or_dict)
    return read_json(path, "results file"), str(path)


def validate_results(path_or_dict: str | Path | Mapping, run_dir: str | Path | None = None) -> list[str]:
    """Every problem found in a results file or record (empty list: valid).

    Reads the file (a truncated one is a problem, not a crash) and runs
    ``actionbench.results.check.check_results`` on it: schema version, required keys and types, finite
    numbers, spec and record-set hashes, metrics recomputed from the records, protocol coverage.
    With ``run_dir`` it is also checked against that run folder (``verify_run``: spec.json, image
    hashes, judgment files, artifacts).
    """
    return validate_run(path_or_dict, run_dir).problems if run_dir is not None else _problems(path_or_dict)


def _problems(path_or_dict: str | Path | Mapping) -> list[str]:
    try:
        data, _ = _load(path_or_dict)
    except ActionBenchError as exc:
        return [str(exc)]
    return check_results(data)


def validate_run(path_or_dict: str | Path | Mapping, run_dir: str | Path) -> RunCheck:
    """``verify_run`` of a results file (or record) against ``run_dir``; an unreadable file is a problem."""
    try:
        data, _ = _load(path_or_dict)
    except ActionBenchError as exc:
        return RunCheck(problems=[str(exc)])
    return verify_run(data, run_dir)


def entry_caveats(data: Mapping) -> list[str]:
    """Why a valid results record is not a full, verifiable leaderboard entry (empty: it is one).

    Partial coverage (fewer images than the protocol, failed units, a bring-your-own subset), the
    smoke preset (by its label or by step counts at or below its own), a spec its recorded artifacts
    contradict (``actionbench.evidence``), your own subjects or prompts (``--subjects``, ``--prompts``: not the benchmark's
    protocol), a test backbone (random weights), and legacy files (no image or record hashes).
    ``leaderboard --add`` refuses such a run unless ``--allow-partial``; the board marks it and never ranks it.
    """
    caveats = []
    spec = data.get("spec") or {}
    coverage = data.get("coverage") if isinstance(data.get("coverage"), Mapping) else {}
    n = len(data.get("records") or [])
    if data.get("complete", True) is False:
        expected = coverage.get("expected")
        what = "given images" if coverage.get("declared") == "given images" else "images"
        caveats.append(f"partial: {n} of {expected} {what}" if expected else f"partial: {n} images")
        if data.get("failures"):
            caveats.append(f"{len(data['failures'])} units failed")
    if SMOKE_PRESET in str(spec.get("preset") or "").split(","):
        caveats.append("smoke preset")
    caveats += evidence_caveats(data)  # smoke read from step counts; a spec its recorded artifacts contradict
    if spec.get("custom"):
        caveats.append(describe_custom(spec["custom"]))
    backbone = (spec.get("backbone") or {}).get("id")
    if backbone in TEST_BACKBONES:
        caveats.append(f"test backbone {backbone}")
    if is_legacy(data):
        caveats.append("legacy: no image or record hashes")
    return caveats + code_caveats(data)


def code_caveats(data: Mapping) -> list[str]:
    """The code a run was made with was not one committed state: uncommitted edits, or a change
    between the start of the run and its end (``leaderboard --add`` wants ``--allow-dirty`` for these)."""
    prov = data.get("provenance") if isinstance(data.get("provenance"), Mapping) else {}
    caveats = []
    if prov.get("git_dirty") is True or any(isinstance(s, Mapping) and s.get("git_dirty") is True
                                            for s in prov.get("code_at_start") or []):
        caveats.append("dirty source")
    if prov.get("code_changed") is True:
        caveats.append("code changed during the run")
    return caveats


def ranked(data: Mapping) -> bool:
    """Whether a row takes part in the ranking: complete, not the smoke preset (fewer steps than the protocol,
    by its label or by the step counts recorded), backed by its recorded artifacts, and on the benchmark's own
    subjects and prompts."""
    spec = data.get("spec") or {}
    return (data.get("complete", True) is not False and SMOKE_PRESET not in str(spec.get("preset") or "").split(",")
            and not spec.get("custom") and not evidence_caveats(data))


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
