"""Hostile input: each case gives a clear error naming the thing and the fix, and loses nothing already done.

Covered elsewhere (see docs/reliability.md for the table): truncated / pickle / wrong-schema artifacts,
wrong-typed config overrides, full disk on a single write (tests/test_core.py); tampered, truncated and
missing dataset files, unknown dataset version, zip-slip (tests/test_dataset_v1.py); a diverging unit in
a run (tests/test_runner.py).
"""
from __future__ import annotations

import errno
import json
import math
import os

import pytest
import torch
from PIL import Image

from actionbench.errors import ActionBenchError, DatasetError, SchemaError, TrainingError
from actionbench.run.runner import RunOptions, RunSpec, customize, evaluate, generate, open_run

from dataclasses import dataclass

from actionbench.api.method import Method, MethodConfig


@dataclass(frozen=True)
class PaintConfig(MethodConfig):
    fail_on: str = ""
    """Action id whose training diverges."""


class PaintMethod(Method):
    """Paints a colour per (action, subject, seed): the whole protocol in a second."""

    name = "paint"
    Config = PaintConfig

    def customize(self, action, out_dir):
        if action.id == self.config.fail_on:
            raise TrainingError(f"paint {action.id}: loss became nan at step 0")
        return self.new_artifact(action, meta={"shade": len(action.id) * 20}).save(out_dir)

    def generate(self, artifact, subject, seeds):
        side = self.backbone.resolution  # the contract: images at the backbone's size
        return [Image.new("RGB", (side, side), (artifact.meta["shade"], seed % 251, len(subject.id))) for seed in seeds]


DUMMY = f"{__name__}:PaintMethod"


def spec(**config):
    return RunSpec.build(DUMMY, config, backbone="tiny", dataset="synthetic", judge="tiny")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "run"
    path = evaluate(spec(), RunOptions(out=out))
    return out, json.loads(path.read_text())


def test_truncated_generated_image_is_detected_and_made_again(finished, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    victim = out / "images" / "cheer" / "man" / "0.png"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    run = open_run(spec(), RunOptions(out=out))
    assert generate(run) == 1  # only the damaged image is drawn again
    assert victim.read_bytes() == good
    assert len(list((out / "images").rglob("*.png"))) == 368


def test_truncated_exemplar_names_the_file_and_says_re_download(tmp_path):
    from actionbench.dataset import Exemplar

    path = tmp_path / "03.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ActionBenchError, match=r"03\.png.*(truncated|corrupt).*actionbench download"):
        Exemplar("cheer", 3, path, "A person {}").image()


def test_unknown_action_and_subject_ids_list_the_known_ones():
    from actionbench.dataset import load_dataset

    data = load_dataset("synthetic")
    with pytest.raises(DatasetError, match="unknown action 'moonwalk'.*cheer"):
        data.action("moonwalk")
    with pytest.raises(DatasetError, match="unknown subject 'robot'.*man"):
        data.subject("robot")


def test_manifest_with_a_wrong_schema_version_is_refused(tmp_path, monkeypatch):
    import actionbench.manifest as ds

    manifest = json.loads(ds.manifest_path("v1").read_text())
    manifest["schema_version"] = 99
    fake = tmp_path / "manifest.json"
    fake.write_text(json.dumps(manifest))
    monkeypatch.setattr(ds, "manifest_path", lambda version="v1": fake)
    with pytest.raises(SchemaError, match="schema_version 99.*upgrade actionbench"):
        ds.read_manifest("v1")


def test_results_with_a_wrong_schema_version_or_truncated_json(finished, tmp_path):
    from actionbench.leaderboard import validate_results

    record = dict(finished[1], schema_version=7)
    problems = validate_results(record)
    assert len(problems) == 1 and "schema_version is 7" in problems[0] and "upgrade actionbench" in problems[0]
    text = (finished[0] / "results.json").read_text()
    cut = tmp_path / "results.json"
    cut.write_text(text[: len(text) // 3])
    assert "truncated" in validate_results(cut)[0]


def test_full_disk_in_the_middle_of_a_run_stops_cleanly_and_the_rerun_finishes(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_replace, calls = os.replace, {"n": 0}

    def fills_up(src, dst):
        calls["n"] += 1
        if calls["n"] > 60:  # the disk fills after 60 writes (spec, artifacts, some images)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fills_up)
    with pytest.raises(ActionBenchError, match="no space left.*free some disk space and rerun"):
        evaluate(spec(), RunOptions(out=out))
    kept = sorted((out / "images").rglob("*.png"))
    assert kept and not list(out.rglob(".tmp-*"))
    monkeypatch.setattr(os, "replace", real_replace)
    before = {p: p.read_bytes() for p in kept}
    record = json.loads(evaluate(spec(), RunOptions(out=out)).read_text())
    assert record["complete"] and record["metrics"]["n"] == 368
    assert all(p.read_bytes() == data for p, data in before.items())  # what was done is kept as it was


def test_nan_loss_stops_that_unit_with_the_step_and_the_fix():
    from actionbench.training import make_optimizer, run_training

    weight = torch.nn.Parameter(torch.ones(2))
    losses = [torch.tensor(1.0), torch.tensor(0.5), torch.tensor(math.nan)]

    def step(i):
        return (weight * 0).sum() + losses[i]

    with pytest.raises(TrainingError, match=r"nan at step 2.*learning_rate"):
        run_training(step, make_optimizer([weight], 1e-3), steps=3, desc="ti cheer")


def test_a_nan_unit_in_a_run_keeps_the_rest(tmp_path):
    # the runner's side: see also tests/test_runner.py::test_a_diverging_unit_is_recorded_and_the_rest_finish
    out = tmp_path / "run"
    run = open_run(spec(fail_on="cheer"), RunOptions(out=out))
    assert "cheer" not in customize(run) and len(customize(run)) == 7
    assert json.loads(run.failure_path("customize/cheer").read_text())["action_id"] == "cheer"


def test_config_override_of_the_wrong_type_names_the_field():
    from actionbench.api.method import MethodConfig, build_config

    with pytest.raises(ActionBenchError, match="SamplerConfig.guidance_scale expects float, got 'loud'"):
        build_config(MethodConfig, {"sampler.guidance_scale": "loud"})


def test_unknown_attention_option_names_the_choices(tiny_backbone):
    from actionbench.backbone import apply_options

    with pytest.raises(ActionBenchError, match="attention must be one of sdpa, classic"):
        apply_options(tiny_backbone, attention="flash3")
