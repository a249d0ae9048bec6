"""The pre-registered v2 test as code: the setup check and the claim's verdict, on made-up run folders."""
import json

import pytest
from click.testing import CliRunner

from actionbench.cli import main
from actionbench.results.metrics import compute_metrics
from actionbench.worlds.mini.lab.verdict import claim, setup_check

ACTIONS = ["cheer", "gesture", "handstand", "meditate", "pray", "salute", "sit", "squat"]
SUBJECTS = {"man": "human", "woman": "human", "cat": "animal", "dog": "animal"}


def records(action_rate, subject_rate=1.0, leak_rate=0.0, seeds=(0,)):
    """Per action, subject, seed and image: hits spread evenly so each action has the given rates."""
    out = []
    for a, action in enumerate(ACTIONS):
        for s, subject in enumerate(SUBJECTS):
            for seed in seeds:
                for k in range(4):
                    i = (a + s + k + seed) % 4
                    action_ok, subject_ok, leak = i < 4 * action_rate, i < 4 * subject_rate, i < 4 * leak_rate
                    out.append({"unit_id": f"{action}/{subject}/{k}", "action_id": action, "subject_id": subject,
                                "k": k, "seed": k, "train_seed": seed, "action_ok": action_ok,
                                "subject_ok": subject_ok,
                                "detail": {"leak": leak, "total_clean": action_ok and subject_ok and not leak}})
    return out


def write_row(runs, name, recs):
    folder = runs / name
    folder.mkdir(parents=True)
    judge = {"name": "mini-v2", "version": "1", "options": {}, "per_image_metrics": ["leak", "total_clean"]}
    metrics = compute_metrics(recs, n_boot=200, per_image_metrics=("leak", "total_clean"), subject_categories=SUBJECTS)
    results = {"run_name": name, "spec": {"method": name, "dataset": "mini-v2", "manifest_sha256": "abc",
                                          "protocol": {"images_per_pair": 4}},
               "judge": judge, "metrics": metrics, "records": recs}
    (folder / "results.json").write_text(json.dumps(results))


def setup_rows(runs, dreambooth_subject=1.0):
    write_row(runs, "null", records(0.25))
    write_row(runs, "sd", records(0.25, leak_rate=0.25))
    write_row(runs, "textual_inversion", records(0.5, seeds=(0, 1, 2)))
    write_row(runs, "p_plus", records(0.5, seeds=(0, 1, 2)))
    write_row(runs, "dreambooth", records(0.5, subject_rate=dreambooth_subject, seeds=(0, 1, 2)))


def test_setup_check_passes_on_a_subject_drop_and_fails_without_contamination(tmp_path):
    setup_rows(tmp_path / "contaminated", dreambooth_subject=0.75)
    check = setup_check(tmp_path / "contaminated")
    assert check["floor"]["overlap"] and check["passed"] and check["contaminated"] == ["dreambooth"]
    assert check["rows"]["dreambooth"]["subject_below_null"] == pytest.approx(0.25)
    setup_rows(tmp_path / "clean")
    assert not setup_check(tmp_path / "clean")["passed"] and setup_check(tmp_path / "clean")["status"] == "fails"
    (tmp_path / "clean" / "dreambooth" / "results.json").unlink()
    assert setup_check(tmp_path / "clean")["status"] == "not yet"  # DreamBooth could still show it
    (tmp_path / "contaminated" / "p_plus" / "results.json").unlink()
    partial = setup_check(tmp_path / "contaminated")
    assert partial["status"] == "passes" and partial["missing"] == ["p_plus"]  # one contaminated row is enough


