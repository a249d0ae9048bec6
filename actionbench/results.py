"""The results record: one JSON per run, its shape declared here once.

Like lm-evaluation-harness's ``simple_evaluate`` output: the spec and its hash, the
dataset manifest hash, method and judge versions, metrics with intervals, every
per-image record, and provenance (package versions, ActionBench's own commit, device,
wall time).

The runner builds a record with ``build_results`` (per-image records from ``image_record``);
the leaderboard and ``actionbench validate`` check one with ``check_results``. Both read the
field tables below, so the shape is written down once. Records from before this module held
the builder are unchanged, so they stay valid.
"""
from __future__ import annotations

import datetime as _dt
import math
import platform
import subprocess
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

SCHEMA_VERSION = 1
PACKAGES = ("actionbench", "torch", "diffusers", "transformers", "accelerate", "open-clip-torch", "numpy", "pillow",
            "safetensors", "scikit-learn")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_commit() -> tuple[str | None, bool | None]:
    """ActionBench's own git commit and dirty flag (of the installed source, not the cwd)."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores)"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(device: str, started_at: str, wall_time_s: float, stage_times: dict | None = None,
               world_size: int = 1) -> dict:
    commit, dirty = source_commit()
    return {
        "actionbench_version": package_versions().get("actionbench"),
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "device": device_description(device),
        "world_size": world_size,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "started_at": started_at,
        "finished_at": now_iso(),
        "wall_time_s": round(wall_time_s, 3),
        "stage_times_s": {k: round(v, 3) for k, v in (stage_times or {}).items()},
        "command": " ".join(sys.argv),
    }


# --- the record's shape -----------------------------------------------------------------------
# Field -> accepted JSON types. The builder below fills every field; ``check_results`` checks them.

_NONE = type(None)
TOP_FIELDS = {"run_name": str, "spec": dict, "spec_hash": str, "judge": dict, "metrics": dict, "records": list,
              "provenance": dict}
REQUIRED_KEYS = ("schema_version", *TOP_FIELDS)
SPEC_FIELDS = {"method": str, "method_version": (str, int), "method_config": dict, "config_hash": str,
               "backbone": dict, "dataset": str, "manifest_sha256": str, "protocol": dict, "preset": (str, _NONE)}
JUDGE_FIELDS = {"name": str, "version": (str, int), "human": bool}
RECORD_FIELDS = {"unit_id": str, "action_id": str, "subject_id": str, "k": int, "seed": int, "image": str,
                 "action_ok": bool, "subject_ok": bool, "detail": dict}
PROVENANCE_FIELDS = {"actionbench_version": (str, _NONE), "git_commit": (str, _NONE), "git_dirty": (bool, _NONE),
                     "packages": dict, "device": str, "python": str, "platform": str, "started_at": str,
                     "finished_at": str, "wall_time_s": (int, float)}
TOLERANCE = 1e-6  # stored metrics may differ from recomputed ones by float noise only (far below 1/368)
MAX_LISTED = 10  # problems listed per kind before "... and N more"


def image_record(unit_id: str, action_id: str, subject_id: str, k: int, seed: int, image: str, action_ok: bool,
                 subject_ok: bool, detail: dict) -> dict:
    """One per-image record (``RECORD_FIELDS``): the unit, its image path relative to the run folder,
    the judge's two answers and its detail (scores, prompts), stored as given."""
    return {"unit_id": unit_id, "action_id": action_id, "subject_id": subject_id, "k": k, "seed": seed,
            "image": image, "action_ok": action_ok, "subject_ok": subject_ok, "detail": detail}


