"""Config parsing, registry, artifacts and atomic writes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from actionbench.errors import ArtifactError, ConfigError, RegistryError
from actionbench.hashing import stable_hash
from actionbench.io import atomic_write_json, remove_stale_temporaries, save_image
from actionbench.api.method import Artifact, build_config
from actionbench.api.registry import get_method, list_methods


def test_stable_hash_is_order_independent_and_salt_free():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) == "015abd7f5cc5"  # fixed across processes and machines


def test_build_config_presets_and_typed_overrides():
    cls = get_method("textual_inversion").Config
    cfg = build_config(cls, {"learning_rate": "0.01", "flip": "true", "train_steps": "7"}, preset="smoke")
    assert (cfg.learning_rate, cfg.flip, cfg.train_steps, cfg.sampler.num_inference_steps) == (0.01, True, 7, 2)
    assert dataclasses.is_dataclass(cfg) and cls.__dataclass_params__.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train_steps = 3  # type: ignore[misc]


@pytest.mark.parametrize("key,value,fragment", [
    ("train_steps", "many", "expects int"),
    ("train_steps", "1.5", "expects int"),
    ("flip", "maybe", "true or false"),
    ("learnig_rate", "1", "did you mean learning_rate"),
])
def test_build_config_rejects_bad_overrides(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_config(get_method("textual_inversion").Config, {key: value})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset"):
        build_config(get_method("sd").Config, preset="turbo")


def test_registry_lists_all_paper_methods_without_importing_torch_models():
    names = {e.name for e in list_methods()}
    assert {"sd", "controlnet", "dreambooth", "textual_inversion", "reversion", "custom_diffusion", "p_plus",
            "adi"} <= names


def test_registry_suggests_close_names():
    with pytest.raises(RegistryError, match="closest: dreambooth"):
        get_method("dreambooh")


def test_registry_accepts_module_class_paths():
    assert get_method("actionbench.methods.sd:TextOnlySD").name == "sd"
    with pytest.raises(RegistryError, match="not a subclass of Method"):
        get_method("actionbench.api.method:Artifact")
    with pytest.raises(RegistryError, match="cannot import module"):
        get_method("no_such_pkg.mod:Cls")


def test_field_docs_come_from_the_source():
    docs = get_method("textual_inversion").Config.field_docs()
    assert "learning rate" in docs["learning_rate"].lower()
    assert "sampl" in docs["sampler"]
    from actionbench.api.config import SamplerConfig, field_docs

    assert "steps" in field_docs(SamplerConfig)["num_inference_steps"]
    assert "DPMSolverMultistepScheduler" in field_docs(SamplerConfig)["solver"]


def _artifact(tmp_path: Path) -> Artifact:
    art = Artifact("textual_inversion", "cheer", {"a": 1}, {"id": "tiny"}, {"v": torch.arange(4.0)}, {"token": "<x>"})
    return art.save(tmp_path / "art")


def test_an_artifact_is_the_same_bytes_whichever_process_saves_it(tmp_path):
    """safetensors writes a metadata map in a per-process order: the artifact keeps one key, so its bytes repeat."""
    import subprocess
    import sys

    code = ("import sys, torch; from actionbench.api.method import Artifact; "
            "Artifact('adi', 'cheer', {'a': 1}, {'id': 'tiny'}, {'v': torch.arange(4.0)}, {'token': '<x>'})"
            ".save(sys.argv[1])")
    for i in range(3):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"a{i}")], check=True)
    for name in ("learned.safetensors", "artifact.json"):
        assert len({(tmp_path / f"a{i}" / name).read_bytes() for i in range(3)}) == 1, name


def test_a_record_shows_a_path_inside_the_cache_root_from_the_root(tmp_path, monkeypatch):
    from actionbench.manifest import shown_path

    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path / "home"))
    assert shown_path(tmp_path / "home" / "adi-action-different") == "$ACTIONBENCH_HOME/adi-action-different"
    assert shown_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


def test_artifact_round_trip(tmp_path):
    art = _artifact(tmp_path)
    again = Artifact.load(art.path)
    assert torch.equal(again.tensors["v"], torch.arange(4.0)) and again.meta == {"token": "<x>"}
    with pytest.raises(ArtifactError, match="already exists"):
        _artifact(tmp_path)


def test_truncated_artifact_is_refused_with_the_fix(tmp_path):
    art = _artifact(tmp_path)
    data = (art.path / "learned.safetensors").read_bytes()
    (art.path / "learned.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="customize again"):
        Artifact.load(art.path)


def test_pickle_offered_as_weights_is_refused(tmp_path):
    art = _artifact(tmp_path)
    torch.save({"v": torch.arange(4.0)}, art.path / "learned.safetensors")  # a pickle under the right name
    with pytest.raises(ArtifactError, match="not a valid safetensors"):
        Artifact.load(art.path)


def test_artifact_schema_version_is_checked(tmp_path):
    art = _artifact(tmp_path)
    record = json.loads((art.path / "artifact.json").read_text())
    record["schema_version"] = 99
    (art.path / "artifact.json").write_text(json.dumps(record))
    with pytest.raises(ArtifactError, match="schema_version"):
        Artifact.load(art.path)


def test_atomic_write_leaves_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"ok": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": Boom()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_full_disk_gives_a_clear_error_and_keeps_nothing_half_written(tmp_path, monkeypatch):
    import errno
    import os

    from PIL import Image

    from actionbench.errors import ActionBenchError

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(ActionBenchError, match="no space left"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / ".tmp-actionbench-0123abcd-1.png").write_bytes(b"half")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not (tmp_path / "x" / ".tmp-actionbench-0123abcd-1.png").exists()
