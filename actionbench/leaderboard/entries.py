"""Leaderboard entries: adding a run, checked against its run folder; never replacing one silently; and
the ``verified`` records that ``actionbench rejudge --record`` keeps beside an entry.

    <board>/results/<name>.json     byte-for-byte copy of the run's results.json
    <board>/grids/<name>.png        the run's image grid, drawn from the run folder when added
    <board>/verified/<name>.json    a re-judging of the entry's images, bound to its record-set hash
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from actionbench.custom import describe as describe_custom
from actionbench.errors import ActionBenchError, ConfigError
from actionbench.io import atomic_write_bytes, atomic_write_json, read_json, save_image
from actionbench.results.schema import record_set_sha256
from actionbench.run.grid import make_grid
from actionbench.run.runfolder import resolve_results_path

from .validate import ValidationError, code_caveats, entry_caveats, load_valid_results, validate_run

PROJECT_BOARD = Path("leaderboard")  # the project's board, relative to the checkout
RESULTS_DIR, GRIDS_DIR, VERIFIED_DIR = "results", "grids", "verified"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "x"


def records_hash(results: Mapping) -> str:
    """The entry's record-set hash: stored in schema 2 files, computed for legacy ones."""
    stored = results.get("records_sha256")
    return stored if isinstance(stored, str) else record_set_sha256(results.get("records") or [])


def default_name(results: Mapping) -> str:
    """``<method>-<spec hash>-<judge>-v<version>-<records hash>``: one entry per run, so two runs of the
    same spec (say on two machines) are two rows, not one replacing the other."""
    judge = results.get("judge") or {}
    return _slug(f"{results['spec']['method']}-{results['spec_hash']}-{judge.get('name')}-v{judge.get('version')}"
                 f"-{records_hash(results)[:8]}")[:100]


def describe_run(results: Mapping) -> str:
    """``run 'adi' (adi, spec 4103..., judge mini v2, total 17.1 % of 368 images, finished 2026-11-27)``."""
    judge, metrics = results.get("judge") or {}, results.get("metrics") or {}
    total = (metrics.get("total") or {}).get("mean")
    finished = str((results.get("provenance") or {}).get("finished_at") or "?")[:10]
    return (f"run {results.get('run_name')!r} ({(results.get('spec') or {}).get('method')}, spec "
            f"{results.get('spec_hash')}, judge {judge.get('name')} v{judge.get('version')}, total "
            + (f"{100 * total:.1f} %" if isinstance(total, (int, float)) else "?")
            + f" of {metrics.get('n')} images, finished {finished})")


