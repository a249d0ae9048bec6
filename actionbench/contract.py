"""``actionbench check-method``: run any method adapter through the interface contract.

On the tiny backbone and the synthetic set (no download, CPU), with the smoke preset:
the config is a frozen dataclass, customize writes a loadable artifact, generate returns
one image per seed, the same seed gives the same image, and the artifact reloads to the
same images. Each failure says what to fix.
"""
from __future__ import annotations

import dataclasses
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ContractReport:
    method: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks) and bool(self.checks)

    def add(self, name: str, passed: bool, message: str = "") -> bool:
        self.checks.append((name, passed, message))
        return passed

    def lines(self) -> list[str]:
        out = [f"contract check of {self.method}:"]
        for name, passed, message in self.checks:
            out.append(f"  {'PASS' if passed else 'FAIL'}  {name}" + (f": {message}" if message else ""))
        out.append("all checks passed" if self.ok else "some checks failed")
        return out


def image_problems(images, expected: int, resolution: int) -> list[str]:
    """What is wrong with a ``generate`` result: the count, the type, the mode, and the size of each image,
    which must be the backbone's ``resolution`` on both sides (judges and grids compare images of one size).

    The runner checks every batch with this before saving; ``check-method`` reports it per check."""
    from PIL import Image

    if not isinstance(images, (list, tuple)):
        return [f"generate must return a list of PIL images, got {type(images).__name__}"]
    problems = []
    if len(images) != expected:
        problems.append(f"returned {len(images)} images for {expected} seeds (one per seed, in order)")
    for i, image in enumerate(images):
        if not isinstance(image, Image.Image):
            problems.append(f"image {i} is a {type(image).__name__}, not a PIL image")
        elif image.mode != "RGB":
            problems.append(f"image {i} has mode {image.mode}, not RGB (image.convert('RGB'))")
    sizes = sorted({image.size for image in images if isinstance(image, Image.Image)})
    wrong = [f"{w}x{h}" for w, h in sizes if (w, h) != (resolution, resolution)]
    if wrong:
        problems.append(f"images are {', '.join(wrong)} pixels, expected {resolution}x{resolution} (the backbone's "
                        "resolution); draw at self.backbone.resolution, as actionbench.training.sample_images does")
    return problems


def check_method(name: str, workdir: str | Path | None = None, action_id: str = "cheer") -> ContractReport:
    """Run a method through the contract; its outputs go to ``workdir`` (kept) or a temporary folder
    (removed afterwards)."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return _check_method(name, Path(workdir), action_id)
    with tempfile.TemporaryDirectory(prefix="actionbench-check-") as folder:
        return _check_method(name, Path(folder), action_id)


def _check_method(name: str, folder: Path, action_id: str) -> ContractReport:
    import numpy as np

    from .backbone import load_backbone
    from .dataset import load_dataset
    from .api.method import INTERFACE_VERSION, Artifact, Method, MethodConfig, build_config, interface_notice
    from .api.registry import get_method

    report = ContractReport(name)
    try:
        cls = get_method(name)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a report line
        report.add("resolve", False, str(exc))
        return report
    report.add("resolve", True, f"{cls.__module__}:{cls.__qualname__}")
    report.add("subclass of Method", issubclass(cls, Method))
    if issubclass(cls, Method):  # a newer interface than this ActionBench's already failed to resolve
        note = interface_notice(cls)
        report.add(f"written for method interface {INTERFACE_VERSION}", True, f"deprecated: {note}" if note else "")
    if not report.add("has a registry name", isinstance(getattr(cls, "name", None), str) and bool(cls.name),
                      "set the class attribute `name = \"my_method\"`"):
        return report
    config_ok = dataclasses.is_dataclass(cls.Config) and issubclass(cls.Config, MethodConfig)
    frozen = config_ok and cls.Config.__dataclass_params__.frozen
    if not report.add("Config is a frozen dataclass deriving from MethodConfig", bool(frozen),
                      "declare `@dataclass(frozen=True) class MyConfig(MethodConfig): ...` and set `Config = MyConfig`"):
        return report
    try:
        config = build_config(cls.Config, preset="smoke")
    except Exception as exc:  # noqa: BLE001
        report.add("smoke preset", False, f"{exc}; make every field have a default")
        return report
    report.add("smoke preset", True)

    dataset = load_dataset("synthetic")
    action, subject = dataset.action(action_id), dataset.subjects[0]
    backbone = load_backbone("tiny")
    method = cls(backbone, config)
    target = folder / f"artifact-{action_id}"
    try:
        if target.exists():
            import shutil

            shutil.rmtree(target)
        artifact = method.customize(action, target)
    except Exception:  # noqa: BLE001
        report.add("customize", False, traceback.format_exc(limit=3).strip().splitlines()[-1])
        return report
    report.add("customize returns an Artifact saved in out_dir",
               isinstance(artifact, Artifact) and (target / "artifact.json").is_file(),
               "" if isinstance(artifact, Artifact) else "return self.new_artifact(action, tensors=...).save(out_dir)")
    try:
        reloaded = Artifact.load(target)
        report.add("artifact reloads from safetensors + JSON", True)
    except Exception as exc:  # noqa: BLE001
        report.add("artifact reloads from safetensors + JSON", False, str(exc))
        return report
    seeds = [11, 12]
    try:
        images = method.generate(artifact, subject, seeds)
        again = method.generate(reloaded, subject, seeds)
    except Exception:  # noqa: BLE001
        report.add("generate", False, traceback.format_exc(limit=3).strip().splitlines()[-1])
        return report
    problems = image_problems(images, len(seeds), backbone.resolution)
    if not report.add("generate returns one RGB PIL image per seed, at the backbone's resolution", not problems,
                      f"method {name}: " + "; ".join(problems) if problems else ""):
        return report
    problems = image_problems(again, len(seeds), backbone.resolution)
    if problems:
        report.add("generate after reloading the artifact", False, f"method {name}: " + "; ".join(problems))
        return report
    same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))
    report.add("same seed gives the same image (also after reload)", same,
               "" if same else "seed every random draw from the given seeds (actionbench.training.sample_images does)")
    distinct = not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    report.add("different seeds give different images", distinct)
    return report
