"""Human evaluation: a SQLite label store, a blinded local annotation page, and the ``human`` judge.

Storage (one SQLite file, default ``labels.sqlite``)::

    items      item_id (opaque), dataset, action_id, subject_id, action_phrase, subject_name, pixel_sha256
    sources    run_dir, unit_id -> item_id, path         (server side only: never sent to the page)
    answers    item_id, annotator, question ('subject' | 'action'), answer (0/1), answered_at, seq
               one row per (item, annotator, question); PRIMARY KEY on the three
    annotators name, created_at
    image_hashes  cache of pixel hashes by path, size and mtime

An item's id is a hash of the dataset, the target action and subject, and the image's decoded
pixels, so the same image asked about the same target is one item whichever run (or copy of a
run) it came from, the id says nothing about the method, and the ``human`` judge finds the
labels of an image again from the image alone. Every answer is its own transaction in WAL mode
with ``synchronous=FULL``: once the page shows an answer as saved it survives a killed server
or a closed browser tab.

The page (``actionbench annotate RUN_DIR...``) pools the images of every given run, shows
them one at a time in an order seeded by the annotator's name (a hash of name and item id,
so each annotator has a fixed random order and resuming continues in it), serves images by
item id only, and asks two yes/no questions per image. See ``docs/human-eval.md``.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import hashlib
import io
import json
import mimetypes
import os
import sqlite3
import threading
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlparse

from actionbench.errors import ActionBenchError, ConfigError

from actionbench.evaluator import Evaluator, JudgeRequest, Judgment

QUESTIONS = ("subject", "action")  # asked in this order for every image
DEFAULT_DB = "labels.sqlite"
LABELS_DB_ENV = "ACTIONBENCH_LABELS_DB"
TIE_RULES = ("no", "yes", "exclude")
STORE_SCHEMA_VERSION = "1"
MAX_NAME = 64
IMPORTED = "(imported)"  # sources.run_dir of images named by imported labels

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    action_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    action_phrase TEXT NOT NULL,
    subject_name TEXT NOT NULL,
    pixel_sha256 TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    run_dir TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (run_dir, unit_id)
);
CREATE TABLE IF NOT EXISTS image_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, pixel_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS annotators (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    item_id TEXT NOT NULL,
    annotator TEXT NOT NULL,
    question TEXT NOT NULL CHECK (question IN ('subject', 'action')),
    answer INTEGER NOT NULL CHECK (answer IN (0, 1)),
    answered_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (item_id, annotator, question)
);
CREATE INDEX IF NOT EXISTS answers_by_annotator ON answers (annotator, seq);
"""
# One row per (item, annotator, question): answering again replaces the answer and moves it to the end (seq).
_UPSERT_ANSWER = (
    "INSERT INTO answers (item_id, annotator, question, answer, answered_at, seq) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (item_id, annotator, question) DO UPDATE SET answer = excluded.answer, "
    "answered_at = excluded.answered_at, seq = excluded.seq"
)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def pixel_sha256(image) -> str:
    """SHA-256 of an image's decoded RGB pixels and size (PNG/JPEG container bytes do not matter)."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.size[0]}x{rgb.size[1]}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def make_item_id(dataset: str, action_id: str, subject_id: str, pixels: str) -> str:
    """The opaque id of (image, target): what the page and the URLs use instead of any path."""
    return hashlib.sha256(f"{dataset}|{action_id}|{subject_id}|{pixels}".encode()).hexdigest()[:20]


def check_annotator(name: Any) -> str:
    """A trimmed annotator name, 1..64 printable characters."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("an annotator name is required (type your name in the page's name field)")
    name = " ".join(name.split())
    if len(name) > MAX_NAME or any(not ch.isprintable() for ch in name):
        raise ConfigError(f"annotator name must be at most {MAX_NAME} printable characters, got {name[:80]!r}")
    return name


def check_question(question: Any) -> str:
    if question not in QUESTIONS:
        raise ConfigError(f"question must be one of {', '.join(QUESTIONS)}, got {question!r}")
    return question


def check_ties(ties: str) -> str:
    if ties not in TIE_RULES:
        raise ConfigError(f"ties must be one of {', '.join(TIE_RULES)}, got {ties!r}")
    return ties


def majority(votes: Sequence[bool], ties: str = "no") -> bool | None:
    """Majority of yes/no votes. A tie gives ``False`` (ties='no'), ``True`` ('yes') or ``None`` ('exclude').

    No votes at all gives ``None``.
    """
    check_ties(ties)
    yes = sum(1 for v in votes if v)
    no = len(votes) - yes
    if not votes:
        return None
    if yes != no:
        return yes > no
    return {"no": False, "yes": True, "exclude": None}[ties]


@dataclass(frozen=True)
class Item:
    """One image to annotate, as the server knows it (the path never leaves the server)."""

    item_id: str
    dataset: str
    action_id: str
    subject_id: str
    action_phrase: str
    subject_name: str
    path: Path | None = None


class LabelStore:
    """The SQLite file of items and answers. Safe to use from several threads and processes.

    Every method opens its own short-lived connection, so a store object can be shared by the
    server's request threads; every write is one ``BEGIN IMMEDIATE`` transaction committed before
    the method returns.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, create: bool = True):
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise ActionBenchError(
                    f"no labels database at {self.path}; annotate first with "
                    f"`actionbench annotate RUN_DIR --db {self.path}` (or import labels with "
                    f"`actionbench import-labels --db {self.path} FILE`)"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.executescript(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                            (STORE_SCHEMA_VERSION,))
            elif row[0] != STORE_SCHEMA_VERSION:
                raise ActionBenchError(
                    f"labels database {self.path} has schema version {row[0]}, this ActionBench reads "
                    f"{STORE_SCHEMA_VERSION}; upgrade actionbench, or export the labels with the version that "
                    "wrote them and import them into a new database"
                )

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise ActionBenchError(f"cannot open labels database {self.path}: {exc}") from exc
        try:
            con.execute("PRAGMA busy_timeout = 30000")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = FULL")
            yield con
        except sqlite3.DatabaseError as exc:
            raise ActionBenchError(f"labels database {self.path}: {exc}") from exc
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success (the answer is on disk when this returns)."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # --- items -------------------------------------------------------------------------------

    def pixel_hash(self, path: str | Path, con: sqlite3.Connection | None = None) -> str:
        """The pixel hash of an image file, cached by (path, size, mtime)."""
        from actionbench.io import load_image

        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        with (contextlib.nullcontext(con) if con is not None else self.connect()) as c:
            row = c.execute("SELECT size, mtime_ns, pixel_sha256 FROM image_hashes WHERE path = ?", (key,)).fetchone()
            if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
                return row[2]
            digest = pixel_sha256(load_image(path))
            c.execute("INSERT OR REPLACE INTO image_hashes (path, size, mtime_ns, pixel_sha256) VALUES (?, ?, ?, ?)",
                      (key, stat.st_size, stat.st_mtime_ns, digest))
            return digest

    def pixel_hashes(self, paths: Iterable[str | Path]) -> dict[Path, str]:
        """Pixel hashes of many image files: one read of the cache, one write transaction for new ones."""
        from actionbench.io import load_image

        wanted = {Path(p).resolve() for p in paths}
        with self.connect() as con:
            cached = {Path(r[0]): (r[1], r[2], r[3]) for r in
                      con.execute("SELECT path, size, mtime_ns, pixel_sha256 FROM image_hashes")}
        out, new = {}, []
        for path in sorted(wanted):
            stat = path.stat()
            row = cached.get(path)
            if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
                out[path] = row[2]
            else:
                out[path] = pixel_sha256(load_image(path))
                new.append((str(path), stat.st_size, stat.st_mtime_ns, out[path]))
        if new:
            with self.transaction() as con:
                con.executemany("INSERT OR REPLACE INTO image_hashes (path, size, mtime_ns, pixel_sha256) "
                                "VALUES (?, ?, ?, ?)", new)
        return out

    def item_ids_of(self, dataset: str, targets: Sequence[tuple[str, str, Any]]) -> list[str]:
        """Item ids of many (action id, subject id, image path or PIL image) at once."""
        hashes = self.pixel_hashes([t[2] for t in targets if isinstance(t[2], (str, Path))])
        return [make_item_id(dataset, a, s, hashes[Path(im).resolve()] if isinstance(im, (str, Path))
                             else pixel_sha256(im)) for a, s, im in targets]

    def item_id_of(self, dataset: str, action_id: str, subject_id: str, image) -> str:
        """The item id of an image (a path, or a PIL image) asked about (action, subject)."""
        if isinstance(image, (str, Path)):
            pixels = self.pixel_hash(image)
        else:
            pixels = pixel_sha256(image)
        return make_item_id(dataset, action_id, subject_id, pixels)

    def register_run(self, run) -> list[Item]:
        """Add every existing image of a run folder as an item (idempotent); returns its items."""
        dataset = run.dataset
        run_dir = str(Path(run.out).resolve())
        units = [u for u in run.units() if run.image_path(u).is_file()]
        # Hash first (decoding hundreds of images takes seconds), so the write lock is held only for the inserts.
        by_path = self.pixel_hashes(run.image_path(u) for u in units)
        hashes = {u.id: by_path[run.image_path(u).resolve()] for u in units}
        out: list[Item] = []
        added = now_iso()
        with self.transaction() as con:
            for unit in units:
                path = run.image_path(unit).resolve()
                pixels = hashes[unit.id]
                action, subject = dataset.action(unit.action_id), dataset.subject(unit.subject_id)
                item = Item(make_item_id(dataset.name, unit.action_id, unit.subject_id, pixels), dataset.name,
                            unit.action_id, unit.subject_id, action.phrase, subject.name, path)
                con.execute(
                    "INSERT OR IGNORE INTO items (item_id, dataset, action_id, subject_id, action_phrase, subject_name,"
                    " pixel_sha256, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (item.item_id, item.dataset, item.action_id, item.subject_id, item.action_phrase,
                     item.subject_name, pixels, added),
                )
                con.execute("INSERT OR REPLACE INTO sources (run_dir, unit_id, item_id, path) VALUES (?, ?, ?, ?)",
                            (run_dir, unit.id, item.item_id, str(path)))
                out.append(item)
        return out

    def items(self) -> dict[str, Item]:
        with self.connect() as con:
            rows = con.execute("SELECT item_id, dataset, action_id, subject_id, action_phrase, subject_name FROM items")
            items = {r[0]: Item(*r) for r in rows}
            for item_id, path in con.execute("SELECT item_id, path FROM sources ORDER BY run_dir, unit_id"):
                item = items.get(item_id)
                if item is not None and item.path is None:
                    items[item_id] = replace(item, path=Path(path))
        return items

    def run_dirs(self) -> list[Path]:
        """Run folders whose images were registered (by ``annotate``), in name order."""
        with self.connect() as con:
            rows = con.execute("SELECT DISTINCT run_dir FROM sources WHERE run_dir != ? ORDER BY run_dir", (IMPORTED,))
            return [Path(r[0]) for r in rows]

    def sources(self, run_dir: str | Path) -> dict[str, str]:
        """unit id -> item id for a registered run folder."""
        with self.connect() as con:
            rows = con.execute("SELECT unit_id, item_id FROM sources WHERE run_dir = ?",
                               (str(Path(run_dir).resolve()),))
            return dict(rows.fetchall())

    # --- answers -----------------------------------------------------------------------------

    def answer(self, item_id: str, annotator: str, question: str, value: bool) -> dict:
        """Store (or replace) one answer, committed before returning. Returns the row."""
        annotator = check_annotator(annotator)
        check_question(question)
        if not isinstance(value, bool):
            raise ConfigError(f"an answer is true (yes) or false (no), got {value!r}")
        stamp = now_iso()
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM items WHERE item_id = ?", (item_id,)).fetchone() is None:
                raise ConfigError(f"unknown image id {item_id!r}")
            con.execute("INSERT OR IGNORE INTO annotators (name, created_at) VALUES (?, ?)", (annotator, stamp))
            seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM answers").fetchone()[0]
            con.execute(
                _UPSERT_ANSWER,
                (item_id, annotator, question, int(value), stamp, seq),
            )
        return {"item_id": item_id, "annotator": annotator, "question": question, "answer": value,
                "answered_at": stamp, "seq": seq}

    def undo(self, annotator: str, item_ids: Iterable[str] | None = None) -> dict | None:
        """Delete the annotator's latest answer (among ``item_ids`` if given); returns it, or None."""
        annotator = check_annotator(annotator)
        pool = None if item_ids is None else set(item_ids)
        with self.transaction() as con:
            rows = con.execute(
                "SELECT item_id, question, answer, seq FROM answers WHERE annotator = ? ORDER BY seq DESC", (annotator,)
            )
            for item_id, question, answer, seq in rows:
                if pool is None or item_id in pool:
                    con.execute("DELETE FROM answers WHERE item_id = ? AND annotator = ? AND question = ?",
                                (item_id, annotator, question))
                    return {"item_id": item_id, "annotator": annotator, "question": question, "answer": bool(answer),
                            "seq": seq}
        return None

    def register_annotator(self, annotator: str) -> str:
        annotator = check_annotator(annotator)
        with self.transaction() as con:
            con.execute("INSERT OR IGNORE INTO annotators (name, created_at) VALUES (?, ?)", (annotator, now_iso()))
        return annotator

    def annotators(self) -> list[str]:
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT name FROM annotators ORDER BY created_at, name")]

    def answers_of(self, annotator: str) -> dict[tuple[str, str], bool]:
        """(item id, question) -> answer, for one annotator."""
        with self.connect() as con:
            rows = con.execute("SELECT item_id, question, answer FROM answers WHERE annotator = ?", (annotator,))
            return {(r[0], r[1]): bool(r[2]) for r in rows}

    def all_answers(self) -> list[dict]:
        """Every stored answer with its item's target, in the order given (seq)."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT a.item_id, i.dataset, i.action_id, i.subject_id, i.action_phrase, i.subject_name, a.annotator,"
                " a.question, a.answer, a.answered_at, a.seq FROM answers a JOIN items i USING (item_id) ORDER BY a.seq"
            ).fetchall()
        keys = ("item_id", "dataset", "action_id", "subject_id", "action_phrase", "subject_name", "annotator",
                "question", "answer", "answered_at", "seq")
        out = [dict(zip(keys, r)) for r in rows]
        for row in out:
            row["answer"] = bool(row["answer"])
        return out

    def labels(self, item_ids: Iterable[str] | None = None) -> dict[str, dict[str, dict[str, bool]]]:
        """item id -> question -> annotator -> answer."""
        wanted = None if item_ids is None else set(item_ids)
        out: dict[str, dict[str, dict[str, bool]]] = {}
        with self.connect() as con:
            for item_id, annotator, question, answer in con.execute(
                "SELECT item_id, annotator, question, answer FROM answers ORDER BY seq"
            ):
                if wanted is None or item_id in wanted:
                    out.setdefault(item_id, {}).setdefault(question, {})[annotator] = bool(answer)
        return out

    def majority_labels(self, ties: str = "no", item_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """item id -> {question: majority or None (tie excluded), f"{question}_votes": (yes, no)}."""
        out = {}
        for item_id, by_question in self.labels(item_ids).items():
            row: dict[str, Any] = {}
            for question in QUESTIONS:
                votes = list(by_question.get(question, {}).values())
                row[question] = majority(votes, ties) if votes else None
                row[f"{question}_votes"] = (sum(votes), len(votes) - sum(votes))
            out[item_id] = row
        return out

    def fingerprint(self) -> dict:
        """Counts and a hash of every answer: recorded by the human judge in each result."""
        rows = sorted((r["item_id"], r["annotator"], r["question"], r["answer"]) for r in self.all_answers())
        return {
            "annotators": len({r[1] for r in rows}),
            "labels": len(rows),
            "items_labelled": len({r[0] for r in rows}),
            "labels_sha256": hashlib.sha256(json.dumps(rows).encode()).hexdigest(),
        }

    # --- import / export ---------------------------------------------------------------------

    def _ensure_item(self, con, row: Mapping[str, Any], where: str) -> str:
        """The item id of an imported row, creating the item from the row's target when it is new."""
        item_id = (row.get("item_id") or "").strip()
        image = (row.get("image") or "").strip()
        dataset = (row.get("dataset") or "").strip()
        action_id = (row.get("action_id") or row.get("action") or "").strip()
        subject_id = (row.get("subject_id") or row.get("subject") or "").strip()
        pixels = None
        if not item_id:
            if not (image and dataset and action_id and subject_id):
                raise ConfigError(f"{where}: give item_id, or image + dataset + action + subject")
            path = Path(image)
            if not path.is_file():
                raise ConfigError(f"{where}: image {image} not found (paths are relative to the imported file)")
            pixels = self.pixel_hash(path, con)
            item_id = make_item_id(dataset, action_id, subject_id, pixels)
        if con.execute("SELECT 1 FROM items WHERE item_id = ?", (item_id,)).fetchone() is None:
            if not (dataset and action_id and subject_id):
                raise ConfigError(f"{where}: image id {item_id} is not in {self.path}; the row needs dataset, action "
                                  "and subject to add it")
            con.execute(
                "INSERT INTO items (item_id, dataset, action_id, subject_id, action_phrase, subject_name, pixel_sha256,"
                " added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, dataset, action_id, subject_id, (row.get("action_phrase") or action_id).strip(),
                 (row.get("subject_name") or subject_id).strip(), pixels or "", now_iso()),
            )
        if image and Path(image).is_file():  # remember where the image is (exports name it again)
            con.execute("INSERT OR IGNORE INTO sources (run_dir, unit_id, item_id, path) VALUES (?, ?, ?, ?)",
                        (IMPORTED, str(Path(image).resolve()), item_id, str(Path(image).resolve())))
        return item_id

    def import_rows(self, rows: Iterable[Mapping[str, Any]], source: str = "import") -> int:
        """Add answers (dicts with item_id or image+target, annotator, question, answer[, answered_at]).

        A row for an (item, annotator, question) that already exists replaces it. All rows are
        one transaction: a bad row imports nothing.
        """
        count = 0
        with self.transaction() as con:
            seq = con.execute("SELECT COALESCE(MAX(seq), 0) FROM answers").fetchone()[0]
            for i, row in enumerate(rows):
                where = f"{source} row {i + 1}"
                try:
                    annotator = check_annotator(row.get("annotator"))
                    question = check_question((row.get("question") or "").strip())
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                answer = parse_yes_no(row.get("answer"), where)
                item_id = self._ensure_item(con, row, where)
                stamp = (row.get("answered_at") or "").strip() or now_iso()
                seq += 1
                con.execute("INSERT OR IGNORE INTO annotators (name, created_at) VALUES (?, ?)", (annotator, stamp))
                con.execute(
                    _UPSERT_ANSWER,
                    (item_id, annotator, question, int(answer), stamp, seq),
                )
                count += 1
        return count


