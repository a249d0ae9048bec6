"""Bring your own images: judge images made elsewhere with ActionBench's judges.

Two ways to describe the images:

* a folder laid out as ``ACTION/SUBJECT/K.<ext>`` (any common image extension; ``K`` is the
  image's number within the pair, ``0`` .. ``images_per_pair - 1``, i.e. ``0`` and ``1`` for
  the 2 images per pair of ActionBench's protocol); other files (a README, ``.DS_Store``) are
  ignored;
* a CSV with columns ``image,action,subject[,k]`` (image paths relative to the CSV file;
  without ``k`` the images of a pair are numbered in row order).

Action and subject ids are checked against the dataset first; an unknown id stops with an
error naming the file (or CSV line) and the valid ids. The images are then copied into a
standard run folder (``OUT/images/<action>/<subject>/<k>.png``, each written atomically;
non-PNG images are converted, pixels unchanged) whose ``spec.json`` records method
``external`` with ``method_config = {"source": <path>}`` and the hash of the images, and
judged like any run. Partial coverage is fine: the results hold records only for the images
given, ``complete`` is false, and the command says so.

Every image is opened and checked before the first one is copied: an unreadable image, or one
smaller than ``MIN_SIDE`` pixels on its short side, stops the import with nothing copied.
"""
from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .dataset import Dataset, GenerationUnit, load_dataset
from .errors import ActionBenchError, DatasetError
from .hashing import sha256_file, stable_hash, to_jsonable
from .api.spec import DEFAULT_JUDGE
from .io import atomic_write_bytes, atomic_write_json, load_image, save_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
METHOD = "external"
MIN_SIDE = 32
"""Smallest short side (pixels) of an image to judge: the mini world draws 32 px; a thumbnail below that
says too little about a pose or a subject for any judge's verdict to mean something."""


@dataclass(frozen=True)
class GivenImage:
    unit: GenerationUnit
    path: Path
    where: str  # the file, or "file.csv line N", for error messages


def _valid(dataset: Dataset, where: str, action_id: str, subject_id: str) -> None:
    if action_id not in {a.id for a in dataset.actions}:
        raise DatasetError(f"{where}: unknown action '{action_id}' for dataset {dataset.name}; "
                           f"valid actions: {', '.join(a.id for a in dataset.actions)}")
    if subject_id not in {s.id for s in dataset.subjects}:
        raise DatasetError(f"{where}: unknown subject '{subject_id}' for dataset {dataset.name}; "
                           f"valid subjects: {', '.join(s.id for s in dataset.subjects)}")


def _k(dataset: Dataset, where: str, text: str) -> int:
    n = dataset.protocol.images_per_pair
    try:
        k = int(str(text).strip())
    except ValueError:
        k = -1
    if not 0 <= k < n:
        raise DatasetError(f"{where}: image number must be 0..{n - 1} (the protocol has {n} images per action and "
                           f"subject, numbered from 0), got {text!r}")
    return k


def _unit(dataset: Dataset, action_id: str, subject_id: str, k: int) -> GenerationUnit:
    return GenerationUnit(action_id, subject_id, k, dataset.protocol.seed(action_id, subject_id, k))


def read_folder(root: Path, dataset: Dataset) -> list[GivenImage]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if len(rel.parts) != 3:
            raise DatasetError(f"{path}: images go in ACTION/SUBJECT/K{path.suffix} under {root} "
                               f"(e.g. {dataset.actions[0].id}/{dataset.subjects[0].id}/0.png)")
        action_id, subject_id, _ = rel.parts
        _valid(dataset, str(path), action_id, subject_id)
        out.append(GivenImage(_unit(dataset, action_id, subject_id, _k(dataset, str(path), path.stem)), path,
                              str(path)))
    return out


def read_csv(csv_path: Path, dataset: Dataset) -> list[GivenImage]:
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("image", "action", "subject") if c not in columns]
        if missing:
            raise DatasetError(f"{csv_path}: CSV lacks column(s) {', '.join(missing)}; "
                               "expected columns image,action,subject[,k]")
        out = []
        counters: dict[tuple[str, str], int] = {}
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            where = f"{csv_path} line {line}"
            if not any(row.values()):
                continue
            _valid(dataset, where, row["action"], row["subject"])
            image = Path(row["image"])
            if not image.is_absolute() and ".." in image.parts:
                raise DatasetError(f"{where}: image path {row['image']!r} climbs out of the CSV's folder with '..'; "
                                   "give a path inside that folder, or an absolute path")
            path = image if image.is_absolute() else csv_path.parent / image
            if not path.is_file():
                raise DatasetError(f"{where}: image {row['image']} not found (looked at {path}; paths are relative "
                                   "to the CSV file)")
            pair = (row["action"], row["subject"])
            if row.get("k", ""):
                k = _k(dataset, where, row["k"])
            else:
                k = _k(dataset, where, str(counters.get(pair, 0)))
                counters[pair] = k + 1
            out.append(GivenImage(_unit(dataset, row["action"], row["subject"], k), path, where))
        return out


