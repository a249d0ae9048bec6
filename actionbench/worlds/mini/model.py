"""The mini base model: configs, building, weights save/load and ``load_mini_backbone``.

Stable Diffusion's structure so every method applies unchanged: the CLIP tokenizer, a small
``CLIPTextModel`` and a ``UNet2DConditionModel`` with linear-projection cross-attention, trained
jointly, DDIM with v-prediction (SD 2.1's scheduler), and the pixel-shuffle "VAE" (``vae``).
Weights are stored as float16; of the token embedding only the rows the captions use.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from actionbench.backbone import TINY_TEXT_CONFIG
from actionbench.worlds.mini.folders import META_FILE, WEIGHTS_FILE, mini_controlnet_source, mini_folder
from actionbench.worlds.mini.vae import LATENT_CHANNELS, PATCH, pixel_vae

MINI = "mini"
MINI_RESOLUTION = 32
MINI_DATASET_VERSION = "mini-v1"

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


def build_mini_modules(seed: int = 0):
    """A freshly initialised (UNet, text encoder) pair, seeded; the token embedding is ``base_token_embedding``."""
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
    """A ``Backbone`` of the mini modules with the pixel VAE and SD 2.1's DDIM scheduler; ``meta`` adds steps and hash."""
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
    """The tensors to save, float16; of the token embedding only ``trained_rows`` (the rest is ``base_token_embedding``)."""
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
    """Load what ``weights_state`` saved into freshly built modules (float32)."""
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
