"""DreamBooth fine-tunes a copy of the UNet (never the backbone), saves only the changed tensors,
reproduces its images from the saved artifact, and draws its class images once."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import actionbench.methods.dreambooth as dreambooth
from actionbench.errors import ArtifactError
from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method
from actionbench.training import ExemplarSet, class_images, fixed_generator, trainable_copy
from helpers import changed_parameters, snapshot

BACKBONE_PARTS = ("unet", "text_encoder", "vae")


def make(backbone, **overrides):
    cls = get_method("dreambooth")
    return cls(backbone, build_config(cls.Config, {k: str(v) for k, v in overrides.items()}, preset="smoke"))


def backbone_snapshots(backbone):
    return {part: snapshot(getattr(backbone, part)) for part in BACKBONE_PARTS}


def assert_backbone_untouched(backbone, snapshots):
    for part, snap in snapshots.items():
        assert changed_parameters(snap, getattr(backbone, part)) == [], f"backbone {part} changed"


@pytest.fixture
def captured_copies(monkeypatch):
    """Every trainable copy customize makes, with a snapshot taken before training."""
    copies = []
    original = dreambooth.trainable_copy

    def recording(module, trainable=None):
        clone = original(module, trainable)
        copies.append((clone, snapshot(clone)))
        return clone

    monkeypatch.setattr(dreambooth, "trainable_copy", recording)
    return copies


def same_images(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def test_defaults_follow_the_paper_and_diffusers():
    cfg = dreambooth.DreamBoothConfig()
    assert (cfg.learning_rate, cfg.train_steps, cfg.num_class_images, cfg.prior_loss_weight) == (5e-6, 800, 200, 1.0)
    assert cfg.identifier == "sks" and cfg.with_prior_preservation and not cfg.train_text_encoder
    docs = dreambooth.DreamBoothConfig.field_docs()
    assert all(docs.get(f.name) for f in dataclasses.fields(cfg)), "every setting needs a docstring"


def test_identifier_is_one_existing_token(tiny_backbone):
    ids = tiny_backbone.tokenizer("sks", add_special_tokens=False).input_ids
    assert len(ids) == 1 and ids[0] < tiny_backbone.text_encoder.get_input_embeddings().num_embeddings


def test_loss_falls_on_a_fixed_batch_with_prior(tiny_backbone, toy_action):
    """The same batch, noise and timesteps every step (a re-seeded generator): the loss must drop."""
    b = tiny_backbone
    method = make(b, batch_size=2)
    exemplars = ExemplarSet.from_action(b, toy_action)
    prior = ExemplarSet.from_images(b, [toy_action.exemplars[0].image().rotate(90)] * 2, ["a photo of a person"] * 2)
    unet = trainable_copy(b.unet)
    optimizer = torch.optim.Adam([p for p in unet.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = method.loss(unet, None, exemplars, prior, fixed_generator(0))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0] and losses[-1] == min(losses), losses


def test_customize_trains_a_copy_and_saves_only_its_changed_tensors(tiny_backbone, toy_action, subject, tmp_path,
                                                                     captured_copies):
    before = backbone_snapshots(tiny_backbone)
    method = make(tiny_backbone, train_steps=3, learning_rate=1e-4)
    artifact = method.customize(toy_action, tmp_path / "art")
    assert_backbone_untouched(tiny_backbone, before)

    # one copy (the UNet; the text encoder is frozen by default), trained: its changed tensors are the artifact
    assert len(captured_copies) == 1
    unet, start = captured_copies[0]
    changed = changed_parameters(start, unet)
    assert set(changed) == set(start), "full fine-tuning moves every UNet tensor"
    assert set(artifact.tensors) == {f"unet.{name}" for name in changed}
    params = dict(unet.named_parameters())
    assert all(torch.equal(artifact.tensors[f"unet.{n}"], params[n].detach()) for n in changed)
    assert artifact.meta["identifier"] == "sks" and len(artifact.meta["loss_history"]) == 3

    # generation patches a copy: the backbone still does not change, and a reload draws the same images
    images = method.generate(artifact, subject, [3, 4])
    assert_backbone_untouched(tiny_backbone, before)
    reloaded = make(tiny_backbone).generate(Artifact.load(artifact.path), subject, [3, 4])
    assert same_images(images, reloaded) and not same_images(images[:1], images[1:])
    plain = make(tiny_backbone).generate(dataclasses.replace(artifact, tensors={}), subject, [3, 4])
    assert not same_images(images, plain), "the delta must reach the sampler"


def test_patched_unet_is_built_once_per_artifact(tiny_backbone, toy_action, subject, tmp_path, monkeypatch):
    method = make(tiny_backbone, with_prior_preservation="false")
    artifact = method.customize(toy_action, tmp_path / "art")
    builds = []
    original = dreambooth.patched_copy
    monkeypatch.setattr(dreambooth, "patched_copy", lambda *a, **k: builds.append(1) or original(*a, **k))
    method.generate(artifact, subject, [1])
    method.generate(artifact, subject, [2])
    assert len(builds) == 1
    method.generate(Artifact.load(artifact.path), subject, [1])
    assert len(builds) == 2


def test_text_encoder_option_and_fp16_artifact(tiny_backbone, toy_action, subject, tmp_path, captured_copies):
    before = backbone_snapshots(tiny_backbone)
    method = make(tiny_backbone, train_text_encoder="true", save_dtype="fp16", learning_rate=1e-4,
                  with_prior_preservation="false")
    artifact = method.customize(toy_action, tmp_path / "art")
    assert len(captured_copies) == 2  # UNet and text encoder
    (unet, unet_start), (text_encoder, text_start) = captured_copies
    assert {k for k in artifact.tensors if k.startswith("text_encoder.")} == {
        f"text_encoder.{n}" for n in changed_parameters(text_start, text_encoder)}
    assert {k for k in artifact.tensors if k.startswith("text_encoder.")}
    assert all(t.dtype == torch.float16 for t in artifact.tensors.values())
    images = method.generate(artifact, subject, [7])
    assert same_images(images, make(tiny_backbone).generate(Artifact.load(artifact.path), subject, [7]))
    assert_backbone_untouched(tiny_backbone, before)


def test_foreign_tensors_are_refused(tiny_backbone, toy_action, subject, tmp_path):
    method = make(tiny_backbone, with_prior_preservation="false")
    artifact = method.customize(toy_action, tmp_path / "art")
    bad = dataclasses.replace(artifact, tensors={"unet.no.such.weight": torch.zeros(2)})
    with pytest.raises(ArtifactError, match="does not fit"):
        method.generate(bad, subject, [1])
    with pytest.raises(ArtifactError, match="does not make"):
        method.generate(dataclasses.replace(artifact, tensors={"token_embedding": torch.zeros(32)}), subject, [1])


def test_class_images_are_drawn_once_and_reused(tiny_backbone, toy_action, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path / "home"))
    first = make(tiny_backbone, num_class_images=2).customize(toy_action, tmp_path / "a1")
    second = make(tiny_backbone, num_class_images=2).customize(toy_action, tmp_path / "a2")
    assert first.meta["class_images"]["generated"] == 2 and second.meta["class_images"]["generated"] == 0
    # same data, noise and class images: the two runs learn the same weights
    assert all(torch.equal(first.tensors[k], second.tensors[k]) for k in first.tensors)
    cfg = make(tiny_backbone).config
    more = class_images(tiny_backbone, cfg.class_prompt, 3, cfg.sampler)
    assert more.generated == 1 and more.folder.name == first.meta["class_images"]["key"]
    assert (more.folder / "spec.json").is_file()
    # the key covers prompt and sampler settings
    other = class_images(tiny_backbone, "a photo of a dog", 1, cfg.sampler)
    steps = class_images(tiny_backbone, cfg.class_prompt, 1, cfg.sampler.replace(num_inference_steps=3))
    assert len({more.folder, other.folder, steps.folder}) == 3 and other.generated == steps.generated == 1
