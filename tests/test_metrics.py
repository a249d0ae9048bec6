"""compute_metrics on a hand-computed example; bootstrap intervals seeded and sane."""
import pytest

from actionbench.metrics import compute_metrics


def rec(action_id, subject_id, action_ok, subject_ok, k=0):
    return {"unit_id": f"{action_id}/{subject_id}/{k}", "action_id": action_id, "subject_id": subject_id,
            "action_ok": action_ok, "subject_ok": subject_ok}


# cheer: 3 of 4 actions right, 2 subjects right, 1 both; sit: 1 action, 4 subjects, 1 both.
RECORDS = [
    rec("cheer", "man", True, True, 0),
    rec("cheer", "man", True, False, 1),
    rec("cheer", "cat", True, False, 0),
    rec("cheer", "cat", False, True, 1),
    rec("sit", "man", False, True, 0),
    rec("sit", "man", True, True, 1),
    rec("sit", "cat", False, True, 0),
    rec("sit", "cat", False, True, 1),
]


def test_hand_computed_means_and_breakdowns():
    m = compute_metrics(RECORDS)
    assert m["n"] == 8
    assert m["action"]["mean"] == pytest.approx(4 / 8)
    assert m["subject"]["mean"] == pytest.approx(6 / 8)
    # total is "both right on the same image", not action x subject (0.5 * 0.75)
    assert m["total"]["mean"] == pytest.approx(2 / 8)
    assert list(m["per_action"]) == ["cheer", "sit"]  # first-appearance order
    assert m["per_action"]["cheer"] == {"n": 4, "action": 0.75, "subject": 0.5, "total": 0.25}
    assert m["per_action"]["sit"] == {"n": 4, "action": 0.25, "subject": 1.0, "total": 0.25}
    assert m["per_subject"]["man"] == {"n": 4, "action": 0.75, "subject": 0.75, "total": 0.5}
    assert m["per_subject"]["cat"] == {"n": 4, "action": 0.25, "subject": 0.75, "total": 0.0}
    assert m["bootstrap"] == {"n_boot": 1000, "seed": 0, "method": "percentile"}


def test_bootstrap_interval_contains_mean_and_is_deterministic():
    records = RECORDS * 5
    a, b = compute_metrics(records, seed=3), compute_metrics(records, seed=3)
    assert a == b
    for metric in ("action", "subject", "total"):
        lo, hi = a[metric]["ci95"]
        assert 0.0 <= lo <= a[metric]["mean"] <= hi <= 1.0
        assert hi - lo > 0.05  # 40 images: a real interval, not a point
    others = [compute_metrics(records, seed=s) for s in (4, 5, 6)]
    assert all(o["action"]["mean"] == a["action"]["mean"] for o in others)
    assert any(o[m]["ci95"] != a[m]["ci95"] for o in others for m in ("action", "subject", "total"))  # seed is used
    # more images, narrower interval
    wide, narrow = compute_metrics(RECORDS * 2), compute_metrics(RECORDS * 50)
    assert (narrow["action"]["ci95"][1] - narrow["action"]["ci95"][0]) < (wide["action"]["ci95"][1] - wide["action"]["ci95"][0])


def test_degenerate_and_empty_cases():
    all_right = compute_metrics([rec("cheer", "man", True, True)] * 10)
    assert all_right["total"] == {"mean": 1.0, "ci95": [1.0, 1.0]}
    no_boot = compute_metrics(RECORDS, n_boot=0)
    assert no_boot["action"]["ci95"] == [0.5, 0.5]
    empty = compute_metrics([])
    assert empty["n"] == 0 and empty["action"]["mean"] is None and empty["per_action"] == {}


def test_bad_records_are_named():
    with pytest.raises(ValueError, match="cheer/man/0.*action_ok"):
        compute_metrics([rec("cheer", "man", None, True)])
    with pytest.raises(ValueError, match="lacks subject_ok"):
        compute_metrics([{"action_id": "cheer", "subject_id": "man", "action_ok": True}])
