"""compute_metrics on hand-computed examples: means, breakdowns, the clustered interval against its
closed form, the old image interval unchanged, training seeds, and the floor measures."""
import numpy as np
import pytest

from actionbench.errors import ConfigError
from actionbench.results.floor import floor_measures, mutual_information_bits
from actionbench.results.metrics import compute_metrics, interval_kind, recompute_metrics


def rec(action_id, subject_id, action_ok, subject_ok, k=0, **extra):
    return {"unit_id": f"{action_id}/{subject_id}/{k}", "action_id": action_id, "subject_id": subject_id,
            "action_ok": action_ok, "subject_ok": subject_ok, **extra}


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

# 4 actions x 3 subjects x 2 images; action_ok per (subject, image) in the order man, cat, dog.
PATTERN = {"cheer": [1, 1, 1, 1, 1, 0], "sit": [0, 0, 1, 0, 0, 0],
           "wave": [1, 0, 1, 1, 0, 0], "jump": [0, 1, 0, 0, 1, 0]}
SUBJECTS = ["man", "cat", "dog"]
GRID = [rec(a, s, bool(PATTERN[a][2 * j + k]), True, k)
        for a in PATTERN for j, s in enumerate(SUBJECTS) for k in range(2)]


def legacy_image_interval(records, n_boot=1000, seed=0):
    """The interval compute_metrics gave before issue 13 (a copy of that code), for the regression test."""
    action = np.asarray([r["action_ok"] for r in records], dtype=np.float64)
    subject = np.asarray([r["subject_ok"] for r in records], dtype=np.float64)
    stacked = np.stack([action, subject, action * subject])
    idx = np.random.default_rng(seed).integers(0, len(records), size=(n_boot, len(records)))
    lo, hi = np.percentile(stacked[:, idx].mean(axis=2), [2.5, 97.5], axis=1)
    return [[float(a), float(b)] for a, b in zip(lo, hi)]


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
    assert m["bootstrap"] == {"n_boot": 1000, "seed": 0, "method": "cluster-t"}
    assert m["interval"]["kind"] == "cluster(action,subject)" and m["interval"]["n_boot"] == 1000
    assert "per_train_seed" not in m and "other" not in m  # old-style records: the old keys, plus "interval"


def test_cluster_interval_matches_its_closed_form():
    """As n_boot grows, each one-way bootstrap variance times G/(G-1) is the sample variance of the cluster
    means over G (equal cluster sizes), so the interval is the logit-t interval on
    V = s2(action means)/A + s2(subject means)/S - s2(cell means)/(A S), with min(A, S) - 1 = 2 df."""
    from scipy.special import stdtrit

    cells = np.asarray([[PATTERN[a][2 * j] + PATTERN[a][2 * j + 1] for j in range(3)] for a in PATTERN]) / 2
    n_actions, n_subjects = cells.shape
    variance = (cells.mean(1).var(ddof=1) / n_actions + cells.mean(0).var(ddof=1) / n_subjects
                - cells.var(ddof=1) / (n_actions * n_subjects))
    mean = cells.mean()
    assert mean == pytest.approx(11 / 24)
    assert variance == pytest.approx(0.0193076599, abs=1e-9)  # 0.0202546 + 0.0121528 - 0.0130997
    half = stdtrit(2, 0.975) * np.sqrt(variance) / (mean * (1 - mean))
    centre = np.log(mean / (1 - mean))
    expected = [1 / (1 + np.exp(-(centre - half))), 1 / (1 + np.exp(-(centre + half)))]
    assert expected == pytest.approx([0.07075, 0.90388], abs=1e-5)

    m = compute_metrics(GRID, n_boot=20000, seed=1)
    assert m["action"]["mean"] == pytest.approx(11 / 24)
    assert m["action"]["ci95"] == pytest.approx(expected, abs=0.01)
    assert m["interval"]["df"] == 2 and m["interval"]["n_actions"] == 4 and m["interval"]["n_subjects"] == 3
    # every subject right: no variance, the interval is the point
    assert m["subject"] == {"mean": 1.0, "ci95": [1.0, 1.0]}


