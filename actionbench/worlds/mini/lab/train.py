"""Training the mini base model of any world: ``TrainConfig``, ``train_mini`` (from scratch, resumed, or
warm-started from an earlier world's model), the EMA save.

``actionbench mini train`` reproduces the shipped v1 model's first 2,200 steps (seeded);
``actionbench mini train --world v2`` is v2's first stage (``stage_one_config``): v1's shipped model
warm-started into v2's UNet (``model.warm_start``: the new attention blocks start at zero, so
training starts from v1's function). ``TrainConfig.init_from`` resumes from a folder. Every
``model.json`` records the command that reproduces it (``reproduce``, the stages joined by ``&&``).
The weights written are the EMA of the parameters, as float16.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from actionbench.worlds.mini.captions import render_world, scene_caption
from actionbench.worlds.mini.folders import META_FILE, WEIGHTS_FILE, refuse_shipped, shipped_dir, shipped_model_dir
from actionbench.worlds.mini.model import build_mini_modules, load_weights, warm_start, weights_state
from actionbench.worlds.mini.vae import LATENT_CHANNELS, PATCH
from actionbench.worlds.mini.world import MINI_V1, MINI_V2, MINI_V3C, MINI_V3P, MINI_V3Q, WORLDS, WorldSpec


@dataclass(frozen=True)
class TrainConfig:
    """Base-model training; the defaults are the shipped model's first stage (docs/mini.md has the rest)."""

    steps: int = 2200
    batch_size: int = 32
    learning_rate: float = 1.5e-3
    warmup_steps: int = 100
    ema_decay: float = 0.995
    seeds_per_pair: int = 6  # renders per (look, pose)
    named_background_fraction: float = 0.5
    uncond_fraction: float = 0.1  # empty caption, for classifier-free guidance
    drop_pose_fraction: float = 0.2  # everyday images captioned without their pose
    action_pose_repeats: int = 1  # renders of a benchmark pose per everyday pose's (never captioned by name)
    pose_parts_fraction: float = 0.0  # renders captioned with their pose's parts (``captions.POSE_PARTS``), any pose
    seed: int = 0
    threads: int = 1  # torch threads (0: leave as is); one is fastest on a shared CPU
    init_from: str | None = None  # resume: a folder with model.safetensors (+ model.json) to continue from
    checkpoint_every: int = 0  # also write the EMA weights into ``out`` every this many steps (0: only at the end)
    world: str = MINI_V1.name  # the world version it trains (``world.WORLDS``)
    new_block_learning_rate: float | None = None  # peak for blocks the initial weights lack (None: learning_rate)


# v2's first stage, warm-started from v1's shipped model (docs/mini-v2-design.md, "decided"): v1's stage-1
# peak for the new attention blocks; for the warm weights v1's peak of its stages 2-3, the rate at which it
# went on learning content (v2 adds garments, props and scenes the convolutions must learn to draw).
# Steps: about 70 CPU-minutes at the 1.65 s of CPU a step measured in this loop on one thread (batch 32,
# on the shared 2-core machine; 1.2 s for the bare forward and backward), plus about a minute of rendering.
V2_STAGE_ONE = TrainConfig(world=MINI_V2.name, steps=2500, learning_rate=6e-4, new_block_learning_rate=1.5e-3,
                           seeds_per_pair=16)


# Lever 3 of docs/mini-v3-preregistration.md: v2's shipped model (warm start, all tensors match) trained on for
# 3,000 steps at v2's last stage's peak and renders per pair, with the 8 benchmark poses rendered 3x as often as
# an everyday pose (24 of 35 renders per look instead of 8 of 19). Chosen before any v3c result, not tuned.
V3C_STAGE = TrainConfig(world=MINI_V3C.name, steps=3000, learning_rate=3e-4, seeds_per_pair=16,
                        action_pose_repeats=3)

# Lever 5 of docs/mini-v3-preregistration.md: lever 3's stage (v2's shipped model, 3,000 steps at 3e-4, 16 renders
# per pair) with v2's share of benchmark-pose renders, and half of all renders captioned with their pose's parts.
# Chosen before any v3p result, not tuned.
V3P_STAGE = TrainConfig(world=MINI_V3P.name, steps=3000, learning_rate=3e-4, seeds_per_pair=16,
                        pose_parts_fraction=0.5)

# Lever 6: lever 5's stage with lever 3's share of benchmark-pose renders; the one setting that differs from
# V3P_STAGE takes lever 3's value. Chosen before any v3q result, not tuned.
V3Q_STAGE = replace(V3P_STAGE, world=MINI_V3Q.name, action_pose_repeats=V3C_STAGE.action_pose_repeats)


def stage_one_config(world: str = MINI_V1.name) -> TrainConfig:
    """A world's first training stage: v1's from scratch (the ``TrainConfig`` defaults), v2's ``V2_STAGE_ONE``,
    v3c's ``V3C_STAGE``."""
    stages = {MINI_V2.name: V2_STAGE_ONE, MINI_V3C.name: V3C_STAGE, MINI_V3P.name: V3P_STAGE,
              MINI_V3Q.name: V3Q_STAGE}
    return stages.get(world) or TrainConfig(world=world)


