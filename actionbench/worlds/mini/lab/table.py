"""``actionbench mini table``: every row of the mini table, in parallel processes, with one combined
progress display. A row is a method with a preset and settings, declared by the method itself
(``Method.table_rows``); each runs as ``actionbench eval`` in its own process (one torch thread),
writes its own run folder and log, and a failing row is reported without stopping the others.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from actionbench.report import duration, say


@dataclass(frozen=True)
class Row:
    """One table row: ``actionbench eval --method METHOD [--preset PRESET] [--set k=v ...]``."""

    name: str
    method: str
    preset: str | None = None
    settings: dict = field(default_factory=dict)
    trains: bool = True
    """False for training-free methods (no ``steps_field``): a training seed changes nothing, so they run once."""
    keep_fraction_from: str | None = None
    """Set ``random_keep_fraction`` to the mean kept fraction of this row's ADI artifacts (the control)."""


def all_rows() -> tuple[Row, ...]:
    """Every row of the table: each registered method's ``table_rows`` (``actionbench.api.method.TableRow``), declared
    in the method's own file, the built-in methods first in the registry's order.

    Raises:
        ConfigError: two methods bring rows of one name, or a control takes its fraction from no row.
    """
    from actionbench.errors import ConfigError
    from actionbench.api.registry import method_classes

    rows: list[Row] = []
    for method, cls in method_classes():
        rows += [Row(row.name or method, method, row.preset, dict(row.settings), trains=cls.steps_field is not None,
                     keep_fraction_from=row.keep_fraction_from) for row in cls.table_rows]
    names = [r.name for r in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"table rows named twice: {', '.join(twice)} (by methods "
                          f"{', '.join(sorted({r.method for r in rows if r.name in twice}))}); rename a method's TableRow")
    lost = [r.name for r in rows if r.keep_fraction_from and r.keep_fraction_from not in names]
    if lost:
        raise ConfigError(f"table row(s) {', '.join(lost)} take their kept fraction from a row that does not exist")
    return tuple(rows)


def default_row_names() -> tuple[str, ...]:
    """Every method at its own settings, the floor, and ADI's two controls (each method's ``default_table_rows``):
    the table of a world without a pre-registered test."""
    from actionbench.api.registry import method_classes

    names: list[str] = []
    for method, cls in method_classes():
        names += cls.default_table_rows if cls.default_table_rows is not None else [r.name or method for r in cls.table_rows]
    return tuple(names)


PREREGISTERED_ROWS = ("null", "sd", "textual_inversion", "p_plus", "dreambooth",  # the setup check (a) first
                      "adi", "adi_oracle", "p_plus_4_anchors", "adi_random_masks",  # the claim (b)
                      "adi_context_mask_only", "adi_action_mask_only", "custom_diffusion", "reversion", "controlnet")
PREREGISTERED_SEEDS = 3
"""The rows and training seeds of the pre-registered test on mini v2 (docs/mini-v2-preregistration.md)."""
PREREGISTERED_WORLD = "mini-v2"
GATE_WORLDS = ("mini-v3", "mini-v3b", "mini-v3c", "mini-v3p", "mini-v3q", "mini-v3r")
"""The worlds of the v3 pre-registration's levers, each gated the same way."""
GATE_ROWS = ("null", "p_plus_4_anchors", "textual_inversion")
"""The gate of mini v3 (docs/mini-v3-preregistration.md, section 2), run with ``PREREGISTERED_SEEDS`` before any ADI row."""


def board_name(suite: str, row: str) -> str:
    """The entry a table row gets on a leaderboard (``--leaderboard``): ``SUITE-ROW``, e.g. ``mini-v2-adi``."""
    return f"{suite}-{row}"


def table_world(suite: str) -> str:
    """The world a mini suite runs on: ``mini`` is the plain name's world, the others name theirs."""
    from actionbench.worlds.mini.world import PLAIN_NAME_WORLD

    return PLAIN_NAME_WORLD if suite == "mini" else suite


def defaults(suite: str) -> tuple[tuple[str, ...], int]:
    """The rows and training seeds ``mini table`` runs when not told: the pre-registered test on its world."""
    if table_world(suite) == PREREGISTERED_WORLD:
        return PREREGISTERED_ROWS, PREREGISTERED_SEEDS
    if table_world(suite) in GATE_WORLDS:
        return GATE_ROWS, PREREGISTERED_SEEDS
    return default_row_names(), 1


