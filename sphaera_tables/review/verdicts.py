"""The verdict store: historians' judgements of candidate matches, in SQLite in the results folder.

One table, append-only: every verdict ever given is a row (who, when, the score and the
detector's model hash at that moment); for each pair the latest row (by time, then by order of
writing) counts. A pair is keyed by the two pages' content hashes (SHA-256 of the image file,
``manifest.json`` ``inputs``), so a rerun of ``tables similarity`` with more pages or another
detector keeps every verdict; the page ids are kept for display. A page without a known hash
(a results folder without ``inputs``) is keyed ``page:<page_id>``.

The database runs in WAL mode with a busy timeout, and every write is its own committed
transaction (``BEGIN IMMEDIATE``), so that two servers on one folder (two colleagues) both write
without losing a verdict, and a verdict reported as saved survives a killed server.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import sqlite3
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path

DATABASE_FILE = "verdicts.sqlite"
VERDICTS = {
    "same_table": "same table",
    "rows_shared": "some rows shared",
    "same_kind": "same kind of table, other numbers",
    "unrelated": "unrelated",
}
"""Stored verdict codes and what they mean, in the order of the review keys 1-4."""
CONFIRMED = ("same_table", "rows_shared")
"""Verdicts that confirm the two pages print (some of) the same numbers."""
UNREVIEWED = "unreviewed"
PROPAGATED = "propagated"
"""Not stored: a pair without a verdict, and one suggested by transitivity (see propagation)."""
STATE_WORDS = {**VERDICTS, UNREVIEWED: "not reviewed",
               PROPAGATED: "suggested by transitivity (propagated)"}
"""How each state of a pair reads in the app and the report."""
BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another one (another server, an import) before giving up."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY,
    key_a TEXT NOT NULL,
    key_b TEXT NOT NULL,
    page_a TEXT NOT NULL,
    page_b TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ({", ".join(f"'{code}'" for code in VERDICTS)})),
    note TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL,
    time TEXT NOT NULL,
    score REAL,
    model_hash TEXT NOT NULL DEFAULT '',
    CHECK (key_a <= key_b)
);
CREATE INDEX IF NOT EXISTS verdicts_by_pair ON verdicts (key_a, key_b);
"""
_COLUMNS = ("key_a", "key_b", "page_a", "page_b", "verdict", "note", "user", "time", "score",
            "model_hash")
_row_of = attrgetter(*_COLUMNS)
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
_VERDICT_NAMES = {name: code for code, words in VERDICTS.items()
                  for name in (code.replace("_", " "), words)}


class VerdictError(ValueError):
    """A verdict that cannot be stored (unknown verdict code, bad time); the message says why."""


@dataclass(slots=True)
class Verdict:
    """One judgement of a pair of pages; ``key_a <= key_b`` and pages in the same order."""

    key_a: str
    key_b: str
    page_a: str
    page_b: str
    verdict: str
    note: str
    user: str
    time: str
    score: float | None = None
    model_hash: str = ""
    id: int | None = None

    @property
    def pair(self) -> tuple[str, str]:
        return self.key_a, self.key_b

    def row(self) -> tuple:
        return _row_of(self)


def utc_now() -> str:
    """The current time as stored: ISO 8601 UTC with microseconds (sorts as text)."""
    return utc_time(datetime.datetime.now(datetime.timezone.utc))


def utc_time(moment: datetime.datetime) -> str:
    """``moment`` in the stored form; a time without zone is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=4096)
def parse_time(text: str) -> str:
    """An ISO 8601 time (``2026-01-31T10:00:00Z``, ``2026-01-31 10:00``) in the stored form."""
    text = text.strip()
    if _STORED_TIME.match(text):
        return text
    try:
        return utc_time(datetime.datetime.fromisoformat(text.strip()))
    except ValueError:
        raise VerdictError(f"time {text!r} is not an ISO 8601 time (e.g. 2026-01-31T10:00:00Z)") \
            from None


def verdict_code(text: str) -> str:
    """The stored code of a verdict given as code or as its words (any case)."""
    wanted = " ".join(text.strip().lower().replace("_", " ").split())
    if wanted in _VERDICT_NAMES:
        return _VERDICT_NAMES[wanted]
    choices = ", ".join(f"{code} ({words})" for code, words in VERDICTS.items())
    raise VerdictError(f"verdict {text!r} is not one of {choices}")


class PageKeys:
    """Content-hash keys of the pages of a results folder (``manifest.json`` ``inputs``)."""

    def __init__(self, hashes: dict[str, str]):
        self.hashes = dict(hashes)
        self.pages = {digest: page_id for page_id, digest in self.hashes.items()}

    @classmethod
    def of_results(cls, out_dir: Path | str) -> PageKeys:
        """The keys of ``out_dir``'s pages; none known when the manifest is missing or bad."""
        try:
            manifest = json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
            inputs = manifest.get("inputs") or {}
        except (OSError, ValueError, AttributeError):
            inputs = {}
        return cls({str(page): str(digest) for page, digest in dict(inputs).items()})

    def key(self, page_id: str) -> str:
        return self.hashes.get(page_id) or f"page:{page_id}"

    def page(self, key: str, fallback: str) -> str:
        """The page id that ``key`` has in this results folder (``fallback`` if none)."""
        if key.startswith("page:"):
            return key[5:]
        return self.pages.get(key, fallback)

    def pair(self, page_a: str, page_b: str) -> tuple[str, str, str, str]:
        """``(key_a, key_b, page_a, page_b)`` ordered by key, as the store keeps a pair."""
        key_a, key_b = self.key(page_a), self.key(page_b)
        if key_b < key_a:
            return key_b, key_a, page_b, page_a
        return key_a, key_b, page_a, page_b


