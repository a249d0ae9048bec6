"""ADI's action-different samples x^(ā,c): the anchor's person and background doing other actions.

The paper: "quickly train a subject-driven model on the single anchor image and generate the same
context with a different action" (no details given). Here: a copy of the UNet tuned on the one image
(attention weights by default; the backbone is never written), then sampled with prompts of actions
that are none of ActionBench's eight. Made once per exemplar and settings, and cached on disk.
``oracle_samples``: a rendered world's exact version of the same, for comparison.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch

from actionbench.api.config import SamplerConfig, check_ranges
from actionbench.errors import ConfigError
from actionbench.hashing import sha256_file, stable_hash
from actionbench.io import load_image, make_temp_dir
from actionbench.manifest import actionbench_home
from actionbench.training import (
    ExemplarSet,
    NoiseDraw,
    StackedCopies,
    denoising_loss,
    draw_noise,
    encode_prompts,
    fixed_generator,
    make_optimizer,
    patched_copy,
    run_training,
    sample_images,
    trainable_copy,
)

ACTION_DIFFERENT_VERSION = 1
"""Bump when the action-different generation changes: it is part of the cache key."""


@dataclass(frozen=True)
class ActionDifferentConfig:
    """How the action-different samples x^(ā,c) are made (``ADIConfig.action_different``, ``--set
    action_different.tune_steps=...``). The paper: "quickly train a subject-driven model on the single anchor image
    and generate the same context with a different action"; no details."""

    images: int = 4
    """Action-different images made per exemplar (one per prompt, cycling through the prompts)."""
    prompts: tuple[str, ...] = (
        "a photo of sks person standing",
        "a photo of sks person walking",
        "a photo of sks person running",
        "a photo of sks person lying down",
    )
    """Prompts for the tuned model: the person ("sks", DreamBooth's rare token) doing actions that are none
    of ActionBench's eight (cheer, gesture, handstand, meditate, pray, salute, sit, squat)."""
    subject_prompt: str = "a photo of sks person"
    """Caption of the single anchor image while tuning (DreamBooth's "a [V] [class]" form)."""
    tune_steps: int = 200
    """Tuning steps on the single image. DreamBooth uses ~400-800 for 3-5 images with the whole UNet; one image
    and attention-only weights need fewer, and the paper says "quickly"."""
    tune_lr: float = 1e-5
    """AdamW learning rate of the tuning (DreamBooth's 5e-6 for the whole UNet, doubled for attention only)."""
    tune_params: Literal["attention", "full"] = "attention"
    """What is tuned in a copy of the UNet. attention: the self- and cross-attention projections (binds the
    person's appearance to "sks" with ~1/4 of the weights and without peft; the backbone's UNet is never
    written); full: DreamBooth on the whole UNet (more memory, more pose overfitting)."""
    inference_steps: int = 50
    """DDIM steps for the action-different images."""
    guidance_scale: float = 7.5
    """Classifier-free guidance scale for the action-different images."""
    negative_prompt: str = ""
    """Negative prompt for the action-different images."""
    source: Literal["generated", "oracle"] = "generated"
    """Where the action-different samples come from. generated: the paper's way (a copy of the UNet tuned on
    the anchor image, then sampled). oracle: the world renders the anchor's exact look and background in
    everyday poses (rendered worlds only, e.g. mini-v2): the ideal the paper approximates, for comparison."""
    tune_batch: int = 1
    """How many exemplars' copies are tuned together, one batch row each (``torch.func.vmap``): the same steps
    as one at a time (equal within float tolerance; not part of the cache key), fewer passes. Memory grows with
    it (on SD 2.1 about 1.6 GB per copy for the attention weights, their gradients and AdamW's moments, in fp32),
    so the default is 1; the mini suite tunes all 10 of an action together."""
    cache_dir: str = ""
    """Cache folder for the action-different images; empty: $ACTIONBENCH_HOME/adi-action-different.
    Keyed by backbone fingerprint, exemplar SHA-256 and these settings: made once per exemplar, reused."""

    def __post_init__(self):
        check_ranges(self)
        if self.tune_batch < 1:
            raise ConfigError(f"ActionDifferentConfig.tune_batch must be >= 1, got {self.tune_batch}; e.g. --set "
                              "action_different.tune_batch=1")


