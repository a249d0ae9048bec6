"""Few-shot judge on the synthetic dataset: it trains, validates, judges and records, in both feature modes;
an exemplar's look in another pose earns no action credit (keypoints); the CLIP mode says it is biased.

The keypoint mode runs with an extractor that looks up the exact keypoints of each rendered image
(``ExactKeypointsOfRenders``): OpenPose with random weights would find nothing meaningful.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from actionbench.errors import ActionBenchError, ConfigError


class ExactKeypointsOfRenders:
    """A pose extractor for tests: the keypoints a synthetic render was drawn from, found by its pixels.

    An image that was never shown to it raises, so a test cannot pass by judging "nobody there"."""

    name = "exact keypoints of registered renders (tests)"

    def __init__(self):
        self.table: dict[str, tuple] = {}

    @staticmethod
    def _key(image) -> str:
        return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()

    def show(self, rendered):
        """Register a ``RenderedImage``; returns its image."""
        self.table[self._key(rendered.image)] = rendered.keypoints
        return rendered.image

    def show_nobody(self, image):
        """Register an image in which the detector finds nobody; returns it."""
        self.table[self._key(image)] = None
        return image

    def keypoints_from_image(self, image):
        try:
            return self.table[self._key(image)]
        except KeyError:
            raise LookupError("this image was not registered with ExactKeypointsOfRenders.show") from None


@pytest.fixture(scope="module")
def synthetic():
    from actionbench.dataset import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="module")
def exact_keypoints():
    return ExactKeypointsOfRenders()


@pytest.fixture(scope="module")
def keypoint_judge(synthetic, exact_keypoints):
    from actionbench.evaluators.few_shot import FewShotJudge

    return FewShotJudge(synthetic, model="tiny", pose_extractor=exact_keypoints)


@pytest.fixture(scope="module")
def clip_judge(synthetic):
    from actionbench.evaluators.few_shot import FewShotJudge

    return FewShotJudge(synthetic, model="tiny", features="clip")


@pytest.fixture(params=["keypoints", "clip"])
def judge(request, keypoint_judge, clip_judge):
    return keypoint_judge if request.param == "keypoints" else clip_judge


def test_leave_one_out_is_recorded(judge, synthetic):
    from actionbench.evaluators.clip_zero_shot import NONE_LABEL

    record = judge.describe()
    assert record["name"] == "few_shot" and record["model"] == "tiny"
    assert record["version"] == ("2" if judge.features == "keypoints" else "2-clip")
    assert record["features"] == judge.features
    validation = record["validation"]
    n_exemplars = sum(len(a.exemplars) for a in synthetic.actions)
    assert validation["loo_n"] == n_exemplars == 80
    assert 0.0 <= validation["loo_accuracy"] <= 1.0
    assert set(validation["loo_per_action"]) == {a.id for a in synthetic.actions}
    assert validation["loo_n_none"] == record["training"]["none"]["n"] == 22  # 11 everyday poses x 2
    assert "stand" in record["training"]["none"]["poses"]
    assert sorted(record["classifier"]["classes"]) == sorted([NONE_LABEL] + [a.id for a in synthetic.actions])
    assert record["subject"]["prompts_hash"]
    # the mean of the per-action accuracies is the overall accuracy (10 exemplars each)
    per = validation["loo_per_action"].values()
    assert sum(per) / len(per) == pytest.approx(validation["loo_accuracy"], abs=1e-5)


def test_keypoint_mode_records_where_its_keypoints_come_from(keypoint_judge):
    record = keypoint_judge.describe()
    assert record["keypoints"]["exemplars"].startswith("exact") and record["keypoints"]["none_renders"].startswith("exact")
    assert record["keypoints"]["detector"]["name"] == ExactKeypointsOfRenders.name
    assert record["training"]["no_pose_found"] == {}
    # <none> trains as one class per everyday pose; exact keypoints make every exemplar's pose clear
    assert "<none>:jump" in record["classifier"]["training_classes"]
    assert record["validation"]["loo_accuracy"] == 1.0 and record["validation"]["loo_accuracy_none"] == 1.0


def test_judges_images_and_writes_results(judge, exact_keypoints, synthetic, tmp_path):
    from PIL import Image

    from actionbench.worlds import synthetic as world
    from actionbench.byo import import_images
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.io import read_json
    from actionbench.run.runner import judge as run_judge, judge_key, write_results

    requests = [JudgeRequest(f"cheer/man/{k}", "cheer", "man", exact_keypoints.show(world.render("man", "cheer", 96, seed=k)))
                for k in range(2)]
    verdicts = judge.judge(requests)
    assert [v.unit_id for v in verdicts] == ["cheer/man/0", "cheer/man/1"]
    for v in verdicts:
        assert v.detail["action_pred"] in judge.describe()["classifier"]["classes"]
        assert 0.0 <= v.detail["action_p_target"] <= 1.0 and 0.0 <= v.detail["subject_p_target"] <= 1.0
        assert v.action_ok == (v.detail["action_pred"] == "cheer")
        assert v.subject_ok == (v.detail["subject_pred"] == "man")
    assert judge.judge(requests) == verdicts  # deterministic
    if judge.features == "keypoints":
        assert all(v.detail["pose_found"] and v.action_ok for v in verdicts)  # exact keypoints of a cheer
        empty = exact_keypoints.show_nobody(Image.new("RGB", (64, 64), (90, 160, 220)))
        nobody = judge.judge([JudgeRequest("cheer/man/0", "cheer", "man", empty)])[0]
        assert not nobody.detail["pose_found"] and nobody.detail["action_pred"] == "<none>" and not nobody.action_ok
        assert nobody.detail["action_p_target"] == 0.0 and nobody.detail["action_p_pred"] == 1.0

    folder = tmp_path / "mine"
    for action, subject in (("sit", "cat"), ("salute", "chef")):
        path = folder / action / subject / "0.png"
        path.parent.mkdir(parents=True)
        exact_keypoints.show(world.render(subject, action, 64, seed=3)).save(path)  # PNG: the same pixels
    run = import_images(folder, dataset="synthetic", out=tmp_path / "run")
    assert run_judge(run, judge) == 2
    results = read_json(write_results(run, judge, "2024-01-01T00:00:00+00:00", 1.0))
    assert results["judge"]["validation"]["loo_n"] == 80  # the validation accuracy is in every result
    assert results["judge"]["contamination_biased"] is (judge.features == "clip")  # and the bias flag
    assert len(results["records"]) == 2 and not results["complete"]
    assert (run.out / "judgments" / judge_key(judge)).is_dir()


def _looks_of_exemplars_in_other_poses(synthetic, exact_keypoints):
    """Per exemplar: its look, background and seed drawn in the other pose nearest to its action (the
    hardest to tell apart; an everyday pose for most) and in the next action's pose."""
    from actionbench.worlds import synthetic as world
    from actionbench.worlds.synthetic.dataset import exemplar_spec

    action_ids = [a.id for a in synthetic.actions]
    poses = action_ids + list(world.EVERYDAY_POSES)
    cases = []
    for a, action in enumerate(action_ids):
        nearest = min((p for p in poses if p != action), key=lambda p: world.pose_distance(action, p))
        for index in range(1, len(synthetic.actions[a].exemplars) + 1):
            spec = exemplar_spec(action, index)
            for pose in (nearest, action_ids[(a + 1) % len(action_ids)]):
                shown = world.render(spec["look"], pose, 128, seed=spec["seed"], background=spec["background"])
                cases.append((action, pose, exact_keypoints.show(shown)))
    return cases


