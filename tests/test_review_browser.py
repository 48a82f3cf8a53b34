"""`tables review` end to end: a real server process and Debian's headless chromium, driven over
the DevTools protocol (the client of test_report_browser). Keyboard only: review three pairs,
reload, see the verdicts; kill -9 the server mid-review, restart it, lose nothing shown as saved.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import REVIEW_HOSTILE
from test_report_browser import DevTools, chromium_path, errors

from sphaera_tables.review.verdicts import VerdictStore

KEYS = {"Enter": (13, "\r"), "Escape": (27, "")}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``tables review`` in its own process, waited for until it answers."""

    def __init__(self, results, port):
        self.url = f"http://127.0.0.1:{port}/"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sphaera_tables", "review", str(results), "--port", str(port),
             "--no-browser", "--user", "tester"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the review server did not start") from None
                time.sleep(0.2)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def browser(tmp_path):
    client = DevTools(chromium_path(), tmp_path / "profile")
    yield client
    client.close()


@pytest.fixture
def server(review_results):
    running = [Server(review_results, free_port())]
    yield running
    running[-1].stop()


class Tab:
    """One page of the browser: navigate, read, press keys."""

    def __init__(self, browser):
        self.browser = browser
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.call("Target.attachToTarget", targetId=target,
                                    flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session=self.session)

    def evaluate(self, expression):
        result = self.browser.call("Runtime.evaluate", session=self.session,
                                   expression=expression, returnByValue=True)
        return result["result"].get("value")

    def go(self, url):
        previous = self.href
        self.browser.call("Page.navigate", session=self.session, url=url)
        self.wait_loaded(previous)

    def wait_for(self, expression, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is being replaced by the next one
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def wait_loaded(self, previous=None):
        """Until a page other than ``previous`` has loaded its script."""
        check = ("document.readyState === 'complete' && "
                 "(!document.getElementById('match-data') || !!window.reviewStage)")
        if previous is not None:
            check += f" && location.href !== {json.dumps(previous)}"
        self.wait_for(f"(() => {{ try {{ return {check}; }} catch (e) {{ return false; }} }})()")

    def press(self, key):
        code, text = KEYS[key] if key in KEYS else (ord(key.upper()), key)
        for kind in ("keyDown", "keyUp"):
            self.browser.call("Input.dispatchKeyEvent", session=self.session, type=kind, key=key,
                              windowsVirtualKeyCode=code, text=text if kind == "keyDown" else "")

    def type(self, text):
        self.browser.call("Input.insertText", session=self.session, text=text)

    @property
    def href(self):
        return self.evaluate("location.href")

    def pair(self):
        return self.evaluate("(() => { const d = JSON.parse(document.getElementById("
                             "'match-data').textContent); return [d.page_a, d.page_b]; })()")


def give_verdict(tab, key):
    """Press a verdict key and wait until the page says saved; returns the pair and the
    message the next page (or this one, at the end of the queue) shows."""
    pair, here = tab.pair(), tab.href
    tab.press(key)
    tab.wait_for(f"location.href !== {json.dumps(here)} || "
                 "document.getElementById('status').textContent.startsWith('saved')")
    tab.wait_loaded()
    return pair, tab.evaluate("document.getElementById('status').textContent")


def stored(results):
    with VerdictStore.of_results(results) as store:
        return {frozenset((v.page_a, v.page_b)): (v.verdict, v.note)
                for v in store.latest().values()}


def test_three_pairs_reviewed_with_the_keyboard_survive_a_reload(review_results, server,
                                                                 browser):
    tab = Tab(browser)
    tab.go(server[0].url)
    queue = tab.href
    tab.press("Enter")
    tab.wait_loaded(previous=queue)
    first, message = give_verdict(tab, "1")
    assert message.startswith("saved: same table")
    second, _ = give_verdict(tab, "3")
    tab.press("e")
    assert tab.evaluate("document.activeElement.id") == "note"
    tab.type("check row 12 <b>again</b>")
    tab.press("Escape")
    third, _ = give_verdict(tab, "4")
    assert stored(review_results) == {
        frozenset(first): ("same_table", ""), frozenset(second): ("same_kind", ""),
        frozenset(third): ("unrelated", "check row 12 <b>again</b>"),
    }
    tab.go(server[0].url + "?verdict=reviewed")
    badges = tab.evaluate("Array.from(document.querySelectorAll('#queue tbody .badge'))"
                          ".map(b => b.textContent)")
    assert sorted(badges) == sorted(["same table", "same kind of table, other numbers",
                                     "unrelated"])
    assert tab.evaluate("document.querySelectorAll('#queue script, #queue img').length") == 0
    assert REVIEW_HOSTILE in tab.evaluate("document.getElementById('queue').textContent") or \
        not any("book0" in page for pair in (first, second, third) for page in pair)
    tab.go(tab.evaluate("Array.from(document.querySelectorAll('#queue tbody tr')).find(r => "
                        "r.querySelector('.badge').textContent === 'unrelated')"
                        ".querySelector('a').href"))
    history = tab.evaluate("document.getElementById('history').textContent")
    assert "check row 12 <b>again</b>" in history  # the note as text, not markup
    assert tab.evaluate("document.querySelectorAll('#history b').length") == 0
    links = tab.evaluate("document.querySelectorAll('#links line').length")
    assert links >= 1 and tab.evaluate("document.querySelectorAll('#pages image').length") == 2
    assert errors(browser.events) == []


@pytest.mark.slow
def test_a_killed_server_loses_no_verdict_shown_as_saved(review_results, server, browser):
    tab = Tab(browser)
    tab.go(server[0].url)
    tab.go(tab.evaluate("document.querySelector('#queue tbody a').href"))
    shown = []
    for key in "1212":
        pair, message = give_verdict(tab, key)
        assert message.startswith("saved")
        shown.append((pair, {"1": "same_table", "2": "rows_shared"}[key]))
    server[0].kill()
    server.append(Server(review_results, int(server[0].url.rsplit(":", 1)[1].strip("/"))))
    after = stored(review_results)
    for pair, verdict in shown:
        assert after[frozenset(pair)][0] == verdict
    tab.go(server[-1].url + "?verdict=reviewed")
    assert tab.evaluate("document.querySelectorAll('#queue tbody tr').length") == len(shown)
    assert os.path.exists(review_results / "verdicts.sqlite")
