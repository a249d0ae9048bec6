"""A run folder: its layout, the checks that keep a user's own files safe, a lock per shard, and
timings that add up over every process that worked on it.

    OUT/spec.json                      what is being run (frozen once written)
    OUT/artifacts/<action>/            one artifact per action
    OUT/images/<action>/<subject>/<k>.png
    OUT/judgments/<judge>-v<version>/<action>/<subject>/<k>.json
    OUT/failures/<unit>.json           units that failed (e.g. a NaN loss); the rest go on
    OUT/timings/<process>.json         what each process spent, per stage (summed into results)
    OUT/seeds/<seed>/...               the same layout per training seed, for --train-seeds N > 1
    OUT/results.json, OUT/grid.png, OUT/log.txt, OUT/status.json
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from ..dataset import Dataset, GenerationUnit
from ..errors import ActionBenchError
from ..io import atomic_write_json, is_toolkit_temporary, read_json, remove_stale_temporaries

SPEC_FILE = "spec.json"
RESULTS_FILE = "results.json"
LOG_FILE = "log.txt"
STATUS_FILE = "status.json"
TIMINGS_DIR = "timings"
WRITTEN_DIRS = ("artifacts", "images", "judgments", "failures", TIMINGS_DIR, "seeds", "leaderboard")
"""The folders a run writes into: the only places its temporaries are looked for."""
OWN_FILES = (SPEC_FILE, RESULTS_FILE, LOG_FILE, "grid.png")


def resolve_results_path(run_dir_or_results_path: str | Path) -> Path:
    """A results JSON path from a run folder (its ``results.json``) or the path itself."""
    path = Path(run_dir_or_results_path)
    if path.is_dir():
        if (path / RESULTS_FILE).is_file():
            return path / RESULTS_FILE
        found = sorted(p.name for p in path.glob("*.json"))
        raise ActionBenchError(
            f"no {RESULTS_FILE} in {path} (JSON files there: {', '.join(found) or 'none'}); finish the run with "
            f"`actionbench judge --out {path}`, or pass the results file itself"
        )
    if not path.is_file():
        raise ActionBenchError(f"results file not found: {path}")
    return path


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


def shard_customizations(actions, train_seeds, shard: tuple[int, int]) -> list[tuple]:
    """The (action, training seed) customizations of ``shard``: round-robin over the run's list (seed by
    seed, actions in the dataset's order), so N shards learn ceil or floor of (actions x seeds) / N each.
    A few expensive units split by hash would be lumpy (8 actions over 4 shards hashed: 2, 0, 4, 2)."""
    i, n = shard
    everything = [(a, seed) for seed in train_seeds for a in actions]
    return everything if n == 1 else everything[i::n]


class Run:
    """A run folder and the live objects that work on it."""

    def __init__(self, out: str | Path, spec, dataset: Dataset, method=None, backbone=None, device: str = "cpu"):
        self.out = Path(out)
        self.spec = spec
        self.dataset = dataset
        self.method = method
        self.backbone = backbone
        self.device = device
        self.stage_times: dict[str, float] = {}
        self.plan = None  # a plan.RunPlan when the caller wants stage lines and an overall ETA
        self.timing: ProcessTiming | None = None
        self.opened_fresh: list[Path] = []  # spec.json, log.txt, status.json where they did not exist at opening
        self.made_folder = False  # the folder did not exist at opening
        self.work_started = False  # set before the first unit of work: a failure from then on keeps what was made
        self.writes_status = True  # False on the other ranks of a launch: rank 0 alone writes status.json

    # --- training seeds ------------------------------------------------------------------
    @property
    def train_seeds(self) -> list[int | None]:
        """The training seeds, or ``[None]`` for a run with one (whose layout has no seed level)."""
        values = getattr(self.spec, "train_seed_values", None)
        return list(values) if values else [None]

    def root(self, train_seed: int | None = None) -> Path:
        return self.out if train_seed is None else self.out / "seeds" / str(train_seed)

    def method_for(self, train_seed: int | None = None):
        """The method instance that customizes with ``train_seed`` (its config's ``seed`` replaced)."""
        if train_seed is None or self.method is None:
            return self.method
        cache = self.__dict__.setdefault("_seeded_methods", {})
        if train_seed not in cache:
            cache[train_seed] = type(self.method)(self.backbone, self.method.config.replace(seed=train_seed))
        return cache[train_seed]

    # --- paths ---------------------------------------------------------------------------
    def artifact_dir(self, action_id: str, train_seed: int | None = None) -> Path:
        return self.root(train_seed) / "artifacts" / action_id

    def image_path(self, unit: GenerationUnit) -> Path:
        return self.root(unit.train_seed) / "images" / unit.action_id / unit.subject_id / f"{unit.k}.png"

    def judgment_path(self, judge_key: str, unit: GenerationUnit) -> Path:
        return self.root(unit.train_seed) / "judgments" / judge_key / unit.action_id / unit.subject_id / f"{unit.k}.json"

    def failure_path(self, unit_id: str, train_seed: int | None = None) -> Path:
        return self.root(train_seed) / "failures" / (unit_id.replace("/", "__") + ".json")

    def units(self) -> list[GenerationUnit]:
        """Every image of the protocol, for every training seed."""
        import dataclasses

        base = self.dataset.units()
        if self.train_seeds == [None]:
            return base
        return [dataclasses.replace(u, train_seed=seed) for seed in self.train_seeds for u in base]

    def failed_actions(self, train_seed: int | None = None) -> set[str]:
        folder = self.root(train_seed) / "failures"
        if not folder.is_dir():
            return set()
        return {read_json(p).get("action_id") for p in folder.glob("*.json")}

    def failed(self, unit: GenerationUnit) -> bool:
        return unit.action_id in self.failed_actions(unit.train_seed)

    # --- time spent ----------------------------------------------------------------------
    def add_stage_time(self, stage: str, seconds: float) -> None:
        self.stage_times[stage] = self.stage_times.get(stage, 0.0) + seconds
        if self.timing is not None:
            self.timing.stage_done(stage, seconds)


def customize_key(action_id: str, train_seed: int | None = None) -> str:
    """The unit id of a customization (what a shard splits customization by)."""
    return f"customize/{action_id}" + ("" if train_seed is None else f"@{train_seed}")


def judge_key(evaluator) -> str:
    """The judgments folder name of a judge: ``<name>-v<version>``."""
    return f"{evaluator.name}-v{evaluator.VERSION}"


# --- the folder: whose it is, and what may be removed -------------------------------------------


def check_run_folder(out: Path) -> None:
    """Refuse an ``--out`` that is a file, or a folder holding anything but an ActionBench run.

    A run folder is recognised by its ``spec.json``. An empty folder is fine. Anything else (your
    project, your home folder) is refused before a single file is written or removed there.
    """
    if out.exists() and not out.is_dir():
        raise ActionBenchError(f"--out {out} is a file, not a folder; pass a new folder for the run (e.g. runs/my-run)")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ActionBenchError(f"--out {out} lies under {parent}, which is a file, not a folder; "
                                   "pass a folder path (e.g. runs/my-run)")
    if not out.is_dir() or (out / SPEC_FILE).is_file():
        return
    entries = [p.name for p in out.iterdir() if not is_toolkit_temporary(p.name)]
    if entries:
        shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
        raise ActionBenchError(
            f"--out {out} is a folder that holds other files ({shown}) and no {SPEC_FILE} of an ActionBench run; "
            "nothing was written there. Pass a new or empty folder (e.g. runs/my-run)"
        )


def remove_run_temporaries(out: Path) -> int:
    """Temporaries a killed process left, looked for only where a run writes."""
    count = remove_stale_temporaries(out, recursive=False)
    for name in WRITTEN_DIRS:
        count += remove_stale_temporaries(out / name)
    return count


def remove_written(out: Path, written: Iterable[Path], made_folder: bool) -> None:
    """Take back what a refused or failed step wrote into ``out``: the files in ``written``, the folders
    that leaves empty (up to ``out``), and ``out`` itself where the step made it. Nothing else is touched,
    so a user's own files stay."""
    for path in written:
        path = Path(path)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != out and out in parent.parents:
            try:
                parent.rmdir()
            except OSError:  # not empty: something else lives there
                break
            parent = parent.parent
    if made_folder:
        with contextlib.suppress(OSError):
            out.rmdir()


def discard_refused_run(run: Run, shard: tuple[int, int]) -> None:
    """A run refused before its first unit of work (a judge that cannot load, say) leaves no files: the
    spec.json, log.txt, status.json and timing record its opening wrote go, and the folder where it made
    it. Not for a shard (another process may share the folder), nor once work started (it is kept for
    the resume)."""
    if run.work_started or shard != (0, 1):
        return
    release_shard(run.out, shard)
    remove_written(run.out, [*run.opened_fresh, *([run.timing.path] if run.timing else [])], run.made_folder)


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


# --- one process per shard --------------------------------------------------------------------

_held: dict[Path, object] = {}


def lock_shard(out: Path, shard: tuple[int, int]) -> None:
    """Hold ``OUT/.lock-<i>-of-<n>`` for the life of this process, so a second process started on
    the same run and shard (without torchrun) refuses at once instead of racing this one.

    Shards of one run lock different files, so ``--shard i/n`` processes and torchrun ranks share
    a folder as designed. Where ``fcntl`` is missing (Windows) this is skipped."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        return
    path = (out / f".lock-{shard[0]}-of-{shard[1]}").resolve()
    if path in _held:
        return
    out.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ActionBenchError(
            f"{out} is being worked on by {owner} (shard {shard[0]}/{shard[1]}); wait for it to finish, or run "
            "another shard (--shard i/n) or under torchrun; a killed process frees the lock at once"
        ) from None
    if os.fstat(handle.fileno()).st_ino != getattr(_stat_or_none(path), "st_ino", None):
        handle.close()  # the holder removed the file while we opened it: lock the new one instead
        return lock_shard(out, shard)
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else '?'}")
    handle.flush()
    _held[path] = handle


def _stat_or_none(path: Path):
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def release_shard(out: Path, shard: tuple[int, int]) -> None:
    """Remove and unlock ``OUT/.lock-<i>-of-<n>`` (removed while still held, so no one locks a file
    that is about to vanish); a finished or failed run leaves no lock file behind."""
    path = (out / f".lock-{shard[0]}-of-{shard[1]}").resolve()
    handle = _held.pop(path, None)
    if handle is None:
        return
    try:
        path.unlink(missing_ok=True)
    finally:
        handle.close()  # closing the last descriptor drops the flock


@contextmanager
def sigterm_exits():
    """Turn SIGTERM into ``SystemExit(143)`` while the block runs, so ``finally`` clauses (the lock,
    the status file) run on ``kill`` as on an error. Only in the main thread, and only where no one
    else handles SIGTERM."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- timings that survive resumes ---------------------------------------------------------------


class ProcessTiming:
    """What one process spent on a run, kept in ``OUT/timings/<process>.json`` and rewritten as
    units finish, so a killed process still counts the work it did."""

    def __init__(self, out: Path):
        self.path = out / TIMINGS_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}.json"
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()  # this process's CPU, all threads: what a busy machine cannot inflate
        self.stages: dict[str, float] = {}
        self.current: tuple[str, float] | None = None
        self.last_write = 0.0
        from ..code_state import code_state_at_import

        self.code = code_state_at_import()  # before any compute, so a later edit of the code shows

    def stage_started(self, stage: str) -> None:
        self.current = (stage, time.perf_counter())

    def tick(self, force: bool = False) -> None:
        """A unit finished: write the record (at most every 2 s)."""
        now = time.perf_counter()
        if force or now - self.last_write >= 2.0:
            self.last_write = now
            stages = dict(self.stages)
            if self.current is not None:
                stages[self.current[0]] = stages.get(self.current[0], 0.0) + now - self.current[1]
            atomic_write_json(self.path, {"pid": os.getpid(), "wall_time_s": round(now - self.started, 3),
                                          "cpu_time_s": round(time.process_time() - self.cpu_started, 3),
                                          "stage_times_s": {k: round(v, 3) for k, v in stages.items()},
                                          "code_at_start": self.code})

    def stage_done(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds
        self.current = None
        self.tick(force=True)


def _timing_records(out: Path) -> list[dict]:
    """The timings each process wrote (``OUT/timings/*.json``); unreadable ones are left out."""
    records = []
    for path in sorted((out / TIMINGS_DIR).glob("*.json")) if (out / TIMINGS_DIR).is_dir() else []:
        try:
            records.append(read_json(path))
        except ActionBenchError:
            continue
    return records


def summed_timings(out: Path) -> tuple[float, dict[str, float], int]:
    """Wall time and stage times summed over every process that worked on the run, and how many."""
    wall, stages = 0.0, {}
    records = _timing_records(out)
    for record in records:
        wall += float(record.get("wall_time_s", 0.0))
        for stage, seconds in record.get("stage_times_s", {}).items():
            stages[stage] = stages.get(stage, 0.0) + float(seconds)
    return wall, stages, len(records)


def code_at_start(out: Path) -> list[dict]:
    """The distinct code states (``code_state``) the processes of a run started with."""
    states = []
    for record in _timing_records(out):
        state = record.get("code_at_start")
        if isinstance(state, dict) and state not in states:
            states.append(state)
    return states


def summed_cpu_time(out: Path) -> tuple[float, int, int]:
    """CPU seconds (``cpu_time_s``) summed over the processes that recorded it, how many did, and how many
    processes worked on the run in all (records written before CPU was recorded have none)."""
    records = _timing_records(out)
    recorded = [float(r["cpu_time_s"]) for r in records if "cpu_time_s" in r]
    return sum(recorded), len(recorded), len(records)
