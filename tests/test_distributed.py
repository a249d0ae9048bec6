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
            side = self.backbone.resolution  # the contract: images at the backbone's size
            return [Image.new("RGB", (side, side), (len(artifact.action_id) * 20, seed % 251, len(subject.id))) for seed in seeds]
        from actionbench.training import encode_prompts, sample_images

        prompt = f"{subject.name} {artifact.meta['phrase']}"
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt]), seeds, self.config.sampler)


METHOD = f"{Path(__file__).stem}:HalfRealMethod"


def _images(folder: Path) -> dict:
    import numpy as np
    from PIL import Image

    return {str(p.relative_to(folder)): np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)
            for p in sorted((folder / "images").rglob("*.png"))}


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory):
    """The reference: one process, one thread (torchrun gives each of its processes one thread, and CPU
    kernels round differently with another thread count: bit-identity holds for the same device and threads)."""
    from actionbench.runner import RunOptions, RunSpec, evaluate

    import torch

    folder = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return evaluate(RunSpec.build(METHOD, {}, backbone="tiny", dataset="synthetic", judge="tiny", preset="smoke"),
                        RunOptions(out=folder / "run"))
    finally:
        torch.set_num_threads(threads)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["one node, two processes", "two nodes, one process each"])
def test_torchrun_two_processes_equal_one_process(layout, single_process_run, tmp_path):
    markers = tmp_path / "markers"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "ACTIONBENCH_RANK_MARKERS": str(markers), "ACTIONBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    job = ["-m", "actionbench", "eval", "--method", METHOD, "--backbone", "tiny", "--dataset", "synthetic",
           "--judge", "tiny", "--preset", "smoke", "--device", "cpu", "--out", str(tmp_path / "multi")]
    launcher = [sys.executable, "-m", "torch.distributed.run"]
    if layout == "one node, two processes":
        done = [subprocess.run(launcher + ["--standalone", "--nproc_per_node", "2"] + job, env=env,
                               capture_output=True, text=True, timeout=300)]
    else:  # multi-node through torchrun's rendezvous, both "nodes" on 127.0.0.1 (what a SLURM job array does)
        port = _free_port()
        nodes = [subprocess.Popen(launcher + ["--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                                              "--master_addr", "127.0.0.1", "--master_port", str(port)] + job,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for rank in (0, 1)]
        done = []
        for node in nodes:
            out, err = node.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(node.args, node.returncode, out, err))
    for result in done:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ranks = sorted(json.loads(p.read_text())["rank"] for p in markers.glob("rank-*-of-2.json"))
    assert ranks == [0, 1]  # two processes really ran, with gloo
    a = json.loads(single_process_run.read_text())
    b = json.loads((tmp_path / "multi" / "results.json").read_text())
    assert b["provenance"]["world_size"] == 2 and a["provenance"]["world_size"] == 1
    assert not list((tmp_path / "multi").glob(".lock-*"))  # every rank released its shard's lock
    assert a["metrics"] == b["metrics"] and b["complete"]
    # an image's pixels (so its hash) and the judge's probabilities may differ in the last bits with the batch the
    # image was drawn or judged in and the CPU's kernels (AVX2 or AVX-512); verdicts may not
    def verdicts(record):
        return [{k: v for k, v in r.items() if k not in ("detail", "image_sha256")} for r in record["records"]]

    assert verdicts(a) == verdicts(b)
    # both processes customized (no action twice: each artifact is one folder, made by one pid)
    pids = {json.loads(p.read_text())["meta"]["pid"] for p in (tmp_path / "multi" / "artifacts").glob("*/artifact.json")}
    assert len(pids) == 2
    one, two = _images(single_process_run.parent), _images(tmp_path / "multi")
    assert len(one) == 368 and one.keys() == two.keys()
    worst = max(int(abs(one[k] - two[k]).max()) for k in one)
    assert worst <= 2, f"images differ by up to {worst} of 255 between one process and two"
    assert not list((tmp_path / "multi").rglob(".tmp-*"))
