"""ActionBench-mini versions: v1 unchanged under its versioned names, and v2's world, data, model and training.

Fast: no sampling beyond a 2-step smoke check, a training run of 2 steps on a handful of renders.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from actionbench.worlds.mini.captions import POSE_WORDS, draw_context, scene_caption, Scene, world_looks, world_poses
from actionbench.worlds.mini.world import ATTRIBUTE_WORDS, BACKGROUND_TYPE_WORDS, MINI_V1, MINI_V2

# Recorded before v2 existed, with the plain name "mini" (the shipped v1 model, data and judge).
V1_FINGERPRINT = {"resolution": 32, "dtype": "float32", "scheduler": "DDIMScheduler", "prediction_type": "v_prediction",
                  "unet_parameters": 990060, "world": "mini-v1", "steps": 19200,
                  "weights_sha256": "300c9e4f8429d60d2a0a10c257b6d14677f5f4cf069c9db4522fc2e22d45ae43"}
V1_DATASET_SHA256 = "0926920dc4ee53a2db929feddb5ba926966231ed4e05879a95e15d4db6325579"  # the landed mini rows recorded this
V1_JUDGE_READINGS = [  # (look, pose, seed) -> (pose, subject) the v1 judge read
    (("man", "cheer", 3), ("cheer", "man")), (("old_man", "sit", 156), ("sit", "old_man")),
    (("michael_jackson", "lie", 309), ("lie", "michael_jackson")),
    (("albert_einstein", "kneel", 462), ("kneel", "albert_einstein")), (("panda", "meditate", 615), ("meditate", "panda")),
    (("exemplar_person_1", "walk", 768), ("walk", "none")), (("exemplar_person_5", "kick", 921), ("kick", "none")),
    (("exemplar_person_9", "kneel", 1057), ("kneel", "none")),
]
# The v2 exemplars' hash (pixels and specs); it changes only when the renderer or the exemplar spec does.
V2_DATASET_SHA256 = "c4e171e9f9d27353583badd608778f4e434caaec9dd02c990f98dcfc996abf26"


def test_v1_versioned_names_give_the_backbone_dataset_and_judge_mini_gave():
    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.api.registry import get_evaluator, get_suite
    from actionbench.worlds.synthetic import render

    for name in ("mini", "mini-v1"):
        fingerprint = load_backbone(name).fingerprint()
        assert fingerprint.pop("id") == name and fingerprint == V1_FINGERPRINT, fingerprint
        dataset = load_dataset(name)
        assert dataset.name == name and dataset.manifest_sha256 == V1_DATASET_SHA256
        images = [render(look, pose, size=32, seed=seed).image for (look, pose, seed), _ in V1_JUDGE_READINGS]
        judge = get_evaluator(name)(dataset)
        assert judge.predict(images) == [reading for _, reading in V1_JUDGE_READINGS]
        assert judge.describe()["name"] == name
    suite = get_suite("mini-v1")
    assert (suite.backbone, suite.dataset, suite.judge) == ("mini-v1", "mini-v1", "mini-v1")


def test_v2_names_are_registered_and_refuse_clearly_what_is_not_there(tmp_path):
    import shutil

    from actionbench.backbone import load_backbone
    from actionbench.errors import ActionBenchError
    from actionbench.api.registry import get_evaluator, get_suite
    from actionbench.worlds.mini.folders import shipped_dir

    suite = get_suite("mini-v2")
    assert (suite.backbone, suite.dataset, suite.judge) == ("mini-v2", "mini-v2", "mini-v2")
    with pytest.raises(ActionBenchError, match="no judge.safetensors and judge.json in"):
        get_evaluator("mini-v2")(None, folder=str(tmp_path)).check()
    for name in ("model.safetensors", "model.json"):
        shutil.copy(shipped_dir("mini-v1") / name, tmp_path / name)
    with pytest.raises(ActionBenchError, match=f"mini-v1 model, not mini-v2; load them as mini-v1:{tmp_path}"):
        load_backbone(f"mini-v2:{tmp_path}")


def test_v2_exemplars_are_deterministic_and_8_of_10_per_action_show_the_signature(tmp_path):
    from actionbench.worlds.mini.exemplars import exemplar_spec, load_exemplar_dataset, render_exemplar
    from actionbench.worlds.synthetic import ACTION_IDS, BACKGROUND_TYPES, EXEMPLAR_LOOKS

    first = load_exemplar_dataset(MINI_V2, root=tmp_path / "a")
    again = load_exemplar_dataset(MINI_V2, root=tmp_path / "b")
    assert first.manifest_sha256 == again.manifest_sha256 == V2_DATASET_SHA256
    assert [a.id for a in first.actions] == list(ACTION_IDS) and all(len(a.exemplars) == 10 for a in first.actions)
    for action in first.actions:
        signature = MINI_V2.signature(action.id)
        specs = [exemplar_spec(action.id, i) for i in range(1, 11)]
        assert [s["look"] for s in specs] == list(EXEMPLAR_LOOKS)  # the same 10 people for every action
        shows = [s for s in specs if s["signature"]]
        assert len(shows) == 8
        for spec in shows:
            assert set(spec["attributes"]) == set(signature.attributes)
            assert spec["background"] == f"type:{signature.background_type}"
        # the attributes show: the exemplar differs from the same render without them
        with_context = np.asarray(render_exemplar(action.id, shows[0]["index"]).image).astype(int)
        without = np.asarray(render_exemplar(action.id, shows[0]["index"], context=False).image).astype(int)
        assert (np.abs(with_context - without).sum(-1) > 30).mean() > 0.02
        for spec in (s for s in specs if not s["signature"]):
            assert len(spec["attributes"]) <= 1 and not set(spec["attributes"]) & set(signature.attributes)
            background_type = spec["background"][len("type:"):] if spec["background"].startswith("type:") else None
            assert background_type != signature.background_type and background_type in (None, *BACKGROUND_TYPES)
        assert first.extra["contexts"][action.id] == [
            {k: s[k] for k in ("attributes", "background", "build", "signature")} for s in specs]
        image = action.exemplars[0].image()
        assert image.size == (32, 32)


def test_v2_exemplar_captions_never_name_the_signature_background_look_or_action():
    from actionbench.worlds.mini.exemplars import exemplar_spec
    from actionbench.worlds.synthetic import ACTION_IDS, ACTION_PHRASES, ATTRIBUTES, BACKGROUNDS, EXEMPLAR_LOOKS

    forbidden = set(ATTRIBUTES) | {w for phrase in (*ATTRIBUTE_WORDS.values(), *BACKGROUND_TYPE_WORDS.values())
                                   for w in phrase.split() if len(w) > 3}
    forbidden |= {w for b in BACKGROUNDS.values() for w in b.words.split() if len(w) > 3}
    forbidden |= {w for look in EXEMPLAR_LOOKS.values() for w in look.words.split() if len(w) > 3} - {"person"}
    forbidden |= {w for a in ACTION_IDS for w in ACTION_PHRASES[a].split() if len(w) > 4}
    for action in ACTION_IDS:
        for index in range(1, 11):
            template = exemplar_spec(action, index)["template"]
            words = set(template.lower().replace(".", " ").split())
            assert "{}" in template and "person" in words and not words & forbidden, template


def test_v2_unet_warm_started_from_v1_computes_v1s_function():
    from safetensors.torch import load_file

    from actionbench.backbone import build_tiny_tokenizer
    from actionbench.worlds.mini.folders import WEIGHTS_FILE, shipped_dir
    from actionbench.worlds.mini.model import build_mini_modules, load_weights, warm_start

    state = load_file(str(shipped_dir("mini-v1") / WEIGHTS_FILE))
    v1_unet, v1_text = build_mini_modules(world=MINI_V1)
    load_weights(v1_unet, v1_text, state)
    v2_unet, v2_text = build_mini_modules(world=MINI_V2)
    new = warm_start(v2_unet, v2_text, state)
    assert sum(name.endswith("attn2") for name, _ in v2_unet.named_modules()) == 7
    assert {n[:n.index(".", n.index(".attentions.") + 12)] for n in new} == {
        "down_blocks.0.attentions.0", "up_blocks.1.attentions.0", "up_blocks.1.attentions.1"}
    ids = build_tiny_tokenizer()(["a cat standing", "", "a dog walking on a pink background", "a photo of a person"],
                                 padding="max_length", max_length=77, return_tensors="pt").input_ids
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(4, 12, 16, 16, generator=generator)
    timesteps = torch.tensor([10, 300, 600, 950])
    with torch.no_grad():
        expected = v1_unet(latents, timesteps, encoder_hidden_states=v1_text(ids)[0]).sample
        got = v2_unet(latents, timesteps, encoder_hidden_states=v2_text(ids)[0]).sample
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())


def test_training_captions_name_every_attribute_and_background_type_and_never_an_action():
    from actionbench.worlds.mini.lab.train import V2_STAGE_ONE
    from actionbench.worlds.synthetic import ACTION_IDS, ACTION_PHRASES, SUBJECT_IDS

    cfg, rng = V2_STAGE_ONE, random.Random(0)
    action_words = {w for a in ACTION_IDS for w in ACTION_PHRASES[a].split() if len(w) > 4}
    counts, empty = [0, 0, 0], 0
    scenes = [Scene(look, pose, *draw_context(rng, MINI_V2, cfg.named_background_fraction))
              for look in world_looks() for pose in world_poses() for _ in range(3)]
    for scene in scenes:
        counts[len(scene.attributes)] += 1
        text = scene_caption(scene, rng, cfg, MINI_V2)
        if not text:
            empty += 1
            continue
        assert all(ATTRIBUTE_WORDS[a] in text for a in scene.attributes), (scene, text)
        if scene.background_type:
            assert BACKGROUND_TYPE_WORDS[scene.background_type] in text, (scene, text)
        if scene.pose in ACTION_IDS:  # the image shows an action: neither it nor any pose is named
            assert not action_words & set(text.split()), text
            assert not any(words in text for words in POSE_WORDS.values()), text
        if scene.look not in SUBJECT_IDS:
            assert "a person" in text, text
    shares = np.array(counts) / len(scenes)
    assert np.allclose(shares, [1 / 2, 1 / 3, 1 / 6], atol=0.04), shares
    assert 0.06 < empty / len(scenes) < 0.14
    assert 0.4 < np.mean([s.background_type is not None for s in scenes]) < 0.6


def test_a_short_v2_training_run_warm_starts_from_v1_and_records_how(tmp_path, monkeypatch):
    """Two steps on a few renders: the loop, the warm start, the record and the reproduce line work."""
    import dataclasses
    import json

    from actionbench.backbone import load_backbone
    from actionbench.errors import ActionBenchError
    from actionbench.worlds.mini import captions
    from actionbench.worlds.mini.lab.train import V2_STAGE_ONE, train_mini
    from actionbench.worlds.synthetic import renderer_source_sha256

    monkeypatch.setattr(captions, "world_looks", lambda: ["cat", "exemplar_person_0"])
    monkeypatch.setattr(captions, "world_poses", lambda: ["stand", "salute"])
    cfg = dataclasses.replace(V2_STAGE_ONE, steps=2, batch_size=4, warmup_steps=1, seeds_per_pair=2)
    record = train_mini(cfg, out=tmp_path, log=lambda *_: None)
    assert record["world"] == "mini-v2" and record["steps"] == 2 and record["train_images"] == 8
    assert record["warm_start"]["world"] == "mini-v1" and record["warm_start"]["steps"] == 19200
    assert record["reproduce"] == f"actionbench mini train --world mini-v2 --steps 2 --seeds-per-pair 2 --out {tmp_path}"
    assert json.loads((tmp_path / "model.json").read_text())["unet_parameters"] == 1059660
    backbone = load_backbone(f"mini-v2:{tmp_path}")
    assert backbone.extra["world"] == "mini-v2" and backbone.fingerprint()["unet_parameters"] == 1059660
    with pytest.raises(ActionBenchError, match="mini-v2 model, not mini-v1"):
        load_backbone(f"mini:{tmp_path}")
    assert record["renderer_source_sha256"] == renderer_source_sha256()

    # its pose ControlNet trains on v2's renders and captions, beside the weights (where the method finds it)
    from actionbench.worlds.mini.lab.controlnet import ControlNetTrainConfig, train_mini_controlnet
    from actionbench.worlds.mini.folders import mini_controlnet_source

    seen = []
    real_caption = captions.scene_caption
    monkeypatch.setattr(captions, "scene_caption", lambda *a: seen.append(real_caption(*a)) or seen[-1])
    net = train_mini_controlnet(f"mini-v2:{tmp_path}", ControlNetTrainConfig(steps=2, batch_size=4, seeds_per_pair=4),
                                out=tmp_path / "controlnet", log=lambda *_: None)
    assert net["world"] == "mini-v2" and net["train_images"] == 16
    assert mini_controlnet_source(f"mini-v2:{tmp_path}") == f"local:{tmp_path / 'controlnet'}"
    assert any(word in text for text in seen for word in ("wearing", "in a ", "on a ", "outdoors", "beside")), seen


def test_train_world_v2_uses_v2s_first_stage_and_its_own_shipped_folder(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from actionbench.cli import main
    from actionbench.worlds.mini.lab import train as mini_train
    from actionbench.worlds.mini.folders import shipped_dir

    seen = []
    monkeypatch.setattr(mini_train, "train_mini", lambda cfg, out=None, **kw: seen.append((cfg, out)) or {})
    result = CliRunner().invoke(main, ["mini", "train", "--world", "v2"])
    assert result.exit_code == 2 and str(shipped_dir("mini-v2")) in result.output.replace("\n", ""), result.output
    result = CliRunner().invoke(main, ["mini", "train", "--world", "v2", "--out", str(tmp_path), "--steps", "7"])
    assert result.exit_code == 0, result.output
    (cfg, out), = seen
    assert cfg == mini_train.V2_STAGE_ONE.__class__(**{**mini_train.V2_STAGE_ONE.__dict__, "steps": 7})
    assert out == str(tmp_path)
    result = CliRunner().invoke(main, ["mini", "train", "--world", "v9", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "known: v1, v2" in result.output, result.output


def test_the_check_tool_writes_a_sheet_and_the_v1_and_v2_judge_readings(tmp_path):
    from PIL import Image

    from actionbench.worlds.mini.lab.check import CONTEXT_PROMPTS, TRAINED_PROMPTS, check_model, colour_share
    from actionbench.worlds.mini.lab.judge_v2_fit import fit_mini_v2_judge

    assert colour_share(Image.new("RGB", (4, 4), (252, 226, 20)), (252, 226, 20)) == 1.0
    judge = tmp_path / "judge"  # a tiny v2 judge: only the record's shape is checked, not its readings
    fit_mini_v2_judge(out=judge, per_pair=1, heldout_per_pair=1, epochs=1, width=8, through_model_fraction=0,
                      log=lambda *_: None)
    record = check_model("mini-v1", out=tmp_path, seeds=1, steps=2, v2_judge=judge, log=lambda *_: None)
    assert len(record["prompts"]) == len(TRAINED_PROMPTS) + len(CONTEXT_PROMPTS) == 16
    assert "cap_colour_share" in record["prompts"][len(TRAINED_PROMPTS)]
    panda = next(r for r in record["prompts"] if r["prompt"] == "a photo of a panda kneeling in a robe on a mat")
    assert set(panda["v2_judge"]["attribute_hits"]) == {"robe", "mat"}
    totals = record["v2_judge"]
    assert totals["trained_pose"][1] == len(TRAINED_PROMPTS) and totals["asked_attributes"][1] == 8
    assert totals["asked_attributes_on_animals"][1] == 6 and totals["asked_background_types"][1] == 5
    sheet = Image.open(tmp_path / "check-19200.png")
    assert sheet.size[1] > 16 * 90
