"""Fitting the mini v1 judge (``judge.MiniJudge``'s network) and the pieces the v2 judge's fit shares with it.

The judge is fitted on rendered images with their true labels. Generated images are noisier than renders, so it
is also fitted on renders *passed through the mini model* (SDEdit: noised to 30-70 % of the schedule, then
denoised by the model with the render's caption). They carry the generator's artefacts but keep the render's
labels, so the judge learns to read through the artefacts without ever seeing an unlabelled sample. Held-out
accuracy is measured on fresh renders with other seeds, clean and passed through the model, and recorded in
``judge.json`` and in ``describe()`` of every result.

``actionbench mini judge`` (``fit_mini_judge``) refits the shipped weights, ``actionbench/data/mini/judge.safetensors``.
"""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from actionbench.api.config import SamplerConfig
from actionbench.worlds.mini.folders import JUDGE_META, JUDGE_WEIGHTS, refuse_shipped, shipped_dir
from actionbench.worlds.mini.judge import JudgeNet, predict_indices, pose_classes, subject_classes, subject_label, to_tensor
from actionbench.worlds.mini.world import MINI_V1, WorldSpec

THROUGH_MODEL_STRENGTH = (0.3, 0.7)  # fraction of the noise schedule for the SDEdit training renders
HELDOUT_STRENGTH = (0.4, 0.6)


def render_labelled(per_pair: int, seed_base: int):
    """Every look in every pose ``per_pair`` times (half on named backgrounds): images and their ``captions.Scene`` s."""
    from actionbench.worlds.mini.captions import render_labelled as render_world_labelled

    images, meta, _ = render_world_labelled(per_pair, random.Random(f"mini-judge|{seed_base}"), seed_base)
    return images, meta


THROUGH_MODEL_SAMPLER = SamplerConfig(num_inference_steps=20, guidance_scale=4.0, batch_size=64)
"""How renders are passed through the model for the judge's training and held-out sets (SDEdit)."""