def test_claim_supported_falsified_or_not_shown(tmp_path):
    setup_rows(tmp_path, dreambooth_subject=0.75)
    seeds = (0, 1, 2)
    write_row(tmp_path, "p_plus_4_anchors", records(0.25, leak_rate=0.75, seeds=seeds))
    write_row(tmp_path, "adi_random_masks", records(0.25, leak_rate=0.75, seeds=seeds))
    write_row(tmp_path, "adi_oracle", records(0.75, leak_rate=0.0, seeds=seeds))
    write_row(tmp_path, "adi", records(0.75, leak_rate=0.0, seeds=seeds))
    result = claim(tmp_path, n_boot=200)
    assert len(result["comparisons"]) == 8 and result["verdict"] == "supported"
    (tmp_path / "adi" / "results.json").unlink()
    (tmp_path / "adi").rmdir()
    write_row(tmp_path, "adi", records(0.25, leak_rate=0.75, seeds=seeds))  # as the comparators: intervals [0, 0]
    assert claim(tmp_path, n_boot=200)["verdict"] == "not shown"
    for name in ("adi",):
        (tmp_path / name / "results.json").unlink()
        (tmp_path / name).rmdir()
    write_row(tmp_path, "adi", records(0.0, leak_rate=1.0, seeds=seeds))  # worse on both measures
    assert claim(tmp_path, n_boot=200)["verdict"] == "falsified"


def test_the_verdict_reads_a_leaderboard_folder_too(tmp_path):
    """A reviewer recomputes it from the committed board (results/mini-v2-ROW.json), without the run folders."""
    setup_rows(tmp_path / "runs", dreambooth_subject=0.75)
    board = tmp_path / "board" / "results"
    board.mkdir(parents=True)
    for row in ("null", "sd", "textual_inversion", "p_plus", "dreambooth"):
        (board / f"mini-v2-{row}.json").write_text((tmp_path / "runs" / row / "results.json").read_text())
    assert setup_check(tmp_path / "board") == setup_check(tmp_path / "runs")


def test_cli_prints_the_check_and_says_what_the_claim_still_needs(tmp_path):
    setup_rows(tmp_path, dreambooth_subject=0.75)
    out = CliRunner().invoke(main, ["mini", "verdict", "--runs", str(tmp_path), "--n-boot", "100"])
    assert out.exit_code == 0, out.output
    assert "setup check PASSES (contamination: dreambooth)" in out.output
    assert "(b) not yet: no results for adi, adi_oracle, p_plus_4_anchors, adi_random_masks" in out.output
    as_json = json.loads(CliRunner().invoke(main, ["mini", "verdict", "--runs", str(tmp_path), "--json"]).output)
    assert as_json["setup_check"]["passed"] and as_json["claim"] is None and len(as_json["missing_for_claim"]) == 4
    (tmp_path / "sd" / "results.json").unlink()
    missing = CliRunner().invoke(main, ["mini", "verdict", "--runs", str(tmp_path)])
    assert missing.exit_code != 0 and "no results for row 'sd'" in missing.output


def test_the_v2_table_runs_the_preregistered_rows_and_seeds_by_default():
    from actionbench.worlds.mini.lab.table import all_rows, default_row_names, defaults
    from actionbench.worlds.mini.lab.verdict import CLAIM_ROWS, COMPARATORS, CONTAMINATION_ROWS

    rows, seeds = defaults("mini-v2")
    assert seeds == 3 and set(rows) <= {r.name for r in all_rows()} and len(rows) == len(set(rows)) == 14
    assert {"null", "sd", *CONTAMINATION_ROWS, *CLAIM_ROWS, *COMPARATORS} <= set(rows)
    assert rows.index("adi") < rows.index("adi_random_masks")  # the control takes ADI's kept fraction
    assert defaults("mini-v1") == (default_row_names(), 1)


