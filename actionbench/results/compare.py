"""Paired comparison of two runs on the same benchmark: A - B with a clustered interval and a p-value.

Two methods judged on the same dataset share its actions, subjects and seeds, so the fair
question is about the *difference* on the same units. ``compare`` pairs the two runs' images:

* by ``unit_id`` and ``train_seed`` when both runs record the same training seeds per action;
* otherwise by ``unit_id`` alone, each run's images of a unit averaged over its training seeds
  (runs with different seed counts, or from before ``--train-seeds``).

The per-unit differences are then one per-image metric, and its mean gets the interval of
``actionbench.results.stats`` (by default the two-way cluster interval: actions, with their training
seeds, and subjects are resampled together for both runs, so the pairing is kept). The p-value
is the two-sided test of "no difference" that goes with that interval: for ``"cluster"`` the
t test on the clustered standard error (p < 0.05 exactly when the 95 % interval excludes 0);
for the percentile kinds, twice the share of bootstrap differences on the far side of 0.

``compare_results`` first refuses runs that are not comparable: another dataset or manifest,
another protocol (images per pair, seeds, prompt template), or another judge (name, version,
options).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ActionBenchError
from ..io import read_json
from .metrics import detail_flags, judgments, train_seed_of
from .stats import NO_SEED, Design, estimate

if TYPE_CHECKING:
    import pandas as pd

RESULTS_FILE = "results.json"
BASE_METRICS = ("action", "subject", "total")


class IncomparableRunsError(ActionBenchError, ValueError):
    """Two runs differ in dataset, protocol or judge, or share no unit: their difference means nothing."""


def numeric_detail_fields(records: list[Mapping]) -> list[str]:
    """``detail`` keys holding a number (not a bool) in every record, e.g. ``action_p_target``."""
    if not records:
        return []
    keys = [k for k, v in (records[0].get("detail") or {}).items() if _is_number(v)]
    return [k for k in keys if all(_is_number((r.get("detail") or {}).get(k)) for r in records)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _per_image(records: list[Mapping], detail_fields: Sequence[str], flags: Sequence[str] = ()) -> dict[str, np.ndarray]:
    _, values, _ = judgments(records)
    out = {name: np.asarray(values[name]) for name in BASE_METRICS}
    out.update({name: np.asarray(column) for name, column in detail_flags(records, flags).items()})
    for key in detail_fields:
        out[f"detail.{key}"] = np.asarray([float(r["detail"][key]) for r in records])
    return out


def _seed_sets(records: list[Mapping]) -> dict[str, set[str]] | None:
    """Training seeds per action, or None when some record has no ``train_seed``."""
    if not records or any(r.get("train_seed") is None for r in records):
        return None
    seeds: dict[str, set[str]] = {}
    for r in records:
        seeds.setdefault(str(r["action_id"]), set()).add(train_seed_of(r))
    return seeds


def _group(records: list[Mapping], values: dict[str, np.ndarray], by_seed: bool) -> dict[tuple, dict]:
    """Per pairing key: action, subject, seed and the mean of each metric over the key's images."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        # unpaired by seed, a unit's images of every seed (ids "UNIT@SEED") fall into the unit's one group
        key = (str(r["unit_id"]), train_seed_of(r)) if by_seed else (str(r["unit_id"]).partition("@")[0],)
        groups.setdefault(key, []).append(i)
    out = {}
    for key, rows in groups.items():
        first = records[rows[0]]
        out[key] = {"action": str(first["action_id"]), "subject": str(first["subject_id"]),
                    "seed": key[1] if by_seed else NO_SEED,
                    "values": {name: float(column[rows].mean()) for name, column in values.items()}}
    return out


