"""The mini names resolve as they did before the world's runtime and lab were split, and the suites stay the same.

``fixtures/mini_snapshot.json`` was written on main before the split: a suite's method settings feed every run's
config hash and default folder, so any drift here would change recorded results' identities.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

SNAPSHOT = json.loads((Path(__file__).parent / "fixtures" / "mini_snapshot.json").read_text())


@pytest.mark.parametrize("name", sorted(SNAPSHOT["suites"]))
def test_every_mini_suite_is_as_before(name):
    from actionbench.api.spec import get_suite

    suite = get_suite(name)
    assert json.loads(json.dumps(dataclasses.asdict(suite))) == SNAPSHOT["suites"][name]
    assert get_suite(name) is suite  # built once


@pytest.mark.parametrize("key", sorted(SNAPSHOT["spec_hashes"]))
def test_spec_hashes_are_as_before(key):
    from actionbench.api.spec import RunSpec

    suite, method = key.split("/")
    spec = RunSpec.build(method, suite=suite)
    assert {"config_hash": spec.config.hash(), "default_out": str(spec.default_out())} == SNAPSHOT["spec_hashes"][key]


def test_every_mini_name_resolves_as_before():
    from actionbench.api import registry

    tables = {"judges": registry.JUDGES, "backbones": registry.BACKBONES, "datasets": registry.DATASETS,
              "suites": registry.SUITES}
    for kind, expected in SNAPSHOT["names"].items():
        table = tables[kind]
        assert sorted(n for n in table.names() if n.startswith("mini")) == sorted(expected), kind
        for name, target in expected.items():
            obj = table.get(name)
            found = getattr(obj, "__qualname__", type(obj).__qualname__)
            if kind != "suites":
                found = f"{obj.__module__}:{found}"
            assert found == target, (kind, name)


IMPORT_EVERY_MINI_MODULE = r"""
import json, pkgutil, sys, sysconfig
from pathlib import Path

repo = Path(sys.argv[1]).resolve()
stdlib = str(Path(sysconfig.get_paths()["stdlib"]).resolve())
opened = []


def record(event, args):
    # a file opened (builtins.open, io.open, pathlib, os.open) by the project's own code: the innermost frame
    # outside the standard library and the import machinery is in the checkout (torch reading its entry points
    # while being imported is not the project reading data)
    if event != "open" or not args or not isinstance(args[0], (str, bytes, Path)):
        return
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith("<")
                                 or frame.f_code.co_filename.startswith(stdlib)):
        frame = frame.f_back
    source = Path(frame.f_code.co_filename) if frame is not None else None
    path = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    if (source is not None and source.is_relative_to(repo) and ".venv" not in source.parts
            and Path(path).suffix not in (".py", ".pyc")):
        opened.append(f"{path} (from {source.relative_to(repo)}:{frame.f_lineno})")


sys.addaudithook(record)
import actionbench.worlds.mini as mini

names = [mini.__name__] + [m.name for m in pkgutil.walk_packages(mini.__path__, mini.__name__ + ".")]
for name in names:
    __import__(name)
print(json.dumps({"modules": names, "read": opened}))
"""


def test_importing_every_mini_module_reads_no_file():
    """Listing names or loading a CLI imports the world; a protocol.json read at import would make every such
    start read (and a missing or broken file fail) data nobody asked for. Run in a fresh interpreter so modules
    another test imported count too."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MINI_MODULE, str(repo)], capture_output=True, text=True,
                         check=True, cwd=repo).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert "actionbench.worlds.mini.suite" in found["modules"] and "actionbench.worlds.mini.lab.cli" in found["modules"]
    assert found["read"] == []


def test_every_world_has_a_suite_and_the_old_constants_still_import():
    from actionbench.worlds.mini import suite
    from actionbench.worlds.mini.world import WORLDS

    assert set(suite.DESCRIPTIONS) == set(WORLDS)
    assert suite.MINI_V3B_SUITE is suite.world_suite("mini-v3b")
    from actionbench.worlds.mini.suite import MINI_SUITE

    assert MINI_SUITE.name == "mini"
    with pytest.raises(AttributeError):
        suite.MINI_V9_SUITE


def test_the_registry_knows_the_mini_family_by_one_hook_and_every_world_by_its_table():
    """A version added to ``WORLDS`` is a judge, backbone, dataset and suite name without a line in the core."""
    from actionbench.api import registry
    from actionbench.worlds.mini import family
    from actionbench.worlds.mini.world import WORLDS

    tables = (registry.BUILTIN_JUDGES, registry.BUILTIN_BACKBONES, registry.BUILTIN_DATASETS, registry.BUILTIN_SUITES)
    assert not any(name.startswith("mini") for table in tables for name in table)
    assert registry.BUILTIN_FAMILIES == {"mini": "actionbench.worlds.mini.family:entries"}
    for table in (registry.JUDGES, registry.BACKBONES, registry.DATASETS, registry.SUITES):
        for name in family.names():
            entry, argument = table.lookup(name)
            assert argument is None and entry.source == "built-in"
    assert set(family.names()) == {"mini", *WORLDS}
    assert family.entries("actionbench.methods") == {}
    for name, world in WORLDS.items():
        judge = registry.get_evaluator(name)
        assert judge.name == name and judge.world in (world, name)  # v1's judge names its world, v2's holds it


def test_prefixed_and_unknown_mini_names_resolve_as_before():
    from actionbench.api import registry
    from actionbench.errors import RegistryError
    from actionbench.api.spec import get_suite
    from actionbench.worlds.mini.model import load_mini_backbone

    for name in ("mini:/models/mine", "mini-v2:/models/final", "mini-v3c:FOLDER"):
        entry, argument = registry.BACKBONES.lookup(name)
        assert registry.BACKBONES.get(entry.name) is load_mini_backbone and argument == name.split(":", 1)[1]
    assert registry.SUITES.lookup("mini-v2:FOLDER") is None  # suites take no argument
    with pytest.raises(RegistryError, match="closest: mini-v3"):
        get_suite("mini-v4")
    assert get_suite("mini-v3c").judge == "mini-v3c"


def test_listing_names_imports_no_world_module_beyond_the_family_table():
    """``actionbench suites`` and friends list every mini name from ``WORLDS`` alone: no torch, no judge."""
    import subprocess
    import sys

    code = ("import sys; from actionbench.api import registry; "
            "names = [n for r in (registry.JUDGES, registry.BACKBONES, registry.DATASETS, registry.SUITES) "
            "for n in r.names()]; "
            "print(sorted(m for m in sys.modules if m.startswith('actionbench.worlds')), 'torch' in sys.modules, "
            "sorted(set(n for n in names if n.startswith('mini'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("['actionbench.worlds', 'actionbench.worlds.mini', 'actionbench.worlds.mini.family', "
                   "'actionbench.worlds.mini.world'] False ['mini', 'mini-v1', 'mini-v2', 'mini-v3', 'mini-v3b', "
                   "'mini-v3c', 'mini-v3p', 'mini-v3q', 'mini-v3r', 'mini-v3s']")


def test_a_broken_family_fails_every_lookup_not_just_the_first(monkeypatch):
    from actionbench.errors import RegistryError
    from actionbench.api.registry import Registry

    table = Registry("suite", "actionbench.suites", {}, families={"gone": "no_such_module:entries"})
    for _ in range(2):
        with pytest.raises(RegistryError, match="no_such_module"):
            table.names()
    table.families = {"mini": "actionbench.worlds.mini.family:entries"}
    assert "mini-v3c" in table
