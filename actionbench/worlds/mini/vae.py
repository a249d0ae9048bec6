"""The mini model's "VAE": a fixed, exact pixel (un)shuffle, so nothing needs to learn an autoencoder.

A 32x32x3 image is a 16x16x12 latent (``PATCH`` 2, ``LATENT_CHANNELS`` 12).
"""
from __future__ import annotations

import torch

PATCH = 2
LATENT_CHANNELS = 3 * PATCH * PATCH


def _make_vae_class():
    # built on first use: diffusers is a slow import and the class must subclass its mixins
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
    from diffusers.models.modeling_outputs import AutoencoderKLOutput
    from diffusers.models.modeling_utils import ModelMixin

    class PixelShuffleVAE(ModelMixin, ConfigMixin):
        """An exact, non-learned "autoencoder": pixel unshuffle by ``patch`` (latent std ~0).

        Exposes what the pipeline and the training helpers use: ``encode(x).latent_dist``
        (mean, std, sample, mode), ``decode(z).sample``, ``config.scaling_factor`` and
        ``config.block_out_channels`` (its length gives ``vae_scale_factor == patch``).
        """

        @register_to_config
        def __init__(self, patch: int = PATCH, latent_channels: int = LATENT_CHANNELS, scaling_factor: float = 1.0,
                     block_out_channels: tuple = (1, 1), force_upcast: bool = False, shift_factor: float | None = None):
            super().__init__()
            self.register_buffer("_anchor", torch.zeros(1), persistent=False)  # gives the module a dtype/device

        def encode(self, x, return_dict: bool = True):
            z = torch.nn.functional.pixel_unshuffle(x, self.config.patch)
            dist = DiagonalGaussianDistribution(torch.cat([z, torch.full_like(z, -30.0)], dim=1))
            return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

        def decode(self, z, return_dict: bool = True, generator=None):
            x = torch.nn.functional.pixel_shuffle(z, self.config.patch)
            return DecoderOutput(sample=x) if return_dict else (x,)

        # memory options the backbone loader toggles: nothing to slice or tile here
        def enable_slicing(self):
            pass

        def disable_slicing(self):
            pass

        def enable_tiling(self, *args, **kwargs):
            pass

        def disable_tiling(self):
            pass

        def forward(self, x):
            return self.decode(self.encode(x).latent_dist.mode()).sample

    return PixelShuffleVAE


_VAE_CLASS = None


def pixel_vae():
    """A new ``PixelShuffleVAE`` (the class is made once, on first use)."""
    global _VAE_CLASS
    if _VAE_CLASS is None:
        _VAE_CLASS = _make_vae_class()
    return _VAE_CLASS()
