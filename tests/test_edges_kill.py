"""SIGKILL inside judging and inside the write of results.json: no half-written results.json, a
readable status.json that does not say done, a lock that does not block the rerun, and a rerun that
finishes with every unit (the method paints, the judge is slowed so the kill lands where it should)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_fixtures import ColourJudge

HERE = Path(__file__).resolve().parent
METHOD = "test_edges:FlatMethod"
JUDGE = f"{Path(__file__).stem}:SlowJudge"
ARGS = ["eval", "--method", METHOD, "--backbone", "tiny", "--dataset", "synthetic", "--judge", JUDGE,
        "--device", "cpu", "--out"]


class SlowJudge(ColourJudge):
    """The colour judge, 0.15 s per batch of 32: judging the 368 images takes about 2 s."""

    name = "slow_colour"

    def judge(self, requests):
        time.sleep(0.15)
        return super().judge(requests)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "ACTIONBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _kill_when(cmd: list[str], ready, timeout: float = 120.0) -> None:
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline and not ready():
        time.sleep(0.01)
    assert proc.poll() is None, f"ended before the kill: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()


def _judgments(out: Path) -> list[Path]:
    return sorted((out / "judgments").rglob("*.json")) if (out / "judgments").is_dir() else []


def _rerun_finishes(out: Path) -> dict:
    """After a kill: the state is sane, and the same command, rerun, completes every unit."""
    from actionbench.run.runner import RunOptions, RunSpec, evaluate

    assert not (out / "results.json").exists()  # never half of one
    status = json.loads((out / "status.json").read_text())  # readable: written atomically
    assert status["stage"] != "done"
    for path in _judgments(out):
        json.loads(path.read_text())  # no judgment half-written either
    path = evaluate(RunSpec.build(METHOD, {}, suite="v1", backbone="tiny", dataset="synthetic", judge=JUDGE),
                    RunOptions(out=out))  # a lock left by the killed process does not block it
    results = json.loads(path.read_text())
    assert results["complete"] is True and len({r["unit_id"] for r in results["records"]}) == 368
    assert len(_judgments(out)) == 368 and json.loads((out / "status.json").read_text())["stage"] == "done"
    assert not list(out.rglob(".tmp-actionbench-*")) and not list(out.glob(".lock-*"))
    return results


@pytest.mark.slow
def test_sigkill_inside_judging_then_rerun_finishes(tmp_path):
    out = tmp_path / "run"
    _kill_when([sys.executable, "-m", "actionbench", *ARGS, str(out)], lambda: len(_judgments(out)) >= 64)
    assert 64 <= len(_judgments(out)) < 368  # killed inside the judge stage
    _rerun_finishes(out)


# Writes the first half of results.json to its temporary, then waits to be killed there.
HALF_WRITE = """
import os, sys, time
from pathlib import Path
import actionbench.io as io

real = io.atomic_write_bytes

def half_then_wait(path, data):
    if Path(path).name != "results.json":
        return real(path, data)
    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        Path(sys.argv[1]).write_text(str(tmp))
        time.sleep(600)

io.atomic_write_bytes = half_then_wait
from actionbench.cli import main
main(sys.argv[2:], prog_name="actionbench")
"""


@pytest.mark.slow
def test_sigkill_inside_writing_results_then_rerun_finishes(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "writing-results"
    _kill_when([sys.executable, "-c", HALF_WRITE, str(marker), *ARGS, str(out)], marker.exists)
    half = Path(marker.read_text())
    assert half.parent == out and half.name.endswith("results.json") and half.is_file()  # killed mid-write
    assert len(_judgments(out)) == 368
    results = _rerun_finishes(out)
    assert not half.exists() and results["metrics"]["n"] == 368
