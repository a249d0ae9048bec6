"""The shipped mini weights: found as package data, never overwritten by accident.

`actionbench mini train|judge|controlnet` tests replace every heavy function by a recorder, so a
guard that fails makes a test fail at once instead of starting a training run. (`.ci/wheel-check`
proves the package data from an installed wheel.)
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from actionbench.cli import main
from actionbench.worlds.mini.lab import controlnet as mini_controlnet
from actionbench.worlds.mini.lab import judge_fit as mini_judge
from actionbench.worlds.mini.lab import train as mini_train
from actionbench.worlds.mini.folders import ShippedDataError, mini_controlnet_source, shipped_dir


@pytest.mark.parametrize("world, data_folder", [("mini-v1", "mini"), ("mini-v2", "mini-v2")])
def test_the_shipped_folder_is_package_data_with_model_judge_and_controlnet(world, data_folder):
    """Found through importlib.resources (a wheel install has no checkout to find it from)."""
    from importlib import resources

    folder = shipped_dir(world)
    assert folder == Path(str(resources.files("actionbench.data") / data_folder))
    for name in ("model.safetensors", "model.json", "judge.safetensors", "judge.json",
                 "controlnet/config.json", "controlnet/diffusion_pytorch_model.safetensors"):
        assert (folder / name).is_file(), name
    assert mini_controlnet_source(world) == f"local:{folder / 'controlnet'}"


COMMANDS = {  # command -> (module, function it calls)
    "train": (mini_train, "train_mini"),
    "judge": (mini_judge, "fit_mini_judge"),
    "controlnet": (mini_controlnet, "train_mini_controlnet"),
}


@pytest.fixture
def calls(monkeypatch):
    """Replace the training functions by recorders of their ``out`` and ``replace_shipped``."""
    seen = []

    def recorder(name):
        def record(*args, out=None, replace_shipped=False, **kwargs):
            seen.append((name, out, replace_shipped))
            return {}
        return record

    for name, (module, function) in COMMANDS.items():
        monkeypatch.setattr(module, function, recorder(name))
    return seen


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_without_out_refuses_to_overwrite_the_shipped_weights(command, calls):
    result = CliRunner().invoke(main, ["mini", command])
    assert result.exit_code == 2, result.output
    assert "--out FOLDER" in result.output and "--replace-shipped" in result.output, result.output
    assert str(shipped_dir()) in result.output.replace("\n", ""), result.output
    assert calls == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_pointing_into_the_shipped_folder_is_refused_too(command, calls):
    target = shipped_dir() / "controlnet" if command == "controlnet" else shipped_dir()
    result = CliRunner().invoke(main, ["mini", command, "--out", str(target)])
    assert result.exit_code == 2 and "--replace-shipped" in result.output, result.output
    assert calls == []


def test_controlnet_refuses_a_folder_that_holds_the_shipped_one(calls):
    """The ControlNet folder is replaced whole: --out on a parent would delete the shipped weights."""
    result = CliRunner().invoke(main, ["mini", "controlnet", "--out", str(shipped_dir().parent)])
    assert result.exit_code == 2 and "--replace-shipped" in result.output, result.output
    assert calls == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_out_elsewhere_runs_the_command(command, calls, tmp_path):
    result = CliRunner().invoke(main, ["mini", command, "--out", str(tmp_path / "mine"), "--steps", "1"]
                                if command != "judge" else ["mini", command, "--out", str(tmp_path / "mine")])
    assert result.exit_code == 0, result.output
    assert [(name, str(out)) for name, out, _ in calls] == [(command, str(tmp_path / "mine"))]


def test_controlnet_of_a_trained_folder_writes_beside_it(calls, tmp_path):
    result = CliRunner().invoke(main, ["mini", "controlnet", "--backbone", f"mini:{tmp_path}"])
    assert result.exit_code == 0, result.output
    assert [(name, str(out)) for name, out, _ in calls] == [("controlnet", str(tmp_path / "controlnet"))]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_replace_shipped_is_the_explicit_way_to_replace_them(command, calls):
    result = CliRunner().invoke(main, ["mini", command, "--replace-shipped"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and calls[0][0] == command and calls[0][2] is True


def test_train_with_judge_passes_the_permission_on(calls):
    result = CliRunner().invoke(main, ["mini", "train", "--judge", "--replace-shipped"])
    assert result.exit_code == 0, result.output
    assert [(name, flag) for name, _, flag in calls] == [("train", True), ("judge", True)]


def _fail(*args, **kwargs):
    raise AssertionError("started work before checking where it writes")


def test_the_python_functions_refuse_the_shipped_folder_before_any_work(monkeypatch):
    import actionbench.backbone

    monkeypatch.setattr(mini_train, "render_world", _fail)
    monkeypatch.setattr(mini_judge, "render_labelled", _fail)
    monkeypatch.setattr(actionbench.backbone, "load_backbone", _fail)
    with pytest.raises(ShippedDataError, match="replace_shipped=True"):
        mini_train.train_mini()
    with pytest.raises(ShippedDataError, match="replace_shipped=True"):
        mini_judge.fit_mini_judge()
    with pytest.raises(ShippedDataError, match="replace_shipped=True"):
        mini_controlnet.train_mini_controlnet()


def test_the_mini_cli_module_imports_no_torch():
    """The main CLI loads it at start-up; `actionbench --help` must stay fast."""
    import subprocess
    import sys

    code = "import sys, actionbench.worlds.mini.lab.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
