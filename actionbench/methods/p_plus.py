"""P+ / Extended Textual Inversion (Voynov et al., "P+: Extended Textual Conditioning in
Text-to-Image Generation", arXiv 2303.09522), adapted to actions as in the ADI paper.

Textual inversion learns one token embedding ``v`` shared by every cross-attention layer.
P+ learns one embedding per cross-attention layer, ``V = (v_1, ..., v_L)``: layer ``l``
attends to the prompt encoded with ``v_l`` at the placeholder (``y_l = y(v_l)``):

    V* = argmin_V E_{z, y, eps, t} || eps - eps_theta(z_t, t, {y_l(v_l)}_{l=1..L}) ||^2

(with the scheduler's target: SD 2.1 predicts v, not eps). All ``v_l`` start from one word;
only those L vectors learn (UNet, text encoder and VAE stay frozen). The exemplar captions
(templates filled with the token) are the prompts. Generation: "{subject} <token>" with the
same per-layer embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from actionbench.errors import ArtifactError
from actionbench.layerwise import generate_with_identifiers, identifier_conditioning, layerwise_processors, num_layers
from actionbench.api.method import Artifact, Method, MethodConfig, TableRow
from actionbench.training import (
    ExemplarSet,
    NoiseDraw,
    denoising_loss,
    draw_noise,
    draw_rows,
    fixed_generator,
    make_optimizer,
    placeholder_for,
    run_training,
    word_embedding,
)


@dataclass(frozen=True)
class PPlusConfig(MethodConfig):
    # P+ paper (Voynov et al. 2023), implementation details: XTI on SD 1.4 with lr 5e-3, batch 8,
    # ~500 steps (it reports XTI converging in far fewer steps than textual inversion). SD 1.4 and
    # SD 2.1 both have 16 cross-attention layers (token width 768 vs 1024), so we keep the same budget
    # for SD 2.1; the paper gives no SD 2.1 setting.
    initializer_word: str = "person"
    """Word whose embedding initialises every layer's token (the exemplars show people)."""
    train_steps: int = 500
    """Optimisation steps (P+ paper: 500)."""
    learning_rate: float = 5e-3
    """AdamW learning rate for the L token embeddings (P+ paper: 5e-3)."""
    batch_size: int = 8
    """Exemplars per step, drawn with replacement (P+ paper: 8)."""
    weight_decay: float = 0.0
    """AdamW weight decay on the token vectors."""

    SMOKE = {"train_steps": 2}


def pplus_loss(backbone, vectors: torch.Tensor, token: str, latents: torch.Tensor, captions: Sequence[str],
               draw: NoiseDraw) -> torch.Tensor:
    """The denoising loss with layer ``l`` conditioned on ``captions`` encoded with ``vectors[l]``.

    Needs ``layerwise_processors(backbone.unet)`` installed when ``vectors`` has more than one row.
    """
    hidden, kwargs = identifier_conditioning(backbone, captions, token, vectors)
    return denoising_loss(backbone, latents, hidden, draw, cross_attention_kwargs=kwargs)


class PPlus(Method):
    name = "p_plus"
    Config = PPlusConfig
    summary = "one learned token embedding per cross-attention layer (Voynov et al. 2023)"
    trains = "one token embedding per cross-attention layer (L x D floats; L=16 on SD 2.1)"
    steps_field, lr_field = "train_steps", "learning_rate"
    table_rows = (TableRow(), TableRow("p_plus_4_anchors", settings={"batch_size": 4}))  # ADI's anchors per step
    default_table_rows = ("p_plus",)

    def customize(self, action, out_dir) -> Artifact:
        cfg, backbone = self.config, self.backbone
        token = placeholder_for(action.id, self.name)
        exemplars = ExemplarSet.from_action(backbone, action)

        # The only trainable tensor: L token embeddings, one per cross-attention layer, all from one word.
        n_layers = num_layers(backbone)
        init = word_embedding(backbone, cfg.initializer_word).to(backbone.device)
        vectors = torch.nn.Parameter(init[None].repeat(n_layers, 1))
        optimizer = make_optimizer([vectors], cfg.learning_rate, cfg.weight_decay)
        generator = fixed_generator(cfg.seed)

        def loss(g: torch.Generator) -> torch.Tensor:
            rows = draw_rows(len(exemplars), cfg.batch_size, g)
            latents = exemplars.sample_latents(rows, g)
            draw = draw_noise(backbone, latents, g)
            return pplus_loss(backbone, vectors, token, latents, exemplars.captions(rows, token), draw)

        # Layer l's cross-attention reads prompt embedding l while the processors are installed.
        with layerwise_processors(backbone.unet) as layers:
            history = run_training(lambda _: loss(generator), optimizer, cfg.train_steps,
                                   desc=f"{self.name} {action.id}", heldout=loss)
        return self.new_artifact(
            action,
            tensors={"layer_embeddings": vectors.detach()},
            meta={"token": token, "layers": layers, "loss_history": history},
        ).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        vectors = artifact.tensors["layer_embeddings"]
        if vectors.shape[0] != num_layers(self.backbone):
            raise ArtifactError(
                f"artifact {artifact.path} has {vectors.shape[0]} layer embeddings, the backbone's UNet has "
                f"{num_layers(self.backbone)} cross-attention layers; customize again on this backbone"
            )
        token = artifact.meta["token"]
        return generate_with_identifiers(self.backbone, subject.prompt(token), token, vectors, seeds, self.config.sampler)
