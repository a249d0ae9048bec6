"""The mini world's protocol (issue 16, lever 2): the rule's pieces, the record the suite applies,
and one short measurement end to end on the shipped mini world (constants shrunk)."""
from __future__ import annotations

import json

import pytest

from actionbench.worlds.mini.lab import protocol as P
from actionbench.worlds.mini.protocol import PROTOCOL_FILE, method_settings


def test_flattened_step_is_where_the_smoothed_curve_has_made_90_percent_of_its_drop():
    falling = [(0, 1.0), (25, 0.5), (50, 0.3), (75, 0.21), (100, 0.2), (125, 0.2), (150, 0.2)]
    assert P.flattened_step(falling) == 75  # smoothed: 0.75 0.6 0.34 0.24 0.20 0.20 0.20
    assert P.flattened_step([(0, 1.0), (25, 0.9), (50, 0.8), (75, 0.7)]) == 75  # never flat: the last step


def test_a_drop_is_measurable_only_when_it_reaches_one_percent_and_does_not_end_above_the_start():
    assert P.drops_measurably([(0, 1.0), (25, 0.98), (50, 0.985)])
    assert not P.drops_measurably([(0, 1.0), (25, 0.995), (50, 0.996)])  # under 1 %
    assert not P.drops_measurably([(0, 1.0), (25, 0.9), (50, 1.01)])  # ends above its start
    assert not P.drops_measurably([(0, 1.0)])


def test_the_rule_takes_the_smallest_multiple_that_works_and_keeps_the_default_without_evidence():
    flat = [(0, 1.0), (25, 1.0), (50, 1.0)]
    falling = [(0, 1.0), (25, 0.8), (50, 0.7), (75, 0.7)]
    settings, reason = P.choose("m", {1.0: [flat, flat], 10.0: [falling, falling]}, 1e-4, "lr", "steps")
    assert settings == {"steps": 75, "lr": pytest.approx(1e-3)} and "x10" in reason
    settings, _ = P.choose("m", {1.0: [falling, falling]}, 1e-4, "lr", "steps")
    assert settings == {"steps": 75}  # x1 works: the learning rate is not written at all
    settings, reason = P.choose("m", {1.0: [flat], 10.0: [flat], 100.0: [flat]}, 1e-4, "lr", "steps")
    assert "lr" not in settings and "default learning rate stays" in reason


def test_a_curve_cut_short_of_the_default_before_it_flattened_keeps_the_default_steps():
    still_falling = [(0, 1.0), (25, 0.9), (50, 0.8), (75, 0.7)]
    flat_early = [(0, 1.0), (25, 0.7), (50, 0.7), (75, 0.7)]
    settings, reason = P.choose("m", {1.0: [still_falling]}, 1e-4, "lr", "steps", default_steps=3000)
    assert settings == {} and "default 3000 steps stay" in reason
    settings, _ = P.choose("m", {1.0: [flat_early]}, 1e-4, "lr", "steps", default_steps=3000)
    assert settings == {"steps": 50}
    settings, _ = P.choose("m", {1.0: [still_falling]}, 1e-4, "lr", "steps", default_steps=75)  # not cut: the rule's step
    assert settings == {"steps": 75}


def test_the_suite_applies_a_protocol_record_sampler_for_all_then_per_method():
    record = {"sampler": {"num_inference_steps": 20},
              "rows": [{"method": "p_plus", "settings": {"train_steps": 300}},
                       {"method": "adi", "settings": {"train_steps": 200}},
                       {"method": "adi", "settings": {"action_different_tune_steps": 50}}]}
    assert method_settings(record) == {"*": {"sampler.num_inference_steps": 20}, "p_plus": {"train_steps": 300},
                                         "adi": {"train_steps": 200, "action_different_tune_steps": 50}}


