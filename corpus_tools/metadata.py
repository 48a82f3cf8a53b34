"""Read the bibliographic metadata of a corpus (``metadata.csv``), one row per page or per book.

Two column sets are understood: the Sphaera index (``page_id, credited_authors, short_title,
printers, publishers, place_of_publication, year_of_publication, handle``) and simple ones
(``page_id, book_id, title, author, printer, publisher, place, year``). Both are normalised to
:data:`COLUMNS`. Lists inside a cell stay ``;``-separated strings. Bad rows are reported with
their line number (the header is line 1) and left out; the rest is kept.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = ("page_id", "book_id", "title", "author", "printer", "publisher", "place", "year",
           "handle")

#: Sphaera column -> normalised column.
SPHAERA_COLUMNS = {
    "credited_authors": "author",
    "short_title": "title",
    "printers": "printer",
    "publishers": "publisher",
    "place_of_publication": "place",
    "year_of_publication": "year",
}

PAGE_SUFFIX = re.compile(r"_p\d+$")


@dataclass(frozen=True)
class FileProblem:
    """A problem with one file or one row of it; ``line`` is None for the whole file."""

    file: str
    line: int | None
    reason: str

    def __post_init__(self):
        # one line per problem, whatever the file held: control characters are shown escaped
        printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.reason)
        object.__setattr__(self, "reason", printable)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


def book_id_from_page(page_id: str) -> str:
    """Book of a page id ``<book>_p<N>.<ext>`` (folders and extension dropped)."""
    stem = Path(page_id).name.rsplit(".", 1)[0]
    return PAGE_SUFFIX.sub("", stem)


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and ``(line number, row dict)`` pairs of a CSV file, all values as stripped text.

    Line numbers are physical lines of the file (quoted cells may span lines); the header is
    line 1. Raises ``ValueError`` with a one-line reason when the file is not readable as CSV.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            rows = []
            line = reader.line_num
            for values in reader:
                rows.append((line + 1, {name: (values[k].strip() if k < len(values) else "")
                                        for k, name in enumerate(header)}))
                line = reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read as CSV ({error})") from error
    if not header:
        raise ValueError(f"{path}: empty file, expected a header row")
    return header, rows


def _parse_year(text: str) -> int | None:
    """Year as an int; accepts ``1550``, ``1550.0`` and ``1550-01-01``; empty -> None."""
    if not text:
        return None
    match = re.fullmatch(r"(\d{3,4})(?:\.0+|-\d\d-\d\d.*)?", text)
    if not match:
        raise ValueError(f"year {text!r} is not a year")
    return int(match.group(1))


def read_metadata(path) -> tuple[pd.DataFrame, list[FileProblem]]:
    """Read a metadata CSV and normalise it to :data:`COLUMNS`.

    Parameters
    ----------
    path : str or Path
        CSV file with Sphaera or simple columns (read by name; others are ignored).

    Returns
    -------
    metadata : DataFrame
        One row per input row that parsed: page_id (empty for a per-book row), book_id (derived
        from page_id ``<book>_p<N>`` when absent), title, author, printer, publisher, place
        (text, empty when unknown), year (nullable ``Int64``), handle.
    problems : list of FileProblem
        One per bad row (missing id, unparseable year, duplicate page) with its line number.
    """
    path = Path(path)
    header, rows = read_csv_rows(path)
    columns = {name: SPHAERA_COLUMNS.get(name, name) for name in header}
    if "page_id" not in columns.values() and "book_id" not in columns.values():
        found = ", ".join(repr(name) if not name.isprintable() else name for name in header)
        raise ValueError(f"{path}: no page_id or book_id column (found: {found})")
    records, problems, seen = [], [], set()
    for line, raw in rows:
        values = {columns[name]: value for name, value in raw.items()}
        record = {name: values.get(name, "") for name in COLUMNS}
        if not record["book_id"] and record["page_id"]:
            record["book_id"] = book_id_from_page(record["page_id"])
        if not record["book_id"]:
            problems.append(FileProblem(str(path), line, "no page_id and no book_id"))
            continue
        try:
            record["year"] = _parse_year(record["year"])
        except ValueError as error:
            problems.append(FileProblem(str(path), line, str(error)))
            continue
        key = record["page_id"] or ("book", record["book_id"])
        if key in seen:
            problems.append(FileProblem(str(path), line, f"duplicate row for {key}"))
            continue
        seen.add(key)
        records.append(record)
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    frame["year"] = frame["year"].astype("Int64")
    return frame, problems


def metadata_for_pages(metadata: pd.DataFrame, page_ids) -> pd.DataFrame:
    """Metadata of each page in ``page_ids`` (same order): its own row, else its book's row.

    Pages with neither get an empty row with only page_id and book_id.
    """
    pages = metadata[metadata["page_id"] != ""].set_index("page_id")
    books = metadata[metadata["page_id"] == ""].set_index("book_id")
    records = []
    for page_id in page_ids:
        book_id = book_id_from_page(page_id)
        if page_id in pages.index:
            record = pages.loc[page_id].to_dict()
        elif book_id in books.index:
            record = books.loc[book_id].to_dict() | {"book_id": book_id}
        else:
            record = {name: "" for name in COLUMNS[2:]} | {"book_id": book_id, "year": None}
        records.append(record | {"page_id": page_id})
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    frame["year"] = frame["year"].astype("Int64")
    return frame