def test_cluster_interval_is_deterministic_for_a_seed_and_pinned():
    a, b = compute_metrics(GRID, seed=3), compute_metrics(GRID, seed=3)
    assert a == b
    # seed 3, n_boot 1000 (numpy's Generator streams are stable; a change here changes every results file)
    assert a["action"]["ci95"] == pytest.approx([0.070814997, 0.903795665], abs=1e-8)
    assert compute_metrics(GRID, seed=3, interval="cluster-percentile")["action"]["ci95"] == [0.125, 0.8333333333333334]
    others = [compute_metrics(GRID, seed=s)["action"]["ci95"] for s in (4, 5)]
    assert all(o != a["action"]["ci95"] for o in others)  # the seed is used


def test_cluster_interval_does_not_shrink_with_more_images_of_the_same_actions():
    """The failure it prevents: an interval that claims precision about new actions from 2 actions x 50 copies."""
    few, many = compute_metrics(RECORDS * 2), compute_metrics(RECORDS * 50)

    def width(m):
        return m["action"]["ci95"][1] - m["action"]["ci95"][0]

    assert width(many) > 0.5  # cheer 75 %, sit 25 %: two actions say little about a third
    image_few, image_many = (compute_metrics(r, interval="image") for r in (RECORDS * 2, RECORDS * 50))
    assert width(image_many) < width(image_few) and width(image_many) < 0.1  # the image interval does shrink
    assert width(few) > width(image_few)


def test_image_interval_is_the_old_interval_and_old_files_recompute():
    for records, seed in ((RECORDS * 5, 3), (GRID, 0)):
        m = compute_metrics(records, seed=seed, interval="image")
        assert [m[k]["ci95"] for k in ("action", "subject", "total")] == legacy_image_interval(records, seed=seed)
        assert m["bootstrap"] == {"n_boot": 1000, "seed": seed, "method": "percentile"}
        assert m["interval"]["kind"] == "image"
    # a metrics block from before issue 13 (no "interval") recomputes to exactly its own keys and values
    old = compute_metrics(GRID, interval="image")
    old.pop("interval")
    assert interval_kind(old) == {"interval": "image", "n_boot": 1000, "seed": 0}
    assert recompute_metrics(GRID, old) == old
    new = compute_metrics(GRID, n_boot=500, seed=7)
    assert interval_kind(new) == {"interval": "cluster", "n_boot": 500, "seed": 7}
    assert recompute_metrics(GRID, new) == new


def test_train_seeds_are_resampled_with_their_action_and_reported_per_seed():
    seeded = [dict(r, unit_id=f"{r['unit_id']}", train_seed=t) for t in (0, 1) for r in GRID]
    m = compute_metrics(seeded, n_boot=200)
    assert m["interval"]["kind"] == "cluster(action,subject,train_seed)"
    assert m["interval"]["train_seeds_per_action"] == [2, 2]
    assert list(m["per_train_seed"]["cheer"]) == ["0", "1"]
    assert m["per_train_seed"]["cheer"]["0"] == {"n": 6, "action": 5 / 6, "subject": 1.0, "total": 5 / 6}
    flipped = [dict(r, action_ok=not r["action_ok"]) if r["train_seed"] == 1 and r["action_id"] == "cheer" else r
               for r in seeded]
    assert compute_metrics(flipped, n_boot=200)["per_train_seed"]["cheer"]["1"]["action"] == pytest.approx(1 / 6)
    # the two-way bootstrap draws seeds inside each drawn action: one action, seed 0 all right, seed 1 all wrong
    two_seeds = [rec("cheer", "man", t == 0, True, k, train_seed=t) for t in (0, 1) for k in range(3)]
    assert compute_metrics(two_seeds, interval="cluster-percentile")["action"]["ci95"] == [0.0, 1.0]
    unseeded = [{k: v for k, v in r.items() if k != "train_seed"} for r in two_seeds]
    assert compute_metrics(unseeded, interval="cluster-percentile")["action"]["ci95"] == [0.5, 0.5]
    for kind in ("cluster", "cluster-percentile"):
        assert compute_metrics(seeded, n_boot=200, interval=kind)["action"]["mean"] == pytest.approx(11 / 24)


