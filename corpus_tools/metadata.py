"""Read the bibliographic metadata of a corpus (``metadata.csv``), one row per page or per book.

Two column sets are understood: the Sphaera index (``page_id, credited_authors, short_title,
printers, publishers, place_of_publication, year_of_publication, handle``) and simple ones
(``page_id, book_id, title, author, printer, publisher, place, year``), in any letter case.
Both are normalised to :data:`COLUMNS`. Lists inside a cell stay ``;``-separated strings. Files
are read as spreadsheets and library catalogues save them (see :func:`read_csv_rows`); years as
catalogues write them (see :func:`parse_year`) keep their row. Problems are reported with their
line number (the header is line 1); only rows naming no page or book, and repeated rows, are
left out.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMNS = ("page_id", "book_id", "title", "author", "printer", "publisher", "place", "year",
           "handle", "year_text", "year_uncertain", "manifest", "canvas", "attribution",
           "rights", "homepage", "line")
"""``year`` is the year read from ``year_text`` (as the file gave it); ``year_uncertain`` is
True when the file marks it as uncertain or gives a range; ``manifest`` and ``canvas`` link a
page that came from IIIF to its library's record (with the manifest's ``attribution``,
``rights`` and ``homepage``); ``line`` is the row's line in the file (the header is line 1)."""

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
ENCODINGS = (("utf-8-sig", "UTF-8"), ("utf-16", "UTF-16"), ("cp1252", "Windows-1252"),
             ("latin-1", "Latin-1"))
SAVE_AS_UTF8 = ("save it as UTF-8 (Excel: Save As > 'CSV UTF-8'; LibreOffice: Save As > Text "
                "CSV, character set 'Unicode (UTF-8)')")
SEPARATORS = (",", ";", "\t", "|")
MIN_YEAR, MAX_YEAR = 1000, 2099
ROMAN = {"M": 1000, "D": 500, "C": 100, "L": 50, "X": 10, "V": 5, "I": 1}


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
    """Book of a page id: ``<book>_p<N>.<ext>`` (folders and extension dropped), a PDF or
    multi-page TIFF ``<book>.pdf#p<N>``, else the folder a page lies in (a folder per book), else
    the file name without extension."""
    file_id = page_id.split("#", 1)[0]
    stem = Path(file_id).name.rsplit(".", 1)[0]
    if PAGE_SUFFIX.search(stem) or file_id != page_id or "/" not in file_id:
        return PAGE_SUFFIX.sub("", stem)
    return file_id.rsplit("/", 1)[0]


def read_csv_rows(path: Path, notes: list | None = None
                  ) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and ``(line number, row dict)`` pairs of a CSV file, all values as stripped text.

    The file may be UTF-8 (with or without BOM), UTF-16 (with BOM) or Windows-1252/Latin-1, as
    spreadsheets save it; a file that is not UTF-8 adds a note to ``notes`` saying how it was
    read and how to save it as UTF-8. The separator (``,`` ``;`` tab or ``|``) is the one the
    header uses most; header names are matched case-insensitively (``Page ID`` is ``page_id``).
    Line numbers are physical lines of the file (quoted cells may span lines); the header is
    line 1. Raises ``ValueError`` with a one-line reason when the file is not readable as CSV.
    A row that the CSV reader cannot take (a cell beyond its size limit) is left out, with a
    note naming its line in ``notes``; without ``notes`` it is a ``ValueError`` naming the line.
    """
    text = _decoded_text(Path(path), notes)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(text))
    try:
        header = [_column_name(name) for name in next(reader, [])]
    except csv.Error as error:
        raise ValueError(f"{path}: cannot read as CSV ({error})") from error
    rows = []
    line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if notes is None:
                raise ValueError(f"{path}: cannot read line {line + 1} as CSV ({error})"
                                 ) from error
            notes.append(FileProblem(str(path), line + 1, f"cannot read the row as CSV "
                                                          f"({error}); the row is not used"))
        else:
            rows.append((line + 1, {name: (values[k].strip() if k < len(values) else "")
                                    for k, name in enumerate(header)}))
        line = reader.line_num
    if not header:
        raise ValueError(f"{path}: empty file, expected a header row")
    return header, rows


def _decoded_text(path: Path, notes: list | None) -> str:
    """The text of a CSV file in whichever of :data:`ENCODINGS` reads it first."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read as CSV ({error.strerror})") from error
    for encoding, name in ENCODINGS:
        if encoding.startswith("utf-16") and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        if encoding != "utf-8-sig" and notes is not None:
            notes.append(FileProblem(str(path), None, f"not UTF-8, read as {name}; if names "
                                     f"look wrong, {SAVE_AS_UTF8}"))
        return text
    raise ValueError(f"{path}: cannot read as CSV (binary data, or a text encoding other than "
                     f"UTF-8, UTF-16 or Windows-1252); {SAVE_AS_UTF8}")


def _separator(text: str) -> str:
    header = text.split("\n", 1)[0]
    return max(SEPARATORS, key=header.count) if any(c in header for c in SEPARATORS) else ","


