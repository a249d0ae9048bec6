"""Human evaluation: label store, annotation app, human judge, agreement, CSV / Label Studio round trips."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from actionbench.errors import ActionBenchError


# --- helpers (also used by test_browser.py) ---------------------------------------------------------


def make_toy_dataset(folder: Path, name: str = "toy"):
    """2 actions x 3 subjects, 2 exemplars per action, drawn on the fly (no download, no renderer)."""
    import numpy as np
    from PIL import Image

    from actionbench.dataset import Action, Dataset, Exemplar, Protocol, Subject

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    actions = []
    for action_id, phrase in (("cheer", "cheering with both arms raised"), ("sit", "sitting")):
        exemplars = []
        for i in (1, 2):
            path = folder / f"{action_id}-{i}.png"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
            exemplars.append(Exemplar(action_id, i, path, "a person {}"))
        actions.append(Action(action_id, phrase, tuple(exemplars)))
    subjects = (Subject("man", "a man", "human"), Subject("cat", "a cat", "animal"),
                Subject("taylor_swift", "Taylor Swift", "personality"))
    return Dataset(name, tuple(actions), subjects, Protocol(), "0" * 64, folder)


def make_toy_run(folder: Path, dataset, seed: int = 0):
    """A run folder with one distinct noise image per unit (spec-less: enough for the store and the judge)."""
    import numpy as np
    from PIL import Image

    from actionbench.run.runner import Run

    rng = np.random.default_rng(seed)
    run = Run(folder, None, dataset)
    for unit in run.units():
        path = run.image_path(unit)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)
    return run


def make_app(tmp_path: Path, runs: int = 1):
    from actionbench.evaluators.human import AnnotationApp, LabelStore

    dataset = make_toy_dataset(tmp_path / "data")
    store = LabelStore(tmp_path / "labels.sqlite")
    items = {}
    made = []
    for i in range(runs):
        run = make_toy_run(tmp_path / f"secret-method-{i}", dataset, seed=i)
        made.append(run)
        for item in store.register_run(run):
            items.setdefault(item.item_id, item)
    return AnnotationApp(store, items, {dataset.name: dataset}), store, dataset, made


def call(app, method, path, body=None):
    status, kind, data = app.handle(method, path, json.dumps(body).encode() if body is not None else b"")
    return status, (json.loads(data) if kind == "application/json" else data)


# --- store and app -----------------------------------------------------------------------------------


def test_answer_undo_resume(tmp_path):
    from actionbench.evaluators.human import AnnotationApp, LabelStore

    app, store, dataset, _ = make_app(tmp_path)
    status, state = call(app, "POST", "/api/start", {"annotator": "  alice "})
    assert status == 200 and state["annotator"] == "alice"
    assert (state["done"], state["total"], state["question"]) == (0, 12, "subject")
    first = state["item"]["id"]
    _, state = call(app, "POST", "/api/answer", {"annotator": "alice", "item_id": first, "question": "subject",
                                                 "answer": True})
    assert state["item"]["id"] == first and state["question"] == "action"
    _, state = call(app, "POST", "/api/answer", {"annotator": "alice", "item_id": first, "question": "action",
                                                 "answer": False})
    second = state["item"]["id"]
    assert second != first and state["done"] == 1 and state["answered"] == 2
    _, state = call(app, "POST", "/api/answer", {"annotator": "alice", "item_id": second, "question": "subject",
                                                 "answer": False})
    _, state = call(app, "POST", "/api/undo", {"annotator": "alice"})
    assert state["undone"]["item_id"] == second and state["item"]["id"] == second and state["question"] == "subject"
    _, state = call(app, "POST", "/api/undo", {"annotator": "alice"})  # multi-level: back into the first image
    assert state["item"]["id"] == first and state["question"] == "action" and state["done"] == 0
    _, state = call(app, "POST", "/api/answer", {"annotator": "alice", "item_id": first, "question": "action",
                                                 "answer": True})
    assert store.answers_of("alice") == {(first, "subject"): True, (first, "action"): True}

    # resume: a fresh store and app on the same file continue where alice stopped
    fresh = AnnotationApp(LabelStore(store.path), app.items, app.datasets)
    _, again = call(fresh, "GET", "/api/state?annotator=alice")
    assert again["item"]["id"] == second and again["done"] == 1 and again["question"] == "subject"


def test_one_row_per_image_annotator_question(tmp_path):
    import sqlite3

    app, store, _, _ = make_app(tmp_path)
    _, state = call(app, "POST", "/api/start", {"annotator": "bob"})
    item = state["item"]["id"]
    for value in (True, False, True):
        store.answer(item, "bob", "subject", value)
    con = sqlite3.connect(store.path)
    rows = con.execute("SELECT item_id, annotator, question, answer FROM answers").fetchall()
    assert rows == [(item, "bob", "subject", 1)]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_regenerated_image_is_a_new_item(tmp_path):
    import os

    from PIL import Image

    app, store, dataset, (run,) = make_app(tmp_path)
    unit = run.units()[0]
    path = run.image_path(unit)
    before = store.item_id_of(dataset.name, unit.action_id, unit.subject_id, path)
    assert before in app.items
    assert store.item_id_of(dataset.name, unit.action_id, unit.subject_id, Image.open(path)) == before
    assert store.item_id_of(dataset.name, "sit", unit.subject_id, path) != before  # another target, another item
    Image.new("RGB", (24, 24), (9, 9, 9)).save(path)
    os.utime(path, ns=(1, 1))  # even with an old timestamp the size differs; the cache key is (path, size, mtime)
    assert store.item_id_of(dataset.name, unit.action_id, unit.subject_id, path) != before


def test_order_is_random_per_annotator_and_stable(tmp_path):
    app, _, _, _ = make_app(tmp_path)
    a, b = app.order("alice"), app.order("bob")
    assert sorted(a) == sorted(b) and a != b
    assert app.order("alice") == a
    unit_order = sorted(app.items, key=lambda i: (app.items[i].action_id, app.items[i].subject_id))
    assert a != unit_order


def test_pool_is_blinded(tmp_path):
    app, store, _, runs = make_app(tmp_path, runs=2)
    assert len(app.items) == 24
    _, state = call(app, "POST", "/api/start", {"annotator": "carol"})
    page = app.handle("GET", "/")[2].decode()
    for secret in ("secret-method", str(tmp_path), "images/"):
        assert secret not in page
        assert secret not in json.dumps(state)
    assert state["item"]["image_url"] == f"/image/{state['item']['id']}"
    status, kind, data = app.handle("GET", state["item"]["image_url"])
    assert status == 200 and kind == "image/png" and data[:4] == b"\x89PNG"
    assert all(url.startswith("/exemplar/toy/") for url in state["item"]["exemplars"])
    assert app.handle("GET", state["item"]["exemplars"][0])[0] == 200
    for bad in ("/image/nope", "/image/../labels.sqlite", "/exemplar/toy/cheer/../../x", "/exemplar/toy/cheer/9",
                "/secret-method-0/images/cheer/man/0.png"):
        assert app.handle("GET", bad)[0] == 404, bad
    status, body = call(app, "POST", "/api/answer", {"annotator": "carol", "item_id": "nope", "question": "subject",
                                                     "answer": True})
    assert status == 404
    status, body = call(app, "POST", "/api/answer", {"annotator": "", "item_id": state["item"]["id"],
                                                     "question": "subject", "answer": True})
    assert status == 400 and "name" in body["error"]
    status, body = call(app, "POST", "/api/answer", {"annotator": "carol", "item_id": state["item"]["id"],
                                                     "question": "colour", "answer": True})
    assert status == 400


def test_concurrent_annotators(tmp_path):
    app, store, _, _ = make_app(tmp_path)
    names = [f"annotator-{i}" for i in range(6)]
    errors = []

    def work(name):
        try:
            for _ in range(2 * len(app.items)):
                status, state = call(app, "GET", f"/api/state?annotator={name}")
                if state["finished"]:
                    break
                status, _ = call(app, "POST", "/api/answer", {"annotator": name, "item_id": state["item"]["id"],
                                                              "question": state["question"],
                                                              "answer": len(name) % 2 == 0})
                assert status == 200
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = store.all_answers()
    assert len(rows) == len(names) * 2 * len(app.items)
    assert len({(r["item_id"], r["annotator"], r["question"]) for r in rows}) == len(rows)
    assert len({r["seq"] for r in rows}) == len(rows)
    for name in names:
        assert call(app, "GET", f"/api/state?annotator={name}")[1]["finished"]


KILL_SCRIPT = """
import os, signal, sys
from actionbench.evaluators.human import LabelStore
store = LabelStore(sys.argv[1])
for i, item in enumerate(sys.argv[2:]):
    store.answer(item, "dora", "subject", i % 2 == 0)
    print(item, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_nothing_lost_when_the_process_dies(tmp_path):
    app, store, _, _ = make_app(tmp_path)
    items = sorted(app.items)[:5]
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(store.path), *items], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert proc.stdout.split() == items
    assert store.answers_of("dora") == {(item, "subject"): i % 2 == 0 for i, item in enumerate(items)}