def test_an_exemplars_look_in_another_pose_is_not_judged_as_the_exemplars_action(
        keypoint_judge, exact_keypoints, synthetic):
    """The contamination the keypoint mode exists to prevent: an image with an exemplar's background and
    clothes but another pose must not earn that exemplar's action."""
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.worlds import synthetic as world
    from actionbench.worlds.synthetic.dataset import exemplar_spec

    cases = _looks_of_exemplars_in_other_poses(synthetic, exact_keypoints)
    assert len(cases) == 160 and {pose for _, pose, _ in cases} & set(world.EVERYDAY_POSES)
    verdicts = keypoint_judge.judge([JudgeRequest(f"{action}/man/{i}", action, "man", image)
                                     for i, (action, _, image) in enumerate(cases)])
    copied = [(action, pose) for (action, pose, _), v in zip(cases, verdicts) if v.action_ok]
    assert copied == []
    # and not by saying "nobody" or "<none>" to everything: each is judged as the pose it shows
    shown = [pose if pose in world.ACTION_IDS else "<none>" for _, pose, _ in cases]
    assert [v.detail["action_pred"] for v in verdicts] == shown

    # the control: the same looks and backgrounds in the exemplar's own pose earn the action
    controls = []
    for action in synthetic.actions:
        spec = exemplar_spec(action.id, 1)
        image = exact_keypoints.show(world.render(spec["look"], action.id, 128, seed=spec["seed"] + 1,
                                                  background=spec["background"]))
        controls.append(JudgeRequest(f"{action.id}/man/0", action.id, "man", image))
    assert all(v.action_ok for v in keypoint_judge.judge(controls))


