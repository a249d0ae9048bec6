"""ADI: the masks on a hand-computed example, one batched backward == three separate ones, the
masked update, the P+ equivalence with masks off, the action-different cache, and the contract."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from actionbench.errors import ConfigError
from actionbench.layerwise import layerwise_processors, num_layers
from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method
from actionbench.training import (
    ExemplarSet,
    draw_noise,
    fixed_generator,
    make_optimizer,
    word_embedding,
)
from actionbench.methods import adi_samples
from helpers import changed_parameters, snapshot

TOKEN = "<adi-test>"


@pytest.fixture(scope="module")
def adi():
    import actionbench.methods.adi as module

    return module


@pytest.fixture(scope="module")
def two_exemplars(toy_action):
    """The smallest action ADI accepts: two exemplars, so each anchor has a context-different partner."""
    from actionbench.dataset import Action

    return Action(toy_action.id, toy_action.phrase, toy_action.exemplars[:2])


def config(adi, **overrides):
    return build_config(adi.ADIConfig, {k: str(v) for k, v in overrides.items()}, preset="smoke")


# --- the masks on a hand example -----------------------------------------------------------

# Two layer tokens (L=2) of four channels (D=4). Differences chosen so every threshold is known:
#   layer 0: dg_c = [.1 .4 .2 .3]  median .25  -> m_c = [1 0 1 0]
#            dg_a = [.5 .6 .05 .01] median .275 -> m_a = [1 1 0 0]   m = [1 0 0 0]
#   layer 1: dg_c = [4 3 2 1]      median 2.5  -> m_c = [0 0 1 1]
#            dg_a = [1 2 3 4]      median 2.5  -> m_a = [0 0 1 1]   m = [0 0 1 1]
G_ANCHOR = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0]])
DG_C = torch.tensor([[0.1, 0.4, 0.2, 0.3], [4.0, 3.0, 2.0, 1.0]])
DG_A = torch.tensor([[0.5, 0.6, 0.05, 0.01], [1.0, 2.0, 3.0, 4.0]])
SIGN = torch.tensor([[1.0, -1.0, -1.0, 1.0], [1.0, 1.0, -1.0, -1.0]])  # |g_a - g_x| ignores the sign


def test_quantile_thresholds_by_hand(adi):
    assert torch.allclose(adi.quantile_threshold(DG_C, 0.5), torch.tensor([[0.25], [2.5]]))
    assert torch.allclose(adi.quantile_threshold(DG_A, 0.5), torch.tensor([[0.275], [2.5]]))
    # one quantile over all 8 channels: sorted dg_c = .1 .2 .3 .4 1 2 3 4 -> median (0.4 + 1) / 2
    assert torch.allclose(adi.quantile_threshold(DG_C, 0.5, per_token=False), torch.tensor([[0.7]]))
    assert torch.allclose(adi.quantile_threshold(DG_C, 0.25), torch.tensor([[0.175], [1.75]]))


def test_masks_by_hand(adi):
    g_context = G_ANCHOR + SIGN * DG_C
    g_action = G_ANCHOR - SIGN * DG_A
    m_c = adi.context_mask(G_ANCHOR, g_context, adi.quantile_threshold(DG_C, 0.5))
    m_a = adi.action_mask(G_ANCHOR, g_action, adi.quantile_threshold(DG_A, 0.5))
    assert m_c.tolist() == [[True, False, True, False], [False, False, True, True]]
    assert m_a.tolist() == [[True, True, False, False], [False, False, True, True]]
    assert adi.merge_masks(m_c, m_a).tolist() == [[True, False, False, False], [False, False, True, True]]
    assert adi.merge_masks(None, m_a) is m_a and adi.merge_masks(None, None) is None

    # the same through the config, per threshold mode
    per_token = adi.adi_mask(config(adi), G_ANCHOR, g_context, g_action)
    assert per_token.tolist() == [[True, False, False, False], [False, False, True, True]]
    # global median: dg_c 0.7 keeps all of layer 0; dg_a (0.6 + 1) / 2 = 0.8 keeps all of layer 1
    global_q = adi.adi_mask(config(adi, mask_threshold="global_quantile"), G_ANCHOR, g_context, g_action)
    assert global_q.tolist() == [[False] * 4, [False] * 4]
    absolute = adi.adi_mask(config(adi, mask_threshold="absolute", context_threshold=0.35, action_threshold=0.45),
                            G_ANCHOR, g_context, g_action)
    assert absolute.tolist() == [[True, False, False, False], [False] * 4]
    # one mask switched off: the other alone
    only_c = adi.adi_mask(config(adi), G_ANCHOR, g_context, None)
    assert torch.equal(only_c, m_c)

    # the update: g~ = m * g(a,c), averaged over the anchors of the batch
    grads = torch.stack([G_ANCHOR, g_context, g_action])[:, None]  # (G=3, B=1, L, D)
    update, mask = adi.masked_gradient(config(adi), grads, ["anchor", "context", "action"])
    assert torch.equal(update, G_ANCHOR * per_token.float()) and torch.equal(mask[0], per_token)


def test_config_errors_teach(adi):
    with pytest.raises(ConfigError, match="context_threshold"):
        config(adi, mask_threshold="absolute")
    with pytest.raises(ConfigError, match="beta"):
        config(adi, beta=1.5)
    with pytest.raises(ConfigError, match="mask_threshold must be one of"):
        config(adi, mask_threshold="median")


# --- one batched backward == three separate backward passes --------------------------------


def _fixed_pairs(backbone, action, batch=2):
    """Anchor rows, context-different rows, stand-in action-different rows (flipped anchors), one draw."""
    ex = ExemplarSet.from_action(backbone, action)
    g = fixed_generator(0)
    anchor = ex.sample_latents(range(batch), g)
    context = ex.sample_latents(range(batch, 2 * batch), g)
    action_diff = anchor.flip(-1) + 0.1 * torch.randn(anchor.shape, generator=g)
    draw = draw_noise(backbone, anchor, g)
    captions = ex.captions(range(batch), TOKEN) + ex.captions(range(batch, 2 * batch), TOKEN) \
        + ex.captions(range(batch), TOKEN)
    return torch.cat([anchor, context, action_diff]), captions, draw


@pytest.mark.parametrize("layerwise,batch", [(True, 2), (False, 1)])
def test_batched_gradients_equal_separate_backward_passes(adi, tiny_backbone, toy_action, layerwise, batch):
    b = tiny_backbone
    latents, captions, draw = _fixed_pairs(b, toy_action, batch)
    n_tokens = num_layers(b) if layerwise else 1
    identifiers = torch.randn(n_tokens, 32, generator=fixed_generator(4))
    with layerwise_processors(b.unet):
        losses, grads = adi.per_sample_gradients(b, identifiers, TOKEN, latents, captions,
                                                 adi.shared_draw(draw, 3), n_groups=3)
        assert grads.shape == (3, batch, n_tokens, 32)
        for k in range(3):
            rows = slice(k * batch, (k + 1) * batch)
            for i in range(batch):  # one backward per sample
                v = identifiers.clone().requires_grad_(True)
                one = adi.batched_losses(b, v[None, None], TOKEN, latents[rows][i : i + 1],
                                         captions[rows][i : i + 1],
                                         type(draw)(draw.noise[i : i + 1], draw.timesteps[i : i + 1]))
                one.sum().backward()
                assert torch.allclose(one.detach()[0, 0], losses[k, i], rtol=1e-5, atol=1e-7)
                assert torch.allclose(v.grad, grads[k, i], rtol=1e-4, atol=1e-9), (k, i)
        assert not torch.allclose(grads[0], grads[1]) and not torch.allclose(grads[0], grads[2])


# --- the optimisation --------------------------------------------------------------------------


def test_adi_loss_falls_on_a_fixed_batch(adi, tiny_backbone, toy_action):
    b = tiny_backbone
    latents, captions, draw = _fixed_pairs(b, toy_action, 1)
    cfg = config(adi)
    identifiers = torch.nn.Parameter(word_embedding(b, "person")[None].repeat(num_layers(b), 1))
    opt = torch.optim.Adam([identifiers], lr=0.05)
    anchor_losses = []
    with layerwise_processors(b.unet):
        for _ in range(8):
            opt.zero_grad()
            losses, grads = adi.per_sample_gradients(b, identifiers, TOKEN, latents, captions,
                                                     adi.shared_draw(draw, 3), n_groups=3)
            identifiers.grad, _ = adi.masked_gradient(cfg, grads, ["anchor", "context", "action"])
            opt.step()
            anchor_losses.append(losses[0].mean().item())
    assert anchor_losses[-1] < anchor_losses[0] - 1e-4, anchor_losses


def test_masked_update_changes_only_unmasked_channels(adi, tiny_backbone, toy_action):
    b = tiny_backbone
    latents, captions, draw = _fixed_pairs(b, toy_action, 1)
    cfg = config(adi)
    identifiers = torch.nn.Parameter(word_embedding(b, "person")[None].repeat(num_layers(b), 1))
    before = identifiers.detach().clone()
    optimizer = make_optimizer([identifiers], 5e-3)  # the method's AdamW
    with layerwise_processors(b.unet):
        _, grads = adi.per_sample_gradients(b, identifiers, TOKEN, latents, captions, adi.shared_draw(draw, 3), 3)
    identifiers.grad, mask = adi.masked_gradient(cfg, grads, ["anchor", "context", "action"])
    optimizer.step()
    changed = identifiers.detach() != before
    mask = mask[0]
    assert 0 < mask.float().mean() < 0.5  # the intersection keeps fewer than either mask (beta 0.5)
    assert not changed[~mask].any()  # masked channels did not move
    assert changed[mask & (grads[0, 0] != 0)].all()  # kept channels did


def _customize(name, backbone, action, out, **overrides):
    cls = get_method(name)
    method = cls(backbone, build_config(cls.Config, {k: str(v) for k, v in overrides.items()}, preset="smoke"))
    return method, method.customize(action, out)


def test_with_both_masks_off_adi_is_p_plus(tiny_backbone, two_exemplars, tmp_path):
    b = tiny_backbone
    common = {"train_steps": 2, "batch_size": 2, "learning_rate": 0.02}
    _, p_plus = _customize("p_plus", b, two_exemplars, tmp_path / "p", **common)
    _, off = _customize("adi", b, two_exemplars, tmp_path / "off", use_context_mask=False, use_action_mask=False,
                        **common)
    expected = p_plus.tensors["layer_embeddings"]
    assert torch.equal(off.tensors["identifier_embeddings"], expected)
    assert off.meta["loss_history"] == p_plus.meta["loss_history"]
    # Masks on but thresholds that keep every channel: the batched three-sample step gives P+'s update.
    _, ones = _customize("adi", b, two_exemplars, tmp_path / "ones", mask_threshold="absolute",
                         context_threshold=math.inf, action_threshold=0.0,
                         action_different_cache_dir=tmp_path / "cache", **common)
    assert ones.meta["masks"]["kept_fraction_history"] == [1.0, 1.0]
    assert torch.allclose(ones.tensors["identifier_embeddings"], expected, atol=1e-5)
    assert np.allclose(ones.meta["loss_history"], p_plus.meta["loss_history"], rtol=1e-5)


def test_only_identifiers_change_cache_is_reused_and_artifact_reproduces(adi, tiny_backbone, two_exemplars, subject,
                                                                        tmp_path, monkeypatch):
    b = tiny_backbone
    calls = []
    real = adi_samples.tune_and_generate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(adi_samples, "tune_and_generate", counting)
    modules = (b.unet, b.text_encoder, b.vae)
    before = [snapshot(m) for m in modules]
    cache = tmp_path / "cache"
    method, first = _customize("adi", b, two_exemplars, tmp_path / "a1", batch_size=2,
                               action_different_cache_dir=cache)
    # tuning the subject-driven copy and training the identifiers left every backbone weight as it was
    for snap, module in zip(before, modules):
        assert changed_parameters(snap, module) == []
    assert len(calls) == len(two_exemplars.exemplars) == 2
    record = first.meta["action_different"]
    assert record["made"] == 2 and record["reused"] == 0 and len(set(record["keys"])) == 2
    provenance = json.loads((cache / record["keys"][0] / "provenance.json").read_text())
    assert provenance["exemplar"]["index"] == 1 and len(provenance["exemplar"]["sha256"]) == 64
    assert provenance["backbone"]["id"] == "tiny" and provenance["settings"]["tune_steps"] == 1
    assert (cache / record["keys"][0] / provenance["images"][0]["file"]).is_file()
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]

    # Second run: every action-different image comes from the cache, none is made.
    _, second = _customize("adi", b, two_exemplars, tmp_path / "a2", batch_size=2, action_different_cache_dir=cache)
    assert len(calls) == 2
    assert second.meta["action_different"]["made"] == 0 and second.meta["action_different"]["reused"] == 2
    assert second.meta["action_different"]["keys"] == record["keys"]
    assert torch.equal(second.tensors["identifier_embeddings"], first.tensors["identifier_embeddings"])
    # Different generation settings are a different cache entry.
    assert adi.action_different_settings(config(adi, action_different_tune_steps=2)) != provenance["settings"]
    # ... while another identifier seed or mask setting reuses the same images
    assert adi.action_different_settings(config(adi, seed=7, beta=0.3)) == provenance["settings"]

    vectors = first.tensors["identifier_embeddings"]
    assert set(first.tensors) == {"identifier_embeddings"} and vectors.shape == (6, 32)
    assert not torch.equal(vectors[0], word_embedding(b, "person"))
    assert first.meta["masks"]["threshold"] == "token_quantile" and first.meta["masks"]["beta"] == 0.5
    assert first.meta["masks"]["groups"] == ["anchor", "context", "action"]
    images = method.generate(first, subject, [3, 4])
    again = method.generate(Artifact.load(first.path), subject, [3, 4])
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(images, again))


def test_copies_tuned_together_take_the_steps_of_copies_tuned_alone(adi, tiny_backbone, two_exemplars):
    """The failure it prevents: batching the action-different tunings (a speed setting, not part of the
    cache key) silently changing what each copy learns, e.g. by mixing the copies' gradients or draws."""
    b = tiny_backbone
    settings = dict(adi.action_different_settings(config(adi, action_different_tune_steps=4,
                                                         action_different_tune_lr=1e-3,
                                                         action_different_inference_steps=2)))
    images = [e.image() for e in two_exemplars.exemplars]
    before = snapshot(b.unet)
    together = adi_samples.tune_and_generate(b, images, settings, [11, 12])
    alone = [adi_samples.tune_and_generate(b, [image], settings, [seed])[0] for image, seed in zip(images, [11, 12])]
    assert changed_parameters(before, b.unet) == []
    for (images_t, history_t), (images_a, history_a) in zip(together, alone):
        assert len(history_t) == 4 and np.allclose(history_t, history_a, rtol=1e-4, atol=1e-7)
        for x, y in zip(images_t, images_a):  # float tolerance through 2 sampler steps: a level or two of 255
            assert np.abs(np.asarray(x, dtype=float) - np.asarray(y, dtype=float)).mean() < 0.5
    # the two copies did learn different things (each saw only its own image)
    assert not np.allclose(together[0][1], together[1][1])


