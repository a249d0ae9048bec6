"""Memory and speed options change nothing beyond tolerance on the tiny backbone.

--dtype bf16, --attention classic (vs SDPA), --vae-slicing, --gradient-checkpointing, and the
generation batch size (SamplerConfig.batch_size).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actionbench.backbone import apply_options, load_backbone
from actionbench.api.config import SamplerConfig
from actionbench.training import denoising_loss, draw_noise, encode_prompts, sample_images

CFG = SamplerConfig(num_inference_steps=2, batch_size=2)
SEEDS = [3, 4]
PROMPT = ["a man cheering"]


def _draw(backbone, config=CFG):
    images = sample_images(backbone, encode_prompts(backbone, PROMPT), SEEDS, config)
    return np.stack([np.asarray(im, dtype=np.float32) for im in images])


@pytest.fixture(scope="module")
def reference():
    return _draw(load_backbone("tiny"))


def test_defaults_are_sdpa_no_slicing_no_checkpointing(tiny_backbone):
    from diffusers.models.attention_processor import AttnProcessor2_0

    assert all(isinstance(p, AttnProcessor2_0) for p in tiny_backbone.unet.attn_processors.values())
    assert not tiny_backbone.vae.use_slicing and not tiny_backbone.unet.is_gradient_checkpointing
    assert "attention" not in tiny_backbone.fingerprint()


def test_classic_attention_matches_sdpa(reference):
    from diffusers.models.attention_processor import AttnProcessor

    backbone = load_backbone("tiny", attention="classic")
    assert all(type(p) is AttnProcessor for p in backbone.unet.attn_processors.values())
    assert backbone.fingerprint()["attention"] == "classic"  # recorded: the last bits may differ
    assert np.abs(_draw(backbone) - reference).max() <= 2  # out of 255


def test_vae_slicing_gives_the_same_images(reference):
    backbone = load_backbone("tiny", vae_slicing=True)
    assert backbone.vae.use_slicing
    assert np.abs(_draw(backbone) - reference).max() <= 1


def test_generation_batch_size_does_not_change_images(reference, tiny_backbone):
    assert np.abs(_draw(tiny_backbone, CFG.replace(batch_size=1)) - reference).max() <= 1


def test_bf16_stays_close_to_fp32(reference):
    backbone = load_backbone("tiny", dtype="bf16")
    assert backbone.fingerprint()["dtype"] == "bfloat16"
    diff = np.abs(_draw(backbone) - reference)
    assert diff.mean() < 8 and diff.max() < 96  # bf16 keeps 8 bits of mantissa: close, not equal


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    def loss_and_grad(backbone):
        torch.manual_seed(0)
        latents = torch.randn(2, 4, backbone.latent_size, backbone.latent_size)
        vector = torch.zeros(2, 77, 32, requires_grad=True)  # a learned conditioning, as textual inversion has
        cond = encode_prompts(backbone, PROMPT * 2) + vector
        draw = draw_noise(backbone, latents, torch.Generator().manual_seed(1))
        backbone.unet.train()  # diffusers checkpoints only in training mode with grad enabled
        loss = denoising_loss(backbone, latents, cond, draw)
        loss.backward()
        backbone.unet.eval()
        return loss.detach(), vector.grad

    plain = loss_and_grad(load_backbone("tiny"))
    checkpointed = load_backbone("tiny", gradient_checkpointing=True)
    assert checkpointed.unet.is_gradient_checkpointing
    again = loss_and_grad(checkpointed)
    assert torch.allclose(plain[0], again[0], atol=1e-6) and torch.allclose(plain[1], again[1], atol=1e-6, rtol=1e-4)
    apply_options(checkpointed)  # back to the defaults
    assert not checkpointed.unet.is_gradient_checkpointing
