"""The method contract's edges: images at the backbone's resolution (in ``check-method`` and the runner),
and bring-your-own images no smaller than the documented minimum."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from PIL import Image

from actionbench.errors import ActionBenchError
from actionbench.method import Method, MethodConfig


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
    from actionbench.runner import RunOptions, RunSpec, evaluate

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
