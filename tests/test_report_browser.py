"""The report in a real headless browser (Debian's chromium), driven over the DevTools protocol.

The page must load without console errors or script dialogs, every image must resolve, sorting
and filtering must work without a server, and a screenshot must not be blank. Without chromium
these tests fail with the command that installs it.
"""

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest
from PIL import Image

from corpus_tools.networks.fabricate import fabricate_pictures, fabricate_results
from sphaera_tables.report import build_report

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,1600", "--remote-debugging-pipe",
]
HOSTILE = "De sphaera <script>alert(1)</script><img src=x onerror=alert(2)>"
ROWS = [
    {"page_id": f"book{b}/p{p}.jpg", "book_id": f"book{b}", "title": HOSTILE if b == 0 else
     f"Tractatus {b}", "printer": f"Printer {b % 3}", "place": ["Venezia", "Paris"][b % 2],
     "year": str(1540 + 7 * b), "handle": f"hdl.handle.net/21.11103/sphaera.{b}"}
    for b in range(4) for p in range(3)
]


def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium not found; the report's browser tests need it: "
            "`apt-get install -y chromium` (Debian/Ubuntu)"
        )
    return path


class DevTools:
    """Minimal DevTools-protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out;
    messages are JSON separated by NUL bytes)."""

    def __init__(self, chromium, profile):
        to_browser, self._send_fd = os.pipe()
        self._read_fd, from_browser = os.pipe()
        # bash, not sh: dash cannot redirect file descriptors above 9.
        redirect = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        self.process = subprocess.Popen(
            ["bash", "-c", redirect, chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self.messages, self.events, self._next_id = queue.Queue(), [], 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        with os.fdopen(self._read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self.messages.put(json.loads(message))

    def call(self, method, session=None, timeout=60, **params):
        """Send a command and return its result; events seen meanwhile go to ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")
        return self._wait(lambda m: m.get("id") == self._next_id, timeout).get("result", {})

    def wait_event(self, method, timeout=60):
        for event in self.events:
            if event.get("method") == method:
                return event
        return self._wait(lambda m: m.get("method") == method, timeout)

    def _wait(self, wanted, timeout):
        deadline = time.monotonic() + timeout
        while True:
            message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            if "error" in message:
                raise RuntimeError(f"DevTools error: {message['error']}")
            if wanted(message):
                return message
            self.events.append(message)

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, queue.Empty, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._send_fd)


@pytest.fixture
def report(tmp_path):
    out = fabricate_results(tmp_path / "out", ROWS, matches_per_page=2, seed=5)
    fabricate_pictures(out, seed=5)
    return build_report(out)


@pytest.fixture
def browser(tmp_path):
    client = DevTools(chromium_path(), tmp_path / "profile")
    yield client
    client.close()


def open_page(browser, path):
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        browser.call(f"{domain}.enable", session=session)
    browser.call("Page.navigate", session=session, url=path.as_uri())
    browser.wait_event("Page.loadEventFired")
    return session


def evaluate(browser, session, expression):
    result = browser.call("Runtime.evaluate", session=session, expression=expression,
                          returnByValue=True, awaitPromise=True)
    return result["result"].get("value")


def errors(events):
    """Console errors, uncaught exceptions, failed loads and script dialogs among events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(params["exceptionDetails"].get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(str(params.get("args")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(params["entry"].get("text"))
        elif method == "Page.javascriptDialogOpening":
            found.append(f"dialog: {params.get('message')}")
    return found


def test_report_loads_cleanly_and_is_not_blank(report, browser):
    session = open_page(browser, report)
    images = evaluate(browser, session, "Array.from(document.images).map("
                                        "i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    cards = evaluate(browser, session, "document.querySelectorAll('article').length")
    assert cards > 0 and len(images) == 3 * cards
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert broken == []
    title = evaluate(browser, session,
                     "document.querySelector('article dd:nth-of-type(2)').textContent")
    assert title == HOSTILE
    shot = browser.call("Page.captureScreenshot", session=session, format="png")["data"]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(shot))).convert("L"), float)
    assert pixels.shape[0] > 500 and pixels.std() > 20
    assert (np.abs(pixels - np.median(pixels)) > 60).mean() > 0.02
    assert errors(browser.events) == []


def test_sorting_and_filtering_work_offline(report, browser):
    session = open_page(browser, report)
    scores = evaluate(browser, session, "JSON.parse(document.getElementById('match-index')"
                                        ".textContent).map(e => e.score)")
    threshold = sorted(scores)[len(scores) // 2]
    shown = evaluate(browser, session, f"""(() => {{
        const box = document.getElementById('min-score');
        box.value = '{threshold}';
        box.dispatchEvent(new Event('input'));
        return [document.getElementById('shown').textContent,
                document.querySelectorAll('article:not([hidden])').length];
    }})()""")
    expected = sum(score >= threshold for score in scores)
    assert shown == [f"{expected} of {len(scores)} shown", expected]
    order = evaluate(browser, session, """(() => {
        const sort = document.getElementById('sort');
        sort.value = 'score-asc';
        sort.dispatchEvent(new Event('change'));
        document.getElementById('min-score').value = '';
        document.getElementById('search').value = 'paris';
        document.getElementById('search').dispatchEvent(new Event('input'));
        return Array.from(document.querySelectorAll('article:not([hidden])'))
            .map(a => [parseFloat(a.querySelector('h3').textContent.split(' ')[1]),
                       a.textContent.toLowerCase().includes('paris')]);
    })()""")
    assert order and all(has_paris for _, has_paris in order)
    values = [value for value, _ in order]
    assert values == sorted(values)
    assert errors(browser.events) == []