def test_extra_metrics_get_intervals_from_the_same_resamples():
    scores = [0.5 + 0.1 * r["action_ok"] for r in GRID]
    m = compute_metrics(GRID, n_boot=300, extra={"score": scores})
    assert m["other"]["score"]["mean"] == pytest.approx(0.5 + 0.1 * 11 / 24)
    lo, hi = m["other"]["score"]["ci95"]
    assert lo < m["other"]["score"]["mean"] < hi
    with pytest.raises(ValueError, match="extra metric 'score' has 2 values for 24 records"):
        compute_metrics(GRID, extra={"score": [1, 2]})


def test_cluster_speed_2000_resamples_of_368_records():
    import time

    records = [rec(f"a{a}", f"s{s}", (a + s + k) % 3 == 0, (s + k) % 5 != 0, k)
               for a in range(8) for s in range(23) for k in range(2)]
    compute_metrics(records[:10], n_boot=10)  # imports
    started = time.process_time()
    compute_metrics(records, n_boot=2000)
    assert time.process_time() - started < 1.0


def test_degenerate_and_empty_cases():
    all_right = compute_metrics([rec("cheer", "man", True, True)] * 10)
    assert all_right["total"] == {"mean": 1.0, "ci95": [1.0, 1.0]}
    assert "warning" in all_right["interval"]  # one action, one subject: nothing to generalise from
    no_boot = compute_metrics(RECORDS, n_boot=0)
    assert no_boot["action"]["ci95"] == [0.5, 0.5]
    empty = compute_metrics([])
    assert empty["n"] == 0 and empty["action"]["mean"] is None and empty["per_action"] == {}
    with pytest.raises(ConfigError, match="interval kind 'images' is unknown; choose one of cluster"):
        compute_metrics(RECORDS, interval="images")
    with pytest.raises(ConfigError, match="n_boot must be >= 0"):
        compute_metrics([], n_boot=-1)


def test_bad_records_are_named():
    with pytest.raises(ValueError, match="cheer/man/0.*action_ok"):
        compute_metrics([rec("cheer", "man", None, True)])
    with pytest.raises(ValueError, match="lacks subject_ok"):
        compute_metrics([{"action_id": "cheer", "subject_id": "man", "action_ok": True}])


# --- the floor: false alarms, lift, confusion, mutual information --------------------------------------------


def posed(action_id, pose, k, subject="man"):
    return rec(action_id, subject, pose == action_id, True, k, detail={"pose": pose, "subject": subject})


# cheer: 3 of 4 read as cheer, 1 as stand; sit: 2 sit, 1 cheer, 1 stand; wave: 1 wave, 2 cheer, 1 sit.
FLOOR = ([posed("cheer", p, k) for k, p in enumerate(["cheer", "cheer", "cheer", "stand"])]
         + [posed("sit", p, k) for k, p in enumerate(["sit", "sit", "cheer", "stand"])]
         + [posed("wave", p, k) for k, p in enumerate(["wave", "cheer", "cheer", "sit"])])


def test_false_alarms_lift_and_confusion_counts_by_hand():
    f = floor_measures(FLOOR, n_permutations=200)
    assert f["available"] and f["judged_class_key"] == "pose"
    assert f["confusion"] == {"rows": ["cheer", "sit", "wave"], "columns": ["cheer", "sit", "wave", "stand"],
                              "counts": [[3, 0, 0, 1], [1, 2, 0, 1], [2, 1, 1, 0]]}
    cheer, sit, wave = (f["per_action"][a] for a in ("cheer", "sit", "wave"))
    assert cheer == {"n": 4, "hit_rate": 0.75, "n_other": 8, "false_alarm_rate": 3 / 8, "lift": 0.75 - 3 / 8}
    assert sit["false_alarm_rate"] == 1 / 8 and sit["lift"] == pytest.approx(0.5 - 1 / 8)
    assert wave["false_alarm_rate"] == 0.0 and wave["lift"] == 0.25
    assert f["lift"] == pytest.approx(((0.75 - 3 / 8) + (0.5 - 1 / 8) + 0.25) / 3)


