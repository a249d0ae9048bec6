"""Custom Diffusion (Kumari et al., CVPR 2023), adapted to actions as in the ADI paper.

Two things learn, everything else stays frozen:
  * a modifier token V*, a new embedding initialised from a rare word ("ktn");
  * the key and value projections W_k, W_v of every cross-attention layer (attn2) of a copy of the
    UNet: the only UNet weights that read the text.
The loss is the denoising loss on the exemplars captioned "... V* ..." (their templates), plus
lambda x the same loss on regularisation images of the class (lambda = 1):

    E || eps - eps_theta(z_t, t, y(V*)) ||^2 + lambda E || eps' - eps_theta(z'_t', t', y_class) ||^2

The paper retrieves 200 real LAION images whose captions resemble the class prompt; offline that
is impossible, so the regularisation images are drawn by the frozen backbone (the paper's
"generated images" variant), as in DreamBooth, and cached. The artifact holds V* and the changed
W_k, W_v (25.6M values on SD 2.1: 102 MB fp32). Generation: "{subject} V*".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch

from actionbench.errors import ArtifactError
from actionbench.api.method import Artifact, Method
from actionbench.training import (
    ArtifactModels,
    ExemplarSet,
    PriorPreservationConfig,
    changed_tensors,
    class_prior,
    encode_prompts,
    finetune_loss,
    fixed_generator,
    make_optimizer,
    patched_copy,
    placeholder_for,
    run_training,
    sample_images,
    trainable_copy,
    trainable_parameters,
    word_embedding,
)

CROSS_ATTENTION_KV = re.compile(r"(^|\.)attn2\.to_[kv]\.")
"""Parameter names of W_k and W_v in the cross-attention layers (diffusers' ``freeze_model="crossattn_kv"``)."""


def is_cross_attention_kv(name: str) -> bool:
    return CROSS_ATTENTION_KV.search(name) is not None


@dataclass(frozen=True)
class CustomDiffusionConfig(PriorPreservationConfig):
    # Sources: Custom Diffusion paper (Kumari et al. 2023, Sec. 4 and appendix: 250 steps for one
    # concept, batch 8, lr 8e-5, 200 regularisation images, V* initialised from a rare token);
    # diffusers examples/custom_diffusion README and train_custom_diffusion.py: lr 1e-5 with
    # --scale_lr (x images per step), batch 2, 250 steps, initializer "ktn", 200 class images,
    # prior_loss_weight 1.0, AdamW weight decay 1e-2, max_grad_norm 1.0.
    initializer_word: str = "ktn"
    """Rare word whose embedding initialises V* (CLIP splits "ktn" into "k" + "tn": their mean is used)."""
    train_steps: int = 250
    """Optimisation steps (paper and diffusers, single concept)."""
    learning_rate: float = 1e-5
    """AdamW learning rate per image of a step (see scale_lr)."""
    scale_lr: bool = True
    """Multiply learning_rate by the images per step, batch_size x 2 with prior preservation (diffusers' --scale_lr):
    4e-5 at the defaults, 8e-5 at the paper's batch 8."""
    batch_size: int = 2
    """Exemplars per step (drawn with replacement); with prior preservation as many class images join them."""
    weight_decay: float = 1e-2
    """AdamW weight decay (diffusers' default)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping (diffusers' default)."""
    flip: bool = False
    """Add horizontal flips of the exemplars (diffusers' --hflip; off: some actions are one-handed)."""

    SMOKE = {"train_steps": 2}

    def effective_learning_rate(self) -> float:
        images_per_step = self.batch_size * (2 if self.with_prior_preservation else 1)
        return self.learning_rate * images_per_step if self.scale_lr else self.learning_rate


class CustomDiffusion(Method):
    name = "custom_diffusion"
    Config = CustomDiffusionConfig
    summary = "modifier token V* + cross-attention K/V fine-tuning (Kumari et al. 2023)"
    trained_modules = "unet cross-attention k/v"
    trains = "one token embedding + W_k, W_v of every cross-attention layer (102 MB fp32 on SD 2.1)"
    steps_field, lr_field = "train_steps", "learning_rate"

    def __init__(self, backbone, config=None):
        super().__init__(backbone, config)
        self._models = ArtifactModels()

    def loss(self, unet, token: str, vector: torch.Tensor, exemplars: ExemplarSet, prior: ExemplarSet | None,
             generator: torch.Generator) -> torch.Tensor:
        """The objective on one batch drawn with ``generator``: exemplars captioned with V* (+ class images)."""
        cfg = self.config
        return finetune_loss(
            self.backbone, unet, exemplars, token,
            lambda captions: encode_prompts(self.backbone, captions, {token: vector}),
            cfg.batch_size, generator, prior, cfg.prior_loss_weight,
        )

    def customize(self, action, out_dir) -> Artifact:
        cfg, backbone = self.config, self.backbone
        token = placeholder_for(action.id, self.name)
        exemplars = ExemplarSet.from_action(backbone, action, flip=cfg.flip)

        # 1. Regularisation images of the class, drawn by the frozen model (cached on disk).
        prior, prior_record = class_prior(backbone, cfg)

        # 2. The modifier token V*, initialised from a rare word.
        vector = torch.nn.Parameter(word_embedding(backbone, cfg.initializer_word).to(backbone.device))

        # 3. A copy of the UNet in which only the cross-attention W_k, W_v learn.
        unet = trainable_copy(backbone.unet, trainable=is_cross_attention_kv)
        params = [vector] + trainable_parameters(unet)
        optimizer = make_optimizer(params, cfg.effective_learning_rate(), cfg.weight_decay)
        generator = fixed_generator(cfg.seed)

        # 4. Fine-tune on exemplars "... V* ..." plus lambda x the class-image loss.
        history = run_training(lambda _: self.loss(unet, token, vector, exemplars, prior, generator), optimizer,
                               cfg.train_steps, desc=f"{self.name} {action.id}",
                               max_grad_norm=cfg.max_grad_norm, params_for_clip=params,
                               heldout=lambda g: self.loss(unet, token, vector, exemplars, None, g))

        # 5. Save V* and the changed W_k, W_v only.
        tensors = {"token_embedding": vector.detach(), **changed_tensors(unet, backbone.unet, prefix="unet.")}
        meta = {"token": token, "loss_history": history, "class_images": prior_record}
        return self.new_artifact(action, tensors=tensors, meta=meta).save(out_dir)

    def patched_unet(self, artifact: Artifact):
        """The backbone's UNet with the artifact's W_k, W_v, built once per artifact."""

        def build():
            unknown = [k for k in artifact.tensors
                       if k != "token_embedding" and not (k.startswith("unet.") and is_cross_attention_kv(k[5:]))]
            if unknown:
                raise ArtifactError(f"artifact {artifact.path} holds tensors Custom Diffusion does not make ({unknown[:3]}); "
                                    "pass the --method that made it")
            return patched_copy(self.backbone.unet, artifact.tensors, prefix="unet.")

        return self._models.get(artifact, build)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        token = artifact.meta["token"]
        vector = artifact.tensors["token_embedding"].to(self.backbone.device)
        embeds = encode_prompts(self.backbone, [subject.prompt(token)], {token: vector})
        return sample_images(self.backbone, embeds, seeds, self.config.sampler, unet=self.patched_unet(artifact))
