"""What a run's own products say about its spec: the artifacts it learned and their step counts.

The spec (``spec.json``, copied into the results) is editable: a smoke run relabelled to the full
protocol, its hashes recomputed, agrees with itself. What the run made does not change with it: each
artifact's ``artifact.json`` records the config it was learned with, and the results record, when
they are written, each artifact's SHA-256 and step counts (the optional top-level ``artifacts``).
So whether a run is smoke is read from those counts, not only from the spec's ``preset`` label, and
a trained method's claim needs its artifacts beside the results (``leaderboard --add``).

Files written before ``artifacts`` existed still validate: they carry no such list, and their
step counts are read from the spec.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

from .hashing import sha256_file

ARTIFACT_JSON = "artifact.json"  # as actionbench.api.method names it
SAMPLER_STEPS = "sampler.num_inference_steps"
ENTRY_FIELDS = {"action_id": (str,), "train_seed": (int, type(None)), "sha256": (str,),
                "train_steps": (int, type(None)), "sampler_steps": (int, type(None))}
SMOKE_STEPS = "smoke steps"  # how a caveat derived from step counts starts
DISAGREES = "spec disagrees with its evidence"
NO_TIMINGS = "no stage timings"
PIPELINE_STAGES = ("customize", "generate", "judge")
"""The stages of a run, in order (``actionbench judge`` runs the last alone); a record times each of them."""


@functools.lru_cache(maxsize=64)
def _method_facts(method: str) -> tuple[str | None, tuple[tuple[str, int], ...]]:
    """(steps field, the smoke preset's step overrides) of a method; a method that cannot be resolved
    here (a third party's, not installed) falls back to the shared ``train_steps`` and sampler steps."""
    from .api.config import MethodConfig, smoke_overrides
    from .api.registry import get_method

    try:
        cls = get_method(method)
        steps_field, smoke = cls.steps_field, smoke_overrides(cls.Config)
    except Exception:  # the checks must still run on a results file whose method is not importable here
        steps_field, smoke = "train_steps", {**smoke_overrides(MethodConfig), "train_steps": 2}
    keys = {SAMPLER_STEPS, *([steps_field] if steps_field else [])}
    return steps_field, tuple(sorted((k, v) for k, v in smoke.items() if k in keys and isinstance(v, int)))


def steps_field(spec: Mapping) -> str | None:
    """The config field holding the spec's method's training steps; None for a method that trains nothing
    (and for bring-your-own images, method ``external``)."""
    method = spec.get("method")
    if not isinstance(method, str) or method == "external" or "images_given" in spec:
        return None
    return _method_facts(method)[0]


def trains(spec: Mapping) -> bool:
    """Whether the spec's method learns something per action, so that its artifacts are its evidence."""
    return steps_field(spec) is not None


def _get(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = config.get(part) if isinstance(config, Mapping) else None
    return config


def artifact_roots(spec: Mapping, run_dir: Path) -> list[Path]:
    seeds = spec.get("train_seeds")
    return [run_dir] if not seeds else [run_dir / "seeds" / str(s) for s in seeds]


def artifact_digest(folder: Path) -> str:
    """SHA-256 over every file of an artifact folder (relative path and content), so a replaced tensor
    file or an edited ``artifact.json`` both change it."""
    import hashlib

    lines = [f"{p.relative_to(folder).as_posix()} {sha256_file(p)}" for p in sorted(folder.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def artifact_evidence(spec: Mapping, run_dir: str | Path) -> list[dict]:
    """One entry per artifact in the run folder: its action, training seed, digest and recorded step counts
    (read from its ``artifact.json``), as the results record them."""
    from .io import read_json

    run_dir, field = Path(run_dir), steps_field(spec)
    entries = []
    for root, seed in zip(artifact_roots(spec, run_dir), spec.get("train_seeds") or [None]):
        for path in sorted((root / "artifacts").glob(f"*/{ARTIFACT_JSON}")):
            config = read_json(path, "artifact record").get("config") or {}
            entries.append({"action_id": path.parent.name, "train_seed": seed, "sha256": artifact_digest(path.parent),
                            "train_steps": _get(config, field) if field else None,
                            "sampler_steps": _get(config, SAMPLER_STEPS)})
    return entries


def check_artifact_list(record: Mapping) -> list[str]:
    """The shape of the optional ``artifacts`` list of a results file."""
    entries = record.get("artifacts")
    if entries is None and "artifacts" not in record:
        return []
    if not isinstance(entries, list):
        return [f"artifacts is {type(entries).__name__}; expected a list of {{action_id, train_seed, sha256, "
                "train_steps, sampler_steps}} as the runner writes it (or no artifacts key at all)"]
    problems = []
    for i, entry in enumerate(entries):
        for key, types in ENTRY_FIELDS.items():
            value = entry.get(key) if isinstance(entry, Mapping) else None
            if not isinstance(entry, Mapping) or key not in entry or isinstance(value, bool) \
                    or not isinstance(value, types):
                problems.append(f"artifacts[{i}].{key} is {value!r}; expected "
                                f"{' or '.join('null' if t is type(None) else t.__name__ for t in types)}")
    return problems


def evidence_caveats(data: Mapping) -> list[str]:
    """Why the evidence does not back the spec's claim, read from the results file alone.

    * ``smoke steps ...``: a training or sampling step count at or below the smoke preset's, whatever the
      ``preset`` label says (counts from the recorded artifacts where the file has them, else the spec);
    * ``spec disagrees with its evidence ...``: recorded artifacts whose step counts are not the spec's;
    * ``no stage timings ...``: no time recorded for a stage of the pipeline (``timing_caveats``).
    """
    spec = data.get("spec") if isinstance(data.get("spec"), Mapping) else {}
    config = spec.get("method_config") if isinstance(spec.get("method_config"), Mapping) else {}
    method = spec.get("method")
    if not isinstance(method, str):
        return []
    field = steps_field(spec)
    claimed = {**({field: _get(config, field)} if field else {}), SAMPLER_STEPS: _get(config, SAMPLER_STEPS)}
    entries = [e for e in data.get("artifacts") or [] if isinstance(e, Mapping)]
    recorded = {key: [e.get("train_steps" if key == field else "sampler_steps") for e in entries] for key in claimed}
    caveats = []
    disagree = [f"{sum(v != claimed[key] for v in values)} artifacts record {key} "
                f"{sorted({v for v in values if v != claimed[key]}, key=str)[0]}, the spec says {claimed[key]}"
                for key, values in recorded.items() if any(v != claimed[key] for v in values)]
    if disagree:
        caveats.append(f"{DISAGREES}: {'; '.join(disagree)}")
    labelled_smoke = "smoke" in str(spec.get("preset") or "").split(",")
    shown = []
    for key, smoke_value in dict(_method_facts(method)[1]).items():
        counts = [v for v in recorded.get(key) or [] if isinstance(v, int)] or \
            ([claimed.get(key)] if isinstance(claimed.get(key), int) else [])
        if counts and min(counts) <= smoke_value:
            shown.append(f"{key} {min(counts)}")
    if shown and not labelled_smoke:
        caveats.append(f"{SMOKE_STEPS}: {', '.join(shown)} (the smoke preset's), whatever the spec's preset says")
    return caveats + timing_caveats(data)


def timing_caveats(data: Mapping) -> list[str]:
    """A protocol run's record states what each stage of its pipeline took (``provenance.stage_times_s``); given
    images (bring-your-own) were only judged. A record without them was not written by a run of the pipeline."""
    prov = data.get("provenance") if isinstance(data.get("provenance"), Mapping) else {}
    times = prov.get("stage_times_s") if isinstance(prov.get("stage_times_s"), Mapping) else {}
    given = "images_given" in (data.get("spec") or {})
    needed = ("judge",) if given else PIPELINE_STAGES
    missing = [s for s in needed if not (isinstance(times.get(s), (int, float)) and not isinstance(times.get(s), bool)
                                         and times[s] >= 0)]
    return [f"{NO_TIMINGS}: provenance.stage_times_s lacks {', '.join(missing)}"] if missing else []


def missing_artifacts(spec: Mapping, run_dir: Path, found: int) -> str | None:
    """What is missing when a trained method's run folder holds no artifacts (None: nothing is)."""
    if found or not trains(spec):
        return None
    field = steps_field(spec)
    steps = _get(spec.get("method_config") or {}, field) if field else None
    return (f"no artifacts in {run_dir}: the spec says {spec.get('method')} was trained ({field} {steps}), but "
            "nothing it learned is there to show with how many steps")


def compare_recorded(results: Mapping, run_dir: Path) -> list[str]:
    """Artifacts in the run folder against the SHA-256 the results recorded for them (files with the list)."""
    if not isinstance(results.get("artifacts"), list):
        return []
    recorded = {(e["action_id"], e["train_seed"]): e["sha256"] for e in results["artifacts"]}
    present = {(e["action_id"], e["train_seed"]): e["sha256"] for e in artifact_evidence(results["spec"], run_dir)}
    if not present:
        return []  # a folder without artifacts is missing_artifacts' case
    problems = []
    gone = sorted(set(recorded) - set(present), key=str)
    changed = sorted((k for k in recorded if k in present and present[k] != recorded[k]), key=str)
    extra = sorted(set(present) - set(recorded), key=str)
    for keys, what in ((gone, "recorded in the results are not in the run folder"),
                       (changed, "differ from the SHA-256 the results record: they were replaced after the run"),
                       (extra, "in the run folder are not recorded in the results")):
        if keys:
            problems.append(f"{len(keys)} artifacts {what} (first: {', '.join(_label(k) for k in keys[:3])})")
    return problems


def _label(key: tuple) -> str:
    action, seed = key
    return action if seed is None else f"{action}@{seed}"
