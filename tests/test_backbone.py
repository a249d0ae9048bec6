"""The tiny backbone, local-folder loading, and the cross-attention layer count."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actionbench.backbone import (
    build_tiny_backbone,
    count_cross_attention_layers,
    cross_attention_layer_names,
    load_backbone,
    resolve_backbone_id,
    save_backbone,
)
from actionbench.errors import ActionBenchError, ConfigError


def test_tiny_is_deterministic_and_sd21_shaped(tiny_backbone):
    other = build_tiny_backbone()
    for a, b in zip(tiny_backbone.unet.parameters(), other.unet.parameters()):
        assert torch.equal(a, b)
    assert tiny_backbone.unet.config.use_linear_projection
    assert tiny_backbone.prediction_type == "v_prediction"
    assert tiny_backbone.tokenizer.model_max_length == 77
    assert tiny_backbone.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_cross_attention_layers_are_counted_in_forward_order(tiny_backbone):
    names = cross_attention_layer_names(tiny_backbone.unet)
    assert count_cross_attention_layers(tiny_backbone.unet) == 6
    assert [n.split(".")[0] for n in names] == ["down_blocks"] * 2 + ["mid_block"] + ["up_blocks"] * 3


def test_sd21_unet_has_16_cross_attention_layers():
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    config = dict(sample_size=96, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
                  use_linear_projection=True, block_out_channels=(320, 640, 1280, 1280))
    with init_empty_weights():
        unet = UNet2DConditionModel(**config)
    assert count_cross_attention_layers(unet) == 16


def test_local_folder_round_trip(tmp_path, tiny_backbone):
    folder = save_backbone(tiny_backbone, tmp_path / "sd-tiny")
    loaded = load_backbone(f"local:{folder}")
    assert loaded.resolution == tiny_backbone.resolution
    pipe_a, pipe_b = tiny_backbone.pipeline(), loaded.pipeline()
    kwargs = dict(prompt="a cat", num_inference_steps=2, height=64, width=64, output_type="np")
    a = pipe_a(generator=torch.Generator().manual_seed(0), **kwargs).images
    b = pipe_b(generator=torch.Generator().manual_seed(0), **kwargs).images
    assert np.allclose(a, b, atol=1e-5)
    assert load_backbone(str(folder)).id == str(folder)


def test_backbone_name_errors(tmp_path):
    with pytest.raises(ConfigError, match="--backbone"):
        resolve_backbone_id("not a model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ActionBenchError, match="no unet/ subfolder"):
        load_backbone(f"local:{tmp_path / 'empty'}")
    assert resolve_backbone_id("sd21") == ("hub", "stabilityai/stable-diffusion-2-1")


def test_offline_hub_id_gives_an_actionable_error():
    with pytest.raises(ActionBenchError, match="local:/path"):
        load_backbone("hf:someone/not-downloaded-model")
