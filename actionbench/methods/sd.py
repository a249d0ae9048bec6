"""Stable Diffusion, text only: the action's plain-language phrase in the prompt, nothing learned.

The paper's first row ("Stable Diffusion"): "{subject} {action phrase}".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.training import encode_prompts, sample_images


@dataclass(frozen=True)
class TextOnlyConfig(MethodConfig):
    pass


class TextOnlySD(Method):
    name = "sd"
    Config = TextOnlyConfig
    summary = "Stable Diffusion with the action's phrase in the prompt (no training)"
    trains = "nothing (prompt: '{subject} {action phrase}')"
    steps_field = lr_field = None  # trains nothing

    def customize(self, action, out_dir) -> Artifact:
        # Training-free: the artifact records the phrase the prompt will use.
        return self.new_artifact(action, meta={"action_text": action.phrase}).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        prompt = subject.prompt(artifact.meta["action_text"])
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt]), seeds, self.config.sampler)