def model_hash_of(out_dir: Path | str) -> str:
    """The detector's model hash recorded in ``out_dir/manifest.json`` ('' if unknown)."""
    try:
        manifest = json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest.get("model_hash") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def new_verdict(pair: tuple[str, str, str, str], verdict: str, note: str, user: str,
                score: float | None = None, model_hash: str = "", time: str | None = None
                ) -> Verdict:
    """A verdict on a pair ``(key_a, key_b, page_a, page_b)`` as `PageKeys.pair` gives it,
    checked (time: now by default)."""
    key_a, key_b, first, second = pair
    if not user.strip():
        raise VerdictError("a verdict needs a user name (--user NAME)")
    return Verdict(key_a, key_b, first, second, verdict_code(verdict), note, user.strip(),
                   time or utc_now(), score, model_hash)


class VerdictStore:
    """The verdicts of one results folder (``OUT/verdicts.sqlite``).

    One connection per store object; open one per thread or process. Use as a context
    manager, or call `close`.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = FULL")
        self.connection.executescript(_SCHEMA)

    @classmethod
    def of_results(cls, out_dir: Path | str) -> VerdictStore:
        return cls(Path(out_dir) / DATABASE_FILE)

    def __enter__(self) -> VerdictStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def _transaction(self):
        return _Transaction(self.connection)

    def record(self, verdict: Verdict) -> Verdict:
        """Append one verdict and commit it; returns it with its row id."""
        with self._transaction():
            cursor = self.connection.execute(
                f"INSERT INTO verdicts ({', '.join(_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_COLUMNS))})", verdict.row(),
            )
        return replace(verdict, id=cursor.lastrowid)

    def record_many(self, verdicts: list[Verdict]) -> int:
        """Append many verdicts in one committed transaction (an import); returns the count."""
        with self._transaction():
            self.connection.executemany(
                f"INSERT INTO verdicts ({', '.join(_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_COLUMNS))})", (verdict.row() for verdict in verdicts),
            )
        return len(verdicts)

    def latest(self) -> dict[tuple[str, str], Verdict]:
        """The verdict that counts for every reviewed pair, by ``(key_a, key_b)``."""
        return merge_latest({}, self.since(0))

    def since(self, last_id: int) -> list[Verdict]:
        """The verdicts written after row ``last_id`` (by anyone), in order of writing."""
        rows = self.connection.execute(
            f"SELECT id, {', '.join(_COLUMNS)} FROM verdicts WHERE id > ? ORDER BY id",
            (last_id,),
        ).fetchall()
        return [_verdict(row) for row in rows]

    def history(self, key_a: str, key_b: str) -> list[Verdict]:
        """Every verdict given on one pair, oldest first."""
        key_a, key_b = sorted((key_a, key_b))
        rows = self.connection.execute(
            f"SELECT id, {', '.join(_COLUMNS)} FROM verdicts WHERE key_a = ? AND key_b = ? "
            "ORDER BY time, id", (key_a, key_b),
        ).fetchall()
        return [_verdict(row) for row in rows]

    def all(self) -> list[Verdict]:
        """Every verdict, in order of time (history included)."""
        rows = self.connection.execute(
            f"SELECT id, {', '.join(_COLUMNS)} FROM verdicts ORDER BY time, id").fetchall()
        return [_verdict(row) for row in rows]


def stored_page_ids(latest: dict[tuple[str, str], Verdict]) -> dict[str, str]:
    """Key -> the page id it had when judged (names pages that this run does not hold)."""
    names = {}
    for verdict in latest.values():
        names[verdict.key_a], names[verdict.key_b] = verdict.page_a, verdict.page_b
    return names


def merge_latest(latest: dict[tuple[str, str], Verdict], verdicts: list[Verdict]
                 ) -> dict[tuple[str, str], Verdict]:
    """Update ``latest`` (pair -> the verdict that counts) with more verdicts: the later time
    wins, and of two at one time the one written last. Returns ``latest``."""
    for verdict in verdicts:
        current = latest.get(verdict.pair)
        if current is None or (verdict.time, verdict.id) > (current.time, current.id):
            latest[verdict.pair] = verdict
    return latest


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write lock is taken at
    the start, so that two writers queue on the busy timeout instead of failing midway."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *rest):
        self.connection.execute("ROLLBACK" if kind else "COMMIT")


def _verdict(row) -> Verdict:
    values = dict(zip(("id", *_COLUMNS), row, strict=True))
    return Verdict(**values)
