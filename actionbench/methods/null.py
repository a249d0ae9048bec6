"""The null method: an identifier that learned nothing. The floor every table needs.

A placeholder token initialised exactly as the inversion methods initialise theirs (the word
"person"), never trained, in the prompt "{subject} {identifier}". Whatever the judge credits it
with is what it says when nothing was learned: the benchmark poses the backbone draws for a
subject unprompted, the judge's false alarms. A method is only as good as its margin over this row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.training import encode_prompts, placeholder_for, sample_images, word_embedding


@dataclass(frozen=True)
class NullConfig(MethodConfig):
    initializer_word: str = "person"
    """The word whose embedding the identifier keeps (the inversion methods' initialisation)."""


class NullIdentifier(Method):
    name = "null"
    Config = NullConfig
    summary = "an untrained identifier initialised like the others: the floor (nothing learned)"
    trains = "nothing (prompt: '{subject} {identifier}', the identifier at its initial embedding)"
    steps_field = lr_field = None  # trains nothing

    def customize(self, action, out_dir) -> Artifact:
        # Nothing is learned: the artifact holds the identifier at its initialisation.
        token = placeholder_for(action.id, self.name)
        vector = word_embedding(self.backbone, self.config.initializer_word)
        return self.new_artifact(action, tensors={"token_embedding": vector}, meta={"token": token}).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        token = artifact.meta["token"]
        vector = artifact.tensors["token_embedding"].to(self.backbone.device, dtype=torch.float32)
        prompt = subject.prompt(token)
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt], {token: vector}), seeds,
                             self.config.sampler)
