"""ControlNet baseline: pose maps from the OpenPose path (random local weights), a tiny seeded ControlNet,
one exemplar pose per seed, reproducible images."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from actionbench.errors import ActionBenchError
from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method

import actionbench.methods.controlnet as controlnet
import actionbench.pose as pose


@pytest.fixture(scope="module")
def body_weights(tmp_path_factory):
    """A randomly initialised OpenPose body model saved as the released file is laid out (no download)."""
    pytest.importorskip("controlnet_aux")
    return pose.save_random_body_model(tmp_path_factory.mktemp("openpose") / pose.BODY_WEIGHTS)


def method_with(backbone, **overrides):
    cls = get_method("controlnet")
    return cls(backbone, build_config(cls.Config, {k: str(v) for k, v in overrides.items()}, preset="smoke"))


def skeleton(angle: int) -> Image.Image:
    """A crude stick figure in OpenPose-like colours: arms at ``angle`` degrees."""
    image = Image.new("RGB", (64, 64))
    draw = ImageDraw.Draw(image)
    draw.line([(32, 16), (32, 44)], fill=(255, 0, 0), width=3)
    dx, dy = int(16 * np.cos(np.radians(angle))), int(16 * np.sin(np.radians(angle)))
    draw.line([(32 - dx, 22 - dy), (32, 22), (32 + dx, 22 - dy)], fill=(0, 255, 0), width=3)
    draw.line([(32, 44), (24, 60)], fill=(0, 0, 255), width=3)
    draw.line([(32, 44), (40, 60)], fill=(255, 255, 0), width=3)
    return image


def pose_artifact(method, toy_action, maps, path):
    tensors = {"pose_maps": torch.from_numpy(np.stack([np.asarray(m) for m in maps]))}
    meta = {"action_text": toy_action.phrase, "pose_extractor": "test", "usable_poses": list(range(len(maps)))}
    return method.new_artifact(toy_action, tensors=tensors, meta=meta).save(path)


def test_openpose_path_with_random_local_weights(tiny_backbone, toy_action, body_weights, tmp_path):
    method = method_with(tiny_backbone, pose_extractor="openpose", pose_detector=body_weights.parent, pose_resolution=64)
    two = dataclasses.replace(toy_action, exemplars=toy_action.exemplars[:2])
    artifact = method.customize(two, tmp_path / "art")
    maps = artifact.tensors["pose_maps"]
    assert maps.dtype == torch.uint8 and tuple(maps.shape) == (2, 64, 64, 3)
    assert artifact.meta["pose_extractor"] == "openpose" and artifact.meta["controlnet"] == "from_unet"
    for name in artifact.meta["pose_files"]:
        assert Image.open(artifact.path / name).size == (64, 64)
    # a random detector finds nobody: blank maps, said so; generation still runs on them
    assert artifact.meta["usable_poses"] == [] and "warning" in artifact.meta
    reloaded = Artifact.load(artifact.path)
    assert torch.equal(reloaded.tensors["pose_maps"], maps)


def test_body_weights_load_as_plain_state_dicts_only(body_weights, tmp_path):
    as_safetensors = pose.save_random_body_model(tmp_path / "body.safetensors")
    square = pose.OpenPoseExtractor(str(as_safetensors), resolution=64).from_image(Image.new("RGB", (80, 64), "white"))
    assert square.size == (64, 64)  # centre-cropped to a square first
    from fractions import Fraction

    torch.save({"conv1_1.weight": Fraction(1, 2)}, tmp_path / "evil.pth")  # an arbitrary object: weights_only refuses it
    with pytest.raises(ActionBenchError, match="not a readable state dict"):
        pose.load_body_estimator(str(tmp_path / "evil.pth"))
    with pytest.raises(ActionBenchError, match="huggingface-cli download"):
        pose.load_body_estimator("nobody/no-such-annotators")  # HF_HUB_OFFLINE: fails at once, says how to fix


def test_generation_is_deterministic_and_the_pose_follows_the_seed(tiny_backbone, toy_action, subject, tmp_path):
    # one image per pipeline call, so that images compared across calls see the same batch shapes
    method = method_with(tiny_backbone, **{"sampler.batch_size": 1})
    maps = [skeleton(a) for a in (-60, 0, 60)]
    artifact = pose_artifact(method, toy_action, maps, tmp_path / "three")
    assert [controlnet.pose_index(s, [0, 1, 2]) for s in (7, 8, 9, 10)] == [1, 2, 0, 1]
    assert controlnet.pose_index(7, [4, 6]) == 6  # only exemplars with a skeleton are cycled over
    seven, nine = (np.asarray(im) for im in method.generate(artifact, subject, [7, 9]))  # poses 1 and 0
    # each image is the one its seed gives with that exemplar's pose alone (the artifact reloaded from
    # disk), and another pose changes it
    only = {j: Artifact.load(pose_artifact(method, toy_action, [maps[j]], tmp_path / f"only{j}").path) for j in (0, 1)}
    assert np.array_equal(np.asarray(method.generate(only[1], subject, [7])[0]), seven)
    assert np.array_equal(np.asarray(method.generate(only[0], subject, [9])[0]), nine)
    assert not np.array_equal(np.asarray(method.generate(only[0], subject, [7])[0]), seven)


def test_controlnet_choice(tiny_backbone, toy_action, subject, tmp_path):
    assert method_with(tiny_backbone).controlnet_id() == "from_unet"
    assert method_with(tiny_backbone, controlnet="org/other").controlnet_id() == "org/other"

    class Real:  # a backbone with no pose ControlNet of its own (Stable Diffusion 2.1)
        id = "stabilityai/stable-diffusion-2-1"
        pose_controlnet = None

    cls = get_method("controlnet")
    assert cls(Real()).controlnet_id() == controlnet.SD21_OPENPOSE_CONTROLNET
    # the tiny ControlNet is the same every time it is built
    one = controlnet.build_controlnet_from_unet(tiny_backbone.unet, tiny_backbone.vae_scale_factor)
    two = controlnet.build_controlnet_from_unet(tiny_backbone.unet, tiny_backbone.vae_scale_factor)
    assert all(torch.equal(p, q) for p, q in zip(one.state_dict().values(), two.state_dict().values()))
    assert controlnet.conditioning_channels(8) == (16, 32, 96, 256) and controlnet.conditioning_channels(2) == (16, 32)
    artifact = pose_artifact(method_with(tiny_backbone), toy_action, [skeleton(0)], tmp_path / "x")
    with pytest.raises(ActionBenchError, match="local:/path"):
        method_with(tiny_backbone, controlnet="nobody/no-such-controlnet").generate(artifact, subject, [1])


def test_prompt_is_the_subject_unless_the_template_adds_the_action(tiny_backbone, toy_action, subject, tmp_path):
    artifact = pose_artifact(method_with(tiny_backbone), toy_action, [skeleton(0)], tmp_path / "p")
    assert method_with(tiny_backbone).prompt(subject, artifact) == "a man"
    with_action = method_with(tiny_backbone, prompt_template="{subject}, {action}")
    assert with_action.prompt(subject, artifact) == "a man, cheering with both arms raised"


def test_synthetic_pose_maps_are_the_recorded_skeletons(toy_action):
    from actionbench.dataset import load_dataset
    from actionbench.worlds.synthetic import synthetic_pose_map

    dataset = load_dataset("synthetic")
    action, size = dataset.action("salute"), dataset.extra["size"]
    assert pose.resolve_extractor_name("auto", action.exemplars) == "synthetic"
    assert pose.resolve_extractor_name("auto", toy_action.exemplars) == "openpose"  # photos: no recorded keypoints
    drawn = pose.load_pose_extractor("synthetic", resolution=size)(action.exemplars[2])
    assert np.array_equal(np.asarray(drawn), np.asarray(synthetic_pose_map("salute", 3, size).convert("RGB")))
    assert not pose.is_blank(drawn)
    with pytest.raises(ActionBenchError, match="pose_extractor=openpose"):
        pose.load_pose_extractor("synthetic")(toy_action.exemplars[0])
