"""The results record: one JSON per run, its shape declared here once.

Like lm-evaluation-harness's ``simple_evaluate`` output: the spec and its hash, the
dataset manifest hash, method and judge versions, metrics with intervals, every
per-image record, and provenance (package versions, ActionBench's own commit, device,
wall time).
"""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

SCHEMA_VERSION = 1
PACKAGES = ("actionbench", "torch", "diffusers", "transformers", "accelerate", "open-clip-torch", "numpy", "pillow",
            "safetensors", "scikit-learn")
REQUIRED_KEYS = ("schema_version", "run_name", "spec", "spec_hash", "judge", "metrics", "records", "provenance")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_commit() -> tuple[str | None, bool | None]:
    """ActionBench's own git commit and dirty flag (of the installed source, not the cwd)."""
    source = Path(__file__).resolve().parent.parent
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


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores)"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(device: str, started_at: str, wall_time_s: float, stage_times: dict | None = None,
               world_size: int = 1) -> dict:
    commit, dirty = source_commit()
    return {
        "actionbench_version": package_versions().get("actionbench"),
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "device": device_description(device),
        "world_size": world_size,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "started_at": started_at,
        "finished_at": now_iso(),
        "wall_time_s": round(wall_time_s, 3),
        "stage_times_s": {k: round(v, 3) for k, v in (stage_times or {}).items()},
        "command": " ".join(sys.argv),
    }
