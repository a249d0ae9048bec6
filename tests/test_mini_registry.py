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
    from actionbench.spec import get_suite

    suite = get_suite(name)
    assert json.loads(json.dumps(dataclasses.asdict(suite))) == SNAPSHOT["suites"][name]
    assert get_suite(name) is suite  # built once


@pytest.mark.parametrize("key", sorted(SNAPSHOT["spec_hashes"]))
def test_spec_hashes_are_as_before(key):
    from actionbench.spec import RunSpec

    suite, method = key.split("/")
    spec = RunSpec.build(method, suite=suite)
    assert {"config_hash": spec.config.hash(), "default_out": str(spec.default_out())} == SNAPSHOT["spec_hashes"][key]


def test_every_mini_name_resolves_as_before():
    from actionbench import registry

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
