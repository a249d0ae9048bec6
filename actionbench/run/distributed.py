"""Several processes on one run folder: ``torchrun -m actionbench eval ...`` or ``accelerate launch -m actionbench eval ...``.

This module holds the launch's plumbing (rank, world size, barriers); the stages themselves are
``runner.run_stages``, the one sequence a single process runs too. Each process takes the units
whose id hashes to its rank (``runner.in_shard``), exactly as ``--shard RANK/WORLD`` would, and
the processes meet at the end of every stage (``Context.stage``):

1. rank 0 writes ``spec.json`` and removes stale temporaries; the others then check the spec;
2. customize (split by action) -> barrier, so every artifact exists before anyone generates
   and no action is trained twice;
3. generate (split by (action, subject) pair) -> judge (same split) -> barrier;
4. rank 0 writes ``results.json`` (``provenance.world_size`` = the number of processes) -> barrier.

Rank 0 also writes the run's ``log.txt`` and ``status.json``; every rank prints its own stage
lines. Every unit is seeded by its id and written atomically, so the images and metrics are those
of a single-process run on the same device. ``torch.distributed`` is initialised only when
``WORLD_SIZE > 1``: gloo on CPU, nccl on CUDA (each rank on ``cuda:LOCAL_RANK``).
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ActionBenchError

ENV_MARKER = "ACTIONBENCH_RANK_MARKERS"
"""If set to a folder, each rank writes ``rank-<i>-of-<n>.json`` there (for tests that must prove two processes ran)."""


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def options_for(self, options):
        """``options`` (a ``RunOptions``) as this process runs them: its rank's shard, the launch's world size,
        and ``cuda:LOCAL_RANK`` for ``cuda``; unchanged for a process on its own (``--shard`` then applies)."""
        if not self.active:
            return options
        return options.replace(device=device_for(self, options.device), shard=self.shard, world_size=self.world_size)

    def stage(self, func, *args, **kwargs):
        """Run one stage on every rank, meeting at its end; if any rank failed, all stop (the failing rank
        re-raises its own error, the others say which stage failed). Every rank must call it, in the same order."""
        error: BaseException | None = None
        result = None
        try:
            result = func(*args, **kwargs)
        except Exception as exc:  # re-raised below, after telling the other ranks
            error = exc
        if not all_ok(self, error is None):
            if error is not None:
                raise error
            raise _StageFailed(f"another process failed in {getattr(func, '__name__', 'a stage')}; see its error above")
        return result

    def main_first(self, func):
        """``func()`` on rank 0, then (after a barrier) on the others: for a step that writes what the others read."""
        mine = self.stage(lambda: func() if self.is_main else None)
        return self.stage(lambda: mine if self.is_main else func())


def from_env() -> Context:
    """Rank and world size as torchrun / accelerate launch set them (1 process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return Context(rank, world, local)


def device_for(ctx: Context, device: str) -> str:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` when several processes share a machine."""
    if ctx.active and device == "cuda":
        return f"cuda:{ctx.local_rank}"
    return device


def init(device: str = "cpu", timeout_s: float = 3600.0) -> Context:
    """Initialise ``torch.distributed`` when ``WORLD_SIZE > 1`` (idempotent); returns the context."""
    ctx = from_env()
    if not ctx.active:
        return ctx
    import torch
    import torch.distributed as dist

    backend = "nccl" if str(device).startswith("cuda") and torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(seconds=timeout_s))
    if dist.get_world_size() != ctx.world_size or dist.get_rank() != ctx.rank:
        raise RuntimeError(f"torch.distributed says rank {dist.get_rank()}/{dist.get_world_size()}, "
                           f"the environment {ctx.rank}/{ctx.world_size}")
    ctx = Context(ctx.rank, ctx.world_size, ctx.local_rank, backend)
    marker_dir = os.environ.get(ENV_MARKER)
    if marker_dir:
        from ..io import atomic_write_json

        atomic_write_json(Path(marker_dir) / f"rank-{ctx.rank}-of-{ctx.world_size}.json",
                          {"rank": ctx.rank, "world_size": ctx.world_size, "pid": os.getpid(), "backend": backend})
    return ctx


def barrier(ctx: Context) -> None:
    if not ctx.active:
        return
    import torch.distributed as dist

    if ctx.backend == "nccl":
        import torch

        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def all_ok(ctx: Context, ok: bool) -> bool:
    """True on every rank iff ``ok`` on every rank (so one rank's error stops the others at the next barrier)."""
    if not ctx.active:
        return ok
    import torch
    import torch.distributed as dist

    flag = torch.tensor([0 if ok else 1], dtype=torch.int64,
                        device=f"cuda:{torch.cuda.current_device()}" if ctx.backend == "nccl" else "cpu")
    dist.all_reduce(flag)
    return int(flag.item()) == 0


def shutdown(ctx: Context, finished: bool = True) -> None:
    """Leave the launch. ``finished``: every rank got here the same way (no error), so they first meet: a rank
    that tore its connections down while a peer was still in the last collective has aborted that peer (SIGABRT,
    once on CI). After an error a rank leaves at once, since a peer that stopped elsewhere would never meet it."""
    if not ctx.active:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if finished:
            barrier(ctx)
        dist.destroy_process_group()


class _StageFailed(ActionBenchError):
    """Another rank failed; its own error is printed by that rank."""