@torch.no_grad()
def through_model(backbone, images: np.ndarray, meta, strength: tuple[float, float], seed: int,
                  sampler: SamplerConfig = THROUGH_MODEL_SAMPLER, world: WorldSpec = MINI_V1) -> np.ndarray:
    """SDEdit: noise each batch of renders to a random ``strength`` of the schedule and let the model
    denoise it with the renders' training captions (``world``'s caption rules). Labels stay the render's;
    the pixels get the model's artefacts."""
    from actionbench.report import progress
    from actionbench.training import encode_prompts, sdedit
    from actionbench.worlds.mini.captions import scene_caption
    from actionbench.worlds.mini.lab.train import TrainConfig

    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(f"mini-judge-sdedit|{seed}")
    caption_cfg = TrainConfig(uncond_fraction=0.0)
    uncond = encode_prompts(backbone, [""])
    vae = backbone.vae
    out = []
    starts = range(0, len(images), sampler.batch_size)
    for start in progress(starts, desc=f"through the model ({len(images)} renders)", total=len(starts),
                          unit="batches"):
        x = to_tensor(images[start:start + sampler.batch_size])
        latents = vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        captions = [scene_caption(m, rng, caption_cfg, world) for m in meta[start:start + sampler.batch_size]]
        cond = encode_prompts(backbone, captions)
        z = sdedit(backbone, latents, cond, rng.uniform(*strength), sampler, generator, negative_prompt_embeds=uncond)
        x = vae.decode(z / vae.config.scaling_factor).sample.clamp(-1, 1)
        out.append(((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pixel noise of random strength (most batches) and a shift of up to 2 pixels."""
    n = len(x)
    sigma = torch.rand(n, 1, 1, 1, generator=generator) * 0.25
    sigma = sigma * (torch.rand(n, 1, 1, 1, generator=generator) < 0.7)
    x = x + sigma * torch.randn(x.shape, generator=generator)
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    return torch.roll(x, (dy, dx), (2, 3)).clamp(-1.2, 1.2)


def _labels(meta, poses: list[str], subjects: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor([poses.index(m.pose) for m in meta]),
            torch.tensor([subjects.index(subject_label(m.look)) for m in meta]))


def train_classifier(net: nn.Module, x: torch.Tensor, loss_of: Callable[[Any, torch.Tensor], torch.Tensor], epochs: int,
                     seed: int, desc: str, learning_rate: float = 2e-3, batch_size: int = 64) -> list[float]:
    """Fit a judge network: AdamW with a cosine schedule, ``augment``ed batches; ``loss_of(outputs, batch_index)``
    is the loss of one batch. Returns the mean loss per epoch. Used by the v1 and v2 judges."""
    from actionbench.report import progress

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    per_epoch = len(x) // batch_size
    total, step, losses = epochs * per_epoch, 0, []
    net.train()
    for _ in progress(range(epochs), desc=desc, total=epochs):
        order = torch.randperm(len(x), generator=generator)
        running = 0.0
        for i in range(per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = loss_of(net(augment(x[idx], generator)), idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
            step += 1
        losses.append(round(running / per_epoch, 4))
    net.eval()
    return losses


def _train(net: JudgeNet, x: torch.Tensor, pose_y: torch.Tensor, subject_y: torch.Tensor, epochs: int,
           seed: int) -> list[float]:
    def loss_of(logits, idx):
        return F.cross_entropy(logits[0], pose_y[idx]) + F.cross_entropy(logits[1], subject_y[idx])

    return train_classifier(net, x, loss_of, epochs, seed, "mini judge")


def _accuracy(net, x, pose_y, subject_y) -> tuple[float, float]:
    pose_pred, subject_pred = predict_indices(net, x)
    return float(np.mean(pose_pred == pose_y.numpy())), float(np.mean(subject_pred == subject_y.numpy()))


def fit_mini_judge(out: str | Path | None = None, backbone: str = "mini", per_pair: int = 8,
                   through_model_fraction: float = 0.5, heldout_per_pair: int = 2, epochs: int = 12,
                   seed: int = 0, log=print, replace_shipped: bool = False) -> dict:
    """Fit the judge on fresh renders (a share of them passed through ``backbone``); measure held-out
    accuracy on renders with other seeds, clean and through the model; save weights and record into
    ``out`` (None: the shipped folder, only with ``replace_shipped``; ``ShippedDataError`` otherwise)."""
    from safetensors.torch import save_file

    from actionbench.backbone import load_backbone

    out = refuse_shipped(out if out is not None else shipped_dir(), "actionbench mini judge", replace_shipped)
    torch.manual_seed(seed)
    t0 = time.time()
    poses, subjects = pose_classes(), subject_classes()
    model = load_backbone(backbone) if through_model_fraction > 0 else None
    images, meta = render_labelled(per_pair, seed_base=7_000_000)
    if model is not None:
        every = max(1, round(1 / through_model_fraction))
        passed = through_model(model, images[::every], meta[::every], THROUGH_MODEL_STRENGTH, seed=seed + 2)
        images, meta = np.concatenate([images, passed]), meta + meta[::every]
    pose_y, subject_y = _labels(meta, poses, subjects)
    net = JudgeNet(len(poses), len(subjects))
    losses = _train(net, to_tensor(images), pose_y, subject_y, epochs, seed)

    heldout, heldout_meta = render_labelled(heldout_per_pair, seed_base=9_000_000)
    pose_h, subject_h = _labels(heldout_meta, poses, subjects)
    pose_acc, subject_acc = _accuracy(net, to_tensor(heldout), pose_h, subject_h)
    meta_out = {
        "classifier": "6-block CNN, two linear heads (pose, subject), AdamW + cosine, pixel-noise and shift augmentation",
        "pose_classes": poses,
        "subject_classes": subjects,
        "train_images": len(meta),
        "through_model": {"backbone": backbone, "fraction_of_renders": through_model_fraction,
                          "strength": list(THROUGH_MODEL_STRENGTH)} if model is not None else None,
        "epochs": epochs,
        "loss_per_epoch": losses,
        "heldout_images": len(heldout_meta),
        "heldout_pose_accuracy": round(pose_acc, 4),
        "heldout_subject_accuracy": round(subject_acc, 4),
    }
    if model is not None:
        passed = through_model(model, heldout, heldout_meta, HELDOUT_STRENGTH, seed=seed + 3)
        pose_m, subject_m = _accuracy(net, to_tensor(passed), pose_h, subject_h)
        meta_out["heldout_through_model"] = {"strength": list(HELDOUT_STRENGTH), "pose_accuracy": round(pose_m, 4),
                                             "subject_accuracy": round(subject_m, 4)}
    meta_out["fit_seconds"] = round(time.time() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    from actionbench.io import atomic_path

    with atomic_path(out / JUDGE_WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    with atomic_path(out / JUDGE_META) as tmp:
        Path(tmp).write_text(json.dumps(meta_out, indent=2) + "\n")
    log(f"mini judge: held-out pose accuracy {pose_acc:.3f}, subject accuracy {subject_acc:.3f} (clean renders)"
        + (f"; through the model {meta_out['heldout_through_model']['pose_accuracy']:.3f} / "
           f"{meta_out['heldout_through_model']['subject_accuracy']:.3f}" if model is not None else ""))
    return meta_out
