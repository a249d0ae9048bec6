"""The results record: one JSON per run, its shape declared here once.

Like lm-evaluation-harness's ``simple_evaluate`` output: the spec and its hash, the
dataset manifest hash, method and judge versions, metrics with intervals, the floor (false
alarms, lift, confusion matrix, mutual information) and per-seed totals, every per-image record
with its image's SHA-256, the record set's hash and its coverage of the protocol, and provenance
(package versions, ActionBench's own commit, device and machine, wall time).

The runner builds a record with ``build_results`` (per-image records from ``image_record``);
the leaderboard and ``actionbench validate`` check one with ``check_results``
(``actionbench.results.check``; against a run folder: ``actionbench.results.verify``). All of
them read the field tables of ``actionbench.results.schema``, so the shape is written down once.
Records from before images were hashed (schema 1) still validate, as legacy.
"""
from __future__ import annotations

import datetime as _dt
import platform
import sys
from collections.abc import Mapping
from importlib import metadata

from .schema import SCHEMA_VERSION, derived_blocks, record_set_sha256

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


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores)"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(device: str, started_at: str, wall_time_s: float, stage_times: dict | None = None,
               world_size: int = 1) -> dict:
    """Where, when and with what a run was made: package versions, ActionBench's commit, the device
    and the machine (CPU model and flags, torch build, threads, GPU; ``results_machine``), times."""
    from ..code_state import source_commit
    from .machine import machine_description

    commit, dirty = source_commit()
    return {
        "actionbench_version": package_versions().get("actionbench"),
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "device": device_description(device),
        "machine": machine_description(),
        "world_size": world_size,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "started_at": started_at,
        "finished_at": now_iso(),
        "wall_time_s": round(wall_time_s, 3),
        "stage_times_s": {k: round(v, 3) for k, v in (stage_times or {}).items()},
        "command": " ".join(sys.argv),
    }


def image_record(unit_id: str, action_id: str, subject_id: str, k: int, seed: int, image: str, action_ok: bool,
                 subject_ok: bool, detail: dict, image_sha256: str | None = None) -> dict:
    """One per-image record (``RECORD_FIELDS_V2``): the unit, its image path relative to the run folder
    and the image's SHA-256, the judge's two answers and its detail (scores, prompts), stored as given."""
    record = {"unit_id": unit_id, "action_id": action_id, "subject_id": subject_id, "k": k, "seed": seed,
              "image": image}
    if image_sha256 is not None:
        record["image_sha256"] = image_sha256
    record.update({"action_ok": action_ok, "subject_ok": subject_ok, "detail": detail})
    return record


def build_results(run_name: str, spec: dict, judge: dict, records: list[dict], failures: list[str],
                  expected_records: int, provenance: dict, train_seeds: int = 1,
                  subject_categories: Mapping[str, str] | None = None) -> dict:
    """The results record of a run, its keys in the order they are written.

    Args:
        run_name: the run folder's name.
        spec: the recorded spec (``spec.json``); its stable hash is stored beside it.
        judge: the judge's ``describe()`` (name, version, human, model...); its ``per_image_metrics``
            (e.g. leak) are summarised beside action, subject and total.
        records: ``image_record`` dicts, one per judged image (with ``image_sha256``).
        failures: ids of the units that failed (e.g. a diverging loss).
        expected_records: how many images the protocol asks for (all training seeds); fewer records
            means incomplete.
        provenance: ``provenance(...)`` of this run.
        train_seeds: how many training seeds ``expected_records`` counts.
        subject_categories: subject id -> category (the dataset's); every metric is also given per category.

    ``records_sha256`` hashes the record set (``record_set_sha256``); ``coverage`` says how much of
    the protocol was judged, ``declared`` being ``"protocol"`` or, for bring-your-own images,
    ``"given images"``; ``floor`` and ``per_seed`` are derived from the records (``derived_blocks``).
    """
    from ..hashing import stable_hash
    from .metrics import compute_metrics

    complete = len(records) == expected_records and not failures
    coverage = {
        "protocol_units": expected_records // max(1, train_seeds), "train_seeds": train_seeds,
        "expected": expected_records, "recorded": len(records), "failed_units": len(failures),
        "partial": not complete,
        "declared": "given images" if "images_given" in spec else "protocol",
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "run_name": run_name,
        "spec": spec,
        "spec_hash": stable_hash(spec),
        "judge": judge,
        "metrics": compute_metrics(records, per_image_metrics=tuple(judge.get("per_image_metrics") or ()),
                                   subject_categories=subject_categories),
        **derived_blocks(records),
        "records": records,
        "records_sha256": record_set_sha256(records),
        "coverage": coverage,
        "failures": failures,
        "complete": complete,
        "provenance": provenance,
    }
