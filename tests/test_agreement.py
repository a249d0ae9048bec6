"""Agreement statistics on labels whose answers are known, their intervals, and publishing labels with a run."""
from __future__ import annotations

import math

import numpy as np
import pytest
from test_human import _seed_labels, _synthetic_run, make_app

from actionbench.errors import ConfigError

nan = float("nan")


# --- statistics against hand-worked and published answers ---------------------------------------------


def test_cohen_kappa_second_textbook_table():
    from actionbench.evaluators.agreement_stats import cohen_kappa

    # Wikipedia "Cohen's kappa", second example: yes/yes 45, yes/no 15, no/yes 25, no/no 15.
    # p_o = 0.60, p_e = 0.6 * 0.7 + 0.4 * 0.3 = 0.54, kappa = 0.06 / 0.46 = 0.1304
    a = [1] * 45 + [1] * 15 + [0] * 25 + [0] * 15
    b = [1] * 45 + [0] * 15 + [1] * 25 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.06 / 0.46, abs=1e-9)
    assert cohen_kappa(["x", "y", "x"], ["x", "y", "x"]) == pytest.approx(1.0)  # perfect agreement


def test_krippendorff_alpha_known_answers():
    from actionbench.evaluators.agreement_stats import krippendorff_alpha

    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units,
    # missing values; nominal alpha = 0.743.
    table = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
             [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
             [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
             [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    assert krippendorff_alpha(table) == pytest.approx(0.743, abs=5e-4)
    # Worked by hand, two raters, yes/no: units (1,1), (1,0), (0,0), (0,0). Values: three 1s, five 0s
    # (n = 8); observed disagreement 2/8, expected 2 * 3 * 5 / (8 * 7); alpha = 1 - (2/8) / (30/56) = 8/15.
    assert krippendorff_alpha([[1, 1, 0, 0], [1, 0, 0, 0]]) == pytest.approx(8 / 15, abs=1e-9)
    assert krippendorff_alpha([[1, 0, 1, nan], [1, 0, 1, 0]]) == pytest.approx(1.0)  # perfect agreement
    assert krippendorff_alpha([[1, 1, 1], [1, 1, 1]]) is None  # one value only: undefined
    assert krippendorff_alpha([[1, nan], [nan, 0]]) is None  # no unit rated twice


def test_fleiss_kappa_perfect_agreement_and_its_interval():
    from actionbench.evaluators.agreement_stats import fleiss_kappa, fleiss_kappa_ci

    table = [[3, 0], [0, 3]] * 6
    assert fleiss_kappa(table) == pytest.approx(1.0)
    low, high = fleiss_kappa_ci(table)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_wilson_interval_matches_the_formula():
    from actionbench.evaluators.agreement_stats import wilson

    k, n, z = 73, 80, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson(k, n) == pytest.approx([centre - half, centre + half], abs=1e-9)
    assert wilson(0, 0) is None


def test_kappa_interval_is_repeatable_and_resamples_whole_images():
    from actionbench.evaluators.agreement_stats import binary_kappa_ci, cohen_kappa

    rng = np.random.default_rng(3)
    truth = rng.random(60) < 0.5
    judge = np.where(rng.random(60) < 0.8, truth, ~truth)
    ci = binary_kappa_ci(judge, truth, list(range(60)))
    assert ci == binary_kappa_ci(judge, truth, list(range(60)))  # same labels, same interval
    assert ci[0] < cohen_kappa(list(judge), list(truth)) < ci[1]
    # every image counted twice (two runs holding the same images): as rows the data look twice as
    # large and the interval narrows; resampled by image it is the interval of the 60 images
    twice_rows = binary_kappa_ci(np.r_[judge, judge], np.r_[truth, truth], list(range(120)))
    twice_images = binary_kappa_ci(np.r_[judge, judge], np.r_[truth, truth], list(range(60)) * 2)
    assert twice_rows[1] - twice_rows[0] < 0.85 * (ci[1] - ci[0])
    assert twice_images[1] - twice_images[0] == pytest.approx(ci[1] - ci[0], rel=0.15)
    assert binary_kappa_ci([True, False], [True, False], ["a", "a"]) is None  # one image: no interval


# --- the report ---------------------------------------------------------------------------------------------


def test_inter_annotator_reports_alpha_and_intervals(tmp_path):
    from actionbench.evaluators.agreement import inter_annotator
    from actionbench.evaluators.agreement_stats import cohen_kappa, krippendorff_alpha

    _, store, dataset, (run,) = make_app(tmp_path)
    n = len(run.units())
    alice = [(i % 2 == 0, i % 3 == 0) for i in range(n)]
    bob = [(i % 2 == 0 if i < 8 else i % 2 != 0, i % 3 == 0) for i in range(n)]
    _seed_labels(store, dataset, run, {"alice": alice, "bob": bob})
    two = inter_annotator(store.labels())
    subject = two["subject"]
    assert subject["kappa"] == pytest.approx(cohen_kappa([a[0] for a in alice], [b[0] for b in bob]))
    assert subject["alpha"] == pytest.approx(krippendorff_alpha([[float(a[0]) for a in alice],
                                                                 [float(b[0]) for b in bob]]))
    assert subject["kappa_ci95"][0] <= subject["kappa"] <= subject["kappa_ci95"][1]
    assert two["action"]["kappa"] == pytest.approx(1.0) and two["action"]["alpha"] == pytest.approx(1.0)

    _seed_labels(store, dataset, run, {"carol": alice})
    three = inter_annotator(store.labels())["subject"]
    assert three["method"] == "fleiss" and three["alpha"] is not None and three["alpha_ci95"] is not None


def test_judge_accuracy_per_category_and_for_people_vs_animals(tmp_path):
    """Toy subjects: man (human), cat (animal), taylor_swift (personality). The judge is right on every
    person's image and wrong on every animal's, so people score 1 and animals 0."""
    from actionbench.evaluators import agreement as ag
    from actionbench.io import atomic_write_json

    _, store, dataset, (run,) = make_app(tmp_path)
    units = run.units()
    _seed_labels(store, dataset, run, {"alice": [(True, True)] * len(units)})
    for unit in units:
        right = unit.subject_id != "cat"
        atomic_write_json(run.judgment_path("fake-v1", unit), {"unit_id": unit.id, "action_ok": right,
                                                               "subject_ok": True, "detail": {}})
    report = ag.compare_judge(ag._pairs(store, run, "fake-v1", "no"))
    people, animals = report["people_vs_animals"]["people"], report["people_vs_animals"]["animals"]
    assert people["action"]["n"] == 8 and people["action"]["accuracy"] == 1.0
    assert animals["action"]["n"] == 4 and animals["action"]["accuracy"] == 0.0
    assert set(report["per_category"]) == {"human", "animal", "personality"}
    assert report["action"]["accuracy"] == pytest.approx(8 / 12)
    from actionbench.evaluators.agreement_stats import wilson

    assert report["action"]["accuracy_ci95"] == pytest.approx(wilson(8, 12))
    assert animals["action"]["accuracy_ci95"] == pytest.approx(wilson(0, 4))
    text = ag.format_report({"annotators": ["alice"], "items_labelled": 12, "ties": "no",
                             "inter_annotator": ag.inter_annotator(store.labels()), "judges": {"fake-v1": report}})
    assert "People vs animals" in text and "animals" in text and "Wilson" in text and "Krippendorff" in text


# --- labels published with a run: export -> import ---------------------------------------------------------


def test_labels_of_a_run_round_trip_by_unit_id(tmp_path):
    import csv

    from actionbench.evaluators.human import LabelStore, export_labels, import_labels

    _, store, dataset, (run,) = make_app(tmp_path)
    _seed_labels(store, dataset, run, {"alice": [(True, False), (False, True), (True, True)], "bob": [(True, True)]})
    out = export_labels(store, tmp_path / "published.csv", "csv", run=run)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and {r["run"] for r in rows} == {run.out.name}
    assert {r["unit_id"] for r in rows} == {u.id for u in run.units()[:3]}
    # what a reader of the board has: the run's images and this CSV, without item ids or image paths
    bare = tmp_path / "bare.csv"
    with bare.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["run", "unit_id", "annotator", "question", "answer"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in writer.fieldnames} for r in rows)
    other = LabelStore(tmp_path / "theirs.sqlite")
    assert import_labels(other, bare, run=run) == 8

    def answers(s):
        return sorted((r["item_id"], r["annotator"], r["question"], r["answer"]) for r in s.all_answers())

    assert answers(other) == answers(store)
    assert import_labels(other, out, run=run) == 8 and len(other.all_answers()) == 8  # replaced, not doubled


def test_import_names_file_row_and_fix(tmp_path):
    from actionbench.evaluators.human import LabelStore, import_labels

    _, store, dataset, (run,) = make_app(tmp_path)
    other = LabelStore(tmp_path / "theirs.sqlite")
    bad = tmp_path / "bad.csv"
    bad.write_text("unit_id,annotator,question,answer\ncheer/man/0,alice,action,yes\ncheer/dragon/0,alice,action,no\n")
    with pytest.raises(ConfigError, match=r"bad\.csv row 2 \(line 3\): unit 'cheer/dragon/0' is not a unit.*--run"):
        import_labels(other, bad, run=run)
    with pytest.raises(ConfigError, match=r"bad\.csv row 1 \(line 2\).*unit cheer/man/0.*--run RUN_DIR"):
        import_labels(other, bad)
    bad.write_text("unit_id,annotator,question,answer\ncheer/man/0,alice,action,perhaps\n")
    with pytest.raises(ConfigError, match=r"bad\.csv row 1 \(line 2\): answer must be yes or no, got 'perhaps'"):
        import_labels(other, bad, run=run)
    bad.write_text("unit_id,annotator,answer\ncheer/man/0,alice,yes\n")
    with pytest.raises(ConfigError, match=r"bad\.csv: CSV lacks column\(s\) question.*docs/human-eval\.md"):
        import_labels(other, bad, run=run)
    bad.write_text("item_id,unit_id,annotator,question,answer\n0123456789abcdef0123,cheer/man/0,alice,action,yes\n")
    with pytest.raises(ConfigError, match=r"row 1 \(line 2\): unit cheer/man/0's image .* regenerated"):
        import_labels(other, bad, run=run)
    assert other.all_answers() == []  # nothing of a bad file is stored


def test_agreement_and_publishing_commands(tmp_path):
    import json

    from click.testing import CliRunner

    from actionbench.cli import main
    from actionbench.evaluators.human import LabelStore
    from actionbench.io import atomic_write_json

    run = _synthetic_run(tmp_path)
    db = tmp_path / "labels.sqlite"
    store = LabelStore(db)
    store.register_run(run)
    units = [u for u in run.units() if run.image_path(u).exists()]
    ids = store.unit_items(run)
    for i, unit in enumerate(units):
        for name, flip in (("alice", False), ("bob", i == 0), ("carol", False)):
            store.answer(ids[unit.id], name, "action", (i % 2 == 0) != flip)
            store.answer(ids[unit.id], name, "subject", True)
        atomic_write_json(run.judgment_path("fake-v1", unit), {"unit_id": unit.id, "action_ok": True,
                                                               "subject_ok": True, "detail": {}})
    cli = CliRunner()
    out = tmp_path / "agreement.json"
    result = cli.invoke(main, ["agreement", str(run.out), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Krippendorff alpha" in result.output and "People vs animals" in result.output
    report = json.loads(out.read_text())
    assert report["inter_annotator"]["action"]["method"] == "fleiss"
    assert report["inter_annotator"]["action"]["alpha"] is not None
    assert set(report["judges"]["fake-v1"]["people_vs_animals"]) == {"people", "animals"}
    assert report["intervals"]["accuracy"].startswith("Wilson")

    published = tmp_path / "published.csv"
    result = cli.invoke(main, ["export-labels", "--db", str(db), "--run", str(run.out), str(published)])
    assert result.exit_code == 0, result.output
    result = cli.invoke(main, ["import-labels", "--db", str(tmp_path / "theirs.sqlite"), "--run", str(run.out),
                               str(published)])
    assert result.exit_code == 0 and "imported 24 answers" in result.output
    result = cli.invoke(main, ["export-labels", "--db", str(db), "--run", str(run.out), "--format", "labelstudio",
                               str(tmp_path / "x.json")])
    assert result.exit_code == 2 and "CSV only" in result.output
