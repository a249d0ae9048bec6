"""ControlNet with OpenPose skeletons (Zhang et al., "Adding Conditional Control to Text-to-Image
Diffusion Models", ICCV 2023): the ADI paper's pose-conditioned baseline row.

Nothing is trained. ``customize`` extracts the OpenPose skeleton of each exemplar
(``actionbench.pose``: the OpenPose detector for photos, the exact skeleton for synthetic
figures) and stores the maps in the artifact. ``generate`` draws each image with
``StableDiffusionControlNetPipeline``: the frozen backbone plus an SD 2.1 OpenPose ControlNet,
conditioned on one exemplar's skeleton, with the prompt "{subject}" (the action reaches the
model through the pose alone, as in the paper's row: "ControlNet (pose)").

Which skeleton an image gets: ``pose_maps[usable[seed % len(usable)]]``, where ``usable`` are
the exemplars in which a skeleton was found. ``generate`` sees seeds, not the protocol's image
number k, and the runner regenerates only missing images on resume, so the choice depends on
the seed alone; the protocol's seeds are hashes, which spreads an action's images over its
exemplars' poses, and consecutive seeds cycle through them in order.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from actionbench.errors import ActionBenchError, ConfigError
from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.pose import OPENPOSE_ANNOTATORS, is_blank, load_pose_extractor, resolve_extractor_name
from actionbench.training import encode_prompts, sample_images

SD21_OPENPOSE_CONTROLNET = "thibaud/controlnet-sd21-openpose-diffusers"
"""An OpenPose ControlNet trained for Stable Diffusion 2.1 (the paper's backbone), diffusers format."""
FROM_UNET = "from_unet"


@dataclass(frozen=True)
class ControlNetPoseConfig(MethodConfig):
    # The paper names the baseline "ControlNet" with pose input on SD 2.1 and gives no settings;
    # these are the pipeline's and controlnet_aux's defaults.
    controlnet: str = "auto"
    """ControlNet weights: a hub id, a local folder (local:/dir or a path), 'from_unet' (a seeded random ControlNet
    built from the backbone's UNet, for tests), or 'auto': the backbone's own pose ControlNet where it has one
    (``Backbone.pose_controlnet``: the mini model's, trained by ``actionbench mini controlnet``; 'from_unet' on
    tiny), else thibaud/controlnet-sd21-openpose-diffusers."""
    controlnet_conditioning_scale: float = 1.0
    """Weight of the ControlNet residuals (diffusers' default)."""
    prompt_template: str = "{subject}"
    """Prompt; {subject} is the subject's name, {action} the action's phrase. The default gives the action by pose only."""
    pose_extractor: Literal["auto", "openpose", "synthetic"] = "auto"
    """How skeletons are obtained: OpenPose on the photos, the synthetic set's exact skeletons, or auto (exact if all
    have them)."""
    pose_detector: str = OPENPOSE_ANNOTATORS
    """OpenPose body weights (openpose extractor): hub repo holding body_pose_model.pth, a folder, or a .pth/.safetensors file."""
    pose_resolution: int = 512
    """Side of the stored pose maps and OpenPose's detect resolution (controlnet_aux's default); the pipeline resizes."""


def conditioning_channels(vae_scale_factor: int) -> tuple[int, ...]:
    """ControlNet's conditioning-embedding widths for a VAE: SD's (16, 32, 96, 256) downsample 8x, fewer blocks less."""
    blocks = int(math.log2(vae_scale_factor)) + 1
    return (16, 32, 96, 256)[:blocks]


def build_controlnet_from_unet(unet, vae_scale_factor: int, seed: int = 0):
    """A ControlNet copied from ``unet`` (diffusers' ``from_unet``), deterministic for a seed.

    Its zero convolutions get small random weights instead of zeros, so the pose map changes the
    image as a trained ControlNet's would (with zeros the residuals vanish and the pose is ignored).
    """
    from diffusers import ControlNetModel

    from actionbench.backbone import seeded

    with seeded(seed):
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=conditioning_channels(vae_scale_factor))
        zero_convs = [controlnet.controlnet_cond_embedding.conv_out, *controlnet.controlnet_down_blocks,
                      controlnet.controlnet_mid_block]
        with torch.no_grad():
            for conv in zero_convs:
                conv.weight.normal_(0.0, 0.05)
                conv.bias.zero_()
    return controlnet


def pose_index(seed: int, usable: Sequence[int]) -> int:
    """The exemplar pose an image with this seed is conditioned on."""
    return int(usable[int(seed) % len(usable)])


