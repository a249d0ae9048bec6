"""Checking a results record against its run folder (``actionbench validate --run DIR``).

A results file can be made consistent with itself by anyone who edits it. Its run folder holds
what the numbers were derived from, written by other steps of the run: ``spec.json``, the
images, one judgment file per image (``judgments/<judge>-v<version>/...``) and the artifacts.
``verify_run`` checks that the results are what the folder gives:

* ``spec.json`` is the results' spec, and each artifact was learned by that method, config and backbone;
* every image exists and has the SHA-256 its record carries (schema 2; legacy files carry none);
* every record's verdict and detail are its judgment file's;
* no judged unit was left out of the records;
* every metric, and the floor and per-seed blocks, re-derived from the judgment files, equal the stored ones;
* each artifact has the SHA-256 the results recorded for it (files with ``artifacts``), and a trained
  method's folder holds its artifacts at all (``missing_evidence`` otherwise: valid, but not addable);
* the checks of ``check_results`` (shape, hashes, coverage) pass.

Someone who edits the judgment files and images as well passes; only re-judging the images
(``actionbench rejudge``) or re-running the spec (``actionbench reproduce``) tells.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ActionBenchError
from ..evidence import compare_recorded, missing_artifacts
from ..hashing import canonical_json, sha256_file
from ..io import read_json
from .check import check_coverage, check_metrics, check_results, compare_values, expected_units, listed
from .schema import derived_blocks, is_legacy, judge_folder

SPEC_FILE = "spec.json"  # as actionbench.run.runfolder names it
ARTIFACT_JSON = "artifact.json"  # as actionbench.api.method names it


@dataclass
class RunCheck:
    """What ``verify_run`` found: ``problems`` fail the check; ``notes`` say what could not be checked."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_evidence: list[str] = field(default_factory=list)
    """What a claim of the spec lacks in the folder (a trained method's artifacts): the file is still valid,
    but ``leaderboard --add`` refuses it."""
    images_checked: int = 0
    judgments_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(results: Mapping, run_dir: str | Path) -> RunCheck:
    """Check a results record against the run folder it came from (see the module docstring).

    Args:
        results: a results record (the parsed ``results.json``).
        run_dir: the run folder: ``spec.json``, ``images/``, ``judgments/``, ``artifacts/``.

    Returns:
        A ``RunCheck``; ``problems`` is empty when the results are what the folder gives.
    """
    run_dir = Path(run_dir)
    check = RunCheck(problems=list(check_results(results)))
    if check.problems:  # the file is broken on its own; say that first
        return check
    if not (run_dir / SPEC_FILE).is_file():
        check.problems.append(f"{run_dir} holds no {SPEC_FILE}: it is not the run folder of these results; pass the "
                              "folder the run wrote (with spec.json, images/ and judgments/)")
        return check
    spec = read_json(run_dir / SPEC_FILE, "run spec")
    if canonical_json(spec) != canonical_json(results["spec"]):
        differs = sorted(k for k in set(spec) | set(results["spec"]) if spec.get(k) != results["spec"].get(k))
        check.problems.append(f"the results' spec differs from {run_dir / SPEC_FILE} in: {', '.join(differs)}; "
                              "the spec was edited after the run, or these results belong to another run")
    _check_artifacts(results["spec"], run_dir, check)
    check.problems.extend(compare_recorded(results, run_dir))
    _check_images(results, run_dir, check)
    _check_judgments(results, run_dir, check)
    return check


def _check_images(results: Mapping, run_dir: Path, check: RunCheck) -> None:
    legacy = is_legacy(results)
    missing, changed = [], []
    for r in results["records"]:
        path = run_dir / r["image"]
        if not path.is_file():
            missing.append(r["image"])
            continue
        if not legacy:
            check.images_checked += 1
            if sha256_file(path) != r["image_sha256"]:
                changed.append(r["image"])
    if missing:
        check.problems.append(f"{len(missing)} images of the records are not in {run_dir} (first: "
                              f"{', '.join(missing[:3])}); pass the run folder that holds them")
    if changed:
        check.problems.append(f"{len(changed)} images differ from the SHA-256 their records carry (first: "
                              f"{', '.join(changed[:3])}): the images were replaced after they were judged")
    if legacy:
        check.notes.append("legacy results (schema 1): records carry no image hashes, so the images cannot be tied "
                           "to the verdicts; verdicts and metrics are still checked against the judgment files")


