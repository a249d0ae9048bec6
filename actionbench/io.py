"""Atomic writes and image I/O: the one way the toolkit writes anything.

Every writer goes through a temporary file in the destination folder, flushes and
fsyncs it, and renames it into place, so a killed process leaves either the old
file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator, TypeVar

from .errors import ActionBenchError
from .hashing import to_jsonable

T = TypeVar("T")
TMP_MARKER = ".tmp-"
TMP_PREFIX = f"{TMP_MARKER}actionbench-"
_TMP_NAME = re.compile(r"^\.tmp-actionbench-[0-9a-f]{8}-.")
"""A temporary this toolkit made: its own name plus a random 8-hex token. Only such names are ever
removed; a user's ``.tmp-notes`` or ``.tmp-drafts/`` shares the ``.tmp-`` prefix but never this form."""


def _token() -> str:
    return f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}-"


def is_toolkit_temporary(name: str) -> bool:
    return bool(_TMP_NAME.match(name))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{_token()}{path.name}"
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _cleanup(tmp)
        if exc.errno == errno.ENOSPC:
            raise ActionBenchError(
                f"no space left on the device while writing {path}; free some disk space and rerun "
                "(finished outputs are kept and will be skipped)"
            ) from exc
        raise
    except BaseException:
        _cleanup(tmp)
        raise


def _cleanup(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    text = json.dumps(to_jsonable(value), indent=indent, sort_keys=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ActionBenchError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ActionBenchError(
            f"{what} {path} is not valid JSON ({exc}); it may be truncated: delete it and rerun the step that makes it"
        ) from None


def save_image(image, path: str | Path) -> Path:
    """Write a PIL image as PNG atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


MAX_IMAGE_PIXELS = 64 * 1024 * 1024
"""Largest image (pixels) the toolkit opens: 8192 x 8192. A bigger PNG is refused before it is
decoded (a decompression bomb expands a few kilobytes into gigabytes)."""


def load_image(path: str | Path):
    """Open an image fully (so truncation shows now, not later) and convert it to RGB.

    Raises:
        ActionBenchError: missing, corrupt or truncated, or larger than ``MAX_IMAGE_PIXELS``
            (checked from the header, before decoding).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as handle:
                width, height = handle.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ActionBenchError(
                        f"image {path} is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} this toolkit "
                        "opens (a decompression bomb, or far larger than any benchmark image); resize it first"
                    )
                handle.load()
                return handle.convert("RGB")
    except FileNotFoundError:
        raise ActionBenchError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ActionBenchError(f"{path} is a folder, not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ActionBenchError(f"image {path} is refused as a decompression bomb ({exc}); resize it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ActionBenchError(
            f"image {path} is corrupt or truncated ({exc}); delete it and rerun (it will be made again), "
            "or re-download the dataset with `actionbench download`"
        ) from None


def remove_stale_temporaries(folder: str | Path, recursive: bool = True) -> int:
    """Delete temporaries left by a killed process in ``folder`` (and below, if ``recursive``);
    returns how many. Only names this module makes (``.tmp-actionbench-<token>-...``) are touched,
    never a user's own ``.tmp-*``; callers name the folders their own writes go to."""
    count = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for tmp in list(folder.rglob(f"{TMP_PREFIX}*") if recursive else folder.glob(f"{TMP_PREFIX}*")):
        if not is_toolkit_temporary(tmp.name) or not tmp.exists():
            continue
        _cleanup(tmp)
        count += 1
    return count


def make_temp_dir(parent: str | Path, name: str) -> Path:
    Path(parent).mkdir(parents=True, exist_ok=True)
    path = Path(parent) / f"{_token()}{name}"
    path.mkdir(mode=0o700)
    return path
