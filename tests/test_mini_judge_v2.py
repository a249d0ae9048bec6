"""The mini v2 judge: its heads on renders with known labels, ``leak`` from the target action's signature exactly,
its record, the command that refits it, and the check on generated images (by hand)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from PIL import Image

from actionbench.api.evaluator import JudgeRequest
from actionbench.worlds.mini.captions import Scene, render_scenes
from actionbench.worlds.mini.judge_v2 import NO_TYPE, MiniV2Judge, Reading, signature_leak, signature_table

# docs/mini-v2-design.md's table, copied by hand so that a wrong table in the code fails here
DESIGN_SIGNATURES = {
    "cheer": ({"cap", "scarf"}, "studio"),
    "gesture": ({"headband", "scarf"}, "studio"),
    "handstand": ({"sportswear", "cap"}, "outdoors"),
    "meditate": ({"robe", "mat"}, "room"),
    "pray": ({"robe", "scarf"}, "beach"),
    "salute": ({"uniform", "cap"}, "outdoors"),
    "sit": ({"uniform", "stool"}, "room"),
    "squat": ({"sportswear", "headband"}, "gym"),
}
ATTRIBUTES = ("uniform", "robe", "sportswear", "cap", "headband", "scarf", "mat", "stool")
BACKGROUNDS = ("room", "beach", "gym", "studio", "outdoors", NO_TYPE)


def test_leak_is_exactly_an_element_of_the_target_actions_signature():
    table = signature_table(None)  # no dataset: the world's table
    assert {a: (set(s["attributes"]), s["background_type"]) for a, s in table.items()} == DESIGN_SIGNATURES
    for action, (attributes, background) in DESIGN_SIGNATURES.items():
        for attribute in ATTRIBUTES:
            assert signature_leak(Reading("stand", "cat", (attribute,), NO_TYPE), table[action]) == (attribute in attributes)
        for shown in BACKGROUNDS:
            assert signature_leak(Reading("stand", "cat", (), shown), table[action]) == (shown == background)
        others = tuple(a for a in ATTRIBUTES if a not in attributes)
        assert not signature_leak(Reading("stand", "cat", others, NO_TYPE), table[action])


def _judge_with_readings(monkeypatch, readings, dataset=None):
    judge = MiniV2Judge(dataset)
    monkeypatch.setattr(judge, "predict", lambda images: list(readings))
    return judge


def test_judgments_say_action_identity_leak_and_clean_from_hand_built_readings(monkeypatch):
    image = Image.new("RGB", (32, 32))
    cases = [  # target action, target subject, reading -> action_ok, subject_ok, leak, total_clean
        ("salute", "cat", Reading("salute", "cat", ("cap",), NO_TYPE), (True, True, True, False)),
        ("salute", "cat", Reading("salute", "cat", ("scarf",), "studio"), (True, True, False, True)),
        ("salute", "cat", Reading("salute", "dog", (), "outdoors"), (True, False, True, False)),
        ("cheer", "man", Reading("cheer", "man", ("scarf",), NO_TYPE), (True, True, True, False)),
        ("cheer", "man", Reading("stand", "man", (), "room"), (False, True, False, False)),
        ("squat", "tiger", Reading("squat", "tiger", ("uniform", "mat"), "beach"), (True, True, False, True)),
    ]
    judge = _judge_with_readings(monkeypatch, [reading for _, _, reading, _ in cases])
    requests = [JudgeRequest(f"{a}/{s}/{i}", a, s, image) for i, (a, s, _, _) in enumerate(cases)]
    for judgment, (_, _, reading, expected) in zip(judge.judge(requests), cases):
        detail = judgment.detail
        assert (judgment.action_ok, judgment.subject_ok, detail["leak"], detail["total_clean"]) == expected
        assert (detail["pose"], detail["subject"], tuple(detail["attributes"]), detail["background_type"]) == tuple(reading)


def test_the_signature_table_is_the_datasets_when_it_has_one(monkeypatch):
    dataset = SimpleNamespace(extra={"signatures": {"cheer": {"attributes": ["mat", "stool"], "background_type": "gym"}}})
    judge = _judge_with_readings(monkeypatch, [Reading("cheer", "man", ("cap",), "gym")], dataset)
    assert judge.signatures() == {"cheer": {"attributes": ["mat", "stool"], "background_type": "gym"}}
    (judgment,) = judge.judge([JudgeRequest("cheer/man/0", "cheer", "man", Image.new("RGB", (32, 32)))])
    assert judgment.detail["leak"] is True  # the gym, not the cap: this dataset's table
    from actionbench.errors import ConfigError

    with pytest.raises(ConfigError, match="no context signature for wave"):
        judge.judge([JudgeRequest("wave/man/0", "wave", "man", Image.new("RGB", (32, 32)))])


def test_a_judge_folder_without_weights_is_refused_with_the_command_that_fits_one(tmp_path):
    from actionbench.worlds.mini.folders import ShippedDataError

    with pytest.raises(ShippedDataError, match="actionbench mini judge --world v2"):
        MiniV2Judge(None, folder=str(tmp_path)).check()


def test_judge_world_v2_refits_the_v2_judge_and_guards_its_shipped_folder(monkeypatch, tmp_path):
    from actionbench.cli import main
    from actionbench.worlds.mini.folders import shipped_dir
    from actionbench.worlds.mini.lab import judge_v2_fit

    seen = []
    monkeypatch.setattr(judge_v2_fit, "fit_mini_v2_judge", lambda **kwargs: seen.append(kwargs) or {})
    result = CliRunner().invoke(main, ["mini", "judge", "--world", "v2", "--backbone", "mini-v2:/models/final",
                                       "--seed", "1", "--width", "48", "--through-model", "0", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [(k["backbone"], k["seed"], k["width"], k["through_model_fraction"], k["out"]) for k in seen] == [
        ("mini-v2:/models/final", 1, 48, 0.0, str(tmp_path))]
    refused = CliRunner().invoke(main, ["mini", "judge", "--world", "v2"])
    assert refused.exit_code == 2 and str(shipped_dir("mini-v2")) in refused.output.replace("\n", "")


def test_judge_check_agreement_recall_and_false_alarms_by_hand():
    from actionbench.worlds.mini.lab.judge_check import cohen_kappa, compare_readings, confusion

    scenes = [Scene("cat", "stand", None), Scene("dog", "walk", "type:beach", ("cap",)),
              Scene("man", "run", None, ("cap", "scarf")), Scene("cat", "kneel", None)]
    judge_a = [Reading("stand", "cat", (), NO_TYPE), Reading("walk", "dog", ("cap",), "beach"),
               Reading("run", "man", ("cap",), NO_TYPE), Reading("kneel", "cat", ("mat",), NO_TYPE)]
    judge_b = [Reading("stand", "cat", (), NO_TYPE), Reading("run", "dog", ("cap",), "beach"),
               Reading("run", "man", ("cap", "scarf"), "room"), Reading("kneel", "cat", (), NO_TYPE)]
    out = compare_readings(scenes, judge_a, judge_b, list(ATTRIBUTES))
    assert out["heads"]["pose"]["agreement"] == 0.75 and out["heads"]["pose"]["b_reads_asked"] == 0.75
    assert out["heads"]["background_type"]["a_reads_asked"] == 1.0 and out["heads"]["background_type"]["agreement"] == 0.75
    assert out["attributes"]["cap"]["a_recall_when_asked"] == 1.0 and out["attributes"]["scarf"]["a_recall_when_asked"] == 0.0
    assert out["attributes"]["mat"]["a_false_alarms_when_not_asked"] == 0.25 and out["attributes"]["mat"]["asked"] == 0
    # A reads an unasked mat on 1 of the 2 prompts asking for nothing; B an unasked room on the third prompt
    assert out["a_unasked_context"] == {"all_prompts": 0.25, "prompts_asking_for_none": 0.5}
    assert out["b_unasked_context"] == {"all_prompts": 0.25, "prompts_asking_for_none": 0.0}
    assert out["attribute_set_agreement"] == 0.5
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == 1.0 and cohen_kappa(["a"] * 3, ["a"] * 3) is None
    table = confusion(["stand", "walk"], ["stand", "run"], ["stand", "walk", "run", "jump"])
    assert list(table.index) == ["stand", "walk", "run"] and table.loc["walk", "run"] == 1


def test_target_pose_check_recall_agreement_false_alarms_and_gate_by_hand():
    from actionbench.worlds.mini.lab.judge_check import TARGET_GATE, target_pose_rates

    targets = ["salute"] * 4 + ["sit"] * 4
    poses_a = ["salute", "salute", "salute", "stand", "sit", "sit", "kneel", "kneel"]
    poses_b = ["salute", "salute", "wave", "stand", "sit", "sit", "kneel", "sit"]
    asked = ["stand"] * 10 + ["walk"] * 10
    read = ["stand"] * 8 + ["salute", "sit"] + ["walk"] * 10
    out = target_pose_rates(targets, poses_a, poses_b, asked, read)
    assert out["per_action"]["salute"] == {"images": 4, "a_recall": 0.75, "b_recall": 0.5, "pose_agreement": 0.75,
                                           "false_alarm": 0.05}
    assert out["per_action"]["sit"]["a_recall"] == 0.5 and out["per_action"]["sit"]["b_recall"] == 0.75
    assert out["pose_agreement"]["agreement"] == 0.75
    assert out["stand_images"] == 10 and out["stand_false_alarm"] == 0.2  # 2 of the 10 stand images read as a target
    assert not out["gate"]["passed"]  # agreement 0.75 < 0.80 and stand 0.20 > 0.15
    clean = target_pose_rates(targets, poses_a, poses_a, asked, ["stand"] * 10 + ["walk"] * 10)
    assert clean["gate"]["passed"] and clean["stand_false_alarm"] == 0.0
    assert TARGET_GATE == {"pose_agreement": 0.80, "false_alarm": 0.10, "stand_false_alarm": 0.15}


# --- the shipped judge -----------------------------------------------------------------------------------------

# Renders with known labels, seeds far from the training and held-out ones: (look, pose, background, attributes, build)
KNOWN = [
    ("cat", "salute", "type:outdoors", ("uniform", "cap"), "regular"),
    ("tiger", "meditate", "type:room", ("robe", "mat"), "broad"),
    ("man", "squat", "type:gym", ("sportswear", "headband"), "slim"),
    ("woman", "pray", "type:beach", ("robe", "scarf"), "regular"),
    ("dog", "cheer", "type:studio", ("cap", "scarf"), "regular"),
    ("panda", "sit", "light_blue", ("stool",), "broad"),
    ("barack_obama", "handstand", None, (), "regular"),
    ("exemplar_person_3", "gesture", "type:studio", ("headband",), "slim"),
    ("rabbit", "stand", "grey", (), "regular"),
    ("police_officer", "walk", "type:beach", ("uniform",), "regular"),
    ("monkey", "kneel", "type:room", ("mat",), "regular"),
    ("old_woman", "wave", "type:outdoors", ("scarf",), "broad"),
]


def _v2_judge_shipped() -> bool:
    from actionbench.worlds.mini.folders import shipped_dir
    from actionbench.worlds.mini.judge_v2 import JUDGE_META, JUDGE_WEIGHTS

    folder = shipped_dir("mini-v2")
    return (folder / JUDGE_WEIGHTS).is_file() and (folder / JUDGE_META).is_file()


@pytest.fixture(scope="module")
def shipped_judge():
    if not _v2_judge_shipped():  # issue 14: the v2 judge ships with the v2 model once that passes its checks
        pytest.skip("no v2 judge shipped yet (actionbench/data/mini-v2/README.md)")
    judge = MiniV2Judge(None)
    judge.check()
    return judge


def test_the_shipped_judge_reads_renders_with_known_labels(shipped_judge):
    scenes = [Scene(look, pose, background, attributes, build, 123_456_789 + i)
              for i, (look, pose, background, attributes, build) in enumerate(KNOWN)]
    images, _ = render_scenes(scenes)
    readings = shipped_judge.predict(images)
    right = {"pose": 0, "subject": 0, "attributes": 0, "background": 0}
    for scene, reading in zip(scenes, readings):
        right["pose"] += reading.pose == scene.pose
        right["subject"] += reading.subject == (scene.look if not scene.look.startswith("exemplar") else "person")
        right["attributes"] += set(reading.attributes) == set(scene.attributes)
        right["background"] += reading.background_type == (scene.background_type or NO_TYPE)
    assert all(count >= len(KNOWN) - 1 for count in right.values()), (right, readings)


def test_the_shipped_judge_records_its_signatures_heldout_numbers_and_per_image_metrics(shipped_judge):
    record = shipped_judge.describe()
    assert record["name"] == "mini-v2" and record["per_image_metrics"] == ["leak", "total_clean"]
    assert {a: (set(s["attributes"]), s["background_type"]) for a, s in record["signatures"].items()} == DESIGN_SIGNATURES
    clean = record["heldout"]["clean"]
    assert min(clean["pose_accuracy"], clean["subject_accuracy"], clean["background_accuracy"]) >= 0.95
    assert all(clean["attributes"][a]["accuracy"] >= 0.95 for a in ATTRIBUTES)
    assert "through_model" in record["heldout"] and "actionbench mini judge --world v2" in record["fit"]["reproduce"]


def test_judge_check_refuses_a_judge_folder_without_weights_before_sampling(tmp_path):
    from actionbench.errors import ConfigError
    from actionbench.worlds.mini.lab.judge_check import check_judges

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "judge.json").write_text("{}")
    with pytest.raises(ConfigError, match="has no judge.safetensors"):
        check_judges("no-such-backbone", [str(tmp_path / "b"), str(tmp_path / "b")], tmp_path / "out")
    assert not (tmp_path / "out").exists()
