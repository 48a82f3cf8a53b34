"""Read the parts of a results folder that the networks and the report need.

A results folder is written by ``tables similarity`` (design.md section 3). This module reads
``manifest.json``, ``pages.csv`` and ``matches.csv`` forgivingly: a bad row is skipped and
reported with its file and line number, a missing file is reported and the rest goes on, so
that every output that can be made is made.
"""

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from corpus_tools.results_folder import ResultsFolder, read_csv_rows

METADATA_COLUMNS = (
    "book_id", "title", "author", "printer", "publisher", "place", "year", "handle",
)
LIST_COLUMNS = ("author", "printer", "publisher", "place")
"""Metadata columns whose cells may hold several ``;``-separated values."""

_YEAR = re.compile(r"(?<!\d)(\d{3,4})(?!\d)")


class ResultsError(ValueError):
    """A results folder that cannot be read at all (one-line message naming the file)."""


@dataclass
class Match:
    """One candidate match: ``page_b`` is ``page_a``'s ``rank``-th best match (1 = best)."""

    page_a: str
    page_b: str
    score: float
    rank: int


@dataclass
class Results:
    """What a results folder holds, read and checked.

    Attributes
    ----------
    out_dir : Path
        The results folder.
    manifest : dict
        ``manifest.json`` (empty when missing).
    pages : dict
        ``page_id -> record``; a record holds ``page_id``, ``status`` and the metadata columns,
        with list columns as lists of strings, ``year`` as an int or None, others as strings.
        Pages named only in ``matches.csv`` are added with empty metadata.
    matches : list of Match
        The readable rows of ``matches.csv``, in file order.
    warnings : list of str
        One line per problem found (missing files, bad rows, pages without metadata).
    """

    out_dir: Path
    manifest: dict = field(default_factory=dict)
    pages: dict = field(default_factory=dict)
    matches: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def split_list(cell):
    """Values of a ``;``-separated cell, stripped, empties and repeats dropped (``"A; B;"``)."""
    parts = (part.strip() for part in (cell or "").split(";"))
    return list(dict.fromkeys(part for part in parts if part))


def parse_year(cell):
    """First 3- or 4-digit number in a cell (``"1550"``, ``"ca. 1550"``, ``"1550.0"``), or None."""
    found = _YEAR.search(cell or "")
    return int(found.group(1)) if found else None


def empty_record(page_id, status="ok"):
    """A page record with no metadata."""
    record = {"page_id": page_id, "status": status}
    for column in METADATA_COLUMNS:
        record[column] = [] if column in LIST_COLUMNS else ""
    record["year"] = None
    return record


def load_results(out_dir):
    """Read a results folder; see `Results`.

    Raises
    ------
    ResultsError
        When ``out_dir`` is not a folder, or holds neither ``pages.csv`` nor ``matches.csv``.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ResultsError(f"{out_dir}: not a results folder (no such directory)")
    folder = ResultsFolder(out_dir)
    pages_path, matches_path = folder.pages_csv, folder.matches_csv
    if not pages_path.is_file() and not matches_path.is_file():
        raise ResultsError(
            f"{out_dir}: not a results folder (neither pages.csv nor matches.csv); "
            "run `tables similarity CORPUS -o OUT` first"
        )
    results = Results(out_dir=out_dir)
    results.manifest = _read_manifest(folder, results.warnings)
    if pages_path.is_file():
        results.pages = _read_pages(pages_path, results.warnings)
    else:
        results.warnings.append(f"{pages_path}: missing; pages have no metadata")
    if matches_path.is_file():
        results.matches = _read_matches(matches_path, results.warnings)
    else:
        results.warnings.append(f"{matches_path}: missing; there are no candidate matches")
    _add_pages_named_only_in_matches(results)
    return results


def _read_manifest(folder, warnings):
    path = folder.manifest
    if not path.is_file():
        warnings.append(f"{path}: missing; tool version and settings are unknown")
        return {}
    try:
        return folder.read_manifest()
    except (OSError, ValueError) as error:
        warnings.append(f"{path}: unreadable ({error}); tool version and settings are unknown")
        return {}


def _rows(path, required, warnings, expected=()):
    """Rows of a CSV as ``(line_number, row)``, cells as written (spreadsheet-safety ``'``
    removed); nothing (with a warning) if unusable.

    A missing ``required`` column makes the file unusable; a missing ``expected`` one is
    reported and left empty.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        warnings.append(f"{path}: unreadable ({error})")
        return
    with handle:
        try:
            reader = read_csv_rows(handle)
            header = reader.fieldnames or []
            missing = [column for column in required if column not in header]
            if missing:
                warnings.append(f"{path}: no column {', '.join(missing)}; file ignored")
                return
            absent = [column for column in expected if column not in header]
            if absent:
                warnings.append(f"{path}: no column {', '.join(absent)}; left empty")
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError as error:
            warnings.append(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); "
                            "rest of file ignored")
        except csv.Error as error:
            warnings.append(f"{path} line {reader.line_num}: {error}; rest of file ignored")


