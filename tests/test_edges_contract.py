"""The method contract's edges: images at the backbone's resolution (in ``check-method`` and the runner),
bring-your-own images no smaller than the documented minimum, and the versioned method interface
(an adapter written for interface 1 runs with warnings; one written for a newer interface is refused)."""
from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

import pytest
from PIL import Image

from actionbench.errors import ActionBenchError, ConfigError, RegistryError
from actionbench.api.method import INTERFACE_VERSION, Method, MethodConfig


@dataclass(frozen=True)
class WideConfig(MethodConfig):
    pass


class WideMethod(Method):
    """Returns 71x32 images whatever the backbone draws."""

    name = "wide"
    Config = WideConfig

    def customize(self, action, out_dir):
        return self.new_artifact(action).save(out_dir)

    def generate(self, artifact, subject, seeds):
        return [Image.new("RGB", (71, 32), (seed % 251, 0, 0)) for seed in seeds]


WIDE = f"{__name__}:WideMethod"


def test_check_method_refuses_images_off_the_backbones_resolution():
    from actionbench.contract import check_method

    report = check_method(WIDE)
    text = "\n".join(report.lines())
    assert not report.ok
    assert f"method {WIDE}: images are 71x32 pixels, expected 64x64 (the backbone's resolution)" in text, text


def test_the_runner_refuses_images_off_the_backbones_resolution(tmp_path):
    from actionbench.run.runner import RunOptions, RunSpec, evaluate

    spec = RunSpec.build(WIDE, {}, backbone="tiny", dataset="synthetic", judge="tiny")
    with pytest.raises(ActionBenchError, match=rf"method {WIDE} broke the generate contract for .*: images are "
                                               r"71x32 pixels, expected 64x64 \(the backbone's resolution\)"):
        evaluate(spec, RunOptions(out=tmp_path / "run"))
    assert not list((tmp_path / "run").glob("images/*/*/*.png"))  # nothing of the wrong size was saved


# --- bring your own images: a minimum size, checked before anything is copied ----------------------------


def _byo_folder(root, small_side: int | None = None):
    from actionbench.worlds import synthetic

    for k in (0, 1):
        path = root / "cheer" / "man" / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = synthetic.render("man", "cheer", 48, seed=k).image
        if k == 1 and small_side is not None:
            image = image.resize((small_side, 48))
        image.save(path)
    return root


def test_byo_image_below_the_minimum_is_refused_and_nothing_is_copied(tmp_path):
    from actionbench.byo import MIN_SIDE, judge_images

    assert MIN_SIDE == 32
    folder = _byo_folder(tmp_path / "mine", small_side=20)
    out = tmp_path / "run"
    with pytest.raises(ActionBenchError, match=r"cheer/man/1\.png is 20x48 pixels; images to judge need at least 32 "
                                               r"pixels on the short side.*nothing was copied"):
        judge_images(folder, dataset="synthetic", judge_name="tiny", out=out)
    assert not out.exists()  # not even the good first image
    _byo_folder(tmp_path / "ok", small_side=MIN_SIDE)
    assert judge_images(tmp_path / "ok", dataset="synthetic", judge_name="tiny", out=out).is_file()


def test_byo_import_stopped_while_copying_takes_back_its_copies(tmp_path, monkeypatch):
    import actionbench.byo as byo

    folder = _byo_folder(tmp_path / "mine")
    copies = []

    def disk_full_on_the_second(path, data):
        if copies:
            raise ActionBenchError(f"no space left on the device while writing {path}")
        copies.append(path)
        return real(path, data)

    real = byo.atomic_write_bytes
    monkeypatch.setattr(byo, "atomic_write_bytes", disk_full_on_the_second)
    (tmp_path / "parent").mkdir()
    out = tmp_path / "parent" / "run"
    with pytest.raises(ActionBenchError, match="no space left"):
        byo.import_images(folder, dataset="synthetic", out=out)
    assert copies and not out.exists() and (tmp_path / "parent").is_dir()


# --- the versioned method interface -----------------------------------------------------------------------