def compare(records_a: Iterable[Mapping[str, Any]], records_b: Iterable[Mapping[str, Any]], n_boot: int = 1000,
            seed: int = 0, interval: str = "cluster", per_image_metrics: Sequence[str] = ()) -> dict:
    """The paired difference A - B of action, subject, total, the judge's per-image metrics and every numeric
    ``detail`` field both runs have.

    Args:
        records_a, records_b: the ``records`` of two results files (same dataset and judge).
        n_boot: bootstrap resamples.
        seed: seed of the resampling (the same resamples serve every metric).
        interval: ``"cluster"`` (default), ``"cluster-percentile"`` or ``"image"`` (``actionbench.results.stats``).
        per_image_metrics: booleans in every record's ``detail`` that the judge declares (e.g. ``("leak",
            "total_clean")``); compared as rates, like action, subject and total.

    Returns:
        ``{"paired_on", "n_paired", "unpaired": {"only_a", "only_b"}, "interval": {...},
        "metrics": {name: {"a", "b", "difference", "ci95": [lo, hi], "p_value"}}}``; ``a`` and
        ``b`` are each run's mean over the paired units.

    Raises:
        IncomparableRunsError: the runs share no unit, or a shared ``unit_id`` names another action or subject.
        ValueError: a record lacks a field or a judgment is not a boolean.
    """
    records_a, records_b = list(records_a), list(records_b)
    seeds_a, seeds_b = _seed_sets(records_a), _seed_sets(records_b)
    by_seed = seeds_a is not None and seeds_a == seeds_b
    detail_fields = [k for k in numeric_detail_fields(records_a) if k in set(numeric_detail_fields(records_b))]
    flags = list(per_image_metrics)
    groups_a = _group(records_a, _per_image(records_a, detail_fields, flags), by_seed)
    groups_b = _group(records_b, _per_image(records_b, detail_fields, flags), by_seed)
    shared = [key for key in groups_a if key in groups_b]
    if not shared:
        raise IncomparableRunsError(
            f"the two runs share no unit_id{' and train_seed' if by_seed else ''} ({len(groups_a)} and "
            f"{len(groups_b)} units): compare runs of the same dataset and protocol")
    for key in shared:
        a, b = groups_a[key], groups_b[key]
        if (a["action"], a["subject"]) != (b["action"], b["subject"]):
            raise IncomparableRunsError(
                f"unit {key[0]!r} is {a['action']}/{a['subject']} in one run and {b['action']}/{b['subject']} "
                "in the other: the runs use different datasets")
    names = list(groups_a[shared[0]]["values"])
    differences = np.asarray([[groups_a[k]["values"][n] - groups_b[k]["values"][n] for k in shared] for n in names])
    means_a = np.asarray([[groups_a[k]["values"][n] for k in shared] for n in names]).mean(axis=1)
    means_b = np.asarray([[groups_b[k]["values"][n] for k in shared] for n in names]).mean(axis=1)
    design = Design.of([groups_a[k]["action"] for k in shared], [groups_a[k]["subject"] for k in shared],
                       [groups_a[k]["seed"] for k in shared])
    result = estimate(differences, design, interval, n_boot, seed, bounded=[False] * len(names))
    return {
        "paired_on": "unit_id, train_seed" if by_seed else
                     ("unit_id" if seeds_a is None and seeds_b is None
                      else "unit_id (each run's images of a unit averaged over its training seeds)"),
        "n_paired": len(shared),
        "unpaired": {"only_a": len(groups_a) - len(shared), "only_b": len(groups_b) - len(shared)},
        "interval": result.interval,
        "metrics": {name: {"a": float(means_a[j]), "b": float(means_b[j]), "difference": float(result.mean[j]),
                           "ci95": [float(result.low[j]), float(result.high[j])], "p_value": float(result.p_value[j])}
                    for j, name in enumerate(names)},
    }


def _judge_identity(judge: Any) -> dict:
    if not isinstance(judge, Mapping):
        return {"judge": judge}
    return {"name": judge.get("name"), "version": judge.get("version"), "options": judge.get("options") or {}}


def comparability_problems(results_a: Mapping, results_b: Mapping) -> list[str]:
    """What makes two results files incomparable (empty: comparable): dataset, manifest, protocol, judge."""
    spec_a, spec_b = results_a.get("spec") or {}, results_b.get("spec") or {}
    problems = []
    for field, what in (("dataset", "dataset"), ("manifest_sha256", "dataset manifest"), ("protocol", "protocol")):
        if spec_a.get(field) != spec_b.get(field):
            problems.append(f"{what}: {spec_a.get(field)!r} against {spec_b.get(field)!r}")
    judge_a, judge_b = _judge_identity(results_a.get("judge")), _judge_identity(results_b.get("judge"))
    if judge_a != judge_b:
        problems.append(f"judge: {judge_a} against {judge_b}")
    return problems


def run_name(results: Mapping, fallback: str = "run") -> str:
    """A results file's display name: its method and run name."""
    method = (results.get("spec") or {}).get("method")
    name = results.get("run_name") or fallback
    return f"{method} ({name})" if method and method not in str(name) else str(name)