def parse_yes_no(value: Any, where: str = "") -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "y", "true", "1"):
        return True
    if text in ("no", "n", "false", "0"):
        return False
    raise ConfigError(f"{where}: answer must be yes or no, got {value!r}")


# --- CSV and Label Studio ------------------------------------------------------------------------

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


# --- the annotation web app ----------------------------------------------------------------------


def _static(name: str) -> bytes:
    return (resources.files("actionbench.evaluators.human") / "static" / name).read_bytes()


class AnnotationApp:
    """The page's logic, independent of HTTP: ``handle(method, path, body)`` -> (status, type, bytes).

    ``items`` is the pool (item id -> Item with a server-side path); ``datasets`` maps dataset
    names to loaded datasets (for exemplar images).
    """

    def __init__(self, store: LabelStore, items: Mapping[str, Item], datasets: Mapping[str, Any]):
        self.store = store
        self.items = dict(items)
        self.datasets = dict(datasets)
        self._orders: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_runs(cls, store: LabelStore, run_dirs: Sequence[str | Path], data_root: str | Path | None = None):
        from actionbench.runner import open_existing_run

        if not run_dirs:
            run_dirs = [p for p in store.run_dirs() if p.is_dir()]
            if not run_dirs:
                raise ActionBenchError(f"give the run folder(s) to annotate; {store.path} has none recorded yet")
        items: dict[str, Item] = {}
        datasets: dict[str, Any] = {}
        for run_dir in run_dirs:
            run = open_existing_run(run_dir, data_root=data_root)
            datasets.setdefault(run.dataset.name, run.dataset)
            found = store.register_run(run)
            if not found:
                raise ActionBenchError(f"{run_dir} has no images yet (images/<action>/<subject>/<k>.png); "
                                       "run `actionbench generate` first")
            for item in found:
                items.setdefault(item.item_id, item)
        return cls(store, items, datasets)

    # --- state -------------------------------------------------------------------------------

    def order(self, annotator: str) -> list[str]:
        """This annotator's fixed random order of the pool (hash of name and item id)."""
        with self._lock:
            if annotator not in self._orders:
                self._orders[annotator] = sorted(
                    self.items, key=lambda i: hashlib.sha256(f"{annotator}\x00{i}".encode()).hexdigest()
                )
            return self._orders[annotator]

    def exemplar_urls(self, item: Item) -> list[str]:
        dataset = self.datasets.get(item.dataset)
        if dataset is None:
            return []
        action = dataset.action(item.action_id)
        return [f"/exemplar/{item.dataset}/{action.id}/{e.index}" for e in action.exemplars]

    def state(self, annotator: str) -> dict:
        annotator = check_annotator(annotator)
        given = self.store.answers_of(annotator)
        order = self.order(annotator)
        done = answered = 0
        current = None
        for item_id in order:
            have = [q for q in QUESTIONS if (item_id, q) in given]
            answered += len(have)
            if len(have) == len(QUESTIONS):
                done += 1
            elif current is None:
                current = item_id
        state: dict[str, Any] = {
            "annotator": annotator, "done": done, "total": len(order), "answered": answered,
            "questions_total": len(order) * len(QUESTIONS), "finished": current is None, "item": None,
            "question": None,
        }
        if current is not None:
            item = self.items[current]
            answers = {q: given.get((current, q)) for q in QUESTIONS}
            state["item"] = {
                "id": item.item_id, "image_url": f"/image/{item.item_id}", "subject_name": item.subject_name,
                "action_phrase": item.action_phrase, "exemplars": self.exemplar_urls(item), "answers": answers,
                "position": done + 1,
            }
            state["question"] = next(q for q in QUESTIONS if answers[q] is None)
        return state

    # --- HTTP-independent dispatch -----------------------------------------------------------

    def handle(self, method: str, path: str, body: bytes = b"") -> tuple[int, str, bytes]:
        url = urlparse(path)
        route = url.path
        try:
            if method == "GET" and route in ("/", "/index.html"):
                return 200, "text/html; charset=utf-8", _static("annotate.html")
            if method == "GET" and route == "/api/state":
                name = parse_qs(url.query).get("annotator", [""])[0]
                return self._json(self.state(name))
            if method == "GET" and route == "/api/annotators":
                return self._json({"annotators": self.store.annotators()})
            if method == "POST" and route == "/api/start":
                name = self.store.register_annotator(self._body(body).get("annotator"))
                return self._json(self.state(name))
            if method == "POST" and route == "/api/answer":
                data = self._body(body)
                item_id = data.get("item_id")
                if item_id not in self.items:
                    return self._json({"error": f"unknown image id {item_id!r}"}, 404)
                self.store.answer(item_id, data.get("annotator"), data.get("question"), data.get("answer"))
                return self._json(self.state(data.get("annotator")))
            if method == "POST" and route == "/api/undo":
                data = self._body(body)
                undone = self.store.undo(data.get("annotator"), self.items)
                state = self.state(data.get("annotator"))
                state["undone"] = undone
                return self._json(state)
            if method == "GET" and route.startswith("/image/"):
                item = self.items.get(unquote(route[len("/image/"):]))
                if item is None or item.path is None:
                    return self._json({"error": "unknown image"}, 404)
                return self._file(item.path)
            if method == "GET" and route.startswith("/exemplar/"):
                parts = unquote(route[len("/exemplar/"):]).split("/")
                dataset = self.datasets.get(parts[0]) if len(parts) == 3 else None
                if dataset is None:
                    return self._json({"error": "unknown exemplar"}, 404)
                try:
                    action = dataset.action(parts[1])
                except ActionBenchError:
                    return self._json({"error": "unknown exemplar"}, 404)
                for ex in action.exemplars:
                    if str(ex.index) == parts[2]:
                        return self._file(Path(ex.path))
                return self._json({"error": "unknown exemplar"}, 404)
            if method == "GET" and route == "/favicon.ico":
                return 204, "image/x-icon", b""
            return self._json({"error": f"no route {method} {route}"}, 404)
        except ConfigError as exc:
            return self._json({"error": str(exc)}, 400)
        except ActionBenchError as exc:
            return self._json({"error": str(exc)}, 500)

    @staticmethod
    def _body(body: bytes) -> dict:
        try:
            data = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ConfigError("request body must be JSON") from None
        if not isinstance(data, dict):
            raise ConfigError("request body must be a JSON object")
        return data

    @staticmethod
    def _json(value: Any, status: int = 200) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(value).encode("utf-8")

    @staticmethod
    def _file(path: Path) -> tuple[int, str, bytes]:
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            return 200, kind, path.read_bytes()
        except OSError:
            return 404, "application/json", b'{"error": "image file is gone"}'