def add_result(results_path: str | Path, leaderboard_dir: str | Path = PROJECT_BOARD, name: str | None = None,
               allow_partial: bool = False, replace: bool = False, allow_dirty: bool = False) -> Path:
    """Check a run and add it to a leaderboard folder; returns the copy's path.

    The results are checked on their own and against their run folder (``verify_run``: spec.json,
    image hashes, judgment files, artifacts). A run that is not a full, verifiable one (partial,
    smoke preset, test backbone, legacy file; ``entry_caveats``) is refused unless
    ``allow_partial``, and the board then marks it. A trained method's run whose folder holds no
    artifacts is refused whatever the flags (``RunCheck.missing_evidence``). The JSON is copied byte for byte to
    ``results/<name>.json`` (image paths in it stay relative to the run folder) and the grid is
    drawn from the run folder now. Adding the identical file again changes nothing.

    Raises:
        ValidationError: the results are invalid, or do not match their run folder (every problem listed).
        ConfigError: a trained method's run without its artifacts; a caveat without ``allow_partial``; ``name``
            unsafe; an entry of that name holding another run without ``replace`` (the message names it); the
            same records (images and verdicts) already on the board as another entry, whatever spec they claim.
    """
    source = resolve_results_path(results_path)
    data = load_valid_results(source)
    check = validate_run(data, source.parent)
    if not check.ok:
        raise ValidationError(f"{source} (checked against its run folder {source.parent})", check.problems)
    if check.missing_evidence:  # a copy on the board could not say so, so it is refused, not marked
        raise ConfigError(
            f"{source} claims what its run folder cannot show: {'; '.join(check.missing_evidence)}. The results "
            f"record each artifact's SHA-256, so restore {source.parent / 'artifacts'} as the run left it (or rerun "
            "the spec) and add again; only a bring-your-own run (`actionbench import`) enters without artifacts"
        )
    dirty = code_caveats(data)
    caveats = [c for c in entry_caveats(data) if c not in dirty]
    custom = (data.get("spec") or {}).get("custom")
    if custom and not allow_partial:
        raise ConfigError(
            f"{source} was made with {describe_custom(custom)}: not the benchmark's protocol, so the leaderboard "
            "never ranks it with the standard runs. Add it anyway, shown apart and unranked, with --allow-partial"
        )
    if caveats and not allow_partial:
        raise ConfigError(
            f"{source} is not a full, verifiable run of the protocol ({'; '.join(caveats)}): the leaderboard "
            "ranks full runs. Add it anyway, marked as such on the board, with --allow-partial"
        )
    # a test backbone's numbers mean nothing whatever the code; its --allow-partial already marks the row
    test_backbone = any(c.startswith("test backbone") for c in caveats)
    if dirty and not (allow_dirty or test_backbone):
        raise ConfigError(
            f"{source} was made with code that is not one committed state ({'; '.join(dirty)}); nobody can "
            "check out what made it. Rerun from a clean checkout, or add it marked as such with --allow-dirty"
        )
    name = default_name(data) if name is None else name
    if not _SAFE_NAME.match(name):
        raise ConfigError(f"leaderboard entry name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    board = Path(leaderboard_dir)
    target = board / RESULTS_DIR / f"{name}.json"
    if target.is_file() and target.read_bytes() == source.read_bytes():
        return target  # this very file is already the entry
    twin = _entry_with_records(board, records_hash(data), besides=name, judge=_judge_of(data))
    if twin is not None:
        raise ConfigError(f"this run's records (the same images and verdicts, by the same judge) are already on the "
                          f"board as entry "
                          f"'{twin}'; one run's evidence makes one entry, so nothing was added")
    if target.exists() and not replace:
        try:
            existing = describe_run(read_json(target, "leaderboard results file"))
        except ActionBenchError:
            existing = "an unreadable file"
        raise ConfigError(
            f"leaderboard entry '{name}' already holds {existing}; adding {describe_run(data)} would replace it. "
            f"Pass --replace to replace it, or --name to add this run beside it"
        )
    grid = make_grid(source)  # from the run folder, now: the copy's image paths point there
    atomic_write_bytes(target, source.read_bytes())
    save_image(grid, board / GRIDS_DIR / f"{name}.png")
    stale = verified_path(board, name)
    if stale.is_file():  # it verified the run this one replaces
        stale.unlink()
    return target


def _judge_of(results: Mapping) -> tuple:
    judge = results.get("judge") if isinstance(results.get("judge"), Mapping) else {}
    return judge.get("name"), judge.get("version")


def _entry_with_records(board: Path, digest: str, besides: str, judge: tuple) -> str | None:
    """The entry holding the same records under the same judge: the same evidence. The same images read alike by
    another judge (another world's, with its own leak rule) are that judge's evidence, an entry of their own."""
    for path in sorted((board / RESULTS_DIR).glob("*.json")) if (board / RESULTS_DIR).is_dir() else []:
        if path.stem == besides or path.name.startswith("."):
            continue
        try:
            other = read_json(path)
            if records_hash(other) == digest and _judge_of(other) == judge:
                return path.stem
        except (ActionBenchError, AttributeError):
            continue
    return None


def resolve_entry(item: str | Path, board: str | Path = PROJECT_BOARD) -> tuple[Path, str | None]:
    """A results path and its entry name from an entry name on ``board``, an entry's results file, or a
    run folder (entry name None unless the path lies in ``board/results``)."""
    board = Path(board)
    named = board / RESULTS_DIR / f"{item}.json"
    if not Path(item).exists() and named.is_file():
        return named, str(item)
    if not Path(item).exists():
        names = sorted(p.stem for p in (board / RESULTS_DIR).glob("*.json")) if (board / RESULTS_DIR).is_dir() else []
        raise ActionBenchError(f"{item} is neither a run folder, a results file nor an entry of {board} "
                               f"(entries: {', '.join(names) or 'none'})")
    path = resolve_results_path(item)
    in_board = path.parent.resolve() == (board / RESULTS_DIR).resolve()
    return path, path.stem if in_board else None


def entry_of_run(results: Mapping, board: str | Path = PROJECT_BOARD) -> str | None:
    """The entry of ``board`` that holds this run (same record set), if any."""
    return _entry_with_records(Path(board), records_hash(results), besides="")


def verified_path(board: str | Path, name: str) -> Path:
    return Path(board) / VERIFIED_DIR / f"{name}.json"


def write_verified(board: str | Path, name: str, summary: Mapping) -> Path:
    """Keep a re-judging's summary beside the entry (``verified/<name>.json``)."""
    if not (Path(board) / RESULTS_DIR / f"{name}.json").is_file():
        raise ActionBenchError(f"no entry '{name}' in {board}; add the run first (`actionbench leaderboard --add`)")
    return atomic_write_json(verified_path(board, name), dict(summary))


def read_verified(board: str | Path, name: str, digest: str) -> dict | None:
    """The verified record of an entry, if there is one for this very record set (a replaced entry's is stale)."""
    path = verified_path(board, name)
    if not path.is_file():
        return None
    try:
        record = read_json(path, "verified record")
    except ActionBenchError:
        return None
    return record if isinstance(record, dict) and record.get("records_sha256") == digest else None
