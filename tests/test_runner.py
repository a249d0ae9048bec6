"""The runner: resumable units, shards, spec checks, failures kept per unit, and a killed eval resumed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import pytest
from PIL import Image

from actionbench.errors import ActionBenchError, TrainingError
from actionbench.api.evaluator import Evaluator, Judgment
from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.run.runner import RunOptions, RunSpec, customize, evaluate, generate, in_shard, open_run, parse_shard

CALLS = {"customize": 0, "generate": 0}


@dataclass(frozen=True)
class DummyConfig(MethodConfig):
    fail_on: str = ""
    """Action id whose training diverges (to test per-unit failure)."""


class DummyMethod(Method):
    """Paints a colour per (action, seed); cheap enough to run the whole protocol."""

    name = "dummy"
    Config = DummyConfig

    def customize(self, action, out_dir):
        CALLS["customize"] += 1
        if action.id == self.config.fail_on:
            raise TrainingError(f"dummy {action.id}: loss became nan at step 0")
        return self.new_artifact(action, meta={"shade": len(action.id) * 20}).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]):
        CALLS["generate"] += 1
        side = self.backbone.resolution  # the contract: images at the backbone's size
        return [Image.new("RGB", (side, side), (artifact.meta["shade"], seed % 255, len(subject.id))) for seed in seeds]


DUMMY = f"{__name__}:DummyMethod"


def spec(**config):
    return RunSpec.build(DUMMY, config, backbone="tiny", dataset="synthetic", judge="tiny")


def test_shards_partition_units():
    ids = [f"a/{i}/0" for i in range(200)]
    parts = [[u for u in ids if in_shard(u, (i, 3))] for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(ids) and all(parts)
    assert parse_shard("1/3") == (1, 3)
    with pytest.raises(ActionBenchError):
        parse_shard("3/3")


def test_shards_split_customizations_evenly_so_no_shard_idles_while_another_trains_half():
    from actionbench.run.runfolder import shard_customizations

    actions = [f"action{i}" for i in range(8)]
    for n in (2, 3, 4, 8):
        parts = [shard_customizations(actions, [0, 1, 2], (i, n)) for i in range(n)]
        assert sorted(sum(parts, [])) == sorted((a, s) for a in actions for s in (0, 1, 2))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert shard_customizations(actions, [None], (0, 1)) == [(a, None) for a in actions]


def test_full_run_then_resume_redoes_nothing(tmp_path):
    out = tmp_path / "run"
    path = evaluate(spec(), RunOptions(out=out))
    record = json.loads(path.read_text())
    assert record["metrics"]["n"] == 368 and record["complete"]
    assert len(list((out / "images").rglob("*.png"))) == 368
    assert record["spec"]["dataset"] == "synthetic" and len(record["spec_hash"]) == 12
    before = dict(CALLS)
    path2 = evaluate(spec(), RunOptions(out=out))
    assert CALLS == before  # nothing customized or generated again
    assert json.loads(path2.read_text())["metrics"] == record["metrics"]


def test_a_different_spec_in_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    open_run(spec(), RunOptions(out=out))
    with pytest.raises(ActionBenchError, match="different spec"):
        open_run(spec(**{"sampler.guidance_scale": "3.0"}), RunOptions(out=out))


def test_sharded_runs_equal_a_single_run(tmp_path):
    single = evaluate(spec(), RunOptions(out=tmp_path / "single"))
    assert evaluate(spec(), RunOptions(out=tmp_path / "sharded", shard=(0, 2))) is None
    sharded = evaluate(spec(), RunOptions(out=tmp_path / "sharded", shard=(1, 2)))
    a, b = json.loads(single.read_text()), json.loads(sharded.read_text())
    assert a["metrics"] == b["metrics"] and [r["unit_id"] for r in a["records"]] == [r["unit_id"] for r in b["records"]]
    for image in (tmp_path / "single" / "images").rglob("*.png"):
        twin = tmp_path / "sharded" / image.relative_to(tmp_path / "single")
        assert image.read_bytes() == twin.read_bytes()


def test_a_diverging_unit_is_recorded_and_the_rest_finish(tmp_path):
    out = tmp_path / "run"
    path = evaluate(spec(fail_on="squat"), RunOptions(out=out))
    record = json.loads(path.read_text())
    assert record["failures"] == ["customize/squat"] and not record["complete"]
    assert record["metrics"]["n"] == 368 - 46
    assert "nan" in json.loads((out / "failures" / "customize__squat.json").read_text())["error"]


def test_generate_without_artifacts_names_the_fix(tmp_path):
    run = open_run(spec(), RunOptions(out=tmp_path / "run"))
    with pytest.raises(ActionBenchError, match="actionbench customize"):
        generate(run)


def test_damaged_artifact_in_a_run_is_reported(tmp_path):
    run = open_run(spec(), RunOptions(out=tmp_path / "run"))
    customize(run)
    (run.artifact_dir("cheer") / "learned.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ActionBenchError, match="customize again"):
        customize(run)


@pytest.mark.slow
def test_killed_eval_resumes_to_exactly_368_images(tmp_path):
    """SIGKILL `actionbench eval` while it generates, rerun it, and check nothing is missing or doubled."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "actionbench", "eval", "--method", "sd", "--dataset", "synthetic",
           "--backbone", "tiny", "--judge", "tiny", "--preset", "smoke", "--out", str(out), "--device", "cpu"]
    env = {**os.environ, "ACTIONBENCH_NO_PROGRESS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "images").rglob("*.png"))) < 40:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(list((out / "images").rglob("*.png")))
    assert 0 < partial < 368
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    images = sorted((out / "images").rglob("*.png"))
    assert len(images) == 368 and not list(out.rglob(".tmp-*"))
    record = json.loads((out / "results.json").read_text())
    assert record["metrics"]["n"] == 368 and len({r["unit_id"] for r in record["records"]}) == 368
    for image in images[:20]:
        Image.open(image).load()  # none truncated


def test_automatic_results_state_agreement_with_human_labels(tmp_path, monkeypatch):
    """Where human labels exist for a run, results.json records how its judge agrees with them."""
    from actionbench.evaluators.human import LABELS_DB_ENV, LabelStore

    out = tmp_path / "run"
    evaluate(spec(), RunOptions(out=out))
    store = LabelStore(tmp_path / "labels.sqlite")
    items = store.register_run(open_run(spec(), RunOptions(out=out)))[:6]
    for item in items:
        store.answer(item.item_id, "alice", "action", True)
        store.answer(item.item_id, "alice", "subject", False)
    monkeypatch.setenv(LABELS_DB_ENV, str(store.path))
    (out / "results.json").unlink()
    record = json.loads(evaluate(spec(), RunOptions(out=out)).read_text())
    agreement = record["human_agreement"]
    assert agreement["n"] == 6 and agreement["annotators"] == 1
    labelled = [r for r in record["records"] if "human" in r]
    assert len(labelled) == 6 and all(r["human"] == {"action": True, "subject": False, "total": False} for r in labelled)
    from actionbench.leaderboard import validate_results

    assert validate_results(out / "results.json") == []


class LeakJudge(Evaluator):
    """Declares a per-image metric: every salute image leaks; only cats are the right subject."""

    name = "leak-dummy"
    per_image_metrics = ("leak",)

    def judge(self, requests):
        return [Judgment(r.unit_id, True, r.subject_id == "cat", {"leak": r.action_id == "salute"}) for r in requests]


def test_a_judges_per_image_metrics_reach_the_results_overall_and_per_subject_category(tmp_path):
    from actionbench.results.check import check_results

    run_spec = RunSpec.build(DUMMY, {}, backbone="tiny", dataset="synthetic", judge=f"{__name__}:LeakJudge")
    record = json.loads(evaluate(run_spec, RunOptions(out=tmp_path / "run")).read_text())
    metrics = record["metrics"]
    assert record["judge"]["per_image_metrics"] == ["leak"] and metrics["per_image_metrics"] == ["leak"]
    assert metrics["leak"]["mean"] == pytest.approx(1 / 8) and metrics["per_action"]["salute"]["leak"] == 1.0
    assert set(metrics["per_category"]) == {"human", "personality", "animal"}
    assert metrics["per_category"]["animal"]["subject"]["mean"] == pytest.approx(1 / len(
        metrics["per_category"]["animal"]["subjects"]))
    assert check_results(record) == []


def test_judging_a_run_folder_defaults_to_its_suites_judge(tmp_path):
    """The failure it prevents: the shard merge `actionbench judge --out RUN` of a mini-v2 run reaching for CLIP."""
    from actionbench.run.runner import recorded_run_spec, suite_judge

    for suite, expected in (("mini-v2", "mini-v2"), ("mini-v1", "mini-v1"), ("v1", "clip"), (None, "clip")):
        recorded = {"method": "null", "backbone": {"id": "mini-v2"}, "dataset": "mini-v2",
                    **({"suite": suite} if suite else {})}
        assert suite_judge(recorded_run_spec(recorded).suite) == expected  # what `judge --out` reads from spec.json


def test_judging_a_run_whose_suite_is_gone_names_the_suite_and_the_flag(tmp_path):
    """A run recorded with a suite this install lacks (renamed, or a plugin's) is refused before any judging,
    naming the suite and `--judge NAME`; with --judge it is judged, and nothing is left of the refusal."""
    from click.testing import CliRunner

    from actionbench.cli import main

    out = tmp_path / "run"
    open_run(spec(), RunOptions(out=out))
    recorded = json.loads((out / "spec.json").read_text())
    (out / "spec.json").write_text(json.dumps({**recorded, "suite": "mini-v0-gone"}))
    before = sorted(p.name for p in out.iterdir())
    refused = CliRunner().invoke(main, ["judge", "--out", str(out), "--device", "cpu"])
    assert refused.exit_code != 0 and "suite 'mini-v0-gone'" in refused.output and "--judge NAME" in refused.output
    assert sorted(p.name for p in out.iterdir()) == before  # no log or status of a refused judge
    named = CliRunner().invoke(main, ["judge", "--out", str(out), "--device", "cpu", "--judge", "tiny"])
    assert named.exit_code == 0, named.output
    assert not (out / "results.json").exists()  # no images yet: nothing to write


def test_the_judge_command_merges_shards_through_the_same_stages(tmp_path):
    """`actionbench judge --out` after two shards runs the judge stage of the one sequence: the run's log gets
    its plan and stage line, status.json says done, and the results equal a single process's."""
    from click.testing import CliRunner

    from actionbench.cli import main

    out = tmp_path / "sharded"
    assert evaluate(spec(), RunOptions(out=out, shard=(0, 2))) is None
    assert evaluate(spec(), RunOptions(out=out, shard=(1, 2))) is not None
    (out / "results.json").unlink()
    result = CliRunner().invoke(main, ["judge", "--out", str(out), "--device", "cpu", "--judge", "tiny"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "status.json").read_text())["stage"] == "done"
    log = (out / "log.txt").read_text()
    assert f"judge {out} " in log and f"[1/1] judge {DUMMY}: 0 images" in log and "plan (shard 0/1):" in log
    single = evaluate(spec(), RunOptions(out=tmp_path / "single"))
    assert json.loads(single.read_text())["metrics"] == json.loads((out / "results.json").read_text())["metrics"]
