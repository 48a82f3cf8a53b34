"""Books and the transmission of tables between them: which book prints which table on which
page, copied from which earlier edition, with which changes.

A table's numbers are identified by its ``content_id`` (type and computing parameters). Later
books copy a table from an earlier book that printed it, inheriting most of its misprints and
adding new ones; they may print a subset of the rows, split it over two pages and reorder the
column groups. Each book has its own typeface, size, language and rulings.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from corpus_tools.synth.astronomy import TableContent, random_table
from corpus_tools.synth.pages import RULINGS, BookStyle, TablePrint, column_groups
from corpus_tools.synth.typefaces import digit_height_em

AUTHORS = ("Sacrobosco", "Peurbach", "Regiomontanus", "Clavius", "Piccolomini", "Fine",
           "Schoner", "Apian", "Maurolico", "Reinhold", "Stoeffler", "Gemma Frisius")
TITLES = ("Sphaera mundi", "Theoricae novae planetarum", "Tabulae directionum",
          "Cosmographia", "Quaestiones in sphaeram", "De mundi sphaera", "Epitome astronomiae",
          "Tractatus de sphaera", "La sfera del mondo", "Canones tabularum")
PRINTERS = ("Aldus Manutius", "Lucantonio Giunta", "Johann Petreius", "Simon de Colines",
            "Christian Wechel", "Heinrich Petri", "Johann Froben", "Christophe Plantin",
            "Jean de Tournes", "Peter Seitz", "Vincenzo Valgrisi", "Erhard Ratdolt")
PLACES = {"Venice": "italian", "Paris": "french", "Wittenberg": "german", "Lyon": "french",
          "Antwerp": "latin", "Basel": "german", "Cologne": "latin", "Nuremberg": "german",
          "Rome": "italian", "Seville": "spanish", "Leipzig": "latin"}

#: Digits a compositor confuses when setting old-style figures.
CONFUSIONS = {"0": "69", "1": "7", "2": "7", "3": "58", "4": "9", "5": "36", "6": "08",
              "7": "12", "8": "36", "9": "46"}


@dataclass
class Book:
    """One edition: bibliographic record, pages in the corpus and typesetting style."""

    book_id: str
    title: str
    author: str
    printer: str
    publisher: str
    place: str
    year: int | None
    handle: str
    pages: int
    style: BookStyle
    dpi: float


@dataclass
class PagePlan:
    """What one page of the corpus shows. ``table`` is set for table pages only."""

    page_id: str
    book: Book
    kind: str
    page_number: int | None
    table: TablePrint | None = None
    source_book_id: str = ""
    part: int = 0
    misprints: list = field(default_factory=list)


def content_id(content: TableContent) -> str:
    """Stable identifier of a table's numbers: type plus a hash of its parameters."""
    params = json.dumps(content.params, sort_keys=True)
    return f"{content.table_type}-{hashlib.sha1(params.encode()).hexdigest()[:8]}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower().split()[0]) or "book"


def random_style(rng, typefaces, language: str) -> BookStyle:
    """A book's typesetting choices, octavo to quarto pages.

    The type size makes a clean digit 9-12 px high on average at 150 dpi (as in the real scans,
    whatever the typeface's proportions; ink spread and blur add 1-2 px).
    """
    width = rng.uniform(4.2, 6.5)
    typeface = typefaces[rng.integers(len(typefaces))]
    digit_px = rng.uniform(9.0, 12.0)
    return BookStyle(
        typeface=typeface,
        size_pt=float(digit_px / digit_height_em(typeface) * 72 / 150),
        roman_one=bool(rng.random() < 0.3),
        baseline_jitter=float(rng.uniform(0.0, 0.035)),
        language=language if rng.random() < 0.6 else "latin",
        rulings=RULINGS[rng.integers(len(RULINGS))],
        column_gap=float(rng.uniform(0.6, 1.5)),
        line_spacing=float(rng.uniform(1.15, 1.6)),
        page_inches=(width, width * rng.uniform(1.4, 1.55)),
        margin=float(rng.uniform(0.06, 0.1)),
    )


def invent_books(count: int, rng, typefaces, dpi_range) -> list[Book]:
    """``count`` fictitious books with period authors, printers, places and years."""
    books = []
    for k in range(count):
        place = sorted(PLACES)[rng.integers(len(PLACES))]
        author, title = AUTHORS[rng.integers(len(AUTHORS))], TITLES[rng.integers(len(TITLES))]
        printer = PRINTERS[rng.integers(len(PRINTERS))]
        year = int(rng.integers(1472, 1651))
        books.append(Book(f"s{k:04d}_{_slug(author)}_{_slug(title)}_{year}", title, author,
                          printer, printer, place, year, "", 0,
                          random_style(rng, typefaces, PLACES[place]),
                          float(rng.uniform(*dpi_range))))
    return books