def test_mutual_information_by_hand_and_against_shuffled_targets():
    # independent table: 0 bits; a permutation table of 2 classes: exactly 1 bit
    assert mutual_information_bits(np.array([[2, 2], [1, 1]])) == pytest.approx(0.0, abs=1e-12)
    assert mutual_information_bits(np.array([[5, 0], [0, 5]])) == pytest.approx(1.0)
    f = floor_measures(FLOOR, n_permutations=500, seed=1)
    counts = np.array(f["confusion"]["counts"], dtype=float)
    p = counts / counts.sum()
    expected = sum(p[i, j] * np.log2(p[i, j] / (p[i].sum() * p[:, j].sum())) for i, j in zip(*np.nonzero(counts)))
    assert f["mutual_information"]["bits"] == pytest.approx(expected)
    assert 0 < f["mutual_information"]["shuffled_p95"] < 1.6  # log2(3): the most 3 targets can carry
    # a method whose pose ignores the target has lift about 0 and information at the shuffled level
    ignoring = [posed(a, ["cheer", "sit", "wave", "stand"][k % 4], k, f"s{k}") for a in ("cheer", "sit", "wave")
                for k in range(40)]
    g = floor_measures(ignoring)
    assert g["lift"] == pytest.approx(0.0, abs=1e-12)
    assert g["mutual_information"]["bits"] == pytest.approx(0.0, abs=1e-12)


def test_a_judge_without_predicted_classes_has_no_matrix_and_says_so():
    human = [rec("cheer", "man", True, True, 0, detail={"action_yes": 3, "action_no": 0})]
    f = floor_measures(human)
    assert f == {"available": False, "reason": f["reason"]} and "does not record one" in f["reason"]
    clip = [dict(r, detail={"action_pred": r["detail"]["pose"]}) for r in FLOOR]
    assert floor_measures(clip)["judged_class_key"] == "action_pred"
    assert floor_measures(clip)["confusion"] == floor_measures(FLOOR)["confusion"]


# --- per-image metrics a judge declares (leak, total_clean) and the per-category breakdown ---------------------


def flagged(record, leak):
    """``record`` with the mini-v2 judge's two per-image metrics in its detail."""
    clean = record["action_ok"] and record["subject_ok"] and not leak
    return {**record, "detail": {"leak": leak, "total_clean": clean}}


LEAKS = [flagged(r, bool(i % 3 == 0)) for i, r in enumerate(GRID)]
CATEGORIES = {"man": "human", "cat": "animal", "dog": "animal"}


def test_per_image_metrics_from_detail_are_summarised_like_action_with_the_same_resamples():
    plain = compute_metrics(GRID, n_boot=300)
    m = compute_metrics(LEAKS, n_boot=300, per_image_metrics=("leak", "total_clean"))
    leak = [r["detail"]["leak"] for r in LEAKS]
    clean = [r["detail"]["total_clean"] for r in LEAKS]
    assert m["per_image_metrics"] == ["leak", "total_clean"]
    assert m["leak"]["mean"] == pytest.approx(np.mean(leak)) and m["total_clean"]["mean"] == pytest.approx(np.mean(clean))
    lo, hi = m["leak"]["ci95"]
    assert lo < m["leak"]["mean"] < hi
    for name in ("action", "subject", "total"):  # adding metrics changes none of the others
        assert m[name] == plain[name]
    assert {k: v for k, v in m["per_subject"]["cat"].items() if k in plain["per_subject"]["cat"]} == plain["per_subject"]["cat"]
    assert m["per_action"]["cheer"]["leak"] == pytest.approx(np.mean(leak[:6]))
    assert set(m["per_subject"]["man"]) == {"n", "action", "subject", "total", "leak", "total_clean"}
    # as extra metrics, the same numbers
    as_extra = compute_metrics(GRID, n_boot=300, extra={"leak": [float(v) for v in leak]})
    assert as_extra["other"]["leak"] == m["leak"]