# --- human judge ---------------------------------------------------------------------------------------


def test_human_judge_majority_ties_and_missing(tmp_path):
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.evaluators.human import HumanJudge
    from actionbench.run.runner import judge

    app, store, dataset, (run,) = make_app(tmp_path)
    units = run.units()
    votes = {  # unit index -> (subject votes, action votes)
        0: ([True, True, False], [False, False, True]),
        1: ([True, False], [True, False]),  # ties
        2: ([False], [True]),
    }
    ids = {}
    for index, (subject_votes, action_votes) in votes.items():
        unit = units[index]
        item_id = store.item_id_of(dataset.name, unit.action_id, unit.subject_id, run.image_path(unit))
        ids[index] = item_id
        for who, v in enumerate(subject_votes):
            store.answer(item_id, f"h{who}", "subject", v)
        for who, v in enumerate(action_votes):
            store.answer(item_id, f"h{who}", "action", v)
    requests = [JudgeRequest(units[i].id, units[i].action_id, units[i].subject_id, run.image_path(units[i]))
                for i in votes]
    # judged one by one from PIL images (no run folder to check)
    from PIL import Image

    pil = [JudgeRequest(r.unit_id, r.action_id, r.subject_id, Image.open(r.image)) for r in requests]
    got = HumanJudge(dataset, db=store.path).judge(pil)
    assert [(j.subject_ok, j.action_ok) for j in got] == [(True, False), (False, False), (False, True)]
    assert got[0].detail["subject_yes"] == 2 and got[0].detail["subject_no"] == 1
    got = HumanJudge(dataset, db=store.path, ties="yes").judge(pil)
    assert [(j.subject_ok, j.action_ok) for j in got] == [(True, False), (True, True), (False, True)]
    with pytest.raises(ActionBenchError, match="1 of 3 images"):
        HumanJudge(dataset, db=store.path, ties="exclude").judge(pil)

    # the whole run: stops before writing anything, naming the count and the command
    human = HumanJudge(dataset, db=store.path)
    with pytest.raises(ActionBenchError) as info:
        judge(run, human)
    message = str(info.value)
    assert "9 of 12 images" in message and "actionbench annotate" in message and str(store.path) in message
    assert not (run.out / "judgments").exists()
    assert HumanJudge.human is True and human.describe()["human"] is True
    with pytest.raises(ActionBenchError, match="no labels database"):
        HumanJudge(dataset, db=tmp_path / "none.sqlite").judge(pil)


