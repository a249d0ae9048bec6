"""The last edges: a user's own files are never deleted, and bad devices and paths are refused in one line
before any compute."""
from __future__ import annotations

import pytest

from actionbench.errors import ActionBenchError
from actionbench.io import atomic_write_text, is_toolkit_temporary, make_temp_dir, remove_stale_temporaries
from actionbench.run.runfolder import check_run_folder, remove_run_temporaries


def _user_tmp_files(out):
    (out / ".tmp-drafts").mkdir(parents=True)
    (out / ".tmp-drafts" / "chapter1.txt").write_text("It was a dark and stormy night")
    (out / ".tmp-notes").write_text("call mum")


def test_user_tmp_files_in_out_are_refused_and_kept(tmp_path):
    out = tmp_path / "book"
    _user_tmp_files(out)
    with pytest.raises(ActionBenchError, match=r"holds other files \(\.tmp-drafts, \.tmp-notes\)"):
        check_run_folder(out)
    assert remove_run_temporaries(out) == 0  # even if asked, they are not the toolkit's
    assert (out / ".tmp-notes").read_text() == "call mum"
    assert (out / ".tmp-drafts" / "chapter1.txt").is_file()


def test_user_tmp_files_survive_an_eval_attempt_via_the_cli(tmp_path):
    from click.testing import CliRunner

    from actionbench.cli import main

    out = tmp_path / "book"
    _user_tmp_files(out)
    result = CliRunner().invoke(main, ["eval", "--method", "sd", "--dataset", "synthetic", "--backbone", "tiny",
                                       "--judge", "tiny", "--preset", "smoke", "--out", str(out)])
    assert result.exit_code != 0 and "holds other files" in result.output
    assert sorted(p.name for p in out.rglob("*")) == [".tmp-drafts", ".tmp-notes", "chapter1.txt"]


def test_only_the_toolkits_own_temporaries_are_removed(tmp_path):
    _user_tmp_files(tmp_path)
    mine = make_temp_dir(tmp_path, "artifact")
    assert is_toolkit_temporary(mine.name) and not is_toolkit_temporary(".tmp-notes")
    assert not is_toolkit_temporary(".tmp-actionbench-notes")  # no token: a user's name
    atomic_write_text(tmp_path / "x.txt", "ok")  # leaves nothing behind
    assert remove_stale_temporaries(tmp_path) == 1
    assert not mine.exists() and (tmp_path / ".tmp-notes").is_file() and (tmp_path / ".tmp-drafts").is_dir()
    check_run_folder(tmp_path / "empty-but-for-a-killed-write")  # a missing folder is fine


