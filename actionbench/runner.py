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

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .dataset import Dataset, GenerationUnit, load_dataset
from .errors import ActionBenchError, ArtifactError, ConfigError, TrainingError
from .hashing import stable_hash, to_jsonable
from .io import atomic_write_json, progress, read_json, remove_stale_temporaries, save_image
from .results import build_results, image_record, now_iso, provenance

SPEC_FILE = "spec.json"
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class RunSpec:
    """What a run is: method and config, backbone, dataset, preset. Frozen and hashable."""

    method: str
    method_config: dict = field(default_factory=dict)
    backbone: str = "sd21"
    dataset: str = "v1"
    preset: str | None = None

    def default_out(self) -> Path:
        tag = self.backbone.replace("/", "_").replace(":", "_")
        return Path("runs") / f"{self.method.replace(':', '_').replace('.', '_')}-{self.dataset}-{tag}-{stable_hash(to_jsonable(self), 8)}"


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 0-based."""
    if not text:
        return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard expects i/n with 0 <= i < n, e.g. 0/2; got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"--shard expects i/n with 0 <= i < n, e.g. 0/2; got {text!r}")
    return i, n


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def image_complete(path: Path) -> bool:
    """A finished PNG: exists and ends with the IEND chunk (reads 12 bytes, so resuming stays cheap).

    Images are written atomically, so an incomplete one can only come from outside damage (a copy
    cut short, a full disk elsewhere); the runner then makes it again (it is seeded, so identical)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            if handle.tell() < len(PNG_END) + 8:
                return False
            handle.seek(-len(PNG_END), 2)
            return handle.read() == PNG_END
    except (FileNotFoundError, IsADirectoryError):
        return False


def in_shard(unit_id: str, shard: tuple[int, int]) -> bool:
    i, n = shard
    return n == 1 or int(hashlib.sha256(unit_id.encode()).hexdigest()[:8], 16) % n == i


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


class Run:
    """A run folder and the live objects that work on it."""

    def __init__(self, out: str | Path, spec: RunSpec, dataset: Dataset, method=None, backbone=None,
                 device: str = "cpu"):
        self.out = Path(out)
        self.spec = spec
        self.dataset = dataset
        self.method = method
        self.backbone = backbone
        self.device = device
        self.stage_times: dict[str, float] = {}

    # --- paths ---------------------------------------------------------------------------
    def artifact_dir(self, action_id: str) -> Path:
        return self.out / "artifacts" / action_id

    def image_path(self, unit: GenerationUnit) -> Path:
        return self.out / "images" / unit.action_id / unit.subject_id / f"{unit.k}.png"

    def judgment_path(self, judge_key: str, unit: GenerationUnit) -> Path:
        return self.out / "judgments" / judge_key / unit.action_id / unit.subject_id / f"{unit.k}.json"

    def failure_path(self, unit_id: str) -> Path:
        return self.out / "failures" / (unit_id.replace("/", "__") + ".json")

    def units(self) -> list[GenerationUnit]:
        return self.dataset.units()

    def failed_actions(self) -> set[str]:
        folder = self.out / "failures"
        if not folder.is_dir():
            return set()
        return {read_json(p).get("action_id") for p in folder.glob("*.json")}


def full_spec(spec: RunSpec, method, dataset: Dataset) -> dict:
    """The spec as recorded: names plus the resolved config, backbone fingerprint and dataset hash."""
    return {
        "method": spec.method,
        "method_class": f"{type(method).__module__}:{type(method).__qualname__}",
        "method_version": method.VERSION,
        "method_config": method.config.to_dict(),
        "config_hash": method.config.hash(),
        "backbone": method.backbone.fingerprint(),
        "dataset": dataset.name,
        "manifest_sha256": dataset.manifest_sha256,
        "protocol": to_jsonable(dataset.protocol),
        "preset": spec.preset,
    }


def check_same_spec(out: Path, recorded: dict) -> bool:
    """True if ``out`` already holds this spec, False if it holds none; a different spec is an error."""
    spec_path = out / SPEC_FILE
    if not spec_path.exists():
        return False
    existing = read_json(spec_path, "run spec")
    differs = sorted(k for k in set(existing) | set(recorded) if existing.get(k) != recorded.get(k))
    if differs:
        raise ActionBenchError(
            f"{out} already holds a run with a different spec (differs in: {', '.join(differs)}); "
            "use another --out, or delete the folder to start over"
        )
    return True


