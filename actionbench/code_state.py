"""The state of ActionBench's own code when a process starts a run: git commit, dirty flag, and a hash
of the package's source files (which also catches an edit outside git, or an install without git).

Taken when a run is opened, before any training, and compared with the state when results are written,
so a run whose code changed half-way (a ``git pull`` between a kill and a resume) says so."""
from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def code_sha256(root: Path = PACKAGE) -> str:
    """SHA-256 over every ``.py`` file under ``root`` (relative path and bytes, in sorted order): the core, the
    methods and the judges all live in the package folder, and each trained or scored a run as much as the other."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(f"actionbench/{path.relative_to(root).as_posix()}".encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def source_commit() -> tuple[str | None, bool | None]:
    """ActionBench's own git commit and dirty flag (of the installed source, not the cwd)."""
    source = PACKAGE.parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def code_state() -> dict:
    """``{"git_commit", "git_dirty", "code_sha256"}`` of the code running now."""
    commit, dirty = source_commit()
    return {"git_commit": commit, "git_dirty": dirty, "code_sha256": code_sha256()}


@functools.lru_cache(maxsize=1)
def code_state_at_import() -> dict:
    """The state once per process, the first time a run is opened in it."""
    return code_state()


def code_changes(starts: list[dict], end: dict) -> list[str]:
    """What differs between each process's start state and the end state (empty: the same code throughout)."""
    changes = []
    for start in starts:
        for key in ("git_commit", "code_sha256"):
            if start.get(key) and end.get(key) and start[key] != end[key]:
                changes.append(f"{key} {start[key][:12]} at start, {end[key][:12]} at the end")
    return sorted(set(changes))


def code_provenance(starts: list[dict]) -> dict:
    """For results.json: the code hash now, the states the run's processes started with (``starts``),
    and whether they differ."""
    end = code_state()
    changes = code_changes(starts, end)
    return {"code_sha256": end["code_sha256"], "code_at_start": starts, "code_changed": bool(changes),
            **({"code_changes": changes} if changes else {})}
