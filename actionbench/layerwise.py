"""Per-layer prompt conditioning (P+ / extended textual inversion; ADI's layer-wise identifiers).

Stable Diffusion feeds the same prompt embedding ``y`` (B, 77, D) to every cross-attention
layer. P+ (Voynov et al. 2023) gives each cross-attention layer ``l`` its own prompt embedding
``y_l``, built from the same words but with layer ``l``'s own vector for the placeholder token:

    attn2_l(h, y)  ->  attn2_l(h, y_l),   y_l = text_encoder(prompt with v_l at the token)

How it is wired here:

- ``encode_layerwise`` encodes the L per-layer prompts in one text-encoder call and returns
  ``(L, B, 77, D)``;
- ``layerwise_processors(unet)`` installs, for the duration of a ``with`` block, a wrapper
  around every attention processor: cross-attention layer ``l`` (counted from the model with
  ``cross_attention_layer_names``, in forward order) takes ``layerwise_states[l]`` from
  ``cross_attention_kwargs``; self-attention layers accept the keyword and drop it (so
  diffusers does not warn about an unexpected argument). Without the keyword the wrapped
  processors behave exactly like the originals. On exit the original processors come back;
- ``sample_layerwise`` samples with classifier-free guidance: it builds the (L, 2n, 77, D)
  tensor itself, the negative prompt for the unconditional half first, as the pipeline
  concatenates its batch.

Learned vectors ``(1, D)`` (one token shared by all layers, e.g. ADI's ``layerwise=false``
ablation) take the ordinary path: one prompt embedding, no per-layer states.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch

from .backbone import cross_attention_layer_names
from .api.config import SamplerConfig
from .errors import ArtifactError, ConfigError
from .training import encode_prompts, sample_images

LAYERWISE_KWARG = "layerwise_states"
"""The ``cross_attention_kwargs`` key holding the (L, B, 77, D) per-layer prompt embeddings."""


class LayerwiseAttnProcessor:
    """Wraps an attention processor; cross-attention layer ``layer`` reads its own prompt embedding.

    ``layer=None`` (self-attention) only swallows the keyword. Batches: the per-layer tensor
    must have the UNet batch's size, or 1 (broadcast).
    """

    def __init__(self, inner, layer: int | None):
        self.inner = inner
        self.layer = layer

    # The explicit ``layerwise_states`` parameter is what diffusers' Attention.forward inspects
    # to decide which cross_attention_kwargs a processor expects (others are warned about).
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 layerwise_states=None):
        if self.layer is not None and layerwise_states is not None:
            if self.layer >= len(layerwise_states):
                raise ConfigError(
                    f"per-layer prompt embeddings hold {len(layerwise_states)} layers but cross-attention layer "
                    f"{self.layer} needs its own; encode one prompt per cross-attention layer "
                    "(actionbench.layerwise.encode_layerwise)"
                )
            states = layerwise_states[self.layer]
            batch = hidden_states.shape[0]
            if states.shape[0] == 1 and batch != 1:
                states = states.expand(batch, -1, -1)
            elif states.shape[0] != batch:
                raise ConfigError(
                    f"per-layer prompt embeddings have batch {states.shape[0]}, the UNet batch is {batch}; "
                    "with classifier-free guidance build (L, 2B, 77, D) with the negative half first "
                    "(actionbench.layerwise.sample_layerwise does)"
                )
            encoder_hidden_states = states.to(hidden_states.dtype)
        return self.inner(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                          attention_mask=attention_mask, temb=temb)


@contextlib.contextmanager
def layerwise_processors(unet) -> Iterator[list[str]]:
    """Install per-layer processors on ``unet`` inside the block; restore the originals after.

    Yields the cross-attention processor names in forward order (index ``l`` of the per-layer
    tensor goes to the ``l``-th name). No weight is touched.
    """
    original = dict(unet.attn_processors)
    cross = cross_attention_layer_names(unet)
    index = {name: i for i, name in enumerate(cross)}
    wrapped = {}
    for name, proc in original.items():
        inner = proc.inner if isinstance(proc, LayerwiseAttnProcessor) else proc
        wrapped[name] = LayerwiseAttnProcessor(inner, index.get(name))
    unet.set_attn_processor(wrapped)
    try:
        yield cross
    finally:
        unet.set_attn_processor(dict(original))


def num_layers(backbone) -> int:
    """How many per-layer tokens the backbone's UNet takes (16 for SD 2.1, 6 for ``tiny``)."""
    return len(cross_attention_layer_names(backbone.unet))