def open_run(spec: RunSpec, out: str | Path | None = None, device: str = "cpu", data_root: str | Path | None = None,
             dtype: str = "fp32", load_model: bool = True, backbone_options: Mapping[str, Any] | None = None) -> Run:
    """Resolve a spec to live objects and bind it to a run folder (writing or checking ``spec.json``).

    ``backbone_options``: ``attention``, ``vae_slicing``, ``gradient_checkpointing`` (``backbone.apply_options``)."""
    from .backbone import load_backbone, one_thread_for_small_models
    from .method import build_config
    from .registry import get_method

    dataset = load_dataset(spec.dataset, root=data_root)
    method_cls = get_method(spec.method)
    config = build_config(method_cls.Config, spec.method_config, preset=spec.preset)
    out = Path(out) if out else spec.default_out()
    backbone = load_backbone(spec.backbone, device=device, dtype=dtype, **dict(backbone_options or {})) \
        if load_model else None
    if backbone is not None:
        one_thread_for_small_models(backbone)
    method = method_cls(backbone, config) if load_model else None
    run = Run(out, spec, dataset, method, backbone, device)
    if load_model:
        recorded = full_spec(spec, method, dataset)
        if not check_same_spec(out, recorded):
            atomic_write_json(out / SPEC_FILE, recorded)
    remove_stale_temporaries(out)
    return run


def open_existing_run(out: str | Path, data_root: str | Path | None = None) -> Run:
    """Bind to a finished (or partial) run folder without loading any model: for judging and results."""
    out = Path(out)
    recorded = read_json(out / SPEC_FILE, f"run spec (is {out} a run folder made by `actionbench generate`?)")
    dataset = load_dataset(recorded["dataset"], root=data_root)
    if dataset.manifest_sha256 != recorded["manifest_sha256"]:
        raise ActionBenchError(
            f"{out} was generated from dataset {recorded['dataset']} with manifest {recorded['manifest_sha256'][:12]}, "
            f"but the installed one is {dataset.manifest_sha256[:12]}; judge with the matching actionbench version"
        )
    spec = RunSpec(recorded["method"], recorded["method_config"], recorded["backbone"]["id"], recorded["dataset"],
                   recorded.get("preset"))
    return Run(out, spec, dataset)


# --- stages ----------------------------------------------------------------------------------


def customize(run: Run, shard: tuple[int, int] = (0, 1)) -> dict[str, Path]:
    """Learn every action not yet learned. A unit that fails training is recorded and skipped."""
    started = time.perf_counter()
    done: dict[str, Path] = {}
    todo = [a for a in run.dataset.actions if in_shard(f"customize/{a.id}", shard)]
    for action in progress(todo, desc=f"customize {run.spec.method}"):
        target = customize_action(run, action)
        if target is not None:
            done[action.id] = target
    run.stage_times["customize"] = run.stage_times.get("customize", 0.0) + time.perf_counter() - started
    return done


def customize_action(run: Run, action) -> Path | None:
    """Learn one action unless its artifact exists; a diverging run is recorded and skipped (None)."""
    from .method import Artifact

    target = run.artifact_dir(action.id)
    if target.exists():
        Artifact.load(target)  # a damaged artifact raises here with the fix
        return target
    failure = run.failure_path(f"customize/{action.id}")
    if failure.exists():
        return None
    try:
        run.method.customize(action, target)
    except TrainingError as exc:
        atomic_write_json(failure, {"unit_id": f"customize/{action.id}", "action_id": action.id, "error": str(exc)})
        print(f"warning: {exc}; the other actions go on (delete {failure} to retry)")
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
    from .method import Artifact

    started = time.perf_counter()
    pairs: dict[tuple[str, str], list[GenerationUnit]] = {}
    for unit in run.units():
        pairs.setdefault((unit.action_id, unit.subject_id), []).append(unit)
    failed = run.failed_actions()
    todo = [
        (key, units) for key, units in pairs.items()
        if in_shard(f"{key[0]}/{key[1]}", shard) and key[0] not in failed
        and not all(image_complete(run.image_path(u)) for u in units)
    ]
    artifacts: dict[str, Any] = {}
    made = 0
    for (action_id, subject_id), units in progress(todo, desc=f"generate {run.spec.method}"):
        if action_id not in artifacts:
            if not run.artifact_dir(action_id).exists() and customize_missing:
                customize_action(run, run.dataset.action(action_id))
                if action_id in run.failed_actions():
                    continue
            if not run.artifact_dir(action_id).exists():
                raise ActionBenchError(
                    f"no artifact for action '{action_id}' in {run.out / 'artifacts'}; run `actionbench customize` "
                    "(or `actionbench eval`) with the same --out first"
                )
            artifacts = {action_id: Artifact.load(run.artifact_dir(action_id), device=run.device)}
        images = run.method.generate(artifacts[action_id], run.dataset.subject(subject_id), [u.seed for u in units])
        if len(images) != len(units):
            raise ActionBenchError(f"method {run.spec.method} returned {len(images)} images for {len(units)} seeds")
        for unit, image in zip(units, images):
            if not image_complete(run.image_path(unit)):
                if run.image_path(unit).exists():
                    print(f"warning: {run.image_path(unit)} was incomplete (truncated?); made it again")
                save_image(image, run.image_path(unit))
                made += 1
    run.stage_times["generate"] = run.stage_times.get("generate", 0.0) + time.perf_counter() - started
    return made


def judge_key(evaluator) -> str:
    return f"{evaluator.name}-v{evaluator.VERSION}"


