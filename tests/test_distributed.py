"""Two real processes (torchrun, gloo on CPU) on one run folder equal a single-process run bit for bit.

The test method draws the images of one action with the real generation loop on the tiny backbone
(``sample_images``: UNet, DDIM, VAE) and paints the others, so the comparison covers real model
numerics while the whole protocol (368 images) stays cheap.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest
from PIL import Image

from actionbench.method import Artifact, Method, MethodConfig

HERE = Path(__file__).resolve().parent
REAL_ACTION = "cheer"
REAL_SUBJECTS = ("man", "woman", "chef")  # drawn by the backbone; the rest painted, to keep the test quick


@dataclass(frozen=True)
class HalfRealConfig(MethodConfig):
    SMOKE = {"sampler.num_inference_steps": 1, "sampler.batch_size": 2}


class HalfRealMethod(Method):
    """Nothing learned; a few (action, subject) pairs drawn by the tiny backbone, the rest painted (cheap)."""

    name = "half_real"
    Config = HalfRealConfig

    def customize(self, action, out_dir):
        pid = os.getpid()
        return self.new_artifact(action, meta={"phrase": action.phrase, "pid": pid}).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]):
        if artifact.action_id != REAL_ACTION or subject.id not in REAL_SUBJECTS:
            return [Image.new("RGB", (8, 8), (len(artifact.action_id) * 20, seed % 251, len(subject.id))) for seed in seeds]
        from actionbench.training import encode_prompts, sample_images

        prompt = f"{subject.name} {artifact.meta['phrase']}"
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt]), seeds, self.config.sampler)


METHOD = f"{Path(__file__).stem}:HalfRealMethod"


def _images(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted((folder / "images").rglob("*.png"))}


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(tmp_path):
    from actionbench.runner import RunOptions, RunSpec, evaluate

    import torch

    # torchrun gives each process OMP_NUM_THREADS=1, and CPU kernels round differently with another
    # thread count (a pixel may move by 1/255): bit-identity holds for the same device and thread count
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = evaluate(RunSpec.build(METHOD, {}, backbone="tiny", dataset="synthetic", judge="tiny", preset="smoke"),
                          RunOptions(out=tmp_path / "single"))
    finally:
        torch.set_num_threads(threads)

    markers = tmp_path / "markers"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "ACTIONBENCH_RANK_MARKERS": str(markers), "ACTIONBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "actionbench", "eval", "--method", METHOD, "--backbone", "tiny", "--dataset", "synthetic",
           "--judge", "tiny", "--preset", "smoke", "--device", "cpu", "--out", str(tmp_path / "multi")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    ranks = sorted(json.loads(p.read_text())["rank"] for p in markers.glob("rank-*-of-2.json"))
    assert ranks == [0, 1]  # two processes really ran, with gloo
    a = json.loads(single.read_text())
    b = json.loads((tmp_path / "multi" / "results.json").read_text())
    assert b["provenance"]["world_size"] == 2 and a["provenance"]["world_size"] == 1
    assert a["metrics"] == b["metrics"] and b["complete"]
    # the judge's probabilities may differ in the last bits with the batch an image was judged in; verdicts may not
    def verdicts(record):
        return [{k: v for k, v in r.items() if k != "detail"} for r in record["records"]]

    assert verdicts(a) == verdicts(b)
    # both processes customized (no action twice: each artifact is one folder, made by one pid)
    pids = {json.loads(p.read_text())["meta"]["pid"] for p in (tmp_path / "multi" / "artifacts").glob("*/artifact.json")}
    assert len(pids) == 2
    one, two = _images(tmp_path / "single"), _images(tmp_path / "multi")
    assert len(one) == 368 and one == two
    assert not list((tmp_path / "multi").rglob(".tmp-*"))
