"""The shipped mini v2 model with its judge and ControlNet: it draws a named attribute on an animal when
asked; the world produces contamination at all (a short inversion on exemplars that share their action's signature
leaks more than the same inversion on the same people, poses and seeds without it); the ControlNet draws the
exemplars' pose. Skipped until they are shipped."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actionbench.api.config import SamplerConfig

SAMPLER = SamplerConfig(num_inference_steps=12, guidance_scale=4.0, batch_size=8)  # the mini docs' quick sampler
ANIMALS = ("cat", "dog", "tiger", "panda")


@pytest.fixture(scope="module")
def world():
    from actionbench.worlds.mini.folders import shipped_dir

    folder = shipped_dir("mini-v2")
    if not all((folder / name).is_file() for name in ("model.safetensors", "model.json", "judge.safetensors",
                                                       "judge.json", "controlnet/config.json")):
        pytest.skip("no v2 model, judge and ControlNet shipped yet (actionbench/data/mini-v2/README.md)")
    import torch

    from actionbench.backbone import load_backbone
    from actionbench.worlds.mini.dataset import load_mini_v2_dataset
    from actionbench.worlds.mini.judge_v2 import MiniV2Judge

    torch.set_num_threads(1)
    dataset = load_mini_v2_dataset()
    return load_backbone("mini-v2"), dataset, MiniV2Judge(dataset)


@pytest.mark.parametrize("prompt, attribute", [("a dog walking in a uniform", "uniform"),
                                               ("a photo of a panda kneeling in a robe", "robe")])
def test_the_model_draws_a_named_attribute_on_an_animal_and_the_judge_sees_it(world, prompt, attribute):
    from actionbench.worlds.mini.lab.check import sample_prompts

    model, _, judge = world
    images = sample_prompts(model, [prompt], range(8))[prompt]
    hits = sum(attribute in reading.attributes for reading in judge.predict(images))
    assert hits >= 5, f"the judge reads {attribute} in {hits} of 8 samples of {prompt!r}"


def _signature_free(action, folder):
    """The same exemplars (person, pose, build, seed) without attributes, on the seed's v1 background."""
    from actionbench.worlds.mini.exemplars import exemplar_spec
    from actionbench.worlds.synthetic import render

    exemplars = []
    for exemplar in action.exemplars:
        spec = exemplar_spec(action.id, exemplar.index)
        path = folder / f"{action.id}-{exemplar.index:02d}.png"
        render(spec["look"], spec["pose"], size=32, seed=spec["seed"], build=spec["build"]).image.save(path)
        exemplars.append(dataclasses.replace(exemplar, path=path))
    return dataclasses.replace(action, exemplars=tuple(exemplars))


def test_an_inversion_on_signature_sharing_exemplars_leaks_more_than_on_signature_free_ones(world, tmp_path):
    from actionbench.methods.textual_inversion import TextualInversion, TextualInversionConfig
    from actionbench.worlds.mini.judge_v2 import signature_leak, signature_table

    model, dataset, judge = world
    action = dataset.action("salute")  # uniform, cap, outdoors
    (tmp_path / "free").mkdir()
    method = TextualInversion(model, TextualInversionConfig(train_steps=400, sampler=SAMPLER))
    subjects = [dataset.subject(s) for s in ANIMALS]
    signature = signature_table(dataset)[action.id]
    leak = {}
    for name, exemplars in (("signature", action), ("free", _signature_free(action, tmp_path / "free"))):
        artifact = method.customize(exemplars, tmp_path / name)
        images = [image for subject in subjects for image in method.generate(artifact, subject, [0, 1])]
        leak[name] = float(np.mean([signature_leak(r, signature) for r in judge.predict(images)]))
    assert leak["signature"] >= leak["free"] + 0.3, leak


def test_the_shipped_controlnet_draws_the_exemplar_pose(world, tmp_path):
    from actionbench.methods.controlnet import ControlNetPose
    from actionbench.methods.sd import TextOnlySD

    model, dataset, judge = world
    action = dataset.action("cheer")
    subjects = [dataset.subject(s) for s in ("man", "cat", "woman", "dog")]
    rates = {}
    for name, method in (("controlnet", ControlNetPose(model, ControlNetPose.Config(sampler=SAMPLER))),
                         ("sd", TextOnlySD(model, TextOnlySD.Config(sampler=SAMPLER)))):
        artifact = method.customize(action, tmp_path / name)
        images = [image for subject in subjects for image in method.generate(artifact, subject, [0, 1])]
        rates[name] = float(np.mean([reading.pose == "cheer" for reading in judge.predict(images)]))
    assert rates["controlnet"] >= 0.5 and rates["controlnet"] > rates["sd"], rates