def test_human_judge_reads_db_from_environment(tmp_path, monkeypatch):
    from actionbench.evaluators.human import LABELS_DB_ENV, HumanJudge

    dataset = make_toy_dataset(tmp_path / "data")
    monkeypatch.setenv(LABELS_DB_ENV, str(tmp_path / "x.sqlite"))
    assert HumanJudge(dataset).db == tmp_path / "x.sqlite"
    monkeypatch.delenv(LABELS_DB_ENV)
    assert HumanJudge(dataset).db == Path("labels.sqlite")
    with pytest.raises(ActionBenchError, match="ties"):
        HumanJudge(dataset, ties="maybe")


# --- agreement --------------------------------------------------------------------------------------------


def test_cohen_kappa_textbook():
    from sklearn.metrics import cohen_kappa_score

    from actionbench.evaluators.agreement import cohen_kappa

    # Wikipedia "Cohen's kappa": 50 proposals, both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa([1, 1], [1, 1]) is None  # undefined: chance agreement is 1
    assert cohen_kappa([], []) is None


def test_fleiss_kappa_textbook():
    from actionbench.evaluators.agreement import fleiss_kappa

    # Fleiss (1971) via Wikipedia "Fleiss' kappa": 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=5e-4)
    # two raters per item: Fleiss equals Scott's pi; perfect agreement on mixed items is 1
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([[1, 0]])


def _seed_labels(store, dataset, run, plan):
    """plan: annotator -> list of (subject, action) answers for the run's units in order."""
    ids = [store.item_id_of(dataset.name, u.action_id, u.subject_id, run.image_path(u)) for u in run.units()]
    for name, answers in plan.items():
        for item_id, (subject, action) in zip(ids, answers):
            store.answer(item_id, name, "subject", subject)
            store.answer(item_id, name, "action", action)
    return ids


