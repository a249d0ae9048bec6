"""A full-protocol claim needs its evidence: a smoke run relabelled to the full protocol is not ranked as one.

The runs are made as the runner makes them (``run_fixtures``), on the ``mini`` backbone name, where a
relabelled run would otherwise be ranked; the forger relabels the spec in results.json and spec.json and
recomputes ``config_hash`` and ``spec_hash``, so the file agrees with itself.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_fixtures import copy_run, make_run

from actionbench.cli import main
from actionbench.api.config import SamplerConfig
from actionbench.errors import ConfigError
from actionbench.hashing import stable_hash
from actionbench.io import atomic_write_json
from actionbench.leaderboard import ValidationError, add_result, validate_results, validate_run
from actionbench.leaderboard.validate import entry_caveats, ranked
from actionbench.api.registry import get_method
from actionbench.results.schema import record_set_sha256

METHOD = "textual_inversion"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A textual-inversion run at the smoke preset's step counts (2 training, 2 sampling steps)."""
    return make_run(tmp_path_factory.mktemp("evidence"), "smoke-ti", method=METHOD, preset="smoke", train_steps=2,
                    sampler=SamplerConfig(num_inference_steps=2))


@pytest.fixture
def run(smoke_run, tmp_path):
    return copy_run(smoke_run, tmp_path / "runs")


def load(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def relabel(run: Path, full_config: bool = True, keep_artifact_list: bool = True) -> dict:
    """The forgery: the spec says the full protocol (in results.json and spec.json), every hash recomputed."""
    results = load(run)
    spec = results["spec"]
    spec["preset"] = None
    if full_config:
        spec["method_config"] = get_method(METHOD).Config().to_dict()
        spec["config_hash"] = stable_hash(spec["method_config"])
    results["spec_hash"] = stable_hash(spec)
    if not keep_artifact_list:
        del results["artifacts"]
    atomic_write_json(run / "results.json", results)
    atomic_write_json(run / "spec.json", spec)
    return results


def test_results_record_each_artifacts_hash_and_step_counts(run):
    results = load(run)
    entries = results["artifacts"]
    assert len(entries) == 8 and {e["action_id"] for e in entries} == {r["action_id"] for r in results["records"]}
    assert all(len(e["sha256"]) == 64 and e["train_steps"] == 2 and e["sampler_steps"] == 2 for e in entries)
    # outside the record-set and spec hashes: older files without the list keep theirs
    assert results["records_sha256"] == record_set_sha256(results["records"])
    assert results["spec_hash"] == stable_hash(results["spec"])
    assert validate_run(results, run).ok
    del results["artifacts"]
    assert validate_results(results) == []  # a file from before the list is still valid


def test_a_relabelled_smoke_run_without_artifacts_is_refused(run, tmp_path):
    relabel(run, keep_artifact_list=False)  # a careful forger drops the recorded step counts too
    shutil.rmtree(run / "artifacts")
    assert validate_results(run / "results.json") == []  # consistent with itself
    assert entry_caveats(load(run)) == [] and ranked(load(run))  # the file alone would rank as full
    check = validate_run(run / "results.json", run)
    assert check.ok and any(f"no artifacts in {run}" in m and "train_steps 2000" in m for m in check.missing_evidence)

    out = CliRunner().invoke(main, ["validate", "--run", str(run)])
    assert out.exit_code == 0, out.output
    assert f"missing evidence: no artifacts in {run}" in out.output and "`leaderboard --add` refuses it" in out.output

    board = tmp_path / "board"
    for allow in (False, True):  # a copy on the board could not show the loss, so no flag lets it in
        with pytest.raises(ConfigError, match=r"no artifacts in .*restore .*artifacts as the run left it"):
            add_result(run, board, allow_partial=allow)
    assert not (board / "results").exists()


def test_a_relabelled_smoke_run_keeping_its_recorded_steps_is_caveated(run, tmp_path):
    relabel(run)  # the artifacts list, written with the results, still says 2 steps
    shutil.rmtree(run / "artifacts")
    caveats = entry_caveats(load(run))
    assert any(c.startswith("spec disagrees with its evidence: 8 artifacts record train_steps 2, the spec says 2000")
               for c in caveats)
    assert any(c.startswith("smoke steps: ") and "train_steps 2" in c for c in caveats)
    assert not ranked(load(run))


def test_a_smoke_run_relabelled_with_its_artifacts_kept_is_smoke_by_its_step_counts(run, tmp_path):
    relabel(run, full_config=False)  # only the preset label: spec.json and the artifacts agree with it
    check = validate_run(run / "results.json", run)
    assert check.ok and not check.missing_evidence
    data = load(run)
    assert "smoke preset" not in entry_caveats(data)
    assert "smoke steps: sampler.num_inference_steps 2, train_steps 2 (the smoke preset's), whatever the spec's " \
           "preset says" in entry_caveats(data)
    assert not ranked(data)
    with pytest.raises(ConfigError, match=r"not a full, verifiable run of the protocol \(smoke steps: "):
        add_result(run, tmp_path / "board")
    assert add_result(run, tmp_path / "board", allow_partial=True).is_file()  # marked, and not ranked


def test_a_full_protocol_claim_without_its_stage_timings_is_not_ranked(run, tmp_path):
    relabel(run, full_config=False)
    results = load(run)
    results["spec"]["preset"] = None
    results["artifacts"] = [dict(e, train_steps=2000, sampler_steps=50) for e in results["artifacts"]]
    results["spec"]["method_config"]["train_steps"] = 2000
    results["spec"]["method_config"]["sampler"]["num_inference_steps"] = 50
    timed = dict(results, spec_hash=stable_hash(results["spec"]))
    assert ranked(timed)  # a full claim with its evidence, step counts and timings
    untimed = json.loads(json.dumps(timed))
    del untimed["provenance"]["stage_times_s"]["customize"]
    assert "no stage timings: provenance.stage_times_s lacks customize" in entry_caveats(untimed)
    assert not ranked(untimed)
    untimed["provenance"]["stage_times_s"] = {}
    assert "no stage timings: provenance.stage_times_s lacks customize, generate, judge" in entry_caveats(untimed)
    given = dict(untimed, spec=dict(untimed["spec"], images_given={"sha256": "0" * 64}))
    given["provenance"] = dict(given["provenance"], stage_times_s={"judge": 1.0})
    assert not any(c.startswith("no stage timings") for c in entry_caveats(given))  # given images: judged only


def test_relabelled_step_counts_contradict_the_artifacts_kept_in_the_folder(run):
    relabel(run)
    check = validate_run(run / "results.json", run)
    assert any("8 artifacts were learned with another method, config or backbone" in p for p in check.problems)


def test_an_artifact_replaced_after_the_results_were_written_is_caught(run, tmp_path):
    learned = run / "artifacts" / "cheer" / "artifact.json"
    record = json.loads(learned.read_text())
    record["meta"] = {"retrained": True}
    learned.write_text(json.dumps(record))
    check = validate_run(run / "results.json", run)
    assert any("1 artifacts differ from the SHA-256 the results record" in p and "cheer" in p for p in check.problems)
    with pytest.raises(ValidationError, match="artifacts differ from the SHA-256"):
        add_result(run, tmp_path / "board", allow_partial=True)


def test_a_malformed_artifacts_list_is_named(run):
    results = load(run)
    results["artifacts"][0]["train_steps"] = "two"
    assert any("artifacts[0].train_steps is 'two'" in p for p in validate_results(results))
