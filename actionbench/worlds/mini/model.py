"""ActionBench-mini: an offline world where methods really learn and scores are exact.

* World: 32x32 renders of ``actionbench.worlds.synthetic`` (23 subjects + 10 generic exemplar people,
  19 poses). Training captions name the subject and only the 11 *everyday* poses ("a cat
  standing"); images of the 8 benchmark actions are in the training set too, but their
  captions never name the action ("a photo of a cat"), so the model can draw them while
  text alone cannot ask for them. A customization method has to find them from exemplars.
* Base model ("mini" backbone): Stable Diffusion's structure so every method applies
  unchanged: the CLIP tokenizer, a small ``CLIPTextModel`` and a ``UNet2DConditionModel``
  with linear-projection cross-attention, trained jointly, DDIM with v-prediction
  (SD 2.1's scheduler). The "VAE" is a fixed, exact pixel (un)shuffle (``PixelShuffleVAE``):
  a 32x32x3 image is a 16x16x12 latent, so nothing needs to learn an autoencoder.
* Weights ship in ``actionbench/data/mini`` (``model.safetensors`` + ``model.json``).
  ``actionbench mini train`` reproduces the first 2,200 steps (seeded); ``TrainConfig.init_from``
  resumes from them (the exact command is ``reproduce`` in ``model.json``).
"""
from __future__ import annotations

import json
from importlib import resources
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from actionbench.backbone import TINY_TEXT_CONFIG

MINI = "mini"
MINI_RESOLUTION = 32
PATCH = 2
LATENT_CHANNELS = 3 * PATCH * PATCH
MINI_DATASET_VERSION = "mini-v1"
DATA_DIR = Path(str(resources.files("actionbench.data") / "mini"))  # the shipped weights (package data)
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
CONTROLNET_DIR = "controlnet"

MINI_UNET_CONFIG = dict(
    sample_size=MINI_RESOLUTION // PATCH,
    in_channels=LATENT_CHANNELS,
    out_channels=LATENT_CHANNELS,
    layers_per_block=1,
    block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=8,
    use_linear_projection=True,  # as in SD 2.x
    norm_num_groups=16,
)
# The tiny text encoder, narrower in depth: 2 layers (not 5), a wider MLP.
MINI_TEXT_CONFIG = dict(TINY_TEXT_CONFIG, intermediate_size=64, num_hidden_layers=2)
EMBEDDING_INIT_SEED = 20240607
EMBEDDING_INIT_STD = 0.02

# The words the captions use for the everyday poses. The 8 benchmark actions have none.
POSE_WORDS = {
    "stand": "standing",
    "walk": "walking",
    "run": "running",
    "wave": "waving",
    "lie": "lying down",
    "touch_toes": "touching the toes",
    "jump": "jumping",
    "kick": "kicking",
    "arms_crossed": "with arms crossed",
    "hands_on_hips": "with hands on the hips",
    "kneel": "kneeling",
}


@dataclass(frozen=True)
class TrainConfig:
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


# --- the fixed pixel "VAE" ----------------------------------------------------------------

