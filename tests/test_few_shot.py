"""Few-shot judge on the synthetic dataset with the tiny random CLIP: it trains, validates, judges and records."""
from __future__ import annotations

import pytest

from actionbench.errors import ConfigError


@pytest.fixture(scope="module")
def synthetic():
    from actionbench.dataset import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="module")
def judge(synthetic):
    from actionbench.evaluators.few_shot import FewShotJudge

    return FewShotJudge(synthetic, model="tiny")


def test_leave_one_out_is_recorded(judge, synthetic):
    from actionbench.evaluators.clip_zero_shot import NONE_LABEL

    record = judge.describe()
    assert record["name"] == "few_shot" and record["version"] == "1" and record["model"] == "tiny"
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


def test_judges_images_and_writes_results(judge, synthetic, tmp_path):
    from actionbench.worlds import synthetic as world
    from actionbench.byo import import_images
    from actionbench.evaluator import JudgeRequest
    from actionbench.io import read_json
    from actionbench.runner import judge as run_judge, judge_key, write_results

    requests = [JudgeRequest(f"cheer/man/{k}", "cheer", "man", world.render("man", "cheer", 96, seed=k).image)
                for k in range(2)]
    verdicts = judge.judge(requests)
    assert [v.unit_id for v in verdicts] == ["cheer/man/0", "cheer/man/1"]
    for v in verdicts:
        assert v.detail["action_pred"] in judge.describe()["classifier"]["classes"]
        assert 0.0 <= v.detail["action_p_target"] <= 1.0 and 0.0 <= v.detail["subject_p_target"] <= 1.0
        assert v.action_ok == (v.detail["action_pred"] == "cheer")
        assert v.subject_ok == (v.detail["subject_pred"] == "man")
    assert judge.judge(requests) == verdicts  # deterministic

    folder = tmp_path / "mine"
    for action, subject in (("sit", "cat"), ("salute", "chef")):
        path = folder / action / subject / "0.png"
        path.parent.mkdir(parents=True)
        world.render(subject, action, 64, seed=3).image.save(path)
    run = import_images(folder, dataset="synthetic", out=tmp_path / "run")
    assert run_judge(run, judge) == 2
    results = read_json(write_results(run, judge, "2024-01-01T00:00:00+00:00", 1.0))
    assert results["judge"]["validation"]["loo_n"] == 80  # the validation accuracy is in every result
    assert len(results["records"]) == 2 and not results["complete"]
    assert (run.out / "judgments" / judge_key(judge)).is_dir()


def test_options_and_none_images(synthetic, tmp_path):
    from PIL import Image

    from actionbench.evaluators.few_shot import FewShotJudge
    from actionbench.registry import get_evaluator

    assert get_evaluator("few_shot") is FewShotJudge
    with pytest.raises(ConfigError, match="unknown option"):
        FewShotJudge(synthetic, model="tiny", colour="red")
    with pytest.raises(ConfigError, match="C must be"):
        FewShotJudge(synthetic, model="tiny", C="0")
    with pytest.raises(ConfigError, match="none_dir"):
        FewShotJudge(synthetic, model="tiny", none_dir=tmp_path / "missing")
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
