"""Mini folders: the shipped one (package data), the ones ``actionbench mini train`` writes, and a guard.

A mini folder holds a base model (``model.safetensors`` + ``model.json``), its judge
(``judge.safetensors`` + ``judge.json``) and its pose ControlNet (``controlnet/``). Each world
version ships one as package data (``actionbench/data/mini`` for v1, ``actionbench/data/mini-v2`` for v2 in a checkout;
``actionbench/data/...`` in an install), found with ``importlib.resources`` so a wheel finds it
as a checkout does.

Imports no torch: the CLI checks where a command would write before anything heavy loads.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from actionbench.errors import ActionBenchError
from actionbench.worlds.mini.world import PLAIN_NAME_WORLD, WORLDS, world_named

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
JUDGE_WEIGHTS = "judge.safetensors"
JUDGE_META = "judge.json"
CONTROLNET_DIR = "controlnet"
REPLACE_SHIPPED_FLAG = "--replace-shipped"


class ShippedDataError(ActionBenchError):
    """A command would overwrite the weights shipped with the package, or they cannot be found."""


def shipped_dir(world: str = PLAIN_NAME_WORLD) -> Path:
    """The shipped folder of a world (default: the one the plain name "mini" means) inside the installed
    ``actionbench.data`` package."""
    folder = _shipped_path(WORLDS[world].data_folder)
    if not folder.is_dir():
        raise ShippedDataError(
            f"the shipped ActionBench-mini data of {world} is not at {folder}; the installed package is incomplete "
            "(reinstall actionbench from a wheel or a checkout, unzipped)"
        )
    return folder


def shipped_model_dir(world: str = PLAIN_NAME_WORLD) -> Path:
    """The shipped folder of a world's base model: its own ``model_folder`` where it has one (a world that
    retrains the model but keeps an earlier world's judge and protocol), else ``shipped_dir``. The loader
    says what to run when the weights are not there yet."""
    folder = WORLDS[world].model_folder
    return shipped_dir(world) if folder is None else _shipped_path(folder)


def _shipped_path(folder: str) -> Path:
    return Path(str(resources.files("actionbench.data") / folder))


def mini_folder(backbone_id: str) -> Path:
    """The folder a mini backbone id loads from: the world's shipped one for "mini", "mini-v1" or "mini-v2",
    FOLDER for "mini:FOLDER", "mini-v2:FOLDER", ..."""
    if ":" in backbone_id:
        return Path(backbone_id.split(":", 1)[1])
    return shipped_model_dir(world_named(backbone_id).name)


def mini_controlnet_source(backbone_id: str) -> str | None:
    """``local:`` path of the pose ControlNet beside a mini backbone's weights, or None if it has none."""
    folder = mini_folder(backbone_id) / CONTROLNET_DIR
    return f"local:{folder}" if (folder / "config.json").is_file() else None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def shipped_folder_written(out: str | Path, replaces_folder: bool = False) -> Path | None:
    """The shipped folder (of any world) that writing into ``out`` would change, or None (``replaces_folder``:
    ``out`` is deleted first, so a folder that holds a shipped one counts too)."""
    path = Path(out).resolve()
    folders = {f for w in WORLDS.values() for f in (w.data_folder, w.model_folder) if f}
    for folder in sorted(folders):  # also a folder that is not there yet: writing would create it
        shipped = _shipped_path(folder).resolve()
        if _inside(path, shipped) or (replaces_folder and _inside(shipped, path)):
            return _shipped_path(folder)
    return None


def writes_into_shipped(out: str | Path, replaces_folder: bool = False) -> bool:
    """Whether writing into ``out`` would change the shipped data of a world."""
    return shipped_folder_written(out, replaces_folder) is not None


def refuse_shipped(out: str | Path, command: str, replace_shipped: bool = False, replaces_folder: bool = False) -> Path:
    """``out`` as a Path; raises ``ShippedDataError`` if it is the shipped data and ``replace_shipped`` is False.

    Called before any rendering or training, so a refused command costs nothing.
    """
    shipped = None if replace_shipped else shipped_folder_written(out, replaces_folder)
    if shipped is not None:
        raise ShippedDataError(
            f"`{command}` would overwrite the ActionBench-mini weights shipped with the package ({shipped}); "
            f"write elsewhere with --out FOLDER (then use it as --backbone mini:FOLDER, mini-v2:FOLDER for v2), or pass "
            f"{REPLACE_SHIPPED_FLAG} to replace the shipped files on purpose (replace_shipped=True in Python)"
        )
    return Path(out)
