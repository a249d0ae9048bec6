"""Shared, stateless pieces of every training method: placeholder tokens, prompt encoding with
learned token vectors, exemplar batches, the denoising loss, the optimisation loop and sampling.

Method files import these and keep only what makes the method different.
"""
from __future__ import annotations

import contextlib
import copy
import math
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from actionbench.errors import ArtifactError, ConfigError, TrainingError
from actionbench.io import progress
from actionbench.method import MethodConfig

# --- tokens and text -------------------------------------------------------------------


def placeholder_for(action_id: str, method: str = "") -> str:
    """A token string that no real word tokenizes to."""
    return f"<{method + '-' if method else ''}{action_id}>"


def add_placeholder_tokens(tokenizer, tokens: Sequence[str]) -> list[int]:
    """Register placeholder strings as single tokens (idempotent) and return their ids."""
    tokenizer.add_tokens([t for t in tokens if t not in tokenizer.get_vocab()])
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    return list(ids)


def token_embedding_module(text_encoder) -> torch.nn.Embedding:
    return text_encoder.get_input_embeddings()


def word_embedding(backbone, word: str) -> torch.Tensor:
    """The input embedding of ``word`` (mean over its sub-tokens): the usual initialisation."""
    ids = backbone.tokenizer(word, add_special_tokens=False).input_ids
    if not ids:
        raise ConfigError(f"initializer word {word!r} tokenizes to nothing; choose a plain word, e.g. 'person'")
    table = token_embedding_module(backbone.text_encoder).weight
    return table[torch.tensor(ids, device=table.device)].mean(0).detach().float().clone()


def tokenize(tokenizer, prompts: Sequence[str], device) -> torch.Tensor:
    return tokenizer(
        list(prompts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(device)


@contextlib.contextmanager
def substituted_embeddings(text_encoder, input_ids: torch.Tensor, vectors: Mapping[int, torch.Tensor]):
    """Inside the block, the text encoder sees ``vectors[token_id]`` wherever ``token_id`` occurs.

    Vectors are (D,) or (B, D) for one per prompt. The embedding table itself is never
    written, so the frozen text encoder stays bit-identical and gradients flow only to the
    vectors. Placeholder ids beyond the table are looked up as id 0 and then replaced.
    """
    embedding = token_embedding_module(text_encoder)
    masks = {tid: (input_ids == tid) for tid in vectors}

    def hook(module, inputs, output):
        for tid, vec in vectors.items():
            mask = masks[tid]
            if not mask.any():
                continue
            vec = vec.to(output.dtype)
            if vec.dim() == 1:
                vec = vec.expand(output.shape[0], -1)
            output = torch.where(mask[..., None], vec[:, None, :].expand_as(output), output)
        return output

    handle = embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def encode_prompts(backbone, prompts: Sequence[str], token_vectors: Mapping[str, torch.Tensor] | None = None,
                   text_encoder=None) -> torch.Tensor:
    """Encode prompts to the UNet's conditioning (B, 77, D), with learned vectors for placeholder tokens.

    Args:
        token_vectors: placeholder string -> vector (D,) or per-prompt vectors (B, D).
        text_encoder: a trainable copy to use instead of the backbone's.
    """
    encoder = text_encoder or backbone.text_encoder
    device = next(encoder.parameters()).device
    ids = tokenize(backbone.tokenizer, prompts, device)
    vectors = {}
    if token_vectors:
        tids = add_placeholder_tokens(backbone.tokenizer, list(token_vectors))
        ids = tokenize(backbone.tokenizer, prompts, device)
        vectors = {tid: token_vectors[tok].to(device) for tid, tok in zip(tids, token_vectors)}
    table_size = token_embedding_module(encoder).num_embeddings
    lookup_ids = torch.where(ids >= table_size, torch.zeros_like(ids), ids)
    with substituted_embeddings(encoder, ids, vectors):
        return encoder(lookup_ids)[0]


# --- data --------------------------------------------------------------------------------


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


# --- the denoising objective -------------------------------------------------------------


@dataclass(frozen=True)
class NoiseDraw:
    """Noise and timesteps for a batch, drawn once so several losses can share them."""

    noise: torch.Tensor
    timesteps: torch.Tensor


def draw_noise(backbone, latents: torch.Tensor, generator: torch.Generator,
               timesteps: torch.Tensor | None = None, t_range: tuple[int, int] | None = None) -> NoiseDraw:
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(latents.device)
    if timesteps is None:
        lo, hi = t_range or (0, backbone.scheduler.config.num_train_timesteps)
        timesteps = torch.randint(lo, hi, (latents.shape[0],), generator=generator)
    return NoiseDraw(noise, timesteps.to(latents.device).long())


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    if scheduler.config.prediction_type == "epsilon":
        return noise
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ConfigError(f"unsupported prediction_type {scheduler.config.prediction_type!r}")


def denoising_loss(backbone, latents: torch.Tensor, encoder_hidden_states: torch.Tensor, draw: NoiseDraw,
                   unet=None, cross_attention_kwargs: dict | None = None, reduction: str = "mean") -> torch.Tensor:
    """|| target - unet(z_t, t, y) ||^2 with the scheduler's target (epsilon or v)."""
    unet = unet or backbone.unet
    scheduler = backbone.scheduler
    noisy = scheduler.add_noise(latents, draw.noise, draw.timesteps)
    pred = unet(noisy.to(unet.dtype), draw.timesteps, encoder_hidden_states.to(unet.dtype),
                cross_attention_kwargs=cross_attention_kwargs).sample.float()
    target = diffusion_target(scheduler, latents, draw.noise, draw.timesteps).float()
    if reduction == "none":
        return F.mse_loss(pred, target, reduction="none").mean(dim=tuple(range(1, pred.dim())))
    return F.mse_loss(pred, target, reduction="mean")


# --- the optimisation loop ---------------------------------------------------------------


def make_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict], learning_rate: float,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=learning_rate, betas=(0.9, 0.999), weight_decay=weight_decay, eps=1e-8)