def _column_name(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def parse_year(text: str) -> tuple[int | None, bool]:
    """``(year, uncertain)`` of a date as catalogues write it; ``(None, False)`` when empty.

    Exact: ``1585``, ``1585.0``, ``1585-01-01``, Roman ``MDCIV`` (also ``M.D.C.IV.``).
    Uncertain (the earliest year meant): ``1585?``, ``[1585]``, ``[ca. 1585]``, ``c1550``,
    ``circa 1550``, ``1585-1590``, ``1585/90``, ``158-`` (the 1580s), ``15--``. Raises
    ``ValueError`` when no year can be read from the text.
    """
    text = text.strip()
    if not text:
        return None, False
    exact = re.fullmatch(r"(\d{3,4})(?:\.0+|-\d\d-\d\d.*)?", text)
    if exact:
        return int(exact.group(1)), False
    roman = _roman(text)
    if roman is not None:
        return roman, False
    decade = re.search(r"(?<!\d)(1\d)(\d|[-?xu])([-?xu])(?!\d)", text.lower())
    number = re.search(r"(?<!\d)(\d{4})(?!\d)", text)
    if number and MIN_YEAR <= int(number.group(1)) <= MAX_YEAR:
        return int(number.group(1)), True
    if decade:
        return int(re.sub(r"[-?xu]", "0", "".join(decade.groups()))), True
    raise ValueError(f"year {text!r} is not a year")


def _roman(text: str) -> int | None:
    """The value of a Roman numeral year (dots and spaces between letters allowed)."""
    letters = re.sub(r"[.\s]", "", text.upper())
    if not letters or not re.fullmatch(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})",
                                       letters):
        return None
    values = [ROMAN[letter] for letter in letters]
    total = sum(-v if v < w else v for v, w in zip(values, values[1:] + [0], strict=True))
    return total if MIN_YEAR <= total <= MAX_YEAR else None


def read_metadata(path) -> tuple[pd.DataFrame, list[FileProblem]]:
    """Read a metadata CSV and normalise it to :data:`COLUMNS`.

    Parameters
    ----------
    path : str or Path
        CSV file with Sphaera or simple columns (read by name; others are ignored).

    Returns
    -------
    metadata : DataFrame
        One row per input row naming a page or book: page_id (empty for a per-book row),
        book_id (from the page id when absent, see :func:`book_id_from_page`), title, author,
        printer, publisher, place (text, empty when unknown), year (nullable ``Int64``),
        handle, year_text, year_uncertain, line.
    problems : list of FileProblem
        The file's encoding if not UTF-8, and one per row with a problem (missing id, year that
        is not a year, duplicate) with its line number.
    """
    path = Path(path)
    problems: list[FileProblem] = []
    header, rows = read_csv_rows(path, problems)
    columns = {name: SPHAERA_COLUMNS.get(name, name) for name in header}
    if "page_id" not in columns.values() and "book_id" not in columns.values():
        found = ", ".join(repr(name) if not name.isprintable() else name for name in header)
        raise ValueError(f"{path}: no page_id or book_id column (found: {found})")
    records, seen = [], set()
    for line, raw in rows:
        values = {columns[name]: value for name, value in raw.items()}
        record = {name: values.get(name, "") for name in COLUMNS} | {"line": line}
        if not record["book_id"] and record["page_id"]:
            record["book_id"] = book_id_from_page(record["page_id"])
        if not record["book_id"]:
            problems.append(FileProblem(str(path), line, "no page_id and no book_id"))
            continue
        record["year_text"] = record["year"]
        try:
            record["year"], record["year_uncertain"] = parse_year(record["year_text"])
        except ValueError as error:
            problems.append(FileProblem(str(path), line, f"{error}; the row is kept without "
                                                         "a year"))
            record["year"], record["year_uncertain"] = None, True
        key = record["page_id"] or ("book", record["book_id"])
        if key in seen:
            problems.append(FileProblem(str(path), line, f"duplicate row for {key}"))
            continue
        seen.add(key)
        records.append(record)
    problems.sort(key=lambda problem: problem.line or 0)  # the file's own notes first
    return _typed(pd.DataFrame(records, columns=list(COLUMNS))), problems


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["year"] = frame["year"].astype("Int64")
    frame["year_uncertain"] = frame["year_uncertain"].astype(bool)
    frame["line"] = frame["line"].astype("Int64")
    return frame


def rows_naming_no_page(metadata: pd.DataFrame, page_ids, file: str) -> list[FileProblem]:
    """A problem for each row of ``metadata`` (read from ``file``) that names a page, or a
    book, that none of ``page_ids`` is."""
    pages = set(page_ids)
    books = {book_id_from_page(page_id) for page_id in pages}
    problems = []
    for row in metadata.itertuples(index=False):
        if row.page_id and row.page_id not in pages:
            problems.append(FileProblem(file, row.line, f"page {row.page_id!r} is not in the "
                                                        "corpus; the row is not used"))
        elif not row.page_id and row.book_id not in books:
            problems.append(FileProblem(file, row.line, f"no page of book {row.book_id!r} is in "
                                                        "the corpus; the row is not used"))
    return problems


def metadata_for_pages(metadata: pd.DataFrame | None, page_ids) -> pd.DataFrame:
    """Metadata of each page in ``page_ids`` (same order): its own row, else its book's row.

    Pages with neither (or all pages, when ``metadata`` is None) get an empty row with only
    page_id and book_id.
    """
    if metadata is None:
        metadata = pd.DataFrame(columns=list(COLUMNS))
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
            record = {name: "" for name in COLUMNS[2:]} | {
                "book_id": book_id, "year": None, "year_uncertain": False, "line": None}
        records.append(record | {"page_id": page_id})
    return _typed(pd.DataFrame(records, columns=list(COLUMNS)))
