"""compare: paired differences by hand, pairing by unit and training seed, refusing runs that differ, the CLI."""
import json

import pytest
from click.testing import CliRunner

from actionbench.cli import main
from actionbench.results.compare import (
    IncomparableRunsError,
    compare,
    compare_results,
    compare_runs,
    comparison_table,
)
from actionbench.results.metrics import compute_metrics

ACTIONS = ["cheer", "sit", "wave", "jump", "kick"]
SUBJECTS = ["man", "cat", "dog", "owl"]


def rec(action_id, subject_id, k, action_ok, subject_ok=True, **extra):
    return {"unit_id": f"{action_id}/{subject_id}/{k}", "action_id": action_id, "subject_id": subject_id, "k": k,
            "seed": k, "action_ok": action_ok, "subject_ok": subject_ok, **extra}


def grid(right, **extra):
    """5 actions x 4 subjects x 2 images; ``right(a, s, k)`` gives action_ok."""
    return [rec(a, s, k, bool(right(i, j, k)), **extra) for i, a in enumerate(ACTIONS) for j, s in enumerate(SUBJECTS)
            for k in range(2)]


def results(records, method="adi", judge_version="2", dataset="mini", images_per_pair=2):
    return {"run_name": method, "spec": {"method": method, "dataset": dataset, "manifest_sha256": "abc",
                                         "protocol": {"images_per_pair": images_per_pair, "base_seed": 0}},
            "judge": {"name": "mini", "version": judge_version, "options": {}, "model": "CNN"},
            "metrics": compute_metrics(records, n_boot=100), "records": records}


# A: right where (action + subject + image) % 3 != 0 (27 of 40); B: the same, but cheer's image 0 always wrong.
RUN_A = grid(lambda i, j, k: (i + j + k) % 3 != 0)
RUN_B = grid(lambda i, j, k: (i + j + k) % 3 != 0 and not (i == 0 and k == 0))


def test_identical_runs_differ_by_exactly_zero():
    c = compare(RUN_A, RUN_A)
    for name in ("action", "subject", "total"):
        assert c["metrics"][name]["difference"] == 0.0 and c["metrics"][name]["ci95"] == [0.0, 0.0]
        assert c["metrics"][name]["p_value"] == 1.0
    assert c["n_paired"] == 40 and c["unpaired"] == {"only_a": 0, "only_b": 0} and c["paired_on"] == "unit_id"


def test_paired_difference_by_hand():
    lost = sum(r["action_ok"] for r in RUN_A if r["action_id"] == "cheer" and r["k"] == 0)  # hits B loses
    assert lost == 2
    c = compare(RUN_A, RUN_B, n_boot=2000)
    action = c["metrics"]["action"]
    assert action["a"] == pytest.approx(sum(r["action_ok"] for r in RUN_A) / 40)
    assert action["difference"] == pytest.approx(lost / 40) == pytest.approx(action["a"] - action["b"])
    assert c["metrics"]["subject"]["difference"] == 0.0
    assert c["metrics"]["total"]["difference"] == pytest.approx(lost / 40)
    lo, hi = action["ci95"]
    assert lo < action["difference"] < hi
    # the whole difference sits in one of five actions: new actions could show none, so no significance
    assert action["p_value"] > 0.05 and lo < 0 < hi
    assert c["interval"]["kind"] == "cluster(action,subject)" and c["interval"]["df"] == 3


def test_p_value_below_005_exactly_when_the_interval_excludes_zero():
    for shift in range(6):
        b = grid(lambda i, j, k, shift=shift: (i + j + k) % 3 != 0 and not (k == 0 and j < shift))
        m = compare(RUN_A, b, n_boot=500)["metrics"]["action"]
        excludes = not (m["ci95"][0] <= 0 <= m["ci95"][1])
        assert (m["p_value"] < 0.05) == excludes, (shift, m)


def test_pairing_keeps_shared_action_effects_out_of_the_difference():
    """The failure it prevents: intervals of a difference as wide as each run's own, when both runs share
    the actions' difficulty. Here B is A with one image flipped: the difference is known to within a few
    points, while each run alone is known to within 50."""
    strong = grid(lambda i, j, k: i < 2 or (i == 2 and k == 0))  # per-action accuracies 100, 100, 50, 0, 0 %
    flipped = [dict(r, action_ok=not r["action_ok"]) if r["unit_id"] == "jump/man/0" else r for r in strong]
    own = compute_metrics(strong)["action"]["ci95"]
    difference = compare(strong, flipped)["metrics"]["action"]["ci95"]
    assert own[1] - own[0] > 0.5
    assert difference[1] - difference[0] < 0.2  # one image in 40: t with 3 df still leaves some width


def test_pairs_by_train_seed_when_both_runs_have_the_same_seeds():
    a = [dict(r, train_seed=t) for t in (0, 1) for r in RUN_A]
    b = [dict(r, train_seed=t) for t in (0, 1) for r in RUN_B]
    c = compare(a, b, n_boot=200)
    assert c["paired_on"] == "unit_id, train_seed" and c["n_paired"] == 80
    assert c["metrics"]["action"]["difference"] == pytest.approx(2 / 40)
    assert c["interval"]["kind"] == "cluster(action,subject,train_seed)"


def test_averages_over_seeds_when_seeds_differ_and_counts_unpaired_units():
    # A: two seeds, seed 1 all wrong on cheer; B: old-style records (no train_seed), missing the owl's images
    a = [dict(r, train_seed=t, action_ok=r["action_ok"] and not (t == 1 and r["action_id"] == "cheer"))
         for t in (0, 1) for r in RUN_A]
    b = [r for r in RUN_A if r["subject_id"] != "owl"]
    c = compare(a, b, n_boot=200)
    assert c["paired_on"].startswith("unit_id (each run's images of a unit averaged over its training seeds)")
    assert c["n_paired"] == 30 and c["unpaired"] == {"only_a": 10, "only_b": 0}
    cheer_hits = sum(r["action_ok"] for r in b if r["action_id"] == "cheer")
    assert c["metrics"]["action"]["difference"] == pytest.approx(-cheer_hits / 2 / 30)  # half of cheer's hits lost


