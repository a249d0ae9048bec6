"""Exemplars ready for training: images to latent posteriors, caption templates, batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


def image_to_tensor(image, resolution: int) -> torch.Tensor:
    """PIL -> (3, H, W) in [-1, 1], resized (bicubic) and centre-cropped to a square."""
    import numpy as np
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    image = image.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    image = image.resize((resolution, resolution), Image.BICUBIC)
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@torch.no_grad()
def encode_latent_distribution(backbone, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VAE posterior (mean, std) of a batch of images, scaled to the UNet's latent space."""
    vae = backbone.vae
    dist = vae.encode(pixels.to(backbone.device, dtype=vae.dtype)).latent_dist
    scale = vae.config.scaling_factor
    return dist.mean.float() * scale, dist.std.float() * scale


@dataclass
class ExemplarSet:
    """An action's exemplars ready for training: latent posteriors and caption templates."""

    latent_mean: torch.Tensor  # (N, C, h, w)
    latent_std: torch.Tensor
    templates: list[str]
    indices: list[int]  # exemplar numbers (1-based)

    @classmethod
    def from_images(cls, backbone, images: Sequence, templates: Sequence[str], indices: Sequence[int] | None = None,
                    flip: bool = False) -> "ExemplarSet":
        pixels = torch.stack([image_to_tensor(im, backbone.resolution) for im in images])
        if flip:  # horizontal flips double the data; off by default since some actions are one-handed
            pixels = torch.cat([pixels, pixels.flip(-1)])
            templates = list(templates) * 2
            indices = list(indices or range(1, len(images) + 1)) * 2
        mean, std = encode_latent_distribution(backbone, pixels)
        return cls(mean, std, list(templates), list(indices or range(1, len(images) + 1)))

    @classmethod
    def from_action(cls, backbone, action, flip: bool = False) -> "ExemplarSet":
        return cls.from_images(
            backbone,
            [ex.image() for ex in action.exemplars],
            [ex.template for ex in action.exemplars],
            [ex.index for ex in action.exemplars],
            flip=flip,
        )

    def __len__(self) -> int:
        return len(self.templates)

    def sample_latents(self, rows: Sequence[int], generator: torch.Generator) -> torch.Tensor:
        rows_t = torch.as_tensor(list(rows))
        mean, std = self.latent_mean[rows_t], self.latent_std[rows_t]
        return mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)

    def captions(self, rows: Sequence[int], action_text: str) -> list[str]:
        return [self.templates[r].replace("{}", action_text) for r in rows]


def draw_rows(n: int, batch_size: int, generator: torch.Generator) -> list[int]:
    return torch.randint(0, n, (batch_size,), generator=generator).tolist()