def build_results(run_name: str, spec: dict, judge: dict, records: list[dict], failures: list[str],
                  expected_records: int, provenance: dict, subject_categories: Mapping[str, str] | None = None) -> dict:
    """The results record of a run, its keys in the order they are written.

    Args:
        run_name: the run folder's name.
        spec: the recorded spec (``spec.json``); its stable hash is stored beside it.
        judge: the judge's ``describe()`` (name, version, human, model...); its ``per_image_metrics``
            (e.g. leak) are summarised beside action, subject and total.
        records: ``image_record`` dicts, one per judged image.
        failures: ids of the units that failed (e.g. a diverging loss).
        expected_records: how many images the protocol asks for; fewer records means incomplete.
        provenance: ``provenance(...)`` of this run.
        subject_categories: subject id -> category (the dataset's); every metric is also given per category.
    """
    from .hashing import stable_hash
    from .metrics import compute_metrics

    return {
        "schema_version": SCHEMA_VERSION,
        "run_name": run_name,
        "spec": spec,
        "spec_hash": stable_hash(spec),
        "judge": judge,
        "metrics": compute_metrics(records, per_image_metrics=tuple(judge.get("per_image_metrics") or ()),
                                   subject_categories=subject_categories),
        "records": records,
        "failures": failures,
        "complete": len(records) == expected_records and not failures,
        "provenance": provenance,
    }