def run_training(
    step_fn: Callable[[int], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    steps: int,
    desc: str,
    after_backward: Callable[[int], None] | None = None,
    max_grad_norm: float | None = None,
    params_for_clip: Sequence[torch.nn.Parameter] | None = None,
) -> list[float]:
    """The one training loop: loss = step_fn(step); backward; optional gradient edit; step.

    ``after_backward`` may rewrite ``.grad`` (ADI's masks do). A non-finite loss stops
    training with a ``TrainingError`` naming the step, so the runner can skip this unit.
    Returns the loss history.
    """
    history: list[float] = []
    bar = progress(range(steps), desc=desc, total=steps)
    for step in bar:
        optimizer.zero_grad(set_to_none=True)
        loss = step_fn(step)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate (--set learning_rate=...) "
                "or check the exemplar images"
            )
        loss.backward()
        if after_backward is not None:
            after_backward(step)
        if max_grad_norm is not None and params_for_clip:
            torch.nn.utils.clip_grad_norm_(params_for_clip, max_grad_norm)
        optimizer.step()
        history.append(float(loss.detach()))
        if hasattr(bar, "set_postfix") and (step % 10 == 0 or step == steps - 1):
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    return history


def fixed_generator(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


# --- generation --------------------------------------------------------------------------


@torch.no_grad()
def sample_images(
    backbone,
    prompt_embeds: torch.Tensor,
    seeds: Sequence[int],
    config,
    negative_prompt_embeds: torch.Tensor | None = None,
    unet=None,
    cross_attention_kwargs: dict | None = None,
    text_encoder=None,
    pipe=None,
    per_seed_inputs: Mapping[str, Sequence] | None = None,
    pipe_kwargs: Mapping | None = None,
) -> list:
    """Sample one image per seed with DDIM and classifier-free guidance.

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
    if negative_prompt_embeds is None:
        negative_prompt_embeds = encode_prompts(backbone, [config.negative_prompt], text_encoder=text_encoder)
    images = []
    batch = max(1, int(config.generation_batch_size))
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
            num_inference_steps=config.num_inference_steps,
            guidance_scale=config.guidance_scale,
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


def changed_parameters(before: Mapping[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    """Names of parameters that differ (bitwise) from a snapshot: for tests and artifact deltas."""
    after = dict(module.named_parameters())
    return [name for name, value in before.items() if not torch.equal(value, after[name].detach())]


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}




# --- fine-tuning a copy of a backbone module (DreamBooth, Custom Diffusion) ---------------


def trainable_copy(module: torch.nn.Module, trainable: Callable[[str], bool] | None = None) -> torch.nn.Module:
    """A deep copy of a frozen backbone module, in fp32, to fine-tune; the backbone's own module is never touched.

    Args:
        trainable: parameter name -> whether it learns; ``None`` makes every parameter trainable.
            The others keep ``requires_grad=False``, so an optimiser over the trainable ones leaves them bit-identical.
    """
    clone = copy.deepcopy(module)
    # torch's own .to: diffusers' override warns about fp32-kept modules, irrelevant for an all-fp32 copy
    torch.nn.Module.to(clone, dtype=torch.float32)
    for name, param in clone.named_parameters():
        param.requires_grad_(trainable is None or bool(trainable(name)))
    return clone.train()


def trainable_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def changed_tensors(module: torch.nn.Module, base: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """State-dict delta of a fine-tuned copy against the module it was copied from.

    Returns ``prefix + name`` -> new value for every parameter that differs bitwise from ``base``
    (compared in the copy's dtype, so an fp16 backbone and its fp32 copy start equal). Unchanged
    parameters are left out: loading the delta into a fresh copy of ``base`` (``patched_copy``)
    gives back the fine-tuned module.
    """
    base_params = dict(base.named_parameters())
    delta = {}
    for name, param in module.named_parameters():
        if not torch.equal(param.detach(), base_params[name].detach().to(param.dtype)):
            delta[prefix + name] = param.detach()
    return delta


@torch.no_grad()
def patched_copy(base: torch.nn.Module, tensors: Mapping[str, torch.Tensor], prefix: str = "") -> torch.nn.Module:
    """A fresh copy of ``base`` (same dtype and device, frozen) with the delta's ``prefix``-ed tensors loaded.

    Raises:
        ArtifactError: the delta names a parameter ``base`` lacks, or has the wrong shape.
    """
    clone = copy.deepcopy(base)
    params = dict(clone.named_parameters())
    for key, value in tensors.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name not in params or tuple(params[name].shape) != tuple(value.shape):
            raise ArtifactError(
                f"artifact tensor '{key}' {tuple(value.shape)} does not fit this backbone's {type(base).__name__}"
                + (f" ({tuple(params[name].shape)})" if name in params else " (no such parameter)")
                + "; generate with the backbone the artifact was learned on"
            )
        params[name].copy_(value.to(device=params[name].device, dtype=params[name].dtype))
    return clone.requires_grad_(False).eval()


class ArtifactModels:
    """Generation-time models built from one artifact, reused while the same ``Artifact`` object comes back.

    The runner passes one artifact object for every subject of an action, so a patched UNet is
    built once per action, not once per subject. One entry at a time: the previous models are
    dropped before the next are built (a patched SD UNet is gigabytes).
    """

    def __init__(self) -> None:
        self._artifact: weakref.ref | None = None
        self._models = None

    def get(self, artifact, build: Callable[[], object]):
        if self._artifact is not None and self._artifact() is artifact:
            return self._models
        self._artifact = self._models = None
        models = build()
        self._artifact, self._models = weakref.ref(artifact), models
        return models


# --- class-specific prior preservation (DreamBooth Eq. 2; Custom Diffusion's regularisation) ----

@dataclass(frozen=True)
class PriorPreservationConfig(MethodConfig):
    """Settings of the prior-preservation loss, shared by the fine-tuning methods.

    Class images are generated by the frozen backbone itself from ``class_prompt`` (DreamBooth's
    recipe; Custom Diffusion retrieved real images, which is not possible offline) and cached.
    """

    with_prior_preservation: bool = True
    """Add lambda x the denoising loss on class images of the backbone's own making."""
    class_prompt: str = "a photo of a person"
    """Prompt of the class images (ActionBench exemplars show people)."""
    num_class_images: int = 200
    """Class images; drawn once per backbone, prompt and sampler settings and cached under $ACTIONBENCH_HOME/class-images."""
    prior_loss_weight: float = 1.0
    """lambda, the weight of the class-image term (DreamBooth: 1)."""

    SMOKE = {"num_class_images": 2}


CLASS_IMAGES_DIR = "class-images"
CLASS_IMAGES_VERSION = 1


@dataclass
class ClassImages:
    """Prior-preservation images of one class prompt, cached on disk.

    ``folder`` is ``$ACTIONBENCH_HOME/class-images/<key>``, the key a stable hash of the backbone
    fingerprint, the prompt and the sampler settings (``spec.json`` beside the images says which).
    Image ``i`` is drawn with seed ``i``, so a larger request reuses the images already there.
    """

    prompt: str
    folder: Path
    paths: list[Path]
    generated: int
    """How many images this call had to draw (0 when all came from the cache)."""

    def record(self) -> dict:
        return {"prompt": self.prompt, "key": self.folder.name, "count": len(self.paths), "generated": self.generated}

    def exemplar_set(self, backbone, chunk_size: int = 8) -> ExemplarSet:
        """Latent posteriors of the images, captioned with the class prompt; VAE-encoded in chunks."""
        from actionbench.io import load_image

        means, stds = [], []
        for start in range(0, len(self.paths), chunk_size):
            pixels = torch.stack([image_to_tensor(load_image(p), backbone.resolution)
                                  for p in self.paths[start:start + chunk_size]])
            mean, std = encode_latent_distribution(backbone, pixels)
            means.append(mean)
            stds.append(std)
        return ExemplarSet(torch.cat(means), torch.cat(stds), [self.prompt] * len(self.paths),
                           list(range(1, len(self.paths) + 1)))


def class_images(backbone, prompt: str, count: int, sampling) -> ClassImages:
    """The first ``count`` class images of ``prompt``, drawn by the frozen backbone and cached on disk.

    Args:
        sampling: a ``MethodConfig``: its ``num_inference_steps``, ``guidance_scale`` and
            ``negative_prompt`` draw the images (and key the cache); ``generation_batch_size`` only batches.

    Each image is written atomically as soon as its batch is done, so an interrupted call
    resumes where it stopped.
    """
    from actionbench.manifest import actionbench_home
    from actionbench.hashing import stable_hash
    from actionbench.io import atomic_write_json, save_image

    if count < 1:
        raise ConfigError(f"num_class_images must be at least 1, got {count}; or set with_prior_preservation=false")
    spec = {
        "kind": "class-images",
        "version": CLASS_IMAGES_VERSION,
        "backbone": backbone.fingerprint(),
        "prompt": prompt,
        "sampler": "DDIM",
        "num_inference_steps": sampling.num_inference_steps,
        "guidance_scale": sampling.guidance_scale,
        "negative_prompt": sampling.negative_prompt,
        "seed_rule": "image i is drawn with seed i",
    }
    folder = actionbench_home() / CLASS_IMAGES_DIR / stable_hash(spec)
    paths = [folder / f"{i:05d}.png" for i in range(count)]
    missing = [i for i, path in enumerate(paths) if not path.is_file()]
    if missing:
        atomic_write_json(folder / "spec.json", spec)
        embeds = encode_prompts(backbone, [prompt])
        batch = max(1, int(sampling.generation_batch_size))
        for start in progress(range(0, len(missing), batch), desc=f"class images '{prompt}'",
                              total=math.ceil(len(missing) / batch)):
            seeds = missing[start:start + batch]
            for i, image in zip(seeds, sample_images(backbone, embeds, seeds, sampling)):
                save_image(image, paths[i])
    return ClassImages(prompt, folder, paths, len(missing))


def class_prior(backbone, config: PriorPreservationConfig) -> tuple[ExemplarSet | None, dict]:
    """The class-image set for the prior-preservation loss (``None`` when it is off) and a record for the artifact."""
    if not config.with_prior_preservation:
        return None, {}
    images = class_images(backbone, config.class_prompt, config.num_class_images, config)
    return images.exemplar_set(backbone), images.record()


def finetune_loss(backbone, unet, exemplars: ExemplarSet, action_text: str, encode: Callable[[list[str]], torch.Tensor],
                  batch_size: int, generator: torch.Generator, prior: ExemplarSet | None = None,
                  prior_loss_weight: float = 1.0) -> torch.Tensor:
    """One batch of the fine-tuning objective with class-specific prior preservation (DreamBooth Eq. 2):

        E || eps - eps_theta(z_t, t, y) ||^2  +  lambda E || eps' - eps_theta(z'_t', t', y_class) ||^2

    ``batch_size`` exemplars captioned with ``action_text`` in their templates and, with a
    ``prior`` set, as many class images with the class prompt. Both halves go through the UNet
    in one batch, as in diffusers' scripts; ``encode`` turns all captions into conditioning.
    """
    rows = draw_rows(len(exemplars), batch_size, generator)
    latents = exemplars.sample_latents(rows, generator)
    captions = exemplars.captions(rows, action_text)
    if prior is not None:
        prior_rows = draw_rows(len(prior), batch_size, generator)
        latents = torch.cat([latents, prior.sample_latents(prior_rows, generator).to(latents.device)])
        captions = captions + prior.captions(prior_rows, action_text)
    per_image = denoising_loss(backbone, latents, encode(captions), draw_noise(backbone, latents, generator),
                               unet=unet, reduction="none")
    loss = per_image[:batch_size].mean()
    if prior is not None:
        loss = loss + prior_loss_weight * per_image[batch_size:].mean()
    return loss
