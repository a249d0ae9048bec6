"""The annotation page in a real headless browser (Debian's chromium driven by Playwright).

Skipped when chromium or playwright is missing (CI installs both: `apt-get install chromium`,
`pip install -e '.[dev]'`). Set ACTIONBENCH_SCREENSHOT=/path.png to keep a screenshot.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import threading

import pytest

from test_human import make_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Every *.test name resolves to 127.0.0.1 in this browser: an attacker's site (evil.test) and a
# DNS-rebinding name, both on this machine, with no network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP *.test 127.0.0.1"]

if CHROMIUM is None and os.environ.get("ACTIONBENCH_REQUIRE_BROWSER"):
    # CI installs chromium and sets this: there a missing browser is a failure, not a silent skip
    raise RuntimeError("ACTIONBENCH_REQUIRE_BROWSER is set but no chromium is on PATH: apt-get install -y chromium")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (install it with `apt-get install -y chromium`); "
    "Playwright's own browser download does not work offline"
)


@pytest.fixture
def server(tmp_path):
    from actionbench.evaluators.human import make_server

    app, store, _, _ = make_app(tmp_path, runs=2)
    srv = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    host, port = srv.server_address[:2]
    yield f"http://{host}:{port}/", app, store
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 820})
        tab = context.new_page()
        tab.set_default_timeout(15000)
        yield tab
        context.close()
        browser.close()


def _current(page):
    return page.evaluate("() => ({item: state.item && state.item.id, question: state.question})")


def _wait_answered(page, n):
    page.wait_for_function(f"() => typeof state !== 'undefined' && state && state.answered === {n} && !busy")


def _press(page, key, expected, value):
    now = _current(page)
    page.keyboard.press(key)
    expected.append((now["item"], now["question"], value))
    _wait_answered(page, len(expected))


def test_annotate_in_a_real_browser(server, page):
    url, app, store = server
    page.goto(url)
    assert "secret-method" not in page.content()
    page.fill("#annotator", "erin")
    page.press("#annotator", "Enter")
    page.wait_for_selector("#work:not(.hidden)")
    _wait_answered(page, 0)
    assert page.inner_text("#progress-text") == "0 / 24 images"
    assert "Is" in page.inner_text("#q-subject") and page.locator("#exemplars img").count() == 2
    page.wait_for_function("() => document.querySelector('#image').naturalWidth > 0")  # the image loaded

    expected: list[tuple] = []
    for key, value in (("y", True), ("n", False), ("y", True), ("y", True), ("n", False)):
        _press(page, key, expected, value)
    assert page.inner_text("#progress-text") == "2 / 24 images"

    page.keyboard.press("u")  # undo the last answer: that question is asked again
    undone = expected.pop()
    _wait_answered(page, len(expected))
    assert _current(page) == {"item": undone[0], "question": undone[1]} and undone[1] == "subject"
    _press(page, "y", expected, True)  # answer it again, differently
    page.keyboard.press("Backspace")  # Backspace undoes too
    expected.pop()
    _wait_answered(page, len(expected))
    _press(page, "n", expected, False)
    _press(page, "y", expected, True)  # the third image's action question
    progress_before = page.inner_text("#progress-text")
    where_before = _current(page)

    page.reload()  # the name is remembered and the annotation continues where it stopped
    page.wait_for_selector("#work:not(.hidden)")
    _wait_answered(page, len(expected))
    assert page.input_value("#annotator") == "erin"
    assert page.inner_text("#progress-text") == progress_before == "3 / 24 images"
    assert _current(page) == where_before
    _press(page, "y", expected, True)

    shot = os.environ.get("ACTIONBENCH_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)
    assert "secret-method" not in page.content()

    con = sqlite3.connect(store.path)
    rows = con.execute("SELECT item_id, question, answer FROM answers WHERE annotator = 'erin'").fetchall()
    assert sorted((i, q, bool(a)) for i, q, a in rows) == sorted(expected)
    assert con.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == len(expected)
    # the answers follow erin's own random order
    order = app.order("erin")
    assert [e[0] for e in expected[::2]] == order[: len(expected[::2])]


# --- another site in the same browser ---------------------------------------------------------------

ATTACK_PAGE = """<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="TARGET/api/undo" enctype="text/plain" target="sink">
  <input name='{"annotator": "erin", "padding": "' value='"}'>
</form>
<script>
(async () => {
  const body = JSON.stringify({annotator: "erin"});
  navigator.sendBeacon("TARGET/api/undo", body);
  document.getElementById("form").submit();
  try { await fetch("TARGET/api/undo", {method: "POST", mode: "no-cors", body}); } catch (e) {}
  try {  // a guessed token needs a CORS preflight, which the server does not grant
    await fetch("TARGET/api/undo", {method: "POST", body, headers: {"X-ActionBench-Token": "guess"}});
  } catch (e) {}
  window.done = true;
})();
</script></body></html>"""


@pytest.fixture
def attacker(server):
    """A page on http://evil.test:PORT/ (another site, also on this machine) that posts to the annotation server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    target = server[0].rstrip("/")

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            page = ATTACK_PAGE.replace("TARGET", target).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    yield f"http://evil.test:{evil.server_address[1]}/"
    evil.shutdown()
    evil.server_close()


def test_another_site_in_the_browser_cannot_undo_answers(server, attacker, page):
    """A page the annotator happens to open elsewhere posts to /api/undo: every request is refused."""
    import time

    url, app, store = server
    item = app.order("erin")[0]
    store.answer(item, "erin", "subject", True)
    refused = []
    page.on("response", lambda r: refused.append(r.status) if r.url.startswith(url + "api/") else None)
    page.goto(attacker)
    page.wait_for_function("() => window.done === true")
    deadline = time.monotonic() + 10
    while len(refused) < 3 and time.monotonic() < deadline:  # the beacon and the form land on their own time
        page.wait_for_timeout(100)
    assert len(refused) >= 3 and set(refused) == {403}, refused
    assert store.answers_of("erin") == {(item, "subject"): True}


def test_a_rebound_name_cannot_read_the_page_or_its_token(server, page):
    """DNS rebinding: a name the attacker controls, resolving to 127.0.0.1, gets 403 and no token."""
    url, app, _ = server
    port = url.rstrip("/").rsplit(":", 1)[1]
    response = page.goto(f"http://rebind.test:{port}/")
    assert response.status == 403
    assert app.token not in page.content() and "answers only to" in page.content()