def test_agreement_report_and_judge_vs_human(tmp_path):
    from actionbench.evaluators.agreement import format_report, inter_annotator
    from actionbench.io import atomic_write_json

    app, store, dataset, (run,) = make_app(tmp_path)
    units = run.units()
    n = len(units)
    alice = [(i % 2 == 0, i % 3 == 0) for i in range(n)]
    bob = [(i % 2 == 0, i % 3 == 0) if i < 8 else (i % 2 != 0, i % 3 == 0) for i in range(n)]
    _seed_labels(store, dataset, run, {"alice": alice, "bob": bob})
    two = inter_annotator(store.labels())
    assert two["subject"]["method"] == "cohen" and two["subject"]["items"] == n and two["subject"]["annotators"] == 2
    assert two["action"]["kappa"] == pytest.approx(1.0)
    from actionbench.evaluators.agreement import cohen_kappa

    assert two["subject"]["kappa"] == pytest.approx(cohen_kappa([a[0] for a in alice], [b[0] for b in bob]))

    _seed_labels(store, dataset, run, {"carol": alice})
    three = inter_annotator(store.labels())
    assert three["subject"]["method"] == "fleiss" and three["subject"]["annotators"] == 3

    # an automatic judge's judgments (action always yes, subject copies the human majority)
    for i, unit in enumerate(units):
        atomic_write_json(run.judgment_path("fake-v1", unit), {"unit_id": unit.id, "action_ok": True,
                                                               "subject_ok": alice[i][0], "detail": {}})
    from actionbench.evaluators import agreement as ag

    rows = ag._pairs(store, run, "fake-v1", "no")
    result = ag.compare_judge(rows)
    assert result["subject"]["accuracy"] == 1.0 and result["subject"]["kappa"] == pytest.approx(1.0)
    action_truth = [a[1] for a in alice]
    assert result["action"]["accuracy"] == pytest.approx(sum(action_truth) / n)
    assert result["action"]["confusion"] == {"judge_yes_human_yes": sum(action_truth),
                                             "judge_yes_human_no": n - sum(action_truth),
                                             "judge_no_human_yes": 0, "judge_no_human_no": 0}
    assert result["action"]["kappa"] == pytest.approx(0.0)
    assert set(result["per_action"]) == {"cheer", "sit"} and result["per_action"]["cheer"]["action"]["n"] == n // 2

    text = format_report({"annotators": ["alice", "bob", "carol"], "items_labelled": n, "ties": "no",
                          "inter_annotator": three, "judges": {"fake-v1": result}})
    assert "fleiss" in text and "fake-v1" in text and "J+H+" in text


def test_human_agreement_for(tmp_path):
    from actionbench.evaluators.agreement import human_agreement_for
    from actionbench.io import atomic_write_json

    app, store, dataset, (run,) = make_app(tmp_path)
    units = run.units()
    assert human_agreement_for(run, "fake-v1", tmp_path / "missing.sqlite") == {}
    assert human_agreement_for(run, "fake-v1", store.path) == {}  # no labels yet
    _seed_labels(store, dataset, run, {"alice": [(True, True)] * 4})
    for unit in units:
        atomic_write_json(run.judgment_path("fake-v1", unit), {"unit_id": unit.id, "action_ok": True,
                                                               "subject_ok": False, "detail": {}})
    result = human_agreement_for(run, "fake-v1", store.path)
    assert result["n"] == 4 and result["annotators"] == 1
    assert result["action"]["accuracy"] == 1.0 and result["subject"]["accuracy"] == 0.0
    assert set(result["per_unit"]) == {u.id for u in units[:4]}
    assert result["per_unit"][units[0].id] == {"action": True, "subject": True, "total": True}


# --- import / export ------------------------------------------------------------------------------------


def _labelled_store(tmp_path):
    app, store, dataset, (run,) = make_app(tmp_path)
    _seed_labels(store, dataset, run, {"alice": [(True, False), (False, True), (True, True)],
                                       "bob, jr.": [(True, True), (False, False)]})
    return store


