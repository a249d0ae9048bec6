"""Shared, stateless pieces of every training method, by concern:

- ``text``: placeholder tokens, prompt encoding with learned token vectors;
- ``data``: exemplar latents and captions (``ExemplarSet``);
- ``loop``: noise draws, the denoising loss, the optimiser and the one training loop;
- ``sampling``: DDIM sampling with classifier-free guidance from a ``SamplerConfig``;
- ``finetune``: trainable copies of backbone modules and their changed tensors;
- ``prior``: class-specific prior preservation (class images, the fine-tuning loss).

Method files import these from ``actionbench.training`` and keep only what makes the method different.
"""
from __future__ import annotations

from .text import (  # noqa: F401
    placeholder_for,
    add_placeholder_tokens,
    token_embedding_module,
    word_embedding,
    tokenize,
    substituted_embeddings,
    encode_prompts,
)
from .data import image_to_tensor, encode_latent_distribution, ExemplarSet, draw_rows  # noqa: F401
from .loop import (  # noqa: F401
    NoiseDraw,
    draw_noise,
    diffusion_target,
    denoising_loss,
    make_optimizer,
    run_training,
    fixed_generator,
)
from .sampling import sample_images, sdedit  # noqa: F401
from .finetune import (  # noqa: F401
    trainable_copy, trainable_parameters, changed_tensors, patched_copy, ArtifactModels, StackedCopies,
)
from .prior import (  # noqa: F401
    PriorPreservationConfig,
    CLASS_IMAGES_DIR,
    CLASS_IMAGES_VERSION,
    ClassImages,
    class_images,
    class_prior,
    finetune_loss,
)
