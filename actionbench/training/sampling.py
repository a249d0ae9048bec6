"""Sampling images: the sampler's solver with classifier-free guidance, one generator per image, from a
``SamplerConfig``."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from actionbench.api.config import SamplerConfig

from .text import encode_prompts


@torch.no_grad()
def sample_images(
    backbone,
    prompt_embeds: torch.Tensor,
    seeds: Sequence[int],
    sampler: SamplerConfig,
    negative_prompt_embeds: torch.Tensor | None = None,
    unet=None,
    cross_attention_kwargs: dict | None = None,
    text_encoder=None,
    pipe=None,
    per_seed_inputs: Mapping[str, Sequence] | None = None,
    pipe_kwargs: Mapping | None = None,
) -> list:
    """Sample one image per seed with the sampler's solver and classifier-free guidance, as ``sampler`` says.

    ``prompt_embeds`` is (1, 77, D) for all seeds or (len(seeds), 77, D). Each image gets its
    own generator, so an image depends only on its seed, not on the batch it was drawn in.

    Args:
        pipe: a ready pipeline over the backbone's components (e.g. a ControlNet pipeline) to call
            instead of ``backbone.pipeline(unet, text_encoder)``.
        per_seed_inputs: pipeline argument -> one value per seed (e.g. ``{"image": pose_maps}``),
            passed in the same chunks as the seeds.
        pipe_kwargs: further pipeline arguments, the same for every image.
    """
    pipe = pipe if pipe is not None else backbone.pipeline(unet=unet, text_encoder=text_encoder)
    pipe.scheduler = backbone.fresh_scheduler(sampler.solver)  # the solver asked for, with no state from a last call
    if negative_prompt_embeds is None:
        negative_prompt_embeds = encode_prompts(backbone, [sampler.negative_prompt], text_encoder=text_encoder)
    images = []
    batch = max(1, int(sampler.batch_size))
    for start in range(0, len(seeds), batch):
        chunk = list(seeds[start : start + batch])
        pe = prompt_embeds if prompt_embeds.shape[0] > 1 else prompt_embeds.expand(len(chunk), -1, -1)
        if prompt_embeds.shape[0] > 1:
            pe = prompt_embeds[start : start + len(chunk)]
        ne = negative_prompt_embeds.expand(len(chunk), -1, -1)
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in chunk]
        latents = torch.stack([
            torch.randn((backbone.unet.config.in_channels, backbone.latent_size, backbone.latent_size), generator=g)
            for g in generators
        ]).to(backbone.device, dtype=backbone.unet.dtype)
        out = pipe(
            prompt_embeds=pe.to(backbone.unet.dtype),
            negative_prompt_embeds=ne.to(backbone.unet.dtype),
            num_inference_steps=sampler.num_inference_steps,
            guidance_scale=sampler.guidance_scale,
            height=backbone.resolution,
            width=backbone.resolution,
            latents=latents,
            cross_attention_kwargs=cross_attention_kwargs,
            output_type="pil",
            **{k: list(v[start : start + len(chunk)]) for k, v in (per_seed_inputs or {}).items()},
            **dict(pipe_kwargs or {}),
        )
        images.extend(out.images)
    return images


@torch.no_grad()
def sdedit(backbone, latents: torch.Tensor, prompt_embeds: torch.Tensor, strength: float, sampler: SamplerConfig,
           generator: torch.Generator, negative_prompt_embeds: torch.Tensor | None = None, unet=None) -> torch.Tensor:
    """SDEdit (Meng et al., ICLR 2022): noise ``latents`` to ``strength`` of the sampler's DDIM schedule and
    denoise them back with classifier-free guidance; returns the denoised latents. Always DDIM, whatever
    ``sampler.solver``: SDEdit starts part-way down a schedule, which multistep solvers have no history for.

    ``prompt_embeds`` is (B, 77, D), one per latent. The noise comes from ``generator``. The whole batch
    goes through the UNet at once (guided: unconditional half first)."""
    unet = unet or backbone.unet
    scheduler = backbone.fresh_scheduler("ddim")
    steps = sampler.num_inference_steps
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps[min(int(round(steps * (1 - strength))), steps - 1):]
    if negative_prompt_embeds is None:
        negative_prompt_embeds = encode_prompts(backbone, [sampler.negative_prompt])
    noise = torch.randn(latents.shape, generator=generator)
    z = scheduler.add_noise(latents, noise, timesteps[:1].repeat(len(latents)))
    negative = negative_prompt_embeds.expand(len(z), -1, -1)
    for t in timesteps:
        pred = unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([negative, prompt_embeds])).sample
        pred_uncond, pred_cond = pred.chunk(2)
        z = scheduler.step(pred_uncond + sampler.guidance_scale * (pred_cond - pred_uncond), t, z).prev_sample
    return z