def test_tune_batch_makes_an_action_in_one_pass_and_keeps_one_cache_entry_per_exemplar(
        adi, tiny_backbone, two_exemplars, tmp_path, monkeypatch):
    calls = []
    real = adi_samples.tune_and_generate
    monkeypatch.setattr(adi_samples, "tune_and_generate", lambda b, images, *a: calls.append(len(images))
                        or real(b, images, *a))
    cfg = config(adi, action_different_tune_batch=2, action_different_cache_dir=tmp_path)
    made = adi_samples.action_different_samples(tiny_backbone, two_exemplars.exemplars, cfg)
    assert calls == [2] and [record["made"] for _, record in made] == [True, True]
    for _, record in made:
        provenance = json.loads((Path(record["folder"]) / "provenance.json").read_text())
        assert provenance["tuned_together"] == 2 and "tune_batch" not in json.dumps(provenance["settings"])
    # the batch is not part of the key: one at a time finds the same entries
    again = adi_samples.action_different_samples(tiny_backbone, two_exemplars.exemplars,
                                                 config(adi, action_different_cache_dir=tmp_path))
    assert calls == [2] and [r["key"] for _, r in again] == [r["key"] for _, r in made]
    with pytest.raises(ConfigError, match="tune_batch must be >= 1"):
        config(adi, action_different_tune_batch=0)