def encode_layerwise(backbone, prompts: Sequence[str], token: str, vectors: torch.Tensor,
                     text_encoder=None) -> torch.Tensor:
    """Encode each prompt once per layer, with layer ``l``'s vector at ``token``, in ONE encoder call.

    Args:
        prompts: B prompts containing ``token``.
        vectors: (L, D) one vector per layer, or (L, B, D) one per layer and prompt.

    Returns:
        (L, B, 77, D) per-layer prompt embeddings; gradients flow to ``vectors``.
    """
    prompts = list(prompts)
    b = len(prompts)
    if vectors.dim() == 2:
        vectors = vectors[:, None, :].expand(-1, b, -1)
    if vectors.dim() != 3 or vectors.shape[1] != b:
        raise ConfigError(f"encode_layerwise expects vectors (L, D) or (L, {b}, D), got {tuple(vectors.shape)}")
    n_layers = vectors.shape[0]
    # Row l*B + i is prompt i with layer l's vector: the text encoder sees L*B prompts at once.
    flat = encode_prompts(backbone, prompts * n_layers, {token: vectors.reshape(n_layers * b, -1)},
                          text_encoder=text_encoder)
    return flat.reshape(n_layers, b, *flat.shape[1:])


def identifier_conditioning(backbone, prompts: Sequence[str], token: str,
                            vectors: torch.Tensor) -> tuple[torch.Tensor, dict | None]:
    """UNet conditioning for learned identifiers: ``(encoder_hidden_states, cross_attention_kwargs)``.

    ``vectors`` is (L, D) / (L, B, D) for per-layer tokens (needs ``layerwise_processors``
    installed) or (1, D) / (1, B, D) for one token shared by every layer (plain conditioning).
    """
    if vectors.shape[0] == 1:
        v = vectors[0]
        return encode_prompts(backbone, prompts, {token: v}), None
    states = encode_layerwise(backbone, prompts, token, vectors)
    # encoder_hidden_states must still be a valid tensor; every cross-attention reads its own layer instead.
    return states[0], {LAYERWISE_KWARG: states}


@torch.no_grad()
def sample_layerwise(backbone, states: torch.Tensor, seeds: Sequence[int], sampler: SamplerConfig,
                     negative_states: torch.Tensor | None = None, unet=None) -> list:
    """Sample one image per seed with per-layer prompt embeddings (DDIM + classifier-free guidance).

    Args:
        states: (L, 1, 77, D) for every seed, or (L, len(seeds), 77, D).
        negative_states: (L, 1, 77, D) or (1, 77, D); default the sampler's negative prompt, same for all layers.

    Same seed, same image, whatever the batch: each chunk is sampled with its own per-layer
    tensor, (L, 2n, 77, D) with the unconditional half first when guidance is on.
    """
    unet = unet or backbone.unet
    n_layers = len(cross_attention_layer_names(unet))
    if states.shape[0] != n_layers:
        raise ArtifactError(
            f"{states.shape[0]} per-layer prompt embeddings for a UNet with {n_layers} cross-attention layers; "
            "the artifact was learned on another backbone"
        )
    if negative_states is None:
        negative_states = encode_prompts(backbone, [sampler.negative_prompt])
    if negative_states.dim() == 3:
        negative_states = negative_states[None].expand(n_layers, -1, -1, -1)
    # Mirrors StableDiffusionPipeline.do_classifier_free_guidance.
    guided = sampler.guidance_scale > 1 and getattr(unet.config, "time_cond_proj_dim", None) is None
    batch = max(1, int(sampler.batch_size))
    images = []
    with layerwise_processors(unet):
        for start in range(0, len(seeds), batch):
            chunk = list(seeds[start : start + batch])
            n = len(chunk)
            cond = states.expand(-1, n, -1, -1) if states.shape[1] == 1 else states[:, start : start + n]
            uncond = negative_states.expand(-1, n, -1, -1)
            per_layer = torch.cat([uncond, cond], dim=1) if guided else cond
            images += sample_images(backbone, cond[0], chunk, sampler.replace(batch_size=n), negative_prompt_embeds=uncond[0][:1],
                                    unet=unet, cross_attention_kwargs={LAYERWISE_KWARG: per_layer})
    return images


def generate_with_identifiers(backbone, prompt: str, token: str, vectors: torch.Tensor, seeds: Sequence[int],
                              sampler: SamplerConfig) -> list:
    """Images of ``prompt`` with learned identifier vectors: (L, D) per layer, or (1, D) shared."""
    vectors = vectors.to(backbone.device)
    if vectors.dim() != 2:
        raise ArtifactError(f"identifier vectors must be (L, D), got {tuple(vectors.shape)}")
    if vectors.shape[0] == 1:
        return sample_images(backbone, encode_prompts(backbone, [prompt], {token: vectors[0]}), seeds, sampler)
    return sample_layerwise(backbone, encode_layerwise(backbone, [prompt], token, vectors), seeds, sampler)