def action_different_settings(cfg) -> dict:
    """Everything that changes the action-different images (part of their cache key).

    The training ``seed`` is not: the images' seeds come from the key, so runs with other
    identifier seeds or mask settings reuse them.
    """
    group = cfg.action_different
    prompts = [group.prompts[k % len(group.prompts)] for k in range(group.images)]
    return {
        "version": ACTION_DIFFERENT_VERSION,
        "prompts": prompts,
        "subject_prompt": group.subject_prompt,
        "tune_steps": group.tune_steps,
        "tune_lr": group.tune_lr,
        "tune_params": group.tune_params,
        "inference_steps": group.inference_steps,
        "guidance_scale": group.guidance_scale,
        "negative_prompt": group.negative_prompt,
    }


def action_different_cache_root(cfg) -> Path:
    if cfg.action_different.cache_dir:
        return Path(cfg.action_different.cache_dir).expanduser()
    return actionbench_home() / "adi-action-different"


def tune_and_generate(backbone, images: Sequence, settings: dict, seeds: Sequence[int]) -> list[tuple[list, list[float]]]:
    """Tune one copy of the UNet per image (DreamBooth-style), then draw each person doing other actions.

    The copies are tuned together, one batch row each (``StackedCopies``): each copy sees only its own
    image and its own seeded draws, so it takes the steps a run on that image alone would take.
    Returns, per image, the images (one per prompt in ``settings["prompts"]``) and the tuning loss history.
    """
    # 1. fp32 copies of the UNet that differ in the tuned weights: the backbone's weights are never written.
    attention_only = settings["tune_params"] == "attention"
    frozen = trainable_copy(backbone.unet, lambda n: False)
    names = [n for n, _ in frozen.named_parameters() if not attention_only or ".attn1." in n or ".attn2." in n]
    copies = StackedCopies(frozen, names, len(images))

    # 2. Copy m's denoising loss on image m captioned "a photo of sks person", drawn with generator m.
    single = ExemplarSet.from_images(backbone, images, [settings["subject_prompt"]] * len(images))
    text = encode_prompts(backbone, [settings["subject_prompt"]]).detach()
    generators = [fixed_generator(seed) for seed in seeds]
    histories: list[list[float]] = [[] for _ in images]

    def losses(gens: Sequence[torch.Generator]) -> torch.Tensor:
        latents = [single.sample_latents([m], g) for m, g in enumerate(gens)]
        draws = [draw_noise(backbone, lat, g) for lat, g in zip(latents, gens)]
        draw = NoiseDraw(torch.cat([d.noise for d in draws]), torch.cat([d.timesteps for d in draws]))
        return denoising_loss(backbone, torch.cat(latents), text.expand(len(gens), -1, -1), draw, unet=copies,
                              reduction="none")

    def step(_: int) -> torch.Tensor:
        per_copy = losses(generators)
        for history, value in zip(histories, per_copy.tolist()):
            history.append(value)
        return per_copy.sum()  # independent copies: each one's gradient is its own loss's

    optimizer = make_optimizer(list(copies.params.values()), settings["tune_lr"])
    run_training(step, optimizer, settings["tune_steps"], desc=f"adi action-different tuning ({len(images)} copies)",
                 heldout=lambda g: losses([g] * len(images)).mean())
    del optimizer  # its moments are as large as the tuned weights: free them before sampling

    # 3. Each person doing other actions, one image per prompt, seeded from the cache key; one copy at a time.
    prompts = settings["prompts"]
    sampling = SamplerConfig(num_inference_steps=settings["inference_steps"], guidance_scale=settings["guidance_scale"],
                             negative_prompt=settings["negative_prompt"], batch_size=min(4, len(prompts)))
    with torch.no_grad():
        embeds = encode_prompts(backbone, prompts)
    results = []
    for m, seed in enumerate(seeds):
        unet = patched_copy(backbone.unet, copies.copy(m))
        results.append((sample_images(backbone, embeds, [seed + k for k in range(len(prompts))], sampling, unet=unet),
                        histories[m]))
    return results


def action_different_key(fingerprint: dict, exemplar_sha256: str, settings: dict) -> str:
    """The cache key of one exemplar's action-different images: backbone, exemplar bytes, settings."""
    return stable_hash({"backbone": fingerprint, "exemplar_sha256": exemplar_sha256, "settings": settings})