def test_per_category_breakdown_has_its_own_clustered_interval():
    m = compute_metrics(LEAKS, n_boot=300, per_image_metrics=("leak",), subject_categories=CATEGORIES)
    assert list(m["per_category"]) == ["human", "animal"]
    animals = m["per_category"]["animal"]
    assert animals["subjects"] == ["cat", "dog"] and animals["n"] == 16
    only_animals = compute_metrics([r for r in LEAKS if r["subject_id"] != "man"], n_boot=300, per_image_metrics=("leak",))
    for name in ("action", "subject", "total", "leak"):
        assert animals[name] == only_animals[name]
    assert "per_category" not in compute_metrics(LEAKS, n_boot=300)


def test_a_missing_per_image_metric_names_the_record_and_the_fix():
    with pytest.raises(ValueError, match=r"cheer/man/0 has no detail.leak.*actionbench judge --out RUN"):
        compute_metrics(GRID, per_image_metrics=("leak",))
    with pytest.raises(ValueError, match="detail.leak must be true or false"):
        compute_metrics([flagged(GRID[0], "yes")], per_image_metrics=("leak",))


def test_stored_blocks_recompute_with_their_per_image_metrics_and_categories_and_old_ones_as_before():
    m = compute_metrics(LEAKS, per_image_metrics=("leak", "total_clean"), subject_categories=CATEGORIES)
    assert recompute_metrics(LEAKS, m) == m
    old = compute_metrics(GRID)  # a block from before: no per-image metrics, no categories
    assert recompute_metrics(GRID, old) == old
    assert recompute_metrics(LEAKS, old) == old  # records with a detail but a block that never listed it


def test_results_with_a_judges_per_image_metrics_validate_and_an_edited_leak_does_not():
    from actionbench.dataset import load_dataset
    from actionbench.results.check import check_results
    from actionbench.results.record import build_results, image_record
    from run_fixtures import recorded_spec

    dataset = load_dataset("synthetic")
    records = []
    for i, u in enumerate(dataset.units()):
        action_ok, subject_ok, leak = i % 2 == 0, u.k == 0, i % 3 == 0
        path = f"images/{u.action_id}/{u.subject_id}/{u.k}.png"
        detail = {"leak": leak, "total_clean": action_ok and subject_ok and not leak}
        records.append(image_record(u.id, u.action_id, u.subject_id, u.k, u.seed, path, action_ok, subject_ok, detail,
                                    image_sha256="0" * 64))
    categories = {s.id: s.category for s in dataset.subjects}
    spec = recorded_spec()
    provenance = {"actionbench_version": None, "git_commit": None, "git_dirty": None, "packages": {},
                  "device": "cpu", "python": "3.11", "platform": "linux", "started_at": "2026-01-02T03:04:05+00:00",
                  "finished_at": "2026-01-02T03:05:00+00:00", "wall_time_s": 1.0, "machine": {}}
    judge = {"name": "mini-v2", "version": "1", "human": False, "per_image_metrics": ["leak", "total_clean"]}
    result = build_results("run", spec, judge, records, [], len(records), provenance, subject_categories=categories)
    metrics = result["metrics"]
    assert metrics["leak"]["mean"] == pytest.approx(np.mean([r["detail"]["leak"] for r in records]))
    assert metrics["per_category"]["animal"]["leak"]["ci95"] is not None
    assert check_results(result) == []
    edited = {**metrics, "per_category": {**metrics["per_category"],
                                          "animal": {**metrics["per_category"]["animal"], "leak": {"mean": 0.0, "ci95": [0, 0]}}}}
    assert any("per_category.animal.leak" in p for p in check_results({**result, "metrics": edited}))
    plain = build_results("run", spec, {"name": "tiny", "version": "1", "human": False}, records, [], len(records), provenance)
    assert "leak" not in plain["metrics"] and check_results(plain) == []
