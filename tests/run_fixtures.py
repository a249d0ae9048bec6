"""Run folders made the way the runner makes them, without a model (not part of the library).

Images are painted per unit; a judge that reads the colour of the first pixel judges them through
the runner's own ``judge`` and ``write_results``. So the folders hold what a real run holds
(spec.json, images, judgment files, results.json with image hashes, record-set hash, floor and
machine), in seconds, for tests of results, validate, the leaderboard, rejudge and reproduce.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from actionbench.dataset import load_dataset
from actionbench.api.evaluator import Evaluator, Judgment, image_of
from actionbench.hashing import stable_hash, to_jsonable
from actionbench.io import atomic_write_json, save_image

COLOUR_JUDGE = f"{__name__}:ColourJudge"
DATASET = "synthetic"


class ColourJudge(Evaluator):
    """Action right when the first pixel's blue is high, subject right when its green is; records its
    predicted classes as the CLIP judges do (``action_pred``, ``subject_pred``)."""

    name = "colour"
    VERSION = "1"

    def judge(self, requests):
        out = []
        for request in requests:
            _, green, blue = image_of(request).getpixel((0, 0))
            action_ok, subject_ok = blue >= 128, green >= 128
            detail = {"action_pred": request.action_id if action_ok else "none",
                      "subject_pred": request.subject_id if subject_ok else "none"}
            out.append(Judgment(request.unit_id, action_ok, subject_ok, detail))
        return out


class ColourJudgeV2(ColourJudge):
    """The same judge, another version (a new judge version starts a new leaderboard table)."""

    VERSION = "2"


def paint(action_ok: bool, subject_ok: bool, shade: int = 40) -> Image.Image:
    """A 16-pixel image the ``ColourJudge`` reads as ``(action_ok, subject_ok)``."""
    return Image.new("RGB", (16, 16), (shade, 255 if subject_ok else 0, 255 if action_ok else 0))


def recorded_spec(method: str = "sd", preset: str | None = None, backbone: str = "mini",
                  train_seeds: Sequence[int] | None = None, extra: dict | None = None, **config_changes) -> dict:
    """A spec.json as ``actionbench.api.spec.recorded_spec`` writes it, for the synthetic dataset."""
    from actionbench.api.registry import get_method

    dataset = load_dataset(DATASET)
    method_cls = get_method(method)
    config = method_cls.Config().replace(**config_changes).to_dict()
    spec = {"method": method, "method_class": f"{method_cls.__module__}:{method_cls.__qualname__}",
            "method_version": method_cls.VERSION, "method_config": config, "config_hash": stable_hash(config),
            "backbone": {"id": backbone, "resolution": 16, "dtype": "float32"}, "dataset": DATASET,
            "manifest_sha256": dataset.manifest_sha256, "protocol": to_jsonable(dataset.protocol), "suite": None,
            "preset": preset}
    if train_seeds:
        spec["train_seeds"] = list(train_seeds)
    spec.update(extra or {})
    return spec


def make_run(root: Path, name: str, right: Callable = lambda a, s, k, seed: True, keep: Callable | None = None,
             shade: int = 40, judge: type = ColourJudge, artifacts: bool | None = None, **spec_options) -> Path:
    """A finished run folder ``root/name``: every unit (for which ``keep(unit)``) painted as
    ``right(action, subject, k, train_seed) -> bool or (action_ok, subject_ok)``, judged by ``judge``,
    results written. With ``artifacts``, each action gets an ``artifact.json`` as ``Artifact.save`` writes it; by
    default where the method trains, since ``leaderboard --add`` wants a trained method's artifacts."""
    from actionbench.results.record import now_iso
    from actionbench.run.runner import judge as judge_run, open_existing_run, write_results

    out = Path(root) / name
    out.mkdir(parents=True, exist_ok=True)
    spec = recorded_spec(**spec_options)
    atomic_write_json(out / "spec.json", spec)
    run = open_existing_run(out)
    if artifacts is None:
        from actionbench.evidence import trains

        artifacts = trains(spec)
    if artifacts:
        from actionbench.api.registry import get_method

        for seed in run.train_seeds:
            for action in run.dataset.actions:
                config = dict(spec["method_config"], **({} if seed is None else {"seed": seed}))
                atomic_write_json(run.artifact_dir(action.id, seed) / "artifact.json", {
                    "schema_version": 1, "method": get_method(spec["method"]).name, "method_version": "1",
                    "action_id": action.id, "config": config, "config_hash": stable_hash(config),
                    "backbone": spec["backbone"], "meta": {}, "tensors": {}})
    for unit in run.units():
        if keep is not None and not keep(unit):
            continue
        ok = right(unit.action_id, unit.subject_id, unit.k, unit.train_seed)
        ok = (ok, ok) if isinstance(ok, bool) else ok
        save_image(paint(*ok, shade=shade), run.image_path(unit))
    evaluator = judge(run.dataset)
    for stage in ("customize", "generate"):  # painted, not learned or sampled: no time, but the stages ran
        run.add_stage_time(stage, 0.0)
    judge_run(run, evaluator)
    write_results(run, evaluator, now_iso(), 1.0)
    return out


def copy_run(source: Path, root: Path, name: str | None = None) -> Path:
    """A copy of a run folder (to edit without touching a shared fixture)."""
    target = Path(root) / (name or source.name)
    shutil.copytree(source, target)
    return target


def reseal(results: dict) -> dict:
    """What a careful forger does after editing records: recompute the metrics, the derived blocks, the
    record-set hash and the coverage count, so the file is consistent with itself again."""
    from actionbench.results.metrics import compute_metrics
    from actionbench.results.schema import derived_blocks, record_set_sha256

    records = results["records"]
    results["metrics"] = compute_metrics(records)
    results.update(derived_blocks(records))
    results["records_sha256"] = record_set_sha256(records)
    results["coverage"]["recorded"] = len(records)
    return results
