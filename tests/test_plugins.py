"""A third-party method adapter registered by entry point is found, listed and runs."""
from __future__ import annotations

import shutil
import sys
import tomllib

import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "actionbench-example-method"


def write_dist_info(site, name: str, version: str, groups: dict[str, dict[str, str]]) -> None:
    """The dist-info pip writes for an installed package: its metadata and its entry points."""
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{entry} = {target}" for entry, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    """Install the example package as pip would lay it out: the module plus a dist-info with entry points."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "actionbench_example_method", site / "actionbench_example_method")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    write_dist_info(site, project["name"], project["version"], project["entry-points"])
    monkeypatch.syspath_prepend(str(site))
    from actionbench.api.registry import METHODS

    METHODS.reload_entry_points()  # re-read entry points
    yield site
    METHODS.reload_entry_points()
    sys.modules.pop("actionbench_example_method", None)


def test_entry_point_method_is_listed_and_resolves(installed_example):
    from actionbench.api.registry import get_method, list_methods

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
    write_dist_info(site, "broken", "0.1", {"actionbench.methods": {"broken": "no_such_module:Nope"}})
    monkeypatch.syspath_prepend(str(site))
    from actionbench.api.registry import METHODS

    METHODS.reload_entry_points()
    from click.testing import CliRunner

    from actionbench.cli import main

    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0
    assert "broken" in result.output and "cannot import module 'no_such_module'" in result.output
    assert "textual_inversion" in result.output
    METHODS.reload_entry_points()


NEW_METHOD = '''"""A method that calls its steps max_train_steps and its learning rate lr, with a second table row."""
from dataclasses import dataclass

from actionbench.api.method import Method, MethodConfig, TableRow


@dataclass(frozen=True)
class LongStepsConfig(MethodConfig):
    max_train_steps: int = 40
    """Training steps."""
    lr: float = 1e-3
    """Learning rate."""
    batch_size: int = 2
    """Exemplars per step."""


class LongSteps(Method):
    name = "long_steps"
    Config = LongStepsConfig
    steps_field, lr_field = "max_train_steps", "lr"
    table_rows = (TableRow(), TableRow("long_steps_short", settings={"max_train_steps": 10}))

    def customize(self, action, out_dir):
        return self.new_artifact(action).save(out_dir)

    def generate(self, artifact, subject, seeds):
        return []
'''


def test_a_method_added_in_its_own_file_joins_the_mini_table_and_its_protocol(tmp_path, monkeypatch):
    """One file (and its package's entry point) is all a method needs: its rows reach the mini table and its
    training fields the protocol's trained list and the plan, whatever it calls them."""
    from actionbench.api.registry import METHODS, get_method
    from actionbench.worlds.mini.lab import protocol, table

    built_in = [r.name for r in table.all_rows()]
    site = tmp_path / "site"
    (site / "long_steps_method").mkdir(parents=True)
    (site / "long_steps_method" / "__init__.py").write_text(NEW_METHOD)
    write_dist_info(site, "long-steps-method", "0.1", {"actionbench.methods": {"long_steps": "long_steps_method:LongSteps"}})
    monkeypatch.syspath_prepend(str(site))
    METHODS.reload_entry_points()
    try:
        rows = table.all_rows()
        assert [r.name for r in rows] == built_in + ["long_steps", "long_steps_short"]
        short = table.rows_by_name(["long_steps_short"])[0]
        assert short.method == "long_steps" and short.settings == {"max_train_steps": 10} and short.trains
        assert table.default_row_names()[-2:] == ("long_steps", "long_steps_short")
        assert protocol.trained_methods()[-1] == ("long_steps", "lr", "max_train_steps")
        assert get_method("long_steps")(None).training_rows(None) == 3.0 * 40 * 2  # its steps count in the plan
    finally:
        METHODS.reload_entry_points()
        sys.modules.pop("long_steps_method", None)


def test_a_method_whose_steps_field_is_called_otherwise_is_refused_at_its_class_statement():
    """The failure it prevents: a method calling its steps max_train_steps was planned as "no training" and left
    out of a world's protocol, silently."""
    from dataclasses import dataclass

    from actionbench.errors import RegistryError
    from actionbench.api.method import Method, MethodConfig, TableRow

    @dataclass(frozen=True)
    class OwnNames(MethodConfig):
        max_train_steps: int = 100

    with pytest.raises(RegistryError, match=r"no field 'train_steps'.*max_train_steps.*steps_field = 'max_train_steps'"):
        class Undeclared(Method):  # noqa: F841 - refused at the class statement
            Config = OwnNames

    with pytest.raises(RegistryError, match=r"declares steps_field = 'num_steps'.*no field 'num_steps'"):
        class Misnamed(Method):  # noqa: F841
            Config = OwnNames
            steps_field = "num_steps"

    class Declared(Method):
        Config = OwnNames
        steps_field = "max_train_steps"
    assert (Declared.steps_field, Declared.lr_field) == ("max_train_steps", None)

    class Subclass(Declared):  # a subclass keeps what its parent declared
        pass
    assert Subclass.steps_field == "max_train_steps"

    @dataclass(frozen=True)
    class Plain(MethodConfig):
        shade: int = 3

    class TrainsNothing(Method):  # nothing like a step count: trains nothing, no declaration needed
        Config = Plain
    assert (TrainsNothing.steps_field, TrainsNothing.lr_field) == (None, None)

    with pytest.raises(RegistryError, match=r"table row 'x' names preset 'nope'"):
        class BadRow(Method):  # noqa: F841
            Config = Plain
            table_rows = (TableRow("x", preset="nope"),)