def judgment_file(run_dir: Path, folder: str, unit_id: str) -> Path:
    """Where the runner keeps a unit's judgment: ``[seeds/<seed>/]judgments/<judge>-v<version>/<a>/<s>/<k>.json``."""
    base, _, seed = unit_id.partition("@")
    action, subject, k = base.split("/")
    root = run_dir / "seeds" / seed if seed else run_dir
    return root / "judgments" / folder / action / subject / f"{k}.json"


def _check_judgments(results: Mapping, run_dir: Path, check: RunCheck) -> None:
    """Verdicts against the judgment files, and every number re-derived from those files."""
    folder = judge_folder(results["judge"])
    by_unit = {r["unit_id"]: r for r in results["records"]}
    missing, differ = [], []
    for unit_id, r in by_unit.items():
        path = judgment_file(run_dir, folder, unit_id)
        if not path.is_file():
            missing.append(unit_id)
            continue
        try:
            judgment = read_json(path, "judgment")
        except ActionBenchError as exc:
            check.problems.append(str(exc))
            continue
        check.judgments_checked += 1
        if not isinstance(judgment, Mapping) or any(
                canonical_json(judgment.get(k, {} if k == "detail" else None)) != canonical_json(r.get(k))
                for k in ("action_ok", "subject_ok", "detail")):
            differ.append(unit_id)
    if missing:
        check.problems.append(f"{len(missing)} records have no judgment file under {run_dir / 'judgments' / folder} "
                              f"(first: {', '.join(missing[:3])}); the records were not made by judging this folder")
    if differ:
        check.problems.append(f"{len(differ)} records' verdicts differ from their judgment files (first: "
                              f"{', '.join(differ[:3])}): the verdicts were edited after judging")
    try:
        protocol = expected_units(results["spec"])
    except ActionBenchError:
        return  # check_results already said so
    left_out = [u for u in protocol if u not in by_unit and judgment_file(run_dir, folder, u).is_file()]
    if left_out:
        check.problems.append(f"{len(left_out)} units were judged in {run_dir} but are left out of the records "
                              f"(first: {', '.join(left_out[:3])}): results record every judged image")
    if missing or differ:
        return
    # The numbers, re-derived from the judgment files themselves.
    derived = [dict(r, **_verdict(run_dir, folder, r["unit_id"])) for r in results["records"]]
    problems = check_metrics(results["metrics"], derived, "metrics (from the judgment files)")
    if not is_legacy(results):
        mismatches: list[str] = []
        for key, expected in derived_blocks(derived).items():
            compare_values(expected, results.get(key), f"{key} (from the judgment files)", mismatches)
        problems += listed(mismatches, "mismatches")
    problems += check_coverage(results, derived)
    check.problems.extend(problems)


def _verdict(run_dir: Path, folder: str, unit_id: str) -> dict[str, Any]:
    judgment = read_json(judgment_file(run_dir, folder, unit_id), "judgment")
    return {"action_ok": judgment["action_ok"], "subject_ok": judgment["subject_ok"],
            "detail": judgment.get("detail", {})}


def _check_artifacts(spec: Mapping, run_dir: Path, check: RunCheck) -> None:
    """Each artifact was learned by the spec's method, with its config (up to the training seed) and backbone."""
    roots = [run_dir] if not spec.get("train_seeds") else [run_dir / "seeds" / str(s) for s in spec["train_seeds"]]
    found = [p for root in roots for p in sorted((root / "artifacts").glob(f"*/{ARTIFACT_JSON}"))]
    if not found:
        missing = missing_artifacts(spec, run_dir, len(found))
        if missing:
            check.missing_evidence.append(missing)
        elif spec.get("method") != "external":
            check.notes.append(f"no artifacts in {run_dir} (deleted to save space?): the spec cannot be checked "
                               "against what was learned")
        return
    config = {k: v for k, v in spec["method_config"].items() if k != "seed"}
    backbone = spec["backbone"].get("id")
    wrong = []
    for path in found:
        try:
            artifact = read_json(path, "artifact record")
        except ActionBenchError as exc:
            check.problems.append(str(exc))
            continue
        learned = {k: v for k, v in (artifact.get("config") or {}).items() if k != "seed"}
        # a method named by path (package.module:Class) records its class's short name in artifacts
        other_method = ":" not in spec["method"] and artifact.get("method") != spec["method"]
        if other_method or canonical_json(learned) != canonical_json(config) \
                or (artifact.get("backbone") or {}).get("id") != backbone:
            wrong.append(path.parent.relative_to(run_dir).as_posix())
    if wrong:
        check.problems.append(f"{len(wrong)} artifacts were learned with another method, config or backbone than the "
                              f"spec says (first: {', '.join(wrong[:3])}): the spec was edited after the run")