def _read_pages(path, warnings):
    pages = {}
    for line, row in _rows(path, ["page_id"], warnings, expected=METADATA_COLUMNS):
        page_id = (row.get("page_id") or "").strip()
        if not page_id:
            warnings.append(f"{path} line {line}: empty page_id; row skipped")
            continue
        if page_id in pages:
            warnings.append(f"{path} line {line}: page {page_id!r} listed twice; first row kept")
            continue
        pages[page_id] = _page_record(page_id, row, f"{path} line {line}", warnings)
    return pages


def _page_record(page_id, row, where, warnings):
    record = empty_record(page_id, (row.get("status") or "ok").strip() or "ok")
    for column in METADATA_COLUMNS:
        cell = (row.get(column) or "").strip()
        if column in LIST_COLUMNS:
            record[column] = split_list(cell)
        elif column == "year":
            record["year"] = parse_year(cell)
            if cell and record["year"] is None:
                warnings.append(f"{where}: year {cell!r} is not a year; page left undated")
        else:
            record[column] = cell
    for column, cell in row.items():
        if column and column not in record:
            record[column] = (cell or "").strip()
    return record


def _read_matches(path, warnings):
    matches = []
    for line, row in _rows(path, ["page_a", "page_b", "score"], warnings):
        where = f"{path} line {line}"
        page_a, page_b = (row.get("page_a") or "").strip(), (row.get("page_b") or "").strip()
        if not page_a or not page_b:
            warnings.append(f"{where}: empty page_a or page_b; row skipped")
            continue
        if page_a == page_b:
            warnings.append(f"{where}: page {page_a!r} matched with itself; row skipped")
            continue
        try:
            score = float(row.get("score") or "")
        except ValueError:
            warnings.append(f"{where}: score {row.get('score')!r} is not a number; row skipped")
            continue
        if not math.isfinite(score):
            warnings.append(f"{where}: score {score} is not finite; row skipped")
            continue
        rank_cell = (row.get("rank") or "").strip()
        try:
            rank = int(float(rank_cell)) if rank_cell else 0
        except ValueError:
            warnings.append(f"{where}: rank {rank_cell!r} is not a number; rank left unknown")
            rank = 0
        matches.append(Match(page_a, page_b, score, rank))
    return matches


def _add_pages_named_only_in_matches(results):
    unknown = []
    for match in results.matches:
        for page_id in (match.page_a, match.page_b):
            if page_id not in results.pages:
                results.pages[page_id] = empty_record(page_id)
                unknown.append(page_id)
    if unknown:
        shown = ", ".join(repr(page_id) for page_id in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        results.warnings.append(
            f"{ResultsFolder(results.out_dir).matches_csv}: {len(unknown)} matched page(s) "
            f"not in pages.csv ({shown}{more}); shown without metadata"
        )