class ControlNetPose(Method):
    name = "controlnet"
    Config = ControlNetPoseConfig
    summary = "ControlNet conditioned on the exemplars' OpenPose skeletons (training-free)"
    generation_cost_factor = 1.5  # the ControlNet is about half a UNet, run at every step
    trains = "nothing (pose maps of the exemplars; prompt '{subject}')"
    steps_field = lr_field = None  # trains nothing

    # --- customize: extract the exemplars' skeletons ---------------------------------------

    def customize(self, action, out_dir) -> Artifact:
        cfg, backbone = self.config, self.backbone
        # 1. Choose the extractor: exact skeletons for synthetic figures, OpenPose for photos.
        extractor_name = resolve_extractor_name(cfg.pose_extractor, action.exemplars)
        extractor = load_pose_extractor(extractor_name, cfg.pose_detector, cfg.pose_resolution, device=backbone.device)

        # 2. One pose map per exemplar, all the same square size.
        side = cfg.pose_resolution
        maps = []
        for exemplar in action.exemplars:
            pose = extractor(exemplar)
            maps.append(pose if pose.size == (side, side) else pose.resize((side, side)))
        usable = [i for i, m in enumerate(maps) if not is_blank(m)]

        # 3. Store the maps: uint8 tensors (what generate reads) and PNGs beside them to look at.
        files = {f"poses/{ex.index:02d}.png": _png(m) for ex, m in zip(action.exemplars, maps)}
        meta = {
            "action_text": action.phrase,
            "pose_extractor": extractor_name,
            "pose_detector": cfg.pose_detector if extractor_name == "openpose" else None,
            "pose_files": list(files),
            "exemplar_indices": [ex.index for ex in action.exemplars],
            "usable_poses": usable,
            "controlnet": self.controlnet_id(),
        }
        if not usable:
            meta["warning"] = "no skeleton was found in any exemplar; generation is conditioned on blank maps"
        tensors = {"pose_maps": torch.from_numpy(np.stack([np.asarray(m, dtype=np.uint8) for m in maps]))}
        return self.new_artifact(action, tensors=tensors, meta=meta).save(out_dir, extra_files=files)

    # --- generate: the pose-conditioned pipeline --------------------------------------------

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        from diffusers import StableDiffusionControlNetPipeline
        from PIL import Image

        self.check_artifact(artifact)
        cfg, backbone = self.config, self.backbone
        maps = artifact.tensors["pose_maps"].cpu().numpy()
        usable = artifact.meta.get("usable_poses") or list(range(len(maps)))
        poses = [Image.fromarray(maps[pose_index(seed, usable)]) for seed in seeds]
        prompt = self.prompt(subject, artifact)
        pipe = StableDiffusionControlNetPipeline(
            vae=backbone.vae, text_encoder=backbone.text_encoder, tokenizer=backbone.tokenizer, unet=backbone.unet,
            controlnet=self.controlnet(), scheduler=backbone.fresh_scheduler(), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return sample_images(
            backbone, encode_prompts(backbone, [prompt]), seeds, cfg.sampler, pipe=pipe,
            per_seed_inputs={"image": poses},
            pipe_kwargs={"controlnet_conditioning_scale": cfg.controlnet_conditioning_scale},
        )

    def prompt(self, subject, artifact: Artifact) -> str:
        """The text prompt: the subject only by default; ``{action}`` adds the action's phrase. A subject drawn
        in a prompt of its own (``--prompts``) takes that prompt, with the action's phrase for ``{action}``."""
        template = subject.template or self.config.prompt_template
        return template.format(subject=subject.name, action=artifact.meta["action_text"])

    # --- the ControlNet ---------------------------------------------------------------------

    def controlnet_id(self) -> str:
        """The ControlNet this config names on this backbone ('auto' resolved)."""
        if self.config.controlnet != "auto":
            return self.config.controlnet
        return self.backbone.pose_controlnet or SD21_OPENPOSE_CONTROLNET

    def controlnet(self):
        """The ControlNet, loaded (or built) once per method instance."""
        cached = getattr(self, "_controlnet", None)
        if cached is not None:
            return cached
        backbone, source = self.backbone, self.controlnet_id()
        if source == FROM_UNET:
            controlnet = build_controlnet_from_unet(backbone.unet, backbone.vae_scale_factor, seed=self.config.seed)
        else:
            controlnet = _load_controlnet(source)
        unet_dim, cn_dim = backbone.unet.config.cross_attention_dim, controlnet.config.cross_attention_dim
        if unet_dim != cn_dim:
            raise ConfigError(
                f"ControlNet {source} has cross-attention dim {cn_dim} but backbone {backbone.id}'s UNet has {unet_dim}; "
                "pass a ControlNet trained for this backbone with --set controlnet=ORG/REPO "
                f"({SD21_OPENPOSE_CONTROLNET} fits Stable Diffusion 2.1)"
            )
        if controlnet.dtype != backbone.dtype:
            controlnet = controlnet.to(dtype=backbone.dtype)
        controlnet = controlnet.to(backbone.device).requires_grad_(False).eval()
        self._controlnet = controlnet
        return controlnet


def _load_controlnet(source: str):
    import os

    from diffusers import ControlNetModel

    location = source[len("local:"):] if source.startswith("local:") else source
    if source.startswith("local:") and not os.path.isdir(location):
        raise ConfigError(f"ControlNet folder {location} does not exist; save one with ControlNetModel.save_pretrained")
    try:
        return ControlNetModel.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise ActionBenchError(
            f"could not load ControlNet {source} ({exc}). Without network access, download it once elsewhere "
            f"(huggingface-cli download {SD21_OPENPOSE_CONTROLNET}) and pass its folder with --set controlnet=local:/path"
        ) from exc


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
