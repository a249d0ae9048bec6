"""The mini base model: building it for a world, weights save/load, the warm start, ``load_mini_backbone``.

Stable Diffusion's structure so every method applies unchanged: the CLIP tokenizer, a small
``CLIPTextModel`` and a ``UNet2DConditionModel`` with linear-projection cross-attention, trained
jointly, DDIM with v-prediction (SD 2.1's scheduler), and the pixel-shuffle "VAE" (``vae``).
The UNet's blocks are the world's (``world.WorldSpec.unet_config``): v1 has cross-attention at 8x8,
v2 at 16x16 and 8x8. Weights are stored as float16; of the token embedding only the rows the
captions use.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from actionbench.backbone import TINY_TEXT_CONFIG
from actionbench.worlds.mini.folders import META_FILE, WEIGHTS_FILE, mini_controlnet_source, mini_folder
from actionbench.worlds.mini.vae import pixel_vae
from actionbench.worlds.mini.world import MINI_V1, PLAIN_NAME, WorldSpec, world_named

MINI = PLAIN_NAME
MINI_RESOLUTION = 32

# The tiny text encoder, narrower in depth: 2 layers (not 5), a wider MLP. The same in every world.
MINI_TEXT_CONFIG = dict(TINY_TEXT_CONFIG, intermediate_size=64, num_hidden_layers=2)
EMBEDDING_INIT_SEED = 20240607
EMBEDDING_INIT_STD = 0.02


def build_mini_modules(seed: int = 0, world: WorldSpec = MINI_V1):
    """A freshly initialised (UNet, text encoder) pair of ``world``, seeded; the token embedding is
    ``base_token_embedding``."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from actionbench.backbone import seeded

    with seeded(seed):
        unet = UNet2DConditionModel(**world.unet_config())
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


def make_backbone(unet, text_encoder, meta: dict | None = None, name: str = MINI, world: WorldSpec = MINI_V1):
    """A ``Backbone`` of the mini modules with the pixel VAE and SD 2.1's DDIM scheduler; ``meta`` adds steps and hash."""
    from diffusers import DDIMScheduler

    from actionbench.backbone import SD21_SCHEDULER_CONFIG, Backbone, build_tiny_tokenizer

    meta = meta or {}
    extra = {"world": world.name}
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
        resolution=world.resolution,
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
    """Load what ``weights_state`` saved into freshly built modules (float32); ``unet`` None: the text encoder only."""
    if unet is not None:
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


def warm_start(unet, text_encoder, state: dict[str, torch.Tensor]) -> list[str]:
    """Load the weights of an earlier world's model (``weights_state`` of it) into a later world's modules:
    every tensor of ``state`` goes where its name and shape match; the attention blocks it lacks keep their
    initialisation with their output projection at zero, so the model starts as the earlier one's function.

    Returns:
        the names of the UNet parameters ``state`` did not have (the new blocks).

    Raises:
        ActionBenchError: a tensor of ``state`` has no place of the same name and shape (not an earlier world).
    """
    from actionbench.errors import ActionBenchError

    source = {k[5:]: v.float() for k, v in state.items() if k.startswith("unet.")}
    target = unet.state_dict()
    misfits = [k for k, v in source.items() if k not in target or target[k].shape != v.shape]
    if misfits:
        raise ActionBenchError(f"cannot warm-start from these weights: {len(misfits)} UNet tensors have no place of "
                               f"the same name and shape (first: {misfits[0]}); start from a model of an earlier world")
    unet.load_state_dict(source, strict=False)
    load_weights(None, text_encoder, state)
    new = [k for k in target if k not in source]
    # "down_blocks.0.attentions.0.transformer_blocks.0...." -> "down_blocks.0.attentions.0"
    new_blocks = {k[:k.index(".", k.index(".attentions.") + len(".attentions."))] for k in new if ".attentions." in k}
    with torch.no_grad():
        for block in new_blocks:
            for tensor in (f"{block}.proj_out.weight", f"{block}.proj_out.bias"):
                unet.get_parameter(tensor).zero_()
    return new


def load_mini_backbone(name: str = MINI, folder: str | Path | None = None):
    """A mini backbone by name: ``mini-v1``, ``mini-v2`` or ``mini-v3`` (the world's shipped weights; v3 uses v2's
    model), ``mini`` (the world
    ``world.PLAIN_NAME_WORLD``), or ``NAME:/path/to/folder`` for weights made by ``actionbench mini train``.

    Raises:
        ActionBenchError: no weights there, or weights of another world than the name says.
    """
    from safetensors.torch import load_file

    from actionbench.errors import ActionBenchError
    from actionbench.hashing import sha256_file

    world = world_named(name)
    folder = Path(folder) if folder is not None else mini_folder(name)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ActionBenchError(f"{world.name} backbone weights not found at {path}; run `actionbench mini train "
                               f"--world {world.name} --out FOLDER` and load them as {world.name}:FOLDER")
    meta = json.loads((folder / META_FILE).read_text()) if (folder / META_FILE).is_file() else {}
    if meta.get("world", world.model_name) != world.model_name:
        raise ActionBenchError(f"the weights in {folder} are a {meta['world']} model, not {world.model_name}; "
                               f"load them as {meta['world']}:{folder}")
    meta["weights_sha256"] = sha256_file(path)
    unet, text_encoder = build_mini_modules(world=world)
    load_weights(unet, text_encoder, load_file(str(path)))
    backbone = make_backbone(unet, text_encoder, meta, name=name, world=world)
    backbone.pose_controlnet = mini_controlnet_source(name) or "from_unet"
    return backbone
