"""Every built-in method passes the interface contract (`actionbench check-method`) on the tiny
backbone and the synthetic set: frozen config, artifact saved and reloaded from safetensors, one
image per seed, same seed gives the same image."""
from __future__ import annotations

import pytest

from actionbench.contract import check_method
from actionbench.api.registry import BUILTIN_METHODS


@pytest.mark.parametrize("name", sorted(BUILTIN_METHODS))
def test_builtin_method_passes_the_contract(name, tmp_path):
    report = check_method(name, workdir=tmp_path)
    assert report.ok, "\n".join(report.lines())


def test_check_method_names_what_to_fix():
    report = check_method("actionbench.api.method:Artifact")
    assert not report.ok and "not a subclass of Method" in "\n".join(report.lines())
