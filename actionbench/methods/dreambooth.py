"""DreamBooth (Ruiz et al., CVPR 2023), adapted to actions as in the ADI paper.

The whole UNet is fine-tuned (a copy: the backbone never changes) on the exemplars, each
captioned with its template where "{}" is a rare existing token, the identifier ("sks"; not a
new embedding). Class-specific prior preservation keeps the model's idea of the class: images
the frozen model draws from a class prompt ("a photo of a person") are trained on beside the
exemplars (Eq. 2 of the paper, lambda = 1):

    E || eps - eps_theta(z_t, t, y(sks)) ||^2 + lambda E || eps' - eps_theta(z'_t', t', y_class) ||^2

The artifact is the state-dict delta of the UNet (for full fine-tuning: every weight, 3.46 GB
fp32 / 1.73 GB fp16 on SD 2.1). Generation, as in the ADI paper: "{subject} sks".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

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
    run_training,
    sample_images,
    trainable_copy,
    trainable_parameters,
)

SAVE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass(frozen=True)
class DreamBoothConfig(PriorPreservationConfig):
    # Sources: DreamBooth paper (Ruiz et al. 2023, Sec. 4 "Implementation details": lambda = 1,
    # lr 5e-6 for Stable Diffusion, ~1000 iterations); diffusers examples/dreambooth README and
    # train_dreambooth.py for SD with prior preservation: lr 5e-6, batch 1, 800 steps, 200 class
    # images, prior_loss_weight 1.0, AdamW weight decay 1e-2, max_grad_norm 1.0, text encoder frozen.
    identifier: str = "sks"
    """Rare existing token that stands for the action: fills "{}" in the captions and follows the subject at generation."""
    train_steps: int = 800
    """Optimisation steps (diffusers README with prior preservation; the paper: ~1000)."""
    learning_rate: float = 5e-6
    """AdamW learning rate (paper, for Stable Diffusion)."""
    batch_size: int = 1
    """Exemplars per step (drawn with replacement); with prior preservation as many class images join them."""
    weight_decay: float = 1e-2
    """AdamW weight decay (diffusers' default)."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping (diffusers' default)."""
    train_text_encoder: bool = False
    """Also fine-tune a copy of the text encoder (diffusers' --train_text_encoder); its changed weights join the artifact."""
    save_dtype: Literal["fp32", "fp16"] = "fp32"
    """Precision of the saved UNet delta: fp16 halves the artifact (1.73 GB instead of 3.46 GB on SD 2.1)."""
    flip: bool = False
    """Add horizontal flips of the exemplars (off: some actions are one-handed)."""

    SMOKE = {"train_steps": 2}


class DreamBooth(Method):
    name = "dreambooth"
    Config = DreamBoothConfig
    summary = "fine-tuned UNet with a rare-token identifier and prior preservation (Ruiz et al. 2023)"
    trained_modules = "unet"
    trains = "all UNet weights (a copy), optionally the text encoder; artifact = UNet delta"
    steps_field, lr_field = "train_steps", "learning_rate"

    def __init__(self, backbone, config=None):
        super().__init__(backbone, config)
        self._models = ArtifactModels()

    def loss(self, unet, text_encoder, exemplars: ExemplarSet, prior: ExemplarSet | None,
             generator: torch.Generator) -> torch.Tensor:
        """Eq. 2 on one batch drawn with ``generator``: exemplars captioned with the identifier (+ class images)."""
        cfg = self.config
        return finetune_loss(
            self.backbone, unet, exemplars, cfg.identifier,
            lambda captions: encode_prompts(self.backbone, captions, text_encoder=text_encoder),
            cfg.batch_size, generator, prior, cfg.prior_loss_weight,
        )

    def customize(self, action, out_dir) -> Artifact:
        cfg, backbone = self.config, self.backbone
        exemplars = ExemplarSet.from_action(backbone, action, flip=cfg.flip)

        # 1. Class-specific prior: class images drawn by the frozen model itself (cached on disk).
        prior, prior_record = class_prior(backbone, cfg)

        # 2. Trainable copies: the whole UNet (and the text encoder if asked); the backbone stays frozen.
        unet = trainable_copy(backbone.unet)
        text_encoder = trainable_copy(backbone.text_encoder) if cfg.train_text_encoder else None
        params = trainable_parameters(unet) + (trainable_parameters(text_encoder) if text_encoder else [])
        optimizer = make_optimizer(params, cfg.learning_rate, cfg.weight_decay)
        generator = fixed_generator(cfg.seed)

        # 3. Fine-tune on exemplars "... sks ..." plus lambda x the class-image loss.
        history = run_training(lambda _: self.loss(unet, text_encoder, exemplars, prior, generator), optimizer,
                               cfg.train_steps, desc=f"{self.name} {action.id}",
                               max_grad_norm=cfg.max_grad_norm, params_for_clip=params,
                               heldout=lambda g: self.loss(unet, text_encoder, exemplars, None, g))

        # 4. Save only what changed: the new values of the changed UNet (and text-encoder) tensors.
        delta = changed_tensors(unet, backbone.unet, prefix="unet.")
        if text_encoder is not None:
            delta.update(changed_tensors(text_encoder, backbone.text_encoder, prefix="text_encoder."))
        dtype = SAVE_DTYPES[cfg.save_dtype]
        tensors = {k: v.to(dtype) for k, v in delta.items()}
        meta = {"identifier": cfg.identifier, "loss_history": history, "class_images": prior_record}
        return self.new_artifact(action, tensors=tensors, meta=meta).save(out_dir)

    def patched_models(self, artifact: Artifact):
        """The backbone's UNet (and text encoder) with the artifact's delta applied, built once per artifact."""

        def build():
            unknown = [k for k in artifact.tensors if not k.startswith(("unet.", "text_encoder."))]
            if unknown:
                raise ArtifactError(f"artifact {artifact.path} holds tensors DreamBooth does not make ({unknown[:3]}); "
                                    "pass the --method that made it")
            unet = patched_copy(self.backbone.unet, artifact.tensors, prefix="unet.")
            has_text = any(k.startswith("text_encoder.") for k in artifact.tensors)
            text_encoder = patched_copy(self.backbone.text_encoder, artifact.tensors, "text_encoder.") if has_text else None
            return unet, text_encoder

        return self._models.get(artifact, build)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        unet, text_encoder = self.patched_models(artifact)
        prompt = subject.prompt(artifact.meta["identifier"])
        embeds = encode_prompts(self.backbone, [prompt], text_encoder=text_encoder)
        return sample_images(self.backbone, embeds, seeds, self.config.sampler, unet=unet, text_encoder=text_encoder)
