"""The ``--fit`` half of ``benchmarks/sd21_shape.py``: from its fp32 measurements at two or more resolutions,
each phase's transient memory as a + b x latent pixels, the estimate at 768 px for fp32 and fp16 frozen weights,
and the smallest 24 / 40 / 80 GB GPU that holds it (docs/reliability.md explains the model and its error).
It also holds the resident-memory model (``resident_states``), which the measuring half prints beside its
measurements: sd21_shape.py imports this module, never the reverse.

    python benchmarks/sd21_shape.py --fit r64.json r128.json [more.json ...] [--target-resolution 768]
"""
from __future__ import annotations

import json
from pathlib import Path

GIB = 1024**3

# --- resident memory: what does not grow with the resolution (sd21_shape.py measures the rest) -----

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def resident_states(method: str, counts: dict[str, int], dtype: str = "fp32", gpu: bool = False) -> dict[str, float]:
    """Resolution-independent memory of a method's main training phase, in GiB, by state.

    Frozen modules in ``dtype``; trainable copies always in fp32 (``trainable_copy``): weights 4 B,
    gradients 4 B and AdamW's two moments 8 B per trainable parameter. ``gpu``: torch's default
    ``foreach`` AdamW on CUDA also holds one temporary the size of the trainable parameters during
    the step (on CPU the per-tensor loop holds one tensor's worth)."""
    frozen = (counts["unet"] + counts["text_encoder"] + counts["vae"]) * BYTES[dtype]
    copy = trainable = 0
    if method == "dreambooth":
        copy, trainable = counts["unet"], counts["unet"]
    elif method == "custom_diffusion":
        copy, trainable = counts["unet"], counts["unet_cross_attention_kv"] + counts["token"]
    elif method == "adi":  # the action-different tuning holds the largest states; the main step only L x D floats
        copy, trainable = counts["unet"], counts["unet_attention"]
    elif method in ("textual_inversion", "reversion"):
        trainable = counts["token"]
    elif method == "p_plus":
        trainable = counts["token"] * counts["cross_attention_layers"]
    states = {
        "frozen weights": frozen / GIB,
        "trainable copy (fp32)": (copy - trainable) * 4 / GIB + trainable * 4 / GIB,
        "gradients": trainable * 4 / GIB,
        "AdamW moments": trainable * 8 / GIB,
    }
    if gpu:
        states["foreach AdamW temporary"] = trainable * 4 / GIB
    return states


# --- extrapolating to 768 px ------------------------------------------------------------------------

# Phases whose transient memory ("rise": peak RSS in the phase minus RSS at its start) is fitted against
# latent pixels. Each maps to the windows it is read from.
PHASES = ("VAE encode", "class images", "action-different tuning", "training step", "sampling", "VAE decode")
GENERATION_PHASES = ("sampling", "VAE decode")
FROZEN_DTYPE_STEPS = ("textual_inversion", "reversion", "p_plus", "adi")
"""Methods whose training step runs the frozen UNet (in --dtype); the others run an fp32 trainable copy."""


def batch_scale(result: dict) -> float:
    """Default batch size / the batch size measured (a ``--override METHOD:batch_size=N`` run), else 1."""
    batch = (result.get("overrides") or {}).get("batch_size")
    if batch is None:
        return 1.0
    from actionbench.api.registry import get_method

    return get_method(result["method"]).Config().batch_size / int(batch)


def phase_rises(result: dict) -> dict[str, float]:
    """The largest rise of each phase in one subprocess's windows; a training step measured at a smaller
    batch is scaled to the default batch (activations grow linearly with the rows)."""
    method, action = result["method"], result.get("action")
    rises: dict[str, float] = {}

    def keep(phase, value):
        rises[phase] = max(rises.get(phase, 0.0), value)

    for w in result.get("windows", []):
        name, kind = w["name"], w.get("kind")
        if name == "VAE encode":
            keep("VAE encode", w["rise_gib"])
        elif name.startswith("class images"):
            keep("class images", w["rise_gib"])
        elif kind == "forward+backward" and "action-different tuning" in name:
            keep("action-different tuning", w["rise_gib"])
        elif kind == "forward+backward" and name == f"{method} {action}: forward+backward":
            keep("training step", w["rise_gib"])
        elif name == "UNet forward (sampling)":
            keep("sampling", w["rise_gib"])
        elif name == "VAE decode":
            keep("VAE decode", w["rise_gib"])
    if "training step" in rises:
        rises["training step"] *= batch_scale(result)
    return rises


