"""One factory for the diffusion backbone: ``load_backbone("sd21" | "tiny" | "hf:org/repo" | "local:/dir")``.

``tiny`` is a deterministic, randomly initialised pipeline with Stable Diffusion 2.1's
structure (UNet with linear-projection cross-attention, KL VAE, CLIP text encoder and
tokenizer, DDIM with v-prediction) built from configs: every method runs on it
unchanged, on CPU, with no download. The real models come from a hub id or a local
folder saved with ``save_pretrained``.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import ConfigError

SD21_HUB_ID = "stabilityai/stable-diffusion-2-1"
ALIASES = {"sd21": SD21_HUB_ID, "sd2.1": SD21_HUB_ID, "stable-diffusion-2-1": SD21_HUB_ID}
TINY = "tiny"
TINY_RESOLUTION = 64


@dataclass
class Backbone:
    """The components every method shares. Methods never change these weights in place."""

    id: str
    tokenizer: Any
    text_encoder: Any
    unet: Any
    vae: Any
    scheduler: Any
    resolution: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    extra: dict = field(default_factory=dict)
    pose_controlnet: str | None = None
    """A pose ControlNet made for this backbone (hub id, ``local:`` folder or ``from_unet``); the
    ``controlnet`` method's ``controlnet=auto`` uses it. None: Stable Diffusion 2.1's OpenPose ControlNet."""

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.vae_scale_factor

    @property
    def prediction_type(self) -> str:
        return self.scheduler.config.prediction_type

    def fingerprint(self) -> dict:
        """What identifies the backbone in a spec: everything that changes the numbers."""
        return {
            "id": self.id,
            "resolution": self.resolution,
            "dtype": str(self.dtype).replace("torch.", ""),
            "scheduler": type(self.scheduler).__name__,
            "prediction_type": self.prediction_type,
            "unet_parameters": sum(p.numel() for p in self.unet.parameters()),
            **{k: v for k, v in self.extra.items() if isinstance(v, (str, int, float, bool))},
        }

    def pipeline(self, unet=None, text_encoder=None, tokenizer=None, scheduler=None):
        """A ``StableDiffusionPipeline`` over these components (or the ones given)."""
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline(
            vae=self.vae,
            text_encoder=text_encoder or self.text_encoder,
            tokenizer=tokenizer or self.tokenizer,
            unet=unet or self.unet,
            scheduler=scheduler or self.fresh_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def fresh_scheduler(self, solver: str | None = None):
        """A new scheduler with the backbone's noise schedule: its own type, or the ``SamplerConfig.solver``
        named (``ddim``, ``dpmpp_2m``, ``unipc``)."""
        if solver is None:
            return type(self.scheduler).from_config(self.scheduler.config)
        import diffusers

        return getattr(diffusers, SOLVER_SCHEDULERS[solver]).from_config(self.scheduler.config)

    def to(self, device: str | torch.device) -> "Backbone":
        self.device = torch.device(device)
        for module in (self.text_encoder, self.unet, self.vae):
            module.to(self.device)
        return self

    def freeze(self) -> "Backbone":
        for module in (self.text_encoder, self.unet, self.vae):
            module.requires_grad_(False)
            module.eval()
        return self


SMALL_MODEL_PARAMETERS = 50_000_000


def one_thread_for_small_models(backbone: Backbone) -> None:
    """Models under 50M UNet parameters (tiny, mini) run on one torch thread unless OMP_NUM_THREADS says otherwise.

    They are too small for intra-op threads to pay off, and on a busy CPU two threads per process
    oversubscribe the cores (measured on 2 cores: the tiny smoke eval took 20 min with 2 threads
    beside one other job, 2.5 min with 1). Keyed on size, not on the backbone's name."""
    if "OMP_NUM_THREADS" in os.environ or backbone.device.type != "cpu":
        return
    if sum(p.numel() for p in backbone.unet.parameters()) < SMALL_MODEL_PARAMETERS:
        torch.set_num_threads(1)


def resolve_backbone_id(name: str) -> tuple[str, str]:
    """Return (kind, location): kind is "registered" (a name in ``actionbench.api.registry.BACKBONES``,
    exact or as ``name:argument``), "hub" or "local"."""
    from .api.registry import BACKBONES

    if BACKBONES.lookup(name) is not None:
        return "registered", name
    if name in ALIASES:
        return "hub", ALIASES[name]
    if name.startswith("hf:"):
        return "hub", name[3:]
    if name.startswith("local:"):
        return "local", name[6:]
    if os.path.isdir(name):
        return "local", name
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return "hub", name
    raise ConfigError(
        f"backbone '{name}' is neither a registered name ({', '.join(BACKBONES.names())}), an alias "
        f"({', '.join(ALIASES)}), a hub id (org/repo or hf:org/repo) nor an existing local folder (local:/path); "
        "pass one of those with --backbone"
    )


