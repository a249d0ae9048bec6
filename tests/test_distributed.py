"""Two real processes (torchrun, gloo on CPU) on one run folder equal a single-process run bit for bit.

The test method draws the images of one action with the real generation loop on the tiny backbone
(``sample_images``: UNet, DDIM, VAE) and paints the others, so the comparison covers real model
numerics while the whole protocol (368 images) stays cheap.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pytest
from PIL import Image

from actionbench.api.method import Artifact, Method, MethodConfig

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
    from actionbench.run.runner import RunOptions, RunSpec, evaluate

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


LAUNCHER = [sys.executable, "-m", "torch.distributed.run"]


def _launch_env(markers: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "ACTIONBENCH_RANK_MARKERS": str(markers), "ACTIONBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return env


def _eval_job(out: Path) -> list[str]:
    """The same eval as ``single_process_run``, as a command for the launcher."""
    return ["-m", "actionbench", "eval", "--method", METHOD, "--backbone", "tiny", "--dataset", "synthetic",
            "--judge", "tiny", "--preset", "smoke", "--device", "cpu", "--out", str(out)]


def _two_processes_on_one_node(job: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(LAUNCHER + ["--standalone", "--nproc_per_node", "2"] + job, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["one node, two processes", "two nodes, one process each"])
def test_torchrun_two_processes_equal_one_process(layout, single_process_run, tmp_path):
    markers = tmp_path / "markers"
    env = _launch_env(markers)
    job = _eval_job(tmp_path / "multi")
    launcher = LAUNCHER
    if layout == "one node, two processes":
        done = [_two_processes_on_one_node(job, env)]
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


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
STAGE_LINE = re.compile(r"^\[\d+/\d+\] ")
PLAN_LINE = re.compile(r"^(plan \(shard |  \[\d+/\d+\] |  all stages: )")
PLANNED = re.compile(r"^  \[\d+/\d+\] (\w+): (\d+) ")


def _shape(line: str) -> str:
    """A line without what differs between shards and machines: durations and counts."""
    return re.sub(r"\d+", "#", re.sub(r"about \S+?(?=[;,) ]|$)", "about T", line))


def _log_lines(folder: Path, pattern: re.Pattern) -> list[str]:
    lines = [TIMESTAMP.sub("", line) for line in (folder / "log.txt").read_text().splitlines()]
    return [line for line in lines if pattern.match(line)]


@pytest.mark.slow
def test_one_and_two_processes_run_the_same_stages_with_the_same_log_and_plan(single_process_run, tmp_path):
    """The single-process run and a torchrun launch go through one stage sequence: the same stages, timed and
    logged, the same stage and plan lines in log.txt (rank 0's shard in the launch), each rank's plan covering
    its share, and status.json saying done."""
    serial = single_process_run.parent
    multi = tmp_path / "multi"
    result = _two_processes_on_one_node(_eval_job(multi), _launch_env(tmp_path / "markers"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    stage_lines = [_log_lines(folder, STAGE_LINE) for folder in (serial, multi)]
    assert [line.split(" ")[1] for line in stage_lines[0]] == ["customize", "generate", "judge"]
    assert [_shape(line) for line in stage_lines[0]] == [_shape(line) for line in stage_lines[1]]
    plan_lines = [_log_lines(folder, PLAN_LINE) for folder in (serial, multi)]
    assert plan_lines[0][0] == "plan (shard 0/1):" and plan_lines[1][0] == "plan (shard 0/2):"
    assert [_shape(line) for line in plan_lines[0]] == [_shape(line) for line in plan_lines[1]]
    # the ranks' plans (each on its own stderr) add up to the single process's
    planned: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if (found := PLANNED.match(line)):
            planned[found[1]] = planned.get(found[1], 0) + int(found[2])
    alone = {found[1]: int(found[2]) for line in plan_lines[0] if (found := PLANNED.match(line))}
    assert planned == alone == {"customize": 8, "generate": 368, "judge": 368}

    records = [json.loads((folder / "results.json").read_text()) for folder in (serial, multi)]
    assert set(records[0]["provenance"]["stage_times_s"]) == set(records[1]["provenance"]["stage_times_s"]) \
        == {"customize", "generate", "judge"}
    for folder in (serial, multi):
        assert json.loads((folder / "status.json").read_text())["stage"] == "done"
