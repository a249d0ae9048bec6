"""SIGKILL `actionbench eval` at seeded points in every stage, rerun, and get exactly the uninterrupted run."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest
from PIL import Image

from actionbench.api.method import Artifact, Method, MethodConfig

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SlowDummyConfig(MethodConfig):
    customize_s: float = 0.3
    """Seconds per action, so a kill can land inside customize."""
    generate_s: float = 0.01
    """Seconds per (action, subject) pair."""


class SlowDummyMethod(Method):
    name = "slow_dummy"
    Config = SlowDummyConfig

    def customize(self, action, out_dir):
        time.sleep(self.config.customize_s)
        return self.new_artifact(action, meta={"shade": len(action.id) * 20}).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]):
        time.sleep(self.config.generate_s)
        side = self.backbone.resolution  # the contract: images at the backbone's size
        return [Image.new("RGB", (side, side), (artifact.meta["shade"], seed % 251, len(subject.id) * 9)) for seed in seeds]


METHOD = f"{Path(__file__).stem}:SlowDummyMethod"


def _count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.exists() else 0


def _state(out: Path) -> dict:
    return {
        "customize": _count(out / "artifacts", "*/artifact.json"),
        "generate": _count(out / "images", "*/*/*.png"),
        "judge": _count(out / "judgments", "*/*/*/*.json"),
        "results": int((out / "results.json").exists()),
    }


@pytest.mark.slow
def test_sigkill_in_every_stage_then_rerun_gives_the_uninterrupted_result(tmp_path):
    from actionbench.run.runner import RunOptions, RunSpec, evaluate

    reference = json.loads(evaluate(RunSpec.build(METHOD, {}, backbone="tiny", dataset="synthetic", judge="tiny"),
                                    RunOptions(out=tmp_path / "reference")).read_text())

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "ACTIONBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "actionbench", "eval", "--method", METHOD, "--backbone", "tiny", "--dataset",
           "synthetic", "--judge", "tiny", "--device", "cpu", "--out", str(out)]
    rng = random.Random(1234)
    # (stage, threshold): kill once the stage has made this many outputs (seeded points inside each stage)
    plan = [("customize", rng.randint(1, 6)), ("generate", rng.randint(20, 340)), ("judge", rng.randint(1, 300)),
            ("results", 1)]
    killed_at = []
    for stage, threshold in plan:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and _state(out)[stage] < threshold:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append((stage, threshold, _state(out), proc.returncode))
    assert sum(rc == -signal.SIGKILL for *_, rc in killed_at) >= 3, killed_at

    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-2000:]

    images = sorted((out / "images").rglob("*.png"))
    judgments = sorted((out / "judgments").rglob("*.json"))
    assert len(images) == 368 and len(judgments) == 368
    assert not list(out.rglob(".tmp-*"))  # no temporaries left behind
    for image in images:
        with Image.open(image) as handle:
            handle.load()  # none truncated
    units = {json.loads(p.read_text())["unit_id"] for p in judgments}
    assert len(units) == 368
    record = json.loads((out / "results.json").read_text())
    assert len({r["unit_id"] for r in record["records"]}) == len(record["records"]) == 368
    assert record["metrics"] == reference["metrics"], killed_at
    for image in images:
        twin = tmp_path / "reference" / image.relative_to(out)
        assert image.read_bytes() == twin.read_bytes()
