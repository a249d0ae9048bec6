"""Shared bits of the benchmark scripts: offline settings, a machine description, min-of-N timing, CPU-timed variants."""
from __future__ import annotations

import os
import platform
import tempfile
import time
from contextlib import nullcontext

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ACTIONBENCH_NO_PROGRESS", "1")
os.environ.setdefault("ACTIONBENCH_HOME", tempfile.mkdtemp(prefix="actionbench-bench-"))


def machine() -> str:
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, load average {load:.1f}")


def best_of(fn, repeats: int = 5, clock=time.perf_counter) -> float:
    """Minimum time of ``repeats`` calls (the least disturbed by other processes).

    ``clock=time.process_time`` counts this process's CPU time: steadier than wall time on a shared machine."""
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def timed(fn, context=None):
    """A variant for ``interleaved``: run ``fn`` inside ``context()`` and return the CPU seconds of ``fn`` alone."""
    def run() -> float:
        with context() if context is not None else nullcontext():
            c0 = time.process_time()
            fn()
            return time.process_time() - c0
    return run