def books_from_metadata(metadata, count: int, rng, typefaces, dpi_range) -> list[Book]:
    """``count`` real books drawn from a metadata table (as read by ``read_metadata``), with
    probability proportional to their number of pages there."""
    sizes = metadata.groupby("book_id", sort=True).size()
    count = min(count, len(sizes))
    chosen = rng.choice(len(sizes), size=count, replace=False, p=sizes.to_numpy() / sizes.sum())
    books = []
    for index in sorted(chosen):
        book_id = sizes.index[index]
        record = metadata[metadata["book_id"] == book_id].iloc[0]
        language = PLACES.get(record["place"].split(";")[0], "latin")
        year = None if pd.isna(record["year"]) else int(record["year"])
        books.append(Book(
            book_id, *(record[c] for c in ("title", "author", "printer", "publisher", "place")),
            year, record["handle"],
            int(sizes.iloc[index]), random_style(rng, typefaces, language),
            float(rng.uniform(*dpi_range))))
    return books


def allocate_pages(books: list[Book], pages: int, rng) -> None:
    """Share ``pages`` among the books (in proportion to their real size when known)."""
    weights = np.array([max(book.pages, 1) for book in books], dtype=float)
    weights = weights / weights.sum() if weights.sum() else np.full(len(books), 1 / len(books))
    counts = np.ones(len(books), dtype=int)
    extra = pages - len(books)
    if extra > 0:
        counts += rng.multinomial(extra, weights)
    for book, number in zip(books, counts, strict=True):
        book.pages = int(number)


def _misprint(content: TableContent, rows, printed: dict, rng) -> None:
    row = rows[rng.integers(len(rows))]
    column = int(rng.integers(len(content.columns)))
    text = printed.get((row, column), str(content.rows[row][column]))
    position = int(rng.integers(len(text)))
    choices = CONFUSIONS[text[position]]
    wrong = choices[rng.integers(len(choices))]
    printed[(row, column)] = text[:position] + wrong + text[position + 1:]


def misprint_list(table: TablePrint) -> list:
    """Recorded misprints of the printed rows: [cell_key, position, printed, true digit]."""
    found = []
    for (row, column), text in sorted(table.printed.items()):
        if row not in table.rows:
            continue
        truth = str(table.content.rows[row][column])
        for position, (printed, true) in enumerate(zip(text, truth, strict=True)):
            if printed != true:
                found.append([f"{table.content_id}:{row}:{column}", position, int(printed),
                              int(true)])
    return found


def plan_pages(books: list[Book], rng) -> list[PagePlan]:
    """Decide every page of every book (books in order of year): title page, negatives, tables.

    Returns the page plans in book order, pages numbered ``<book_id>_p<NNN>.jpg`` from 1.
    """
    printed: dict[str, list[tuple[str, dict]]] = {}   # content_id -> [(book_id, misprints)]
    contents: dict[str, TableContent] = {}
    plans: list[PagePlan] = []
    instance = 0
    for book in sorted(books, key=lambda b: (b.year or 0, b.book_id)):
        kinds = []
        if book.pages >= 3:
            kinds.append("title")
        while len(kinds) < book.pages:
            draw = rng.random()
            kinds.append("prose" if draw < 0.15 else "diagram" if draw < 0.22 else "table")
        numbered = rng.random() < 0.6
        folio = int(rng.integers(1, 200))
        this_book: dict[str, list[tuple[str, dict]]] = {}
        index = 0
        while index < len(kinds):
            page_id = f"{book.book_id}_p{index + 1:03d}.jpg"
            number = folio + index if numbered and kinds[index] != "title" else None
            if kinds[index] != "table":
                plans.append(PagePlan(page_id, book, kinds[index], number))
                index += 1
                continue
            source, inherited = "", {}
            if printed and rng.random() < 0.65:
                cid = sorted(printed)[rng.integers(len(printed))]
                source, source_misprints = printed[cid][rng.integers(len(printed[cid]))]
                inherited = {cell: text for cell, text in source_misprints.items()
                             if rng.random() < 0.7}
                content = contents[cid]
            else:
                content = random_table(rng)
                cid = content_id(content)
                contents[cid] = content
            rows = list(range(len(content.rows)))
            if rng.random() < 0.25:
                keep = int(rng.integers(int(0.6 * len(rows)), len(rows) + 1))
                start = int(rng.integers(0, len(rows) - keep + 1))
                rows = rows[start: start + keep]
            group_count = len(column_groups(content))
            order = tuple(int(k) for k in rng.permutation(group_count)) if rng.random() < 0.3 \
                else tuple(range(group_count))
            misprints = dict(inherited)
            for _ in range(int(rng.poisson(1.0))):
                _misprint(content, rows, misprints, rng)
            this_book.setdefault(cid, []).append((book.book_id, misprints))
            parts = 2 if rng.random() < 0.15 and index + 1 < len(kinds) \
                and kinds[index + 1] == "table" and len(rows) >= 10 else 1
            halves = [rows] if parts == 1 else [rows[: len(rows) // 2], rows[len(rows) // 2:]]
            for part, part_rows in enumerate(halves, start=1 if parts > 1 else 0):
                table = TablePrint(f"t{instance:05d}", cid, content, tuple(part_rows), order,
                                   misprints)
                instance += 1
                page_id = f"{book.book_id}_p{index + 1:03d}.jpg"
                number = folio + index if numbered else None
                plans.append(PagePlan(page_id, book, "table", number, table, source, part,
                                      misprint_list(table)))
                index += 1
        for cid, entries in this_book.items():
            printed.setdefault(cid, []).extend(entries)
    return plans