class _Handler(BaseHTTPRequestHandler):
    app: ClassVar[AnnotationApp]
    server_version = "actionbench-annotate"
    sys_version = ""

    def _send(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server naming
        self._send(*self.app.handle("GET", self.path))

    def do_HEAD(self):  # noqa: N802
        self._send(*self.app.handle("GET", self.path))

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 16:
            self._send(413, "application/json", b'{"error": "request too large"}')
            return
        self._send(*self.app.handle("POST", self.path, self.rfile.read(length)))

    def log_message(self, format, *args):  # noqa: A002 - quiet unless asked
        if os.environ.get("ACTIONBENCH_ANNOTATE_LOG") == "1":
            super().log_message(format, *args)


def make_server(app: AnnotationApp, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``app`` (port 0 picks a free port: see ``server.server_address``)."""
    handler = type("AnnotationHandler", (_Handler,), {"app": app})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ActionBenchError(f"cannot listen on {host}:{port} ({exc}); pick another --port") from exc
    server.daemon_threads = True
    return server


# --- the human judge -----------------------------------------------------------------------------


def _run_dir_of(image: Any) -> Path | None:
    """OUT for an image at OUT/images/<action>/<subject>/<k>.png, else None."""
    if not isinstance(image, (str, Path)):
        return None
    path = Path(image).resolve()
    if len(path.parents) > 3 and path.parents[2].name == "images" and (path.parents[3] / "spec.json").is_file():
        return path.parents[3]
    return None


class HumanJudge(Evaluator):
    """Majority of stored human labels (``actionbench annotate``); needs labels for every image.

    Options:
        db: the labels database (default: ``$ACTIONBENCH_LABELS_DB``, else ``labels.sqlite`` in the
            current folder). ``actionbench judge --judge human`` takes it from the environment
            variable; ``actionbench judge-human --db`` passes it directly.
        ties: what a tied vote counts as: ``no`` (default: not shown), ``yes``, or ``exclude``
            (a tied image counts as unlabelled, and judging stops with an error naming it).

    An image is matched to its labels by the hash of its pixels and its target (action,
    subject), so copies of a run folder keep their labels. Images without labels for both
    questions stop judging before anything is written, with the count and the command that
    annotates them. ``detail`` records the votes of each image.
    """

    name: ClassVar[str] = "human"
    VERSION: ClassVar[str] = "1"
    human: ClassVar[bool] = True

    def __init__(self, dataset, device: str = "cpu", db: str | Path | None = None, ties: str = "no", **options: Any):
        super().__init__(dataset, device=device, **options)
        if options:
            raise ConfigError(f"unknown option(s) for judge 'human': {', '.join(sorted(options))}; "
                              "valid options: db, ties")
        self.db = Path(db or os.environ.get(LABELS_DB_ENV) or DEFAULT_DB)
        self.ties = check_ties(ties)
        self._store: LabelStore | None = None
        self._checked_runs: set[Path] = set()

    @property
    def store(self) -> LabelStore:
        if self._store is None:
            self._store = LabelStore(self.db, create=False)
        return self._store

    def describe(self) -> dict:
        record = {"name": self.name, "version": self.VERSION, "human": True, "db": str(self.db.resolve()),
                  "ties": self.ties, "decision": "majority of annotators per question"}
        if self.db.exists():
            record.update(self.store.fingerprint())
        return record

    def _verdicts(self, requests: Sequence[JudgeRequest]) -> tuple[list[tuple[str, dict]], list[JudgeRequest]]:
        ids = self.store.item_ids_of(self.dataset.name, [(r.action_id, r.subject_id, r.image) for r in requests])
        labels = self.store.majority_labels(self.ties, ids)
        out, missing = [], []
        for request, item_id in zip(requests, ids):
            row = labels.get(item_id)
            if row is None or any(row[q] is None for q in QUESTIONS):
                missing.append(request)
            out.append((item_id, row))
        return out, missing

    def _check_whole_run(self, run_dir: Path) -> None:
        """Fail before any judgment is written if any image of the run lacks labels."""
        from actionbench.runner import Run

        if run_dir in self._checked_runs:
            return
        run = Run(run_dir, None, self.dataset)
        units = [u for u in run.units() if run.image_path(u).is_file()]
        requests = [JudgeRequest(u.id, u.action_id, u.subject_id, run.image_path(u)) for u in units]
        _, missing = self._verdicts(requests)
        if missing:
            self._missing_error(missing, len(requests), run_dir)
        self._checked_runs.add(run_dir)

    def _missing_error(self, missing: Sequence[JudgeRequest], total: int, run_dir: Path | None) -> None:
        what = "images" if total != 1 else "image"
        tie = " (or only tied votes, with ties=exclude)" if self.ties == "exclude" else ""
        where = f" of {run_dir}" if run_dir else ""
        target = str(run_dir) if run_dir else "RUN_DIR"
        raise ActionBenchError(
            f"{len(missing)} of {total} {what}{where} have no human label for both questions{tie} in {self.db} "
            f"(first: {missing[0].unit_id}); annotate them with `actionbench annotate {target} --db {self.db}` "
            "and judge again"
        )

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        requests = list(requests)
        for r in requests:
            self.dataset.action(r.action_id)
            self.dataset.subject(r.subject_id)
        for run_dir in {d for d in (_run_dir_of(r.image) for r in requests) if d is not None}:
            self._check_whole_run(run_dir)
        verdicts, missing = self._verdicts(requests)
        if missing:
            self._missing_error(missing, len(requests), None)
        out = []
        for request, (item_id, row) in zip(requests, verdicts):
            detail = {"item_id": item_id, "ties": self.ties}
            for q in QUESTIONS:
                yes, no = row[f"{q}_votes"]
                detail[f"{q}_yes"], detail[f"{q}_no"] = yes, no
            out.append(Judgment(request.unit_id, bool(row["action"]), bool(row["subject"]), detail))
        return out


def clear_judgments(run_dir: str | Path, key: str) -> None:
    """Remove a run's judgments of one judge key (moved aside first, so a crash never leaves half)."""
    import shutil
    import uuid

    folder = Path(run_dir) / "judgments" / key
    if folder.is_dir():
        from actionbench.io import TMP_MARKER

        aside = folder.with_name(f"{TMP_MARKER}{uuid.uuid4().hex[:8]}-{key}")
        os.replace(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)