def test_ablations_are_config_switches(tiny_backbone, two_exemplars, subject, tmp_path):
    """`--set use_action_mask=false --set layerwise=false`: one shared token, context mask only."""
    method, art = _customize("adi", tiny_backbone, two_exemplars, tmp_path / "abl", use_action_mask="false",
                             layerwise="false", batch_size=2)
    assert art.tensors["identifier_embeddings"].shape == (1, 32)
    assert art.meta["masks"]["groups"] == ["anchor", "context"] and art.meta["action_different"]["made"] == 0
    assert len(method.generate(Artifact.load(art.path), subject, [1])) == 1


def test_random_mask_control_thins_like_adi_without_pair_samples(adi, tiny_backbone, two_exemplars, tmp_path,
                                                                 monkeypatch):
    """The failure it prevents: crediting ADI's channel choice for what thinning the gradient alone does."""
    monkeypatch.setattr(adi_samples, "tune_and_generate", lambda *a, **k: pytest.fail("the control makes no ā samples"))
    common = {"train_steps": 6, "batch_size": 2, "learning_rate": 0.02}
    _, control = _customize("adi", tiny_backbone, two_exemplars, tmp_path / "r", mask_threshold="random",
                            random_keep_fraction=0.25, **common)
    kept = control.meta["masks"]["kept_fraction_history"]
    assert control.meta["masks"]["groups"] == ["anchor"] and len(kept) == 6
    assert 0.2 < float(np.mean(kept)) < 0.3  # 6 steps x 2 anchors x L x D channels at p = 0.25
    _, p_plus = _customize("p_plus", tiny_backbone, two_exemplars, tmp_path / "p", **common)
    assert control.meta["loss_history"][0] == pytest.approx(p_plus.meta["loss_history"][0], rel=1e-5)
    assert not torch.allclose(control.tensors["identifier_embeddings"], p_plus.tensors["layer_embeddings"])
    cls = get_method("adi")
    assert build_config(cls.Config, preset="random_masks").mask_threshold == "random"
    assert build_config(cls.Config, preset="smoke,pplus_anchors").batch_size == 8
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*random_masks"):
        build_config(cls.Config, preset="nope")


