"""Mini folders: the shipped one (package data), the ones ``actionbench mini train`` writes, and a guard.

A mini folder holds a base model (``model.safetensors`` + ``model.json``), its judge
(``judge.safetensors`` + ``judge.json``) and its pose ControlNet (``controlnet/``). The shipped
folder is package data (``data/mini`` in a checkout, ``actionbench/data/mini`` in an install),
found with ``importlib.resources`` so a wheel finds it as a checkout does.

Imports no torch: the CLI checks where a command would write before anything heavy loads.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from actionbench.errors import ActionBenchError

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
JUDGE_WEIGHTS = "judge.safetensors"
JUDGE_META = "judge.json"
CONTROLNET_DIR = "controlnet"
REPLACE_SHIPPED_FLAG = "--replace-shipped"


class ShippedDataError(ActionBenchError):
    """A command would overwrite the weights shipped with the package, or they cannot be found."""


def shipped_dir() -> Path:
    """The shipped mini folder inside the installed ``actionbench.data`` package."""
    folder = Path(str(resources.files("actionbench.data") / "mini"))
    if not folder.is_dir():
        raise ShippedDataError(
            f"the shipped ActionBench-mini weights are not at {folder}; the installed package is incomplete "
            "(reinstall actionbench from a wheel or a checkout, unzipped)"
        )
    return folder


def mini_folder(backbone_id: str) -> Path:
    """The folder a mini backbone id loads from: the shipped one for "mini", FOLDER for "mini:FOLDER"."""
    return Path(backbone_id.split(":", 1)[1]) if ":" in backbone_id else shipped_dir()


def mini_controlnet_source(backbone_id: str) -> str | None:
    """``local:`` path of the pose ControlNet beside a mini backbone's weights, or None if it has none."""
    folder = mini_folder(backbone_id) / CONTROLNET_DIR
    return f"local:{folder}" if (folder / "config.json").is_file() else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def writes_into_shipped(out: str | Path, replaces_folder: bool = False) -> bool:
    """Whether writing into ``out`` would change the shipped data (``replaces_folder``: ``out`` is deleted first,
    so a folder that holds the shipped one counts too)."""
    path, shipped = Path(out).resolve(), shipped_dir().resolve()
    return _inside(path, shipped) or (replaces_folder and _inside(shipped, path))


def refuse_shipped(out: str | Path, command: str, replace_shipped: bool = False, replaces_folder: bool = False) -> Path:
    """``out`` as a Path; raises ``ShippedDataError`` if it is the shipped data and ``replace_shipped`` is False.

    Called before any rendering or training, so a refused command costs nothing.
    """
    if not replace_shipped and writes_into_shipped(out, replaces_folder):
        raise ShippedDataError(
            f"`{command}` would overwrite the ActionBench-mini weights shipped with the package ({shipped_dir()}); "
            f"write elsewhere with --out FOLDER (then use it as --backbone mini:FOLDER), or pass "
            f"{REPLACE_SHIPPED_FLAG} to replace the shipped files on purpose (replace_shipped=True in Python)"
        )
    return Path(out)
