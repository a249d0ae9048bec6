"""Does a base model draw a pose when a prompt describes it by its parts?

A world whose training captions describe poses by their parts (``captions.POSE_PARTS``, lever 5 of
docs/mini-v3-preregistration.md) means to give the text a handle on *which* benchmark pose to draw without naming
it. This check asks the model for each benchmark pose by its parts ("a man upright with both arms up"), a few
subjects and seeds each, with the gate rows' sampler, and reads the pose with the world's judge: the share read as
the described pose, per pose and overall (chance is one in 19). A model trained without those captions is the
control: the same prompts on v2's model say how much of the handle the words carried before.

``actionbench mini handle-check --backbone mini-v3p --out FOLDER`` writes ``handle-check.json`` and a contact sheet.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

SUBJECTS = ("man", "woman")
SEEDS = 16


def handle_prompts(dataset, subjects: Sequence[str] = SUBJECTS) -> list[tuple[str, str]]:
    """(prompt, described pose) for every benchmark pose and subject: the subject's name, then the pose's parts."""
    from actionbench.worlds.mini.captions import POSE_PARTS
    from actionbench.worlds.synthetic import ACTION_POSES

    return [(f"{dataset.subject(s).name} {POSE_PARTS[pose]}", pose) for pose in ACTION_POSES.values() for s in subjects]


def handle_shares(described: Sequence[str], read: Sequence[str]) -> dict:
    """Per described pose and overall, the share of images the judge reads as that pose, and what else it reads."""
    per_pose: dict[str, dict] = {}
    for pose in dict.fromkeys(described):
        got = [r for d, r in zip(described, read) if d == pose]
        others = {r: got.count(r) for r in sorted(set(got)) if r != pose}
        per_pose[pose] = {"images": len(got), "read_as_described": round(got.count(pose) / len(got), 4),
                          "read_otherwise": others}
    overall = sum(d == r for d, r in zip(described, read)) / len(described)
    return {"per_pose": per_pose, "read_as_described": round(overall, 4), "images": len(described)}


def check_handle(backbone: str, out: str | Path, suite: str = "mini-v2", seeds: int = SEEDS,
                 subjects: Sequence[str] = SUBJECTS, log=print) -> dict:
    """Sample the part prompts from ``backbone`` with ``suite``'s sampler and judge; write ``handle-check.json``."""
    import torch

    from actionbench.api.config import SamplerConfig
    from actionbench.api.registry import get_suite
    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.io import atomic_write_json
    from actionbench.training import encode_prompts, sample_images
    from actionbench.worlds.mini.folders import shipped_dir
    from actionbench.worlds.mini.judge import to_tensor
    from actionbench.worlds.mini.judge_v2 import Classes, load_v2_judge_net, predict_indices, readings
    from actionbench.worlds.mini.lab.judge_check import image_sheet

    torch.set_num_threads(1)
    the_suite = get_suite(suite)
    steps = the_suite.method_settings.get("*", {}).get("sampler.num_inference_steps", SamplerConfig.num_inference_steps)
    sampler = SamplerConfig(num_inference_steps=steps, batch_size=32)
    net, meta = load_v2_judge_net(shipped_dir(the_suite.judge))  # before sampling: a judge that cannot load stops it
    model = load_backbone(backbone)
    prompts = handle_prompts(load_dataset(the_suite.dataset), subjects)
    images, described = [], []
    with torch.no_grad():
        for prompt, pose in prompts:
            images += sample_images(model, encode_prompts(model, [prompt]), list(range(seeds)), sampler)
            described += [pose] * seeds
            log(f"handle check: {prompt!r}: {seeds} images")
    read = [r.pose for r in readings(predict_indices(net, to_tensor(images)), Classes(**meta["classes"]))]
    record = {"backbone": backbone, "backbone_steps": model.fingerprint().get("steps"), "judge": the_suite.judge,
              "sampler": {"ddim_steps": steps, "guidance": sampler.guidance_scale}, "seeds": seeds,
              "prompts": [p for p, _ in prompts], **handle_shares(described, read)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "handle-check.json", record)
    image_sheet(images, out / "handle-check.png", columns=seeds)
    for pose, row in record["per_pose"].items():
        log(f"{pose:<10} read as described {row['read_as_described']:.3f}; otherwise {row['read_otherwise']}")
    log(f"overall read as described {record['read_as_described']:.3f} of {record['images']} images "
        f"(chance 1/19); wrote {out / 'handle-check.json'}")
    return record