def check_results(record: Any) -> list[str]:
    """Every problem found in a results record (empty list: valid).

    Checks the schema version, required keys and their types, that ``spec_hash`` is the stable
    hash of ``spec``, that image paths stay inside the run folder, that unit ids are unique, that
    ``metrics.n`` is the number of records and that the metrics equal those recomputed from the
    records (within ``TOLERANCE``). Each problem names the field and the fix.
    """
    if not isinstance(record, Mapping):
        return [f"a results file holds one JSON object, found {type(record).__name__}"]
    found = record.get("schema_version")
    if found != SCHEMA_VERSION:
        return [f"schema_version is {found!r}, this ActionBench reads {SCHEMA_VERSION}; "
                + ("upgrade actionbench (pip install -U actionbench) to read newer results"
                   if isinstance(found, int) and found > SCHEMA_VERSION
                   else "rewrite the results with the current runner (`actionbench judge --out RUN`)")]
    problems: list[str] = []
    _check_fields(record, TOP_FIELDS, "", problems)
    _check_spec(record, problems)
    if isinstance(record.get("judge"), dict):
        _check_fields(record["judge"], JUDGE_FIELDS, "judge.", problems)
    if isinstance(record.get("provenance"), dict):
        _check_fields(record["provenance"], PROVENANCE_FIELDS, "provenance.", problems)
    records = record.get("records")
    if not isinstance(records, list):
        return problems
    if not records:
        problems.append("records is empty: nothing was judged; run `actionbench judge --out RUN` first")
    record_problems = _check_records(records)
    problems.extend(_first(record_problems, "problems in records"))
    problems.extend(_duplicated_units(records))
    metrics = record.get("metrics")
    if isinstance(metrics, dict) and not record_problems:
        problems.extend(_check_metrics(metrics, records))
    return problems


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {str: "string", int: "integer", float: "number", bool: "true/false", dict: "object", list: "list",
             _NONE: "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _type_ok(value: Any, types) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types:  # bool is an int to Python, not to JSON readers
        return False
    return isinstance(value, types)


def _check_fields(obj: Mapping, fields: Mapping[str, Any], where: str, problems: list[str]) -> None:
    for key, types in fields.items():
        if key not in obj:
            problems.append(f"{where}{key} is missing (expected {_type_name(types)}); "
                            "write results with actionbench's runner, which fills every field")
        elif not _type_ok(obj[key], types):
            problems.append(f"{where}{key} is {obj[key]!r} ({type(obj[key]).__name__}); expected {_type_name(types)}")


def _first(problems: list[str], what: str) -> list[str]:
    """The first ``MAX_LISTED`` problems and a count of the rest."""
    more = len(problems) - MAX_LISTED
    return problems[:MAX_LISTED] + ([f"... and {more} more {what}"] if more > 0 else [])


def _check_spec(record: Mapping, problems: list[str]) -> None:
    from .hashing import stable_hash

    spec = record.get("spec")
    if not isinstance(spec, dict):
        return
    _check_fields(spec, SPEC_FIELDS, "spec.", problems)
    backbone = spec.get("backbone")
    if isinstance(backbone, dict) and not isinstance(backbone.get("id"), str):
        problems.append(f"spec.backbone.id is {backbone.get('id')!r}; expected the backbone id string, e.g. 'sd21'")
    if isinstance(record.get("spec_hash"), str) and record["spec_hash"] != stable_hash(spec):
        problems.append(
            f"spec_hash is {record['spec_hash']!r} but stable_hash(spec) is {stable_hash(spec)!r}: the spec was "
            "edited after the run; restore the run's spec.json, or rerun to get a new results file"
        )


def _check_records(records: list) -> list[str]:
    """Problems of the per-image records: their fields and image paths."""
    problems: list[str] = []
    for i, r in enumerate(records):
        where = f"records[{i}]"
        if not isinstance(r, dict):
            problems.append(f"{where} is {type(r).__name__}; expected an object")
            continue
        if isinstance(r.get("unit_id"), str):
            where = f"records[{i}] ({r['unit_id']})"
        _check_fields(r, RECORD_FIELDS, f"{where}.", problems)
        image = r.get("image")
        if isinstance(image, str) and (Path(image).is_absolute() or ".." in Path(image).parts):
            problems.append(f"{where}.image is {image!r}; it must be relative to the run folder, "
                            "e.g. images/cheer/man/0.png")
    return problems


def _duplicated_units(records: list) -> list[str]:
    counts = Counter(r.get("unit_id") for r in records if isinstance(r, dict))
    return [f"unit_id {unit_id!r} appears {count} times in records; each image is recorded once "
            "(merge shards by judging the shared run folder, not by concatenating records)"
            for unit_id, count in counts.items() if count > 1]


def _check_metrics(metrics: dict, records: list) -> list[str]:
    from .metrics import recompute_metrics

    problems = []
    if metrics.get("n") != len(records):
        problems.append(f"metrics.n is {metrics.get('n')!r} but there are {len(records)} records")
    try:
        expected = recompute_metrics(records, metrics)  # the interval kind the block says it has
    except (ValueError, TypeError) as exc:
        return problems + [f"metrics cannot be recomputed from the records: {exc}"]
    expected.pop("n", None)
    mismatches: list[str] = []
    _compare(expected, metrics, "metrics", mismatches)
    if mismatches:
        problems += _first(mismatches, "metric mismatches")
        problems.append("the metrics do not match the records (edited by hand, or records changed): "
                        "recompute them with actionbench.metrics.compute_metrics(records)")
    return problems


def _compare(expected: Any, stored: Any, where: str, out: list[str]) -> None:
    """Every leaf of ``expected`` must be in ``stored`` (numbers within TOLERANCE)."""
    if isinstance(expected, dict):
        if not isinstance(stored, dict):
            out.append(f"{where} is {stored!r}; expected an object")
            return
        for key, value in expected.items():
            if key not in stored:
                out.append(f"{where}.{key} is missing")
            else:
                _compare(value, stored[key], f"{where}.{key}", out)
        for key in stored:
            if key not in expected and where.endswith(("per_action", "per_subject")):
                out.append(f"{where}.{key} is stored but no record has {where.rsplit('_', 1)[-1]} '{key}'")
    elif isinstance(expected, list):
        if not isinstance(stored, list) or len(stored) != len(expected):
            out.append(f"{where} is {stored!r} but the records give {expected!r}")
            return
        for i, (e, s) in enumerate(zip(expected, stored)):
            _compare(e, s, f"{where}[{i}]", out)
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if not (isinstance(stored, (int, float)) and not isinstance(stored, bool)
                and math.isclose(stored, expected, rel_tol=0, abs_tol=TOLERANCE)):
            out.append(f"{where} is {stored!r} but the records give {expected!r}")
    elif expected != stored:
        out.append(f"{where} is {stored!r} but the records give {expected!r}")