def _make_vae_class():
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
    from diffusers.models.modeling_outputs import AutoencoderKLOutput
    from diffusers.models.modeling_utils import ModelMixin

    class PixelShuffleVAE(ModelMixin, ConfigMixin):
        """An exact, non-learned "autoencoder": pixel unshuffle by ``patch`` (latent std ~0).

        Exposes what the pipeline and the training helpers use: ``encode(x).latent_dist``
        (mean, std, sample, mode), ``decode(z).sample``, ``config.scaling_factor`` and
        ``config.block_out_channels`` (its length gives ``vae_scale_factor == patch``).
        """

        @register_to_config
        def __init__(self, patch: int = PATCH, latent_channels: int = LATENT_CHANNELS, scaling_factor: float = 1.0,
                     block_out_channels: tuple = (1, 1), force_upcast: bool = False, shift_factor: float | None = None):
            super().__init__()
            self.register_buffer("_anchor", torch.zeros(1), persistent=False)  # gives the module a dtype/device

        def encode(self, x, return_dict: bool = True):
            z = torch.nn.functional.pixel_unshuffle(x, self.config.patch)
            dist = DiagonalGaussianDistribution(torch.cat([z, torch.full_like(z, -30.0)], dim=1))
            return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

        def decode(self, z, return_dict: bool = True, generator=None):
            x = torch.nn.functional.pixel_shuffle(z, self.config.patch)
            return DecoderOutput(sample=x) if return_dict else (x,)

        # memory options the backbone loader toggles: nothing to slice or tile here
        def enable_slicing(self):
            pass

        def disable_slicing(self):
            pass

        def enable_tiling(self, *args, **kwargs):
            pass

        def disable_tiling(self):
            pass

        def forward(self, x):
            return self.decode(self.encode(x).latent_dist.mode()).sample

    return PixelShuffleVAE


_VAE_CLASS = None


def pixel_vae():
    global _VAE_CLASS
    if _VAE_CLASS is None:
        _VAE_CLASS = _make_vae_class()
    return _VAE_CLASS()


# --- model --------------------------------------------------------------------------------

def build_mini_modules(seed: int = 0):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from actionbench.backbone import seeded

    with seeded(seed):
        unet = UNet2DConditionModel(**MINI_UNET_CONFIG)
    with seeded(seed + 2):
        text_encoder = CLIPTextModel(CLIPTextConfig(**MINI_TEXT_CONFIG))
    emb = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        emb.copy_(base_token_embedding(emb.shape[0], emb.shape[1]))
    return unet, text_encoder


def base_token_embedding(vocab: int, dim: int) -> torch.Tensor:
    """The fixed initial token embedding; only the rows the captions use are trained and shipped."""
    g = torch.Generator().manual_seed(EMBEDDING_INIT_SEED)
    return torch.randn(vocab, dim, generator=g) * EMBEDDING_INIT_STD


def make_backbone(unet, text_encoder, meta: dict | None = None, name: str = MINI):
    from diffusers import DDIMScheduler

    from actionbench.backbone import SD21_SCHEDULER_CONFIG, Backbone, build_tiny_tokenizer

    meta = meta or {}
    extra = {"world": MINI_DATASET_VERSION}
    for key in ("weights_sha256", "steps"):
        if key in meta:
            extra[key] = meta[key]
    return Backbone(
        id=name,
        tokenizer=build_tiny_tokenizer(),
        text_encoder=text_encoder,
        unet=unet,
        vae=pixel_vae(),
        scheduler=DDIMScheduler(**SD21_SCHEDULER_CONFIG),
        resolution=MINI_RESOLUTION,
        extra=extra,
    )


def weights_state(unet, text_encoder, trained_rows: Sequence[int]) -> dict[str, torch.Tensor]:
    state = {f"unet.{k}": v.detach().to(torch.float16).contiguous() for k, v in unet.state_dict().items()}
    rows = torch.tensor(sorted(int(r) for r in trained_rows), dtype=torch.int64)
    for k, v in text_encoder.state_dict().items():
        if k.endswith("token_embedding.weight"):
            state["text_encoder.token_rows.index"] = rows
            state["text_encoder.token_rows.weight"] = v.detach()[rows].to(torch.float16).contiguous()
        elif k.endswith("position_ids"):
            continue
        else:
            state[f"text_encoder.{k}"] = v.detach().to(torch.float16).contiguous()
    return state


def load_weights(unet, text_encoder, state: dict[str, torch.Tensor]) -> None:
    unet.load_state_dict({k[5:]: v.float() for k, v in state.items() if k.startswith("unet.")})
    te = {k[13:]: v.float() for k, v in state.items() if k.startswith("text_encoder.") and "token_rows" not in k}
    emb = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        emb[state["text_encoder.token_rows.index"]] = state["text_encoder.token_rows.weight"].float()
    te["embeddings.token_embedding.weight"] = emb.detach().clone()
    missing, unexpected = text_encoder.load_state_dict(te, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"mini text encoder weights do not match: missing {missing}, unexpected {unexpected}")


