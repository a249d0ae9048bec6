"""The speed figures (docs/speed.md), in CPU seconds with one torch thread per process.

Every time here is CPU time (``time.process_time()`` of this process, or ``getrusage`` of a
child process), with ``torch.set_num_threads(1)`` and ``OMP_NUM_THREADS=1``, and every ratio
is measured side by side in one run (repetitions interleaved, medians taken), so the figures
hold on a busy, shared machine. Wall times are printed for reference only.

Sections (``--sections``, default ``step ti adi tune``):

``step``   Training step vs its floor, on the ``mini`` backbone, for textual_inversion (4 rows),
           p_plus (8 rows) and adi (4 anchors: 12 rows). The step is what the method runs per
           iteration (its data draws, its loss, backward, ADI's masks, the AdamW step, through
           ``run_training``); ADI's action-different rows are stand-in latents (their images are
           a one-time, cached cost per exemplar). The floor is the model's own cost on the same
           rows: the UNet forward+backward with precomputed conditioning that requires grad,
           plus the text encoder forward+backward on the same prompts (L x B prompts for the
           per-layer methods, as they encode them). Target: step / floor <= 1.3. About 1-2 CPU-min.
``ti``     Our textual-inversion step vs diffusers' own example
           (``../shared/upstream/diffusers-examples/textual_inversion.py``, run from there) on the
           same saved ``tiny`` pipeline and the same exemplar images, batch 4, resolution 64, one
           thread, in child processes. Per-step CPU = (CPU(S2) - CPU(S1)) / (S2 - S1), so start-up
           and saving cancel. Target: ours / diffusers' <= 1. About 2-4 CPU-min.
``adi``    ADI step vs P+ step on ``tiny`` at the same anchors (``benchmarks/adi_step.py``'s
           measurement): ADI / P+ (target <= 3; ADI has three rows per anchor) and batched / naive
           (one backward vs three; target < 1). About 1 CPU-min.
``tune``   ADI's action-different tuning on ``mini``: one action's 10 exemplars' copies of the UNet tuned
           together (``action_different.tune_batch=10``, what the mini suite runs) vs one at a time (the
           default), the same steps (``--tune-steps``); then one sampler step per copy. Target: < 1
           (a speed setting; equal steps within float tolerance, ``tests/test_adi.py``). About 1 CPU-min.
``main``   The README's main job, ``actionbench eval --method adi --suite mini``, in a child process
           with a fresh ``ACTIONBENCH_HOME`` (as on a clean clone: the mini dataset and ADI's
           action-different images are made too): the child's CPU seconds from process start to
           results printed (target <= 300), its wall time and the stage times recorded in
           ``results.json``. Not in the default set: it takes 10-30 minutes today (``--main-job``).
``table``  With ``--table RUNS_DIR``: the CPU every run folder under RUNS_DIR took (the ``cpu_time_s``
           of ``OUT/timings/*.json``, summed over the processes that worked on it), per run and in
           all. Target: every method + null + ADI controls, one training seed, <= 60 CPU-minutes.
           Runs made before timings recorded CPU show their wall time only. Instant.
``floor``  The volume floor (``benchmarks/_volume.py``): the UNet rows each table row's plan counts (one
           training seed, nothing cached; the count ``--dry-run`` and the ETAs use) times the CPU of
           one UNet row measured here, for the README's main job (``adi`` on ``mini``; target 300 CPU-s)
           and for the table of ``--floor-suite`` (its default rows; target 60 CPU-min), with the CPU
           per seed of the run folders under ``--table`` beside it. What a job costs at the model's
           own forward speed with nothing else: below it only less computation helps. About 2 CPU-min.

    python benchmarks/speed.py                          # step, ti, adi, tune
    python benchmarks/speed.py --sections step --repeats 9
    python benchmarks/speed.py --sections tune
    python benchmarks/speed.py --main-job               # also the README's main job (minutes)
    python benchmarks/speed.py --sections table --table runs/mini
    python benchmarks/speed.py --sections floor --floor-suite mini-v2 --table runs/mini-v2
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported: CPU time = the work done
# importing _common first sets the offline settings: HF_HUB_OFFLINE, no progress bars, a scratch ACTIONBENCH_HOME
from _common import timed  # noqa: E402
from _volume import floor_report, floor_variants  # noqa: E402

DIFFUSERS_EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "diffusers-examples" / "textual_inversion.py"
"""The pinned copy of diffusers' ``examples/textual_inversion/textual_inversion.py`` (never copied here)."""
SECTIONS = ("step", "ti", "adi", "tune", "main", "table", "floor")
ACTION = "cheer"  # the synthetic action whose exemplars section ``ti`` trains on


