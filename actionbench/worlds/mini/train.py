"""Training the mini base model: ``TrainConfig``, ``train_mini`` (from scratch or resumed), the EMA save.

``actionbench mini train`` reproduces the shipped model's first 2,200 steps (seeded);
``TrainConfig.init_from`` resumes from a folder (the exact commands are ``reproduce`` in the shipped
``model.json``). The weights written are the EMA of the parameters, as float16.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actionbench.worlds.mini.captions import caption, render_world
from actionbench.worlds.mini.folders import META_FILE, WEIGHTS_FILE, refuse_shipped, shipped_dir
from actionbench.worlds.mini.model import (
    MINI_DATASET_VERSION,
    MINI_RESOLUTION,
    build_mini_modules,
    load_weights,
    weights_state,
)
from actionbench.worlds.mini.vae import LATENT_CHANNELS, PATCH


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
    seed: int = 0
    threads: int = 1  # torch threads (0: leave as is); one is fastest on a shared CPU
    init_from: str | None = None  # resume: a folder with model.safetensors (+ model.json) to continue from
    checkpoint_every: int = 0  # also write the EMA weights into ``out`` every this many steps (0: only at the end)


def warmup_cosine_lr(step: int, steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warmup to ``peak``, then a cosine down to a tenth of it at the last step."""
    lr = peak * min(1.0, (step + 1) / warmup_steps)
    return lr * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)


def train_mini(cfg: TrainConfig = TrainConfig(), out: str | Path | None = None, log=print,
               replace_shipped: bool = False) -> dict:
    """Train the mini base model from scratch, or continue from ``cfg.init_from`` (fresh optimiser, EMA
    started at the loaded weights, the same warmup + cosine schedule over ``cfg.steps`` new steps);
    writes ``model.safetensors`` and ``model.json`` into ``out`` (None: the shipped folder, only with
    ``replace_shipped``; raises ``ShippedDataError`` before any work otherwise)."""
    from safetensors.torch import load_file

    from actionbench.backbone import SD21_SCHEDULER_CONFIG, build_tiny_tokenizer
    from actionbench.report import progress
    from actionbench.training import diffusion_target

    out = refuse_shipped(out if out is not None else shipped_dir(), "actionbench mini train", replace_shipped)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    world = render_world(cfg)
    render_s = time.time() - t0
    pixels = torch.from_numpy(world["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    latents_all = torch.nn.functional.pixel_unshuffle(pixels, PATCH)
    meta = world["meta"]
    n = len(meta)

    tokenizer = build_tiny_tokenizer()
    unet, text_encoder = build_mini_modules(cfg.seed)
    used_rows: set[int] = set()
    prev: dict = {}
    if cfg.init_from:
        init = Path(cfg.init_from)
        init_state = load_file(str(init / WEIGHTS_FILE))
        load_weights(unet, text_encoder, init_state)
        used_rows.update(int(r) for r in init_state["text_encoder.token_rows.index"])
        prev = json.loads((init / META_FILE).read_text()) if (init / META_FILE).is_file() else {}
    start_step = int(prev.get("steps", 0))
    unet.train()
    text_encoder.train()
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(**SD21_SCHEDULER_CONFIG)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.learning_rate)  # no weight decay: unused token rows stay as initialised
    ema = [p.detach().clone() for p in params]
    # a resumed run draws other batches than the run it continues
    generator = torch.Generator().manual_seed(cfg.seed + 7919 * start_step)
    rng = random.Random(f"mini-captions|{cfg.seed}" + (f"|from{start_step}" if start_step else ""))
    losses: list[float] = []
    t1 = time.time()
    for step in progress(range(cfg.steps), desc="mini train", total=cfg.steps, unit="steps",
                         extra=lambda _: f"loss {np.mean(losses[-50:]):.4f}" if losses else ""):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, cfg.steps, cfg.learning_rate, cfg.warmup_steps)
        rows = torch.randint(0, n, (cfg.batch_size,), generator=generator)
        lat = latents_all[rows]
        # once a flip mask (flips are off); the draw stays so every later batch is the shipped run's
        torch.rand(cfg.batch_size, generator=generator)
        texts = [caption(*meta[int(r)], rng, cfg) for r in rows]
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
            _save_ema(unet, text_encoder, params, ema, used_rows, out, cfg, losses, n, render_s,
                      time.time() - t1, start_step, prev, final=False)
    train_s = time.time() - t1
    record = _save_ema(unet, text_encoder, params, ema, used_rows, out, cfg, losses, n, render_s, train_s,
                       start_step, prev, final=True)
    log(f"mini: {cfg.steps} steps (total {start_step + cfg.steps}) in {train_s:.0f}s, "
        f"final loss {record['final_loss_mean_last_200']:.4f}; wrote {out}")
    return record


def _save_ema(unet, text_encoder, params, ema, used_rows, out: Path, cfg: TrainConfig, losses, n, render_s, train_s,
              start_step: int, prev: dict, final: bool) -> dict:
    """Write the EMA weights and the record into ``out`` (a checkpoint when not ``final``; training goes on)."""
    from safetensors.torch import save_file

    from actionbench.backbone import SD21_SCHEDULER_CONFIG

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
    save_file(state, str(out / WEIGHTS_FILE))
    record = {
        "world": MINI_DATASET_VERSION,
        "resolution": MINI_RESOLUTION,
        "latent": f"pixel unshuffle x{PATCH} -> {MINI_RESOLUTION // PATCH}x{MINI_RESOLUTION // PATCH}x{LATENT_CHANNELS}",
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
    }
    if not final:
        record["checkpoint"] = f"{len(losses)} of {cfg.steps} steps"
    if prev:
        record["resumed_from"] = {k: prev[k] for k in ("steps", "train_config", "final_loss_mean_last_200",
                                                       "loss_curve_every_250", "train_seconds", "resumed_from")
                                  if k in prev}
    (out / META_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record
