"""Labels in and out: CSV (one row per answer) and Label Studio JSON tasks (one per image).

The CSV is the format to publish human ratings in beside a leaderboard entry: exported with a run
folder (``run``), every answer on that run's images is one row naming its ``unit_id``
(``action/subject/k``), and whoever has the run's images imports it again with the same folder;
each row's unit is checked against the run, and its image must still be the one that was rated.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping

from actionbench.errors import ConfigError

from .store import LabelStore

CSV_COLUMNS = ("item_id", "dataset", "action", "subject", "action_phrase", "subject_name", "annotator", "question",
               "answer", "answered_at", "image", "run", "unit_id")
LS_FROM_NAMES = {"subject": "subject_shown", "action": "action_performed"}
LS_QUESTION_OF = {v: k for k, v in LS_FROM_NAMES.items()}
LS_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Header value="Is $subject_name shown?"/>
  <Choices name="subject_shown" toName="image" choice="single" showInLine="true" required="true">
    <Choice value="yes"/>
    <Choice value="no"/>
  </Choices>
  <Header value="Is the action $action_phrase performed?"/>
  <Choices name="action_performed" toName="image" choice="single" showInLine="true" required="true">
    <Choice value="yes"/>
    <Choice value="no"/>
  </Choices>
</View>
"""


def export_labels(store: LabelStore, out: str | Path, fmt: str = "csv", run=None) -> Path:
    """Write every answer as CSV (one row per answer) or Label Studio JSON tasks (one per image).

    With ``run`` (a ``Run``; CSV only), only the answers on that run's images, one row per unit
    and answer, with ``run`` (the folder's name) and ``unit_id`` filled in.

    Label Studio tasks carry ``data`` (image path, item id, target) and one annotation per
    annotator with two ``choices`` results (``subject_shown``, ``action_performed``); the
    labelling config that matches is ``LS_CONFIG`` (also written beside the JSON).
    """
    from actionbench.io import atomic_write_json, atomic_write_text

    out = Path(out)
    if fmt not in ("csv", "labelstudio"):
        raise ConfigError(f"format must be csv or labelstudio, got {fmt!r}")
    if run is not None and fmt != "csv":
        raise ConfigError("labels of one run folder are exported as CSV only (its rows name the run's units); "
                          "drop the run folder, or use --format csv")
    items = store.items()
    answers = store.all_answers()
    if fmt == "csv":
        # (unit id or "", image path) per item: every unit of the run holding that image, else the item's own image
        places = {i: [("", str(item.path) if item.path else "")] for i, item in items.items()}
        if run is not None:
            places = {}
            for unit_id, item_id in store.unit_items(run).items():
                places.setdefault(item_id, []).append((unit_id, str(run.image_path(_unit(run, unit_id)))))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for a in answers:
            for unit_id, image in places.get(a["item_id"], []):
                writer.writerow({
                    "item_id": a["item_id"], "dataset": a["dataset"], "action": a["action_id"],
                    "subject": a["subject_id"], "action_phrase": a["action_phrase"],
                    "subject_name": a["subject_name"], "annotator": a["annotator"], "question": a["question"],
                    "answer": "yes" if a["answer"] else "no", "answered_at": a["answered_at"], "image": image,
                    "run": run.out.name if run is not None else "", "unit_id": unit_id,
                })
        atomic_write_text(out, buffer.getvalue())
        return out
    annotator_ids = {name: i + 1 for i, name in enumerate(sorted({a["annotator"] for a in answers}))}
    tasks: dict[str, dict] = {}
    for a in answers:
        item = items[a["item_id"]]
        task = tasks.setdefault(item.item_id, {
            "id": len(tasks) + 1,
            "data": {"image": str(item.path) if item.path else "", "item_id": item.item_id, "dataset": item.dataset,
                     "action": item.action_id, "subject": item.subject_id, "action_phrase": item.action_phrase,
                     "subject_name": item.subject_name},
            "annotations": [],
        })
        annotation = next((x for x in task["annotations"] if x["created_username"] == a["annotator"]), None)
        if annotation is None:
            annotation = {"completed_by": annotator_ids[a["annotator"]], "created_username": a["annotator"],
                          "result": [], "was_cancelled": False, "ground_truth": False}
            task["annotations"].append(annotation)
        annotation["result"].append({
            "id": f"{a['question']}-{annotator_ids[a['annotator']]}",
            "from_name": LS_FROM_NAMES[a["question"]], "to_name": "image", "type": "choices",
            "value": {"choices": ["yes" if a["answer"] else "no"]}, "meta": {"answered_at": a["answered_at"]},
        })
        annotation["updated_at"] = max(annotation.get("updated_at", ""), a["answered_at"])
    atomic_write_json(out, list(tasks.values()))
    atomic_write_text(out.with_name(out.stem + ".label_config.xml"), LS_CONFIG)
    return out


def _ls_annotator(annotation: Mapping[str, Any]) -> Any:
    name = annotation.get("created_username")
    if isinstance(name, str) and name.strip():
        return name.strip()
    by = annotation.get("completed_by")
    if isinstance(by, Mapping):
        return by.get("email") or by.get("username") or (f"user-{by['id']}" if "id" in by else None)
    if by is not None:
        return f"user-{by}"
    return None


