"""Textual inversion trains exactly one vector and lowers the loss; text-only SD learns nothing."""
from __future__ import annotations

import numpy as np
import torch

from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method
from actionbench.training import (
    ExemplarSet,
    denoising_loss,
    draw_noise,
    encode_prompts,
    fixed_generator,
    word_embedding,
)
from helpers import changed_parameters, snapshot


def test_loss_falls_on_a_fixed_batch(tiny_backbone, toy_action):
    """Optimise the token alone on one fixed batch, noise and timestep: the loss must drop."""
    b = tiny_backbone
    ex = ExemplarSet.from_action(b, toy_action)
    g = fixed_generator(0)
    rows = [0, 1, 2, 3]
    latents = ex.sample_latents(rows, g)
    draw = draw_noise(b, latents, g)
    vector = torch.nn.Parameter(word_embedding(b, "person"))
    opt = torch.optim.Adam([vector], lr=0.05)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        text = encode_prompts(b, ex.captions(rows, "<ti-cheer>"), {"<ti-cheer>": vector})
        loss = denoising_loss(b, latents, text, draw)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # a random tiny UNet listens to the text only a little: the drop is small but steady
    assert losses[-1] < losses[0] - 1e-3 and losses[-1] == min(losses), losses


def test_only_the_token_vector_changes_and_the_artifact_reproduces(tiny_backbone, toy_action, subject, tmp_path):
    before = [snapshot(m) for m in (tiny_backbone.unet, tiny_backbone.text_encoder, tiny_backbone.vae)]
    cls = get_method("textual_inversion")
    method = cls(tiny_backbone, build_config(cls.Config, {"train_steps": "3"}, preset="smoke"))
    artifact = method.customize(toy_action, tmp_path / "art")
    for snap, module in zip(before, (tiny_backbone.unet, tiny_backbone.text_encoder, tiny_backbone.vae)):
        assert changed_parameters(snap, module) == []
    assert set(artifact.tensors) == {"token_embedding"}
    assert not torch.equal(artifact.tensors["token_embedding"], word_embedding(tiny_backbone, "person"))
    assert len(artifact.meta["loss_history"]) == 3
    first = method.generate(artifact, subject, [5, 6])
    again = method.generate(Artifact.load(artifact.path), subject, [5, 6])
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    assert first[0].size == (64, 64)


def test_learned_vector_is_used_in_the_prompt(tiny_backbone):
    v = torch.randn(32)
    with_token = encode_prompts(tiny_backbone, ["a man <ti-x>"], {"<ti-x>": v})
    other = encode_prompts(tiny_backbone, ["a man <ti-x>"], {"<ti-x>": -v})
    plain = encode_prompts(tiny_backbone, ["a man"])
    assert not torch.allclose(with_token, other)
    # positions before the token are unaffected (causal text encoder)
    assert torch.allclose(with_token[0, :3], plain[0, :3], atol=1e-6)


def test_text_only_sd_uses_the_phrase(tiny_backbone, toy_action, subject, tmp_path):
    cls = get_method("sd")
    method = cls(tiny_backbone, build_config(cls.Config, preset="smoke"))
    artifact = method.customize(toy_action, tmp_path / "sd")
    assert artifact.meta["action_text"] == toy_action.phrase and artifact.tensors == {}
    assert len(method.generate(artifact, subject, [1, 2])) == 2
