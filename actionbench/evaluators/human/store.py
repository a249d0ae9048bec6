"""The SQLite label store: items, answers and annotators, one short transaction per write.

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
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from actionbench.errors import ActionBenchError, ConfigError

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

    def unit_items(self, run) -> dict[str, str]:
        """unit id -> item id for every image of a run (by pixel hash, cached by path, size and mtime, so an
        image regenerated after it was annotated does not inherit the old labels)."""
        units = [u for u in run.units() if run.image_path(u).is_file()]
        ids = self.item_ids_of(run.dataset.name, [(u.action_id, u.subject_id, run.image_path(u)) for u in units])
        return {u.id: item_id for u, item_id in zip(units, ids)}

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
                raise ConfigError(f"{where}: give item_id, or image + dataset + action + subject, or unit_id with the "
                                  "run folder holding its image (import-labels --run RUN_DIR)")
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
                where = f"{source} {row.get('_where') or f'row {i + 1}'}"
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