def read_labelstudio(path: Path) -> list[dict]:
    """Rows for ``LabelStore.import_rows`` from a Label Studio JSON export (tasks with annotations)."""
    from actionbench.io import read_json

    tasks = read_json(path, "Label Studio export")
    if isinstance(tasks, Mapping):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ConfigError(f"{path}: a Label Studio export is a JSON list of tasks")
    rows = []
    for t, task in enumerate(tasks):
        data = task.get("data", {}) if isinstance(task, Mapping) else {}
        base = {
            "item_id": data.get("item_id", ""), "dataset": data.get("dataset", ""), "action": data.get("action", ""),
            "subject": data.get("subject", ""), "action_phrase": data.get("action_phrase", ""),
            "subject_name": data.get("subject_name", ""), "image": _relative_image(data.get("image", ""), path),
        }
        for annotation in task.get("annotations") or task.get("completions") or []:
            if annotation.get("was_cancelled"):
                continue
            annotator = _ls_annotator(annotation)
            for result in annotation.get("result", []):
                question = LS_QUESTION_OF.get(result.get("from_name"))
                choices = (result.get("value") or {}).get("choices") or []
                if question is None or result.get("type", "choices") != "choices" or len(choices) != 1:
                    continue
                stamp = (result.get("meta") or {}).get("answered_at") or annotation.get("updated_at") or ""
                rows.append({**base, "annotator": annotator, "question": question, "answer": choices[0],
                             "answered_at": stamp, "_where": f"task {t + 1}"})
    return rows


def _relative_image(image: str, source: Path) -> str:
    if not image or "://" in image or image.startswith("/data/"):
        return "" if ("://" in image or image.startswith("/data/")) else image
    path = Path(image)
    return str(path if path.is_absolute() else source.parent / path)


def read_csv_labels(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"annotator", "question", "answer"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: CSV lacks column(s) {', '.join(sorted(missing))}; the header must name "
                              "annotator, question and answer, and each image by item_id, by image + dataset + action "
                              f"+ subject, or by unit_id (with --run); all columns: {', '.join(CSV_COLUMNS)} "
                              "(docs/human-eval.md)")
        rows = []
        for row in reader:
            row = {k: (v or "") for k, v in row.items() if k is not None}
            if row.get("image") and not row.get("item_id"):
                row["image"] = _relative_image(row["image"], path)
            row["_where"] = f"row {len(rows) + 1} (line {reader.line_num})"
            rows.append(row)
        return rows


def _unit(run, unit_id: str):
    return next(u for u in run.units() if u.id == unit_id)


def resolve_units(store: LabelStore, rows: list[dict], run, source: Path) -> list[dict]:
    """Rows naming a ``unit_id`` of ``run`` get the item id, target and image of that unit's image.

    Raises:
        ConfigError: a unit the run does not have, a unit whose image is missing, or an ``item_id`` that
            is not the unit's image now (regenerated since it was rated); the file and row are named.
    """
    units = {u.id: u for u in run.units()}
    items = store.unit_items(run)
    out = []
    for row in rows:
        unit_id = (row.get("unit_id") or "").strip()
        if not unit_id:
            out.append(row)
            continue
        where = f"{source} {row.get('_where', '')}".strip()
        unit = units.get(unit_id)
        if unit is None:
            raise ConfigError(f"{where}: unit {unit_id!r} is not a unit of the run {run.out} (its units look like "
                              f"{', '.join(list(units)[:2])}); import with the run folder the labels were exported "
                              "from (--run)")
        if unit_id not in items:
            raise ConfigError(f"{where}: unit {unit_id} has no image in {run.out} ({run.image_path(unit)}); import "
                              "with the run folder that holds the rated images")
        given = (row.get("item_id") or "").strip()
        if given and given != items[unit_id]:
            raise ConfigError(f"{where}: unit {unit_id}'s image in {run.out} is not the image these labels were given "
                              f"to (item {given}; the image there now is item {items[unit_id]}): it was regenerated "
                              "since it was rated, so the labels do not belong to it")
        action, subject = run.dataset.action(unit.action_id), run.dataset.subject(unit.subject_id)
        out.append({**row, "item_id": items[unit_id], "dataset": run.dataset.name, "action": unit.action_id,
                    "subject": unit.subject_id, "action_phrase": action.phrase, "subject_name": subject.name,
                    "image": str(run.image_path(unit))})
    return out


def import_labels(store: LabelStore, path: str | Path, fmt: str = "auto", run=None) -> int:
    """Import answers from CSV or a Label Studio JSON export; returns how many rows were stored.

    With ``run`` (a ``Run``), CSV rows may name their image by ``unit_id`` alone (``resolve_units``).
    Every row is checked before any is stored: a bad row imports nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"labels file not found: {path}")
    if fmt == "auto":
        fmt = "labelstudio" if path.suffix.lower() == ".json" else "csv"
    if fmt == "csv":
        rows = read_csv_labels(path)
    elif fmt == "labelstudio":
        rows = read_labelstudio(path)
    else:
        raise ConfigError(f"format must be auto, csv or labelstudio, got {fmt!r}")
    if run is not None:
        rows = resolve_units(store, rows, run, path)
    else:
        unresolved = next((r for r in rows if (r.get("unit_id") or "").strip() and not (r.get("item_id") or "").strip()
                           and not (r.get("image") or "").strip()), None)
        if unresolved is not None:
            raise ConfigError(f"{path} {unresolved.get('_where', '')}: the row names unit {unresolved['unit_id']} but no "
                              "item_id or image; import with the run folder that holds its image (--run RUN_DIR)")
    return store.import_rows(rows, source=str(path))
