"""Where ActionBench keeps data, and the versioned manifests shipped in ``actionbench/data``.

Read with ``importlib.resources``, so an installed wheel finds them as a checkout does.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import DatasetError, SchemaError
from .hashing import sha256_file
from .io import read_json

MANIFEST_SCHEMA_VERSION = 1
KNOWN_VERSIONS = ("v1",)
SYNTHETIC = "synthetic"


def actionbench_home() -> Path:
    """Cache root for downloads and rendered data: $ACTIONBENCH_HOME, else ~/.cache/actionbench."""
    env = os.environ.get("ACTIONBENCH_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "actionbench"


def shown_path(path: str | Path) -> str:
    """``path`` as a record shows it: ``$ACTIONBENCH_HOME/...`` when inside the cache root, so that a record made
    on another machine or with another cache root reads (and hashes) the same."""
    path, home = Path(path), actionbench_home()
    try:
        return str(Path("$ACTIONBENCH_HOME") / path.relative_to(home))
    except ValueError:
        return str(path)


def default_data_root(version: str = "v1") -> Path:
    return actionbench_home() / f"actionbench-{version}"


def manifest_path(version: str = "v1") -> Path:
    if version not in KNOWN_VERSIONS:
        raise DatasetError(
            f"unknown dataset version '{version}'; known versions: {', '.join(KNOWN_VERSIONS)} "
            f"(or '{SYNTHETIC}' for the built-in procedural set)"
        )
    return Path(str(resources.files("actionbench.data") / f"actionbench-{version}" / "manifest.json"))


def read_manifest(version: str = "v1") -> tuple[dict, str]:
    """The manifest as a dict and its own SHA-256; checks the schema version."""
    path = manifest_path(version)
    manifest = read_json(path, what=f"dataset manifest for {version}")
    found = manifest.get("schema_version")
    if found != MANIFEST_SCHEMA_VERSION:
        raise SchemaError(
            f"manifest {path} has schema_version {found!r}, this ActionBench reads {MANIFEST_SCHEMA_VERSION}; "
            "upgrade actionbench (pip install -U actionbench) or restore the manifest"
        )
    return manifest, sha256_file(path)
