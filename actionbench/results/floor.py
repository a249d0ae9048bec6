"""The floor of action accuracy: false alarms, lift, the confusion matrix and mutual information.

A method that draws the same few poses whatever the target action still scores hits on the
actions those poses happen to be. Action accuracy alone cannot tell it from a method that
learned the actions; what it lacks is *dependence* of the judged pose on the target:

* **false-alarm rate** of action ``a``: the share of images made for *other* actions that the
  judge reads as ``a``;
* **lift** of ``a``: hit rate (action accuracy on images made for ``a``) minus its false-alarm
  rate; 0 when the judged pose ignores the target, 1 for a perfect method. ``lift`` overall
  is the mean over actions;
* the **confusion matrix**: target action x judged pose class, image counts;
* the **mutual information** between target action and judged pose class (bits, plug-in
  estimate from the confusion matrix), with the 95th percentile of the same estimate after
  shuffling the targets over the images: the level a method reaches by chance at this sample
  size (the plug-in estimate is biased upwards, so compare with the shuffled level, not 0).

These need the judge's predicted class per image: ``detail["pose"]`` (the mini judge) or
``detail["action_pred"]`` (``clip_zero_shot``, ``few_shot``). A judge that records none (the
human judge records votes) yields no false alarms, lift or matrix, and says so.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

JUDGED_CLASS_KEYS = ("pose", "action_pred")  # where judges put the predicted action / pose class


def judged_class_key(records: list[Mapping]) -> str | None:
    """The ``detail`` key holding every record's predicted class, or None when some record lacks it."""
    for key in JUDGED_CLASS_KEYS:
        if records and all(isinstance(r.get("detail"), Mapping) and r["detail"].get(key) is not None for r in records):
            return key
    return None


def confusion_matrix(targets: list[str], judged: list[str]) -> dict:
    """Counts of (target action, judged class): rows are targets (first appearance), columns the
    targets in the same order and then every other judged class, sorted."""
    rows = list(dict.fromkeys(targets))
    columns = rows + sorted(set(judged) - set(rows))
    row_index, column_index = {r: i for i, r in enumerate(rows)}, {c: i for i, c in enumerate(columns)}
    counts = np.zeros((len(rows), len(columns)), dtype=np.int64)
    np.add.at(counts, ([row_index[t] for t in targets], [column_index[j] for j in judged]), 1)
    return {"rows": rows, "columns": columns, "counts": counts.tolist()}


def mutual_information_bits(counts: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (bits) of contingency tables ``(..., R, C)`` of counts."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=(-2, -1), keepdims=True)
    joint = counts / total
    outer = joint.sum(axis=-1, keepdims=True) * joint.sum(axis=-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / np.where(outer > 0, outer, 1.0)), 0.0)
    return terms.sum(axis=(-2, -1))


def shuffled_mutual_information(target_index: np.ndarray, judged_index: np.ndarray, n_rows: int, n_columns: int,
                                n_permutations: int, seed: int) -> np.ndarray:
    """Mutual information after ``n_permutations`` shuffles of the targets over the images."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(target_index, (n_permutations, 1)), axis=1)
    cells = shuffled * n_columns + judged_index[None, :] + (n_rows * n_columns) * np.arange(n_permutations)[:, None]
    counts = np.bincount(cells.ravel(), minlength=n_permutations * n_rows * n_columns)
    return mutual_information_bits(counts.reshape(n_permutations, n_rows, n_columns))


def floor_measures(records: Iterable[Mapping[str, Any]], n_permutations: int = 1000, seed: int = 0) -> dict:
    """False alarms, lift, confusion matrix and mutual information of judged records.

    Args:
        records: per-image dicts with ``action_id``, ``action_ok`` and the judge's ``detail``.
        n_permutations: target shuffles for the chance level of the mutual information.
        seed: seed of the shuffles.

    Returns:
        ``{"available": True, "judged_class_key", "per_action": {action: {"n", "hit_rate",
        "n_other", "false_alarm_rate", "lift"}}, "lift", "confusion": {"rows", "columns", "counts"},
        "mutual_information": {"bits", "shuffled_p95", "n_permutations", "seed"}}``; or
        ``{"available": False, "reason"}`` when the judge records no predicted class.
        ``false_alarm_rate`` and ``lift`` are None for an action when no other action has images.
    """
    records = list(records)
    key = judged_class_key(records)
    if key is None:
        missing = sum(not (isinstance(r.get("detail"), Mapping) and any(r["detail"].get(k) is not None
                                                                      for k in JUDGED_CLASS_KEYS)) for r in records)
        reason = ("no records" if not records else
                  f"{missing} of {len(records)} records have no predicted class in detail "
                  f"({' or '.join(JUDGED_CLASS_KEYS)}): this judge does not record one, so there is no "
                  "false-alarm rate, lift or confusion matrix")
        return {"available": False, "reason": reason}
    targets = [str(r["action_id"]) for r in records]
    judged = [str(r["detail"][key]) for r in records]
    hits = np.asarray([bool(r["action_ok"]) for r in records], dtype=np.float64)
    target_array, judged_array = np.asarray(targets, dtype=object), np.asarray(judged, dtype=object)

    per_action: dict[str, dict] = {}
    for action in dict.fromkeys(targets):
        own = target_array == action
        other = ~own
        false_alarm = float((judged_array[other] == action).mean()) if other.any() else None
        hit_rate = float(hits[own].mean())
        per_action[action] = {"n": int(own.sum()), "hit_rate": hit_rate, "n_other": int(other.sum()),
                              "false_alarm_rate": false_alarm,
                              "lift": None if false_alarm is None else hit_rate - false_alarm}
    lifts = [block["lift"] for block in per_action.values() if block["lift"] is not None]

    confusion = confusion_matrix(targets, judged)
    row_index = {r: i for i, r in enumerate(confusion["rows"])}
    column_index = {c: i for i, c in enumerate(confusion["columns"])}
    shuffled = shuffled_mutual_information(
        np.asarray([row_index[t] for t in targets]), np.asarray([column_index[j] for j in judged]),
        len(confusion["rows"]), len(confusion["columns"]), n_permutations, seed)
    return {
        "available": True,
        "judged_class_key": key,
        "per_action": per_action,
        "lift": float(np.mean(lifts)) if lifts else None,
        "confusion": confusion,
        "mutual_information": {
            "bits": float(mutual_information_bits(np.asarray(confusion["counts"]))),
            "shuffled_p95": float(np.percentile(shuffled, 95)) if n_permutations else None,
            "n_permutations": int(n_permutations), "seed": int(seed),
        },
    }
