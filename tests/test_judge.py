"""The CLIP zero-shot judge: tiny random model end to end, and the decision rule with hand-built embeddings."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from actionbench.dataset import Action, Dataset, Protocol, Subject  # noqa: E402
from actionbench.errors import ConfigError, DatasetError  # noqa: E402
from actionbench.api.evaluator import JudgeRequest  # noqa: E402
from actionbench.evaluators.clip_zero_shot import (  # noqa: E402
    NONE_LABEL,
    TINY_MODEL_NAME,
    CLIPZeroShotJudge,
    TinyCLIPJudge,
    register_tiny_model,
)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def dataset():
    actions = (Action("cheer", "cheering with both arms raised", ()), Action("sit", "sitting on a chair", ()),
               Action("squat", "squatting", ()))
    subjects = (Subject("man", "a man", "human"), Subject("cat", "a cat", "animal"),
                Subject("beckham", "David Beckham", "personality"))
    return Dataset("test", actions, subjects, Protocol(), "0" * 64, Path("."))


def figure(seed: int, size: int = 64):
    """A fixed synthetic image: a coloured stick figure on a tinted background."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (40 * seed % 256, 200 - 30 * seed % 200, 120))
    draw = ImageDraw.Draw(image)
    c = size // 2
    draw.ellipse([c - 6, 6, c + 6, 18], fill=(250, 220, 180))
    draw.line([c, 18, c, 42], fill=(0, 0, 0), width=4)
    arm = 10 + 6 * (seed % 3)
    draw.line([c, 24, c - 14, arm], fill=(0, 0, 0), width=3)
    draw.line([c, 24, c + 14, 40 - arm], fill=(0, 0, 0), width=3)
    draw.line([c, 42, c - 10, 60], fill=(0, 0, 0), width=3)
    draw.line([c, 42, c + 10, 60], fill=(0, 0, 0), width=3)
    return image


def requests_for(dataset, images):
    pairs = [(a.id, s.id) for a in dataset.actions for s in dataset.subjects]
    return [JudgeRequest(f"{a}/{s}/0", a, s, im) for (a, s), im in zip(pairs, images)]


def test_tiny_judge_one_bool_judgment_per_request_and_deterministic(dataset, tmp_path):
    images = [figure(i) for i in range(6)]
    paths = []
    for i, im in enumerate(images):  # paths and PIL images are both accepted
        paths.append(tmp_path / f"{i}.png")
        im.save(paths[-1])
    reqs = requests_for(dataset, images[:3] + paths[3:])
    first = TinyCLIPJudge(dataset, batch_size=4).judge(reqs)
    second = TinyCLIPJudge(dataset, batch_size=2).judge(reqs)
    assert [j.unit_id for j in first] == [r.unit_id for r in reqs]
    assert all(type(j.action_ok) is bool and type(j.subject_ok) is bool for j in first)
    # Batch size changes the kernels' float rounding (last digits differ on AVX-512 machines): the labels
    # must agree exactly, the scores within a tolerance.
    assert [(j.action_ok, j.subject_ok) for j in first] == [(j.action_ok, j.subject_ok) for j in second]
    for a, b in zip(first, second):
        assert a.detail.keys() == b.detail.keys()
        for key, value in a.detail.items():
            if isinstance(value, float):
                assert value == pytest.approx(b.detail[key], rel=1e-4, abs=1e-6), key
            else:
                assert value == b.detail[key], key
    labels = {a.id for a in dataset.actions} | {NONE_LABEL}
    for j in first:
        assert j.detail["action_pred"] in labels
        assert 0.0 <= j.detail["action_p_target"] <= j.detail["action_p_pred"] <= 1.0
        assert j.action_ok == (j.detail["action_pred"] == j.unit_id.split("/")[0])
        assert j.subject_ok == (j.detail["subject_pred"] == j.unit_id.split("/")[1])


def test_describe_records_model_version_and_prompt_hash(dataset):
    judge = TinyCLIPJudge(dataset)
    d = judge.describe()
    assert d["name"] == "tiny" and d["version"] == TinyCLIPJudge.VERSION and d["human"] is False
    assert d["model"] == TINY_MODEL_NAME and d["pretrained"] is None
    assert d["prompts_hash"] == TinyCLIPJudge(dataset).describe()["prompts_hash"]
    default = CLIPZeroShotJudge(dataset).describe()  # cheap: nothing is loaded by describe()
    assert (default["model"], default["pretrained"]) == ("ViT-L-14-quickgelu", "openai")
    assert default["prompts_hash"] == d["prompts_hash"]  # same ensembles, different model
    other = Dataset("other", dataset.actions[:2], dataset.subjects, Protocol(), "1" * 64, Path("."))
    assert CLIPZeroShotJudge(other).describe()["prompts_hash"] != d["prompts_hash"]
    ensembles = judge.prompt_ensembles()
    assert set(ensembles["action"]) == {"cheer", "sit", "squat", NONE_LABEL}
    assert "a photo of someone sitting on a chair." in ensembles["action"]["sit"]
    assert "a photo of David Beckham." in ensembles["subject"]["beckham"]


