"""The results record's shape, written down once: field tables, the record-set hash, and the blocks
derived from the records.

``actionbench.results.record`` builds a record from these tables; ``actionbench.results.check`` checks one
against them; ``actionbench.results.verify`` checks one against its run folder.

Schema versions:

* 1 (legacy, before images were hashed): no image hashes, no record-set hash, no coverage, floor or machine
  blocks. Such files still validate, marked legacy: nothing in them ties the numbers to images.
* 2: every record carries its image's SHA-256; ``records_sha256`` hashes the record set;
  ``coverage`` says how much of the protocol was judged; ``floor`` and ``per_seed`` are derived
  from the records; ``provenance.machine`` describes the machine.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

SCHEMA_VERSION = 2
LEGACY_SCHEMA_VERSIONS = (1,)
READABLE_SCHEMA_VERSIONS = (*LEGACY_SCHEMA_VERSIONS, SCHEMA_VERSION)

_NONE = type(None)
TOP_FIELDS = {"run_name": str, "spec": dict, "spec_hash": str, "judge": dict, "metrics": dict, "records": list,
              "provenance": dict}
TOP_FIELDS_V2 = {**TOP_FIELDS, "failures": list, "complete": bool, "records_sha256": str, "coverage": dict,
                 "floor": dict, "per_seed": dict}
REQUIRED_KEYS = ("schema_version", *TOP_FIELDS)
# Top-level keys newer writers add; files without them stay valid. ``artifacts``: each artifact's SHA-256 and
# recorded step counts, checked by ``actionbench.evidence`` (outside records_sha256 and spec_hash).
OPTIONAL_TOP_FIELDS = ("artifacts",)
SPEC_FIELDS = {"method": str, "method_version": (str, int), "method_config": dict, "config_hash": str,
               "backbone": dict, "dataset": str, "manifest_sha256": str, "protocol": dict, "preset": (str, _NONE)}
JUDGE_FIELDS = {"name": str, "version": (str, int), "human": bool}
RECORD_FIELDS = {"unit_id": str, "action_id": str, "subject_id": str, "k": int, "seed": int, "image": str,
                 "action_ok": bool, "subject_ok": bool, "detail": dict}
RECORD_FIELDS_V2 = {**RECORD_FIELDS, "image_sha256": str}
PROVENANCE_FIELDS = {"actionbench_version": (str, _NONE), "git_commit": (str, _NONE), "git_dirty": (bool, _NONE),
                     "packages": dict, "device": str, "python": str, "platform": str, "started_at": str,
                     "finished_at": str, "wall_time_s": (int, float)}
PROVENANCE_FIELDS_V2 = {**PROVENANCE_FIELDS, "machine": dict}
COVERAGE_FIELDS = {"protocol_units": int, "train_seeds": int, "expected": int, "recorded": int, "failed_units": int,
                   "partial": bool, "declared": str}

TOLERANCE = 1e-6  # stored metrics may differ from recomputed ones by float noise only (far below 1/368)
MAX_LISTED = 10  # problems listed per kind before "... and N more"
TEST_BACKBONES = frozenset({"tiny"})
"""Backbones built for tests: random weights, so their numbers say nothing about a method."""
SMOKE_PRESET = "smoke"

# What the record-set hash covers: the unit, its image, and the judge's answers. Keys a results hook
# adds later (e.g. ``human`` labels) are left out, so annotating a record does not break its hash.
RECORD_SET_KEYS = ("unit_id", "train_seed", "action_id", "subject_id", "k", "seed", "image", "image_sha256",
                   "action_ok", "subject_ok", "detail")

# Where judges put their predicted classes: (action class key, subject class key) per layout.
# A judge that records a predicted class decides by it: action_ok == (predicted == target).
PREDICTION_LAYOUTS = (("pose", "subject"), ("action_pred", "subject_pred"))


def is_legacy(record: Mapping) -> bool:
    """A results record from before image and record-set hashes (schema 1)."""
    return record.get("schema_version") in LEGACY_SCHEMA_VERSIONS


def record_set_sha256(records: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 of the record set: each record's ``RECORD_SET_KEYS`` as canonical JSON, sorted by unit.

    Order-independent (shards may finish in any order) and blind to keys added by results hooks.
    """
    from ..hashing import canonical_json

    lines = sorted(canonical_json({k: r.get(k) for k in RECORD_SET_KEYS if k in r}) for r in records
                   if isinstance(r, Mapping))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def unit_key(action_id: str, subject_id: str, k: int, train_seed: Any = None) -> str:
    """A unit's id as the runner writes it: ``action/subject/k``, with ``@seed`` in multi-seed runs."""
    base = f"{action_id}/{subject_id}/{k}"
    return base if train_seed is None else f"{base}@{train_seed}"


def expected_image_path(action_id: str, subject_id: str, k: int, train_seed: Any = None) -> str:
    """Where the runner puts a unit's image, relative to the run folder."""
    root = "" if train_seed is None else f"seeds/{train_seed}/"
    return f"{root}images/{action_id}/{subject_id}/{k}.png"


def judge_folder(judge: Mapping) -> str:
    """The judgments folder of a judge (``<name>-v<version>``), as ``runfolder.judge_key`` names it."""
    return f"{judge.get('name')}-v{judge.get('version')}"


def judge_label(name: Any, version: Any) -> str:
    """How printouts name a judge: ``mini (version 2)``. Not the folder name ``mini-v2``, which is also
    another judge's registered name."""
    return f"{name} (version {version})"


def per_seed_summary(records: list[Mapping]) -> dict:
    """Pooled over actions, per training seed: ``{"count", "train_seeds", "per_seed": {seed: {n, action,
    subject, total}}}``. A run without ``--train-seeds`` has one seed, ``"none"``."""
    seeds: dict[str, list[Mapping]] = {}
    for r in records:
        seeds.setdefault("none" if r.get("train_seed") is None else str(r["train_seed"]), []).append(r)
    per_seed = {}
    for seed, rows in seeds.items():
        n = len(rows)
        action = sum(bool(r["action_ok"]) for r in rows) / n
        subject = sum(bool(r["subject_ok"]) for r in rows) / n
        total = sum(bool(r["action_ok"]) and bool(r["subject_ok"]) for r in rows) / n
        per_seed[seed] = {"n": n, "action": action, "subject": subject, "total": total}
    return {"count": len(per_seed), "train_seeds": list(per_seed), "per_seed": per_seed}


def derived_blocks(records: list[Mapping]) -> dict:
    """What a results record derives from its records besides ``metrics``: ``floor`` (false alarms,
    lift, confusion matrix, mutual information) and ``per_seed``. The checker recomputes them."""
    from .floor import floor_measures

    return {"floor": floor_measures(records), "per_seed": per_seed_summary(records)}