def _eval(*extra):
    from click.testing import CliRunner

    from actionbench.cli import main

    return CliRunner().invoke(main, ["eval", "--method", "sd", "--dataset", "synthetic", "--backbone", "tiny",
                                     "--judge", "tiny", "--preset", "smoke", *extra])


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps", "gpu"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_missing_device_is_one_line_before_compute(tmp_path, device, dry_run):
    from actionbench.devices import check_device

    try:
        check_device(device)
        pytest.skip(f"this machine has {device}")
    except ActionBenchError:
        pass
    result = _eval("--device", device, "--out", str(tmp_path / "run"), *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "found" in result.output and "cpu" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_out_under_a_file_is_one_line_before_compute(tmp_path, dry_run):
    (tmp_path / "some_file.txt").write_text("mine")
    result = _eval("--out", str(tmp_path / "some_file.txt" / "sub"), *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "under" in result.output and "which is a file" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (tmp_path / "some_file.txt").read_text() == "mine"


# --- the code a run was made with ------------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402

from PIL import Image  # noqa: E402

from actionbench.api.method import Method, MethodConfig  # noqa: E402


@dataclass(frozen=True)
class FlatConfig(MethodConfig):
    pass


class FlatMethod(Method):
    """One colour per action: the whole protocol in about a second."""

    name = "flat"
    Config = FlatConfig

    def customize(self, action, out_dir):
        return self.new_artifact(action, meta={"shade": len(action.id) * 20}).save(out_dir)

    def generate(self, artifact, subject, seeds):
        side = self.backbone.resolution  # the contract: images at the backbone's size
        return [Image.new("RGB", (side, side), (artifact.meta["shade"], seed % 251, len(subject.id))) for seed in seeds]


@pytest.fixture(scope="module")
def run_with_code_changed_midway(tmp_path_factory):
    """A run whose process started on code hash aaaa... and wrote results on bbbb... (a pull between)."""
    import json

    from actionbench import code_state
    from actionbench.run.runner import RunOptions, RunSpec, evaluate

    out = tmp_path_factory.mktemp("edges") / "run"
    spec = RunSpec.build(f"{__name__}:FlatMethod", {}, backbone="tiny", dataset="synthetic", judge="tiny")
    code_state.code_state_at_import.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(code_state, "code_sha256", lambda root=None: "a" * 64)
        assert code_state.code_state_at_import()["code_sha256"] == "a" * 64  # what open_run's timing record takes
        patch.setattr(code_state, "code_sha256", lambda root=None: "b" * 64)
        path = evaluate(spec, RunOptions(out=out))
    code_state.code_state_at_import.cache_clear()
    return out, json.loads(path.read_text())


def test_code_state_is_recorded_at_start_before_customize(tmp_path):
    from actionbench import code_state
    from actionbench.run.runner import RunOptions, RunSpec, open_run

    spec = RunSpec.build(f"{__name__}:FlatMethod", {}, backbone="tiny", dataset="synthetic", judge="tiny")
    run = open_run(spec, RunOptions(out=tmp_path / "run"))
    assert not (tmp_path / "run" / "artifacts").exists()  # nothing customized yet
    assert run.timing.code == code_state.code_state_at_import()
    assert run.timing.code["code_sha256"] == code_state.code_sha256() and len(run.timing.code["code_sha256"]) == 64


def test_code_changed_between_start_and_end_is_reported(run_with_code_changed_midway):
    _, record = run_with_code_changed_midway
    prov = record["provenance"]
    assert prov["code_at_start"][0]["code_sha256"] == "a" * 64 and prov["code_sha256"] == "b" * 64
    assert prov["code_changed"] is True and "code_sha256 aaaaaaaaaaaa at start" in prov["code_changes"][0]


def test_leaderboard_add_refuses_code_changed_run_without_allow_dirty(run_with_code_changed_midway, tmp_path,
                                                                       monkeypatch):
    from actionbench.errors import ConfigError
    import importlib

    from actionbench.leaderboard import add_result
    from actionbench.leaderboard.tables import collect_rows

    validate = importlib.import_module("actionbench.leaderboard.validate")

    out, _ = run_with_code_changed_midway
    monkeypatch.setattr(validate, "TEST_BACKBONES", frozenset())  # as if made on a real backbone
    with pytest.raises(ConfigError, match=r"code changed during the run.*--allow-dirty"):
        add_result(out, tmp_path / "board")
    assert not (tmp_path / "board" / "results").exists()
    add_result(out, tmp_path / "board", allow_dirty=True)
    rows = collect_rows(tmp_path / "board")
    assert any("code changed during the run" in (row.get("caveats") or "") for row in rows)


def test_validate_refuses_unknown_top_level_field_with_did_you_mean(run_with_code_changed_midway):
    from actionbench.results.check import check_results as validate

    _, record = run_with_code_changed_midway
    assert validate(record) == []
    problems = validate({**record, "metric": {"total": 1.0}, "zzz": 1})
    assert any("unknown top-level field 'metric': did you mean 'metrics'?" in p for p in problems)
    assert any("unknown top-level field 'zzz'" in p and "did you mean" not in p for p in problems)
    assert not any("human_agreement" in p for p in validate({**record, "human_agreement": {}}))  # a hook's own key


def test_leaderboard_add_refuses_dirty_source_run_without_allow_dirty():
    from actionbench.leaderboard.validate import code_caveats

    assert code_caveats({"provenance": {"git_dirty": True}}) == ["dirty source"]
    assert code_caveats({"provenance": {"git_dirty": False, "code_at_start": [{"git_dirty": True}]}}) == ["dirty source"]
    assert code_caveats({"provenance": {"git_dirty": False, "code_changed": False}}) == []


def test_code_hash_covers_methods_and_judges(tmp_path):
    from actionbench import code_state

    assert (code_state.PACKAGE / "methods" / "adi.py").is_file()  # methods and judges are inside the hashed folder
    package = tmp_path / "actionbench"
    (package / "methods").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "methods" / "m.py").write_text("lr = 1e-3\n")
    before = code_state.code_sha256(package)
    (package / "methods" / "m.py").write_text("lr = 1e-2\n")
    assert code_state.code_sha256(package) != before


# --- a refused run leaves no files; user strings in Markdown; every HTTP method -------------------------

from actionbench.api.evaluator import Evaluator  # noqa: E402


class WeightlessJudge(Evaluator):
    """A judge whose weights are missing: ``check`` refuses, after the run folder was opened."""

    name = "weightless"
    seen: list = []  # what the run folder held when the refusal came

    def check(self):
        type(self).seen.append(sorted(p.name for p in type(self).watch.iterdir()))
        raise ActionBenchError("judge weightless: weights not found in /nowhere; download them first")

    def judge(self, requests):
        raise AssertionError("a refused judge is never asked")


def test_a_run_refused_after_its_folder_was_opened_leaves_nothing(tmp_path):
    from actionbench.run.runner import RunOptions, RunSpec, evaluate

    spec = RunSpec.build(f"{__name__}:FlatMethod", {}, backbone="tiny", dataset="synthetic",
                         judge=f"{__name__}:WeightlessJudge")
    projects = tmp_path / "projects"
    projects.mkdir()
    (projects / "notes.txt").write_text("mine")
    for out, made_by_the_user in ((projects / "run", False), (projects / "empty", True)):
        if made_by_the_user:
            out.mkdir()
        WeightlessJudge.watch, WeightlessJudge.seen = out, []
        with pytest.raises(ActionBenchError, match="weights not found"):
            evaluate(spec, RunOptions(out=out))
        assert {"spec.json", "log.txt"} <= set(WeightlessJudge.seen[0])  # written before the refusal
        assert out.exists() == made_by_the_user and (not out.exists() or not list(out.iterdir()))
    assert sorted(p.name for p in projects.iterdir()) == ["empty", "notes.txt"]
    assert (projects / "notes.txt").read_text() == "mine"


def test_markdown_escapes_html_in_run_names(tmp_path):
    import json

    from run_fixtures import make_run

    from actionbench.leaderboard import render_leaderboard

    shown = {}
    for name, hostile in (("xss", "<script>alert(1)</script>"), ("ticks", "a`b|c")):
        run = make_run(tmp_path / "runs", name)
        results = json.loads((run / "results.json").read_text())
        results["run_name"] = hostile
        (run / "results.json").write_text(json.dumps(results))
        shown[name] = run
    pages = render_leaderboard(tmp_path / "board", extra_results=list(shown.values()), page_dir=tmp_path / "page")
    markdown = pages["markdown"].read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown and "<script>" not in markdown
    assert "a&#96;b\\|c" in markdown  # cannot open a code span or a table cell
    assert "<script>" not in pages["html"].read_text()


from test_human import live, request  # noqa: E402, F401 - the annotation server and a hand-made request


def test_every_http_method_gets_a_json_answer(live):  # noqa: F811 - the fixture imported above
    app, store, port = live
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"):
        status, headers, body = request(port, method, "/api/answer", token=app.token)
        assert status == (501 if method == "BREW" else 405), (method, status, body)
        assert headers["content-type"] == "application/json" and body["error"], method
        assert headers["connection"] == "close" and headers["x-frame-options"] == "DENY"
        if status == 405:
            assert headers["allow"] == "GET, HEAD, POST" and method in body["error"]
    assert request(port, "GET", "/api/annotators")[0] == 200  # the allowed ones still answer
    assert store.annotators() == []