def judge(run: Run, evaluator, shard: tuple[int, int] = (0, 1), batch_size: int = 32) -> int:
    """Judge every generated image not yet judged by this judge (name and version).

    Shards split by (action, subject) pair, as generation does, so a shard judges what it made."""
    from actionbench.evaluator import JudgeRequest

    started = time.perf_counter()
    key = judge_key(evaluator)
    todo = [
        u for u in run.units()
        if in_shard(f"{u.action_id}/{u.subject_id}", shard) and run.image_path(u).exists() and not run.judgment_path(key, u).exists()
    ]
    count = 0
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    for batch in progress(batches, desc=f"judge {key}"):
        requests = [JudgeRequest(u.id, u.action_id, u.subject_id, run.image_path(u)) for u in batch]
        for unit, verdict in zip(batch, evaluator.judge(requests)):
            atomic_write_json(run.judgment_path(key, unit), {
                "unit_id": unit.id, "action_ok": bool(verdict.action_ok), "subject_ok": bool(verdict.subject_ok),
                "detail": to_jsonable(verdict.detail),
            })
            count += 1
    run.stage_times["judge"] = run.stage_times.get("judge", 0.0) + time.perf_counter() - started
    return count


def missing_work(run: Run, key: str | None = None) -> dict[str, list[str]]:
    units = run.units()
    missing = {"images": [u.id for u in units if not run.image_path(u).exists()]}
    if key:
        missing["judgments"] = [u.id for u in units if not run.judgment_path(key, u).exists()]
    return missing


def collect_results(run: Run, evaluator_description: dict, key: str, started_at: str, wall_time_s: float,
                    world_size: int = 1) -> dict:
    """Build the results record from the run folder (requires every unit to be judged)."""
    records = []
    for unit in run.units():
        path = run.judgment_path(key, unit)
        if not path.exists():
            continue
        verdict = read_json(path, "judgment")
        records.append(image_record(
            unit.id, unit.action_id, unit.subject_id, unit.k, unit.seed,
            str(run.image_path(unit).relative_to(run.out)), verdict["action_ok"], verdict["subject_ok"],
            verdict.get("detail", {}),
        ))
    failures = sorted(read_json(p).get("unit_id") for p in (run.out / "failures").glob("*.json")) \
        if (run.out / "failures").is_dir() else []
    return build_results(run.out.name, read_json(run.out / SPEC_FILE, "run spec"), evaluator_description, records,
                         failures, len(run.units()),
                         provenance(run.device, started_at, wall_time_s, run.stage_times, world_size))


def write_results(run: Run, evaluator, started_at: str, wall_time_s: float, world_size: int = 1) -> Path:
    from .registry import RESULT_HOOKS

    key = judge_key(evaluator)
    record = collect_results(run, evaluator.describe(), key, started_at, wall_time_s, world_size)
    for entry in RESULT_HOOKS.entries():  # e.g. agreement with human labels, where a labels DB exists
        RESULT_HOOKS.get(entry.name)(run, evaluator, key, record)
    path = atomic_write_json(run.out / RESULTS_FILE, record)
    try:
        from .leaderboard import make_grid

        save_image(make_grid(run.out), run.out / "grid.png")
    except Exception as exc:  # a grid is a convenience; never lose results over it
        print(f"warning: could not draw {run.out / 'grid.png'}: {exc}")
    return path


def make_evaluator(name: str, dataset: Dataset, device: str = "cpu", options: Mapping[str, Any] | None = None):
    from .registry import get_evaluator

    return get_evaluator(name)(dataset, device=device, **dict(options or {}))


def evaluate(spec: RunSpec, out: str | Path | None = None, judge_name: str = "clip", device: str = "cpu",
             shard: tuple[int, int] = (0, 1), data_root: str | Path | None = None, dtype: str = "fp32",
             judge_options: Mapping[str, Any] | None = None, world_size: int = 1,
             backbone_options: Mapping[str, Any] | None = None) -> Path | None:
    """Customize, generate, judge and write ``results.json``; returns its path (None for a partial shard).

    For several processes on one folder with barriers between stages see ``actionbench.distributed.evaluate``."""
    started_at, t0 = now_iso(), time.perf_counter()
    run = open_run(spec, out, device=device, data_root=data_root, dtype=dtype, backbone_options=backbone_options)
    customize(run, shard)
    generate(run, shard, customize_missing=True)
    evaluator = make_evaluator(judge_name, run.dataset, device, judge_options)
    judge(run, evaluator, shard)
    missing = missing_work(run, judge_key(evaluator))
    failed = run.failed_actions()
    missing_judgments = [u for u in missing["judgments"] if u.split("/")[0] not in failed]
    if missing_judgments:
        print(f"{len(missing_judgments)} units are not finished yet (other shards); "
              f"run `actionbench judge --out {run.out}` once all shards are done to write {RESULTS_FILE}")
        return None
    return write_results(run, evaluator, started_at, time.perf_counter() - t0, world_size)
