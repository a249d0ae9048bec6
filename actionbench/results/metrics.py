"""Action, subject and total accuracy with clustered 95 % intervals and per-action / per-subject breakdowns.

All accuracies are fractions in [0, 1] (the leaderboard shows them as percentages).
``total`` counts an image only when both the action and the subject are right on that
same image, so it can be far below the product of the two (the paper's Table 1).

The default interval (``interval="cluster"``) treats actions (with their training seeds) and
subjects as the sampled units, not images: see ``actionbench.results.stats`` for the method and
``docs/reading-the-leaderboard.md`` for how to read it. ``interval="image"`` is the percentile
bootstrap over images used before (as if images were independent; too narrow), and gives the
same numbers as then. Every metrics block names its interval in ``metrics["interval"]``.
The three metrics share one set of resamples. Same records, kind, ``n_boot`` and ``seed`` give
the same numbers.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .stats import NO_SEED, Design, base_kind, check_interval, estimate

REQUIRED_FIELDS = ("action_id", "subject_id", "action_ok", "subject_ok")
LEGACY_KEYS = ("n", "action", "subject", "total", "per_action", "per_subject", "bootstrap")


def _as_bool(value: Any, field: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # numpy bools and 0/1 from CSV imports
        return bool(value)
    try:
        import numpy as np

        if isinstance(value, np.bool_):
            return bool(value)
    except ImportError:  # pragma: no cover
        pass
    raise ValueError(f"record {where}: {field} must be true or false, got {value!r}; judge the image first")


def record_label(record: Any, i: int) -> str:
    """How a message names record ``i``: its ``unit_id`` (and training seed), else ``#i``."""
    if not isinstance(record, Mapping):
        return f"#{i}"
    label = str(record.get("unit_id", f"#{i}"))
    return f"{label} (train_seed {record['train_seed']})" if record.get("train_seed") is not None else label


def train_seed_of(record: Mapping) -> str:
    """The record's training seed as a label; ``NO_SEED`` for records from before ``--train-seeds``."""
    seed = record.get("train_seed")
    return NO_SEED if seed is None else str(seed)


def judgments(records: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping], dict[str, list], Design]:
    """Checked records, their per-image 0/1 ``action``, ``subject``, ``total`` and their design.

    Raises:
        ValueError: a record is not a dict, lacks a field, or a judgment is not a boolean
            (the message names the record).
    """
    records = list(records)
    action_ok, subject_ok = [], []
    for i, r in enumerate(records):
        where = record_label(r, i)
        if not isinstance(r, Mapping):
            raise ValueError(f"record {where} must be a dict, got {type(r).__name__}")
        missing = [f for f in REQUIRED_FIELDS if f not in r]
        if missing:
            raise ValueError(f"record {where} lacks {', '.join(missing)}; records need {', '.join(REQUIRED_FIELDS)}")
        action_ok.append(_as_bool(r["action_ok"], "action_ok", where))
        subject_ok.append(_as_bool(r["subject_ok"], "subject_ok", where))
    values = {
        "action": [float(a) for a in action_ok],
        "subject": [float(s) for s in subject_ok],
        "total": [float(a and s) for a, s in zip(action_ok, subject_ok)],
    }
    design = Design.of([str(r["action_id"]) for r in records], [str(r["subject_id"]) for r in records],
                       [train_seed_of(r) for r in records])
    return records, values, design


def detail_flags(records: Sequence[Mapping], names: Sequence[str]) -> dict[str, list[float]]:
    """Per-image metrics from the records' ``detail``: name -> one 0/1 per record.

    Raises:
        ValueError: a record has no such boolean in its ``detail`` (the message names the record).
    """
    out: dict[str, list[float]] = {}
    for name in names:
        column = []
        for i, r in enumerate(records):
            detail = r.get("detail")
            if not isinstance(detail, Mapping) or name not in detail:
                raise ValueError(f"record {record_label(r, i)} has no detail.{name}, a per-image metric of its judge; "
                                 "judge the run again with that judge (`actionbench judge --out RUN`)")
            column.append(float(_as_bool(detail[name], f"detail.{name}", record_label(r, i))))
        out[name] = column
    return out


