"""An example third-party method: text-only prompting with a full-body hint.

A method adapter is a ``Method`` subclass with a registry ``name``, a frozen ``Config``
dataclass, ``customize`` (learn from exemplars, save an Artifact) and ``generate``
(images for a subject, one per seed). Check it with
``actionbench check-method actionbench_example_method:FullBodyPrompt``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.training import encode_prompts, sample_images


@dataclass(frozen=True)
class FullBodyPromptConfig(MethodConfig):
    suffix: str = "full body shot"
    """Appended to every prompt so the whole pose is in frame."""


class FullBodyPrompt(Method):
    name = "full_body_prompt"
    Config = FullBodyPromptConfig
    VERSION = "1"
    interface_version = 2  # the method interface this adapter was written for (ActionBench's CHANGES.md)
    summary = "text-only SD with a full-body hint (example third-party adapter)"
    trains = "nothing"
    steps_field = lr_field = None  # no training fields; a trained method names its Config's (CONTRIBUTING.md)

    def customize(self, action, out_dir) -> Artifact:
        return self.new_artifact(action, meta={"action_text": action.phrase}).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        prompt = f"{subject.prompt(artifact.meta['action_text'])}, {self.config.suffix}"
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt]), seeds, self.config.sampler)
