"""Progress a person can follow: one line per stage as it starts, bars on a terminal, periodic
plain lines otherwise (so a redirected log stays readable), and the same lines in the run's log file.

Everything goes through the ``actionbench`` logger: the run folder's ``log.txt`` gets a file
handler while a run is open (``log_to``), and stderr gets a plain handler unless the
application configured logging itself.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
LOGGER = logging.getLogger("actionbench")
PLAIN_INTERVAL_ENV = "ACTIONBENCH_PROGRESS_INTERVAL"
"""Seconds between plain progress lines when stderr is not a terminal (default 30)."""
_console: logging.Handler | None = None


def _ensure_console() -> None:
    """A stderr handler for the toolkit's lines, unless someone configured logging already."""
    global _console
    if _console is not None or LOGGER.handlers and any(h is not _console for h in LOGGER.handlers
                                                      if not isinstance(h, logging.FileHandler)):
        return
    if logging.getLogger().handlers:  # the application set up logging: leave it to them
        return
    _console = logging.StreamHandler(sys.stderr)
    _console.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(_console)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


def say(message: str) -> None:
    """One line for the person running the job (stderr and the run's log file)."""
    _ensure_console()
    LOGGER.info(message)


@contextlib.contextmanager
def log_to(path: str | Path) -> Iterator[Path]:
    """Append the toolkit's lines to ``path`` (the run folder's ``log.txt``) inside the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    _ensure_console()
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        yield path
    finally:
        LOGGER.removeHandler(handler)
        handler.close()


def duration(seconds: float | None) -> str:
    """``3h05m``, ``4m10s``, ``12s``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _interactive() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(iterable: Iterable[T], desc: str, total: int | None = None, disable: bool | None = None,
             unit: str = "it", weight: Callable[[T], int] | None = None,
             extra: Callable[[float], str] | None = None) -> Iterable[T]:
    """Iterate with progress: a tqdm bar on a terminal; otherwise a plain line every
    ``$ACTIONBENCH_PROGRESS_INTERVAL`` seconds (30) and at the end, also into the run's log.

    Args:
        unit: what is counted (``images``, ``actions``, ``steps``).
        weight: how many units one item is (e.g. a pair of images), so the count is in ``unit``.
        extra: text appended to each report, given the fraction done (e.g. the overall ETA of a run).
        disable: no bars or lines at all (default: ``ACTIONBENCH_NO_PROGRESS=1``).
    """
    if disable is None:
        disable = os.environ.get("ACTIONBENCH_NO_PROGRESS") == "1"
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    items = list(iterable) if weight is not None else iterable
    if weight is not None:
        total = sum(weight(item) for item in items)
    if disable:
        return items
    if _interactive():
        return _bar(items, desc, total, unit, weight, extra)
    return _plain(items, desc, total, unit, weight, extra)


def _bar(items, desc, total, unit, weight, extra):
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=f" {unit}", dynamic_ncols=True, leave=False) as bar:
        for item in items:
            yield item
            bar.update(weight(item) if weight else 1)
            if extra is not None:
                bar.set_postfix_str(extra(bar.n / total if total else 0.0), refresh=False)


def _plain(items, desc, total, unit, weight, extra):
    interval = float(os.environ.get(PLAIN_INTERVAL_ENV, "30"))
    started = last = time.perf_counter()
    done = 0
    for item in items:
        yield item
        done += weight(item) if weight else 1
        now = time.perf_counter()
        if now - last >= interval or (total is not None and done >= total):
            last = now
            rate = done / max(now - started, 1e-9)
            left = (total - done) / rate if total is not None and rate > 0 else None
            count = f"{done}/{total} {unit}" if total is not None else f"{done} {unit}"
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            say(f"  {desc}: {count}{pct}, {duration(now - started)} elapsed, ETA {duration(left)}"
                + (f"; {extra(done / total if total else 0.0)}" if extra is not None else ""))