def test_the_shipped_protocol_is_what_the_mini_suite_runs_with():
    from actionbench.worlds.mini.folders import shipped_dir
    from actionbench.worlds.mini.suite import MINI_SUITE, MINI_V1_SUITE, SPEED_SETTINGS
    from actionbench.worlds.mini.world import PLAIN_NAME_WORLD

    path = shipped_dir("mini-v1") / PROTOCOL_FILE
    if not path.is_file():
        pytest.skip("mini v1 ships no protocol.json")
    record = json.loads(path.read_text())
    expected = method_settings(record)
    for method, values in SPEED_SETTINGS.items():  # speed-only settings on top, never a protocol field
        assert not set(values) & set(expected.get(method, {}))
        expected.setdefault(method, {}).update(values)
    assert MINI_V1_SUITE.method_settings == expected
    assert "protocol.json" in MINI_V1_SUITE.protocol_note
    if PLAIN_NAME_WORLD == "mini-v1":
        assert MINI_SUITE.method_settings == MINI_V1_SUITE.method_settings
    # every curve the record shows was measured, and every chosen step is one of its evaluated steps
    for row in record["rows"]:
        assert row["curves"] and row["reason"]
        steps = row["settings"].get("train_steps") or row["settings"].get("action_different_tune_steps")
        assert steps is None or any(steps in [s for s, _ in c["points"]] for c in row["curves"])


def test_a_world_without_a_shipped_folder_or_protocol_still_gets_the_speed_settings(monkeypatch):
    from actionbench.worlds.mini import suite
    from actionbench.worlds.mini.folders import ShippedDataError

    def missing(world):
        raise ShippedDataError(f"no shipped folder for {world}")

    monkeypatch.setattr(suite, "shipped_dir", missing)
    settings, note = suite.protocol_settings("mini-v2")
    assert settings == suite.SPEED_SETTINGS and "no protocol" in note


def test_a_short_protocol_run_on_mini_writes_a_record_the_suite_can_apply(tmp_path, monkeypatch):
    """The whole measurement with its constants shrunk: sampler agreement, TI's curves, ADI's tuning."""
    monkeypatch.setattr(P, "SAMPLER_REFERENCE", 4)
    monkeypatch.setattr(P, "SAMPLER_CANDIDATES", (2, 3))
    monkeypatch.setattr(P, "EVERYDAY_PROMPTS", (("man", "stand"),))
    monkeypatch.setattr(P, "MAX_CURVE_STEPS", 4)
    monkeypatch.setattr(P, "EVAL_EVERY", 2)
    monkeypatch.setattr(P, "EVAL_REPEATS", 1)
    monkeypatch.setattr(P, "LR_MULTIPLIERS", (1.0, 10.0))
    lines = []
    path = P.run_protocol("mini", "mini", "mini", tmp_path, methods=["textual_inversion"], log=lines.append)
    record = json.loads(path.read_text())
    assert record["sampler"]["num_inference_steps"] in (2, 3, 4)
    assert record["sampler"]["solver"] in P.SAMPLER_SOLVERS
    assert {s: set(a) for s, a in record["sampler"]["agreement_with_50_steps"].items()} == {
        s: {"2", "3"} for s in P.SAMPLER_SOLVERS}
    assert [r["row"] for r in record["rows"]] == ["textual_inversion"]
    ti = record["rows"][0]
    assert ti["settings"].get("train_steps") in (None, 2)  # 4 is the cut (default 2,000): then the default stays
    assert {c["label"].split()[-1] for c in ti["curves"]} >= {"cheer"} and all(len(c["points"]) == 3 for c in ti["curves"])
    assert record["cpu_seconds"] > 0 and any(line.startswith("sampler:") for line in lines)
    settings = method_settings(record)
    assert settings["textual_inversion"].get("train_steps") == ti["settings"].get("train_steps")

    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset

    tuning = P.tuning_curves(load_backbone("mini"), load_dataset("mini"), log=lines.append)
    assert tuning.row == "adi action-different tuning" and len(tuning.curves) in (2, 4)
    assert set(tuning.settings) <= {"action_different_tune_steps", "action_different_tune_lr"}