def test_clip_features_are_marked_contamination_biased(clip_judge, keypoint_judge, exact_keypoints, synthetic):
    """Where the classifier sees CLIP embeddings of the exemplars it can reward copying them; with the random
    tiny CLIP nothing can be said about whether it does, so the test asserts the flag, not the property."""
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.evaluators.few_shot import FewShotJudge
    from actionbench.run.runfolder import judge_key

    biased = clip_judge.describe()
    assert biased["contamination_biased"] is True and "exemplars" in biased["contamination"]
    assert "keypoints" not in biased
    clean = keypoint_judge.describe()
    assert clean["contamination_biased"] is False and "keypoints" in clean["contamination"]
    # the two modes never share a judgments folder or a leaderboard group; the class keeps its version
    assert judge_key(clip_judge) == "few_shot-v2-clip" and judge_key(keypoint_judge) == "few_shot-v2"
    assert FewShotJudge.VERSION == "2"
    # it still judges the copies, deterministically (whatever it says about them)
    cases = _looks_of_exemplars_in_other_poses(synthetic, exact_keypoints)[:8]
    requests = [JudgeRequest(f"{a}/man/{i}", a, "man", image) for i, (a, _, image) in enumerate(cases)]
    assert clip_judge.judge(requests) == clip_judge.judge(requests)


def test_keypoint_mode_without_openpose_weights_says_how_to_fix_it(synthetic):
    """Offline (HF_HUB_OFFLINE=1 in the tests) the default detector cannot be fetched: the error names the
    option, the install command and the biased alternative, before anything is trained or generated."""
    from actionbench.api.evaluator import JudgeRequest
    from actionbench.evaluators.few_shot import FewShotJudge
    from actionbench.worlds import synthetic as world

    judge = FewShotJudge(synthetic, model="tiny")  # the default: keypoints, OpenPose from the hub
    assert judge.features == "keypoints"
    for attempt in (judge.check,
                    lambda: judge.judge([JudgeRequest("cheer/man/0", "cheer", "man",
                                                      world.render("man", "cheer", 64).image)])):
        with pytest.raises(ActionBenchError) as error:
            attempt()
        message = str(error.value)
        assert "--judge-option pose_detector=PATH" in message and 'pip install "actionbench[pose]"' in message
        assert "features=clip" in message and "contamination-biased" in message


def test_openpose_path_with_random_local_weights(synthetic, tmp_path):
    """The real detector path runs (meaningless output: random weights find nobody or noise), and the judge
    records the weights it would use."""
    import actionbench.pose as pose
    from actionbench.evaluators.few_shot import FewShotJudge
    from actionbench.hashing import sha256_file
    from actionbench.worlds import synthetic as world

    weights = pose.save_random_body_model(tmp_path / pose.BODY_WEIGHTS)
    found = pose.OpenPoseExtractor(str(weights), resolution=64).keypoints_from_image(world.render("man", "cheer", 80).image)
    assert found is None or (len(found) == 18 and all(q is None or 0 <= min(q) and max(q) <= 80 for q in found))
    judge = FewShotJudge(synthetic, model="tiny", pose_detector=str(tmp_path), pose_resolution=64)
    judge.check()
    record = judge.keypoints.describe()
    assert record["detector"]["weights_sha256"] == sha256_file(weights) and record["detector"]["resolution"] == 64
    assert record["exemplars"].startswith("exact") and record["images"] == "image detector"