# --- shared helpers ------------------------------------------------------------------------------


def machine_line() -> str:
    """CPU model, cores, threads, load: what every figure depends on."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load average {load}")


def interleaved(variants: dict, repeats: int, budget: float, warmup: int = 2) -> tuple[dict, dict, int]:
    """Median CPU and wall seconds of each variant, repetitions interleaved so load hits all alike.

    A variant is a callable that runs once and returns its own CPU seconds (so setup such as
    installing attention processors stays outside the timing)."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    started = time.perf_counter()
    done = 0
    while done < repeats and (done == 0 or time.perf_counter() - started < budget):
        for name, fn in variants.items():
            w0 = time.perf_counter()
            cpu[name].append(fn())
            wall[name].append(time.perf_counter() - w0)
        done += 1
    return ({n: statistics.median(v) for n, v in cpu.items()}, {n: statistics.median(v) for n, v in wall.items()}, done)


def child_cpu(command: list[str], env: dict, log: Path, cwd: Path | None = None) -> tuple[float, float]:
    """Run ``command`` to completion; return its (CPU seconds user+sys, wall seconds). Output goes to ``log``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, check=False)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise SystemExit(f"child failed (exit {proc.returncode}): {' '.join(command)}\n--- {log} (tail) ---\n{tail}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def child_env(**extra: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def verdict(value: float, target: float, below: bool = False) -> str:
    ok = value < target if below else value <= target
    return f"(target {'<' if below else '<='} {target:g}: {'met' if ok else 'NOT met'})"


# --- section step: training step vs its floor (mini) ----------------------------------------------


def stand_in_exemplars(backbone, count: int, generator, per_exemplar: int = 1, indices=None):
    """An ExemplarSet of ``count`` rows with random latent posteriors and the synthetic captions of
    ACTION: the shapes and prompts of a real action, without rendering or VAE-encoding images."""
    import torch

    from actionbench.training import ExemplarSet
    from actionbench.worlds.synthetic.dataset import exemplar_spec

    shape = (count, backbone.unet.config.in_channels, backbone.latent_size, backbone.latent_size)
    indices = indices or [1 + i // per_exemplar for i in range(count)]
    templates = [exemplar_spec(ACTION, i)["template"] for i in indices]
    return ExemplarSet(torch.randn(shape, generator=generator), 0.1 * torch.rand(shape, generator=generator),
                       templates, list(indices))


def step_section(args) -> None:
    import torch

    import actionbench.methods.adi as adi
    from actionbench.backbone import load_backbone
    from actionbench.layerwise import layerwise_processors, num_layers
    from actionbench.methods.p_plus import PPlusConfig, pplus_loss
    from actionbench.methods.textual_inversion import TextualInversionConfig
    from actionbench.training import (denoising_loss, draw_noise, draw_rows, encode_prompts, fixed_generator,
                                      make_optimizer, placeholder_for, run_training, word_embedding)

    backbone = load_backbone(args.step_backbone)
    torch.set_num_threads(1)
    n_layers = num_layers(backbone)
    g = fixed_generator(0)
    exemplars = stand_in_exemplars(backbone, 10, g)
    ti_cfg, pp_cfg, adi_cfg = TextualInversionConfig(), PPlusConfig(), adi.ADIConfig()
    init = word_embedding(backbone, "person")

    # Textual inversion: actionbench/methods/textual_inversion.py's step, run by run_training.
    ti_token = placeholder_for(ACTION, "textual_inversion")
    ti_vector = torch.nn.Parameter(init.clone())
    ti_opt, ti_gen = make_optimizer([ti_vector], ti_cfg.learning_rate), fixed_generator(0)

    def ti_step(_):
        rows = draw_rows(len(exemplars), ti_cfg.batch_size, ti_gen)
        latents = exemplars.sample_latents(rows, ti_gen)
        text = encode_prompts(backbone, exemplars.captions(rows, ti_token), {ti_token: ti_vector})
        return denoising_loss(backbone, latents, text, draw_noise(backbone, latents, ti_gen))

    # P+: actionbench/methods/p_plus.py's step (pplus_loss), inside layerwise_processors.
    pp_token = placeholder_for(ACTION, "p_plus")
    pp_vectors = torch.nn.Parameter(init[None].repeat(n_layers, 1))
    pp_opt, pp_gen = make_optimizer([pp_vectors], pp_cfg.learning_rate), fixed_generator(0)

    def pp_step(_):
        rows = draw_rows(len(exemplars), pp_cfg.batch_size, pp_gen)
        latents = exemplars.sample_latents(rows, pp_gen)
        draw = draw_noise(backbone, latents, pp_gen)
        return pplus_loss(backbone, pp_vectors, pp_token, latents, exemplars.captions(rows, pp_token), draw)

    # ADI: mirrors ADI.customize's step and after_backward (actionbench/methods/adi.py) with all three groups;
    # the action-different set is stand-in latents, 4 per exemplar as the method makes them.
    adi_token = placeholder_for(ACTION, "adi")
    groups = ["anchor", "context", "action"]
    per = adi_cfg.action_different.images
    action_set = stand_in_exemplars(backbone, 10 * per, g, per_exemplar=per)
    action_rows = [list(range(i * per, (i + 1) * per)) for i in range(10)]
    identifiers = torch.nn.Parameter(init[None].repeat(n_layers, 1))
    adi_opt, adi_gen, pair_gen = make_optimizer([identifiers], adi_cfg.learning_rate), fixed_generator(0), fixed_generator(1)
    state: dict = {}

    def adi_step(_):
        rows = draw_rows(len(exemplars), adi_cfg.batch_size, adi_gen)
        latents = exemplars.sample_latents(rows, adi_gen)
        draw = draw_noise(backbone, latents, adi_gen)
        captions = exemplars.captions(rows, adi_token)
        others = [adi._other_exemplar(exemplars.indices, r, pair_gen) for r in rows]
        context = exemplars.sample_latents(others, pair_gen)
        picks = [action_rows[r][int(torch.randint(len(action_rows[r]), (1,), generator=pair_gen))] for r in rows]
        action = action_set.sample_latents(picks, pair_gen)
        state["copies"] = copies = adi.identifier_copies(identifiers, len(groups), len(rows))
        losses = adi.batched_losses(backbone, copies, adi_token, torch.cat([latents, context, action]),
                                    captions + exemplars.captions(others, adi_token) + captions,
                                    adi.shared_draw(draw, len(groups)))
        total = losses.sum()
        return losses[0].mean().detach() + (total - total.detach())

    def adi_after_backward(_):
        update, _mask = adi.masked_gradient(adi_cfg, state.pop("copies").grad, groups)
        identifiers.grad = update.to(identifiers.dtype)

    layerwise = lambda: layerwise_processors(backbone.unet)  # noqa: E731
    plans = {  # method: (step variant, UNet rows, text-encoder prompts)
        "textual_inversion": (timed(lambda: run_training(ti_step, ti_opt, 1, "ti")), ti_cfg.batch_size,
                              ti_cfg.batch_size),
        "p_plus": (timed(lambda: run_training(pp_step, pp_opt, 1, "p+"), layerwise), pp_cfg.batch_size,
                   n_layers * pp_cfg.batch_size),
        "adi": (timed(lambda: run_training(adi_step, adi_opt, 1, "adi", after_backward=adi_after_backward), layerwise),
                3 * adi_cfg.batch_size, n_layers * 3 * adi_cfg.batch_size),
    }
    variants = {}
    captions = exemplars.captions(list(range(len(exemplars))), "person")
    for method, (step, rows, n_prompts) in plans.items():
        floor = floor_variants(backbone, rows, [captions[i % len(captions)] for i in range(n_prompts)], g)
        variants[f"{method} step"] = step
        variants[f"{method} unet"] = timed(floor["unet"])
        variants[f"{method} text"] = timed(floor["text"])
    cpu, wall, n = interleaved(variants, args.repeats, args.budget)

    print(f"\n[step] training step vs its floor, backbone {backbone.id} ({n_layers} cross-attention layers, "
          f"{backbone.latent_size}x{backbone.latent_size} latents), median of {n} interleaved repetitions")
    print("  CPU ms; floor = UNet + text encoder forward+backward on the same rows and prompts; overhead = step - floor")
    print(f"  {'method':<18} {'rows':>4} {'prompts':>7} {'step':>8} {'UNet':>8} {'text':>8} {'floor':>8} {'overhead':>8} "
          f"{'ratio':>6}  (step wall ms)")
    for method, (_, rows, n_prompts) in plans.items():
        step, unet, text = (cpu[f"{method} {part}"] for part in ("step", "unet", "text"))
        floor = unet + text
        print(f"  {method:<18} {rows:>4} {n_prompts:>7} {step * 1e3:8.1f} {unet * 1e3:8.1f} {text * 1e3:8.1f} "
              f"{floor * 1e3:8.1f} {(step - floor) * 1e3:8.1f} {step / floor:5.2f}x  ({wall[f'{method} step'] * 1e3:.1f})  "
              f"{verdict(step / floor, 1.3)}")


# --- section ti: our textual-inversion step vs diffusers' example (tiny) --------------------------

OUR_TI_CHILD = r"""
import sys, json
from pathlib import Path
from actionbench.backbone import load_backbone, one_thread_for_small_models
from actionbench.dataset import Action, Exemplar
from actionbench.methods.textual_inversion import TextualInversion, TextualInversionConfig
pipeline, data, steps, out = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
templates = json.loads((data.parent / "templates.json").read_text())
action = Action("cheer", "cheering", tuple(Exemplar("cheer", i + 1, data / name, templates[name])
                                            for i, name in enumerate(sorted(templates))))
