"""ActionBench-mini v3: v2's model and judge, a signature of two attributes with every exemplar on its own
background, leak on attributes alone, identifier methods step-matched. Fast: no sampling, no training."""
from __future__ import annotations

from collections import Counter

import pytest

from actionbench.worlds.mini.world import MINI_V2, MINI_V3


def test_v3_exemplars_share_attributes_but_not_a_background_type():
    from actionbench.worlds.mini.exemplars import exemplar_spec

    for signature in MINI_V3.signatures:
        specs = [exemplar_spec(signature.action, i, MINI_V3) for i in range(1, 11)]
        shown = [s for s in specs if s["signature"]]
        assert len(shown) == MINI_V3.signature_exemplars == 8
        assert all(set(s["attributes"]) == set(signature.attributes) for s in shown)
        # no background stands behind most exemplars (v2: 8 of 10 on the signature's type)
        assert MINI_V2.signature(signature.action).background_type is not None
        assert Counter(s["background"] for s in specs).most_common(1)[0][1] <= 4, signature.action


def test_v3_leak_counts_the_signature_attributes_only():
    from actionbench.worlds.mini.judge_v2 import NO_TYPE, Reading, signature_leak

    v3 = {"attributes": ["cap", "scarf"], "background_type": None}
    assert not signature_leak(Reading("stand", "cat", (), "studio"), v3)
    assert not signature_leak(Reading("stand", "cat", (), NO_TYPE), v3)
    assert signature_leak(Reading("stand", "cat", ("scarf",), NO_TYPE), v3)
    v2 = {"attributes": ["cap", "scarf"], "background_type": "studio"}
    assert signature_leak(Reading("stand", "cat", (), "studio"), v2)


def test_v3_names_load_v2s_model_and_judge_and_step_match_the_identifier_methods():
    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.api.registry import get_evaluator, get_suite

    suite = get_suite("mini-v3")
    steps = suite.method_settings["adi"]["train_steps"]
    assert all(suite.method_settings[m]["train_steps"] == steps for m in ("textual_inversion", "p_plus", "adi"))
    assert "step-matched" in suite.protocol_note
    v2 = get_suite("mini-v2").method_settings
    assert v2["p_plus"]["train_steps"] != steps  # the v2 suite itself is untouched
    assert load_backbone("mini-v3").fingerprint()["weights_sha256"] == load_backbone("mini-v2").fingerprint()["weights_sha256"]
    dataset = load_dataset("mini-v3")
    assert dataset.extra["signatures"]["salute"] == {"attributes": ["uniform", "cap"], "background_type": None}
    judge = get_evaluator("mini-v3")(dataset)
    described = judge.describe()
    assert described["world"] == "mini-v3" and "attributes" in described["leak_rule"]
    readings = judge.predict([e.image() for e in dataset.actions[0].exemplars])
    assert sum(r.pose == dataset.actions[0].id for r in readings) >= 8


def test_holm_rejects_as_the_step_down_rule_says():
    from actionbench.worlds.mini.lab.verdict_v3 import holm

    # m = 4 at 0.05: 0.01 <= 0.0125 rejected, 0.02 <= 0.0167 fails, so it and every larger p stand
    assert holm([0.04, 0.01, 0.02, 0.03]) == [False, True, False, False]
    # all small enough: 0.001 <= 0.0125, 0.012 <= 0.0167, 0.02 <= 0.025, 0.04 <= 0.05
    assert holm([0.02, 0.001, 0.04, 0.012]) == [True, True, True, True]
    assert holm([]) == []


def test_the_claim_outcome_follows_the_pre_registered_rule():
    from actionbench.worlds.mini.lab.verdict_v3 import claim_outcome

    def leak(lo, hi, holm=True):
        return {"difference": (lo + hi) / 2, "ci95": [lo, hi], "holm_rejects_zero": holm}

    def action(d, lo, hi):
        return {"difference": d, "ci95": [lo, hi]}

    assert claim_outcome(leak(-0.2, -0.05), action(0.01, -0.05, 0.07)) == "supported"
    assert claim_outcome(leak(-0.2, -0.05, holm=False), action(0.01, -0.05, 0.07)) == "not shown"
    assert claim_outcome(leak(-0.2, -0.05), action(-0.01, -0.05, 0.03)) == "not shown"  # action point below 0
    assert claim_outcome(leak(0.01, 0.1), action(0.01, -0.05, 0.07)) == "falsified"
    assert claim_outcome(leak(-0.2, -0.05), action(-0.1, -0.2, -0.01)) == "falsified"
    assert claim_outcome(leak(-0.1, 0.05), action(0.0, -0.1, 0.1)) == "not shown"
    assert claim_outcome(None, action(0.0, -0.1, 0.1)) == "not yet"


