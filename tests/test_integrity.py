"""Verifiable results and leaderboard entries (issue 15 item 1): each hand edit of the issue is refused.

The runs are made the way the runner makes them (``run_fixtures``: painted images, a judge that reads
colours, the runner's own ``judge`` and ``write_results``); the forgeries are what a careful forger
does: edit, then recompute metrics, derived blocks and the record-set hash (``reseal``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_fixtures import COLOUR_JUDGE, ColourJudgeV2, copy_run, make_run, paint, reseal

from actionbench.cli import main
from actionbench.errors import ActionBenchError, ConfigError
from actionbench.hashing import stable_hash
from actionbench.io import atomic_write_json, save_image
from actionbench.leaderboard import ValidationError, add_result, render_leaderboard, validate_results, validate_run

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    return {
        "good": make_run(root, "good", lambda a, s, k, seed: (a in ("cheer", "sit"), True), method="adi",
                         artifacts=True),
        "all": make_run(root, "all", method="adi", artifacts=True),  # the same spec as good, other numbers
        "half": make_run(root, "half", lambda a, s, k, seed: k == 0, method="sd"),
        "other-half": make_run(root, "other-half", lambda a, s, k, seed: k == 1, method="p_plus"),
    }


@pytest.fixture
def good(built, tmp_path):
    return copy_run(built["good"], tmp_path / "runs")


def load(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def save(run: Path, results: dict) -> Path:
    return atomic_write_json(run / "results.json", results)


# --- the results file -----------------------------------------------------------------------------


def test_every_record_carries_its_image_hash_and_the_record_set_is_hashed(good):
    from actionbench.hashing import sha256_file
    from actionbench.results.schema import record_set_sha256

    results = load(good)
    assert results["schema_version"] == 2 and len(results["records"]) == 368
    assert all(r["image_sha256"] == sha256_file(good / r["image"]) for r in results["records"][:20])
    assert results["records_sha256"] == record_set_sha256(results["records"])
    assert results["coverage"] == {"protocol_units": 368, "train_seeds": 1, "expected": 368, "recorded": 368,
                                   "failed_units": 0, "partial": False, "declared": "protocol"}
    # a results hook annotating records (human labels) does not break the hash
    results["records"][0]["human"] = {"action": True}
    assert record_set_sha256(results["records"]) == results["records_sha256"]


def test_results_carry_false_alarms_lift_confusion_and_mutual_information(good):
    floor = load(good)["floor"]
    assert floor["available"] and floor["judged_class_key"] == "action_pred"
    cheer = floor["per_action"]["cheer"]
    assert (cheer["hit_rate"], cheer["false_alarm_rate"], cheer["lift"]) == (1.0, 0.0, 1.0)
    assert floor["per_action"]["gesture"]["lift"] == 0.0 and floor["lift"] == pytest.approx(2 / 8)
    confusion = floor["confusion"]
    assert confusion["rows"][:2] == ["cheer", "gesture"] and confusion["columns"][-1] == "none"
    assert confusion["counts"][0][0] == 46 and confusion["counts"][1][-1] == 46 and sum(map(sum, confusion["counts"])) == 368
    assert floor["mutual_information"]["bits"] > floor["mutual_information"]["shuffled_p95"]


def test_flipped_verdicts_with_recomputed_metrics_are_refused(good):
    results = load(good)
    for r in results["records"][:5]:
        r["action_ok"] = not r["action_ok"]  # the judge's prediction left as it was
    save(good, reseal(results))
    problems = validate_results(good / "results.json")
    assert any("action_ok is False but the judge's predicted class detail.action_pred is 'cheer'" in p for p in problems)

    for r in results["records"][:5]:  # a careful forger edits the prediction too: the file alone cannot tell
        r["detail"]["action_pred"] = "none"
    save(good, reseal(results))
    assert validate_results(good / "results.json") == []
    problems = validate_results(good / "results.json", run_dir=good)  # the judgment files can
    assert any("5 records' verdicts differ from their judgment files" in p for p in problems)
    with pytest.raises(ValidationError, match="verdicts differ from their judgment files"):
        add_result(good, good.parent / "board")


def test_three_of_368_records_marked_complete_are_refused(good):
    results = load(good)
    results["records"] = results["records"][:3]
    save(good, reseal(results))
    problems = validate_results(good / "results.json")
    assert any("complete is true but 365 of the protocol's 368 units have no record" in p for p in problems)

    results["complete"], results["coverage"]["partial"] = False, True  # honest about it: valid, partial
    save(good, results)
    assert validate_results(good / "results.json") == []
    problems = validate_results(good / "results.json", run_dir=good)
    assert any("365 units were judged" in p and "left out of the records" in p for p in problems)


def test_a_spec_edited_and_rehashed_is_refused_against_its_run_folder(good):
    results = load(good)
    results["spec"]["method_config"]["train_steps"] = 5000
    results["spec"]["config_hash"] = stable_hash(results["spec"]["method_config"])
    results["spec_hash"] = stable_hash(results["spec"])
    save(good, results)
    assert validate_results(good / "results.json") == []  # consistent with itself
    check = validate_run(good / "results.json", good)
    assert any("spec differs from" in p and "method_config" in p for p in check.problems)

    atomic_write_json(good / "spec.json", results["spec"])  # spec.json edited as well: the artifacts disagree
    check = validate_run(good / "results.json", good)
    assert any("8 artifacts were learned with another method, config or backbone" in p for p in check.problems)
    with pytest.raises(ValidationError, match="artifacts were learned"):
        add_result(good, good.parent / "board")


def test_a_number_of_1e999_is_refused(good):
    text = (good / "results.json").read_text()
    (good / "results.json").write_text(text.replace('"wall_time_s": 1.0', '"wall_time_s": 1e999', 1))
    problems = validate_results(good / "results.json")
    assert any(p.startswith("provenance.wall_time_s is inf: numbers in a results file must be finite") for p in problems)


def test_an_image_replaced_after_judging_is_caught(good):
    save_image(paint(True, True, shade=99), good / "images/gesture/cat/1.png")
    assert validate_results(good / "results.json") == []
    problems = validate_results(good / "results.json", run_dir=good)
    assert any("1 images differ from the SHA-256 their records carry (first: images/gesture/cat/1.png)" in p
               for p in problems)


def test_a_record_pointing_at_another_units_image_is_refused(good):
    results = load(good)
    results["records"][0]["image"] = "images/sit/man/0.png"
    save(good, reseal(results))
    assert any("the runner writes this unit's image to 'images/cheer/man/0.png'" in p
               for p in validate_results(good / "results.json"))


def test_legacy_results_validate_as_legacy_and_are_marked():
    from actionbench.leaderboard import entry_caveats
    from actionbench.leaderboard.validate import validate_run as check_against

    path = REPO / "leaderboard" / "results" / "mini-reversion.json"
    assert validate_results(path) == []
    data = json.loads(path.read_text())
    dirty = ["dirty source"] if data["provenance"].get("git_dirty") else []  # made from uncommitted code
    assert entry_caveats(data) == ["legacy: no image or record hashes", *dirty]
    assert check_against(data, REPO / "leaderboard").problems  # not a run folder: said so, not a crash


def test_multi_seed_records_are_checked_per_training_seed(tmp_path):
    run = make_run(tmp_path, "seeds", lambda a, s, k, seed: seed == 0 or a == "cheer", train_seeds=[0, 1])
    results = load(run)
    assert len(results["records"]) == 736 and results["coverage"]["train_seeds"] == 2
    assert results["per_seed"]["count"] == 2 and results["per_seed"]["per_seed"]["0"]["total"] == 1.0
    assert results["metrics"]["per_train_seed"]["gesture"]["1"]["action"] == 0.0
    assert validate_results(run / "results.json", run_dir=run) == []
    results["records"] = [r for r in results["records"] if r["train_seed"] == 0]
    save(run, reseal(results))
    assert any("complete is true but 368 of the protocol's 736 units" in p for p in validate_results(run / "results.json"))


def test_bring_your_own_subset_is_declared_and_partial(tmp_path):
    run = make_run(tmp_path, "byo", keep=lambda u: u.action_id == "cheer" and u.subject_id == "man",
                   extra={"images_given": 2})
    results = load(run)
    assert results["complete"] is False and results["coverage"]["declared"] == "given images"
    assert validate_results(run / "results.json") == []
    results["spec"]["images_given"] = 5
    results["spec_hash"] = stable_hash(results["spec"])
    assert any("spec.images_given is 5 but there are 2 records" in p for p in validate_results(results))


def test_results_record_the_machine(good):
    from actionbench.results.machine import cpu_info, machine_summary, torch_build

    machine = load(good)["provenance"]["machine"]
    assert machine["cpu_model"] and isinstance(machine["cpu_flags"], list)
    assert machine["torch"]["version"] and machine["torch"]["threads"] >= 1 and "summary" in machine
    fake = Path(good / "cpuinfo")
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu sse4_2 avx avx2 avx512f amx_tile\n")
    assert cpu_info(fake) == {"model": "AMD EPYC 9654", "flags": ["sse4_2", "avx", "avx2", "avx512f", "amx_tile"]}
    build = torch_build("  - Intel(R) MKL-DNN v3.12.0 (Git Hash 1)\n  - CPU capability usage: AVX512\n"
                        "  - Build settings: BLAS_INFO=mkl, CUDA_VERSION=13.0, USE_MKLDNN=ON, \n")
    assert (build["blas_info"], build["onednn"], build["cpu_capability"], build["use_mkldnn"]) == \
        ("mkl", "v3.12.0", "AVX512", "ON")
    summary = machine_summary({"cpu_model": "AMD EPYC 9654", "cpu_flags": ["avx2", "avx512f"],
                               "torch": {"version": "2.14.1", "blas_info": "mkl", "threads": 1}, "gpu": "NVIDIA H200"})
    assert summary == "AMD EPYC 9654 (avx512f); torch 2.14.1 mkl, 1 thread; NVIDIA H200"


def test_validate_command_checks_a_file_alone_or_against_its_run_folder(good):
    cli = CliRunner()
    result = cli.invoke(main, ["validate", str(good / "results.json")])
    assert result.exit_code == 0 and "valid" in result.output
    result = cli.invoke(main, ["validate", "--run", str(good)])
    assert result.exit_code == 0 and "checked against the run folder" in result.output
    (good / "judgments/colour-v1/cheer/man/0.json").unlink()
    result = cli.invoke(main, ["validate", "--run", str(good)])
    assert result.exit_code == 1 and "1 records have no judgment file" in result.output


# --- adding to the leaderboard ------------------------------------------------------------------------


def test_add_refuses_partial_smoke_and_test_backbone_runs_unless_allowed(tmp_path):
    board = tmp_path / "board"
    partial = make_run(tmp_path, "three", keep=lambda u: u.action_id == "cheer" and u.subject_id == "man" or
                       (u.action_id, u.subject_id, u.k) == ("sit", "man", 0))
    smoke = make_run(tmp_path, "smoke", preset="smoke", shade=10)  # other runs, other images
    tiny = make_run(tmp_path, "tiny", backbone="tiny", shade=20)
    for run, why in ((partial, "partial: 3 of 368 images"), (smoke, "smoke preset"), (tiny, "test backbone tiny")):
        with pytest.raises(ConfigError, match=f"not a full, verifiable run of the protocol \\({why}\\).*--allow-partial"):
            add_result(run, board)
    assert not (board / "results").exists()
    for run in (partial, smoke, tiny):
        add_result(run, board, allow_partial=True)
    md = render_leaderboard(board)["markdown"].read_text()
    assert "| - | sd |" in md and "measured (partial: 3 of 368 images) |" in md  # shown, marked, not ranked
    assert "measured (smoke preset) |" in md and "measured (test backbone tiny) |" in md


def test_a_three_image_100_percent_row_is_not_ranked_first(built, tmp_path):
    board = tmp_path / "board"
    add_result(built["half"], board)
    three = make_run(tmp_path, "three", keep=lambda u: u.action_id == "cheer" and u.subject_id == "man" or
                     (u.action_id, u.subject_id, u.k) == ("sit", "man", 0), method="adi")
    add_result(three, board, allow_partial=True)
    table = render_leaderboard(board)["markdown"].read_text().split("### Judge: colour, version 1")[1]
    assert table.index("| 1 | sd | 50.00") < table.index("| - | adi | 100.00")


def test_add_never_replaces_an_entry_without_replace_and_names_it(built, tmp_path):
    board = tmp_path / "board"
    first = add_result(built["good"], board, name="entry")
    other = built["all"]  # same spec, other numbers
    with pytest.raises(ConfigError, match="entry 'entry' already holds run 'good' \\(adi, spec .*would replace it. "
                                          "Pass --replace"):
        add_result(other, board, name="entry")
    assert first.read_bytes() == (built["good"] / "results.json").read_bytes()
    assert add_result(other, board, name="entry", replace=True) == first
    assert first.read_bytes() == (other / "results.json").read_bytes()
    beside = add_result(built["good"], board)  # the default name holds the record-set hash: a row of its own
    assert beside != first and len(list((board / "results").glob("*.json"))) == 2
    with pytest.raises(ConfigError, match="the same images and verdicts, by the same judge\\) are already on the "
                                          "board as entry"):
        add_result(built["good"], board, name="again")
    # the same records under another judge (another world's judge, reading them alike) are an entry of their own
    from actionbench.leaderboard.entries import _entry_with_records, _judge_of, records_hash

    results = json.loads((built["good"] / "results.json").read_text())
    assert _entry_with_records(board, records_hash(results), "again", _judge_of(results)) is not None
    assert _entry_with_records(board, records_hash(results), "again", ("another-judge", "1")) is None


def test_identical_specs_with_different_numbers_are_two_rows_with_run_and_machine(built, tmp_path):
    board = tmp_path / "board"
    add_result(built["good"], board)
    add_result(built["all"], board)
    md = render_leaderboard(board)["markdown"].read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "| adi |" in line]
    assert len(rows) == 2 and "| good |" in rows[1] and "| all |" in rows[0]
    assert all("; torch " in row for row in rows)  # the machine's summary


def test_rank_ranges_tie_rows_the_paired_comparison_cannot_separate(built, tmp_path):
    from actionbench.leaderboard import board_frame, collect_rows

    runs = [built["all"], built["half"], built["other-half"]]  # 100 %; 50 % on k = 0; 50 % on k = 1
    frame = board_frame(collect_rows(tmp_path / "no-board", runs))
    assert list(frame["method"]) == ["adi", "p_plus", "sd"]
    assert list(frame["rank_range"]) == ["1", "2-3", "2-3"] and list(frame["rank"]) == [1, 2, 3]
    from actionbench.leaderboard.ranks import range_text

    assert range_text(2, 4) == "2-4" and range_text(3, 3) == "3"


def test_page_shows_heat_maps_seed_counts_and_how_to_read(tmp_path):
    run = make_run(tmp_path, "seeds", lambda a, s, k, seed: a == "cheer" or seed == 1, train_seeds=[0, 1])
    written = render_leaderboard(tmp_path / "no-board", extra_results=[run], page_dir=tmp_path / "page")
    page = written["html"].read_text()
    assert 'aria-label="confusion matrix of seeds: target action by judged pose class"' in page
    assert '<section class="howto" id="how-to-read"><h2>How to read the leaderboard</h2>' in page
    link = page.split('More: <a href="')[1].split('"')[0]
    assert (tmp_path / "page" / link).resolve() == (REPO / "docs" / "reading-the-leaderboard.md").resolve()
    assert "training seeds 2 (total per seed: 0: 12.50; 1: 100.00)" in page
    md = written["markdown"].read_text()
    assert "| 1 | sd | 56.25 [" in md and " | 736 | 2 | - | seeds |" in md


# --- rejudge and reproduce ---------------------------------------------------------------------------


def test_rejudge_verifies_an_honest_entry_and_the_board_says_so(built, tmp_path):
    board = tmp_path / "board"
    entry = add_result(built["good"], board, name="good-entry")
    result = CliRunner().invoke(main, ["rejudge", "good-entry", "--board", str(board), "--run", str(built["good"]),
                                       "--out", str(tmp_path / "rejudged"), "--judge", COLOUR_JUDGE, "--record"])
    assert result.exit_code == 0, result.output
    assert "368 verdicts agree, 0 differ" in result.output and "368 of 368 images matched" in result.output
    verified = json.loads((board / "verified" / "good-entry.json").read_text())
    assert verified["verified"] and verified["entry"] == "good-entry" and verified["n"] == 368
    assert validate_results(tmp_path / "rejudged" / "results.json") == []
    md = render_leaderboard(board)["markdown"].read_text()
    assert "measured, verified by rejudge |" in md
    assert "verified by rejudge: 368 of 368 verdicts agree" in (board / "index.html").read_text()
    add_result(built["all"], board, name="good-entry", replace=True)
    assert not (board / "verified" / "good-entry.json").exists() and entry.exists()  # stale: it verified another run
    assert "verified by rejudge |" not in render_leaderboard(board)["markdown"].read_text()


def test_rejudge_catches_verdicts_forged_consistently(built, tmp_path):
    forged = copy_run(built["half"], tmp_path)
    results = load(forged)
    for r in results["records"]:  # every miss made a hit, in the results and in the judgment files alike
        if not r["action_ok"]:
            r.update(action_ok=True, subject_ok=True, detail={"action_pred": r["action_id"],
                                                              "subject_pred": r["subject_id"]})
            atomic_write_json(forged / "judgments" / "colour-v1" / r["action_id"] / r["subject_id"] / f"{r['k']}.json",
                              {"unit_id": r["unit_id"], "action_ok": True, "subject_ok": True, "detail": r["detail"]})
    save(forged, reseal(results))
    assert validate_results(forged / "results.json", run_dir=forged) == []  # hashes stop edits, not consistent forgery
    result = CliRunner().invoke(main, ["rejudge", str(forged), "--out", str(tmp_path / "rejudged"),
                                       "--judge", COLOUR_JUDGE])
    assert result.exit_code == 1 and "184 verdicts agree, 184 differ" in result.output and "NOT VERIFIED" in result.output


def test_rejudge_refuses_images_that_are_not_the_entrys_and_another_judge_version(built, tmp_path):
    from actionbench.leaderboard.rejudge import rejudge

    run = copy_run(built["good"], tmp_path)
    results = load(run)
    save_image(paint(True, True, shade=1), run / "images/cheer/man/0.png")
    with pytest.raises(ActionBenchError, match="1 images in .* are not the entry's"):
        rejudge(results, run, tmp_path / "out")
    shutil.copy(built["good"] / "images/cheer/man/0.png", run / "images/cheer/man/0.png")
    with pytest.raises(ActionBenchError, match="judged by colour v1, but .* is colour v2"):
        rejudge(results, run, tmp_path / "out", judge=f"{ColourJudgeV2.__module__}:ColourJudgeV2")


def test_reproduce_rebuilds_the_recorded_spec(built):
    from actionbench.leaderboard.reproduce import reproduce_options, reproduce_spec

    entry = load(built["good"])
    spec = reproduce_spec(entry)
    assert (spec.method, spec.backbone, spec.dataset, spec.judge, spec.preset, spec.train_seeds) == \
        ("adi", "mini", "synthetic", "colour", None, 1)
    assert spec.config.to_dict() == entry["spec"]["method_config"] and spec.config.hash() == entry["spec"]["config_hash"]
    options = reproduce_options(entry, "out")
    assert (options.dtype, options.attention, str(options.out)) == ("fp32", "sdpa", "out")


def test_reproduce_of_an_entry_whose_config_layout_changed_names_the_commit_that_made_it():
    from actionbench.leaderboard.reproduce import reproduce_spec

    entry = json.loads((REPO / "leaderboard" / "results" / "mini-reversion.json").read_text())
    with pytest.raises(ActionBenchError, match="re-run with the ActionBench that made the entry \\(git commit d661f736"):
        reproduce_spec(entry)


def test_reproduce_says_whether_the_new_numbers_fall_inside_the_entrys_intervals(built, tmp_path, monkeypatch):
    from actionbench.run import runner

    entry = add_result(built["good"], tmp_path / "board", name="good")
    again = {"close": make_run(tmp_path, "close", lambda a, s, k, seed: (a in ("cheer", "sit") and (a, s) != ("cheer", "man"),
                                                                       True), method="adi"),
             "far": built["all"]}
    calls = []

    def fake_evaluate(spec, options):
        calls.append((spec, options))
        return again[options.out.name] / "results.json"  # what the re-run would have written

    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    cli = CliRunner()
    result = cli.invoke(main, ["reproduce", "good", "--board", str(tmp_path / "board"), "--out", str(tmp_path / "close")])
    assert result.exit_code == 0, result.output
    assert "REPRODUCED" in result.output and "25.00 [" in result.output and "24.46" in result.output
    spec, options = calls[0]
    assert (spec.method, spec.backbone, spec.dataset, spec.judge) == ("adi", "mini", "synthetic", "colour")
    result = cli.invoke(main, ["reproduce", str(entry), "--out", str(tmp_path / "far"), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert not report["reproduced"] and report["metrics"]["action"]["new"] == 1.0
    assert not report["metrics"]["action"]["inside"] and report["paired"]["total"]["difference"] == pytest.approx(0.75)
