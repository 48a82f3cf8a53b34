"""The review web app (Flask): the queue of candidate matches, the match view, and the verdict
endpoint that commits a verdict to the store before it answers "saved".

Safety: only the files of the results folder and its corpus are served (`files`); every POST
needs the per-session token of the page that sent it; hosts other than the one served are
refused (no DNS rebinding); user data is escaped by jinja2 and handed to the page's script as
JSON inside a ``<script type="application/json">`` (``tojson`` escapes ``<``, ``>``, ``&``);
a malformed request gets a 4xx with a message, and an internal error a 500 without details.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import secrets
import threading
from pathlib import Path

import jinja2
from flask import Flask, abort, jsonify, render_template, request, send_file, session, url_for
from werkzeug.exceptions import HTTPException

from corpus_tools.networks import load_results
from corpus_tools.results_folder import ResultsFolder
from sphaera_tables.report import handle_url
from sphaera_tables.review.files import FileRefused, browser_image, contained_file
from sphaera_tables.review.queue import PAGE_SIZE, FilterError, Filters, ReviewQueue
from sphaera_tables.review.verdicts import (
    STATE_WORDS,
    VERDICTS,
    PageKeys,
    VerdictError,
    VerdictStore,
    merge_latest,
    model_hash_of,
    new_verdict,
)

DATA = Path(__file__).parent / "data"
MAX_NOTE = 10_000
"""Longest note accepted, in characters."""
LINKS_SHOWN = 40
"""Number links drawn over the pages (the strongest; the explanation may hold more)."""
log = logging.getLogger(__name__)


class ReviewState:
    """What the app keeps between requests: the results folder, its queue, one verdict store
    per server thread, and the verdicts that count (read incrementally: only new rows)."""

    def __init__(self, out_dir: Path, user: str):
        self.out_dir = out_dir
        self.user = user
        self.results = load_results(out_dir)
        self.keys = PageKeys.of_results(out_dir)
        self.model_hash = model_hash_of(out_dir)
        corpus = Path(str(self.results.manifest.get("corpus") or ""))
        self.corpus = corpus if corpus.is_dir() and str(corpus) != "." else None
        self.queue = ReviewQueue(self.results, self.keys)
        self._threads = threading.local()
        self._lock = threading.Lock()
        self._latest, self._last_id = {}, 0
        self.fresh_queue()

    def store(self) -> VerdictStore:
        if not hasattr(self._threads, "store"):
            self._threads.store = VerdictStore.of_results(self.out_dir)
        return self._threads.store

    def fresh_queue(self) -> ReviewQueue:
        """The queue with every verdict stored so far (by this server or another one)."""
        with self._lock:
            new = self.store().since(self._last_id)
            if new:
                merge_latest(self._latest, new)
                self._last_id = new[-1].id
                self.queue.refresh(self._latest)
        return self.queue


def create_app(out_dir: Path | str, user: str, allowed_hosts: list[str] | None = None) -> Flask:
    """The app for one results folder; ``user`` signs every verdict given through it.

    ``allowed_hosts``: host names the browser may use to reach the server (``Host`` header);
    requests naming another host are refused.
    """
    app = Flask(__name__, static_folder=str(DATA / "assets"), static_url_path="/assets",
                template_folder=str(DATA / "templates"))
    app.secret_key = secrets.token_bytes(32)
    app.config.update(
        SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=True,
        # cookies ignore the port: servers on two folders at once must not share one
        SESSION_COOKIE_NAME=f"tables-review-{secrets.token_hex(4)}",
        TRUSTED_HOSTS=allowed_hosts, MAX_CONTENT_LENGTH=1_000_000,
    )
    app.jinja_env.undefined = jinja2.StrictUndefined
    app.jinja_env.autoescape = True  # Flask escapes only *.html by name; ours are *.html.j2
    state = ReviewState(Path(out_dir), user)
    app.extensions["review"] = state

    @app.context_processor
    def page_globals():
        return {"csrf_token": csrf_token(), "user": state.user, "verdicts": VERDICTS,
                "state_words": STATE_WORDS, "folder": str(state.out_dir)}

    @app.get("/")
    def queue_page():
        filters = _filters()
        queue = state.fresh_queue()
        rows = queue.select(filters)
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        number = _int_arg("page", 1)
        if not 1 <= number <= pages:
            abort(404, f"page {number} does not exist; the queue has {pages} page(s)")
        shown = queue.frame.iloc[rows[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]]
        return render_template(
            "queue.html.j2", filters=filters, total=len(queue.frame), matching=len(rows),
            page=number, pages=pages,
            rows=[_queue_row(state, row, filters) for row in shown.to_dict("records")],
            families=sorted(set(queue.family_of.values())),
            verdict_filters=("", "unreviewed", "propagated", "reviewed", *VERDICTS),
        )

    @app.get("/match")
    def match_page():
        filters = _filters()
        queue = state.fresh_queue()
        row = _pair_row(queue, request.args.get("a"), request.args.get("b"))
        pair = queue.frame.iloc[row].to_dict()
        previous, following = queue.neighbours(filters, row)
        data = _match_data(state, pair, filters, previous, following)
        return render_template("match.html.j2", pair=data)

    @app.post("/api/verdict")
    def save_verdict():
        _check_token()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, "the request body must be a JSON object")
        fields = {name: body.get(name, "") for name in ("page_a", "page_b", "verdict", "note")}
        if not all(isinstance(value, str) for value in fields.values()):
            abort(400, "page_a, page_b, verdict and note must be text")
        if len(fields["note"]) > MAX_NOTE:
            abort(400, f"the note is longer than {MAX_NOTE} characters")
        queue = state.fresh_queue()
        pair = queue.frame.iloc[_pair_row(queue, fields["page_a"], fields["page_b"])]
        try:
            verdict = new_verdict(
                (pair["key_a"], pair["key_b"], pair["page_a"], pair["page_b"]),
                fields["verdict"], fields["note"], state.user,
                None if math.isnan(pair["score"]) else float(pair["score"]), state.model_hash,
            )
        except VerdictError as error:
            abort(400, str(error))
        saved = state.store().record(verdict)
        return jsonify(saved=True, verdict=saved.verdict, label=VERDICTS[saved.verdict],
                       note=saved.note, user=saved.user, time=saved.time)

    @app.get("/file/<any(results, corpus):root>/<path:relative>")
    def served_file(root, relative):
        folder = state.out_dir if root == "results" else state.corpus
        if folder is None:
            abort(404, "the corpus folder of these results is not available here")
        try:
            content, mimetype = browser_image(contained_file(folder, relative))
        except FileRefused as refused:
            abort(refused.status, str(refused))
        if isinstance(content, Path):
            return send_file(content, mimetype=mimetype)
        return app.response_class(content, mimetype=mimetype)

    @app.errorhandler(HTTPException)
    def http_error(error):
        message = error.description or error.name
        if request.path.startswith("/api/"):
            return jsonify(error=message), error.code
        return render_template("error.html.j2", code=error.code, name=error.name,
                               message=message), error.code

    @app.errorhandler(Exception)
    def internal_error(error):
        log.exception("review app: internal error")
        message = "internal error; the server's terminal has the details"
        if request.path.startswith("/api/"):
            return jsonify(error=message), 500
        return app.response_class(message, status=500, mimetype="text/plain")

    return app


def csrf_token() -> str:
    """This browser session's token (made on its first page)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_token() -> None:
    sent = request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(403, "missing or wrong session token; reload the page and try again")


