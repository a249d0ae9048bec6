"""What a run leaves when it ends: ``status.json`` says how it ended, and no ``.lock-*`` file remains
(after success, after an error, and after SIGTERM)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actionbench.run.runner import RunOptions, RunSpec, evaluate

HERE = Path(__file__).resolve().parent
DUMMY = "test_runner:DummyMethod"


def _spec(method: str = DUMMY) -> RunSpec:
    return RunSpec.build(method, {}, backbone="tiny", dataset="synthetic", judge="tiny")


def _status(out: Path) -> dict:
    return json.loads((out / "status.json").read_text())


def test_a_finished_run_says_done_and_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    assert evaluate(_spec(), RunOptions(out=out)) is not None
    status = _status(out)
    assert status["stage"] == "done" and status["done"] == status["total"] == 368 and status["remaining_s"] == 0
    assert not list(out.glob(".lock-*"))
    assert evaluate(_spec(), RunOptions(out=out)) is not None  # the folder is free again in this process


def test_a_failed_run_says_failed_and_leaves_no_lock(tmp_path, monkeypatch):
    import actionbench.run.runner as runner

    def broken_customize(*args, **kwargs):
        raise RuntimeError("customize exploded")

    monkeypatch.setattr(runner, "customize", broken_customize)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="exploded"):
        evaluate(_spec(), RunOptions(out=out))
    status = _status(out)
    assert status["stage"] == "failed" and "exploded" in status["error"] and status["done"] == 0
    assert not list(out.glob(".lock-*"))


def test_sigterm_stops_the_run_and_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "ACTIONBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "actionbench", "eval", "--method", "test_kill_safety:SlowDummyMethod", "--backbone",
           "tiny", "--dataset", "synthetic", "--judge", "tiny", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and not list(out.glob("artifacts/*/artifact.json")):
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    assert list(out.glob(".lock-*"))  # held while running
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert _status(out)["stage"] == "stopped"
    assert not list(out.glob(".lock-*"))