def load_backbone(
    name: str = "sd21",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    resolution: int | None = None,
    revision: str | None = None,
    attention: str = "sdpa",
    vae_slicing: bool = False,
    gradient_checkpointing: bool = False,
) -> Backbone:
    """Load a backbone by name.

    Args:
        name: a registered name (``"tiny"``, ``"mini"``, ``"mini:/folder"``; see ``actionbench.api.registry``),
            ``"sd21"`` (Stable Diffusion 2.1, the paper's backbone), a hub id
            (``org/repo`` or ``hf:org/repo``), or a local folder (``local:/dir`` or a path) laid out as
            ``save_pretrained`` writes a Stable Diffusion pipeline.
        device, dtype: where and how the weights live. Trainable copies are made in fp32 by methods.
        resolution: image size; default the model's own (``unet.sample_size * vae scale``).
        revision: hub revision to pin.
        attention, vae_slicing, gradient_checkpointing: speed and memory options, see ``apply_options``.

    Raises:
        ConfigError: the name is none of the forms above.
        ActionBenchError: the weights are not available (offline, missing folder).
    """
    if isinstance(dtype, str):
        dtype = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                 "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}[dtype]
    kind, location = resolve_backbone_id(name)
    if kind == "registered":
        from .api.registry import BACKBONES, import_object

        entry, _ = BACKBONES.lookup(name)
        backbone = import_object(entry.target)(name)
    else:
        backbone = _load_pretrained(name, location, revision)
    if resolution is not None:
        backbone.resolution = int(resolution)
    if dtype != torch.float32:
        backbone.dtype = dtype
        for module in (backbone.text_encoder, backbone.unet, backbone.vae):
            module.to(dtype=dtype)
    apply_options(backbone, attention=attention, vae_slicing=vae_slicing, gradient_checkpointing=gradient_checkpointing)
    return backbone.to(device).freeze()


ATTENTION_CHOICES = ("sdpa", "classic")


def apply_options(backbone: Backbone, attention: str = "sdpa", vae_slicing: bool = False,
                  gradient_checkpointing: bool = False) -> Backbone:
    """Speed and memory options of the frozen backbone (run options, not method settings).

    Args:
        attention: ``"sdpa"`` (diffusers' default ``AttnProcessor2_0``: ``torch``'s scaled-dot-product
            attention, flash / memory-efficient kernels on GPU) or ``"classic"`` (``AttnProcessor``:
            explicit softmax(QK^T)V, for comparison). Methods that install their own cross-attention
            processors (P+, ADI) keep theirs. Recorded in the backbone fingerprint when not the default,
            since the numbers may change in the last bits.
        vae_slicing: decode generated latents one image at a time (``vae.enable_slicing``): less peak
            memory for large generation batches, the same images.
        gradient_checkpointing: recompute UNet activations in the backward pass (``unet.enable_gradient_checkpointing``):
            less training memory, slower steps, the same gradients. Trainable copies made by the
            fine-tuning methods inherit it. Inference is unaffected.
    """
    if attention not in ATTENTION_CHOICES:
        raise ConfigError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}, got {attention!r}")
    if attention == "classic":
        from diffusers.models.attention_processor import AttnProcessor

        backbone.unet.set_attn_processor(AttnProcessor())
        backbone.extra["attention"] = "classic"
    if vae_slicing:
        backbone.vae.enable_slicing()
    else:
        backbone.vae.disable_slicing()
    if gradient_checkpointing:
        backbone.unet.enable_gradient_checkpointing()
    elif getattr(backbone.unet, "is_gradient_checkpointing", False):
        backbone.unet.disable_gradient_checkpointing()
    return backbone


def _load_pretrained(name: str, location: str, revision: str | None) -> Backbone:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .errors import ActionBenchError

    if name.startswith("local:") or os.path.isdir(location):
        if not (Path(location) / "unet").is_dir():
            raise ActionBenchError(
                f"local backbone folder {location} has no unet/ subfolder; save a Stable Diffusion pipeline there "
                "with `pipeline.save_pretrained(folder)`"
            )
    kwargs = {"revision": revision} if revision else {}
    try:
        tokenizer = CLIPTokenizer.from_pretrained(location, subfolder="tokenizer", **kwargs)
        text_encoder = CLIPTextModel.from_pretrained(location, subfolder="text_encoder", use_safetensors=True, **kwargs)
        unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", use_safetensors=True, **kwargs)
        vae = AutoencoderKL.from_pretrained(location, subfolder="vae", use_safetensors=True, **kwargs)
        scheduler = DDIMScheduler.from_pretrained(location, subfolder="scheduler", **kwargs)
    except (OSError, ValueError) as exc:
        raise ActionBenchError(
            f"could not load backbone '{name}' from {location}: {exc}. Without network access, download the model "
            "once elsewhere (huggingface-cli download ...) and pass its folder with --backbone local:/path; "
            "use --backbone tiny for a test run without weights"
        ) from exc
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    return Backbone(
        id=name if name not in ALIASES else ALIASES[name],
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        unet=unet,
        vae=vae,
        scheduler=scheduler,
        resolution=unet.config.sample_size * vae_scale,
        extra={"location": str(location), **({"revision": revision} if revision else {})},
    )


