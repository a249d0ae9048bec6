"""Textual Inversion (Gal et al., ICLR 2023), adapted to actions as in the ADI paper.

One placeholder token ``<action>`` is added and initialised from a word; only its embedding
learns, with the denoising loss on the exemplars captioned by their templates:

    v* = argmin_v E_{z, y, eps, t} || eps - eps_theta(z_t, t, y(v)) ||^2

Generation: "{subject} <action>".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.training import (
    ExemplarSet,
    denoising_loss,
    draw_noise,
    draw_rows,
    encode_prompts,
    fixed_generator,
    make_optimizer,
    placeholder_for,
    run_training,
    sample_images,
    word_embedding,
)


@dataclass(frozen=True)
class TextualInversionConfig(MethodConfig):
    # Defaults follow diffusers' textual_inversion example for SD 2.x (lr 5e-4 x batch 4 x
    # accumulation 4 with scale_lr = 8e-3 effective; we use 5e-3 at batch 4) and the TI paper (5k steps
    # at most; ~2k suffice for one concept).
    initializer_word: str = "person"
    """Word whose embedding initialises the token (the exemplars show people)."""
    train_steps: int = 2000
    """Optimisation steps."""
    learning_rate: float = 5e-3
    """AdamW learning rate for the token embedding."""
    batch_size: int = 4
    """Exemplars per step (drawn with replacement)."""
    weight_decay: float = 0.0
    """AdamW weight decay on the token vector."""
    flip: bool = False
    """Add horizontal flips of the exemplars."""

    SMOKE = {"train_steps": 2}


class TextualInversion(Method):
    name = "textual_inversion"
    Config = TextualInversionConfig
    summary = "one learned token embedding (Gal et al. 2023)"
    trains = "one token embedding (D floats)"
    steps_field, lr_field = "train_steps", "learning_rate"

    def customize(self, action, out_dir) -> Artifact:
        cfg, backbone = self.config, self.backbone
        token = placeholder_for(action.id, self.name)
        exemplars = ExemplarSet.from_action(backbone, action, flip=cfg.flip)

        # The only trainable tensor: the token's embedding, initialised from a word.
        vector = torch.nn.Parameter(word_embedding(backbone, cfg.initializer_word).to(backbone.device))
        optimizer = make_optimizer([vector], cfg.learning_rate, cfg.weight_decay)
        generator = fixed_generator(cfg.seed)

        def loss(g: torch.Generator) -> torch.Tensor:
            rows = draw_rows(len(exemplars), cfg.batch_size, g)
            latents = exemplars.sample_latents(rows, g)
            text = encode_prompts(backbone, exemplars.captions(rows, token), {token: vector})
            return denoising_loss(backbone, latents, text, draw_noise(backbone, latents, g))

        history = run_training(lambda _: loss(generator), optimizer, cfg.train_steps, desc=f"{self.name} {action.id}",
                               heldout=loss)
        return self.new_artifact(
            action, tensors={"token_embedding": vector.detach()}, meta={"token": token, "loss_history": history}
        ).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        token = artifact.meta["token"]
        vector = artifact.tensors["token_embedding"].to(self.backbone.device)
        prompt = subject.prompt(token)
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt], {token: vector}), seeds, self.config.sampler)