OLD_ADAPTER = '''
from dataclasses import dataclass

from actionbench.api.method import Method, MethodConfig, SamplerConfig
from actionbench.training import encode_prompts, sample_images


@dataclass(frozen=True)
class OldConfig(MethodConfig):
    pass


class OldAdapter(Method):
    """Written for interface 1, when the sampler settings sat on the config itself."""

    name = "old_adapter"
    Config = OldConfig
    interface_version = 1

    def customize(self, action, out_dir):
        return self.new_artifact(action, meta={"phrase": action.phrase}).save(out_dir)

    def generate(self, artifact, subject, seeds):
        sampler = SamplerConfig(num_inference_steps=self.config.num_inference_steps,
                                guidance_scale=self.config.guidance_scale,
                                negative_prompt=self.config.negative_prompt,
                                batch_size=self.config.generation_batch_size)
        prompt = f"{subject.name} {artifact.meta['phrase']}"
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt]), seeds, sampler)
'''


def _adapter_module(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_an_adapter_written_for_interface_1_runs_with_warnings_naming_what_moved(tmp_path, monkeypatch):
    from actionbench.contract import check_method
    from actionbench.api.registry import get_method

    assert INTERFACE_VERSION == 2
    module = _adapter_module(tmp_path, monkeypatch, "old_interface_adapter", OLD_ADAPTER)
    with pytest.warns(FutureWarning, match=r"written for method interface 1.*`negative_prompt` is now "
                                           r"`config.sampler.negative_prompt`.*`generation_batch_size` is now "
                                           r"`config.sampler.batch_size`"):
        get_method(f"{module}:OldAdapter")
    with pytest.warns(DeprecationWarning) as caught:
        report = check_method(f"{module}:OldAdapter", workdir=tmp_path / "check")
    assert report.ok, "\n".join(report.lines())
    told = {str(w.message).split(" (")[0] for w in caught}
    assert told == {"`num_inference_steps` is now `config.sampler.num_inference_steps`",
                    "`guidance_scale` is now `config.sampler.guidance_scale`",
                    "`negative_prompt` is now `config.sampler.negative_prompt`",
                    "`generation_batch_size` is now `config.sampler.batch_size`"}
    assert "deprecated: " in "\n".join(report.lines())


def test_old_sampler_names_on_a_config_read_the_new_place_with_a_warning():
    config = WideConfig().replace(sampler=WideConfig().sampler.replace(negative_prompt="blurry", batch_size=3))
    with pytest.warns(DeprecationWarning, match=r"`negative_prompt` is now `config.sampler.negative_prompt`"):
        assert config.negative_prompt == "blurry"
    with pytest.warns(DeprecationWarning, match=r"`generation_batch_size` is now `config.sampler.batch_size`"):
        assert config.generation_batch_size == 3
    with pytest.raises(AttributeError, match="learning_rate"):
        config.learning_rate  # noqa: B018 - other names are still missing
    from actionbench.api.config import build_config

    with pytest.raises(ConfigError, match=r"no setting 'negative_prompt' \(`negative_prompt` is now "
                                          r"`config.sampler.negative_prompt`\)"):
        build_config(WideConfig, {"negative_prompt": "blurry"})


def test_an_adapter_written_for_a_newer_interface_is_refused(tmp_path, monkeypatch):
    from actionbench.contract import check_method
    from actionbench.api.registry import get_method

    newer = INTERFACE_VERSION + 1
    source = f"""
        from actionbench.api.method import Method

        class FutureAdapter(Method):
            name = "future"
            interface_version = {newer}
    """
    module = _adapter_module(tmp_path, monkeypatch, "future_interface_adapter", source)
    message = rf"FutureAdapter was written for method interface {newer}, but ActionBench .* implements interface " \
              rf"{INTERFACE_VERSION}; upgrade ActionBench"
    with pytest.raises(RegistryError, match=message):
        get_method(f"{module}:FutureAdapter")
    monkeypatch.delitem(sys.modules, module, raising=False)
    report = check_method(f"{module}:FutureAdapter")
    assert not report.ok and f"interface {newer}" in "\n".join(report.lines())
    with pytest.raises(RegistryError, match="interface_version = 'two'"):
        type("Odd", (Method,), {"interface_version": "two"})
