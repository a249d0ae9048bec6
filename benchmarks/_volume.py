"""Section ``floor`` of ``speed.py``: what a job's volume of work costs at the model's own speed.

A run's plan (``actionbench.run.plan.plan_run``, the same count ``--dry-run`` and the ETAs use) counts its
work in UNet rows: one latent through one forward pass; a training step of B rows counts 3B (forward
and backward), a guided DDIM step 2 rows per image; ADI adds its action-different tunings and images
while they are not cached. Rows times the CPU of one UNet row, measured here, is the job's *volume
floor*: what it costs if every stage ran at the UNet's own forward speed with nothing else (no text
encoder, VAE, judge or Python). A job near its volume floor can only get faster by computing less
(fewer steps, rows or images), which is the protocol's choice, not an efficiency fix.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def floor_variants(backbone, rows: int, prompts: list[str], generator) -> dict:
    """The model's own cost on ``rows`` UNet rows and ``prompts`` text-encoder prompts.

    UNet: forward + backward of the denoising loss with precomputed noisy latents and a
    precomputed conditioning tensor that requires grad (frozen weights: only activation
    gradients, as in every inversion method). Text encoder: forward + backward from the output
    to the token embeddings (a leaf that requires grad, swapped in by a hook)."""
    import torch
    import torch.nn.functional as F

    from actionbench.training import encode_prompts, tokenize

    unet, scheduler = backbone.unet, backbone.scheduler
    shape = (rows, unet.config.in_channels, backbone.latent_size, backbone.latent_size)
    latents, noise = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    steps = torch.randint(0, scheduler.config.num_train_timesteps, (rows,), generator=generator)
    noisy = scheduler.add_noise(latents, noise, steps)
    target = scheduler.get_velocity(latents, noise, steps) if scheduler.config.prediction_type == "v_prediction" else noise
    with torch.no_grad():
        hidden = encode_prompts(backbone, [prompts[i % len(prompts)] for i in range(rows)])
    hidden = hidden.clone().requires_grad_(True)

    def unet_pass():
        hidden.grad = None
        pred = unet(noisy, steps, hidden).sample
        F.mse_loss(pred.float(), target.float()).backward()

    ids = tokenize(backbone.tokenizer, prompts, next(backbone.text_encoder.parameters()).device)
    embedding = backbone.text_encoder.get_input_embeddings()
    with torch.no_grad():
        token_rows = embedding(ids).clone()
    leaf = {}

    def swap(module, inputs, output):
        leaf["x"] = token_rows.detach().requires_grad_(True)
        return leaf["x"]

    def text_pass():
        handle = embedding.register_forward_hook(swap)
        try:
            out = backbone.text_encoder(ids)[0]
        finally:
            handle.remove()
        out.sum().backward()

    return {"unet": unet_pass, "text": text_pass}


def row_cpu_seconds(backbone, batch: int = 32, train_rows: int = 12, repeats: int = 7) -> tuple[float, float]:
    """CPU seconds of one UNet row: (no-grad forward at ``batch`` rows, as generation runs it: the runs' own
    probe, ``plan.probe_row_seconds``; forward + backward per row at ``train_rows`` rows with conditioning that
    requires grad, as an inversion step runs it: section ``step``'s UNet floor). Medians after a warm-up."""
    from _common import timed

    from actionbench.run.plan import probe_row_seconds
    from actionbench.training import fixed_generator

    unet_pass = timed(floor_variants(backbone, train_rows, ["a photo of a person"], fixed_generator(0))["unet"])
    unet_pass()
    train = statistics.median(unet_pass() for _ in range(repeats)) / train_rows
    return probe_row_seconds(backbone, rows=batch, repeats=repeats, clock=time.process_time), train


def row_plan(row, suite: str, backbone, dataset) -> dict:
    """UNet rows of one table row, one training seed, on a clean machine (nothing cached):
    {"customize": rows, "generate": rows, "tuning": rows of ADI's action-different images in customize}."""
    from actionbench.run.plan import plan_run
    from actionbench.api.registry import get_method
    from actionbench.run.runfolder import Run
    from actionbench.api.spec import RunSpec

    def rows_of(settings: dict, scratch: Path) -> dict:
        spec = RunSpec.build(row.method, settings, suite=suite, preset=row.preset)
        method = get_method(row.method)(backbone, spec.config)
        run = Run(scratch / "run", spec, dataset, method, backbone)  # a run folder that does not exist: all to do
        return {s.name: s.rows for s in plan_run(run, probe=False).stages}

    settings = dict(row.settings)
    if row.keep_fraction_from:
        settings["random_keep_fraction"] = 0.2  # the value does not change the work
    with tempfile.TemporaryDirectory(prefix="floor-") as scratch:
        if row.method == "adi":  # this machine's cache of action-different images is not a clean machine's
            settings["action_different.cache_dir"] = str(Path(scratch) / "empty-cache")
        rows = rows_of(settings, Path(scratch))
        rows["tuning"] = 0.0
        if row.method == "adi" and "action_different.source" not in row.settings:
            oracle = rows_of({**settings, "action_different.source": "oracle"}, Path(scratch))
            rows["tuning"] = rows["customize"] - oracle["customize"]
    return rows


def floor_report(suite: str, row_names, table_dir: Path | None, measured_cpu, target: tuple[str, float]) -> list[str]:
    """The lines of section ``floor``: the CPU of a UNet row here, then per table row its plan's UNet rows,
    its volume floor and (with ``table_dir``) the CPU its run folder took per training seed; then the
    floor of all rows against ``target`` (what, CPU-minutes)."""
    import torch

    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.worlds.mini.lab.table import rows_by_name

    torch.set_num_threads(1)
    backbone, dataset = load_backbone(_suite(suite).backbone), load_dataset(_suite(suite).dataset)
    fwd, train = row_cpu_seconds(backbone)
    lines = [f"\n[floor] suite {suite}: one UNet row here costs {fwd * 1e3:.2f} ms CPU (no-grad forward, batch 32); "
             f"forward + backward {train * 1e3:.2f} ms per row = {train / fwd:.2f} rows (the plan counts 3)",
             f"  {'row':<24} {'customize':>11} {'generate':>10} {'floor CPU-min':>14}   measured per seed"]
    total_rows, tuning_paid, measured_total, measured_floor = 0.0, False, 0.0, 0.0
    for row in rows_by_name(row_names):
        rows = row_plan(row, suite, backbone, dataset)
        customize = rows["customize"]
        if rows["tuning"] and tuning_paid:  # a table makes ADI's action-different images once; later rows reuse them
            customize -= rows["tuning"]
        tuning_paid = tuning_paid or bool(rows["tuning"])
        row_rows = customize + rows["generate"]
        total_rows += row_rows
        floor_min = row_rows * fwd / 60
        shown = ""
        cpu = measured_cpu(table_dir / row.name) if table_dir is not None else None
        if cpu is not None:
            per_seed, seeds = cpu
            shown = f"{per_seed / 60:6.1f} CPU-min ({seeds} seed(s)) = {per_seed / 60 / floor_min:.2f}x the floor"
            measured_total += per_seed
            measured_floor += row_rows * fwd
        lines.append(f"  {row.name:<24} {customize:>11,.0f} {rows['generate']:>10,.0f} {floor_min:>14.1f}   {shown}")
    lines.append(f"  all {len(row_names)} rows: {total_rows:,.0f} UNet rows, volume floor {total_rows * fwd / 60:.1f} CPU-min "
                 "for one training seed (ADI's action-different images counted once)")
    what, minutes = target
    floor_min = total_rows * fwd / 60
    lines.append(f"  {what}: volume floor {floor_min * 60:,.0f} CPU-s against the target {minutes * 60:,.0f} CPU-s: "
                 + ("reachable in volume" if floor_min <= minutes else
                    f"out of reach at this volume (the floor alone is {floor_min / minutes:.1f}x the target)"))
    if measured_floor:
        lines.append(f"  rows with a run folder: {measured_total / 60:.1f} CPU-min per seed measured, "
                     f"{measured_total / measured_floor:.2f}x their floor")
    return lines


def _suite(name: str):
    from actionbench.api.registry import get_suite

    return get_suite(name)