def compare_results(results_a: Mapping, results_b: Mapping, n_boot: int = 1000, seed: int = 0,
                    interval: str = "cluster") -> dict:
    """``compare`` on two results dicts, after checking that they are comparable.

    Returns ``compare``'s dict with ``"a"`` and ``"b"`` (the runs' names) added.

    Raises:
        IncomparableRunsError: the runs differ in dataset, manifest, protocol or judge (named in the message).
    """
    name_a, name_b = run_name(results_a, "A"), run_name(results_b, "B")
    problems = comparability_problems(results_a, results_b)
    if problems:
        raise IncomparableRunsError(
            f"cannot compare {name_a} with {name_b}; they differ in " + "; ".join(problems)
            + ". Compare runs judged by the same judge on the same dataset and protocol")
    judge = results_a.get("judge")
    flags = tuple(judge.get("per_image_metrics") or ()) if isinstance(judge, Mapping) else ()
    out = compare(results_a.get("records") or [], results_b.get("records") or [], n_boot, seed, interval, flags)
    out["rates"] = [*BASE_METRICS, *flags]
    return {"a": name_a, "b": name_b, **out}


def load_results(path: str | Path) -> dict:
    """A results dict from a run folder (its ``results.json``) or a results file."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
        if not path.is_file():
            raise ActionBenchError(f"no {RESULTS_FILE} in {path.parent}; finish the run with "
                                   f"`actionbench judge --out {path.parent}`, or pass a results file")
    results = read_json(path, "results file")
    if not isinstance(results, Mapping) or not isinstance(results.get("records"), list):
        raise ActionBenchError(f"{path} has no records list: is it an ActionBench results file?")
    results.setdefault("run_name", path.parent.name if path.name == RESULTS_FILE else path.stem)
    return results


def compare_runs(paths: Sequence[str | Path], n_boot: int = 1000, seed: int = 0,
                 interval: str = "cluster") -> list[dict]:
    """Each run against the first: ``compare_results(first, other)`` for every other run (first - other)."""
    if len(paths) < 2:
        raise ActionBenchError(f"compare needs at least two runs, got {len(paths)}")
    loaded = [load_results(p) for p in paths]
    return [compare_results(loaded[0], other, n_boot, seed, interval) for other in loaded[1:]]


def comparison_table(comparisons: Sequence[Mapping]) -> pd.DataFrame:
    """One row per (comparison, metric): A, B, A - B, its 95 % interval and p-value, as display text.

    Rates (action, subject, total and the judge's per-image metrics such as leak) are shown in percent and
    percentage points; other metrics as they are.
    """
    import pandas as pd

    rows = []
    for c in comparisons:
        for name, m in c["metrics"].items():
            rate = name in c.get("rates", BASE_METRICS)
            scale, unit = (100.0, " pp") if rate else (1.0, "")
            digits = 1 if rate else 4
            lo, hi = (scale * x for x in m["ci95"])
            rows.append({
                "comparison": f"{c['a']} - {c['b']}", "metric": name,
                "A": f"{scale * m['a']:.{digits}f}", "B": f"{scale * m['b']:.{digits}f}",
                "A - B": f"{scale * m['difference']:+.{digits}f}{unit}",
                "95% interval": f"[{lo:+.{digits}f}, {hi:+.{digits}f}]",
                "p": _format_p(m["p_value"]),
            })
    return pd.DataFrame(rows)


def _format_p(p: float) -> str:
    if math.isnan(p):  # no resamples
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_comparisons(comparisons: Sequence[Mapping]) -> str:
    """The text ``actionbench compare`` prints: the table, then how the units were paired and the interval."""
    if not comparisons:
        return "nothing to compare"
    lines = [comparison_table(comparisons).to_string(index=False), ""]
    for c in comparisons:
        unpaired = c["unpaired"]
        lines.append(f"{c['a']} - {c['b']}: {c['n_paired']} units paired on {c['paired_on']}"
                     + (f"; unpaired: {unpaired['only_a']} only in A, {unpaired['only_b']} only in B"
                        if unpaired["only_a"] or unpaired["only_b"] else ""))
    interval = comparisons[0]["interval"]
    lines.append(f"interval: {interval['kind']}, {interval.get('method', '')} "
                 f"(n_boot {interval['n_boot']}, seed {interval['seed']}); p: two-sided, no difference")
    if len(comparisons) > 1:
        lines.append(f"{len(comparisons)} comparisons: p-values are not adjusted for multiplicity "
                     "(Holm: multiply the smallest by the number of comparisons, and so on)")
    return "\n".join(lines)
