"""Verdicts to and from CSV, to share them between colleagues (``tables verdicts``).

Columns: ``page_a, page_b, verdict, note, user, time, score`` and, so that a colleague's
folder with other page ids still finds the pages, ``key_a, key_b, model_hash``. An export holds
every verdict (history included); importing a file twice adds nothing the second time. A pair
whose latest verdict in the file differs from the latest one already stored is a conflict: it is
reported and none of its rows is imported (settle it in ``tables review``, then import again).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from corpus_tools.storage import atomic_path, csv_cell_text, spreadsheet_safe
from sphaera_tables.review.verdicts import (
    PageKeys,
    Verdict,
    VerdictError,
    VerdictStore,
    parse_time,
    utc_now,
    verdict_code,
)

CSV_COLUMNS = ("page_a", "page_b", "verdict", "note", "user", "time", "score", "key_a", "key_b",
               "model_hash")
REQUIRED_COLUMNS = ("page_a", "page_b", "verdict")


@dataclass
class ImportReport:
    """What an import did: rows added, rows already stored, conflicts and bad rows (one line
    each, naming the file and line)."""

    imported: int = 0
    already_stored: int = 0
    conflicts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_cell(cell: str | None) -> str:
    """The text of a cell written through ``spreadsheet_safe`` ('' for a missing cell)."""
    return csv_cell_text(cell or "")


def export_csv(store: VerdictStore, path: Path | str) -> int:
    """Write every verdict (oldest first) to ``path`` atomically; returns the row count."""
    verdicts = store.all()
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for verdict in verdicts:
            writer.writerow([
                *map(spreadsheet_safe, (verdict.page_a, verdict.page_b)), verdict.verdict,
                *map(spreadsheet_safe, (verdict.note, verdict.user)), verdict.time,
                "" if verdict.score is None else repr(verdict.score),
                *map(spreadsheet_safe, (verdict.key_a, verdict.key_b)), verdict.model_hash,
            ])
    return len(verdicts)


def import_csv(store: VerdictStore, keys: PageKeys, path: Path | str, default_user: str
               ) -> ImportReport:
    """Add the verdicts of a CSV file to ``store`` (one transaction); see the module doc.

    ``keys`` maps page ids to content hashes for rows without ``key_a``/``key_b``;
    ``default_user`` is the user of rows without one. Bad rows are skipped and reported.
    Raises VerdictError when the file cannot be read or lacks a required column.
    """
    report = ImportReport()
    rows = list(_read_rows(Path(path), keys, default_user, report.errors))
    stored = store.all()
    present = {_identity(verdict) for verdict in stored}
    latest = store.latest()
    file_latest: dict[tuple[str, str], tuple[int, Verdict]] = {}
    for line, verdict in rows:
        seen = file_latest.get(verdict.pair)
        if seen is None or (verdict.time, line) >= (seen[1].time, seen[0]):
            file_latest[verdict.pair] = (line, verdict)
    refused = set()
    for pair, (line, theirs) in file_latest.items():
        ours = latest.get(pair)
        if ours is not None and ours.verdict != theirs.verdict:
            refused.add(pair)
            report.conflicts.append(
                f"{path} line {line}: {theirs.page_a} / {theirs.page_b}: file says "
                f"{theirs.verdict!r} ({theirs.user}, {theirs.time}), this folder says "
                f"{ours.verdict!r} ({ours.user}, {ours.time}); not imported"
            )
    new = []
    for _, verdict in rows:
        if verdict.pair in refused:
            continue
        if _identity(verdict) in present:
            report.already_stored += 1
            continue
        present.add(_identity(verdict))
        new.append(verdict)
    new.sort(key=lambda verdict: verdict.time)
    report.imported = store.record_many(new)
    return report


def _identity(verdict: Verdict) -> tuple:
    """What makes two rows the same verdict (an import of a file seen before adds nothing)."""
    return verdict.key_a, verdict.key_b, verdict.verdict, verdict.note, verdict.user, verdict.time


def _read_rows(path: Path, keys: PageKeys, default_user: str, errors: list[str]):
    """``(line, Verdict)`` for every good row; a bad row adds one line to ``errors``."""
    now = utc_now()
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise VerdictError(f"{path}: cannot read ({error.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [column for column in REQUIRED_COLUMNS if column not in header]
            if missing:
                raise VerdictError(
                    f"{path}: no column {', '.join(missing)}; a verdicts file has the columns "
                    f"{', '.join(CSV_COLUMNS[:7])} (as `tables verdicts --export` writes them)"
                )
            for row in reader:
                try:
                    yield reader.line_num, _verdict_of(row, keys, default_user, now)
                except VerdictError as error:
                    errors.append(f"{path} line {reader.line_num}: {error}; row skipped")
        except UnicodeDecodeError as error:
            raise VerdictError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
                               ) from None
        except csv.Error as error:
            raise VerdictError(f"{path} line {reader.line_num}: {error}") from None


def _verdict_of(row: dict, keys: PageKeys, default_user: str, now: str) -> Verdict:
    page_a, page_b = read_cell(row.get("page_a")).strip(), read_cell(row.get("page_b")).strip()
    if not page_a or not page_b:
        raise VerdictError("empty page_a or page_b")
    if page_a == page_b:
        raise VerdictError(f"page {page_a!r} judged against itself")
    key_a, key_b = read_cell(row.get("key_a")).strip(), read_cell(row.get("key_b")).strip()
    if not (key_a and key_b):
        key_a, key_b = keys.key(page_a), keys.key(page_b)
    if key_b < key_a:
        key_a, key_b, page_a, page_b = key_b, key_a, page_b, page_a
    score_cell = (row.get("score") or "").strip()
    try:
        score = float(score_cell) if score_cell else None
    except ValueError:
        raise VerdictError(f"score {score_cell!r} is not a number") from None
    time_cell = (row.get("time") or "").strip()
    return Verdict(
        key_a, key_b, page_a, page_b, verdict_code(row.get("verdict") or ""),
        read_cell(row.get("note")), read_cell(row.get("user")).strip() or default_user,
        parse_time(time_cell) if time_cell else now, score, (row.get("model_hash") or "").strip(),
    )