@pytest.mark.parametrize("fmt,suffix", [("csv", ".csv"), ("labelstudio", ".json")])
def test_export_import_round_trip(tmp_path, fmt, suffix):
    from actionbench.evaluators.human import LabelStore, export_labels, import_labels

    store = _labelled_store(tmp_path)
    out = export_labels(store, tmp_path / f"labels{suffix}", fmt)
    if fmt == "labelstudio":
        tasks = json.loads(out.read_text())
        assert len(tasks) == 3
        assert {r["type"] for t in tasks for a in t["annotations"] for r in a["result"]} == {"choices"}
        assert (tmp_path / "labels.label_config.xml").read_text().startswith("<View>")
    other = LabelStore(tmp_path / "other.sqlite")
    assert import_labels(other, out) == 10

    def key(rows):
        return sorted((r["item_id"], r["annotator"], r["question"], r["answer"], r["answered_at"], r["action_id"],
                       r["subject_id"], r["dataset"], r["subject_name"], r["action_phrase"]) for r in rows)

    assert key(other.all_answers()) == key(store.all_answers())
    again = export_labels(other, tmp_path / f"again{suffix}", fmt)
    if fmt == "csv":
        assert again.read_text() == out.read_text()
    assert import_labels(other, again) == 10  # importing the same answers again replaces, never duplicates
    assert len(other.all_answers()) == 10


def test_import_errors_name_the_row(tmp_path):
    from actionbench.errors import ConfigError
    from actionbench.evaluators.human import LabelStore, import_labels

    store = LabelStore(tmp_path / "l.sqlite")
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,annotator,question,answer\nabc,alice,subject,maybe\n")
    with pytest.raises(ConfigError, match="row 1.*yes or no"):
        import_labels(store, bad)
    bad.write_text("item_id,annotator,question,answer\nabc,alice,subject,yes\n")
    with pytest.raises(ConfigError, match="row 1.*not in"):
        import_labels(store, bad)
    assert store.all_answers() == []


def test_judge_registry_lists_human_and_few_shot():
    from actionbench.api.registry import get_evaluator
    from actionbench.evaluators.human import HumanJudge

    assert get_evaluator("human") is HumanJudge


# --- commands, end to end on a synthetic run -----------------------------------------------------------


def _synthetic_run(tmp_path):
    from actionbench.worlds import synthetic
    from actionbench.byo import import_images

    mine = tmp_path / "generated"
    for i, (action, subject) in enumerate((("cheer", "man"), ("sit", "cat"), ("pray", "chef"), ("squat", "dog"))):
        path = mine / action / subject / "0.png"
        path.parent.mkdir(parents=True)
        synthetic.render(subject, action, 48, seed=i).image.save(path)
    return import_images(mine, dataset="synthetic", out=tmp_path / "run")


