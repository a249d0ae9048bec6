"""A pose ControlNet for the mini model: the ``controlnet`` baseline's weights in the mini world.

On Stable Diffusion 2.1 the ``controlnet`` method uses a released OpenPose ControlNet; no such
model fits the mini UNet, so this trains one the same way (Zhang et al., 2023): a copy of the
frozen UNet's encoder (``ControlNetModel.from_unet``, zero convolutions at zero) learns to
denoise renders given their exact OpenPose maps and training captions. The maps go through the
same path as at generation: drawn at ``POSE_RESOLUTION`` by ``render_pose_map`` (the pose
extractor's drawing) and resized by the pipeline's control-image processor.

Weights ship in the package data, ``actionbench/data/mini/controlnet`` (diffusers layout, safetensors, float16).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

POSE_RESOLUTION = 512  # the controlnet method's pose_resolution default


@dataclass(frozen=True)
class ControlNetTrainConfig:
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 5e-4
    warmup_steps: int = 50
    seeds_per_pair: int = 4  # renders per (look, pose)
    seed: int = 0
    threads: int = 1


def pose_condition(keypoints, size: int) -> torch.Tensor:
    """The (3, size, size) control image of a render's keypoints, as the pipeline would see it."""
    from diffusers.image_processor import VaeImageProcessor

    from actionbench.worlds.mini.vae import PATCH
    from actionbench.worlds.synthetic import render_pose_map

    scale = POSE_RESOLUTION / size
    moved = [None if q is None else (q[0] * scale, q[1] * scale) for q in keypoints]
    pose_map = render_pose_map(moved, POSE_RESOLUTION).convert("RGB")
    processor = VaeImageProcessor(vae_scale_factor=PATCH, do_convert_rgb=True, do_normalize=False)
    return processor.preprocess(pose_map, height=size, width=size)[0]


def train_mini_controlnet(backbone: str = "mini", cfg: ControlNetTrainConfig = ControlNetTrainConfig(),
                          out: str | Path | None = None, log=print, replace_shipped: bool = False) -> dict:
    """Train a pose ControlNet on renders of the backbone's world (v2: with attributes and background types, named
    in the captions as in the base model's training) for the frozen mini model; save it to ``out`` (the folder is
    replaced whole). ``out`` None is the world's shipped ControlNet, written only with ``replace_shipped``
    (``ShippedDataError`` before any work otherwise)."""
    from diffusers import ControlNetModel

    from actionbench.backbone import load_backbone
    from actionbench.report import progress
    from actionbench.methods.controlnet import conditioning_channels
    from actionbench.training import diffusion_target
    from actionbench.worlds.mini.captions import render_labelled, scene_caption
    from actionbench.worlds.mini.folders import CONTROLNET_DIR, refuse_shipped, shipped_dir
    from actionbench.worlds.mini.model import MINI_RESOLUTION
    from actionbench.worlds.mini.lab.train import TrainConfig, warmup_cosine_lr
    from actionbench.worlds.mini.vae import PATCH
    from actionbench.worlds.mini.world import world_named

    world = world_named(backbone)
    out = refuse_shipped(out if out is not None else shipped_dir(world.name) / CONTROLNET_DIR, "actionbench mini controlnet",
                         replace_shipped, replaces_folder=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.time()
    model = load_backbone(backbone)
    unet, text_encoder, tokenizer, scheduler = model.unet, model.text_encoder, model.tokenizer, model.scheduler
    unet.requires_grad_(False)
    text_encoder.requires_grad_(False)

    rng = random.Random(f"mini-controlnet|{cfg.seed}")  # goes on to draw the captions
    images, meta, keypoints = render_labelled(cfg.seeds_per_pair, rng, seed_base=3_000_000, progress_desc="rendering",
                                              world=world)
    conditions = [pose_condition(k, MINI_RESOLUTION) for k in keypoints]
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    latents_all = torch.nn.functional.pixel_unshuffle(pixels, PATCH)
    conditions_all = torch.stack(conditions)
    render_s = time.time() - t0

    torch.manual_seed(cfg.seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=conditioning_channels(PATCH))
    controlnet.train()
    optimizer = torch.optim.Adam(controlnet.parameters(), lr=cfg.learning_rate)
    generator = torch.Generator().manual_seed(cfg.seed)
    caption_cfg = TrainConfig()
    losses = []
    t1 = time.time()
    for step in progress(range(cfg.steps), desc="mini controlnet", total=cfg.steps, unit="steps",
                         extra=lambda _: f"loss {np.mean(losses[-50:]):.4f}" if losses else ""):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, cfg.steps, cfg.learning_rate, cfg.warmup_steps)
        rows = torch.randint(0, len(meta), (cfg.batch_size,), generator=generator)
        latents, cond = latents_all[rows], conditions_all[rows]
        ids = tokenizer([scene_caption(meta[int(r)], rng, caption_cfg, world) for r in rows], padding="max_length",
                        max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            hidden = text_encoder(ids)[0]
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=generator)
        noisy = scheduler.add_noise(latents, noise, t)
        down, mid = controlnet(noisy, t, encoder_hidden_states=hidden, controlnet_cond=cond, return_dict=False)
        pred = unet(noisy, t, encoder_hidden_states=hidden, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid).sample
        loss = torch.nn.functional.mse_loss(pred, diffusion_target(scheduler, latents, noise, t))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(controlnet.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    train_s = time.time() - t1

    import os
    import shutil

    controlnet.eval().to(torch.float16)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".tmp-{os.getpid()}-{out.name}"  # written whole, then moved into place
    shutil.rmtree(tmp, ignore_errors=True)
    controlnet.save_pretrained(str(tmp), safe_serialization=True)
    record = {
        "backbone": backbone,
        "world": world.name,
        "backbone_steps": model.extra.get("steps"),
        "train_config": asdict(cfg),
        "train_images": len(meta),
        "final_loss_mean_last_200": float(np.mean(losses[-200:])),
        "loss_curve_every_250": [round(float(np.mean(losses[i:i + 250])), 5) for i in range(0, len(losses), 250)],
        "render_seconds": round(render_s, 1),
        "train_seconds": round(train_s, 1),
        "weights": "float16",
        "reproduce": f"actionbench mini controlnet --backbone {backbone}",
    }
    (tmp / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"mini controlnet: {cfg.steps} steps in {train_s:.0f}s, final loss {record['final_loss_mean_last_200']:.4f}; wrote {out}")
    return record
