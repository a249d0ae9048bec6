"""`eval` without --suite targets the download suite; on a machine without its data or weights it must
say at once what to run instead."""
from __future__ import annotations

from click.testing import CliRunner

from actionbench.cli import main


def test_eval_without_suite_and_without_v1_data_names_the_offline_suite_and_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *args, **kwargs: None)  # no SD 2.1 here
    result = CliRunner().invoke(main, ["eval", "--method", "sd", "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no --suite given")
    assert "`--suite mini`" in lines[0] and "`actionbench download --version v1`" in lines[0]
    assert "SD 2.1" in lines[0] and "v1 images" in lines[0]
    assert not (tmp_path / "run").exists()  # refused before anything was written