def mini_folder(backbone_id: str) -> Path:
    """The folder a mini backbone id loads from: the shipped one for "mini", FOLDER for "mini:FOLDER"."""
    return Path(backbone_id.split(":", 1)[1]) if ":" in backbone_id else DATA_DIR


def mini_controlnet_source(backbone_id: str) -> str | None:
    """``local:`` path of the pose ControlNet beside a mini backbone's weights, or None if it has none."""
    folder = mini_folder(backbone_id) / CONTROLNET_DIR
    return f"local:{folder}" if (folder / "config.json").is_file() else None


def load_mini_backbone(name: str = MINI, folder: str | Path | None = None):
    """The shipped mini backbone (``name`` "mini"), or "mini:/path/to/folder" for weights made by ``actionbench mini train``."""
    from safetensors.torch import load_file

    from actionbench.errors import ActionBenchError

    folder = Path(folder) if folder is not None else mini_folder(name)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ActionBenchError(f"mini backbone weights not found at {path}; run `actionbench mini train --out {folder}`")
    meta = json.loads((folder / META_FILE).read_text()) if (folder / META_FILE).is_file() else {}
    from actionbench.hashing import sha256_file

    meta["weights_sha256"] = sha256_file(path)
    unet, text_encoder = build_mini_modules()
    load_weights(unet, text_encoder, load_file(str(path)))
    backbone = make_backbone(unet, text_encoder, meta, name=name)
    backbone.pose_controlnet = mini_controlnet_source(name) or "from_unet"
    return backbone


# --- the world: captions and renders ------------------------------------------------------

def look_words(look_id: str) -> str:
    from actionbench.worlds.synthetic import LOOKS, SUBJECTS

    for sid, name, _ in SUBJECTS:
        if sid == look_id:
            return name
    return LOOKS[look_id].words


def world_looks() -> list[str]:
    from actionbench.worlds.synthetic import EXEMPLAR_LOOKS, SUBJECT_IDS

    return list(SUBJECT_IDS) + list(EXEMPLAR_LOOKS)


def world_poses() -> list[str]:
    from actionbench.worlds.synthetic import POSES

    return list(POSES)


def caption(look_id: str, pose: str, background: str | None, rng: random.Random, cfg: TrainConfig) -> str:
    """A training caption: subject, everyday pose words (never an action's), maybe the background."""
    from actionbench.worlds.synthetic import BACKGROUNDS

    if rng.random() < cfg.uncond_fraction:
        return ""
    subject = look_words(look_id)
    words = POSE_WORDS.get(pose)
    if words is not None and rng.random() < cfg.drop_pose_fraction:
        words = None
    bg = BACKGROUNDS[background].words if background and rng.random() < 0.8 else None
    parts = [subject] + ([words] if words else []) + ([bg] if bg else [])
    text = " ".join(parts)
    return text if rng.random() < 0.5 else f"a photo of {text}"


def render_world(cfg: TrainConfig, size: int = MINI_RESOLUTION, progress_desc: str | None = "rendering") -> dict:
    """Render the training set: every look in every pose, ``seeds_per_pair`` times."""
    from actionbench.io import progress
    from actionbench.worlds.synthetic import BACKGROUNDS

    looks, poses = world_looks(), world_poses()
    bg_names = list(BACKGROUNDS)
    rng = random.Random(f"mini-world|{cfg.seed}")
    items = [(l, p, k) for l in looks for p in poses for k in range(cfg.seeds_per_pair)]
    images = np.zeros((len(items), size, size, 3), dtype=np.uint8)
    meta = []
    from actionbench.worlds.synthetic import render

    for i, (look, pose, k) in enumerate(progress(items, desc=progress_desc, total=len(items))):
        seed = 1_000_000 + rng.randrange(1 << 30)
        background = bg_names[rng.randrange(len(bg_names))] if rng.random() < cfg.named_background_fraction else None
        images[i] = np.asarray(render(look, pose, size=size, seed=seed, background=background).image)
        meta.append((look, pose, background))
    return {"images": images, "meta": meta}