def phase_residents(method: str, phase: str, counts: dict[str, int], dtype: str) -> float:
    """GiB resident during ``phase`` besides its transient: frozen weights in ``dtype``, trainable fp32 copies
    and AdamW moments as they are from the second step on (gradients are inside the measured rise)."""
    frozen = (counts["unet"] + counts["text_encoder"] + counts["vae"]) * BYTES[dtype]
    extra = 0
    if phase == "action-different tuning":
        extra = counts["unet"] * 4 + counts["unet_attention"] * 8
    elif phase == "training step":
        states = resident_states(method, counts, dtype)
        extra = (states["trainable copy (fp32)"] + states["AdamW moments"]) * GIB
    elif phase in GENERATION_PHASES:
        if method == "dreambooth":  # the artifact's delta on the device (fp32) and the patched copy
            extra = counts["unet"] * 4 + counts["unet"] * BYTES[dtype]
        elif method == "custom_diffusion":  # a patched copy of the whole UNet, the K/V delta beside it
            extra = counts["unet"] * BYTES[dtype] + counts["unet_cross_attention_kv"] * 4
        elif method == "controlnet":
            extra = counts["controlnet"] * BYTES[dtype]
    return (frozen + extra) / GIB


def optimizer_peak(method: str, counts: dict[str, int], dtype: str) -> float:
    """GiB at the optimizer step on a GPU: weights, copy, gradients, moments and foreach AdamW's temporary."""
    return sum(resident_states(method, counts, dtype, gpu=True).values())


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares a + b x through (x, y) points (exact through two)."""
    import numpy as np

    xs, ys = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def latent_pixels(resolution: int) -> int:
    return (resolution // 8) ** 2


def estimate(method: str, fits: dict[str, tuple[float, float]], counts: dict[str, int], dtype: str,
             target: int) -> tuple[float, str]:
    """GiB the torch allocator would hold at its peak at ``target`` px, and the phase of that peak."""
    x = latent_pixels(target)
    trains = resident_states(method, counts, dtype)["gradients"] > 0
    best = (optimizer_peak(method, counts, dtype), "optimizer step" if trains else "weights")
    for phase, (a, b) in fits.items():
        rise = max(0.0, a + b * x)
        runs_frozen = phase != "action-different tuning" and not (
            phase == "training step" and method not in FROZEN_DTYPE_STEPS)
        if BYTES[dtype] == 2 and runs_frozen:
            rise *= 0.5  # activations of a half-precision module are half as large
        total = phase_residents(method, phase, counts, dtype) + rise
        if total > best[0]:
            best = (total, phase)
    return best


GPU_SIZES_GIB = (24, 40, 80)
CUDA_CONTEXT_GIB = 1.0
ALLOCATOR_MARGIN = 1.10


def smallest_gpu(allocated_gib: float) -> str:
    """The smallest of 24/40/80 GB that holds ``allocated_gib`` plus CUDA context and allocator slack."""
    needed = allocated_gib * ALLOCATOR_MARGIN + CUDA_CONTEXT_GIB
    return next((f"{size} GB" for size in GPU_SIZES_GIB if needed <= size), "> 80 GB")


def collect_points(reports: list[dict]) -> dict[tuple, dict[str, dict[str, list[tuple[float, float]]]]]:
    """(gradient checkpointing, VAE slicing) -> method -> phase -> [(latent pixels, rise GiB)] from fp32 reports."""
    points: dict = {}
    for report in reports:
        if report["dtype"] != "fp32":
            print(f"skipping a {report['dtype']} report: fits start from fp32 measurements")
            continue
        key = (bool(report["gradient_checkpointing"]), bool(report.get("vae_slicing")))
        for result in report["results"]:
            if not result.get("windows"):
                continue
            for phase, rise in phase_rises(result).items():
                points.setdefault(key, {}).setdefault(result["method"], {}).setdefault(phase, []).append(
                    (latent_pixels(report["resolution"]), rise))
    return points


def print_fit(paths: list[str], target: int) -> None:
    """Per method and phase: the rise at each measured resolution, the fit a + b x latent pixels, the rise at
    ``target`` px; then each method's estimated peak at ``target`` px for fp32 / fp16 frozen weights, with and
    without gradient checkpointing, and the smallest GPU that holds it. A phase measured at three or more
    resolutions is also fitted on all but the largest, to show how well the line predicts the largest."""
    import pandas as pd

    reports = [json.loads(Path(p).read_text()) for p in paths]
    counts = reports[0]["parameters"]
    points = collect_points(reports)
    lines, checks, rows = [], [], {}
    for (checkpointing, slicing), by_method in sorted(points.items()):
        fits_by_method = {}
        for method, phases in sorted(by_method.items()):
            fits = {}
            for phase, pts in phases.items():
                xs = sorted({x for x, _ in pts})
                if len(xs) < 2:
                    continue
                fits[phase] = a, b = fit_line(pts)
                lines.append({"method": method, "checkpointing": checkpointing, "VAE slicing": slicing, "phase": phase,
                              **{f"{int(x ** 0.5) * 8} px": max(y for xx, y in pts if xx == x) for x in xs},
                              "a GiB": a, "b GiB/1k latent px": b * 1000,
                              f"{target} px": max(0.0, a + b * latent_pixels(target))})
                if len(xs) >= 3:
                    a2, b2 = fit_line([p for p in pts if p[0] != xs[-1]])
                    measured = max(y for x, y in pts if x == xs[-1])
                    predicted = a2 + b2 * xs[-1]
                    checks.append({"method": method, "phase": phase, "predicted at": f"{int(xs[-1] ** 0.5) * 8} px",
                                   "from": ", ".join(f"{int(x ** 0.5) * 8}" for x in xs[:-1]),
                                   "predicted GiB": predicted, "measured GiB": measured,
                                   "error": f"{100 * (predicted - measured) / measured:+.0f}%"})
            fits_by_method[method] = fits
        # Generation runs on the same frozen modules for every method: a run stopped before it borrows sd's.
        donor = fits_by_method.get("sd") or next(iter(fits_by_method.values()))
        for method, fits in fits_by_method.items():
            for phase in GENERATION_PHASES:
                if phase not in fits and phase in donor:
                    fits[phase] = donor[phase]
            for dtype in ("fp32", "fp16"):
                total, phase = estimate(method, fits, counts, dtype, target)
                label = f"{dtype}{' + checkpointing' if checkpointing else ''}{' + VAE slicing' if slicing else ''}"
                rows.setdefault(method, {})[label] = f"{total:.1f} ({phase}) -> {smallest_gpu(total)}"
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60,
                           "display.float_format", "{:.2f}".format):
        print(f"Transient memory per phase (GiB): measured rises, fit a + b x latent pixels, and at {target} px")
        print(pd.DataFrame(lines).to_string(index=False))
        if checks:
            print("\nThe line through the smaller resolutions, checked against the largest:")
            print(pd.DataFrame(checks).to_string(index=False))
        print(f"\nEstimated peak allocated at {target} px, GiB (phase of the peak) -> smallest GPU with "
              f"x{ALLOCATOR_MARGIN:.2f} allocator slack + {CUDA_CONTEXT_GIB:.0f} GiB CUDA context:")
        print(pd.DataFrame.from_dict(rows, orient="index").to_string())
