"""Re-judging a leaderboard entry from its images: the check that catches verdicts forged consistently.

A results file and its judgment files can both be edited; the images judged cannot be re-judged
into other verdicts. Anyone with the entry's images (its run folder) runs ``rejudge``: the images
are checked against the SHA-256 their records carry (schema 2), copied into a fresh run folder
``out``, judged there by the same judge (name and version), and each new verdict is compared with
the entry's. The summary goes to ``out/rejudge.json``; ``actionbench rejudge --record`` keeps it
beside the entry (``<board>/verified/<entry>.json``), and the board says the entry was verified.

What it cannot catch: images that were not made by the recorded spec (drawn by another method,
or by hand). Re-running the spec (``actionbench reproduce``) is the check for those.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

from actionbench.errors import ActionBenchError
from actionbench.hashing import sha256_file
from actionbench.io import atomic_write_bytes, atomic_write_json, read_json
from actionbench.results.record import now_iso, package_versions
from actionbench.results.schema import is_legacy, judge_folder
from actionbench.results.verify import judgment_file

from .entries import records_hash

MAX_DIFFER_FRACTION = 0.01
"""Verdicts allowed to differ (as a share of the images) for an entry to count as verified: a judge run on
another CPU may round a borderline image to the other class (measured: 1 in 10^6 in a probability)."""
REJUDGE_FILE = "rejudge.json"
LISTED = 20  # differing unit ids kept in the summary


def check_images(results: Mapping, images_dir: str | Path) -> int:
    """Check that ``images_dir`` holds the entry's images; returns how many were hashed (0 for legacy files).

    Raises:
        ActionBenchError: an image is missing, or (schema 2) differs from the SHA-256 its record carries.
    """
    images_dir = Path(images_dir)
    missing = [r["image"] for r in results["records"] if not (images_dir / r["image"]).is_file()]
    if missing:
        raise ActionBenchError(f"{len(missing)} of the entry's {len(results['records'])} images are not in "
                               f"{images_dir} (first: {', '.join(missing[:3])}); pass the run folder that holds "
                               "them (--run RUN_FOLDER)")
    if is_legacy(results):
        return 0
    changed = [r["image"] for r in results["records"] if sha256_file(images_dir / r["image"]) != r["image_sha256"]]
    if changed:
        raise ActionBenchError(f"{len(changed)} images in {images_dir} are not the entry's (their SHA-256 differs "
                               f"from the records'; first: {', '.join(changed[:3])}): re-judging them would say "
                               "nothing about the entry")
    return len(results["records"])


def prepare_folder(results: Mapping, images_dir: Path, out: Path) -> None:
    """A fresh run folder ``out`` holding the entry's spec and images (copied byte for byte), nothing else."""
    from actionbench.run.runfolder import SPEC_FILE, check_run_folder, check_same_spec

    if images_dir.resolve() == out.resolve():
        raise ActionBenchError(f"--out {out} is the entry's own run folder; re-judge into a new folder")
    check_run_folder(out)
    if not check_same_spec(out, results["spec"]):
        atomic_write_json(out / SPEC_FILE, results["spec"])  # first: a killed copy resumes into its own folder
    for r in results["records"]:
        target = out / r["image"]
        if not target.is_file():
            atomic_write_bytes(target, (images_dir / r["image"]).read_bytes())


