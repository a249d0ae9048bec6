"""What a run will do and roughly how long it takes: for stage lines, the overall ETA and ``--dry-run``.

Work is counted in *UNet rows*: one latent through one UNet forward pass. A training step of B
rows costs about 3B (forward and backward), a guided DDIM step 2 rows per image. One short probe
(a few UNet forwards on this machine) turns rows into seconds; as stages run, the measured rate
replaces the probe's. The estimate is rough (text encoders, VAEs and Python are left out) and says so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .report import duration


JUDGE_ROWS_PER_IMAGE = 0.5
"""A judge's cost per image in UNet rows: a guess (judges are one forward of a smaller network)."""


@dataclass
class StagePlan:
    name: str
    units: int
    unit: str
    rows: float
    detail: str = ""
    seconds: float | None = None


@dataclass
class RunPlan:
    """Stages with their work; ``row_seconds`` converts work to time (from the probe, then measured)."""

    stages: list[StagePlan] = field(default_factory=list)
    row_seconds: float | None = None
    started: float = field(default_factory=time.perf_counter)
    done_rows: float = 0.0

    def estimate(self) -> None:
        for stage in self.stages:
            stage.seconds = stage.rows * self.row_seconds if self.row_seconds is not None else None

    def total_seconds(self) -> float | None:
        if self.row_seconds is None:
            return None
        return sum(s.rows for s in self.stages) * self.row_seconds

    def finish(self, stage: StagePlan) -> None:
        """A stage ended: count its work as done and recalibrate the rate on what was measured."""
        self.done_rows += stage.rows
        elapsed = time.perf_counter() - self.started
        if self.done_rows > 0 and elapsed > 1.0:
            self.row_seconds = elapsed / self.done_rows
            self.estimate()

    def remaining_seconds(self, current: StagePlan | None = None, fraction_done: float = 0.0) -> float | None:
        if self.row_seconds is None:
            return None
        rows = sum(s.rows for s in self.stages) - self.done_rows
        if current is not None:
            rows -= current.rows * fraction_done
        return max(0.0, rows * self.row_seconds)

    def lines(self) -> list[str]:
        out = []
        for i, stage in enumerate(self.stages, 1):
            out.append(f"  [{i}/{len(self.stages)}] {stage.name}: {stage.units} {stage.unit}"
                       + (f" ({stage.detail})" if stage.detail else "") + f", about {duration(stage.seconds)}")
        out.append(f"  all stages: about {duration(self.total_seconds())} (rough: UNet passes only)")
        return out


def probe_row_seconds(backbone, rows: int = 2, repeats: int = 3) -> float:
    """Seconds per UNet row on this machine: the median of a few no-grad forwards after a warm-up."""
    import statistics

    import torch

    unet = backbone.unet
    shape = (rows, unet.config.in_channels, backbone.latent_size, backbone.latent_size)
    latents = torch.zeros(shape, device=backbone.device, dtype=unet.dtype)
    dim = unet.config.cross_attention_dim
    states = torch.zeros((rows, 77, dim), device=backbone.device, dtype=unet.dtype)
    t = torch.full((rows,), 500, device=backbone.device, dtype=torch.long)
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            started = time.perf_counter()
            unet(latents, t, states)
            if backbone.device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - started)
    return statistics.median(times) / rows


def generation_rows_per_image(method) -> float:
    """UNet rows to draw one image: DDIM steps, twice with classifier-free guidance."""
    sampler = method.config.sampler
    return sampler.num_inference_steps * (2 if sampler.guidance_scale > 1 else 1) * method.generation_cost_factor
