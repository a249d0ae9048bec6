"""The VQAScore-style judge's plumbing, on a tiny random LLaVA the test builds and saves itself.

No real vision-language model can be downloaded here, so these tests check what does not depend on
the weights: loading from a folder, the chat prompt, the Yes/No tokens, P(yes) normalisation,
batching, the decision rule, the version and the errors. Its scores on real images are unmeasured.
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from actionbench.dataset import load_dataset
from actionbench.errors import ActionBenchError, ConfigError
from actionbench.api.evaluator import JudgeRequest
from actionbench.evaluators.vqa import DEFAULT_MODEL, DEFAULT_TEMPLATE, VQAJudge, verdict
from actionbench.api.registry import get_evaluator

REVISION = "0123456789abcdef0123456789abcdef01234567"
WORDS = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "Yes", "No", "USER", "ASSISTANT", ":", "Does", "this", "figure",
         "show", "'", "?", "a", "man", "woman", "sitting", "squatting", "Please", "answer", "yes", "or", "no", "."]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'].upper() + ': ' }}{% for c in m['content'] %}"
                 "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}"
                 "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def save_tiny_llava(folder) -> None:
    """A randomly initialised LLaVA (CLIP vision tower, Llama text model) with a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    vocab = {w: i for i, w in enumerate(WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", extra_special_tokens={"image_token": "<image>"})
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=32, patch_size=8),
        text_config=LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                  crop_size={"height": 32, "width": 32}),
                               tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llava")
    save_tiny_llava(folder)
    return folder


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic")


def requests(dataset, tmp_path):
    path = tmp_path / "sit.png"
    Image.new("RGB", (48, 40), (200, 30, 30)).save(path)
    return [JudgeRequest("sit/man/0", "sit", "man", path),
            JudgeRequest("squat/woman/1", "squat", "woman", Image.new("RGB", (40, 56), (10, 120, 240)))]


def test_judges_from_a_local_folder_with_p_yes_per_question(dataset, tiny_vlm, tmp_path):
    judge = get_evaluator("vqa")(dataset, model=str(tiny_vlm), batch_size=4)
    judge.check()
    out = judge.judge(requests(dataset, tmp_path))
    assert [j.unit_id for j in out] == ["sit/man/0", "squat/woman/1"]
    for j, target in zip(out, ("sit", "squat")):
        p = j.detail["action_p_yes"]
        assert sorted(p) == sorted(a.id for a in dataset.actions)
        assert all(0.0 <= v <= 1.0 for v in p.values()) and 0.0 <= j.detail["subject_p_yes"] <= 1.0
        assert 0.0 < j.detail["yes_no_mass_min"] <= 1.0
        assert (j.detail["action_pred"], j.action_ok, j.subject_ok) == verdict(p, target, j.detail["subject_p_yes"])
    # batching and left padding do not change the scores
    again = VQAJudge(dataset, model=str(tiny_vlm), batch_size=1).judge(requests(dataset, tmp_path))
    for a, b in zip(out, again):
        assert a.detail["action_p_yes"] == pytest.approx(b.detail["action_p_yes"], abs=1e-4)
        assert a.detail["subject_p_yes"] == pytest.approx(b.detail["subject_p_yes"], abs=1e-4)


def test_p_yes_is_the_yes_no_softmax_after_the_chat_prompt(dataset, tiny_vlm):
    judge = VQAJudge(dataset, model=str(tiny_vlm))
    image = Image.new("RGB", (32, 32), (90, 90, 90))
    question = DEFAULT_TEMPLATE.format(text="a man sitting")
    (p, mass), = judge.p_yes([(image, question)])
    prompt = judge.prompt(question)
    assert prompt == f"USER: <image>\n{question} ASSISTANT:"
    vocab = judge._processor.tokenizer.get_vocab()
    assert judge._answer_ids == (vocab["Yes"], vocab["No"])
    inputs = judge._processor(images=[image], text=[prompt], return_tensors="pt")
    with torch.no_grad():
        logits = judge._model(**inputs).logits[0, -1]
    yes, no = logits[vocab["Yes"]], logits[vocab["No"]]
    assert p == pytest.approx(float(torch.sigmoid(yes - no)), abs=1e-5)
    assert mass == pytest.approx(float(torch.softmax(logits, -1)[[vocab["Yes"], vocab["No"]]].sum()), abs=1e-5)


def test_decision_rule():
    p = {"sit": 0.7, "squat": 0.2}
    assert verdict(p, "sit", 0.6) == ("sit", True, True)
    assert verdict(p, "squat", 0.4) == ("sit", False, False)  # another action wins
    assert verdict({"sit": 0.45, "squat": 0.2}, "sit", 0.5)[1:] == (False, False)  # wins, but the model says no


def test_version_and_description_follow_model_revision_and_template(dataset, tiny_vlm):
    base = VQAJudge(dataset, revision=REVISION)
    record = base.describe()
    assert (record["model"], record["pretrained"], record["template"]) == (DEFAULT_MODEL, REVISION, DEFAULT_TEMPLATE)
    assert base.VERSION.startswith(f"{VQAJudge.VERSION}-") and "/" not in base.VERSION  # a folder name
    assert VQAJudge(dataset, revision=REVISION).VERSION == base.VERSION
    others = [VQAJudge(dataset, revision="f" * 40), VQAJudge(dataset, revision=REVISION, template="Is it '{text}'?"),
              VQAJudge(dataset, revision=REVISION, dtype="bfloat16"), VQAJudge(dataset, model=str(tiny_vlm))]
    assert len({base.VERSION, *(j.VERSION for j in others)}) == 5
    assert VQAJudge(dataset, revision=REVISION, batch_size=2).VERSION == base.VERSION  # speed only
    assert others[-1].describe()["pretrained"].startswith("sha256:")


def test_errors_name_the_option_and_the_fix(dataset, tmp_path, tiny_vlm):
    with pytest.raises(ConfigError, match="revision=<40 hex digits>"):
        VQAJudge(dataset)
    with pytest.raises(ConfigError, match="'main' moves"):
        VQAJudge(dataset, revision="main")
    with pytest.raises(ConfigError, match="drop revision"):
        VQAJudge(dataset, model=str(tiny_vlm), revision=REVISION)
    with pytest.raises(ConfigError, match=r"\{text\}"):
        VQAJudge(dataset, revision=REVISION, template="Is this an action?")
    with pytest.raises(ConfigError, match="valid options"):
        VQAJudge(dataset, revision=REVISION, pretrained="x")
    with pytest.raises(ConfigError, match="neither a folder on this machine nor a hub model id"):
        VQAJudge(dataset, model=str(tmp_path / "missing"), revision=REVISION)
    with pytest.raises(ConfigError, match="not a model folder"):
        VQAJudge(dataset, model=str(tmp_path)).check()
    with pytest.raises(ActionBenchError, match=f"{DEFAULT_MODEL}.*{REVISION}.*huggingface-cli download"):
        VQAJudge(dataset, revision=REVISION).check()  # offline, not cached: before anything is generated
