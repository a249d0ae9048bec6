"""Action, subject and total accuracy with clustered 95 % intervals and per-action / per-subject breakdowns.

All accuracies are fractions in [0, 1] (the leaderboard shows them as percentages).
``total`` counts an image only when both the action and the subject are right on that
same image, so it can be far below the product of the two (the paper's Table 1).

The default interval (``interval="cluster"``) treats actions (with their training seeds) and
subjects as the sampled units, not images: see ``actionbench.stats`` for the method and
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


def _breakdown(keys: list[str], action, subject, total) -> dict[str, dict]:
    import numpy as np

    labels = np.asarray(keys, dtype=object)
    out: dict[str, dict] = {}
    for key in dict.fromkeys(keys):  # first-appearance order (the dataset's order for runner output)
        mask = labels == key
        n = int(mask.sum())
        out[key] = {
            "n": n,
            "action": float(action[mask].mean()),
            "subject": float(subject[mask].mean()),
            "total": float(total[mask].mean()),
        }
    return out


def compute_metrics(records: Iterable[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0,
                    interval: str = "cluster", extra: Mapping[str, Sequence[float]] | None = None) -> dict:
    """Accuracies with 95 % intervals and per-action / per-subject (and per-training-seed) means.

    Args:
        records: per-image dicts with ``action_id``, ``subject_id``, ``action_ok``, ``subject_ok``
            and optionally ``train_seed`` (the ``records`` of a results JSON).
        n_boot: bootstrap resamples (0 gives intervals equal to the mean).
        seed: seed of the resampling.
        interval: ``"cluster"`` (default: actions with their training seeds and subjects are the
            units), ``"cluster-percentile"`` (plain two-way bootstrap, for comparison) or ``"image"``
            (the old percentile bootstrap over images). See ``actionbench.stats``.
        extra: other per-image metrics, name -> one number per record (0/1 or real); each gets a
            mean and an interval under ``"other"``, from the same resamples.

    Returns:
        ``{"n", "action": {"mean", "ci95": [lo, hi]}, "subject": {...}, "total": {...},
        "per_action": {action_id: {"n", "action", "subject", "total"}}, "per_subject": {...},
        "bootstrap": {"n_boot", "seed", "method"}, "interval": {"kind", "n_boot", "seed", "method", ...}}``,
        plus ``"other"`` when ``extra`` is given and ``"per_train_seed"`` ({action: {seed: {...}}})
        when records carry a ``train_seed``. With no records, means and intervals are None.

    Raises:
        ValueError: a record lacks a field, a judgment is not a boolean, or an ``extra`` metric
            has the wrong length (the message names the record or metric).
        ConfigError: an unknown interval kind or a negative ``n_boot``.
    """
    import numpy as np

    records, values, design = judgments(records)
    names = ["action", "subject", "total"]
    for name, column in (extra or {}).items():
        if len(column) != len(records):
            raise ValueError(f"extra metric {name!r} has {len(column)} values for {len(records)} records; "
                             "give one number per record, in the records' order")
        names.append(name)
        values[name] = [float(v) for v in column]
    check_interval(interval, n_boot)
    n = len(records)
    if n == 0:
        empty = {"mean": None, "ci95": None}
        out = {"n": 0, "action": dict(empty), "subject": dict(empty), "total": dict(empty),
               "per_action": {}, "per_subject": {},
               "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "method": _bootstrap_method(interval)},
               "interval": {"kind": interval, "n_boot": int(n_boot), "seed": int(seed)}}
        if extra:
            out["other"] = {name: dict(empty) for name in names[3:]}
        return out

    stacked = np.asarray([values[name] for name in names], dtype=np.float64)
    result = estimate(stacked, design, interval, n_boot, seed)

    def summary(j: int) -> dict:
        return {"mean": float(result.mean[j]), "ci95": [float(result.low[j]), float(result.high[j])]}

    action, subject, total = stacked[:3]
    out = {
        "n": n,
        "action": summary(0),
        "subject": summary(1),
        "total": summary(2),
        "per_action": _breakdown([str(r["action_id"]) for r in records], action, subject, total),
        "per_subject": _breakdown([str(r["subject_id"]) for r in records], action, subject, total),
        "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "method": _bootstrap_method(interval)},
        "interval": result.interval,
    }
    if extra:
        out["other"] = {name: summary(j) for j, name in enumerate(names) if j >= 3}
    if any(r.get("train_seed") is not None for r in records):
        out["per_train_seed"] = _per_train_seed(records, action, subject, total)
    return out


def _bootstrap_method(interval: str) -> str:
    # "percentile" is what results files before issue 13 carry; readers that only know it keep working.
    return {"image": "percentile", "cluster-percentile": "percentile (two-way cluster)"}.get(interval, "cluster-t")


def _per_train_seed(records: list[Mapping], action, subject, total) -> dict[str, dict]:
    """Per action, per training seed: the means of one customization (the per-seed numbers of ``--train-seeds``)."""
    import numpy as np

    action_ids = np.asarray([str(r["action_id"]) for r in records], dtype=object)
    seeds = np.asarray([train_seed_of(r) or "none" for r in records], dtype=object)
    out: dict[str, dict] = {}
    for action_id in dict.fromkeys(action_ids):
        mask = action_ids == action_id
        out[action_id] = _breakdown(list(seeds[mask]), action[mask], subject[mask], total[mask])
    return out


def interval_kind(metrics: Mapping) -> dict:
    """The ``compute_metrics`` arguments that reproduce a stored metrics block's intervals.

    A block written before issue 13 has no ``"interval"``: its intervals are the image bootstrap.
    """
    stored = metrics.get("interval") if isinstance(metrics.get("interval"), Mapping) else None
    boot = stored or (metrics.get("bootstrap") if isinstance(metrics.get("bootstrap"), Mapping) else {})
    kind = base_kind(str(stored.get("kind", "cluster"))) if stored else "image"
    return {"interval": kind, "n_boot": int(boot.get("n_boot", 1000)), "seed": int(boot.get("seed", 0))}


def recompute_metrics(records: Iterable[Mapping[str, Any]], stored: Mapping) -> dict:
    """``compute_metrics`` as the stored block was made: same interval kind, ``n_boot`` and seed.

    For a block written before issue 13 (no ``"interval"`` key) only the keys it had are returned,
    so a validator comparing the two accepts old results files unchanged.
    """
    expected = compute_metrics(records, **interval_kind(stored))
    if "interval" not in stored:
        expected = {k: v for k, v in expected.items() if k in LEGACY_KEYS and (k != "bootstrap" or k in stored)}
    return expected
