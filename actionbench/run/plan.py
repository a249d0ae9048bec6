"""What a run will do and roughly how long it takes: for stage lines, the overall ETA and ``--dry-run``.

Work is counted in *UNet rows*: one latent through one UNet forward pass. A training step of B
rows costs about 3B (forward and backward), a guided sampling step 2 rows per image. Each stage has its
own rate, from its own probe on this machine: a few UNet forwards for training and judging; for
generation, two short real samplings at the run's sampler (2 and 4 steps, one batch), which also time
what a UNet row leaves out (the text encoder, the VAE, guidance and the pipeline). A stage's rate is
not carried over to another: generation costs more per row than training's forward passes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..evidence import PIPELINE_STAGES
from ..report import duration, say
from ..results.schema import judge_label
from .runfolder import STATUS_FILE, Run, customize_key, image_complete, in_shard, judge_key, shard_customizations


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
    row_seconds: float | None = None
    """This stage's own seconds per row (its probe); None: the plan's ``row_seconds``."""
    unit_rows: dict[str, float] = field(default_factory=dict)
    """Rows of each unit still to do, by key, where units differ (customize: by ``customize_key``)."""

    def rate(self, default: float | None) -> float | None:
        return self.row_seconds if self.row_seconds is not None else default


@dataclass
class RunPlan:
    """Stages with their work; ``row_seconds`` converts work to time (from the probe, then measured)."""

    stages: list[StagePlan] = field(default_factory=list)
    row_seconds: float | None = None
    clock: Callable[[], float] = time.perf_counter
    finished: list[StagePlan] = field(default_factory=list)
    current: StagePlan | None = None
    current_done: int = 0
    current_started: float | None = None
    status_written: float = 0.0

    def start(self, stage: StagePlan) -> None:
        self.current, self.current_done, self.current_started = stage, 0, self.clock()

    def _seconds(self, stage: StagePlan, rows: float) -> float | None:
        rate = stage.rate(self.row_seconds)
        return None if rate is None else rows * rate

    def estimate(self) -> None:
        for stage in self.stages:
            stage.seconds = self._seconds(stage, stage.rows)

    def total_seconds(self) -> float | None:
        parts = [self._seconds(s, s.rows) for s in self.stages]
        return None if any(p is None for p in parts) else sum(parts)

    def finish(self, stage: StagePlan) -> None:
        """A stage ended: it is done, and its measured time replaces its estimate (no other stage's rate changes)."""
        if stage in self.finished:
            return
        self.finished.append(stage)
        if stage is self.current and self.current_started is not None:
            stage.seconds = self.clock() - self.current_started

    def remaining_seconds(self, current: StagePlan | None = None, fraction_done: float = 0.0) -> float | None:
        """Seconds left in the run. The current stage counts what its own progress line shows (time so far
        scaled by the fraction left) when that is longer than the plan's figure, so the run's ETA is never
        shorter than the stage's."""
        later = [self._seconds(s, s.rows) for s in self.stages if s not in self.finished and s is not current]
        if any(p is None for p in later):
            return None
        if current is None:
            return max(0.0, sum(later))
        planned = self._seconds(current, current.rows * (1.0 - fraction_done))
        if planned is None:
            return None
        if current is self.current and self.current_started is not None and fraction_done > 0:
            planned = max(planned, (self.clock() - self.current_started) * (1.0 - fraction_done) / fraction_done)
        return max(0.0, sum(later)) + max(0.0, planned)

    def lines(self) -> list[str]:
        out = []
        for i, stage in enumerate(self.stages, 1):
            out.append(f"  [{i}/{len(self.stages)}] {stage.name}: {stage.units} {stage.unit}"
                       + (f" ({stage.detail})" if stage.detail else "") + f", about {duration(stage.seconds)}")
        out.append(f"  all stages: about {duration(self.total_seconds())} (each stage from its own probe on this machine)")
        return out


def probe_row_seconds(backbone, rows: int = 8, repeats: int = 3, clock=time.perf_counter) -> float:
    """Seconds per UNet row on this machine: the median of a few no-grad forwards after a warm-up
    (``clock=time.process_time`` for CPU seconds)."""
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
            started = clock()
            unet(latents, t, states)
            if backbone.device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(clock() - started)
    return statistics.median(times) / rows


def probe_image_seconds(backbone, sampler, cost_factor: float = 1.0, clock=time.perf_counter) -> float:
    """Seconds per image at ``sampler``'s steps on this machine: one batch of the sampler's size drawn at 2 and at
    4 steps (after a 1-step warm-up) gives the cost of a step and the fixed cost of an image (text encoder, VAE,
    pipeline); a step costs ``cost_factor`` times the plain pipeline's (e.g. a ControlNet beside the UNet)."""
    from ..training import encode_prompts, sample_images

    seeds = list(range(max(1, int(sampler.batch_size))))

    def timed(steps: int) -> float:
        started = clock()
        sample_images(backbone, encode_prompts(backbone, ["a photo"]), seeds, sampler.replace(num_inference_steps=steps))
        return clock() - started

    timed(1)
    two, four = timed(2), timed(4)
    per_step = max(0.0, (four - two) / 2)
    fixed = max(0.0, two - 2 * per_step)
    return (fixed + per_step * cost_factor * sampler.num_inference_steps) / len(seeds)


def generation_rows_per_image(method) -> float:
    """UNet rows to draw one image: DDIM steps, twice with classifier-free guidance."""
    sampler = method.config.sampler
    return sampler.num_inference_steps * (2 if sampler.guidance_scale > 1 else 1) * method.generation_cost_factor


# --- a run's plan, its stage lines and the overall ETA -------------------------------------------


def plan_run(run: Run, evaluator=None, shard: tuple[int, int] = (0, 1), probe: bool = True,
             stages: tuple[str, ...] = PIPELINE_STAGES):
    """What is left to do in this run folder, stage by stage (those of ``stages``), with a rough time from a short probe."""
    units = [u for u in run.units() if in_shard(u.pair_key, shard)]
    plan = RunPlan()
    if "customize" in stages:
        actions = [(a, seed) for a, seed in shard_customizations(run.dataset.actions, run.train_seeds, shard)
                   if not run.artifact_dir(a.id, seed).exists()
                   and not run.failure_path(customize_key(a.id, seed), seed).exists()]
        per_action = {customize_key(a.id, seed): run.method.training_rows(a) for a, seed in actions}
        steps = getattr(run.method.config, run.method.steps_field) if run.method.steps_field else None
        plan.stages.append(StagePlan("customize", len(actions), "actions", sum(per_action.values()),
                                     f"{steps} training steps each" if steps else "no training",
                                     unit_rows=per_action))
    if "generate" in stages:
        images = [u for u in units if not image_complete(run.image_path(u))]
        sampler = run.method.config.sampler
        plan.stages.append(StagePlan("generate", len(images), "images",
                                     len(images) * generation_rows_per_image(run.method),
                                     f"{sampler.num_inference_steps} sampling steps each"))
    if evaluator is not None and "judge" in stages:
        key = judge_key(evaluator)
        judged = [u for u in units if not run.judgment_path(key, u).exists()]
        plan.stages.append(StagePlan("judge", len(judged), "images", len(judged) * JUDGE_ROWS_PER_IMAGE,
                                     f"{evaluator.name}, version {evaluator.VERSION}"))
    if probe and any(s.rows for s in plan.stages):
        plan.row_seconds = probe_row_seconds(run.backbone)
        generate = next((s for s in plan.stages if s.name == "generate"), None)
        if generate is not None and generate.rows:
            per_image = probe_image_seconds(run.backbone, run.method.config.sampler, run.method.generation_cost_factor)
            generate.row_seconds = per_image / generation_rows_per_image(run.method)
    plan.estimate()
    return plan


def start_stage(run: Run, name: str):
    if run.timing is not None:
        run.timing.stage_started(name)
    plan = run.plan
    if plan is None:
        return None
    index, stage = next(((i, s) for i, s in enumerate(plan.stages, 1) if s.name == name), (None, None))
    if stage is not None:
        plan.start(stage)
        write_status(run, force=True)
        say(f"[{index}/{len(plan.stages)}] {name} {run.spec.method}: {stage.units} {stage.unit}"
            + (f" ({stage.detail})" if stage.detail else "") + f", about {duration(stage.seconds)}; "
            f"all stages left: about {duration(plan.remaining_seconds())}")
    return stage


class StageRate:
    """A stage's estimate from its own work: after ``warmup`` calls (the first one may set things up), the next
    ``timed`` calls' seconds per row replace the probe's rate for the stage's rows, and the new estimate is said.
    Rows, not units, so that units of unequal work (an ADI action whose action-different images are cached) are
    weighed as the plan weighs them. The probe before the run draws plain images and times no-grad forwards, while
    a method's own images may cost more (identifiers, one per layer), and the machine's load may change."""

    def __init__(self, run: Run, stage: StagePlan | None, warmup: int = 1, timed: int = 2):
        self.run, self.stage, self.warmup, self.timed = run, stage, warmup, timed
        self.calls, self.units, self.rows, self.seconds = 0, 0, 0.0, 0.0

    def add(self, units: int, rows: float, seconds: float) -> None:
        self.calls += 1
        if self.stage is None or not self.warmup < self.calls <= self.warmup + self.timed:
            return
        self.units, self.rows, self.seconds = self.units + units, self.rows + rows, self.seconds + seconds
        if self.calls == self.warmup + self.timed and self.rows > 0:
            before = self.stage.seconds
            self.stage.row_seconds = self.seconds / self.rows
            self.stage.seconds = self.stage.row_seconds * self.stage.rows
            what = f"{self.units} {self.stage.unit}" if self.units != 1 else self.stage.unit.removesuffix("s")
            say(f"  {self.stage.name}: about {duration(self.stage.seconds)} at the rate of its first {what} "
                f"(the probe said about {duration(before)})")
            write_status(self.run, force=True)


def run_eta(run: Run, stage):
    if run.plan is None or stage is None:
        return None
    return lambda fraction: f"run ETA {duration(run.plan.remaining_seconds(stage, fraction))}"


def tick(run: Run, units: int = 1) -> None:
    """A unit of the current stage finished: timings and the status file follow."""
    if run.timing is not None:
        run.timing.tick()
    if run.plan is not None and run.plan.current is not None:
        run.plan.current_done += units
        write_status(run)


def write_status(run: Run, force: bool = False) -> None:
    """``OUT/status.json``: the stage, its units done and the run's ETA, for a display watching several runs
    (``actionbench mini table``); rewritten at most every 2 s."""
    from ..io import atomic_write_json

    plan = run.plan
    if not run.writes_status:
        return
    now = plan.clock()
    if not force and now - plan.status_written < 2.0:
        return
    plan.status_written = now
    stage = plan.current
    fraction = plan.current_done / stage.units if stage.units else 0.0
    atomic_write_json(run.out / STATUS_FILE, {"stage": stage.name, "done": plan.current_done, "total": stage.units,
                                                "unit": stage.unit,
                                                "remaining_s": plan.remaining_seconds(stage, fraction)})


def close_status(run: Run, stage: str, **extra) -> None:
    """The last ``status.json`` of a process: ``done`` with every image counted, or ``failed`` /
    ``stopped`` with where it stood; no time left either way."""
    from ..io import atomic_write_json

    if not run.writes_status:
        return
    plan, count = run.plan, len(run.units())
    done, total, unit = (count if stage == "done" else 0), count, "images"
    if stage != "done" and plan is not None and plan.current is not None:
        done, total, unit = plan.current_done, plan.current.units, f"{plan.current.unit} ({plan.current.name})"
    atomic_write_json(run.out / STATUS_FILE, {"stage": stage, "done": done, "total": total, "unit": unit,
                                                "remaining_s": 0.0, **extra})


def finish_stage(run: Run, stage) -> None:
    if run.plan is not None and stage is not None:
        run.plan.finish(stage)




# --- --dry-run: every check a run needs, the plan, nothing written ----------------------------------


def dry_run(spec, options) -> list[str]:
    """Resolve and check everything a run needs, estimate its stages, and write nothing.

    Checks, in order: the run folder (new, empty, or the same spec), the dataset and its images, the
    method and its config, the backbone (loaded), the judge and its weights. Returns the lines to print.

    Raises:
        ActionBenchError: the first check that fails, with its fix.
    """
    from pathlib import Path

    from ..backbone import load_backbone
    from ..api.registry import get_evaluator, get_method
    from .runfolder import SPEC_FILE, check_run_folder, check_same_spec
    from ..api.spec import recorded_spec

    out = Path(options.out) if options.out else spec.default_out()
    lines = [f"dry run of {spec.method} on {spec.dataset} ({spec.backbone}, judge {spec.judge}): nothing is written",
             "checks passed:"]
    check_run_folder(out)
    dataset = spec.load_dataset(options.data_root)
    units = dataset.units()
    lines.append(f"  - dataset {dataset.name}: {len(dataset.actions)} actions, {len(dataset.subjects)} subjects, "
                 f"{len(units)} images to make; exemplar images present")
    method_cls = get_method(spec.method)
    lines.append(f"  - method {spec.method} ({method_cls.__module__}:{method_cls.__qualname__}); config valid, "
                 f"hash {spec.config.hash()}")
    started = time.perf_counter()
    backbone = load_backbone(spec.backbone, device=options.device, dtype=options.dtype, **options.backbone_options())
    unet_parameters = sum(p.numel() for p in backbone.unet.parameters())
    lines.append(f"  - backbone {spec.backbone} on {options.device} ({options.dtype}): {unet_parameters / 1e6:.1f}M UNet "
                 f"parameters, loaded in {duration(time.perf_counter() - started)}")
    method = method_cls(backbone, spec.config)
    evaluator = get_evaluator(spec.judge)(dataset, device=options.device, **dict(options.judge_options))
    evaluator.check()
    lines.append(f"  - judge {judge_label(evaluator.name, evaluator.VERSION)}: ready (its weights are on this machine)")
    run = Run(out, spec, dataset, method, backbone, options.device)
    if (out / SPEC_FILE).is_file():
        check_same_spec(out, recorded_spec(spec, method, dataset))
        done = sum(image_complete(run.image_path(u)) for u in units)
        lines.append(f"  - --out {out}: resumes a run with the same spec ({done}/{len(units)} images made)")
    else:
        lines.append(f"  - --out {out}: a new run folder")
    plan = plan_run(run, evaluator, options.shard)
    generate = plan.stages[1]
    per_image = (f", {generate.seconds / generate.units:.2f} s per image generated"
                 if generate.units and generate.seconds is not None else "")
    lines.append(f"plan (shard {options.shard[0]}/{options.shard[1]}; probes on this machine: "
                 f"{1000 * (plan.row_seconds or 0):.1f} ms per UNet row{per_image}):")
    lines += plan.lines()
    weights = sum(p.numel() * p.element_size() for m in (backbone.unet, backbone.text_encoder, backbone.vae)
                  for p in m.parameters())
    training = method.training_memory_bytes()
    lines.append(f"memory: backbone weights {weights / 2**30:.2f} GiB; training adds about {training / 2**30:.2f} GiB "
                 "(trained weights, their gradients and AdamW moments, fp32) plus activations")
    return lines