def test_commands_end_to_end(tmp_path):
    from click.testing import CliRunner

    from actionbench.cli import main
    from actionbench.evaluators.human import AnnotationApp, LabelStore
    from actionbench.io import atomic_write_json, read_json
    from actionbench.leaderboard import validate_results

    run = _synthetic_run(tmp_path)
    db = tmp_path / "labels.sqlite"
    cli = CliRunner()
    result = cli.invoke(main, ["judge-human", "--out", str(run.out), "--db", str(db)])
    assert result.exit_code == 2 and "no labels database" in result.output
    result = cli.invoke(main, ["annotate", "--db", str(db)])
    assert result.exit_code == 2 and "give the run folder" in result.output

    app = AnnotationApp.from_runs(LabelStore(db), [run.out])
    assert len(app.items) == 4 and set(app.datasets) == {"synthetic"}
    answers = {"alice": lambda i, q: True, "bob": lambda i, q: q == "subject" or i % 2 == 0}
    for name, rule in answers.items():
        for _ in range(8):
            _, state = call(app, "GET", f"/api/state?annotator={name}")
            item, question = state["item"]["id"], state["question"]
            call(app, "POST", "/api/answer", {"annotator": name, "item_id": item, "question": question,
                                              "answer": rule(sorted(app.items).index(item), question)})
        assert call(app, "GET", f"/api/state?annotator={name}")[1]["finished"]
    # the page sent the synthetic exemplars
    assert app.handle("GET", state["item"]["exemplars"][0])[0] == 200
    result = cli.invoke(main, ["judge-human", "--out", str(run.out), "--db", str(db), "--ties", "exclude"])
    assert result.exit_code == 2 and "have no human label" in result.output  # bob disagrees on two actions
    result = cli.invoke(main, ["judge-human", "--out", str(run.out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "364 of the protocol's 368 images" in result.output
    results = read_json(run.out / "results.json")
    assert results["judge"]["name"] == "human" and results["judge"]["human"] is True
    assert results["judge"]["annotators"] == 2 and results["judge"]["labels"] == 16
    assert sum(r["action_ok"] for r in results["records"]) == 2 and all(r["subject_ok"] for r in results["records"])
    assert validate_results(run.out / "results.json") == []

    for unit in run.units():  # an automatic judge that always says yes
        if run.image_path(unit).exists():
            atomic_write_json(run.judgment_path("fake-v1", unit), {"unit_id": unit.id, "action_ok": True,
                                                                   "subject_ok": True, "detail": {}})
    out = tmp_path / "agreement.json"
    result = cli.invoke(main, ["agreement", "--db", str(db), "--out", str(out)])  # runs recorded by annotate
    assert result.exit_code == 0, result.output
    assert "cohen" in result.output and "fake-v1" in result.output and "human-v1" not in result.output
    report = json.loads(out.read_text())
    assert report["inter_annotator"]["subject"]["kappa"] is None  # everyone said yes: kappa undefined
    assert report["inter_annotator"]["action"]["items"] == 4
    assert report["judges"]["fake-v1"]["action"]["accuracy"] == 0.5
    assert report["judges"]["fake-v1"]["subject"]["accuracy"] == 1.0
    result = cli.invoke(main, ["agreement", str(run.out), "--db", str(db), "--out", str(out), "--ties", "yes"])
    assert result.exit_code == 0 and json.loads(out.read_text())["judges"]["fake-v1"]["action"]["accuracy"] == 1.0

    from actionbench.evaluators.agreement import human_agreement_for

    summary = human_agreement_for(run.out, "fake-v1", db)  # a run folder works as well as a Run
    assert summary["n"] == 4 and summary["annotators"] == 2 and summary["subject"]["accuracy"] == 1.0

    exported = tmp_path / "labels.json"
    result = cli.invoke(main, ["export-labels", "--db", str(db), "--format", "labelstudio", str(exported)])
    assert result.exit_code == 0 and "label_config.xml" in result.output
    result = cli.invoke(main, ["import-labels", "--db", str(tmp_path / "copy.sqlite"), str(exported)])
    assert result.exit_code == 0 and "imported 16 answers" in result.output


# --- the annotation server against hostile requests (raw HTTP over sockets) -----------------------------
#
# Each test speaks HTTP by hand, as an attacker's script or a broken client would, to a real
# server on a free port. SERVER_TIMEOUT_S is the server's socket timeout in these tests.

SERVER_TIMEOUT_S = 1.0


@pytest.fixture
def live(tmp_path):
    """(app, store, port) of a running annotation server on 127.0.0.1 with a short socket timeout."""
    from actionbench.evaluators.human import make_server

    app, store, _, _ = make_app(tmp_path)
    server = make_server(app, "127.0.0.1", 0, timeout=SERVER_TIMEOUT_S)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, store, server.server_address[1]
    server.shutdown()
    server.server_close()


def exchange(port: int, data: bytes, finish: bool = True, wait: float = 20.0) -> tuple[int, dict, bytes]:
    """Send raw bytes, read the reply until the server closes; (status, headers, body). Status 0: no reply."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        if finish:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    if not reply:
        return 0, {}, b""
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def request(port: int, method: str, path: str, body: bytes | dict | list | None = None, *, host: str | None = None,
            token: str | None = None, headers: dict | None = None, length: str | None = None,
            finish: bool = True) -> tuple[int, dict, Any]:
    """One hand-made HTTP/1.1 request (Host defaults to 127.0.0.1:port; None in headers leaves one out)."""
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    body = body or b""
    fields = {"Host": host if host is not None else f"127.0.0.1:{port}", "Content-Type": "application/json"}
    if token is not None:
        fields["X-ActionBench-Token"] = token
    if method == "POST":
        fields["Content-Length"] = str(len(body)) if length is None else length
    fields.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    status, reply_headers, reply = exchange(port, head.encode("latin-1") + b"\r\n" + body, finish=finish)
    if reply_headers.get("content-type") == "application/json":
        reply = json.loads(reply)
    return status, reply_headers, reply


def _first_item(app):
    return app.order("alice")[0]


def test_a_page_on_another_site_cannot_undo_an_answer(live):
    """Today's hole: any page could POST /api/undo and delete an annotator's answer. Even with the token."""
    app, store, port = live
    item = _first_item(app)
    store.answer(item, "alice", "subject", True)
    undo = {"annotator": "alice"}
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"http://127.0.0.1:{port + 1}",
                   f"https://127.0.0.1:{port}", f"http://localhost.evil.example:{port}"):
        status, _, body = request(port, "POST", "/api/undo", undo, token=app.token, headers={"Origin": origin})
        assert status == 403 and "other sites" in body["error"], origin
    assert store.answers_of("alice") == {(item, "subject"): True}
    # the page's own origin, with the token, still works
    status, _, body = request(port, "POST", "/api/undo", undo, token=app.token,
                              headers={"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200 and body["undone"]["item_id"] == item and store.answers_of("alice") == {}


def test_dns_rebinding_host_is_not_served(live):
    """A name the attacker controls, resolved to 127.0.0.1, must not read the page (it holds the token)."""
    app, store, port = live
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "127.0.0.1",
                 f"localhost.evil.example:{port}", f"127.0.0.2:{port}"):
        status, _, body = request(port, "GET", "/", host=host)
        assert status == 403 and "answers only to" in body["error"], host
        assert app.token not in json.dumps(body)
    for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}"):  # nor any other route
        assert request(port, "GET", "/api/annotators", host=host)[0] == 403
        assert request(port, "POST", "/api/start", {"annotator": "x"}, host=host, token=app.token)[0] == 403
    assert store.annotators() == []
    for host in ("a b", f"127.0.0.1:{port}/x", f"user@127.0.0.1:{port}", "127.0.0.1:port", "[::1"):
        assert request(port, "GET", "/", host=host)[0] == 400, host
    assert exchange(port, b"GET / HTTP/1.0\r\n\r\n")[0] == 400  # no Host at all
    two = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n".encode()
    assert exchange(port, two)[0] == 400
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        status, headers, page = request(port, "GET", "/", host=host)
        assert status == 200 and app.token.encode() in page, host


def test_wildcard_bind_serves_its_own_address_but_not_other_names(tmp_path):
    from actionbench.evaluators.human import make_server

    app, _, _, _ = make_app(tmp_path)
    server = make_server(app, "0.0.0.0", 0, timeout=SERVER_TIMEOUT_S)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert request(port, "GET", "/", host=f"127.0.0.1:{port}")[0] == 200  # the address connected to
        assert request(port, "GET", "/", host=f"evil.example:{port}")[0] == 403
        assert request(port, "GET", "/", host=f"0.0.0.0:{port}")[0] == 403
    finally:
        server.shutdown()
        server.server_close()


def test_a_post_without_the_session_token_changes_nothing(live):
    app, store, port = live
    item = _first_item(app)
    answer = {"annotator": "alice", "item_id": item, "question": "subject", "answer": True}
    status, _, body = request(port, "POST", "/api/answer", answer)
    assert status == 403 and "X-ActionBench-Token" in body["error"]
    status, _, body = request(port, "POST", "/api/answer", answer, token=app.token[:-1] + "x")
    assert status == 403 and "reload the page" in body["error"]
    assert request(port, "POST", "/api/answer", answer, token="")[0] == 403
    assert request(port, "POST", "/api/start", {"annotator": "mallory"}, token="\u00e9t\u00e9")[0] == 403
    assert store.all_answers() == [] and store.annotators() == []
    status, _, body = request(port, "POST", "/api/answer", answer, token=app.token)
    assert status == 200 and store.answers_of("alice") == {(item, "subject"): True}


def test_each_session_mints_its_own_token_and_the_page_cannot_be_framed(tmp_path, live):
    from actionbench.evaluators.human import AnnotationApp

    app, store, port = live
    status, headers, page = request(port, "GET", "/")
    assert status == 200 and f'content="{app.token}"'.encode() in page and len(app.token) >= 40
    assert headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in headers["content-security-policy"]
    assert AnnotationApp(store, app.items, app.datasets).token != app.token  # a restarted server: a new token


@pytest.mark.parametrize("length,status", [
    ("abc", 400), ("-5", 400), ("1e3", 400), ("0x10", 400), ("+7", 400), ("", 400), ("7 7", 400),
    ("99999999999999999999999999", 400), (str((1 << 16) + 1), 413), ("1000000000", 413),
])
def test_malformed_content_length_gets_a_json_error_not_a_dropped_connection(live, length, status):
    app, store, port = live
    got, headers, body = request(port, "POST", "/api/start", {"annotator": "alice"}, token=app.token, length=length)
    assert got == status and "error" in body and headers["connection"] == "close"
    assert store.annotators() == []


def test_conflicting_content_lengths_and_chunked_bodies_are_refused(live):
    app, store, port = live
    status, _, body = request(port, "POST", "/api/start", {"annotator": "alice"}, token=app.token,
                              headers={"content-length": "3"})
    assert status == 400 and "conflicting" in body["error"]
    chunked = b'{"annotator": "alice"}'
    status, _, body = request(port, "POST", "/api/start", b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunked), chunked),
                              token=app.token, headers={"Transfer-Encoding": "chunked", "Content-Length": None})
    assert status == 411 and "Content-Length" in body["error"]
    assert store.annotators() == []


@pytest.mark.parametrize("body", [b"[1, 2]", b'"alice"', b"null", b"3", b"not json", b"\xff\xfe{}", b"{",
                                  b"[" * 60_000])  # nested deeper than json's recursion limit
def test_a_body_that_is_not_a_json_object_gets_400(live, body):
    app, store, port = live
    status, _, reply = request(port, "POST", "/api/start", body, token=app.token)
    assert status == 400 and "JSON" in reply["error"]
    assert store.annotators() == []


@pytest.mark.parametrize("field,value", [
    ("item_id", []), ("item_id", {}), ("item_id", 7), ("item_id", None), ("answer", "yes"), ("answer", 1),
    ("answer", None), ("question", 5), ("question", ["subject"]), ("annotator", 5), ("annotator", ["alice"]),
    ("annotator", {"name": "alice"}),
])
def test_wrongly_typed_fields_get_400_and_store_nothing(live, field, value):
    """A list as item_id used to raise TypeError in the server thread and drop the connection."""
    app, store, port = live
    answer = {"annotator": "alice", "item_id": _first_item(app), "question": "subject", "answer": True}
    answer[field] = value
    status, _, body = request(port, "POST", "/api/answer", answer, token=app.token)
    assert status == 400 and (field in body["error"] or "annotator name" in body["error"]), body
    assert store.all_answers() == []
    for route in ("/api/start", "/api/undo"):
        status, _, body = request(port, "POST", route, {"annotator": ["alice"]}, token=app.token)
        assert status == 400 and "annotator" in body["error"]


def test_a_slow_client_cannot_hold_a_worker(live):
    """A body that never arrives, or a request that never ends, is cut off after the socket timeout."""
    import socket
    import time

    app, store, port = live
    head = (f"POST /api/start HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-ActionBench-Token: {app.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n").encode()
    started = time.monotonic()
    status, _, body = exchange(port, head + b'{"annotator": "al', finish=False)  # then silence, socket open
    assert status == 408 and "did not arrive" in json.loads(body)["error"]
    assert time.monotonic() - started < SERVER_TIMEOUT_S + 10
    # the client hangs up half way: 400, not a hung thread
    status, _, body = exchange(port, head + b'{"annotator": "al', finish=True)
    assert status == 400 and "ended after" in json.loads(body)["error"]

    # an unfinished request line and headers (slowloris): the server closes the connection ...
    slow = socket.create_connection(("127.0.0.1", port), timeout=20)
    slow.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
    # ... while other annotators are served meanwhile
    assert request(port, "GET", "/api/annotators")[0] == 200
    started = time.monotonic()
    assert slow.recv(1024) == b"" and time.monotonic() - started < SERVER_TIMEOUT_S + 10
    slow.close()
    assert store.annotators() == []


def test_annotate_binds_to_localhost_and_warns_what_another_host_exposes(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from actionbench.cli import main
    from actionbench.evaluators.human import server as server_module

    run = _synthetic_run(tmp_path)
    bound = []
    real_make_server = server_module.make_server

    def make_server(app, host="127.0.0.1", port=8765, **kw):
        srv = real_make_server(app, host, 0, **kw)
        bound.append(srv.server_address[0])
        srv.serve_forever = lambda: (_ for _ in ()).throw(KeyboardInterrupt)  # stop at once, as Ctrl-C would
        return srv

    monkeypatch.setattr(server_module, "make_server", make_server)
    db = str(tmp_path / "labels.sqlite")
    result = CliRunner().invoke(main, ["annotate", str(run.out), "--db", db])
    assert result.exit_code == 0, result.output
    assert bound == ["127.0.0.1"] and "warning" not in result.output and "open http://127.0.0.1:" in result.output
    result = CliRunner().invoke(main, ["annotate", str(run.out), "--db", db, "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert bound[-1] == "0.0.0.0"
    text = " ".join(result.output.split())
    assert "warning: listening on 0.0.0.0" in text and "Anyone who can reach this port" in text
    assert "add or undo labels" in text and "token only stops other web sites" in text