backbone = load_backbone("local:" + pipeline)
one_thread_for_small_models(backbone)
TextualInversion(backbone, TextualInversionConfig(train_steps=steps, batch_size=4)).customize(action, Path(out))
"""


def ti_section(args) -> None:
    from actionbench.backbone import build_tiny_backbone, save_backbone
    from actionbench.io import atomic_write_json
    from actionbench.worlds.synthetic.dataset import EXEMPLARS_PER_ACTION, exemplar_spec, synthetic_exemplar

    if not DIFFUSERS_EXAMPLE.is_file():
        print(f"\n[ti] skipped: the pinned diffusers example is not at {DIFFUSERS_EXAMPLE}")
        return
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # saving the text encoder draws a bar otherwise
    s1, s2 = args.ti_steps
    work = Path(tempfile.mkdtemp(prefix="speed-ti-"))
    pipeline = save_backbone(build_tiny_backbone(), work / "pipeline")
    data = work / "images"  # the example reads every file in the folder as an image: images only
    data.mkdir()
    templates = {}
    for i in range(1, EXEMPLARS_PER_ACTION + 1):
        name = f"{i:02d}.png"
        synthetic_exemplar(ACTION, i).image.save(data / name)
        templates[name] = exemplar_spec(ACTION, i)["template"]
    atomic_write_json(work / "templates.json", templates)

    env = child_env(ACTIONBENCH_HOME=str(work / "home"))
    env.pop("ACTIONBENCH_NO_PROGRESS", None)  # both children report progress as they would into a log file

    def diffusers_cmd(steps: int) -> list[str]:
        # Flags: no validation (no --validation_prompt), checkpoints and embedding saves only past the
        # last step, seed fixed, lr as ours. --report_to stays at its default (tensorboard): without
        # tensorboard installed accelerate only warns and logs nowhere.
        return [sys.executable, str(DIFFUSERS_EXAMPLE), "--pretrained_model_name_or_path", str(pipeline),
                "--train_data_dir", str(data), "--placeholder_token", f"<{ACTION}>", "--initializer_token", "person",
                "--resolution", "64", "--train_batch_size", "4", "--max_train_steps", str(steps),
                "--learning_rate", "5e-3", "--seed", "0", "--checkpointing_steps", "1000000",
                "--save_steps", "1000000", "--dataloader_num_workers", "0",
                "--output_dir", str(work / f"diffusers-{steps}")]

    def ours_cmd(steps: int) -> list[str]:
        return [sys.executable, "-c", OUR_TI_CHILD, str(pipeline), str(data), str(steps), str(work / f"ours-{steps}")]

    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for rep in range(args.ti_repeats):  # interleaved: diffusers S1, ours S1, diffusers S2, ours S2
        for steps in (s1, s2):
            for who, cmd in (("diffusers", diffusers_cmd), ("ours", ours_cmd)):
                shutil.rmtree(work / f"{who}-{steps}", ignore_errors=True)
                runs.setdefault((who, steps), []).append(child_cpu(cmd(steps), env, work / f"{who}-{steps}-{rep}.log"))

    print(f"\n[ti] textual-inversion step, tiny pipeline saved to a folder, batch 4, resolution 64, "
          f"{len(templates)} exemplar images of '{ACTION}', one thread, max_train_steps {s1} and {s2}, "
          f"{args.ti_repeats} repetition(s)")
    per_step = {}
    for who in ("diffusers", "ours"):
        deltas = [(b[0] - a[0]) / (s2 - s1) for a, b in zip(runs[(who, s1)], runs[(who, s2)])]
        walls = [(b[1] - a[1]) / (s2 - s1) for a, b in zip(runs[(who, s1)], runs[(who, s2)])]
        per_step[who] = statistics.median(deltas)
        starts = statistics.median(c for c, _ in runs[(who, s1)])
        each = "" if len(deltas) == 1 else f"; repetitions {', '.join(f'{d * 1e3:.0f}' for d in deltas)} ms"
        print(f"  {who:<10} {per_step[who] * 1e3:8.1f} ms CPU per step  ({statistics.median(walls) * 1e3:.1f} ms wall; "
              f"process with {s1} steps: {starts:.1f} CPU-s{each})")
    ratio = per_step["ours"] / per_step["diffusers"]
    print(f"  ours / diffusers' example: {ratio:.2f}x  {verdict(ratio, 1.0)}")
    print(f"  logs and outputs: {work}")


# --- section adi: ADI vs P+ on tiny ---------------------------------------------------------------


def adi_section(args) -> None:
    import adi_step

    result = adi_step.measure("tiny", batch=args.adi_batch, repeats=args.repeats, budget=args.budget)
    med = result["cpu"]
    print(f"\n[adi] ADI step vs P+ step on tiny, B={args.adi_batch} anchors for both "
          f"(ADI: {3 * args.adi_batch} rows), median of {result['repetitions']} interleaved repetitions")
    for name, value in med.items():
        print(f"  {name:<28} {value * 1e3:8.1f} ms CPU  ({result['wall'][name] * 1e3:.1f} ms wall)")
    adi_over_pplus = med["ADI step, batched"] / med["P+ step"]
    batched_over_naive = med["ADI step, batched"] / med["ADI step, naive (3 passes)"]
    print(f"  ADI / P+ (same anchors): {adi_over_pplus:.2f}x  {verdict(adi_over_pplus, 3.0)}")
    print(f"  batched / naive:         {batched_over_naive:.2f}x  {verdict(batched_over_naive, 1.0, below=True)}")


# --- section tune: ADI's action-different copies tuned together vs one at a time ----------------------


def tune_section(args) -> None:
    from actionbench.backbone import load_backbone
    from actionbench.dataset import load_dataset
    from actionbench.methods import adi

    backbone, dataset = load_backbone("mini"), load_dataset("mini")
    images = [e.image() for e in dataset.actions[0].exemplars]
    config = adi.ADIConfig()
    settings = dict(adi.action_different_settings(config), tune_steps=args.tune_steps, inference_steps=1,
                    prompts=config.action_different.prompts[:1])
    seeds = list(range(len(images)))
    variants = {
        f"{len(images)} copies together": timed(lambda: adi.tune_and_generate(backbone, images, settings, seeds)),
        "one at a time": timed(lambda: [adi.tune_and_generate(backbone, [im], settings, [s])
                                        for im, s in zip(images, seeds)]),
    }
    cpu, wall, done = interleaved(variants, max(1, args.repeats // 4), args.budget, warmup=1)
    print(f"\n[tune] ADI's action-different tuning on mini: {len(images)} exemplars x {args.tune_steps} steps, "
          f"then 1 sampler step each; median of {done} interleaved repetitions")
    for name in variants:
        per_step = cpu[name] / (len(images) * args.tune_steps)
        print(f"  {name:<22} {cpu[name]:7.1f} CPU-s ({per_step * 1e3:.1f} ms per copy-step; wall {wall[name]:.1f} s)")
    ratio = cpu[f"{len(images)} copies together"] / cpu["one at a time"]
    print(f"  together / one at a time: {ratio:.2f}x  {verdict(ratio, 1.0, below=True)}")


# --- section main: the README's main job -----------------------------------------------------------


def main_section(args) -> None:
    from actionbench.io import read_json
    from actionbench.run.runfolder import summed_cpu_time

    work = Path(tempfile.mkdtemp(prefix="speed-main-"))
    out = work / "run"
    env = child_env(ACTIONBENCH_HOME=str(work / "home"))  # fresh: dataset and action-different images made too
    env.pop("ACTIONBENCH_NO_PROGRESS", None)
    command = [sys.executable, "-m", "actionbench", "eval", "--method", "adi", "--suite", "mini", "--out", str(out)]
    print(f"\n[main] {' '.join(command[2:])} (fresh ACTIONBENCH_HOME {work / 'home'}; log {work / 'log.txt'}) ...",
          flush=True)
    cpu, wall = child_cpu(command, env, work / "log.txt")
    results = read_json(out / "results.json")
    prov = results.get("provenance", {})
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in prov.get("stage_times_s", {}).items())
    run_cpu, recorded, processes = summed_cpu_time(out)
    print(f"  child process: {cpu:.0f} CPU-s from start to results printed  {verdict(cpu, 300)}")
    print(f"  wall {wall:.0f} s; the run's own record: wall {prov.get('wall_time_s', float('nan')):.0f} s, "
          f"stages (wall): {stages}")
    if recorded:
        print(f"  CPU recorded in the run's timings (after the model is loaded): {run_cpu:.0f} s")
    metrics = results.get("metrics", {})
    if metrics:
        print("  metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float))))


# --- section table: the CPU a table of runs took ---------------------------------------------------


def table_section(args) -> None:
    from actionbench.run.runfolder import SPEC_FILE, summed_cpu_time, summed_timings

    root = Path(args.table)
    folders = [root] if (root / SPEC_FILE).is_file() else sorted(p for p in root.iterdir() if (p / SPEC_FILE).is_file())
    if not folders:
        raise SystemExit(f"--table {root}: no run folders (folders holding {SPEC_FILE}) there")
    print(f"\n[table] CPU per run folder under {root} (summed over the processes that worked on each)")
    total_cpu, total_wall, missing = 0.0, 0.0, []
    for folder in folders:
        wall, _stages, processes = summed_timings(folder)
        cpu, recorded, _ = summed_cpu_time(folder)
        total_wall += wall
        if processes and recorded == processes:
            total_cpu += cpu
            shown = f"{cpu / 60:7.1f} CPU-min"
        else:
            missing.append(folder.name)
            shown = f"{'not recorded' if not recorded else f'{recorded}/{processes} processes':>12}"
        print(f"  {folder.name:<28} {shown}   wall {wall / 60:7.1f} min   {processes} process(es)")
    judged = verdict(total_cpu / 60, 60) if not missing else f"(target <= 60: incomplete, {len(missing)} run(s) unrecorded)"
    print(f"  total: {total_cpu / 60:.1f} CPU-min over {len(folders) - len(missing)} runs {judged}; "
          f"process wall times summed {total_wall / 60:.1f} min")
    if missing:
        print(f"  without a full CPU record (made before timings recorded cpu_time_s): {', '.join(missing)}")


# --- section floor: the work a job's plan counts, at the model's own speed ------------------------


def run_cpu_per_seed(folder: Path) -> tuple[float, int] | None:
    """(CPU seconds per training seed, seeds) of a run folder whose every process recorded its CPU, else None."""
    from actionbench.io import read_json
    from actionbench.run.runfolder import SPEC_FILE, summed_cpu_time

    if not (folder / SPEC_FILE).is_file():
        return None
    cpu, recorded, processes = summed_cpu_time(folder)
    if not processes or recorded != processes:
        return None
    seeds = len(read_json(folder / SPEC_FILE).get("train_seeds") or [None])
    return cpu / seeds, seeds


def floor_section(args) -> None:

    from actionbench.worlds.mini.lab.table import defaults

    for line in floor_report("mini", ["adi"], None, run_cpu_per_seed, target=("the README's main job", 300 / 60)):
        print(line)
    rows = defaults(args.floor_suite)[0]
    table = Path(args.table) if args.table else None
    for line in floor_report(args.floor_suite, rows, table, run_cpu_per_seed, target=("the table", 60)):
        print(line)


# --- main -----------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=None,
                        help="what to measure (default: step ti adi tune, plus main with --main-job, table with --table)")
    parser.add_argument("--main-job", action="store_true", help="also time the README's main job (10-30 minutes)")
    parser.add_argument("--table", metavar="RUNS_DIR", default=None, help="sum the CPU of the run folders there")
    parser.add_argument("--floor-suite", default="mini", help="the suite whose table section floor counts")
    parser.add_argument("--repeats", type=int, default=11, help="interleaved repetitions in step and adi (median)")
    parser.add_argument("--budget", type=float, default=90.0,
                        help="stop repeating after this many seconds of timing per section (at least one repetition)")
    parser.add_argument("--step-backbone", default="mini", help="backbone of the step section")
    parser.add_argument("--ti-steps", type=int, nargs=2, default=(10, 60), metavar=("S1", "S2"),
                        help="max_train_steps of the two child runs per side in the ti section")
    parser.add_argument("--ti-repeats", type=int, default=1, help="repetitions of the four child runs (median)")
    parser.add_argument("--adi-batch", type=int, default=4, help="anchors per step in the adi section (ADI's default)")
    parser.add_argument("--tune-steps", type=int, default=25, help="tuning steps per copy in the tune section")
    args = parser.parse_args(argv)
    sections = args.sections or (["step", "ti", "adi", "tune"] + (["main"] if args.main_job else [])
                                 + (["table"] if args.table else []))
    if "table" in sections and not args.table:
        parser.error("--sections table needs --table RUNS_DIR")
    if args.ti_steps[1] <= args.ti_steps[0]:
        parser.error("--ti-steps S1 S2 needs S2 > S1")

    import torch

    torch.set_num_threads(1)
    started_cpu, started = time.process_time(), time.perf_counter()
    print(f"machine: {machine_line()}")
    for name in sections:
        {"step": step_section, "ti": ti_section, "adi": adi_section, "tune": tune_section, "main": main_section,
         "table": table_section, "floor": floor_section}[name](args)
        sys.stdout.flush()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\ndone in {time.perf_counter() - started:.0f} s wall, {time.process_time() - started_cpu:.0f} CPU-s here "
          f"+ {children.ru_utime + children.ru_stime:.0f} CPU-s in child processes; load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