def test_local_weights_file_gives_the_same_judgments(dataset, tmp_path):
    import torch

    tiny = TinyCLIPJudge(dataset)
    reqs = requests_for(dataset, [figure(i) for i in range(4)])
    expected = tiny.judge(reqs)
    weights = tmp_path / "tiny.pt"
    torch.save(tiny._model.state_dict(), weights)
    register_tiny_model()
    from_file = CLIPZeroShotJudge(dataset, model=TINY_MODEL_NAME, pretrained=str(weights))
    assert [(j.action_ok, j.subject_ok, j.detail) for j in from_file.judge(reqs)] == \
        [(j.action_ok, j.subject_ok, j.detail) for j in expected]
    assert len(from_file.describe()["pretrained_sha256"]) == 64


class HandBuiltJudge(CLIPZeroShotJudge):
    """No model: every class gets its own axis; an image is the sum of the axes of what it 'shows'."""

    name = "hand-built"
    SHOWS = {}  # image colour -> (action label, subject label)

    def _load(self):
        self._model = "none"
        self.text_calls = 0
        self._axes = {}
        for head, classes in self.prompt_ensembles().items():
            for label in classes:
                self._axes[(head, label)] = len(self._axes)

    def _vector(self, axes):
        import torch

        v = torch.zeros(len(self._axes))
        for axis in axes:
            v[axis] += 1.0
        return torch.nn.functional.normalize(v, dim=0)

    def _encode_texts(self, prompts):
        import torch

        self.text_calls += 1
        ensembles = self.prompt_ensembles()
        rows = []
        for p in prompts:
            axes = [self._axes[(h, label)] for h, classes in ensembles.items() for label, ps in classes.items() if p in ps]
            rows.append(self._vector(axes))
        return torch.stack(rows)

    def _encode_images(self, images):
        import torch

        rows = []
        for im in images:
            action, subject = self.SHOWS[im.getpixel((0, 0))]
            rows.append(self._vector([self._axes[("action", action)], self._axes[("subject", subject)]]))
        return torch.stack(rows)


def test_decision_rule_target_wrong_class_and_none_each_win(dataset):
    from PIL import Image

    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    HandBuiltJudge.SHOWS = {red: ("cheer", "man"), green: ("sit", NONE_LABEL), blue: (NONE_LABEL, "cat")}
    judge = HandBuiltJudge(dataset)
    reqs = [
        JudgeRequest("cheer/man/0", "cheer", "man", Image.new("RGB", (8, 8), red)),  # target wins both
        JudgeRequest("cheer/cat/0", "cheer", "cat", Image.new("RGB", (8, 8), green)),  # wrong action, no subject
        JudgeRequest("sit/cat/0", "sit", "cat", Image.new("RGB", (8, 8), blue)),  # no action, right subject
    ]
    out = judge.judge(reqs)
    assert [(j.action_ok, j.subject_ok) for j in out] == [(True, True), (False, False), (False, True)]
    assert [j.detail["action_pred"] for j in out] == ["cheer", "sit", NONE_LABEL]
    assert [j.detail["subject_pred"] for j in out] == ["man", NONE_LABEL, "cat"]
    assert out[0].detail["action_p_target"] > 0.99 and out[1].detail["action_p_target"] < 0.01
    assert out[0].total_ok and not out[2].total_ok
    # class prompts are encoded once per class, on first use only
    calls = judge.text_calls
    assert calls == sum(len(c) for c in judge.prompt_ensembles().values())
    judge.judge(reqs)
    assert judge.text_calls == calls


def test_errors_name_the_problem_and_fix(dataset):
    with pytest.raises(ConfigError, match="valid options: model, pretrained, batch_size"):
        CLIPZeroShotJudge(dataset, modle="ViT-B-32")
    with pytest.raises(ConfigError, match="batch_size"):
        CLIPZeroShotJudge(dataset, batch_size="many")
    with pytest.raises(ConfigError, match="use model=ViT-B-32-quickgelu"):  # open_clip #771, before any download
        CLIPZeroShotJudge(dataset, model="ViT-B-32", pretrained="openai").judge(requests_for(dataset, [figure(0)]))
    with pytest.raises(DatasetError, match="unknown action 'fly'"):
        TinyCLIPJudge(dataset).judge([JudgeRequest("fly/man/0", "fly", "man", figure(0))])
    assert TinyCLIPJudge(dataset).judge([]) == []


def test_registry_resolves_both_judges():
    from actionbench.api.registry import get_evaluator

    assert get_evaluator("tiny") is TinyCLIPJudge
    assert get_evaluator("clip") is CLIPZeroShotJudge
