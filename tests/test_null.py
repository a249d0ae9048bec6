"""The null method: an identifier that learned nothing, initialised like the inversion methods'."""
from __future__ import annotations

import torch

from actionbench.api.registry import get_method
from actionbench.training import word_embedding
from helpers import changed_parameters, snapshot


def test_null_identifier_stays_at_its_initialisation_and_trains_nothing(tiny_backbone, toy_action, subject, tmp_path):
    cls = get_method("null")
    method = cls(tiny_backbone, cls.Config(sampler=cls.Config().sampler.replace(num_inference_steps=2)))
    modules = [tiny_backbone.unet, tiny_backbone.text_encoder, tiny_backbone.vae]
    before = [snapshot(m) for m in modules]
    artifact = method.customize(toy_action, tmp_path / "cheer")
    assert torch.equal(artifact.tensors["token_embedding"], word_embedding(tiny_backbone, "person"))
    assert all(changed_parameters(snap, m) == [] for snap, m in zip(before, modules))
    one = method.generate(artifact, subject, [3, 4])
    again = method.generate(type(artifact).load(tmp_path / "cheer"), subject, [3, 4])
    assert len(one) == 2 and all((a.tobytes() == b.tobytes()) for a, b in zip(one, again))