def _filters() -> Filters:
    try:
        return Filters.parse(request.args)
    except FilterError as error:
        abort(400, str(error))


def _int_arg(name: str, default: int) -> int:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        abort(400, f"{name} {text!r} is not a whole number")
    return int(text)


def _pair_row(queue: ReviewQueue, page_a, page_b) -> int:
    if not page_a or not page_b:
        abort(400, "name both pages of the pair (a=PAGE&b=PAGE)")
    row = queue.row_of(page_a, page_b)
    if row is None:
        abort(404, f"{page_a} / {page_b} is neither a candidate match nor a reviewed pair")
    return row


def _queue_row(state: ReviewState, pair: dict, filters: Filters) -> dict:
    return {
        **pair,
        "score": None if math.isnan(pair["score"]) else pair["score"],
        "a": _page_view(state, pair["page_a"]), "b": _page_view(state, pair["page_b"]),
        "url": url_for("match_page", a=pair["page_a"], b=pair["page_b"], **filters.query()),
    }


def _page_view(state: ReviewState, page_id: str) -> dict:
    """What the app shows of a page: metadata, catalogue link, image and thumbnail URLs and
    the size of the page in the px of its explanation boxes."""
    record = state.results.pages.get(page_id, {"page_id": page_id})
    thumbnail = ResultsFolder.thumbnail_name(page_id)
    thumbnail_url = url_for("served_file", root="results", relative=thumbnail) \
        if (state.out_dir / thumbnail).is_file() else None
    image_url = thumbnail_url
    if state.corpus is not None and (state.corpus / page_id).is_file():
        image_url = url_for("served_file", root="corpus", relative=page_id)
    return {
        "page_id": page_id,
        "title": record.get("title", ""), "author": "; ".join(record.get("author", [])),
        "printer": "; ".join(record.get("printer", [])),
        "place": "; ".join(record.get("place", [])), "year": record.get("year"),
        "book_id": record.get("book_id", ""),
        "catalogue": handle_url(record.get("handle", "")),
        "width": _number(record.get("width")), "height": _number(record.get("height")),
        "image": image_url, "thumbnail": thumbnail_url,
        "in_results": page_id in state.results.pages,
    }


