"""Checking a results record on its own, without its run folder (``actionbench validate RESULTS.json``).

What a results file alone can show, and so what is checked here:

* its shape: schema version, required keys and their types (``actionbench.results.schema``);
* that every number is finite (``1e999`` reads as infinity);
* that ``spec_hash`` and ``spec.config_hash`` are the hashes of what they stand for;
* that each record names its unit consistently (unit id, image path, protocol seed) and that its
  verdict agrees with the judge's own predicted class where the judge records one;
* that the metrics, and (schema 2) the floor and per-seed blocks, equal those recomputed from the
  records, and that ``records_sha256`` is the hash of the record set;
* protocol coverage: every record is a unit of the dataset's protocol, and a file that says
  ``complete`` has every unit (all training seeds); bring-your-own runs declare their subset.

A file that is consistent in all of these can still be forged consistently: checking it against
its run folder is ``actionbench.results.verify``; re-judging its images is ``actionbench rejudge``
(see ``docs/reliability.md``, "What a leaderboard entry proves").
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from ..evidence import check_artifact_list
from .schema import (
    COVERAGE_FIELDS,
    JUDGE_FIELDS,
    MAX_LISTED,
    PREDICTION_LAYOUTS,
    PROVENANCE_FIELDS,
    PROVENANCE_FIELDS_V2,
    READABLE_SCHEMA_VERSIONS,
    RECORD_FIELDS,
    RECORD_FIELDS_V2,
    SCHEMA_VERSION,
    SPEC_FIELDS,
    OPTIONAL_TOP_FIELDS,
    TOLERANCE,
    TOP_FIELDS,
    TOP_FIELDS_V2,
    derived_blocks,
    expected_image_path,
    is_legacy,
    record_set_sha256,
    unit_key,
)

_NONE = type(None)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def check_results(record: Any) -> list[str]:
    """Every problem found in a results record (empty list: valid). Each problem names the field and the fix.

    Schema 2 files are checked in full (see the module docstring); schema 1 (legacy) files have no
    hashes, coverage, floor or machine blocks, and are checked for everything else.
    """
    if not isinstance(record, Mapping):
        return [f"a results file holds one JSON object, found {type(record).__name__}"]
    found = record.get("schema_version")
    if found not in READABLE_SCHEMA_VERSIONS or isinstance(found, bool):
        return [f"schema_version is {found!r}, this ActionBench reads "
                f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}; "
                + ("upgrade actionbench (pip install -U actionbench) to read newer results"
                   if isinstance(found, int) and found > SCHEMA_VERSION
                   else "rewrite the results with the current runner (`actionbench judge --out RUN`)")]
    legacy = is_legacy(record)
    problems: list[str] = listed(non_finite_numbers(record), "non-finite numbers")
    problems.extend(unknown_top_fields(record))
    _check_fields(record, TOP_FIELDS if legacy else TOP_FIELDS_V2, "", problems)
    _check_spec(record, problems)
    problems.extend(listed(check_artifact_list(record), "problems in artifacts"))
    if isinstance(record.get("judge"), dict):
        _check_fields(record["judge"], JUDGE_FIELDS, "judge.", problems)
    if isinstance(record.get("provenance"), dict):
        _check_fields(record["provenance"], PROVENANCE_FIELDS if legacy else PROVENANCE_FIELDS_V2, "provenance.",
                      problems)
    records = record.get("records")
    if not isinstance(records, list):
        return problems
    if not records:
        problems.append("records is empty: nothing was judged; run `actionbench judge --out RUN` first")
    record_problems = _check_records(records, legacy)
    problems.extend(listed(record_problems, "problems in records"))
    problems.extend(_duplicated_units(records))
    if record_problems:
        return problems
    problems.extend(listed(prediction_conflicts(records), "verdicts that contradict the judge's own prediction"))
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        problems.extend(check_metrics(metrics, records))
    if not legacy:
        problems.extend(_check_hash_and_derived(record, records))
    if isinstance(record.get("spec"), dict):
        problems.extend(check_coverage(record, records))
    return problems


# --- shape -----------------------------------------------------------------------------------------


def unknown_top_fields(record: Mapping) -> list[str]:
    """Top-level keys no writer makes: a typo (``metric``) or an addition nothing checks. A results
    hook writes under its own registered name, so those are known too. (Legacy files carry a subset.)"""
    import difflib

    from ..api.registry import RESULT_HOOKS

    known = {"schema_version", *TOP_FIELDS_V2, *OPTIONAL_TOP_FIELDS, *RESULT_HOOKS.names()}
    problems = []
    for key in sorted(set(record) - known, key=str):
        close = difflib.get_close_matches(str(key), sorted(known), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        problems.append(f"unknown top-level field '{key}': {hint}a results file holds only "
                        f"{', '.join(sorted(known))}; remove it")
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


def listed(problems: list[str], what: str) -> list[str]:
    """The first ``MAX_LISTED`` problems and a count of the rest."""
    more = len(problems) - MAX_LISTED
    return problems[:MAX_LISTED] + ([f"... and {more} more {what}"] if more > 0 else [])


def non_finite_numbers(value: Any, where: str = "") -> list[str]:
    """Every infinite or NaN number in a JSON value, by path (``1e999`` and ``NaN`` parse to these)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where or 'the file'} is {value!r}: numbers in a results file must be finite "
                "(1e999 reads as infinity); write results with actionbench's runner"]
    if isinstance(value, Mapping):
        return [p for key, item in value.items() for p in non_finite_numbers(item, f"{where}.{key}" if where else str(key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in non_finite_numbers(item, f"{where}[{i}]")]
    return []


def _check_spec(record: Mapping, problems: list[str]) -> None:
    from ..hashing import stable_hash

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
    config = spec.get("method_config")
    if isinstance(config, dict) and isinstance(spec.get("config_hash"), str) \
            and spec["config_hash"] != stable_hash(config):
        problems.append(
            f"spec.config_hash is {spec['config_hash']!r} but the hash of spec.method_config is "
            f"{stable_hash(config)!r}: the method's config was edited after the run; restore the run's spec.json"
        )
    seeds = spec.get("train_seeds")
    if seeds is not None and not (isinstance(seeds, list) and seeds and all(_type_ok(s, int) for s in seeds)
                                  and len(set(seeds)) == len(seeds)):
        problems.append(f"spec.train_seeds is {seeds!r}; expected a list of distinct integers (one per training seed)")


def _check_records(records: list, legacy: bool) -> list[str]:
    """Problems of the per-image records: their fields, unit ids, image paths and image hashes."""
    problems: list[str] = []
    fields = RECORD_FIELDS if legacy else RECORD_FIELDS_V2
    for i, r in enumerate(records):
        where = f"records[{i}]"
        if not isinstance(r, dict):
            problems.append(f"{where} is {type(r).__name__}; expected an object")
            continue
        if isinstance(r.get("unit_id"), str):
            where = f"records[{i}] ({r['unit_id']})"
        before = len(problems)
        _check_fields(r, fields, f"{where}.", problems)
        seed = r.get("train_seed")
        if seed is not None and not _type_ok(seed, int):
            problems.append(f"{where}.train_seed is {seed!r}; expected an integer")
        if len(problems) > before:
            continue
        image = r["image"]
        if Path(image).is_absolute() or ".." in Path(image).parts:
            problems.append(f"{where}.image is {image!r}; it must be relative to the run folder, "
                            "e.g. images/cheer/man/0.png")
            continue
        unit = unit_key(r["action_id"], r["subject_id"], r["k"], seed)
        if r["unit_id"] != unit:
            problems.append(f"{where}: unit_id is {r['unit_id']!r} but its action, subject, k and training seed "
                            f"make {unit!r}; a record describes one unit")
        elif image != expected_image_path(r["action_id"], r["subject_id"], r["k"], seed):
            problems.append(f"{where}.image is {image!r}; the runner writes this unit's image to "
                            f"{expected_image_path(r['action_id'], r['subject_id'], r['k'], seed)!r}")
        if not legacy and not SHA256_HEX.match(r["image_sha256"]):
            problems.append(f"{where}.image_sha256 is {r['image_sha256']!r}; expected 64 lowercase hex digits "
                            "(the SHA-256 of the image file)")
    return problems


def _duplicated_units(records: list) -> list[str]:
    counts = Counter(r.get("unit_id") for r in records if isinstance(r, dict))
    return [f"unit_id {unit_id!r} appears {count} times in records; each image is recorded once "
            "(merge shards by judging the shared run folder, not by concatenating records)"
            for unit_id, count in counts.items() if count > 1]


def prediction_conflicts(records: list[Mapping]) -> list[str]:
    """Records whose verdict contradicts the judge's own predicted class.

    Judges that record a predicted class (``detail.pose`` and ``detail.subject`` in mini,
    ``detail.action_pred`` and ``detail.subject_pred`` for the CLIP judges) decide by it: the
    action is right exactly when the predicted class is the target. A flipped verdict with the
    prediction left alone is an edit made after judging.
    """
    def has(key: str) -> bool:
        return all(isinstance(r.get("detail"), Mapping) and r["detail"].get(key) is not None for r in records)

    for action_key, subject_key in PREDICTION_LAYOUTS:
        if not records or not has(action_key):
            continue
        checks = [("action_ok", action_key, "action_id")] + ([("subject_ok", subject_key, "subject_id")]
                                                              if has(subject_key) else [])
        out = []
        for i, r in enumerate(records):
            for verdict, key, target in checks:
                predicted = str(r["detail"][key])
                if bool(r[verdict]) != (predicted == str(r[target])):
                    out.append(f"records[{i}] ({r['unit_id']}).{verdict} is {r[verdict]} but the judge's predicted "
                               f"class detail.{key} is {predicted!r} (target {r[target]!r}): the verdict was changed "
                               "after judging; judge the run again (`actionbench judge --out RUN`)")
        return out
    return []


# --- numbers recomputed from the records ---------------------------------------------------------------


def check_metrics(metrics: dict, records: list, where: str = "metrics") -> list[str]:
    """Problems of a stored metrics block against the one recomputed from ``records`` (same interval kind)."""
    from .metrics import recompute_metrics

    problems = []
    if metrics.get("n") != len(records):
        problems.append(f"{where}.n is {metrics.get('n')!r} but there are {len(records)} records")
    try:
        expected = recompute_metrics(records, metrics)  # the interval kind the block says it has
    except (ValueError, TypeError) as exc:
        return problems + [f"{where} cannot be recomputed from the records: {exc}"]
    expected.pop("n", None)
    mismatches: list[str] = []
    compare_values(expected, metrics, where, mismatches)
    if mismatches:
        problems += listed(mismatches, "metric mismatches")
        problems.append("the metrics do not match the records (edited by hand, or records changed): "
                        "recompute them with actionbench.results.metrics.compute_metrics(records)")
    return problems


def _check_hash_and_derived(record: Mapping, records: list) -> list[str]:
    problems = []
    stored = record.get("records_sha256")
    if isinstance(stored, str) and stored != record_set_sha256(records):
        problems.append(f"records_sha256 is {stored[:16]}... but the records hash to {record_set_sha256(records)[:16]}"
                        "...: the records were edited after the results were written; restore the file, or write it "
                        "again from the run folder (`actionbench judge --out RUN`)")
    mismatches: list[str] = []
    for key, expected in derived_blocks(records).items():
        if key in record:
            compare_values(expected, record[key], key, mismatches)
    if mismatches:
        problems += listed(mismatches, "mismatches in the blocks derived from the records")
        problems.append("floor and per_seed do not match the records: recompute them with "
                        "actionbench.results.schema.derived_blocks(records)")
    return problems


def compare_values(expected: Any, stored: Any, where: str, out: list[str]) -> None:
    """Every leaf of ``expected`` must be in ``stored`` (numbers within TOLERANCE)."""
    if isinstance(expected, dict):
        if not isinstance(stored, dict):
            out.append(f"{where} is {stored!r}; expected an object")
            return
        for key, value in expected.items():
            if key not in stored:
                out.append(f"{where}.{key} is missing")
            else:
                compare_values(value, stored[key], f"{where}.{key}", out)
        for key in stored:
            if key not in expected and where.endswith(("per_action", "per_subject")):
                out.append(f"{where}.{key} is stored but no record has {where.rsplit('_', 1)[-1]} '{key}'")
    elif isinstance(expected, list):
        if not isinstance(stored, list) or len(stored) != len(expected):
            out.append(f"{where} is {stored!r} but the records give {expected!r}")
            return
        for i, (e, s) in enumerate(zip(expected, stored)):
            compare_values(e, s, f"{where}[{i}]", out)
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if not (isinstance(stored, (int, float)) and not isinstance(stored, bool)
                and math.isclose(stored, expected, rel_tol=0, abs_tol=TOLERANCE)):
            out.append(f"{where} is {stored!r} but the records give {expected!r}")
    elif expected != stored:
        out.append(f"{where} is {stored!r} but the records give {expected!r}")


# --- protocol coverage -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _protocol_dataset(dataset: str):
    from ..dataset import dataset_from_manifest, load_dataset
    from ..manifest import KNOWN_VERSIONS, read_manifest

    if dataset in KNOWN_VERSIONS:
        manifest, digest = read_manifest(dataset)
        return dataset_from_manifest(manifest, digest, Path("."), dataset)
    return load_dataset(dataset)


def protocol_units(dataset: str, custom: Mapping | None = None) -> tuple[dict[str, tuple[str, str, int, int]], str]:
    """The protocol of an installed dataset: ``({unit id: (action, subject, k, seed)}, manifest SHA-256)``,
    with a spec's own subjects and prompts (its ``custom`` block) where it has them.

    A downloadable version (v1) is read from its manifest alone, so no images are needed.

    Raises:
        ActionBenchError: the dataset is unknown here (a plugin not installed, a newer version).
    """
    from ..custom import apply_custom

    data = apply_custom(_protocol_dataset(dataset), custom)
    return {u.id: (u.action_id, u.subject_id, u.k, u.seed) for u in data.units()}, data.manifest_sha256


def expected_units(spec: Mapping) -> dict[str, int]:
    """``{unit id: protocol seed}`` the spec's protocol asks for, over all its training seeds.

    Raises:
        ActionBenchError: the spec's dataset is not installed here.
    """
    units, _ = protocol_units(str(spec.get("dataset")), spec.get("custom"))
    seeds = spec.get("train_seeds") or [None]
    return {unit_key(a, s, k, train_seed): seed for a, s, k, seed in units.values() for train_seed in seeds}


def check_coverage(record: Mapping, records: list[Mapping]) -> list[str]:
    """Records against the protocol's unit list: no unit outside it, the protocol's seed for each, and
    every unit (of every training seed) when the file says it is complete."""
    from ..errors import ActionBenchError

    spec = record["spec"]
    try:
        expected = expected_units(spec)
    except ActionBenchError as exc:
        return [f"spec.dataset is {spec.get('dataset')!r}, whose protocol cannot be read here ({exc}); install "
                "that dataset (or the package that provides it) to check the file's coverage"]
    problems: list[str] = []
    outside = [r["unit_id"] for r in records if r["unit_id"] not in expected]
    if outside:
        problems.append(f"{len(outside)} records are not units of dataset {spec['dataset']!r}'s protocol "
                        f"(first: {', '.join(outside[:3])}); a results file records the protocol's units only")
    wrong_seed = [r["unit_id"] for r in records if r["unit_id"] in expected and r["seed"] != expected[r["unit_id"]]]
    if wrong_seed:
        problems.append(f"{len(wrong_seed)} records carry another seed than the protocol gives their unit (first: "
                        f"{', '.join(wrong_seed[:3])}); images are drawn with the protocol's seeds")
    recorded = {r["unit_id"] for r in records}
    missing = [u for u in expected if u not in recorded]
    failures = record.get("failures") or []
    says_complete = record.get("complete", True) is not False
    if says_complete and missing:
        problems.append(f"complete is true but {len(missing)} of the protocol's {len(expected)} units have no record "
                        f"(first: {', '.join(missing[:3])}); a complete run records every unit of every training "
                        "seed, a partial one says complete: false")
    if says_complete and failures:
        problems.append(f"complete is true but {len(failures)} units failed ({', '.join(map(str, failures[:3]))})")
    given = spec.get("images_given")
    if given is not None and given != len(records):
        problems.append(f"spec.images_given is {given!r} but there are {len(records)} records; a bring-your-own run "
                        "records every image it was given")
    coverage = record.get("coverage")
    if isinstance(coverage, dict):
        _check_fields(coverage, COVERAGE_FIELDS, "coverage.", problems)
        seeds = spec.get("train_seeds") or [None]
        truth = {"protocol_units": len(expected) // len(seeds), "train_seeds": len(seeds), "expected": len(expected),
                 "recorded": len(records), "failed_units": len(failures), "partial": not says_complete,
                 "declared": "given images" if given is not None else "protocol"}
        problems += [f"coverage.{key} is {coverage.get(key)!r} but the records and spec give {value!r}"
                     for key, value in truth.items() if key in coverage and coverage[key] != value]
    return problems