def test_pose_features_ignore_place_size_and_side():
    from actionbench.pose import (
        MIN_POSE_JOINTS, MIRRORED_KEYPOINTS, POSE_FEATURE_SIZE, mirror_pose_features, pose_features,
    )
    from actionbench.worlds import synthetic as world

    keypoints = world.render_keypoints("man", "salute", 256, seed=4)
    features = pose_features(keypoints)
    assert features.shape == (POSE_FEATURE_SIZE,)
    moved = [None if q is None else (3 * q[0] + 40, 3 * q[1] - 7) for q in keypoints]
    assert np.allclose(pose_features(moved), features)  # translation and scale
    mirrored = [None if q is None else (256 - q[0], q[1]) for q in keypoints]
    swapped = [mirrored[i] for i in MIRRORED_KEYPOINTS]  # the person's right is still their right
    assert np.allclose(pose_features(swapped), mirror_pose_features(features))
    assert np.allclose(mirror_pose_features(mirror_pose_features(features)), features)
    hidden = list(keypoints)
    hidden[4] = None  # r_wrist
    vector = pose_features(hidden)
    assert vector[8] == vector[9] == 0.0 and vector[36 + 4] == 0.0 and vector[36 + 3] == 1.0
    neck_hidden = list(keypoints)
    neck_hidden[1] = None
    assert pose_features(neck_hidden) is not None  # centred on the hips instead
    assert pose_features([None] * 18) is None
    assert pose_features(list(keypoints[: MIN_POSE_JOINTS - 1]) + [None] * (19 - MIN_POSE_JOINTS)) is None
    with pytest.raises(ConfigError, match="18 keypoints"):
        pose_features(keypoints[:17])


def test_options_and_none_images(synthetic, tmp_path):
    from PIL import Image

    from actionbench.evaluators.few_shot import FewShotJudge
    from actionbench.api.registry import get_evaluator

    assert get_evaluator("few_shot") is FewShotJudge
    with pytest.raises(ConfigError, match="unknown option"):
        FewShotJudge(synthetic, model="tiny", colour="red")
    with pytest.raises(ConfigError, match="C must be"):
        FewShotJudge(synthetic, model="tiny", C="0")
    with pytest.raises(ConfigError, match="none_dir"):
        FewShotJudge(synthetic, model="tiny", none_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match="features must be one of keypoints, clip"):
        FewShotJudge(synthetic, model="tiny", features="pixels")
    with pytest.raises(ConfigError, match="pose_detector only apply to features=keypoints"):
        FewShotJudge(synthetic, model="tiny", features="clip", pose_detector="/weights")
    with pytest.raises(ConfigError, match="exemplar_pose must be one of"):
        FewShotJudge(synthetic, model="tiny", exemplar_pose="guess")
    with pytest.raises(ConfigError, match="keypoints_from_image"):
        FewShotJudge(synthetic, model="tiny", pose_extractor="openpose")
    images, info = FewShotJudge(synthetic, model="tiny", none_per_pose=1).none_images()
    assert len(images) == info["n"] == 11 and images[0].size == (256, 256)
    again, _ = FewShotJudge(synthetic, model="tiny", none_per_pose=1).none_images()
    assert [a.tobytes() == b.tobytes() for a, b in zip(images, again)] == [True] * 11  # deterministic
    own = tmp_path / "negatives"
    own.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i * 60, 0, 0)).save(own / f"{i}.jpg")
    images, info = FewShotJudge(synthetic, model="tiny", none_dir=own).none_images()
    assert len(images) == 3 and info["n"] == 3 and len(info["sha256"]) == 64