def rejudge(results: Mapping, images_dir: str | Path, out: str | Path, judge: str | None = None,
            device: str = "cpu", judge_options: Mapping[str, Any] | None = None, data_root: str | Path | None = None,
            max_differ_fraction: float = MAX_DIFFER_FRACTION, batch_size: int = 32) -> dict:
    """Re-judge an entry's images with its judge and compare verdicts with its records.

    Args:
        results: the entry's results record (valid).
        images_dir: the run folder holding the entry's images (paths as in its records).
        out: a new (or empty) folder for the re-judging; re-running resumes it.
        judge: where the judge is found (a registered name or ``package.module:Class``); default the
            entry's judge name. Either way its name and version must be the entry's.
        device, data_root: as for ``actionbench judge``.
        judge_options: options for the judge (default: those the entry recorded).
        max_differ_fraction: the share of images whose verdicts may differ for the entry to count as verified.
        batch_size: images per judge call.

    Returns:
        The summary written to ``out/rejudge.json``: ``n``, ``agree``, ``action_differ`` and
        ``subject_differ`` (unit ids, first 20), ``differ`` (count), ``verified``, the judge, the
        entry's record-set hash, the images' check, when and where it ran.

    Raises:
        ActionBenchError: the images are not the entry's; the judge is another name or version; the
            installed dataset is another one than the entry's.
    """
    from actionbench.results.machine import machine_description
    from actionbench.run.runner import judge as judge_units, make_evaluator, open_existing_run, write_results

    started, t0 = now_iso(), time.perf_counter()
    images_dir, out = Path(images_dir), Path(out)
    hashed = check_images(results, images_dir)
    prepare_folder(results, images_dir, out)
    run = open_existing_run(out, data_root=data_root)
    recorded = results["judge"]
    options = dict(recorded.get("options") or {}) if judge_options is None else dict(judge_options)
    evaluator = make_evaluator(judge or str(recorded["name"]), run.dataset, device, options)
    if (evaluator.name, str(evaluator.VERSION)) != (recorded["name"], str(recorded["version"])):
        raise ActionBenchError(
            f"the entry was judged by {recorded['name']} v{recorded['version']}, but {judge or recorded['name']} here "
            f"is {evaluator.name} v{evaluator.VERSION}; install the ActionBench version (or judge package) that has "
            "the entry's judge version")
    evaluator.check()
    judge_units(run, evaluator, batch_size=batch_size)
    folder = judge_folder(recorded)
    action_differ, subject_differ, agree = [], [], 0
    for r in results["records"]:
        verdict = read_json(judgment_file(out, folder, r["unit_id"]), "judgment")
        same_action, same_subject = verdict["action_ok"] == r["action_ok"], verdict["subject_ok"] == r["subject_ok"]
        agree += same_action and same_subject
        if not same_action:
            action_differ.append(r["unit_id"])
        if not same_subject:
            subject_differ.append(r["unit_id"])
    n = len(results["records"])
    differ = n - agree
    summary = {
        "records_sha256": records_hash(results),
        "run_name": results.get("run_name"),
        "spec_hash": results.get("spec_hash"),
        "judge": {"name": recorded["name"], "version": recorded["version"]},
        "n": n,
        "agree": agree,
        "differ": differ,
        "action_differ": action_differ[:LISTED],
        "subject_differ": subject_differ[:LISTED],
        "max_differ_fraction": max_differ_fraction,
        "verified": differ <= math.floor(max_differ_fraction * n),
        "images": f"{hashed} of {n} images matched their records' SHA-256" if hashed else
                  "legacy entry: its records carry no image hashes, so these images are taken on trust",
        "rejudged_at": now_iso(),
        "machine": machine_description()["summary"],
        "actionbench_version": package_versions().get("actionbench"),
    }
    atomic_write_json(out / REJUDGE_FILE, summary)
    write_results(run, evaluator, started, time.perf_counter() - t0)  # the re-judging's own results, for `compare`
    return summary


def format_summary(summary: Mapping) -> str:
    """The lines ``actionbench rejudge`` prints."""
    lines = [f"re-judged {summary['n']} images with {summary['judge']['name']} v{summary['judge']['version']}: "
             f"{summary['agree']} verdicts agree, {summary['differ']} differ",
             f"images: {summary['images']}"]
    if summary["action_differ"]:
        lines.append(f"action verdicts differ for: {', '.join(summary['action_differ'])}")
    if summary["subject_differ"]:
        lines.append(f"subject verdicts differ for: {', '.join(summary['subject_differ'])}")
    allowed = math.floor(summary["max_differ_fraction"] * summary["n"])
    lines.append("VERIFIED" if summary["verified"] else
                 f"NOT VERIFIED: {summary['differ']} verdicts differ, at most {allowed} may")
    return "\n".join(lines)
