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
