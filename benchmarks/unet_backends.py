"""Does a faster PyTorch backend lower the mini UNet's own cost (the floor every stage runs at)?

Candidates: ``torch.compile`` and bf16 "where the CPU supports them, if the images stay within
tolerance". This measures, on one torch thread, the CPU of the two shapes the jobs run: an
inversion step's forward + backward (12 rows, conditioning that requires grad, frozen weights) and a
guided sampler call's no-grad forward (32 rows), for eager fp32 (what runs), ``torch.compile``
(inductor; its one-off compile CPU per shape printed), bf16 autocast, and channels-last weights.
Variants are interleaved, medians taken; the largest output difference from eager fp32 is printed.

    python benchmarks/unet_backends.py                  # mini-v2's UNet, 9 repetitions
    python benchmarks/unet_backends.py --backbone mini --repeats 15
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")  # a cold compile, as on a clean machine
import _common  # noqa: E402,F401  (offline settings, a scratch ACTIONBENCH_HOME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mini-v2")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (needs a C++ compiler)")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from actionbench.backbone import load_backbone
    from speed import machine_line

    torch.set_num_threads(1)
    backbone = load_backbone(args.backbone)
    unet = backbone.unet.requires_grad_(False)
    g = torch.Generator().manual_seed(0)

    def inputs(rows: int):
        shape = (rows, unet.config.in_channels, backbone.latent_size, backbone.latent_size)
        return (torch.randn(shape, generator=g), torch.randint(0, 1000, (rows,), generator=g),
                torch.randn((rows, 77, unet.config.cross_attention_dim), generator=g))

    xt, tt, ht = inputs(12)
    ht.requires_grad_(True)
    xs, ts, hs = inputs(32)

    def step(model, bf16=False):
        def run():
            ht.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(xt, tt, ht).sample
            F.mse_loss(out.float(), xt).backward()
        return run

    def sample(model, bf16=False):
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(xs, ts, hs).sample.float()
        return run

    models = {"eager fp32": (unet, False), "bf16 autocast": (unet, True),
              "channels-last": (copy.deepcopy(unet).to(memory_format=torch.channels_last), False)}
    if not args.no_compile:
        models["torch.compile"] = (torch.compile(unet), False)
    print(f"machine: {machine_line()}")
    print(f"{args.backbone} UNet, {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters, "
          f"{backbone.latent_size}x{backbone.latent_size} latents")
    variants, reference = {}, sample(unet)()
    for name, (model, bf16) in models.items():
        c0 = time.process_time()
        variants[f"{name}, step (12 rows)"] = step(model, bf16)
        variants[f"{name}, step (12 rows)"]()
        variants[f"{name}, sample (32 rows)"] = sample(model, bf16)
        diff = (variants[f"{name}, sample (32 rows)"]() - reference).abs().max().item()
        print(f"  {name:<14} first calls {time.process_time() - c0:6.1f} CPU-s (a cold compile, if any); "
              f"largest difference from eager fp32 {diff:.2e} (outputs up to {reference.abs().max().item():.1f})")
    cpu = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            c0 = time.process_time()
            fn()
            cpu[name].append(time.process_time() - c0)
    base = {kind: statistics.median(cpu[f"eager fp32, {kind}"]) for kind in ("step (12 rows)", "sample (32 rows)")}
    print(f"median CPU of {args.repeats} interleaved repetitions:")
    for name, values in cpu.items():
        kind = name.split(", ", 1)[1]
        print(f"  {name:<36} {statistics.median(values) * 1e3:7.1f} ms = {statistics.median(values) / base[kind]:.2f}x eager")


if __name__ == "__main__":
    main()
