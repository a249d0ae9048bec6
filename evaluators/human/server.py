"""The blinded annotation page: ``AnnotationApp`` (the logic, without HTTP) and its local HTTP server.

The page (``actionbench annotate RUN_DIR...``) pools the images of every given run, shows
them one at a time in an order seeded by the annotator's name (a hash of name and item id,
so each annotator has a fixed random order and resuming continues in it), serves images by
item id only, and asks two yes/no questions per image. See ``docs/human-eval.md``.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlparse

from actionbench.errors import ActionBenchError, ConfigError

from .store import QUESTIONS, Item, LabelStore, check_annotator

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