def test_the_methods_bring_the_tables_rows_in_the_order_and_names_the_leaderboard_holds():
    """The rows come from the methods' own ``table_rows``; their names are leaderboard entries (mini-v2-ROW)."""
    from actionbench.worlds.mini.lab.table import all_rows, default_row_names

    assert [(r.name, r.method, r.preset, r.settings, r.trains, r.keep_fraction_from) for r in all_rows()][:15] == [
        ("null", "null", None, {}, False, None), ("sd", "sd", None, {}, False, None),
        ("controlnet", "controlnet", None, {}, False, None),
        ("textual_inversion", "textual_inversion", None, {}, True, None), ("p_plus", "p_plus", None, {}, True, None),
        ("p_plus_4_anchors", "p_plus", None, {"batch_size": 4}, True, None),
        ("reversion", "reversion", None, {}, True, None), ("dreambooth", "dreambooth", None, {}, True, None),
        ("custom_diffusion", "custom_diffusion", None, {}, True, None), ("adi", "adi", None, {}, True, None),
        ("adi_context_mask_only", "adi", "context_mask_only", {}, True, None),
        ("adi_action_mask_only", "adi", "action_mask_only", {}, True, None),
        ("adi_oracle", "adi", "oracle", {}, True, None), ("adi_pplus_anchors", "adi", "pplus_anchors", {}, True, None),
        ("adi_random_masks", "adi", "random_masks", {}, True, "adi")]
    assert default_row_names()[:11] == ("null", "sd", "controlnet", "textual_inversion", "p_plus", "reversion",
                                        "dreambooth", "custom_diffusion", "adi", "adi_random_masks", "adi_pplus_anchors")


def test_leak_parts_split_the_leak_into_background_and_attributes():
    from actionbench.worlds.mini.lab.verdict import leak_parts

    def record(subject, attributes, background):
        return {"action_id": "salute", "subject_id": subject,
                "detail": {"attributes": attributes, "background_type": background}}

    results = {"judge": {"signatures": {"salute": {"attributes": ["uniform", "cap"], "background_type": "outdoors"}}},
               "metrics": {"per_category": {"animal": {"subjects": ["cat"]}}},
               "records": [record("man", ["cap"], "outdoors"), record("man", [], "room"),
                           record("cat", ["scarf"], "outdoors"), record("cat", ["uniform"], "none")]}
    assert leak_parts(results) == {"background": 0.5, "attributes": 0.5, "attributes_animals": 0.5}


def test_the_v3_gate_and_claim_are_recomputed_by_mini_verdict(tmp_path):
    """The v3 test on made-up rows: P+ 50 % action against null's 25 % passes G1; leak on animals and lift decide
    G2 and G3; the claim reads adi_oracle - adi_random_masks."""
    def row(name, action_rate, leak_rate, lift, seeds=(0, 1, 2)):
        write_row(tmp_path, name, records(action_rate, leak_rate=leak_rate, seeds=seeds))
        path = tmp_path / name / "results.json"
        results = json.loads(path.read_text())
        path.write_text(json.dumps({**results, "floor": {"lift": lift}}))

    row("null", 0.25, 0.0, None, seeds=(0,))
    row("p_plus_4_anchors", 0.5, 0.5, 0.2)
    row("textual_inversion", 0.5, 0.5, 0.1)
    out = CliRunner().invoke(main, ["mini", "verdict", "--suite", "mini-v3", "--runs", str(tmp_path), "--n-boot", "200"])
    assert out.exit_code == 0, out.output
    assert "G1 p_plus_4_anchors - null, action: +25.0 pp" in out.output and "passes" in out.output
    assert "G3 lift: textual_inversion 0.100, p_plus_4_anchors 0.200 (needs >= 0.15 each): FAILS" in out.output
    assert "gate FAILS" in out.output and "claim: not yet" in out.output
    row("adi_oracle", 0.75, 0.0, 0.2)  # equal action (an interval [0, 0]) would be "not shown": its bound must pass 0
    row("adi_random_masks", 0.5, 0.5, 0.2)
    result = json.loads(CliRunner().invoke(main, ["mini", "verdict", "--suite", "mini-v3", "--runs", str(tmp_path),
                                                  "--n-boot", "200", "--json"]).output)
    claim0 = result["claim"]["0"]
    assert claim0["family"] == 5 and claim0["pre_registered_family"] == 8
    assert claim0["outcome"] == "supported", claim0
    refused = CliRunner().invoke(main, ["mini", "verdict", "--runs", str(tmp_path), "--masks", str(path_of(tmp_path))])
    assert refused.exit_code != 0 and "--suite mini-v3" in refused.output


def path_of(folder):
    target = folder / "masks.json"
    target.write_text("{}")
    return target
