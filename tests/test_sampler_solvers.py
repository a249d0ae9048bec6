"""The sampler's solver: DDIM, DPM-Solver++ 2M or UniPC from diffusers, checked before compute, and the mini
protocol's rule 1 choosing the fewest steps over all three."""
from __future__ import annotations

import numpy as np
import pytest

from actionbench.api.config import SamplerConfig
from actionbench.errors import ConfigError


def test_an_unknown_solver_is_refused_with_the_names_it_takes():
    with pytest.raises(ConfigError, match="dpmpp_2m") as caught:
        SamplerConfig(solver="dpmpp")
    assert "did you mean dpmpp_2m" in str(caught.value)


def test_each_solver_draws_images_and_ddim_stays_the_default():
    import torch

    from actionbench.backbone import load_backbone
    from actionbench.training import encode_prompts, sample_images

    torch.set_num_threads(1)
    backbone = load_backbone("tiny")
    prompt = encode_prompts(backbone, ["a photo of a cat"])

    def draw(**kw):
        return [np.asarray(i, dtype=float) for i in sample_images(backbone, prompt, [0, 1],
                                                                  SamplerConfig(num_inference_steps=4, **kw))]

    default, ddim = draw(), draw(solver="ddim")
    assert all(np.allclose(a, b, atol=1) for a, b in zip(default, ddim))
    for solver in ("dpmpp_2m", "unipc"):
        images = draw(solver=solver)
        assert [i.shape for i in images] == [i.shape for i in ddim]
        assert any(np.abs(a - b).mean() > 0.5 for a, b in zip(images, ddim)), solver  # another solver, other images


def test_rule_1_takes_the_fewest_steps_over_all_solvers_ties_to_the_first():
    from actionbench.worlds.mini.lab.protocol import choose_sampler

    agreement = {"ddim": {10: 0.9, 20: 0.99}, "dpmpp_2m": {10: 0.98, 20: 1.0}, "unipc": {8: 0.97, 10: 0.99}}
    assert choose_sampler(agreement) == ("dpmpp_2m", 10)
    assert choose_sampler({"ddim": {10: 0.5}, "unipc": {10: 0.6}}) == ("ddim", 50)  # none agrees: the reference


def test_a_protocol_sets_the_solver_only_when_it_chose_another_than_ddim():
    from actionbench.worlds.mini.protocol import method_settings

    old = {"sampler": {"num_inference_steps": 40}, "rows": []}
    assert method_settings(old)["*"] == {"sampler.num_inference_steps": 40}
    new = {"sampler": {"num_inference_steps": 10, "solver": "unipc"}, "rows": []}
    assert method_settings(new)["*"] == {"sampler.num_inference_steps": 10, "sampler.solver": "unipc"}
