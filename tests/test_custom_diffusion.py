"""Custom Diffusion learns V* and the cross-attention W_k, W_v of a UNet copy, nothing else, and
its artifact holds exactly those tensors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import actionbench.methods.custom_diffusion as custom_diffusion
from actionbench.errors import ArtifactError
from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method
from actionbench.training import ExemplarSet, fixed_generator, trainable_copy, word_embedding
from helpers import changed_parameters, snapshot

BACKBONE_PARTS = ("unet", "text_encoder", "vae")


def make(backbone, **overrides):
    cls = get_method("custom_diffusion")
    return cls(backbone, build_config(cls.Config, {k: str(v) for k, v in overrides.items()}, preset="smoke"))


def kv_names(unet):
    return {n for n, _ in unet.named_parameters() if ".attn2.to_k." in n or ".attn2.to_v." in n}


def same_images(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def test_defaults_follow_the_paper_and_diffusers():
    cfg = custom_diffusion.CustomDiffusionConfig()
    assert (cfg.learning_rate, cfg.batch_size, cfg.train_steps, cfg.initializer_word) == (1e-5, 2, 250, "ktn")
    assert cfg.effective_learning_rate() == pytest.approx(4e-5)  # diffusers: 1e-5 x batch 2 x 2 (prior)
    assert cfg.replace(batch_size=8, with_prior_preservation=False).effective_learning_rate() == pytest.approx(8e-5)
    assert cfg.replace(scale_lr=False).effective_learning_rate() == 1e-5
    docs = custom_diffusion.CustomDiffusionConfig.field_docs()
    assert all(docs.get(f.name) for f in dataclasses.fields(cfg)), "every setting needs a docstring"


def test_selects_cross_attention_keys_and_values_only(tiny_backbone):
    selected = {n for n, _ in tiny_backbone.unet.named_parameters() if custom_diffusion.is_cross_attention_kv(n)}
    assert selected == kv_names(tiny_backbone.unet) and len(selected) == 12  # 6 cross-attention layers x (k, v)
    assert not custom_diffusion.is_cross_attention_kv("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight")


def test_loss_falls_on_a_fixed_batch(tiny_backbone, toy_action):
    """V* and W_k, W_v on one batch, noise and timesteps (a re-seeded generator): the loss must drop."""
    b = tiny_backbone
    method = make(b, batch_size=2)
    exemplars = ExemplarSet.from_action(b, toy_action)
    unet = trainable_copy(b.unet, trainable=custom_diffusion.is_cross_attention_kv)
    vector = torch.nn.Parameter(word_embedding(b, "ktn"))
    optimizer = torch.optim.Adam([vector] + [p for p in unet.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = method.loss(unet, "<cd-test>", vector, exemplars, None, fixed_generator(0))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1e-3 and losses[-1] == min(losses), losses


def test_only_token_and_cross_attention_kv_change(tiny_backbone, toy_action, subject, tmp_path, monkeypatch):
    copies = []
    original = custom_diffusion.trainable_copy

    def recording(module, trainable=None):
        clone = original(module, trainable)
        copies.append((clone, snapshot(clone)))
        return clone

    monkeypatch.setattr(custom_diffusion, "trainable_copy", recording)
    before = {part: snapshot(getattr(tiny_backbone, part)) for part in BACKBONE_PARTS}
    method = make(tiny_backbone, train_steps=3, learning_rate=1e-3)
    artifact = method.customize(toy_action, tmp_path / "art")

    for part, snap in before.items():
        assert changed_parameters(snap, getattr(tiny_backbone, part)) == [], f"backbone {part} changed"
    (unet, start), = copies
    assert set(changed_parameters(start, unet)) == kv_names(unet)
    assert set(artifact.tensors) == {"token_embedding"} | {f"unet.{n}" for n in kv_names(unet)}
    assert not torch.equal(artifact.tensors["token_embedding"], word_embedding(tiny_backbone, "ktn"))
    assert artifact.meta["token"] == "<custom_diffusion-cheer>" and len(artifact.meta["loss_history"]) == 3
    assert artifact.meta["class_images"]["count"] == 2

    images = method.generate(artifact, subject, [3, 4])
    for part, snap in before.items():
        assert changed_parameters(snap, getattr(tiny_backbone, part)) == []
    assert same_images(images, make(tiny_backbone).generate(Artifact.load(artifact.path), subject, [3, 4]))
    # both learned parts reach the sampler
    untuned_kv = dataclasses.replace(artifact, tensors={"token_embedding": artifact.tensors["token_embedding"]})
    assert not same_images(images, make(tiny_backbone).generate(untuned_kv, subject, [3, 4]))


def test_patched_unet_is_built_once_per_artifact(tiny_backbone, toy_action, subject, tmp_path, monkeypatch):
    method = make(tiny_backbone, with_prior_preservation="false")
    artifact = method.customize(toy_action, tmp_path / "art")
    assert artifact.meta["class_images"] == {}
    builds = []
    original = custom_diffusion.patched_copy
    monkeypatch.setattr(custom_diffusion, "patched_copy", lambda *a, **k: builds.append(1) or original(*a, **k))
    first = method.generate(artifact, subject, [1])
    assert same_images(first, method.generate(artifact, subject, [1])) and len(builds) == 1


def test_class_images_are_shared_and_not_redrawn(tiny_backbone, toy_action, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path / "home"))
    first = make(tiny_backbone).customize(toy_action, tmp_path / "a1")
    second = make(tiny_backbone).customize(toy_action, tmp_path / "a2")
    assert (first.meta["class_images"]["generated"], second.meta["class_images"]["generated"]) == (2, 0)
    # DreamBooth with the same class prompt and sampler settings reuses them too
    db = get_method("dreambooth")
    third = db(tiny_backbone, build_config(db.Config, preset="smoke")).customize(toy_action, tmp_path / "a3")
    assert third.meta["class_images"]["generated"] == 0
    assert third.meta["class_images"]["key"] == first.meta["class_images"]["key"]


def test_foreign_tensors_are_refused(tiny_backbone, toy_action, subject, tmp_path):
    method = make(tiny_backbone, with_prior_preservation="false")
    artifact = method.customize(toy_action, tmp_path / "art")
    name = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight"
    bad = dataclasses.replace(artifact, tensors={**artifact.tensors, name: torch.zeros(32, 32)})
    with pytest.raises(ArtifactError, match="does not make"):
        method.generate(bad, subject, [1])