# --- tiny -------------------------------------------------------------------------------

TINY_UNET_CONFIG = dict(
    sample_size=TINY_RESOLUTION // 2,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32,
    attention_head_dim=(2, 4),
    use_linear_projection=True,  # as in SD 2.x
    norm_num_groups=16,
)
TINY_VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(32, 64),
    latent_channels=4,
    norm_num_groups=16,
    sample_size=TINY_RESOLUTION,
)
TINY_TEXT_CONFIG = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=5,
    projection_dim=32,
    max_position_embeddings=77,
    vocab_size=49408,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=0,
    hidden_act="gelu",
)
# SamplerConfig.solver -> the diffusers scheduler class that takes the steps (DPM-Solver++ 2M is diffusers' default
# configuration of DPMSolverMultistepScheduler).
SOLVER_SCHEDULERS = {"ddim": "DDIMScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler",
                     "unipc": "UniPCMultistepScheduler"}
# Stable Diffusion 2.1's scheduler settings.
SD21_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


@contextlib.contextmanager
def seeded(seed: int):
    """Deterministic random initialisation that leaves the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def clip_tokenizer_files(folder: Path | None = None) -> Path:
    """Write CLIP's ``vocab.json`` and ``merges.txt`` from open_clip's bundled BPE file (offline).

    The ids are identical to CLIP's. The files are cached under ``$ACTIONBENCH_HOME/clip-tokenizer``.
    """
    from .manifest import actionbench_home
    from .io import atomic_write_text

    folder = Path(folder) if folder else actionbench_home() / "clip-tokenizer"
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder
    import open_clip.tokenizer as oct

    bpe_path = oct.default_bpe()
    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    byte_chars = list(oct.bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    atomic_write_text(folder / "vocab.json", json.dumps({tok: i for i, tok in enumerate(vocab)}))
    atomic_write_text(folder / "merges.txt", "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return folder


def build_tiny_tokenizer():
    from transformers import CLIPTokenizer

    folder = clip_tokenizer_files()
    # SD 2 pads with "!" (id 0); without model_max_length the pipeline overflows.
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!", model_max_length=77)


def load_tiny_backbone(name: str = TINY) -> Backbone:
    """The ``tiny`` entry of the backbone table: random weights, SD 2.1's structure."""
    if name != TINY:
        raise ConfigError(f"backbone '{name}': the tiny backbone takes no argument; use --backbone tiny")
    backbone = build_tiny_backbone()
    backbone.pose_controlnet = "from_unet"  # random weights: a seeded ControlNet copied from its UNet
    return backbone


def build_tiny_backbone(seed: int = 0) -> Backbone:
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with seeded(seed):
        unet = UNet2DConditionModel(**TINY_UNET_CONFIG)
    with seeded(seed + 1):
        vae = AutoencoderKL(**TINY_VAE_CONFIG)
    with seeded(seed + 2):
        text_encoder = CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG))
    return Backbone(
        id=TINY,
        tokenizer=build_tiny_tokenizer(),
        text_encoder=text_encoder,
        unet=unet,
        vae=vae,
        scheduler=DDIMScheduler(**SD21_SCHEDULER_CONFIG),
        resolution=TINY_RESOLUTION,
        extra={"seed": seed},
    )


def save_backbone(backbone: Backbone, folder: str | Path) -> Path:
    """Save as a diffusers pipeline folder (safetensors), loadable with ``--backbone local:FOLDER``."""
    backbone.pipeline(scheduler=backbone.scheduler).save_pretrained(str(folder), safe_serialization=True)
    return Path(folder)


def cross_attention_layer_names(unet) -> list[str]:
    """Names of the UNet's cross-attention processors, in forward order (16 for SD 2.x)."""
    names = [name for name in unet.attn_processors if name.endswith("attn2.processor")]
    block_order = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}
    return sorted(names, key=lambda n: (block_order[n.split(".")[0]], [int(p) if p.isdigit() else 0 for p in n.split(".")[1:]]))


def count_cross_attention_layers(unet) -> int:
    return len(cross_attention_layer_names(unet))


def seeds_to_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