def read_images(source: str | Path, dataset: Dataset) -> list[GivenImage]:
    """The images a folder or CSV describes, validated against ``dataset`` (ids, numbering, duplicates)."""
    source = Path(source)
    if source.is_dir():
        given = read_folder(source, dataset)
    elif source.is_file() and source.suffix.lower() == ".csv":
        given = read_csv(source, dataset)
    else:
        raise ActionBenchError(f"{source} is neither a folder of ACTION/SUBJECT/K.png images nor a .csv file")
    if not given:
        raise DatasetError(f"no images found in {source}; expected ACTION/SUBJECT/K.png "
                           f"(e.g. {dataset.actions[0].id}/{dataset.subjects[0].id}/0.png) or a CSV with "
                           "columns image,action,subject[,k]")
    seen: dict[str, GivenImage] = {}
    for g in given:
        if g.unit.id in seen:
            raise DatasetError(f"{g.where} and {seen[g.unit.id].where} are both image {g.unit.id}; "
                               "keep one image per action, subject and number")
        seen[g.unit.id] = g
    return given


def _check_image(g: GivenImage) -> None:
    """Refuse an image that cannot be judged: unreadable, or under ``MIN_SIDE`` on its short side."""
    try:
        width, height = load_image(g.path).size
    except ActionBenchError as exc:  # your file: say which row or path, never advise deleting it
        raise ActionBenchError(f"{g.where}: {g.path} cannot be judged: {str(exc).split(';')[0]}; "
                               "fix that row or file (nothing was copied)") from None
    if min(width, height) < MIN_SIDE:
        raise ActionBenchError(f"{g.where}: {g.path} is {width}x{height} pixels; images to judge need at least "
                               f"{MIN_SIDE} pixels on the short side; give the image at the size it was generated "
                               "(nothing was copied)")


def byo_spec(source: Path, dataset: Dataset, given: list[GivenImage]) -> dict:
    """The spec of an external run: the source, the dataset, and the hash of the given images."""
    digest = hashlib.sha256()
    for g in sorted(given, key=lambda g: g.unit.id):
        digest.update(f"{g.unit.id}:{sha256_file(g.path)}\n".encode())
    config = {"source": str(source.resolve())}
    return {
        "method": METHOD,
        "method_class": METHOD,
        "method_version": METHOD,
        "method_config": config,
        "config_hash": stable_hash(config),
        "backbone": {"id": METHOD},
        "dataset": dataset.name,
        "manifest_sha256": dataset.manifest_sha256,
        "protocol": to_jsonable(dataset.protocol),
        "preset": None,
        "images_sha256": digest.hexdigest(),
        "images_given": len(given),
    }


def import_images(source: str | Path, dataset: str = "v1", out: str | Path | None = None,
                  data_root: str | Path | None = None):
    """Validate the images and lay them out as a run folder (no judging); returns the ``Run``.

    Reusing ``out`` with the same images only fills in what is missing; different images (or a
    different dataset) in an existing folder is an error, never a silent mix.
    """
    from .run.runfolder import SPEC_FILE, check_run_folder, check_same_spec, remove_run_temporaries, remove_written
    from .run.runner import open_existing_run

    source = Path(source)
    data = load_dataset(dataset, root=data_root)
    given = read_images(source, data)
    for g in given:  # all checked before one is copied, so a refused import leaves nothing behind
        _check_image(g)
    spec = byo_spec(source, data, given)
    out = Path(out) if out is not None else Path("runs") / f"byo-{spec['images_sha256'][:10]}"
    check_run_folder(out)
    spec_known = check_same_spec(out, spec)
    remove_run_temporaries(out)
    created = not out.exists()
    written: list[Path] = []
    try:
        for g in given:
            target = out / "images" / g.unit.action_id / g.unit.subject_id / f"{g.unit.k}.png"
            if target.is_file():
                continue
            if g.path.suffix.lower() == ".png":
                atomic_write_bytes(target, g.path.read_bytes())
            else:
                save_image(load_image(g.path), target)
            written.append(target)
    except BaseException:
        remove_written(out, written, created)
        raise
    if not spec_known:
        atomic_write_json(out / SPEC_FILE, spec)  # written last: a folder with a spec holds every image
    return open_existing_run(out, data_root=data_root)


def judge_images(images: str | Path, dataset: str = "v1", judge_name: str = DEFAULT_JUDGE, out: str | Path | None = None,
                 device: str = "cpu", data_root: str | Path | None = None,
                 judge_options: Mapping[str, Any] | None = None) -> Path:
    """Judge your own images (a folder ``ACTION/SUBJECT/K.png`` or a CSV) and write ``results.json``.

    Returns the path of ``results.json`` in the run folder (default ``runs/byo-<hash>``).
    """
    from .results.record import now_iso
    from .run.runner import judge, judge_key, make_evaluator, write_results

    started, t0 = now_iso(), time.perf_counter()
    run = import_images(images, dataset=dataset, out=out, data_root=data_root)
    evaluator = make_evaluator(judge_name, run.dataset, device, judge_options)
    judge(run, evaluator)
    path = write_results(run, evaluator, started, time.perf_counter() - t0)
    judged = sum(1 for u in run.units() if run.judgment_path(judge_key(evaluator), u).exists())
    total = len(run.units())
    if judged < total:
        print(f"note: {judged} of the protocol's {total} images were given; {path} holds records for those only "
              "and is marked complete: false (its metrics are not comparable with full runs)")
    return path
