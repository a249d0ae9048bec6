"""The blinded annotation page: ``AnnotationApp`` (the logic, without HTTP) and its local HTTP server.

The page (``actionbench annotate RUN_DIR...``) pools the images of every given run, shows
them one at a time in an order seeded by the annotator's name (a hash of name and item id,
so each annotator has a fixed random order and resuming continues in it), serves images by
item id only, and asks two yes/no questions per image. See ``docs/human-eval.md``.

The server is a local web app that other web pages can reach through the annotator's browser,
so the HTTP layer (``_Handler``) refuses, before the app sees a request:

- a ``Host`` that is not a name the server was bound to (``localhost``, ``127.0.0.1``, ``[::1]``,
  the ``--host`` value, or the IP address the connection arrived on) with its port: a page on
  another name cannot read our answers through DNS rebinding;
- an ``Origin`` (when the browser sends one) that is not such a name: another site's page
  cannot post to us;
- a POST without the session token (``X-ActionBench-Token``), minted when the app is built and
  written into the page it serves (checked before the body is read);
- a ``Content-Length`` that is not a decimal number, given twice with two values, or over
  ``MAX_BODY``; a chunked body; and a body that does not arrive within ``REQUEST_TIMEOUT_S``
  (every socket operation has that timeout, so a slow client cannot hold a worker thread forever).

The app itself answers 400 to a body that is not a JSON object or whose fields have the wrong type.

Refusals are JSON ``{"error": ...}`` with 400, 403, 408, 411 or 413, and close the connection.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import mimetypes
import os
import re
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlparse, urlsplit

from actionbench.errors import ActionBenchError, ConfigError

from .store import QUESTIONS, Item, LabelStore, check_annotator

TOKEN_HEADER = "X-ActionBench-Token"
TOKEN_PLACEHOLDER = b"__ACTIONBENCH_TOKEN__"  # in static/annotate.html, replaced by the session token
MAX_BODY = 1 << 16  # bytes; the page's largest request is about 150
REQUEST_TIMEOUT_S = 10.0  # per socket operation: reading a request line, headers or body, writing a reply
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
# The page's own script and styles are inline; everything it loads comes from this server, and no
# other page may frame it (a framed page could be clicked through by an invisible overlay).
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")
JSON_KINDS = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}


def _static(name: str) -> bytes:
    return (resources.files("actionbench.evaluators.human") / "static" / name).read_bytes()


class AnnotationApp:
    """The page's logic, independent of HTTP: ``handle(method, path, body)`` -> (status, type, bytes).

    ``items`` is the pool (item id -> Item with a server-side path); ``datasets`` maps dataset
    names to loaded datasets (for exemplar images). ``token`` is this session's secret, minted
    here and written into the page; the HTTP server requires it on every POST.
    """

    def __init__(self, store: LabelStore, items: Mapping[str, Item], datasets: Mapping[str, Any]):
        self.store = store
        self.items = dict(items)
        self.datasets = dict(datasets)
        self.token = secrets.token_urlsafe(32)
        self._orders: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_runs(cls, store: LabelStore, run_dirs: Sequence[str | Path], data_root: str | Path | None = None):
        from actionbench.run.runner import open_existing_run

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
                return 200, "text/html; charset=utf-8", self.page()
            if method == "GET" and route == "/api/state":
                name = parse_qs(url.query).get("annotator", [""])[0]
                return self._json(self.state(name))
            if method == "GET" and route == "/api/annotators":
                return self._json({"annotators": self.store.annotators()})
            if method == "POST" and route == "/api/start":
                data = self._body(body, annotator=str)
                name = self.store.register_annotator(data["annotator"])
                return self._json(self.state(name))
            if method == "POST" and route == "/api/answer":
                data = self._body(body, annotator=str, item_id=str, question=str, answer=bool)
                item_id = data["item_id"]
                if item_id not in self.items:
                    return self._json({"error": f"unknown image id {item_id!r}"}, 404)
                self.store.answer(item_id, data["annotator"], data["question"], data["answer"])
                return self._json(self.state(data["annotator"]))
            if method == "POST" and route == "/api/undo":
                data = self._body(body, annotator=str)
                undone = self.store.undo(data["annotator"], self.items)
                state = self.state(data["annotator"])
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

    def page(self) -> bytes:
        """The annotation page, carrying this session's token for its requests."""
        return _static("annotate.html").replace(TOKEN_PLACEHOLDER, self.token.encode("ascii"))

    @staticmethod
    def _body(body: bytes, **fields: type) -> dict:
        """The request's JSON object, with each named field present and of its type (else ConfigError: 400)."""
        try:
            data = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: [[[[... nested
            raise ConfigError("request body must be JSON (UTF-8)") from None
        if not isinstance(data, dict):
            raise ConfigError(f"request body must be a JSON object, got {JSON_KINDS.get(type(data), 'something else')}")
        for name, kind in fields.items():
            value = data.get(name)
            if name == "annotator" and value is None:
                raise ConfigError("an annotator name is required (type your name in the page's name field)")
            if not isinstance(value, kind):
                wanted = {str: "a string", bool: "true or false"}[kind]
                raise ConfigError(f"field {name!r} must be {wanted}, got {json.dumps(value)[:40]}")
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


class Refused(Exception):
    """A request refused before the app sees it: the status and the reason sent back as JSON."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def canonical_host(name: str) -> str:
    """A host name for comparison: lower case, an IP address in its one standard spelling."""
    name = name.strip().lower().strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def split_authority(value: str) -> tuple[str, int | None]:
    """(host, port or None) of a ``Host`` header value ``name[:port]``; ValueError if it is anything else."""
    parts = urlsplit("//" + value)
    port = parts.port  # ValueError for a port that is not a number in 0..65535
    if not parts.hostname or parts.username is not None or parts.password is not None or parts.path \
            or parts.query or parts.fragment or any(ch.isspace() for ch in value):
        raise ValueError(f"not a host[:port]: {value!r}")
    return canonical_host(parts.hostname), port


def content_length(values: list[str] | None) -> int:
    """The body length a request declares: digits only, one value, at most ``MAX_BODY``."""
    if not values:
        return 0
    if len(set(values)) != 1:
        raise Refused(400, f"conflicting Content-Length headers: {', '.join(values)}")
    text = values[0].strip()
    if not re.fullmatch(r"[0-9]{1,20}", text):
        raise Refused(400, f"Content-Length must be a non-negative whole number of bytes, got {text[:40]!r}")
    length = int(text)
    if length > MAX_BODY:
        raise Refused(413, f"request body of {length} bytes is over the limit of {MAX_BODY}")
    return length


ALLOWED_METHODS = "GET, HEAD, POST"


class _Handler(BaseHTTPRequestHandler):
    app: ClassVar[AnnotationApp]
    bound_names: ClassVar[frozenset[str]]  # host names served, besides the connection's own address
    port: ClassVar[int]
    timeout = REQUEST_TIMEOUT_S  # socketserver sets it on the connection: every read and write may wait this long
    server_version = "actionbench-annotate"
    sys_version = ""

    def _send(self, status: int, kind: str, data: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        if kind.startswith("text/html"):
            self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if status == 405:
            self.send_header("Allow", ALLOWED_METHODS)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # --- the checks --------------------------------------------------------------------------

    def _served_names(self) -> set[str]:
        names = set(self.bound_names)
        # An IP address typed in the address bar is the address the connection arrived on. Serving
        # it is safe against DNS rebinding, which needs a name the attacker controls.
        names.add(canonical_host(self.connection.getsockname()[0]))
        return names

    def _check_host_and_origin(self) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            raise Refused(400, "a request needs exactly one Host header")
        try:
            name, port = split_authority(hosts[0])
        except ValueError:
            raise Refused(400, f"malformed Host header {hosts[0][:80]!r}") from None
        served = self._served_names()
        if name not in served or (port or 80) != self.port:
            raise Refused(403, f"this annotation server answers only to {self._names_text(served)} on port "
                               f"{self.port}, not to Host {hosts[0][:80]!r}; open the address that "
                               "`actionbench annotate` printed")
        origin = self.headers.get("Origin")
        if origin is None:
            return
        parts = urlsplit(origin)
        try:
            origin_port = parts.port or 80
        except ValueError:
            origin_port = -1
        if origin == "null" or parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") \
                or canonical_host(parts.hostname) not in served or origin_port != self.port:
            raise Refused(403, f"requests from other sites are refused (Origin {origin[:80]!r}); "
                               "use the annotation page itself")

    @staticmethod
    def _names_text(names: set[str]) -> str:
        return ", ".join(f"[{n}]" if ":" in n else n for n in sorted(names))

    def _check_token(self) -> None:
        given = self.headers.get(TOKEN_HEADER)
        if given is None:
            raise Refused(403, f"missing {TOKEN_HEADER} header: changes are accepted only from the annotation "
                               "page; reload it")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.app.token.encode("ascii")):
            raise Refused(403, f"wrong {TOKEN_HEADER}: the server was restarted since this page was loaded; "
                               "reload the page")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") is not None:
            raise Refused(411, "send the body with a Content-Length (Transfer-Encoding is not accepted)")
        length = content_length(self.headers.get_all("Content-Length"))
        try:
            body = self.rfile.read(length)
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            raise Refused(408, f"the request body did not arrive within {self.timeout:g} s "
                               f"(Content-Length said {length} bytes)") from None
        if len(body) != length:
            raise Refused(400, f"the request body ended after {len(body)} of the {length} bytes of its "
                               "Content-Length")
        return body

    # --- methods -----------------------------------------------------------------------------

    def _answer(self, method: str) -> None:
        refused = False
        try:
            self._check_host_and_origin()
            body = b""
            if method not in ("GET", "POST"):
                raise Refused(405, f"{method} is not served here; the annotation server answers {ALLOWED_METHODS}")
            if method == "POST":
                self._check_token()
                body = self._read_body()
            response = self.app.handle(method, self.path, body)
        except Refused as refusal:
            response = (refusal.status, "application/json", json.dumps({"error": str(refusal)}).encode("utf-8"))
            refused = True  # close: a body left unread must not be taken for the next request
        except Exception:  # noqa: BLE001 - a bug answers 500 with JSON instead of dropping the connection
            import traceback

            BaseHTTPRequestHandler.log_message(self, "error answering %s %s:\n%s", method, self.path[:200],
                                               traceback.format_exc())
            response = (500, "application/json", b'{"error": "internal error in the annotation server '
                                                 b'(the traceback is in its terminal)"}')
            refused = True
        if refused:
            self.close_connection = True
        try:
            self._send(*response, close=refused)
        except (BrokenPipeError, ConnectionResetError):  # the client left; nothing to answer
            self.close_connection = True

    def do_GET(self):  # noqa: N802 - http.server naming
        self._answer("GET")

    def do_HEAD(self):  # noqa: N802
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST")

    def _not_allowed(self):
        self._answer(self.command)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed  # 405, JSON

    def send_error(self, code, message=None, explain=None):
        """What http.server refuses itself (a method it does not know, a malformed request line, headers
        too long) answers JSON, as every other error here does, and closes the connection."""
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        body = json.dumps({"error": f"{text} ({code})"}).encode("utf-8")
        try:
            self._send(code, "application/json", body, close=True)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format, *args):  # noqa: A002 - quiet unless asked
        if os.environ.get("ACTIONBENCH_ANNOTATE_LOG") == "1":
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def is_local_host(host: str) -> bool:
    """Whether ``host`` (a --host value) keeps the server on this machine (a loopback name or address)."""
    name = canonical_host(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def server_url(server: ThreadingHTTPServer, host: str) -> str:
    """The address to open: the --host as given (a name stays a name), with the bound port."""
    name = host.strip().strip("[]")
    name = "127.0.0.1" if name in WILDCARD_HOSTS else name
    if ":" in name:
        name = f"[{name}]"
    return f"http://{name}:{server.server_address[1]}/"


def make_server(app: AnnotationApp, host: str = "127.0.0.1", port: int = 8765,
                timeout: float = REQUEST_TIMEOUT_S) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``app`` (port 0 picks a free port: see ``server.server_address``).

    It answers to the loopback names and to ``host`` (and, bound to a wildcard such as 0.0.0.0,
    to the IP address a client connected to), on its port only; ``timeout`` bounds every socket
    read and write of a request.
    """
    host = host.strip().strip("[]")
    bound = frozenset(LOOPBACK_NAMES) | ({canonical_host(host)} if host not in WILDCARD_HOSTS else frozenset())
    handler = type("AnnotationHandler", (_Handler,), {"app": app, "bound_names": bound, "timeout": timeout})
    server_class = _Server6 if ":" in host else _Server
    try:
        server = server_class((host, port), handler)
    except OSError as exc:
        raise ActionBenchError(f"cannot listen on {host}:{port} ({exc}); pick another --port") from exc
    handler.port = server.server_address[1]
    return server