def warmup_cosine_lr(step: int, steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warmup to ``peak``, then a cosine down to a tenth of it at the last step."""
    lr = peak * min(1.0, (step + 1) / warmup_steps)
    return lr * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)


def train_mini(cfg: TrainConfig = TrainConfig(), out: str | Path | None = None, log=print,
               replace_shipped: bool = False) -> dict:
    """Train the mini base model of ``cfg.world`` from scratch, or continue from ``cfg.init_from`` (fresh
    optimiser, EMA started at the loaded weights, the same warmup + cosine schedule over ``cfg.steps`` new
    steps). A model of the world's ``warm_start_from`` world (by default its shipped one) is warm-started
    (``model.warm_start``); the blocks it lacks train at ``cfg.new_block_learning_rate``. Writes
    ``model.safetensors`` and ``model.json`` into ``out`` (None: the world's shipped folder, only with
    ``replace_shipped``; raises ``ShippedDataError`` before any work otherwise)."""
    from actionbench.backbone import SD21_SCHEDULER_CONFIG, build_tiny_tokenizer
    from actionbench.report import progress
    from actionbench.training import diffusion_target

    world = WORLDS[cfg.world]
    out = refuse_shipped(out if out is not None else shipped_model_dir(world.name), "actionbench mini train", replace_shipped)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    rendered = render_world(cfg, world=world)
    render_s = time.time() - t0
    pixels = torch.from_numpy(rendered["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    latents_all = torch.nn.functional.pixel_unshuffle(pixels, PATCH)
    meta = rendered["meta"]
    n = len(meta)

    tokenizer = build_tiny_tokenizer()
    unet, text_encoder = build_mini_modules(cfg.seed, world)
    used_rows: set[int] = set()
    prev, warm, new_blocks = _initialise(unet, text_encoder, cfg, world, used_rows)
    start_step = int(prev.get("steps", 0))
    unet.train()
    text_encoder.train()
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(**SD21_SCHEDULER_CONFIG)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    fresh = {id(p) for name, p in unet.named_parameters() if name in new_blocks}
    groups = [{"params": [p for p in params if id(p) not in fresh], "peak": cfg.learning_rate}]
    if fresh:
        groups.append({"params": [p for p in params if id(p) in fresh],
                       "peak": cfg.new_block_learning_rate or cfg.learning_rate})
    optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate)  # no weight decay: unused token rows stay as initialised
    ema = [p.detach().clone() for p in params]
    # a resumed run draws other batches than the run it continues
    generator = torch.Generator().manual_seed(cfg.seed + 7919 * start_step)
    rng = random.Random(f"mini-captions|{cfg.seed}" + (f"|from{start_step}" if start_step else ""))
    losses: list[float] = []
    t1 = time.time()
    save = dict(n=n, render_s=render_s, start_step=start_step, prev=prev, warm=warm, out=out)
    for step in progress(range(cfg.steps), desc=f"{world.name} train", total=cfg.steps, unit="steps",
                         extra=lambda _: f"loss {np.mean(losses[-50:]):.4f}" if losses else ""):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, cfg.steps, group["peak"], cfg.warmup_steps)
        rows = torch.randint(0, n, (cfg.batch_size,), generator=generator)
        lat = latents_all[rows]
        # once a flip mask (flips are off); the draw stays so every later batch is the shipped run's
        torch.rand(cfg.batch_size, generator=generator)
        texts = [scene_caption(meta[int(r)], rng, cfg, world) for r in rows]
        ids = tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        used_rows.update(int(i) for i in ids.unique())
        noise = torch.randn(lat.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=generator)
        noisy = scheduler.add_noise(lat, noise, t)
        target = diffusion_target(scheduler, lat, noise, t)
        hidden = text_encoder(ids)[0]
        pred = unet(noisy, t, encoder_hidden_states=hidden).sample
        loss = torch.nn.functional.mse_loss(pred, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        with torch.no_grad():
            d = min(cfg.ema_decay, (1 + step) / (10 + step))
            for e, p in zip(ema, params):
                e.mul_(d).add_(p.detach(), alpha=1 - d)
        losses.append(float(loss.detach()))
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _save_ema(unet, text_encoder, params, ema, used_rows, cfg, world, losses, time.time() - t1, final=False,
                      **save)
    train_s = time.time() - t1
    record = _save_ema(unet, text_encoder, params, ema, used_rows, cfg, world, losses, train_s, final=True, **save)
    log(f"{world.name}: {cfg.steps} steps (total {start_step + cfg.steps}) in {train_s:.0f}s, "
        f"final loss {record['final_loss_mean_last_200']:.4f}; wrote {out}")
    return record


def _initialise(unet, text_encoder, cfg: TrainConfig, world: WorldSpec, used_rows: set) -> tuple[dict, dict, set]:
    """Load the initial weights: resume a model of ``world`` from ``cfg.init_from``, or warm-start from a
    model of ``world.warm_start_from`` (``cfg.init_from``, by default that world's shipped one).

    Returns:
        the resumed model's record (or {}), the warm start's record (or {}), the UNet parameter names
        the initial weights lacked.
    """
    from safetensors.torch import load_file

    from actionbench.errors import ConfigError
    from actionbench.hashing import sha256_file

    if cfg.init_from:
        folder = Path(cfg.init_from)
    elif world.warm_start_from:
        folder = shipped_dir(world.warm_start_from)
    else:
        return {}, {}, set()
    state = load_file(str(folder / WEIGHTS_FILE))
    used_rows.update(int(r) for r in state["text_encoder.token_rows.index"])
    record = json.loads((folder / META_FILE).read_text()) if (folder / META_FILE).is_file() else {}
    source = record.get("world", MINI_V1.name)
    if source == world.name:
        load_weights(unet, text_encoder, state)
        return record, {}, set()
    if source != world.warm_start_from:
        raise ConfigError(f"{folder} holds a {source} model; {world.name} training continues a {world.name} model"
                          + (f" or starts from a {world.warm_start_from} one" if world.warm_start_from else ""))
    new_blocks = set(warm_start(unet, text_encoder, state))
    warm = {"world": source, "folder": str(folder), "steps": record.get("steps"),
            "weights_sha256": sha256_file(folder / WEIGHTS_FILE), "reproduce": record.get("reproduce"),
            "new_unet_tensors": len(new_blocks),
            "new_output_projections": "zero (the model starts as the warm-start model's function)"}
    return {}, warm, new_blocks


def reproduce_command(cfg: TrainConfig, out: Path) -> str:
    """The ``actionbench mini train`` command of this stage: the options that differ from the world's first stage."""
    first = stage_one_config(cfg.world)
    parts = ["actionbench mini train"] + ([f"--world {cfg.world}"] if cfg.world != MINI_V1.name else [])
    parts += [f"--init-from {cfg.init_from}"] if cfg.init_from else []
    for field, flag in (("steps", "--steps"), ("learning_rate", "--lr"), ("new_block_learning_rate", "--new-lr"),
                        ("seeds_per_pair", "--seeds-per-pair"), ("action_pose_repeats", "--action-pose-repeats"),
                        ("pose_parts_fraction", "--pose-parts-fraction"), ("seed", "--seed")):
        if getattr(cfg, field) != getattr(first, field):
            parts.append(f"{flag} {getattr(cfg, field)}")
    return " ".join(parts + [f"--out {out}"])


def _save_ema(unet, text_encoder, params, ema, used_rows, cfg: TrainConfig, world: WorldSpec, losses, train_s,
              final: bool, n: int, render_s: float, start_step: int, prev: dict, warm: dict, out: Path) -> dict:
    """Write the EMA weights and the record into ``out`` (a checkpoint when not ``final``; training goes on)."""
    from safetensors.torch import save_file

    from actionbench.backbone import SD21_SCHEDULER_CONFIG
    from actionbench.worlds.synthetic import renderer_source_sha256

    with torch.no_grad():
        live = [p.detach().clone() for p in params]
        for e, p in zip(ema, params):
            p.copy_(e)
    state = weights_state(unet, text_encoder, used_rows)
    if not final:
        with torch.no_grad():
            for value, p in zip(live, params):
                p.copy_(value)
    else:
        unet.eval()
        text_encoder.eval()
    out.mkdir(parents=True, exist_ok=True)
    from actionbench.io import atomic_path

    with atomic_path(out / WEIGHTS_FILE) as tmp:  # a reader of a checkpoint never sees half a file
        save_file(state, str(tmp))
    side = world.resolution // PATCH
    record = {
        "world": world.name,
        "resolution": world.resolution,
        "latent": f"pixel unshuffle x{PATCH} -> {side}x{side}x{LATENT_CHANNELS}",
        "prediction_type": SD21_SCHEDULER_CONFIG["prediction_type"],
        "train_config": cfg.__dict__,
        "steps": start_step + len(losses),
        "train_images": n,
        "final_loss_mean_last_200": float(np.mean(losses[-200:])),
        "loss_curve_every_250": [round(float(np.mean(losses[i:i + 250])), 5) for i in range(0, len(losses), 250)],
        "render_seconds": round(render_s, 1),
        "train_seconds": round(train_s, 1),
        "torch_threads": torch.get_num_threads(),
        "unet_parameters": sum(p.numel() for p in unet.parameters()),
        "text_encoder_trained_token_rows": len(used_rows),
        "weights": "EMA of the parameters, stored as float16",
        "renderer_source_sha256": renderer_source_sha256(),  # which renders this stage trained on
    }
    if not final:
        record["checkpoint"] = f"{len(losses)} of {cfg.steps} steps"
    if warm:
        record["warm_start"] = warm
    if prev:
        record["resumed_from"] = {k: prev[k] for k in ("steps", "train_config", "final_loss_mean_last_200",
                                                       "loss_curve_every_250", "train_seconds", "resumed_from",
                                                       "warm_start", "renderer_source_sha256")
                                  if k in prev}
    stage = reproduce_command(cfg, out)
    record["reproduce"] = f"{prev['reproduce']} && {stage}" if prev.get("reproduce") else stage
    with atomic_path(out / META_FILE) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return record
