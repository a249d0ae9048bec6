"""Labels in and out: CSV (one row per answer) and Label Studio JSON tasks (one per image)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping

from actionbench.errors import ConfigError

from .store import LabelStore

CSV_COLUMNS = ("item_id", "dataset", "action", "subject", "action_phrase", "subject_name", "annotator", "question",
               "answer", "answered_at", "image")
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


def export_labels(store: LabelStore, out: str | Path, fmt: str = "csv") -> Path:
    """Write every answer as CSV (one row per answer) or Label Studio JSON tasks (one per image).

    Label Studio tasks carry ``data`` (image path, item id, target) and one annotation per
    annotator with two ``choices`` results (``subject_shown``, ``action_performed``); the
    labelling config that matches is ``LS_CONFIG`` (also written beside the JSON).
    """
    from actionbench.io import atomic_write_json, atomic_write_text

    out = Path(out)
    items = store.items()
    answers = store.all_answers()
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for a in answers:
            path = items[a["item_id"]].path
            writer.writerow({
                "item_id": a["item_id"], "dataset": a["dataset"], "action": a["action_id"], "subject": a["subject_id"],
                "action_phrase": a["action_phrase"], "subject_name": a["subject_name"], "annotator": a["annotator"],
                "question": a["question"], "answer": "yes" if a["answer"] else "no",
                "answered_at": a["answered_at"], "image": str(path) if path else "",
            })
        atomic_write_text(out, buffer.getvalue())
        return out
    if fmt != "labelstudio":
        raise ConfigError(f"format must be csv or labelstudio, got {fmt!r}")
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
            raise ConfigError(f"{path}: CSV lacks column(s) {', '.join(sorted(missing))}; columns: "
                              f"{', '.join(CSV_COLUMNS)} (item_id, or image + dataset + action + subject)")
        rows = []
        for row in reader:
            row = {k: (v or "") for k, v in row.items() if k is not None}
            if row.get("image") and not row.get("item_id"):
                row["image"] = _relative_image(row["image"], path)
            rows.append(row)
        return rows


def import_labels(store: LabelStore, path: str | Path, fmt: str = "auto") -> int:
    """Import answers from CSV or a Label Studio JSON export; returns how many rows were stored."""
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
    return store.import_rows(rows, source=str(path))
