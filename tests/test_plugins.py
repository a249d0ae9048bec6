"""A third-party method adapter registered by entry point is found, listed and runs."""
from __future__ import annotations

import shutil
import sys
import tomllib

import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "actionbench-example-method"


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    """Install the example package as pip would lay it out: the module plus a dist-info with entry points."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "actionbench_example_method", site / "actionbench_example_method")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    dist = site / f"actionbench_example_method-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    from actionbench.registry import METHODS

    METHODS.reload_entry_points()  # re-read entry points
    yield site
    METHODS.reload_entry_points()
    sys.modules.pop("actionbench_example_method", None)


def test_entry_point_method_is_listed_and_resolves(installed_example):
    from actionbench.registry import get_method, list_methods

    entry = {e.name: e for e in list_methods()}["full_body_prompt"]
    assert entry.source.startswith("entry point (actionbench-example-method")
    assert get_method("full_body_prompt").summary.startswith("text-only SD")


def test_cli_lists_the_plugin(installed_example):
    from click.testing import CliRunner

    from actionbench.cli import main

    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0 and "full_body_prompt" in result.output


def test_broken_entry_point_does_not_break_listing(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[actionbench.methods]\nbroken = no_such_module:Nope\n")
    monkeypatch.syspath_prepend(str(site))
    from actionbench.registry import METHODS

    METHODS.reload_entry_points()
    from click.testing import CliRunner

    from actionbench.cli import main

    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0
    assert "broken" in result.output and "cannot import module 'no_such_module'" in result.output
    assert "textual_inversion" in result.output
    METHODS.reload_entry_points()
