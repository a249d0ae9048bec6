"""ReVersion: one token with the steering loss and relation-focal timesteps; nothing else learns."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actionbench.errors import ConfigError
from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method
from actionbench.training import ExemplarSet, draw_noise, fixed_generator, word_embedding
from helpers import changed_parameters, snapshot

import actionbench.methods.reversion as reversion


def test_objective_falls_on_a_fixed_batch(tiny_backbone, toy_action):
    """Denoising + steering loss on one fixed batch (latents, noise, timesteps, words): optimising <R> lowers it."""
    b = tiny_backbone
    cfg = reversion.ReVersionConfig()
    ex = ExemplarSet.from_action(b, toy_action)
    words = reversion.SteeringWords(b.tokenizer, cfg.action_basis, ex.templates)
    g = fixed_generator(0)
    rows = [0, 2]
    latents = ex.sample_latents(rows, g)
    probs = reversion.relation_focal_probabilities(b.scheduler.config.num_train_timesteps, cfg.importance_alpha)
    draw = draw_noise(b, latents, g, timesteps=reversion.sample_timesteps(probs, len(rows), g))
    positives, negatives = words.positives(len(rows), cfg.num_positives, g), words.negatives(rows)
    vector = torch.nn.Parameter(word_embedding(b, cfg.initializer_word))
    opt = torch.optim.Adam([vector], lr=0.05)
    totals, steers = [], []
    for _ in range(6):
        opt.zero_grad()
        total, _, steer = reversion.reversion_objective(b, cfg, "<reversion-cheer>", vector, latents,
                                                        ex.captions(rows, "<reversion-cheer>"), draw, positives, negatives)
        total.backward()
        opt.step()
        totals.append(total.item())
        steers.append(steer.item())
    assert totals[-1] < totals[0] - 1e-3, totals
    assert steers[-1] < steers[0], steers


def test_steering_loss_by_hand():
    """Two unit vectors, tau = 1: L = log(e^1 + e^0) - log(e^1) = log(1 + 1/e)."""
    token = torch.tensor([2.0, 0.0], requires_grad=True)  # the norm does not matter (cosine)
    loss = reversion.steering_loss(token, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]]), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    loss.backward()
    assert token.grad is not None
    # no negatives: the token is only among positives, the loss is 0
    assert reversion.steering_loss(token, torch.eye(2), torch.zeros(0, 2), 0.07).item() == pytest.approx(0.0, abs=1e-6)


def test_steering_loss_prefers_an_action_word_to_a_random_vector(tiny_backbone):
    b = tiny_backbone
    words = reversion.SteeringWords(b.tokenizer, ("cheering", "sitting", "jumping", "praying"),
                                    ["Excited bearded man {} over pink background."])
    positives = reversion.embeddings_of(b, [i for ids in words.basis_ids for i in ids])
    negatives = reversion.embeddings_of(b, words.negatives([0]))
    as_word = reversion.steering_loss(word_embedding(b, "sitting"), positives, negatives, 0.07)
    random = reversion.steering_loss(torch.randn(positives.shape[1], generator=fixed_generator(3)), positives, negatives, 0.07)
    as_negative = reversion.steering_loss(word_embedding(b, "pink"), positives, negatives, 0.07)
    assert as_word < random < as_negative, (as_word, random, as_negative)


def test_steering_words_leave_out_stop_words_basis_and_punctuation(tiny_backbone):
    tok = tiny_backbone.tokenizer
    words = reversion.SteeringWords(tok, ("cheering", "sitting"), ["A woman {} over the pink, isolated background; sitting."])
    assert tok.convert_ids_to_tokens(words.negative_ids[0]) == ["woman</w>", "pink</w>", "isolated</w>", "background</w>"]
    assert len(words.positives(3, 2, fixed_generator(0))) == 3 * 2  # both words are single tokens
    with pytest.raises(ConfigError):
        words.positives(1, 3, fixed_generator(0))
    with pytest.raises(ConfigError):
        reversion.SteeringWords(tok, (), ["{}"])


def test_relation_focal_sampler_matches_f():
    """Histogram of 200k draws against f(t) = (1 - 0.5 cos(pi t / T)) / T, by quarter of [0, T)."""
    T, alpha = 1000, 0.5
    probs = reversion.relation_focal_probabilities(T, alpha)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert probs[-1] / probs[0] == pytest.approx(1.5 / 0.5, rel=1e-3)  # f(T-1)/f(0) -> (1+alpha)/(1-alpha)
    draws = reversion.sample_timesteps(probs, 200_000, fixed_generator(0))
    counts = torch.bincount(draws // (T // 4), minlength=4).double() / draws.numel()
    # integral of 1 - alpha cos(pi x) over each quarter of [0, 1]
    edges = [0.0, 0.25, 0.5, 0.75, 1.0]
    expected = [(b - a) - alpha / math.pi * (math.sin(math.pi * b) - math.sin(math.pi * a)) for a, b in zip(edges, edges[1:])]
    assert counts.tolist() == pytest.approx(expected, abs=0.005)
    # high-noise steps (large t) are drawn about 2.6x as often as low-noise ones
    assert (counts[3] / counts[0]).item() == pytest.approx(expected[3] / expected[0], rel=0.05)
    assert expected[3] / expected[0] == pytest.approx(2.64, abs=0.01)
    uniform = reversion.relation_focal_probabilities(T, 0.0)
    assert torch.allclose(uniform, torch.full((T,), 1 / T))
    with pytest.raises(ConfigError):
        reversion.relation_focal_probabilities(T, 1.5)


def test_only_the_token_changes_and_the_artifact_reproduces(tiny_backbone, toy_action, subject, tmp_path):
    modules = (tiny_backbone.unet, tiny_backbone.text_encoder, tiny_backbone.vae)
    before = [snapshot(m) for m in modules]
    cls = get_method("reversion")
    method = cls(tiny_backbone, build_config(cls.Config, {"train_steps": "2"}, preset="smoke"))
    artifact = method.customize(toy_action, tmp_path / "art")
    for snap, module in zip(before, modules):
        assert changed_parameters(snap, module) == []
    assert set(artifact.tensors) == {"token_embedding"}
    assert not torch.equal(artifact.tensors["token_embedding"], word_embedding(tiny_backbone, "and"))
    meta = artifact.meta
    assert len(meta["loss_history"]) == len(meta["steer_loss_history"]) == len(meta["denoise_loss_history"]) == 2
    assert all(s > 0 for s in meta["steer_loss_history"])
    first = method.generate(artifact, subject, [5, 6])
    again = method.generate(Artifact.load(artifact.path), subject, [5, 6])
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))


def test_config_parses_the_basis_and_checks_alpha():
    cls = get_method("reversion")
    cfg = build_config(cls.Config, {"action_basis": "sitting,standing", "steer_loss_weight": "0"})
    assert cfg.action_basis == ("sitting", "standing") and cfg.steer_loss_weight == 0.0
    assert cls.Config().steer_loss_weight == 0.01 and cls.Config().temperature == 0.07