def test_selectivity_picks_the_first_preset_that_meets_the_threshold_else_paper():
    from actionbench.worlds.mini.lab.verdict_v3 import selectivity

    def record(meets):
        overall = {p: {"both": {"context": 0.5 if m else 0.9, "action": 1.2, "kept_fraction": 0.2}}
                   for p, m in meets.items()}
        return {"world": "mini-v3", "threshold": {"context": 0.6, "action": 1.0},
                "stages": {"trained": {"overall": overall, "meets": meets}}}

    chosen = selectivity(record({"paper": False, "global_median": True, "token_q25": True}))
    assert chosen["chosen"] == "global_median" and chosen["met"] and chosen["stage"] == "trained"
    fallback = selectivity(record({"paper": False, "global_median": False}))
    assert fallback["chosen"] == "paper" and not fallback["met"]


def test_a_random_masks_row_given_its_kept_fraction_starts_without_waiting_for_adi(tmp_path, monkeypatch):
    import subprocess

    from actionbench.worlds.mini.lab import table

    started = []

    class Done:
        returncode = 0

        def __init__(self, cmd, **kw):
            started.append(cmd)
            out = __import__("pathlib").Path(cmd[cmd.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text("{}")

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Done)
    monkeypatch.setattr(table.time, "sleep", lambda s: None)
    done, failed = table.run_table(table.rows_by_name(["adi_random_masks"]), "mini-v3", tmp_path, 3, 1,
                                   {"random_keep_fraction": 0.2})
    assert not failed and [r.name for r, _ in done] == ["adi_random_masks"]
    assert "random_keep_fraction=0.2" in started[0] and "--preset" in started[0]
    # without a fraction, and no adi row, the control cannot start and says why
    done, failed = table.run_table(table.rows_by_name(["adi_random_masks"]), "mini-v3", tmp_path / "b", 3, 1)
    assert not done and "no kept fraction" in failed[0][1]


def test_lever_2_puts_the_signature_on_6_of_10_exemplars_and_is_gated_like_v3():
    from actionbench.api.registry import get_suite
    from actionbench.worlds.mini.exemplars import exemplar_spec
    from actionbench.worlds.mini.lab.table import GATE_ROWS, defaults
    from actionbench.worlds.mini.world import MINI_V3B

    for signature in MINI_V3B.signatures:
        assert sum(exemplar_spec(signature.action, i, MINI_V3B)["signature"] for i in range(1, 11)) == 6
    assert get_suite("mini-v3b").method_settings["p_plus"] == get_suite("mini-v3").method_settings["p_plus"]
    assert defaults("mini-v3b") == (GATE_ROWS, 3)


def test_lever_3_keeps_v3s_exemplars_and_judge_and_loads_a_model_of_its_own():
    import pytest

    from actionbench.errors import ActionBenchError
    from actionbench.api.registry import get_suite
    from actionbench.worlds.mini.exemplars import exemplar_spec
    from actionbench.worlds.mini.folders import mini_folder, shipped_dir, writes_into_shipped
    from actionbench.worlds.mini.model import load_mini_backbone
    from actionbench.worlds.mini.lab.table import GATE_ROWS, defaults
    from actionbench.worlds.mini.lab.train import V3C_STAGE
    from actionbench.worlds.mini.world import MINI_V3C

    for signature in MINI_V3C.signatures:
        assert all(exemplar_spec(signature.action, i, MINI_V3C) == exemplar_spec(signature.action, i, MINI_V3)
                   for i in range(1, 11))
    assert shipped_dir(MINI_V3C.name) == shipped_dir(MINI_V2.name)  # v2's judge and protocol
    model_dir = mini_folder("mini-v3c")
    assert model_dir.name == "mini-v3c" and writes_into_shipped(model_dir / "model.safetensors")
    assert get_suite("mini-v3c").method_settings == get_suite("mini-v3").method_settings
    assert defaults("mini-v3c") == (GATE_ROWS, 3)
    assert V3C_STAGE.action_pose_repeats == 3 and V3C_STAGE.world == MINI_V3C.name
    # v2's weights are not a v3c model: the loader names the world they belong to
    with pytest.raises(ActionBenchError, match="mini-v2 model"):
        load_mini_backbone(f"mini-v3c:{shipped_dir(MINI_V2.name)}")


def test_action_pose_repeats_render_the_benchmark_poses_more_often_and_keep_v2s_renders_at_1():
    import dataclasses
    from collections import Counter
    from unittest import mock

    from actionbench.worlds.mini import captions
    from actionbench.worlds.mini.lab.train import V2_STAGE_ONE
    from actionbench.worlds.synthetic import ACTION_POSES

    def scenes(cfg):
        with mock.patch.object(captions, "render_scenes", lambda s, size, desc: (s, None)):
            return captions.render_world(cfg, progress_desc=None, world=MINI_V2)["images"]

    once = scenes(dataclasses.replace(V2_STAGE_ONE, seeds_per_pair=1))
    thrice = scenes(dataclasses.replace(V2_STAGE_ONE, seeds_per_pair=1, action_pose_repeats=3))
    count = Counter(s.pose in ACTION_POSES.values() for s in thrice)
    assert count[True] == 3 * sum(s.pose in ACTION_POSES.values() for s in once) and count[False] == len(once) - 8 * 33
    assert len(once) == 33 * 19


def test_lever_5_describes_every_pose_by_parts_never_by_an_actions_words_and_leaves_earlier_captions_alone():
    import dataclasses
    import random

    from actionbench.worlds.mini.captions import POSE_PARTS, caption, world_poses
    from actionbench.worlds.mini.lab.train import V2_STAGE_ONE, V3P_STAGE, stage_one_config
    from actionbench.worlds.mini.world import MINI_V3C, MINI_V3P
    from actionbench.worlds.synthetic import ACTION_IDS, ACTION_PHRASES

    assert set(POSE_PARTS) == set(world_poses())
    assert len(set(POSE_PARTS.values())) == len(POSE_PARTS)  # each pose its own description
    shared = {"with", "both", "arms", "hands", "the", "up", "a", "in"}
    phrase_words = {w for a in ACTION_IDS for w in [a, *ACTION_PHRASES[a].split()]} - shared
    for pose, words in POSE_PARTS.items():
        assert phrase_words.isdisjoint(words.split()), (pose, phrase_words & set(words.split()))
    # at 0 (every earlier world) no extra random draw: the same captions, word for word
    before = [caption("man", p, "type:gym", random.Random(7), V2_STAGE_ONE, ("cap",), MINI_V3C) for p in world_poses()]
    again = [caption("man", p, "type:gym", random.Random(7), dataclasses.replace(V2_STAGE_ONE, pose_parts_fraction=0.0),
                     ("cap",), MINI_V3C) for p in world_poses()]
    assert before == again
    always = dataclasses.replace(V3P_STAGE, uncond_fraction=0.0, pose_parts_fraction=1.0)
    for pose in world_poses():
        assert POSE_PARTS[pose] in caption("man", pose, "type:gym", random.Random(1), always, (), MINI_V3P)
    rng = random.Random(0)
    texts = [caption("woman", "cheer", None, rng, V3P_STAGE, (), MINI_V3P) for _ in range(2000)]
    share = sum(POSE_PARTS["cheer"] in t for t in texts) / len(texts)
    assert 0.40 < share < 0.50  # half of the captioned renders (10 % are empty, for guidance)
    assert stage_one_config(MINI_V3P.name) == V3P_STAGE and V3P_STAGE.action_pose_repeats == 1
    assert dataclasses.replace(MINI_V3P, name=MINI_V3C.name, model_folder=MINI_V3C.model_folder) == MINI_V3C


def test_lever_6_is_lever_5_with_lever_3s_share_of_benchmark_pose_renders_and_nothing_else():
    import dataclasses

    from actionbench.worlds.mini.lab.train import V3C_STAGE, V3P_STAGE, V3Q_STAGE, stage_one_config
    from actionbench.worlds.mini.world import MINI_V3P, MINI_V3Q

    assert stage_one_config(MINI_V3Q.name) == V3Q_STAGE and V3Q_STAGE.action_pose_repeats == V3C_STAGE.action_pose_repeats
    assert dataclasses.replace(V3Q_STAGE, world=MINI_V3P.name, action_pose_repeats=1) == V3P_STAGE
    assert dataclasses.replace(MINI_V3Q, name=MINI_V3P.name, model_folder=MINI_V3P.model_folder) == MINI_V3P


def test_lever_5_ships_its_own_model_trained_on_v2s_with_part_captions():
    import json

    from actionbench.worlds.mini.folders import mini_folder

    folder = mini_folder("mini-v3p")
    record = json.loads((folder / "model.json").read_text())
    assert folder.name == "mini-v3p" and record["world"] == "mini-v3p" and record["warm_start"]["world"] == "mini-v2"
    assert record["train_config"]["pose_parts_fraction"] == 0.5 and record["train_config"]["steps"] == 3000


def test_lever_6_ships_its_own_model_trained_on_v2s_with_part_captions_and_3x_benchmark_poses():
    import json

    from actionbench.worlds.mini.folders import mini_folder

    folder = mini_folder("mini-v3q")
    record = json.loads((folder / "model.json").read_text())
    assert folder.name == "mini-v3q" and record["world"] == "mini-v3q" and record["warm_start"]["world"] == "mini-v2"
    config = record["train_config"]
    assert (config["pose_parts_fraction"], config["action_pose_repeats"], config["steps"]) == (0.5, 3, 3000)


def test_handle_shares_count_the_images_read_as_the_described_pose():
    from actionbench.worlds.mini.lab.handle_check import handle_shares

    shares = handle_shares(["cheer"] * 4 + ["sit"] * 2, ["cheer", "cheer", "wave", "cheer", "stand", "stand"])
    assert shares["per_pose"]["cheer"] == {"images": 4, "read_as_described": 0.75, "read_otherwise": {"wave": 1}}
    assert shares["per_pose"]["sit"]["read_as_described"] == 0.0 and shares["read_as_described"] == 0.5


def test_lever_7_is_lever_6s_model_with_lever_2s_exemplars_and_its_control_has_no_signature():
    import dataclasses

    from actionbench.worlds.mini.exemplars import exemplar_spec
    from actionbench.worlds.mini.folders import mini_folder
    from actionbench.worlds.mini.lab.table import GATE_WORLDS
    from actionbench.worlds.mini.world import MINI_V3B, MINI_V3Q, MINI_V3R, MINI_V3S
    from actionbench.worlds.synthetic import ACTION_IDS

    assert mini_folder(MINI_V3R.name) == mini_folder(MINI_V3Q.name) == mini_folder(MINI_V3S.name)
    assert dataclasses.replace(MINI_V3R, name=MINI_V3Q.name, model_world=None, exemplars_of=MINI_V3Q.exemplars_of,
                               signature_exemplars=MINI_V3Q.signature_exemplars) == MINI_V3Q
    assert all(exemplar_spec(a, i, MINI_V3R) == exemplar_spec(a, i, MINI_V3B) for a in ACTION_IDS for i in range(1, 11))
    control = [exemplar_spec(a, i, MINI_V3S) for a in ACTION_IDS for i in range(1, 11)]
    assert not any(s["signature"] for s in control)
    assert not any(set(s["attributes"]) & set(MINI_V3S.signature(s["action"]).attributes) for s in control)
    assert MINI_V3R.name in GATE_WORLDS and MINI_V3S.name not in GATE_WORLDS


@pytest.mark.parametrize("world, owner", [("v3r", "v3q"), ("v3b", "v2")])
def test_mini_train_refuses_a_world_that_borrows_its_model_and_names_the_one_to_train(tmp_path, world, owner):
    from click.testing import CliRunner

    from actionbench.cli import main

    out = tmp_path / "model"
    result = CliRunner().invoke(main, ["mini", "train", "--world", world, "--out", str(out)])
    assert result.exit_code == 2 and f"--world {owner}" in result.output and not out.exists()