def test_oracle_samples_come_from_the_world_and_need_no_tuning(adi, tiny_backbone, two_exemplars, tmp_path,
                                                                monkeypatch):
    """The failure it prevents: an 'oracle' row that secretly tuned a model, or that silently falls back."""
    import dataclasses

    from PIL import Image

    from actionbench.dataset import Action

    monkeypatch.setattr(adi_samples, "tune_and_generate", lambda *a, **k: pytest.fail("the oracle tunes nothing"))
    drawn = []

    def oracle(n):
        drawn.append(n)
        return [Image.new("RGB", (64, 64), (40 * k, 90, 200)) for k in range(n)]

    with_oracle = Action(two_exemplars.id, two_exemplars.phrase,
                         tuple(dataclasses.replace(e, oracle=oracle) for e in two_exemplars.exemplars))
    _, artifact = _customize("adi", tiny_backbone, with_oracle, tmp_path / "o", action_different_source="oracle",
                             action_different_images=2, train_steps=2, batch_size=2)
    assert drawn == [2, 2] and artifact.meta["action_different"]["keys"] == ["oracle", "oracle"]
    with pytest.raises(ConfigError, match="action_different.source=oracle needs a rendered world"):
        _customize("adi", tiny_backbone, two_exemplars, tmp_path / "x", action_different_source="oracle")