def render_labelled(per_pair: int, rng: random.Random, seed_base: int, progress_desc: str | None = None):
    """Every look in every pose ``per_pair`` times, half on named backgrounds, seeds drawn from ``rng``.

    Returns the images (uint8, N x 32 x 32 x 3), their (look, pose, background) and their keypoints.
    """
    from actionbench.io import progress
    from actionbench.worlds.synthetic import BACKGROUNDS, render

    bgs = list(BACKGROUNDS)
    items = [(look, pose) for look in world_looks() for pose in world_poses() for _ in range(per_pair)]
    images, meta, keypoints = [], [], []
    for look, pose in progress(items, desc=progress_desc, total=len(items)) if progress_desc else items:
        bg = bgs[rng.randrange(len(bgs))] if rng.random() < 0.5 else None
        r = render(look, pose, size=MINI_RESOLUTION, seed=seed_base + rng.randrange(1 << 30), background=bg)
        images.append(np.asarray(r.image))
        meta.append((look, pose, bg))
        keypoints.append(r.keypoints)
    return np.stack(images), meta, keypoints


# --- training -----------------------------------------------------------------------------

def warmup_cosine_lr(step: int, steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warmup to ``peak``, then a cosine down to a tenth of it at the last step."""
    lr = peak * min(1.0, (step + 1) / warmup_steps)
    return lr * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.9 + 0.1)


def train_mini(cfg: TrainConfig = TrainConfig(), out: str | Path | None = None, log=print) -> dict:
    """Train the mini base model from scratch, or continue from ``cfg.init_from`` (fresh optimiser, EMA
    started at the loaded weights, the same warmup + cosine schedule over ``cfg.steps`` new steps);
    writes ``model.safetensors`` and ``model.json`` into ``out``."""
    from safetensors.torch import load_file

    from actionbench.backbone import SD21_SCHEDULER_CONFIG, build_tiny_tokenizer
    from actionbench.io import progress
    from actionbench.training import diffusion_target

    out = Path(out) if out is not None else DATA_DIR
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
    bar = progress(range(cfg.steps), desc="mini train", total=cfg.steps)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(step, cfg.steps, cfg.learning_rate, cfg.warmup_steps)
        rows = torch.randint(0, n, (cfg.batch_size,), generator=generator)
        lat = latents_all[rows]
        flip = torch.rand(cfg.batch_size, generator=generator) < 0.0
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
        if step % 50 == 0 and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        del flip
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _save_ema(unet, text_encoder, params, ema, used_rows, out, cfg, losses, n, render_s,
                      time.time() - t1, start_step, prev, final=False)
    train_s = time.time() - t1
    record = _save_ema(unet, text_encoder, params, ema, used_rows, out, cfg, losses, n, render_s, train_s,
                       start_step, prev, final=True)
    log(f"mini: {cfg.steps} steps (total {start_step + cfg.steps}) in {train_s:.0f}s, final loss {record['final_loss_mean_last_200']:.4f}; wrote {out}")
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
            for l, p in zip(live, params):
                p.copy_(l)
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


# --- the "mini" dataset -------------------------------------------------------------------

def load_mini_dataset(root: str | Path | None = None):
    """The mini suite: the synthetic dataset's exemplars (8 actions x 10 generic people, v1-format
    caption templates) rendered at the mini resolution; the 23 subjects and the v1 protocol."""
    from actionbench.worlds.synthetic import load_synthetic

    dataset = load_synthetic(root=root, size=MINI_RESOLUTION)
    return replace(dataset, name=MINI, extra={**dataset.extra, "world": MINI_DATASET_VERSION})
