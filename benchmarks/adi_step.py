"""What an ADI step costs: against a P+ step, and batched (one backward) against naive (three).

On the ``tiny`` backbone (CPU, no download), on one fixed batch, measured in one run. Times are
the process's CPU time on one thread (``--threads 1``), interleaved and the median taken, so the
ratios hold even on a shared, busy machine (wall-clock times there vary several-fold):

- P+ step: the denoising loss on B anchors with per-layer tokens, forward + backward;
- ADI step, batched: anchor, context-different and action-different rows (3B) in ONE
  forward/backward with per-sample identifier copies, then the masks (what ``customize`` runs);
- ADI step, naive: the same three gradients from three separate forward/backward passes.

The action-different images are a one-time, cached cost per exemplar and are not timed here
(stand-in latents take their place); docs/methods-adi.md estimates that stage.

    python benchmarks/adi_step.py [--batch 2] [--repeats 5] [--budget 30] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ACTIONBENCH_NO_PROGRESS", "1")
os.environ.setdefault("ACTIONBENCH_HOME", tempfile.mkdtemp(prefix="actionbench-bench-"))


def measure(backbone_name: str = "tiny", batch: int = 2, repeats: int = 5, budget: float = 30.0) -> dict:
    """Median CPU and wall seconds of the P+ step, the batched ADI step and the naive one, interleaved.

    Returns ``{"cpu": {name: s}, "wall": {name: s}, "repetitions": n, "layers": L, "seconds": total}``;
    also called by ``benchmarks/speed.py``."""
    import torch

    import actionbench.methods.adi as adi
    from actionbench.backbone import load_backbone
    from actionbench.layerwise import layerwise_processors, num_layers
    from actionbench.methods.p_plus import pplus_loss
    from actionbench.training import NoiseDraw, draw_noise, fixed_generator, word_embedding

    backbone = load_backbone(backbone_name)
    b, n_layers, token = batch, num_layers(backbone), "<adi-bench>"
    g = fixed_generator(0)
    shape = (b, backbone.unet.config.in_channels, backbone.latent_size, backbone.latent_size)
    anchor, context, action = (torch.randn(shape, generator=g) for _ in range(3))
    draw = draw_noise(backbone, anchor, g)
    captions = [f"a photo of a person {token} number {i}" for i in range(b)]
    all_captions = captions + [f"a person {token} on a beach, {i}" for i in range(b)] + captions
    all_latents = torch.cat([anchor, context, action])
    cfg = adi.ADIConfig()
    groups = ["anchor", "context", "action"]
    identifiers = torch.nn.Parameter(word_embedding(backbone, "person")[None].repeat(n_layers, 1))

    def pplus_step():
        identifiers.grad = None
        pplus_loss(backbone, identifiers, token, anchor, captions, draw).backward()

    def adi_batched():
        _, grads = adi.per_sample_gradients(backbone, identifiers, token, all_latents, all_captions,
                                            adi.shared_draw(draw, 3), n_groups=3)
        identifiers.grad, _ = adi.masked_gradient(cfg, grads, groups)

    def adi_naive():
        grads = []
        for k in range(3):
            rows = slice(k * b, (k + 1) * b)
            copies = adi.identifier_copies(identifiers, 1, b)
            adi.batched_losses(backbone, copies, token, all_latents[rows], all_captions[rows],
                               NoiseDraw(draw.noise, draw.timesteps)).sum().backward()
            grads.append(copies.grad[0])
        identifiers.grad, _ = adi.masked_gradient(cfg, torch.stack(grads), groups)

    steps = {"P+ step": pplus_step, "ADI step, batched": adi_batched, "ADI step, naive (3 passes)": adi_naive}
    times: dict[str, list[float]] = {name: [] for name in steps}
    walls: dict[str, list[float]] = {name: [] for name in steps}
    started = time.perf_counter()
    with layerwise_processors(backbone.unet):
        for fn in steps.values():  # warm-up
            fn()
        timing_started = time.perf_counter()
        for _ in range(repeats):  # interleaved, so load spikes hit every variant alike
            if times["P+ step"] and time.perf_counter() - timing_started > budget:
                break
            for name, fn in steps.items():
                c0, w0 = time.process_time(), time.perf_counter()
                fn()
                times[name].append(time.process_time() - c0)
                walls[name].append(time.perf_counter() - w0)
    return {"cpu": {name: statistics.median(values) for name, values in times.items()},
            "wall": {name: statistics.median(values) for name, values in walls.items()},
            "repetitions": len(times["P+ step"]), "layers": n_layers, "seconds": time.perf_counter() - started}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2, help="anchors per step (B)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each step (median reported)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="stop repeating after this many seconds of timing (at least one repetition)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: CPU time = work done)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    result = measure("tiny", args.batch, args.repeats, args.budget)
    med, wall = result["cpu"], result["wall"]

    print(f"tiny backbone: {result['layers']} cross-attention layers, B={args.batch} anchors, "
          f"{torch.get_num_threads()} CPU threads, median of {result['repetitions']}")
    for name, value in med.items():
        print(f"  {name:<28} {value * 1000:8.1f} ms CPU  ({wall[name] * 1000:8.1f} ms wall)")
    print(f"ADI step / P+ step (same B):     {med['ADI step, batched'] / med['P+ step']:.2f}x")
    print(f"batched / naive (3 passes):      {med['ADI step, batched'] / med['ADI step, naive (3 passes)']:.2f}x")
    print(f"(measured in {result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