def test_the_sampler_rule_compares_pose_and_subject_only_whatever_else_the_judge_reads(monkeypatch):
    """v2's judge also reads attributes and the background type; the rule is written for pose and subject."""
    from actionbench import training
    from actionbench.worlds.mini.judge_v2 import Reading

    monkeypatch.setattr(P, "SAMPLER_CANDIDATES", (2,))
    monkeypatch.setattr(training, "encode_prompts", lambda backbone, texts: texts)
    monkeypatch.setattr(training, "sample_images", lambda backbone, embeds, seeds, sampler:
                        [sampler.num_inference_steps] * len(seeds))

    class Judge:  # at 2 steps every image shows a cap the 50-step image lacks; pose and subject agree
        def predict(self, images):
            return [Reading("stand", "man", ("cap",) if steps == 2 else (), "none") for steps in images]

    chosen, agreement = P.sampler_steps(None, Judge(), [("a man standing", "stand", "man")], [0, 1])
    assert chosen == ("ddim", 2) and agreement == {s: {2: 1.0} for s in P.SAMPLER_SOLVERS}


def test_records_measured_in_parts_merge_into_the_shipped_protocol(tmp_path):
    """``mini protocol --merge``: the shipped record, split into two parts, joins back into the same
    settings (the rule re-applied to the stored curves); overlapping or disagreeing parts are refused."""
    from click.testing import CliRunner

    from actionbench.cli import main
    from actionbench.worlds.mini.folders import shipped_dir

    shipped = json.loads((shipped_dir("mini-v1") / PROTOCOL_FILE).read_text())
    first, second = (dict(shipped, rows=shipped["rows"][:3]), dict(shipped, rows=shipped["rows"][3:]))
    parts = []
    for i, part in enumerate((first, second)):
        parts.append(tmp_path / f"part{i}.json")
        parts[-1].write_text(json.dumps(part))
    result = CliRunner().invoke(main, ["mini", "protocol", "--out", str(tmp_path / "merged"),
                                       "--merge", ",".join(map(str, parts))])
    assert result.exit_code == 0, result.output
    merged = json.loads((tmp_path / "merged" / PROTOCOL_FILE).read_text())
    assert method_settings(merged) == method_settings(shipped)
    assert [(r["row"], r["reason"]) for r in merged["rows"]] == [(r["row"], r["reason"]) for r in shipped["rows"]]
    with pytest.raises(ValueError, match="more than one part"):
        P.merge_records([first, first], world="w")
    with pytest.raises(ValueError, match="disagree on the sampler"):
        P.merge_records([first, dict(second, sampler={"num_inference_steps": 20})], world="w")


def test_sampler_only_keeps_the_method_rows_and_replaces_rule_1(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from actionbench.cli import main

    monkeypatch.setattr(P, "SAMPLER_REFERENCE", 3)
    monkeypatch.setattr(P, "SAMPLER_CANDIDATES", (2,))
    monkeypatch.setattr(P, "SAMPLER_SOLVERS", ("ddim", "unipc"))
    monkeypatch.setattr(P, "EVERYDAY_PROMPTS", (("man", "stand"),))
    old = {"world": "w", "sampler": {"num_inference_steps": 40}, "rows": [
        {"row": "p_plus", "method": "p_plus", "settings": {"train_steps": 350}, "reason": "r", "curves": []}],
        "cpu_seconds": 12.0}
    (tmp_path / "protocol.json").write_text(json.dumps(old))
    out = CliRunner().invoke(main, ["mini", "protocol", "--backbone", "mini", "--out", str(tmp_path), "--sampler-only"])
    assert out.exit_code == 0, out.output
    record = json.loads((tmp_path / "protocol.json").read_text())
    assert record["rows"] == old["rows"] and set(record["sampler"]["agreement_with_50_steps"]) == {"ddim", "unipc"}
    assert record["rows_measured_before"]["sampler"] == old["sampler"]
    refused = CliRunner().invoke(main, ["mini", "protocol", "--out", str(tmp_path / "none"), "--sampler-only",
                                        "--backbone", "mini:" + str(tmp_path / "none")])
    assert refused.exit_code != 0 and "measure the whole protocol first" in refused.output
