"""The runner: customize -> generate -> judge -> results, resumable and shardable.

A run lives in one folder::

    OUT/spec.json                      what is being run (frozen once written)
    OUT/artifacts/<action>/            one artifact per action
    OUT/images/<action>/<subject>/<k>.png
    OUT/judgments/<judge>-v<version>/<action>/<subject>/<k>.json
    OUT/failures/<unit>.json           units that failed (e.g. a NaN loss); the rest go on
    OUT/results.json, OUT/grid.png

Every unit of work has a stable id and is written atomically, so a killed run resumes by
skipping what is finished and never duplicates or half-writes anything. ``shard=(i, n)``
takes the units whose id hashes to ``i`` modulo ``n``, so several processes or machines can
share a run folder and the result does not depend on how the work was split.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Mapping

from ..dataset import Dataset, GenerationUnit, load_dataset
from ..errors import ActionBenchError, ArtifactError, TrainingError
from ..hashing import to_jsonable
from ..io import atomic_write_json, read_json, save_image
from ..report import duration, log_to, progress, say
from ..evidence import PIPELINE_STAGES, artifact_evidence
from ..results.record import build_results, image_record, now_iso, provenance
from ..code_state import code_provenance
from ..contract import image_problems
from .distributed import Context, all_ok
from .plan import StageRate, close_status, finish_stage, generation_rows_per_image, plan_run, run_eta, start_stage, tick
from .runfolder import (  # noqa: F401 - the runner's API
    LOG_FILE,
    RESULTS_FILE,
    SPEC_FILE,
    STATUS_FILE,
    ProcessTiming,
    Run,
    check_run_folder,
    check_same_spec,
    code_at_start,
    customize_key,
    discard_refused_run,
    image_complete,
    in_shard,
    shard_customizations,
    judge_key,
    lock_shard,
    release_shard,
    sigterm_exits,
    remove_run_temporaries,
    summed_timings,
)
from ..api.spec import RunOptions, RunSpec, parse_overrides, parse_shard, recorded_spec  # noqa: F401 - the runner's API



def recorded_run_spec(recorded: dict) -> RunSpec:
    """A RunSpec from a ``spec.json`` (to judge or report on a run without loading its model)."""
    from ..api.config import build_config
    from ..api.registry import get_method

    try:
        config = build_config(get_method(recorded["method"]).Config, base=None,
                              overrides=_flatten(recorded.get("method_config", {})))
    except ActionBenchError:  # a method that is gone, or a config from another version: keep the names
        config = None
    from ..custom import Custom

    return RunSpec(recorded["method"], config, recorded["backbone"]["id"], recorded["dataset"],
                   suite=recorded.get("suite"), preset=recorded.get("preset"),
                   train_seeds=len(recorded.get("train_seeds") or [0]), custom=Custom.from_record(recorded.get("custom")))


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix + key + "."))
        else:
            flat[prefix + key] = value
    return flat


def open_run(spec: RunSpec, options: RunOptions = RunOptions(), load_model: bool = True) -> Run:
    """Resolve a spec to live objects and bind it to a run folder (writing or checking ``spec.json``).

    The dataset, the method and the backbone are all resolved here, before any training step."""
    from ..backbone import load_backbone, one_thread_for_small_models
    from ..api.registry import get_method

    out = Path(options.out) if options.out else spec.default_out()
    check_run_folder(out)
    dataset = spec.load_dataset(options.data_root)
    method_cls = get_method(spec.method)
    backbone = load_backbone(spec.backbone, device=options.device, dtype=options.dtype, **options.backbone_options()) \
        if load_model else None
    if backbone is not None:
        one_thread_for_small_models(backbone)
    method = method_cls(backbone, spec.config) if load_model else None
    run = Run(out, spec, dataset, method, backbone, options.device)
    run.made_folder = not out.exists()
    run.opened_fresh = [out / name for name in (SPEC_FILE, LOG_FILE, STATUS_FILE) if not (out / name).exists()]
    if load_model:
        recorded = recorded_spec(spec, method, dataset)
        if not check_same_spec(out, recorded):
            atomic_write_json(out / SPEC_FILE, recorded)
        lock_shard(out, options.shard)
        run.timing = ProcessTiming(out)
    remove_run_temporaries(out)
    return run


def open_existing_run(out: str | Path, data_root: str | Path | None = None) -> Run:
    """Bind to a finished (or partial) run folder without loading any model: for judging and results."""
    out = Path(out)
    recorded = read_json(out / SPEC_FILE, f"run spec (is {out} a run folder made by `actionbench generate`?)")
    from ..custom import apply_custom

    dataset = apply_custom(load_dataset(recorded["dataset"], root=data_root), recorded.get("custom"))
    if dataset.manifest_sha256 != recorded["manifest_sha256"]:
        raise ActionBenchError(
            f"{out} was generated from dataset {recorded['dataset']} with manifest {recorded['manifest_sha256'][:12]}, "
            f"but the installed one is {dataset.manifest_sha256[:12]}; judge with the matching actionbench version"
        )
    run = Run(out, recorded_run_spec(recorded), dataset)
    run.opened_fresh = [out / name for name in (LOG_FILE, STATUS_FILE) if not (out / name).exists()]
    return run


# --- stages ----------------------------------------------------------------------------------


def customize(run: Run, shard: tuple[int, int] = (0, 1)) -> dict[str, Path]:
    """Learn every action not yet learned. A unit that fails training is recorded and skipped."""
    started = time.perf_counter()
    done: dict[str, Path] = {}
    todo = shard_customizations(run.dataset.actions, run.train_seeds, shard)
    stage = start_stage(run, "customize")
    rate = StageRate(run, stage, warmup=0, timed=1)
    for action, seed in progress(todo, desc=f"customize {run.spec.method}", unit="actions", extra=run_eta(run, stage)):
        key, action_started = customize_key(action.id, seed), time.perf_counter()
        target = customize_action(run, action, seed)
        if target is not None:
            done[key] = target
            if stage is not None and key in stage.unit_rows:  # planned, so learned now, not found done
                rate.add(1, stage.unit_rows[key], time.perf_counter() - action_started)
        tick(run)
    run.add_stage_time("customize", time.perf_counter() - started)
    finish_stage(run, stage)
    return done


def customize_action(run: Run, action, train_seed: int | None = None) -> Path | None:
    """Learn one action (with one training seed) unless its artifact exists; a diverging run is
    recorded and skipped (None)."""
    from ..api.method import ARTIFACT_JSON, Artifact

    target = run.artifact_dir(action.id, train_seed)
    if target.is_dir() and not (target / ARTIFACT_JSON).exists():
        import shutil  # a method's working folder from a customization that was killed: start it again

        shutil.rmtree(target)
    if target.exists():
        Artifact.load(target)  # a damaged artifact raises here with the fix
        return target
    failure = run.failure_path(customize_key(action.id, train_seed), train_seed)
    if failure.exists():
        return None
    try:
        run.method_for(train_seed).customize(action, target)
    except TrainingError as exc:
        atomic_write_json(failure, {"unit_id": customize_key(action.id, train_seed), "action_id": action.id,
                                    "train_seed": train_seed, "error": str(exc)})
        say(f"warning: {exc}; the other actions go on (delete {failure} to retry)")
        return None
    except ArtifactError:
        if target.exists():  # another shard saved the same artifact first
            return target
        raise
    return target


def generate(run: Run, shard: tuple[int, int] = (0, 1), customize_missing: bool = False) -> int:
    """Make every missing image. Images of one (action, subject) pair are drawn together, always with
    the same batch, so an image is bit-identical whether or not the run was interrupted.

    With ``customize_missing`` an action whose artifact another shard has not made yet is learned
    here (training is seeded, so every shard would learn the same artifact)."""
    from ..api.method import Artifact

    started = time.perf_counter()
    pairs: dict[str, list[GenerationUnit]] = {}
    for unit in run.units():
        pairs.setdefault(unit.pair_key, []).append(unit)
    todo = [
        units for key, units in pairs.items()
        if in_shard(key, shard) and not run.failed(units[0]) and not all(image_complete(run.image_path(u)) for u in units)
    ]
    artifacts: dict[tuple[str, int | None], Any] = {}
    made = 0
    stage = start_stage(run, "generate")
    rate = StageRate(run, stage)
    for units in progress(todo, desc=f"generate {run.spec.method}", unit="images", weight=len,
                          extra=run_eta(run, stage)):
        pair_started = time.perf_counter()
        action_id, subject_id, seed = units[0].action_id, units[0].subject_id, units[0].train_seed
        if (action_id, seed) not in artifacts:
            folder = run.artifact_dir(action_id, seed)
            if not folder.exists() and customize_missing:
                customize_action(run, run.dataset.action(action_id), seed)
                if run.failed(units[0]):
                    continue
            if not folder.exists():
                raise ActionBenchError(
                    f"no artifact for action '{action_id}' in {folder.parent}; run `actionbench customize` "
                    "(or `actionbench eval`) with the same --out first"
                )
            artifacts = {(action_id, seed): Artifact.load(folder, device=run.device)}
        images = run.method_for(seed).generate(artifacts[(action_id, seed)], run.dataset.subject(subject_id),
                                               [u.seed for u in units])
        problems = image_problems(images, len(units), run.backbone.resolution)
        if problems:
            raise ActionBenchError(f"method {run.spec.method} broke the generate contract for {action_id}/{subject_id}: "
                                   + "; ".join(problems) + " (check it with `actionbench check-method`)")
        for unit, image in zip(units, images):
            if not image_complete(run.image_path(unit)):
                if run.image_path(unit).exists():
                    say(f"warning: {run.image_path(unit)} was incomplete (truncated?); made it again")
                save_image(image, run.image_path(unit))
                made += 1
        tick(run, len(units))
        rate.add(len(units), len(units) * generation_rows_per_image(run.method), time.perf_counter() - pair_started)
    run.add_stage_time("generate", time.perf_counter() - started)
    finish_stage(run, stage)
    return made


def judge(run: Run, evaluator, shard: tuple[int, int] = (0, 1), batch_size: int = 32) -> int:
    """Judge every generated image not yet judged by this judge (name and version).

    Shards split by (action, subject) pair, as generation does, so a shard judges what it made."""
    from actionbench.api.evaluator import JudgeRequest

    started = time.perf_counter()
    key = judge_key(evaluator)
    todo = [
        u for u in run.units()
        if in_shard(u.pair_key, shard) and run.image_path(u).exists() and not run.judgment_path(key, u).exists()
    ]
    count = 0
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    stage = start_stage(run, "judge")
    for batch in progress(batches, desc=f"judge {evaluator.name}", unit="images", weight=len, extra=run_eta(run, stage)):
        requests = [JudgeRequest(u.id, u.action_id, u.subject_id, run.image_path(u)) for u in batch]
        for unit, verdict in zip(batch, evaluator.judge(requests)):
            atomic_write_json(run.judgment_path(key, unit), {
                "unit_id": unit.id, "action_ok": bool(verdict.action_ok), "subject_ok": bool(verdict.subject_ok),
                "detail": to_jsonable(verdict.detail),
            })
            count += 1
        tick(run, len(batch))
    run.add_stage_time("judge", time.perf_counter() - started)
    finish_stage(run, stage)
    return count


def missing_work(run: Run, key: str | None = None) -> dict[str, list[str]]:
    """Unit ids without an image (and, given a judge key, without a judgment), leaving out the units
    of customizations that failed (they are reported as failures, not waited for)."""
    units = [u for u in run.units() if not run.failed(u)]
    missing = {"images": [u.id for u in units if not run.image_path(u).exists()]}
    if key:
        missing["judgments"] = [u.id for u in units if not run.judgment_path(key, u).exists()]
    return missing


def collect_results(run: Run, evaluator_description: dict, key: str, started_at: str, wall_time_s: float,
                    world_size: int = 1) -> dict:
    """Build the results record from the run folder (requires every unit to be judged).

    Every record carries the SHA-256 of its image, hashed now from the file that was judged, so the
    results can later be checked against the images (``actionbench validate --run``).
    Timings are summed over every process that worked on the run (``OUT/timings``), so a run
    resumed after a kill still reports all the work it took."""
    from ..hashing import sha256_file

    records = []
    for unit in run.units():
        path = run.judgment_path(key, unit)
        if not path.exists():
            continue
        verdict = read_json(path, "judgment")
        image = run.image_path(unit)
        record = image_record(
            unit.id, unit.action_id, unit.subject_id, unit.k, unit.seed,
            image.relative_to(run.out).as_posix(), verdict["action_ok"], verdict["subject_ok"],
            verdict.get("detail", {}), image_sha256=sha256_file(image),
        )
        if unit.train_seed is not None:
            record["train_seed"] = unit.train_seed
        records.append(record)
    failures = sorted(read_json(p).get("unit_id") for seed in run.train_seeds
                      for p in (run.root(seed) / "failures").glob("*.json")
                      if (run.root(seed) / "failures").is_dir())
    summed_wall, summed_stages, processes = summed_timings(run.out)
    if processes:
        wall_time_s, stage_times = summed_wall, summed_stages
    else:
        stage_times = run.stage_times
    record = build_results(run.out.name, read_json(run.out / SPEC_FILE, "run spec"), evaluator_description, records,
                           failures, len(run.units()),
                           provenance(run.device, started_at, wall_time_s, stage_times, world_size),
                           train_seeds=len(run.train_seeds),
                           subject_categories={s.id: s.category for s in run.dataset.subjects})
    record["provenance"]["processes"] = processes or 1
    # what was learned, hashed now: a later edit of the spec (or loss of the folder) cannot rewrite its step counts
    record["artifacts"] = artifact_evidence(record["spec"], run.out)
    record["provenance"].update(code_provenance(code_at_start(run.out)))
    return record


def write_results(run: Run, evaluator, started_at: str, wall_time_s: float, world_size: int = 1) -> Path:
    from ..api.registry import RESULT_HOOKS

    key = judge_key(evaluator)
    record = collect_results(run, evaluator.describe(), key, started_at, wall_time_s, world_size)
    for entry in RESULT_HOOKS.entries():  # e.g. agreement with human labels, where a labels DB exists
        RESULT_HOOKS.get(entry.name)(run, evaluator, key, record)
    path = atomic_write_json(run.out / RESULTS_FILE, record)
    if record["provenance"].get("code_changed"):
        print(f"warning: ActionBench's code changed while this run was made ({'; '.join(record['provenance']['code_changes'])}); "
              "results.json says so, and `leaderboard --add` refuses it without --allow-dirty")
    try:
        from .grid import make_grid

        save_image(make_grid(run.out), run.out / "grid.png")
    except Exception as exc:  # a grid is a convenience; never lose results over it
        print(f"warning: could not draw {run.out / 'grid.png'}: {exc}")
    return path


def make_evaluator(name: str, dataset: Dataset, device: str = "cpu", options: Mapping[str, Any] | None = None):
    from ..api.registry import get_evaluator

    return get_evaluator(name)(dataset, device=device, **dict(options or {}))


def evaluate(spec: RunSpec, options: RunOptions = RunOptions(), ctx: Context | None = None) -> Path | None:
    """Customize, generate, judge and write ``results.json``; returns its path (None while units of other
    shards are missing).

    Args:
        ctx: the ``actionbench.run.distributed.Context`` of a torchrun / accelerate launch (``distributed.init``):
            the processes split the units by rank and meet between stages, and rank 0 writes the results;
            None: this process alone (``options.shard`` applies).
    """
    ctx = _process_context(ctx)
    options = ctx.options_for(options)
    started_at, t0 = now_iso(), time.perf_counter()
    with sigterm_exits():
        # rank 0 first: it writes spec.json and removes stale temporaries while nobody else is writing
        run = ctx.main_first(lambda: open_run(spec, options))
        return run_stages(run, spec.judge, PIPELINE_STAGES, options, ctx, started_at, t0)


def judge_run(out: str | Path, judge_name: str | None = None, options: RunOptions = RunOptions(),
              ctx: Context | None = None) -> Path | None:
    """Judge a run folder's images (those of ``options.shard``) and write ``results.json`` once every unit is
    judged; returns its path, or None while units are missing. Loads no model but the judge.

    Args:
        judge_name: the judge; None: the one the run's recorded suite names (``suite_judge``).
        ctx: as for ``evaluate``.

    Raises:
        ActionBenchError: the run's recorded suite no longer exists and no judge was named.
    """
    ctx = _process_context(ctx)
    options = ctx.options_for(options)
    started_at, t0 = now_iso(), time.perf_counter()
    with sigterm_exits():
        run = open_existing_run(out, data_root=options.data_root)
        if judge_name is None:
            judge_name = suite_judge(run.spec.suite, run.out)
            say(f"judge: {judge_name} ({'the suite ' + repr(run.spec.suite) + ' names it' if run.spec.suite else 'the default'}"
                "; --judge to choose)")
        return run_stages(run, judge_name, ("judge",), options, ctx, started_at, t0)


def suite_judge(suite: str | None, out: Path | None = None) -> str:
    """The judge a run's recorded suite names (a shard's merge step must not fall back to CLIP on a mini run).

    Raises:
        ActionBenchError: ``suite`` is not registered here (a renamed suite, or a plugin not installed).
    """
    from ..errors import RegistryError
    from ..api.spec import DEFAULT_JUDGE, get_suite

    if not suite:
        return DEFAULT_JUDGE
    try:
        return get_suite(suite).judge
    except RegistryError as exc:
        raise ActionBenchError(
            f"{out or 'the run'} was made with suite '{suite}', which this ActionBench does not have ({exc}); "
            "name the judge with --judge NAME (see `actionbench judges`)") from None


def _process_context(ctx: Context | None) -> Context:
    return ctx if ctx is not None else Context()  # this process alone: rank 0 of 1


def run_stages(run: Run, judge_name: str, stages: tuple[str, ...], options: RunOptions, ctx: Context,
               started_at: str, t0: float) -> Path | None:
    """The stage sequence of every run, alone or one rank of a launch: make and check the judge, plan the
    stages and say the plan, run each of ``stages`` (customize, generate, judge) meeting the other ranks at its
    end, then write ``results.json`` on rank 0 once every unit is judged. ``status.json`` says how it ended;
    a refused run leaves nothing behind (``discard_refused_run``).

    Args:
        stages: which of ``evidence.PIPELINE_STAGES`` to run (``evaluate``: all; ``judge_run``: the judge alone).
        ctx: a ``distributed.Context``; rank 0 writes the log, the status and the results.

    Returns:
        The results path, on every rank, or None while units are missing.
    """
    run.writes_status = ctx.is_main
    try:
        with log_to(run.out / LOG_FILE) if ctx.is_main else contextlib.nullcontext():
            path = _stage_sequence(run, judge_name, stages, options, ctx, started_at, t0)
    except BaseException as exc:
        stopped = isinstance(exc, (KeyboardInterrupt, SystemExit))
        close_status(run, "stopped" if stopped else "failed", error=str(exc) or type(exc).__name__)
        raise
    finally:
        release_shard(run.out, options.shard)
        discard_refused_run(run, options.shard)
    written = all_ok(ctx, path is not None or not ctx.is_main)  # rank 0's answer, on every rank
    close_status(run, "done", results=written)
    return run.out / RESULTS_FILE if written else None


def _stage_sequence(run: Run, judge_name: str, stages: tuple[str, ...], options: RunOptions, ctx: Context,
                    started_at: str, t0: float) -> Path | None:
    shard = options.shard
    evaluator = ctx.stage(make_evaluator, judge_name, run.dataset, options.device, options.judge_options)
    key = judge_key(evaluator)
    unjudged = any(in_shard(u.pair_key, shard) and not run.judgment_path(key, u).exists() for u in run.units())
    ctx.stage(lambda: evaluator.check() if unjudged else None)  # weights missing is an error now, not after generation
    run.plan = ctx.stage(plan_run, run, evaluator, shard, probe=run.backbone is not None, stages=stages)
    if "customize" in stages:
        say(f"eval {run.spec.method} on {run.spec.dataset} ({run.spec.backbone}, judge {judge_name}) in {run.out}")
    else:
        say(f"judge {run.out} ({run.spec.method} on {run.spec.dataset}) with {judge_name}")
    say(f"plan (shard {shard[0]}/{shard[1]}):")
    for line in run.plan.lines():
        say(line)
    run.work_started = True
    if "customize" in stages:
        ctx.stage(customize, run, shard)
    if "generate" in stages:
        ctx.stage(generate, run, shard, customize_missing=True)
    ctx.stage(judge, run, evaluator, shard)

    def finish() -> Path | None:
        missing_judgments = missing_work(run, key)["judgments"]
        if missing_judgments:
            say(f"{len(missing_judgments)} units are not finished yet (other shards, or images not made); "
                f"run `actionbench judge --out {run.out}` once all shards are done to write {RESULTS_FILE}")
            return None
        path = write_results(run, evaluator, started_at, time.perf_counter() - t0, options.world_size)
        say(f"done in {duration(time.perf_counter() - t0)}")
        return path

    return ctx.stage(lambda: finish() if ctx.is_main else None)
