"""Bring your own images: folder and CSV layouts, id validation, run folder, partial results."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from actionbench.errors import ActionBenchError, DatasetError


def _render(path, subject="man", pose="cheer", seed=0, fmt=None):
    from actionbench.worlds import synthetic

    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic.render(subject, pose, 48, seed=seed).image.save(path, format=fmt)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "mine"
    _render(root / "cheer" / "man" / "0.png", "man", "cheer", 0)
    _render(root / "cheer" / "man" / "1.jpg", "man", "cheer", 1, fmt="JPEG")
    _render(root / "sit" / "cat" / "0.webp", "cat", "sit", 2, fmt="WEBP")
    (root / "README.txt").write_text("ignored")
    (root / ".DS_Store").write_text("ignored")
    return root


def test_folder_is_judged_with_partial_coverage(folder, tmp_path, capsys):
    from actionbench.byo import judge_images
    from actionbench.io import load_image, read_json
    from actionbench.leaderboard import validate_results

    out = tmp_path / "run"
    path = judge_images(folder, dataset="synthetic", judge_name="tiny", out=out)
    assert path == out / "results.json"
    results = read_json(path)
    assert sorted(r["unit_id"] for r in results["records"]) == ["cheer/man/0", "cheer/man/1", "sit/cat/0"]
    assert results["complete"] is False and results["metrics"]["n"] == 3
    assert results["spec"]["method"] == "external"
    assert results["spec"]["method_config"] == {"source": str(folder.resolve())}
    assert validate_results(path) == []
    assert "3 of the protocol's 368 images" in capsys.readouterr().out
    # copied into the standard layout as PNG, pixels unchanged
    assert load_image(out / "images/sit/cat/0.png").tobytes() == load_image(folder / "sit/cat/0.webp").tobytes()
    assert (out / "images/cheer/man/0.png").read_bytes() == (folder / "cheer/man/0.png").read_bytes()
    assert not list(out.rglob(".tmp-*"))

    # the same images again into the same folder: nothing new; other images: refused
    from actionbench.byo import import_images

    import_images(folder, dataset="synthetic", out=out)
    _render(folder / "cheer" / "man" / "0.png", "man", "cheer", 7)
    with pytest.raises(ActionBenchError, match="different spec.*images_sha256"):
        import_images(folder, dataset="synthetic", out=out)


def test_csv_with_human_judge(tmp_path, monkeypatch):
    """A CSV (no k column: numbered in row order), judged by the human judge from imported labels."""
    from actionbench.byo import judge_images, read_images
    from actionbench.dataset import load_dataset
    from actionbench.evaluators.human import LABELS_DB_ENV, LabelStore
    from actionbench.io import read_json

    pics = tmp_path / "pics"
    rows = [("a.png", "salute", "chef"), ("b.png", "salute", "chef"), ("c.png", "pray", "dog")]
    for i, (name, action, subject) in enumerate(rows):
        _render(pics / name, subject, action, seed=i)
    table = tmp_path / "images.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "action", "subject"])
        writer.writerows([(f"pics/{n}", a, s) for n, a, s in rows])
    dataset = load_dataset("synthetic")
    assert [g.unit.id for g in read_images(table, dataset)] == ["salute/chef/0", "salute/chef/1", "pray/dog/0"]

    store = LabelStore(tmp_path / "labels.sqlite")
    answers = {"salute/chef/0": (True, True), "salute/chef/1": (True, False), "pray/dog/0": (False, True)}
    for g in read_images(table, dataset):
        subject_ok, action_ok = answers[g.unit.id]
        item = store.item_id_of(dataset.name, g.unit.action_id, g.unit.subject_id, g.path)
        store.import_rows([{"item_id": item, "dataset": dataset.name, "action": g.unit.action_id,
                            "subject": g.unit.subject_id, "annotator": "ann", "question": "subject",
                            "answer": subject_ok},
                           {"item_id": item, "annotator": "ann", "question": "action", "answer": action_ok}])
    monkeypatch.setenv(LABELS_DB_ENV, str(store.path))
    results = read_json(judge_images(table, dataset="synthetic", judge_name="human", out=tmp_path / "run"))
    got = {r["unit_id"]: (r["subject_ok"], r["action_ok"]) for r in results["records"]}
    assert got == answers
    assert results["judge"]["human"] is True and results["judge"]["annotators"] == 1


def test_unknown_ids_and_bad_layouts_are_named(tmp_path):
    from actionbench.byo import import_images

    bad = tmp_path / "bad"
    _render(bad / "cheer" / "santa_claus" / "0.png")
    with pytest.raises(DatasetError) as info:
        import_images(bad, dataset="synthetic", out=tmp_path / "o1")
    message = str(info.value)
    assert "santa_claus" in message and "0.png" in message and "valid subjects" in message and "taylor_swift" in message
    assert not (tmp_path / "o1").exists()

    table = tmp_path / "t.csv"
    _render(tmp_path / "x.png")
    table.write_text("image,action,subject\nx.png,cheer,man\nx.png,juggle,man\n")
    with pytest.raises(DatasetError, match=r"t.csv line 3: unknown action 'juggle'.*valid actions: cheer"):
        import_images(table, dataset="synthetic", out=tmp_path / "o2")
    table.write_text("image,action,subject,k\nx.png,cheer,man,2\n")
    with pytest.raises(DatasetError, match="image number must be 0..1"):
        import_images(table, dataset="synthetic", out=tmp_path / "o3")
    table.write_text("image,action,subject,k\nx.png,cheer,man,0\nx.png,cheer,man,0\n")
    with pytest.raises(DatasetError, match="both image cheer/man/0"):
        import_images(table, dataset="synthetic", out=tmp_path / "o4")
    table.write_text("image,action,subject\nmissing.png,cheer,man\n")
    with pytest.raises(DatasetError, match="line 2: image missing.png not found"):
        import_images(table, dataset="synthetic", out=tmp_path / "o5")
    table.write_text("picture,action,subject\n")
    with pytest.raises(DatasetError, match="lacks column"):
        import_images(table, dataset="synthetic", out=tmp_path / "o6")
    flat = tmp_path / "flat"
    _render(flat / "cheer" / "0.png")
    with pytest.raises(DatasetError, match="ACTION/SUBJECT/K"):
        import_images(flat, dataset="synthetic", out=tmp_path / "o7")
    corrupt = tmp_path / "corrupt"
    (corrupt / "cheer" / "man").mkdir(parents=True)
    (corrupt / "cheer" / "man" / "0.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ActionBenchError, match="corrupt or truncated"):
        import_images(corrupt, dataset="synthetic", out=tmp_path / "o8")
    assert not (tmp_path / "o8" / "spec.json").exists()


def test_cli_judge_images_default_out(folder, tmp_path, monkeypatch):
    from actionbench.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["judge", "--images", str(folder / "sit"), "--dataset", "synthetic",
                                       "--judge", "human"])
    assert result.exit_code == 2 and "ACTION/SUBJECT/K" in result.output  # a folder one level too deep
    monkeypatch.setenv("ACTIONBENCH_LABELS_DB", str(tmp_path / "none.sqlite"))
    result = CliRunner().invoke(main, ["judge", "--images", str(folder), "--dataset", "synthetic", "--judge", "human"])
    assert result.exit_code == 2 and "no labels database" in result.output
    made = list((tmp_path / "runs").glob("byo-*"))
    assert len(made) == 1 and json.loads((made[0] / "spec.json").read_text())["images_given"] == 3