def test_the_action_different_settings_are_one_group_recorded_and_accepted_under_their_flat_names():
    from actionbench.api.config import build_config
    from actionbench.api.registry import get_suite
    from actionbench.methods.adi import ADIConfig

    dotted = build_config(ADIConfig, {"action_different.tune_steps": 3, "action_different.source": "oracle"})
    flat = build_config(ADIConfig, {"action_different_tune_steps": 3, "action_different_source": "oracle"})
    assert dotted == flat and dotted.action_different.tune_steps == 3
    recorded = dotted.to_dict()
    assert "action_different" not in recorded and recorded["action_different_tune_steps"] == 3
    assert list(recorded)[-12:] == [f"action_different_{f}" for f in (
        "images", "prompts", "subject_prompt", "tune_steps", "tune_lr", "tune_params", "inference_steps",
        "guidance_scale", "negative_prompt", "source", "tune_batch", "cache_dir")]  # where the flat fields were
    # a recorded config builds back into the same config (reproduce, rejudge)
    assert build_config(ADIConfig, {k: v for k, v in recorded.items() if k != "sampler"}).hash() == dotted.hash()
    # the shipped protocol writes the flat name; the suite hands it to the group
    settings = get_suite("mini").settings_for("adi", ADIConfig)
    assert build_config(ADIConfig, settings).action_different.tune_steps == 175
    with pytest.raises(ConfigError, match="tune_batch must be >= 1"):
        build_config(ADIConfig, {"action_different.tune_batch": 0})
    with pytest.warns(DeprecationWarning, match="is now `config.action_different.tune_steps`"):
        assert dotted.action_different_tune_steps == 3  # an adapter reading the old attribute, told where it went
    with pytest.raises(ConfigError, match="has no setting 'tune_step'; did you mean tune_steps"):
        build_config(ADIConfig, {"action_different.tune_step": 3})
