"""Action, subject and total accuracy with bootstrap intervals and per-action / per-subject breakdowns.

All accuracies are fractions in [0, 1] (the leaderboard shows them as percentages).
``total`` counts an image only when both the action and the subject are right on that
same image, so it can be far below the product of the two (the paper's Table 1).

The 95% interval is a percentile bootstrap over images: ``n_boot`` resamples of the
records with replacement, drawn once from ``numpy.random.default_rng(seed)`` and shared by
the three metrics (paired). Same records, ``n_boot`` and ``seed`` give the same numbers.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

REQUIRED_FIELDS = ("action_id", "subject_id", "action_ok", "subject_ok")


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


def compute_metrics(records: Iterable[Mapping[str, Any]], n_boot: int = 1000, seed: int = 0) -> dict:
    """Accuracies with percentile-bootstrap 95% intervals and per-action / per-subject means.

    Args:
        records: per-image dicts with ``action_id``, ``subject_id``, ``action_ok``, ``subject_ok``
            (the ``records`` of a results JSON).
        n_boot: bootstrap resamples (0 gives intervals equal to the mean).
        seed: seed of the resampling.

    Returns:
        ``{"n", "action": {"mean", "ci95": [lo, hi]}, "subject": {...}, "total": {...},
        "per_action": {action_id: {"n", "action", "subject", "total"}}, "per_subject": {...},
        "bootstrap": {"n_boot", "seed", "method"}}``. With no records, means and intervals are None.

    Raises:
        ValueError: a record lacks a field or a judgment is not a boolean (the message names the record).
    """
    import numpy as np

    records = list(records)
    action_ok, subject_ok, action_ids, subject_ids = [], [], [], []
    for i, r in enumerate(records):
        where = str(r.get("unit_id", f"#{i}")) if isinstance(r, Mapping) else f"#{i}"
        if not isinstance(r, Mapping):
            raise ValueError(f"record {where} must be a dict, got {type(r).__name__}")
        missing = [f for f in REQUIRED_FIELDS if f not in r]
        if missing:
            raise ValueError(f"record {where} lacks {', '.join(missing)}; records need {', '.join(REQUIRED_FIELDS)}")
        action_ok.append(_as_bool(r["action_ok"], "action_ok", where))
        subject_ok.append(_as_bool(r["subject_ok"], "subject_ok", where))
        action_ids.append(str(r["action_id"]))
        subject_ids.append(str(r["subject_id"]))
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")

    n = len(records)
    bootstrap = {"n_boot": int(n_boot), "seed": int(seed), "method": "percentile"}
    if n == 0:
        empty = {"mean": None, "ci95": None}
        return {"n": 0, "action": dict(empty), "subject": dict(empty), "total": dict(empty),
                "per_action": {}, "per_subject": {}, "bootstrap": bootstrap}

    action = np.asarray(action_ok, dtype=np.float64)
    subject = np.asarray(subject_ok, dtype=np.float64)
    total = action * subject
    stacked = np.stack([action, subject, total])  # (3, n)
    means = stacked.mean(axis=1)
    if n_boot:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        boot = stacked[:, idx].mean(axis=2)  # (3, n_boot): same resamples for the three metrics
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=1)
    else:
        lo = hi = means

    def summary(j: int) -> dict:
        return {"mean": float(means[j]), "ci95": [float(lo[j]), float(hi[j])]}

    return {
        "n": n,
        "action": summary(0),
        "subject": summary(1),
        "total": summary(2),
        "per_action": _breakdown(action_ids, action, subject, total),
        "per_subject": _breakdown(subject_ids, action, subject, total),
        "bootstrap": bootstrap,
    }
