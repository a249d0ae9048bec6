"""The toolkit's generation loop vs a bare diffusers StableDiffusionPipeline call making the same images.

Toolkit: ``TextOnlySD.generate`` -> ``actionbench.training.sample_images`` (prompt encoding, one
generator per seed, the pipeline). Bare: one ``StableDiffusionPipeline`` call with the same prompt
embeddings and latents. Both on the tiny backbone, timed alternately in one process (min of N).
Target: overhead < 5%.

    python benchmarks/generation_overhead.py [--steps 10] [--images 4] [--repeats 5]
"""
from __future__ import annotations

import argparse

import _common  # noqa: F401  (offline settings first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()

    import numpy as np
    import torch

    from actionbench.backbone import load_backbone
    from actionbench.dataset import Subject
    from actionbench.api.config import SamplerConfig
    from actionbench.methods.sd import TextOnlySD
    from actionbench.training import encode_prompts

    backbone = load_backbone("tiny")
    method = TextOnlySD(backbone, TextOnlySD.Config(sampler=SamplerConfig(num_inference_steps=args.steps,
                                                                          batch_size=args.images)))
    subject = Subject("man", "a man", "human")
    artifact = method.new_artifact(type("A", (), {"id": "cheer"})(), meta={"action_text": "cheering"})
    seeds = list(range(args.images))
    pipe = backbone.pipeline()

    def toolkit():
        return method.generate(artifact, subject, seeds)

    def bare():
        embeds = encode_prompts(backbone, ["a man cheering"]).expand(len(seeds), -1, -1)
        negative = encode_prompts(backbone, [""]).expand(len(seeds), -1, -1)
        latents = torch.stack([torch.randn((4, backbone.latent_size, backbone.latent_size),
                                           generator=torch.Generator().manual_seed(s)) for s in seeds])
        pipe.scheduler = backbone.fresh_scheduler()
        return pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, num_inference_steps=args.steps,
                    guidance_scale=7.5, height=backbone.resolution, width=backbone.resolution, latents=latents,
                    output_type="pil").images

    same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(toolkit(), bare()))
    import time

    t_tool, t_bare, c_tool, c_bare = [], [], [], []
    for _ in range(args.repeats):  # alternate so both see the same machine load
        t_bare.append(_common.best_of(bare, 1))
        t_tool.append(_common.best_of(toolkit, 1))
        c_bare.append(_common.best_of(bare, 1, time.process_time))
        c_tool.append(_common.best_of(toolkit, 1, time.process_time))
    import statistics

    ratio = min(t_tool) / min(t_bare)
    paired = statistics.median(t / b for t, b in zip(t_tool, t_bare))
    print(f"machine: {_common.machine()}")
    print(f"tiny backbone, {args.images} images x {args.steps} DDIM steps, min of {args.repeats}")
    print(f"bare StableDiffusionPipeline: {min(t_bare):.3f} s   toolkit sample_images: {min(t_tool):.3f} s")
    print(f"identical images: {same}")
    print(f"overhead ratio toolkit/bare: {ratio:.3f} ({100 * (ratio - 1):+.1f}%; target < +5%), "
          f"median of paired ratios {paired:.3f}")
    cpu = min(c_tool) / min(c_bare)
    print(f"process CPU time: bare {min(c_bare):.3f} s, toolkit {min(c_tool):.3f} s, ratio {cpu:.3f} "
          f"({100 * (cpu - 1):+.1f}%)")


if __name__ == "__main__":
    main()
