"""The last edges: a user's own files are never deleted, and bad devices and paths are refused in one line
before any compute."""
from __future__ import annotations

import pytest

from actionbench.errors import ActionBenchError
from actionbench.io import atomic_write_text, is_toolkit_temporary, make_temp_dir, remove_stale_temporaries
from actionbench.runfolder import check_run_folder, remove_run_temporaries


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