def _number(cell) -> float | None:
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _explanation(out_dir: Path, page_a: str, page_b: str) -> dict:
    """The explanation of a pair (links, rows, variants) with side a = ``page_a``; empty
    lists when there is none or it cannot be read."""
    empty = {"links": [], "rows": [], "variants": [], "residual": None}
    for first, second, swapped in ((page_a, page_b, False), (page_b, page_a, True)):
        path = ResultsFolder(out_dir).explanation(first, second, ".json")
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            links = sorted(data.get("links", []), key=lambda link: -abs(float(link["relevance"])))
            return {
                "links": [_side_a_first(link, swapped) for link in links[:LINKS_SHOWN]],
                "rows": [_side_a_first(row, swapped) for row in data.get("rows", [])],
                "variants": [_side_a_first(v, swapped) for v in data.get("variants", [])],
                "residual": data.get("residual"),
            }
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            log.warning("%s: unreadable explanation (%s)", path, error)
            return empty
    return empty


def _side_a_first(record: dict, swapped: bool) -> dict:
    """A link, row or variant with its ``*_a`` and ``*_b`` fields swapped when the explanation
    was written for the pair in the other order."""
    if not swapped:
        return dict(record)
    flipped = {}
    for key, value in record.items():
        if key.endswith("_a"):
            flipped[key[:-2] + "_b"] = value
        elif key.endswith("_b"):
            flipped[key[:-2] + "_a"] = value
        else:
            flipped[key] = value
    return flipped


def _match_data(state: ReviewState, pair: dict, filters: Filters, previous, following) -> dict:
    """Everything the match view shows and its script reads (JSON-ready)."""
    queue = state.queue

    def link_to(row):
        if row is None:
            return None
        other = queue.frame.iloc[row]
        return url_for("match_page", a=other["page_a"], b=other["page_b"], **filters.query())

    history = state.store().history(pair["key_a"], pair["key_b"])
    score = pair["score"]
    return {
        "page_a": pair["page_a"], "page_b": pair["page_b"],
        "score": None if math.isnan(score) else score, "rank": int(pair["rank"]),
        "proposed": bool(pair["proposed"]), "family": int(pair["family"]),
        "verdict": pair["verdict"], "via": pair["via"],
        "a": _page_view(state, pair["page_a"]), "b": _page_view(state, pair["page_b"]),
        "explanation": _explanation(state.out_dir, pair["page_a"], pair["page_b"]),
        "history": [
            {"verdict": v.verdict, "label": VERDICTS[v.verdict], "note": v.note, "user": v.user,
             "time": v.time, "score": v.score} for v in history
        ],
        "previous": link_to(previous), "next": link_to(following),
        "queue": url_for("queue_page", **filters.query()),
        "save": url_for("save_verdict"),
    }