def cache_keys(backbone, exemplars: Sequence, settings: dict) -> list[tuple[str, str]]:
    """(exemplar file's sha256, cache key) of each exemplar's action-different images."""
    fingerprint = backbone.fingerprint()
    shas = [sha256_file(exemplar.path) for exemplar in exemplars]
    return [(sha, action_different_key(fingerprint, sha, settings)) for sha in shas]


def oracle_samples(exemplar, cfg) -> tuple[list, dict]:
    """The exemplar's own person, clothes and background in everyday poses, rendered by its world."""
    if exemplar.oracle is None:
        raise ConfigError(f"action_different.source=oracle needs a rendered world whose exemplars can be drawn in "
                          f"other poses (e.g. --suite mini-v2); {exemplar.path} cannot. Use "
                          "--set action_different.source=generated")
    return list(exemplar.oracle(cfg.action_different.images)), {"key": "oracle", "folder": "", "made": False}


def _cached(folder: Path, n_images: int) -> list | None:
    """The images of a whole cache entry, or None (absent, incomplete or edited by hand: removed, made again)."""
    if not folder.is_dir():
        return None
    try:
        record = json.loads((folder / "provenance.json").read_text())
        files = [folder / item["file"] for item in record["images"]]
        if len(files) == n_images and all(f.is_file() for f in files):
            return [load_image(f) for f in files]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    return None


def action_different_samples(backbone, exemplars: Sequence, cfg) -> list[tuple[list, dict]]:
    """The action-different images of each exemplar, from the cache or made (and cached) now.

    Returns, per exemplar, (PIL images, {"key", "folder", "made"}). The missing ones are made
    ``cfg.action_different.tune_batch`` exemplars at a time (tuned together; the images do not depend on it
    beyond float tolerance, so it is not part of the key). Each cache folder holds the PNGs and a
    ``provenance.json``; it is written to a temporary folder and renamed, so it is either whole or absent.
    """
    settings = action_different_settings(cfg)
    root = action_different_cache_root(cfg)
    out: list = [None] * len(exemplars)
    missing = []
    for i, (exemplar, (sha, key)) in enumerate(zip(exemplars, cache_keys(backbone, exemplars, settings))):
        images = _cached(root / key, len(settings["prompts"]))
        if images is not None:
            out[i] = (images, {"key": key, "folder": str(root / key), "made": False})
        else:
            missing.append((i, exemplar, sha, key))
    group = cfg.action_different.tune_batch  # >= 1: ActionDifferentConfig checks it
    for start in range(0, len(missing), group):
        chunk = missing[start:start + group]
        seeds = [int(key[:8], 16) % 2**31 for _, _, _, key in chunk]
        made = tune_and_generate(backbone, [exemplar.image() for _, exemplar, _, _ in chunk], settings, seeds)
        for (i, exemplar, sha, key), seed, (images, history) in zip(chunk, seeds, made):
            _save(root, key, backbone, exemplar, sha, settings, images, seed, history, together=len(chunk))
            out[i] = (images, {"key": key, "folder": str(root / key), "made": True})
    return out


def _save(root: Path, key: str, backbone, exemplar, exemplar_sha: str, settings: dict, images: list, seed: int,
          history: list[float], together: int) -> None:
    from actionbench.results.record import now_iso, package_versions

    folder = root / key
    tmp = make_temp_dir(root, key)
    try:
        entries = []
        for k, (image, prompt) in enumerate(zip(images, settings["prompts"])):
            image.save(tmp / f"{k}.png", format="PNG")
            entries.append({"file": f"{k}.png", "prompt": prompt, "seed": seed + k})
        record = {
            "kind": "adi-action-different",
            "key": key,
            "backbone": backbone.fingerprint(),
            "exemplar": {"action_id": exemplar.action_id, "index": exemplar.index, "path": str(exemplar.path),
                         "sha256": exemplar_sha},
            "settings": settings,
            "images": entries,
            "tune_loss_history": history,
            "tuned_together": together,
            "created_at": now_iso(),
            "actionbench_version": package_versions().get("actionbench"),
        }
        (tmp / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same key first: keep theirs
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