def rows_by_name(names) -> list[Row]:
    from actionbench.errors import ConfigError

    known = {r.name: r for r in all_rows()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown table row(s) {', '.join(unknown)}; rows: {', '.join(known)}")
    return [known[n] for n in names]


def kept_fraction(run_dir: Path) -> float | None:
    """The mean kept fraction of the masks over every artifact of an ADI run folder."""
    values = []
    for meta in run_dir.rglob("artifact.json"):
        history = json.loads(meta.read_text()).get("meta", {}).get("masks", {}).get("kept_fraction_history", [])
        values += history
    return sum(values) / len(values) if values else None


def command(row: Row, suite: str, out: Path, train_seeds: int, extra_settings: dict) -> list[str]:
    cmd = [sys.executable, "-m", "actionbench", "eval", "--method", row.method, "--suite", suite, "--out", str(out),
           "--train-seeds", str(train_seeds if row.trains else 1)]
    if row.preset:
        cmd += ["--preset", row.preset]
    for key, value in {**row.settings, **extra_settings}.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def status_line(name: str, out: Path) -> str:
    path = out / "status.json"
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"{name}: starting"
    return (f"{name}: {status.get('stage', '?')} {status.get('done', '?')}/{status.get('total', '?')} "
            f"{status.get('unit', '')}, run ETA {duration(status.get('remaining_s'))}")


def run_table(rows: list[Row], suite: str, runs_dir: Path, train_seeds: int, jobs: int,
              settings: dict | None = None, interval: float = 30.0) -> tuple[list[tuple[Row, Path]], list[tuple[Row, str]]]:
    """Run the rows, ``jobs`` processes at a time (rows that depend on another wait for it). Returns
    (finished rows with their results, failed rows with the reason)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", ACTIONBENCH_NO_PROGRESS="1")
    waiting = list(rows)
    running: dict[str, tuple[Row, subprocess.Popen, Path, float]] = {}
    done: list[tuple[Row, Path]] = []
    failed: list[tuple[Row, str]] = []
    last_report = 0.0
    started = time.perf_counter()
    while waiting or running:
        for name, (row, proc, out, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            results = out / "results.json"
            if proc.returncode == 0 and results.is_file():
                done.append((row, results))
                say(f"mini table: {name} finished in {duration(time.perf_counter() - t0)}")
            else:
                failed.append((row, f"exit status {proc.returncode}; see {runs_dir / (name + '.log')}"))
                say(f"mini table: {name} FAILED (exit {proc.returncode}); see {runs_dir / (name + '.log')}")
        for row in list(waiting):
            if len(running) >= jobs:
                break
            given = "random_keep_fraction" in (settings or {})  # a fraction given on the command line stands
            pending = {r.name for r in waiting} | set(running)
            if row.keep_fraction_from and not given and row.keep_fraction_from in pending:
                continue  # the control needs its ADI row's kept fraction (or an earlier run of it in runs_dir)
            waiting.remove(row)
            extra = dict(settings or {})
            if row.keep_fraction_from and not given:
                source = runs_dir / row.keep_fraction_from
                fraction = kept_fraction(source)
                if fraction is None:
                    failed.append((row, f"no kept fraction in {source} (did that row fail?)"))
                    continue
                extra["random_keep_fraction"] = round(fraction, 4)
            out = runs_dir / row.name
            runs_dir.mkdir(parents=True, exist_ok=True)
            log = open(runs_dir / f"{row.name}.log", "a")  # beside the run folder: --out must be ours alone
            proc = subprocess.Popen(command(row, suite, out, train_seeds, extra), stdout=log, stderr=subprocess.STDOUT,
                                    env=env)
            running[row.name] = (row, proc, out, time.perf_counter())
            say(f"mini table: {row.name} started ({' '.join(command(row, suite, out, train_seeds, extra)[3:])})")
        now = time.perf_counter()
        if running and now - last_report >= interval:
            last_report = now
            say(f"mini table, {duration(now - started)} in: " + " | ".join(
                status_line(name, out) for name, (_, _, out, _) in running.items())
                + (f" | waiting: {', '.join(r.name for r in waiting)}" if waiting else ""))
        time.sleep(1.0)
    return done, failed
