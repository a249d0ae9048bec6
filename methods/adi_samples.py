"""ADI's action-different samples x^(ā,c): the anchor's person and background doing other actions.

The paper: "quickly train a subject-driven model on the single anchor image and generate the same
context with a different action" (no details given). Here: a copy of the UNet tuned on the one image
(attention weights by default; the backbone is never written), then sampled with prompts of actions
that are none of ActionBench's eight. Made once per exemplar and settings, and cached on disk.
``oracle_samples``: a rendered world's exact version of the same, for comparison.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from actionbench.config import SamplerConfig
from actionbench.errors import ConfigError
from actionbench.hashing import sha256_file, stable_hash
from actionbench.io import load_image, make_temp_dir
from actionbench.manifest import actionbench_home
from actionbench.training import (
    ExemplarSet,
    denoising_loss,
    draw_noise,
    encode_prompts,
    fixed_generator,
    make_optimizer,
    run_training,
    sample_images,
    trainable_copy,
    trainable_parameters,
)

ACTION_DIFFERENT_VERSION = 1
"""Bump when the action-different generation changes: it is part of the cache key."""


def action_different_settings(cfg) -> dict:
    """Everything that changes the action-different images (part of their cache key).

    The training ``seed`` is not: the images' seeds come from the key, so runs with other
    identifier seeds or mask settings reuse them.
    """
    prompts = [cfg.action_different_prompts[k % len(cfg.action_different_prompts)]
               for k in range(cfg.action_different_images)]
    return {
        "version": ACTION_DIFFERENT_VERSION,
        "prompts": prompts,
        "subject_prompt": cfg.action_different_subject_prompt,
        "tune_steps": cfg.action_different_tune_steps,
        "tune_lr": cfg.action_different_tune_lr,
        "tune_params": cfg.action_different_tune_params,
        "inference_steps": cfg.action_different_inference_steps,
        "guidance_scale": cfg.action_different_guidance_scale,
        "negative_prompt": cfg.action_different_negative_prompt,
    }


def action_different_cache_root(cfg) -> Path:
    if cfg.action_different_cache_dir:
        return Path(cfg.action_different_cache_dir).expanduser()
    return actionbench_home() / "adi-action-different"


def tune_and_generate(backbone, image, settings: dict, seed: int) -> tuple[list, list[float]]:
    """Tune a copy of the UNet on one image (DreamBooth-style), then draw that person doing other actions.

    Returns the images (one per prompt in ``settings["prompts"]``) and the tuning loss history.
    """
    # 1. A trainable fp32 copy of the UNet: the backbone's weights are never written.
    attention_only = settings["tune_params"] == "attention"
    unet = trainable_copy(backbone.unet, (lambda n: ".attn1." in n or ".attn2." in n) if attention_only else None)
    params = trainable_parameters(unet)

    # 2. Denoising loss on the single image captioned "a photo of sks person".
    single = ExemplarSet.from_images(backbone, [image], [settings["subject_prompt"]])
    text = encode_prompts(backbone, [settings["subject_prompt"]]).detach()
    generator = fixed_generator(seed)

    def loss(g: torch.Generator) -> torch.Tensor:
        latents = single.sample_latents([0], g)
        return denoising_loss(backbone, latents, text, draw_noise(backbone, latents, g), unet=unet)

    optimizer = make_optimizer(params, settings["tune_lr"])
    history = run_training(lambda _: loss(generator), optimizer, settings["tune_steps"],
                           desc="adi action-different tuning", heldout=loss)
    unet.requires_grad_(False).eval()
    if backbone.unet.dtype != torch.float32:
        torch.nn.Module.to(unet, dtype=backbone.unet.dtype)

    # 3. The same person doing other actions, one image per prompt, seeded from the cache key.
    prompts = settings["prompts"]
    sampling = SamplerConfig(num_inference_steps=settings["inference_steps"], guidance_scale=settings["guidance_scale"],
                             negative_prompt=settings["negative_prompt"], batch_size=min(4, len(prompts)))
    with torch.no_grad():
        embeds = encode_prompts(backbone, prompts)
    del optimizer  # its moments are as large as the tuned weights: free them before sampling
    return sample_images(backbone, embeds, [seed + k for k in range(len(prompts))], sampling, unet=unet), history


def action_different_key(fingerprint: dict, exemplar_sha256: str, settings: dict) -> str:
    """The cache key of one exemplar's action-different images: backbone, exemplar bytes, settings."""
    return stable_hash({"backbone": fingerprint, "exemplar_sha256": exemplar_sha256, "settings": settings})


def oracle_samples(exemplar, cfg) -> tuple[list, dict]:
    """The exemplar's own person, clothes and background in everyday poses, rendered by its world."""
    if exemplar.oracle is None:
        raise ConfigError(f"action_different_source=oracle needs a rendered world whose exemplars can be drawn in "
                          f"other poses (e.g. --suite mini-v2); {exemplar.path} cannot. Use "
                          "--set action_different_source=generated")
    return list(exemplar.oracle(cfg.action_different_images)), {"key": "oracle", "folder": "", "made": False}


def action_different_samples(backbone, exemplar, cfg) -> tuple[list, dict]:
    """The action-different images of one exemplar, from the cache or made (and cached) now.

    Returns (PIL images, {"key", "folder", "made"}). The cache folder holds the PNGs and a
    ``provenance.json``; it is written to a temporary folder and renamed, so it is either whole or absent.
    """
    settings = action_different_settings(cfg)
    exemplar_sha = sha256_file(exemplar.path)
    key = action_different_key(backbone.fingerprint(), exemplar_sha, settings)
    root = action_different_cache_root(cfg)
    folder = root / key
    record_path = folder / "provenance.json"
    if folder.is_dir():
        try:
            record = json.loads(record_path.read_text())
            files = [folder / item["file"] for item in record["images"]]
            if len(files) == len(settings["prompts"]) and all(f.is_file() for f in files):
                return [load_image(f) for f in files], {"key": key, "folder": str(folder), "made": False}
        except (OSError, ValueError, KeyError, TypeError):
            pass
        import shutil  # incomplete or edited by hand: make it again

        shutil.rmtree(folder, ignore_errors=True)

    seed = int(key[:8], 16) % 2**31
    images, history = tune_and_generate(backbone, exemplar.image(), settings, seed)
    from actionbench.results import now_iso, package_versions

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
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return images, {"key": key, "folder": str(folder), "made": True}