def _breakdown(keys: list[str], columns: Mapping[str, Any]) -> dict[str, dict]:
    """Per key (first-appearance order, the dataset's order for runner output): n and each column's mean."""
    import numpy as np

    labels = np.asarray(keys, dtype=object)
    out: dict[str, dict] = {}
    for key in dict.fromkeys(keys):
        mask = labels == key
        out[key] = {"n": int(mask.sum()), **{name: float(column[mask].mean()) for name, column in columns.items()}}
    return out


def compute_metrics(records: Iterable[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0,
                    interval: str = "cluster", extra: Mapping[str, Sequence[float]] | None = None,
                    per_image_metrics: Sequence[str] = (), subject_categories: Mapping[str, str] | None = None) -> dict:
    """Accuracies with 95 % intervals and per-action / per-subject (and per-training-seed) means.

    Args:
        records: per-image dicts with ``action_id``, ``subject_id``, ``action_ok``, ``subject_ok``
            and optionally ``train_seed`` (the ``records`` of a results JSON).
        n_boot: bootstrap resamples (0 gives intervals equal to the mean).
        seed: seed of the resampling.
        interval: ``"cluster"`` (default: actions with their training seeds and subjects are the
            units), ``"cluster-percentile"`` (plain two-way bootstrap, for comparison) or ``"image"``
            (the old percentile bootstrap over images). See ``actionbench.results.stats``.
        extra: other per-image metrics, name -> one number per record (0/1 or real); each gets a
            mean and an interval under ``"other"``, from the same resamples.
        per_image_metrics: booleans in every record's ``detail`` (its judge's ``per_image_metrics``,
            e.g. ``("leak", "total_clean")``); each is reported beside action, subject and total (mean,
            interval from the same resamples, per action, per subject), listed in ``"per_image_metrics"``.
        subject_categories: subject id -> category ("human", "personality", "animal"); adds
            ``"per_category"``: per category its subjects, n, and every metric with its own clustered
            interval (the category's images only). Subjects missing from it are left out there.

    Returns:
        ``{"n", "action": {"mean", "ci95": [lo, hi]}, "subject": {...}, "total": {...},
        "per_action": {action_id: {"n", "action", "subject", "total"}}, "per_subject": {...},
        "bootstrap": {"n_boot", "seed", "method"}, "interval": {"kind", "n_boot", "seed", "method", ...}}``,
        plus ``"other"`` when ``extra`` is given, ``"per_train_seed"`` ({action: {seed: {...}}})
        when records carry a ``train_seed``, and the per-image metrics and ``"per_category"`` when
        asked for. With no records, means and intervals are None.

    Raises:
        ValueError: a record lacks a field, a judgment or per-image metric is not a boolean, or an
            ``extra`` metric has the wrong length (the message names the record or metric).
        ConfigError: an unknown interval kind or a negative ``n_boot``.
    """
    import numpy as np

    records, values, design = judgments(records)
    flags = list(per_image_metrics)
    values.update(detail_flags(records, flags))
    names = ["action", "subject", "total", *flags]
    for name, column in (extra or {}).items():
        if len(column) != len(records):
            raise ValueError(f"extra metric {name!r} has {len(column)} values for {len(records)} records; "
                             "give one number per record, in the records' order")
        names.append(name)
        values[name] = [float(v) for v in column]
    check_interval(interval, n_boot)
    n = len(records)
    judged = names[:3 + len(flags)]  # the metrics with breakdowns (not the ``extra`` ones)
    if n == 0:
        empty = {"mean": None, "ci95": None}
        out = {"n": 0, **{name: dict(empty) for name in judged}, "per_action": {}, "per_subject": {},
               "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "method": _bootstrap_method(interval)},
               "interval": {"kind": interval, "n_boot": int(n_boot), "seed": int(seed)}}
        if extra:
            out["other"] = {name: dict(empty) for name in names[len(judged):]}
        if flags:
            out["per_image_metrics"] = flags
        if subject_categories is not None:
            out["per_category"] = {}
        return out

    stacked = np.asarray([values[name] for name in names], dtype=np.float64)
    result = estimate(stacked, design, interval, n_boot, seed)

    def summary(j: int) -> dict:
        return {"mean": float(result.mean[j]), "ci95": [float(result.low[j]), float(result.high[j])]}

    columns = {name: stacked[j] for j, name in enumerate(judged)}
    out = {
        "n": n,
        **{name: summary(j) for j, name in enumerate(judged)},
        "per_action": _breakdown([str(r["action_id"]) for r in records], columns),
        "per_subject": _breakdown([str(r["subject_id"]) for r in records], columns),
        "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "method": _bootstrap_method(interval)},
        "interval": result.interval,
    }
    if extra:
        out["other"] = {name: summary(j) for j, name in enumerate(names) if j >= len(judged)}
    if flags:
        out["per_image_metrics"] = flags
    if any(r.get("train_seed") is not None for r in records):
        out["per_train_seed"] = _per_train_seed(records, columns)
    if subject_categories is not None:
        out["per_category"] = _per_category(records, stacked[:len(judged)], judged, subject_categories,
                                            interval, n_boot, seed)
    return out


def _per_category(records: list[Mapping], stacked, names: list[str], categories: Mapping[str, str], interval: str,
                  n_boot: int, seed: int) -> dict[str, dict]:
    """Per subject category: its subjects, n, and each metric's mean with the clustered interval of its images alone."""
    import numpy as np

    subject_ids = [str(r["subject_id"]) for r in records]
    of_record = np.asarray([categories.get(s) for s in subject_ids], dtype=object)
    out: dict[str, dict] = {}
    for category in dict.fromkeys(c for c in of_record if c is not None):
        rows = np.flatnonzero(of_record == category)
        design = Design.of([str(records[i]["action_id"]) for i in rows], [subject_ids[i] for i in rows],
                           [train_seed_of(records[i]) for i in rows])
        result = estimate(stacked[:, rows], design, interval, n_boot, seed)
        out[str(category)] = {
            "subjects": list(dict.fromkeys(subject_ids[i] for i in rows)),
            "n": int(len(rows)),
            **{name: {"mean": float(result.mean[j]), "ci95": [float(result.low[j]), float(result.high[j])]}
               for j, name in enumerate(names)},
        }
    return out


def _bootstrap_method(interval: str) -> str:
    # "percentile" is what results files from before clustered intervals carry; readers that only know it keep working.
    return {"image": "percentile", "cluster-percentile": "percentile (two-way cluster)"}.get(interval, "cluster-t")


def _per_train_seed(records: list[Mapping], columns: Mapping[str, Any]) -> dict[str, dict]:
    """Per action, per training seed: the means of one customization (the per-seed numbers of ``--train-seeds``)."""
    import numpy as np

    action_ids = np.asarray([str(r["action_id"]) for r in records], dtype=object)
    seeds = np.asarray([train_seed_of(r) or "none" for r in records], dtype=object)
    out: dict[str, dict] = {}
    for action_id in dict.fromkeys(action_ids):
        mask = action_ids == action_id
        out[action_id] = _breakdown(list(seeds[mask]), {name: column[mask] for name, column in columns.items()})
    return out


def interval_kind(metrics: Mapping) -> dict:
    """The ``compute_metrics`` arguments that reproduce a stored metrics block's intervals.

    A block written before clustered intervals has no ``"interval"``: its intervals are the image bootstrap.
    """
    stored = metrics.get("interval") if isinstance(metrics.get("interval"), Mapping) else None
    boot = stored or (metrics.get("bootstrap") if isinstance(metrics.get("bootstrap"), Mapping) else {})
    kind = base_kind(str(stored.get("kind", "cluster"))) if stored else "image"
    return {"interval": kind, "n_boot": int(boot.get("n_boot", 1000)), "seed": int(boot.get("seed", 0))}


def recompute_metrics(records: Iterable[Mapping[str, Any]], stored: Mapping) -> dict:
    """``compute_metrics`` as the stored block was made: same interval kind, ``n_boot`` and seed, the
    per-image metrics it lists and the subject categories of its ``per_category``.

    For a block written before clustered intervals (no ``"interval"`` key) only the keys it had are returned,
    so a validator comparing the two accepts old results files unchanged.
    """
    listed = stored.get("per_image_metrics")
    by_category = stored.get("per_category")
    categories = ({str(s): str(c) for c, block in by_category.items() if isinstance(block, Mapping)
                   for s in block.get("subjects", ())} if isinstance(by_category, Mapping) else None)
    expected = compute_metrics(records, **interval_kind(stored),
                               per_image_metrics=[str(n) for n in listed] if isinstance(listed, list) else (),
                               subject_categories=categories)
    if "interval" not in stored:
        expected = {k: v for k, v in expected.items() if k in LEGACY_KEYS and (k != "bootstrap" or k in stored)}
    return expected