def test_numeric_detail_fields_both_runs_have_are_compared():
    a = [dict(r, detail={"action_p_target": 0.5, "pose": r["action_id"]}) for r in RUN_A]
    b = [dict(r, detail={"action_p_target": 0.25, "pose": "stand"}) for r in RUN_B]
    c = compare(a, b, n_boot=100)
    assert list(c["metrics"]) == ["action", "subject", "total", "detail.action_p_target"]
    assert c["metrics"]["detail.action_p_target"]["difference"] == pytest.approx(0.25)


def test_the_judges_per_image_metrics_are_compared_as_rates():
    """leak and total_clean (booleans in detail, declared by the judge) get a paired difference in percentage points."""
    a = [dict(r, detail={"leak": False, "total_clean": r["action_ok"]}) for r in RUN_A]
    b = [dict(r, detail={"leak": r["action_id"] == "cheer", "total_clean": r["action_ok"]}) for r in RUN_B]
    with_flags = [results(records, name) for records, name in ((a, "adi"), (b, "p_plus"))]
    for r in with_flags:
        r["judge"]["per_image_metrics"] = ["leak", "total_clean"]
    c = compare_results(*with_flags, n_boot=200)
    assert list(c["metrics"]) == ["action", "subject", "total", "leak", "total_clean"]
    assert c["metrics"]["leak"]["difference"] == pytest.approx(-8 / 40)  # cheer's 8 images leak in B only
    assert c["metrics"]["leak"]["ci95"][0] <= -8 / 40 <= c["metrics"]["leak"]["ci95"][1]
    assert c["metrics"]["total_clean"]["difference"] == pytest.approx(c["metrics"]["action"]["difference"])
    assert "-20.0 pp" in comparison_table([c]).to_string()
    with pytest.raises(ValueError, match="no detail.leak"):
        compare(RUN_A, RUN_B, per_image_metrics=("leak",))


def test_refuses_runs_with_another_judge_dataset_or_protocol():
    with pytest.raises(IncomparableRunsError, match=r"differ in judge: .*'version': '2'.*'version': '3'"):
        compare_results(results(RUN_A), results(RUN_B, "p_plus", judge_version="3"))
    with pytest.raises(IncomparableRunsError, match=r"dataset: 'mini' against 'v1'"):
        compare_results(results(RUN_A), results(RUN_B, dataset="v1"))
    with pytest.raises(IncomparableRunsError, match=r"protocol: .*'images_per_pair': 2.*'images_per_pair': 4"):
        compare_results(results(RUN_A), results(RUN_B, images_per_pair=4))
    moved = [dict(r, action_id="sit") if r["unit_id"] == "cheer/man/0" else r for r in RUN_B]
    with pytest.raises(IncomparableRunsError, match="unit 'cheer/man/0' is cheer/man in one run and sit/man"):
        compare(RUN_A, moved)
    with pytest.raises(IncomparableRunsError, match="share no unit_id"):
        compare(RUN_A, [dict(r, unit_id="x" + r["unit_id"]) for r in RUN_B])
    # a descriptive judge field (the model text) does not block a comparison
    other = results(RUN_B, "p_plus")
    other["judge"]["model"] = "CNN, refitted description"
    assert compare_results(results(RUN_A), other)["b"] == "p_plus"


def test_cli_prints_a_table_and_json_and_refuses_mismatches(tmp_path):
    paths = []
    for name, records, version in (("adi", RUN_A, "2"), ("p_plus", RUN_B, "2"), ("old_judge", RUN_B, "1")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(results(records, name, judge_version=version)))
        paths.append(folder)
    runner = CliRunner()
    table = runner.invoke(main, ["compare", str(paths[0]), str(paths[1] / "results.json"), "--n-boot", "200"])
    assert table.exit_code == 0, table.output
    assert "adi - p_plus" in table.output and "+5.0 pp" in table.output and "40 units paired on unit_id" in table.output
    as_json = runner.invoke(main, ["compare", str(paths[0]), str(paths[1]), "--json", "--n-boot", "200"])
    [parsed] = json.loads(as_json.output)
    assert parsed["metrics"]["action"]["difference"] == pytest.approx(2 / 40)
    assert parsed == compare_runs(paths[:2], n_boot=200)[0]
    refused = runner.invoke(main, ["compare", str(paths[0]), str(paths[2])])
    assert refused.exit_code == 2 and "cannot compare adi with old_judge" in refused.output


def test_a_run_with_seeds_pairs_with_a_training_free_one_by_unit_whatever_the_ids_seed_suffix():
    """A 3-seed run's unit ids carry their seed (``UNIT@SEED``); against a training-free run of one seed (plain
    ids) each unit's images are averaged over the seeds, not left unpaired."""
    a = [dict(r, unit_id=f"{r['unit_id']}@{t}", train_seed=t,
              action_ok=r["action_ok"] and not (t == 1 and r["action_id"] == "cheer")) for t in (0, 1) for r in RUN_A]
    c = compare(a, RUN_A, n_boot=200)
    assert c["n_paired"] == 40 and c["unpaired"] == {"only_a": 0, "only_b": 0}
    cheer_hits = sum(r["action_ok"] for r in RUN_A if r["action_id"] == "cheer")
    assert c["metrics"]["action"]["difference"] == pytest.approx(-cheer_hits / 2 / 40)
