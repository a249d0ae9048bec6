"""The mask-selectivity diagnostic on gradients whose answer is known: context in channels 0-7, action in 8-15."""
from __future__ import annotations

import math

import torch

from actionbench.methods.adi import ADIConfig
from actionbench.worlds.mini.lab.masks import PRESETS, THRESHOLD, kept_ratio, meets_threshold, preset_selectivity, selectivity

L, D = 3, 32
CONTEXT, ACTION = slice(0, 8), slice(8, 16)


def known_gradients(batch: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """An anchor gradient with small noise everywhere; the context changes channels 0-7 (another exemplar of the
    action differs there, and removing the context moves them), the pose changes channels 8-15."""
    g = torch.Generator().manual_seed(seed)

    def noise():
        return 0.01 * torch.randn(batch, L, D, generator=g)

    anchor = torch.randn(batch, L, D, generator=g)
    context_shift, action_shift = torch.zeros(batch, L, D), torch.zeros(batch, L, D)
    context_shift[..., CONTEXT] = 3.0 * torch.randn(batch, L, 8, generator=g)
    action_shift[..., ACTION] = 3.0 * torch.randn(batch, L, 8, generator=g)
    return {"anchor": anchor,
            "context_different": anchor + context_shift + noise(),
            "context_free": anchor - context_shift + noise(),
            "action_different": anchor + action_shift + noise()}


def test_masks_that_know_where_the_context_is_are_read_as_selective():
    rows = selectivity(ADIConfig(), known_gradients())
    # the context mask drops every channel where the context differs: none of its energy is kept
    assert rows["context_mask"]["context"] < 0.05
    assert math.isclose(rows["context_mask"]["kept_fraction"], 0.5, abs_tol=0.02)
    # the action mask keeps the 8 action channels among its 16: twice its kept fraction of the action's energy
    assert math.isclose(rows["action_mask"]["action"], 2.0, rel_tol=0.05)
    # its other 8 channels are drawn from the 24 where the pose changes nothing: a third of the context channels,
    # at a kept fraction of a half, 2/3 of the context's energy per kept fraction
    assert math.isclose(rows["action_mask"]["context"], 2 / 3, abs_tol=0.15)
    assert meets_threshold(rows["both"])


def test_a_random_mask_keeps_its_share_of_any_direction():
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(64, L, D, generator=g)
    mask = torch.rand(64, L, D, generator=g) < 0.3
    assert math.isclose(float(kept_ratio(mask, direction).mean()), 1.0, abs_tol=0.05)


def test_masks_blind_to_the_context_fail_the_threshold():
    grads = known_gradients()
    # another exemplar differs nowhere in particular (the shared signature is in both): the context mask is blind
    grads["context_different"] = grads["anchor"] + 0.5 * torch.randn(grads["anchor"].shape,
                                                                      generator=torch.Generator().manual_seed(2))
    rows = selectivity(ADIConfig(use_action_mask=False), grads)
    assert 0.7 < rows["context_mask"]["context"] < 1.3
    assert not meets_threshold(rows["context_mask"])
    assert THRESHOLD == {"context": 0.6, "action": 1.0}


def test_every_preset_averages_its_draws_before_masking():
    per_draw = [known_gradients(seed=s) for s in range(4)]
    for preset in PRESETS:
        rows = preset_selectivity(ADIConfig(), preset, per_draw)
        assert set(rows) == {"context_mask", "action_mask", "both"}
        assert rows["context_mask"]["context"] < 0.3, preset.name


def test_energies_say_which_part_of_the_exemplar_speaks_loudest():
    from actionbench.worlds.mini.lab.masks import energies

    grads = known_gradients()
    grads["no_attributes"] = grads["anchor"]  # the attributes move nothing here: the context is all background
    grads["no_background"] = grads["context_free"]
    e = energies([grads])
    assert e["attributes"] == 0.0
    assert math.isclose(e["background"], e["context"], rel_tol=1e-6)
    assert math.isclose(e["context"] / e["action"], 1.0, rel_tol=0.3)  # both shifts have the same scale
