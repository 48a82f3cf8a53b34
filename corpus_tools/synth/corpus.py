"""Write a synthetic corpus folder: page images, ``metadata.csv`` and the ground truth in
``truth/`` (pages.csv, tables.csv, digits.csv), as specified in the design's section 3, and
``truth/letters.csv.gz``: a box for every printed character of the words (letters, ampersands,
punctuation), to name the letters a detector reads as digits.

Conventions: boxes are integer pixels of the saved image (x1 / y1 exclusive); ``rotation`` 90
means the page content was turned 90 degrees counter-clockwise in the image (turn the image
clockwise to read it), -90 the other way; ``cell_key`` is ``content_id:row:column`` in the
table's content (not its layout); ``misprints`` lists ``[cell_key, position, printed digit,
true digit]``; ``rows`` / ``group_order`` (extra columns) say which content rows were printed
and in which order the column groups were set. Pages without any printed digit are the
negatives (prose and diagrams; title pages print the year, table pages often a page number).

Every page is drawn from its own random stream seeded by (seed, page index), so the same seed
gives byte-identical files, and any page can be redrawn on its own (``plan_corpus`` then
``make_page``), clean canvas included, to check the ground truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from corpus_tools.metadata import read_metadata
from corpus_tools.synth.canvas import Canvas
from corpus_tools.synth.degrade import ScanGeometry, scan_page
from corpus_tools.synth.editions import (
    PagePlan,
    allocate_pages,
    books_from_metadata,
    invent_books,
    plan_pages,
)
from corpus_tools.synth.pages import typeset_diagram, typeset_prose, typeset_table, typeset_title
from corpus_tools.synth.typefaces import resolve_typefaces
from sphaera_tables.progress import Progress, silent, tracked

PAGE_COLUMNS = ("page_id", "kind", "typeface", "dpi", "width", "height", "rotation")
TABLE_COLUMNS = ("page_id", "instance_id", "content_id", "table_type", "params",
                 "source_book_id", "book_id", "part", "misprints", "rows", "group_order")
DIGIT_COLUMNS = ("page_id", "x0", "y0", "x1", "y1", "digit", "number_id", "position",
                 "instance_id", "cell_key", "typeface")
LETTER_COLUMNS = ("page_id", "x0", "y0", "x1", "y1", "char", "typeface")
LETTERS_FILE = "letters.csv.gz"
"""The letters' truth file in ``truth/`` (compressed: a prose page prints thousands)."""
METADATA_COLUMNS = ("page_id", "book_id", "title", "author", "printer", "publisher", "place",
                    "year", "handle")

#: Mean number of corpus pages per book.
PAGES_PER_BOOK = 10


def render_page(plan: PagePlan, rng) -> tuple[np.ndarray, Canvas]:
    """Clean typeset page of ``plan`` (digits recorded on the canvas) and its ink map."""
    book, style = plan.book, plan.book.style
    canvas = Canvas(round(style.page_inches[0] * book.dpi), round(style.page_inches[1] * book.dpi))
    if plan.kind == "table":
        typeset_table(canvas, style, plan.table, book.dpi, rng, plan.page_number)
    elif plan.kind == "prose":
        typeset_prose(canvas, style, book.dpi, rng, plan.page_number)
    elif plan.kind == "diagram":
        typeset_diagram(canvas, style, book.dpi, rng)
    else:
        imprint = ", ".join(part for part in (book.place, book.printer) if part)
        typeset_title(canvas, style, book.dpi, rng, book.title, book.author, imprint, book.year)
    return canvas.ink(), canvas


def _prepare_folder(out_dir: Path) -> None:
    """Create ``out_dir``; refuse a non-empty folder unless it holds an earlier synthetic corpus,
    whose pages and truth are then replaced."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / "truth" / "pages.csv").is_file():
            raise ValueError(f"{out_dir}: folder is not empty and is not a synthetic corpus; "
                             "choose a new or empty folder")
        for image in out_dir.glob("*.jpg"):
            image.unlink()
        shutil.rmtree(out_dir / "truth")
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)


def plan_corpus(pages: int, seed: int, metadata_csv=None, typefaces=None,
                dpi_range=(150, 300)) -> list[PagePlan]:
    """The plan of every page (book, kind, table, misprints) for ``generate_corpus``'s
    arguments, without drawing anything. Raises ``ValueError`` for bad arguments."""
    if pages < 1:
        raise ValueError(f"pages must be at least 1, not {pages}")
    low, high = dpi_range
    if not 50 <= low <= high <= 1200:
        raise ValueError(f"dpi range must satisfy 50 <= low <= high <= 1200, not {low} {high}")
    names = resolve_typefaces(typefaces if typefaces is None or isinstance(typefaces, str)
                              else ",".join(typefaces))
    rng = np.random.default_rng([seed, 0])
    book_count = max(1, round(pages / PAGES_PER_BOOK))
    if metadata_csv is not None:
        metadata, problems = read_metadata(metadata_csv)
        if metadata.empty:
            raise ValueError(f"{metadata_csv}: no usable rows ({len(problems)} bad rows)")
        books = books_from_metadata(metadata, book_count, rng, names, (low, high))
    else:
        books = invent_books(book_count, rng, names, (low, high))
    allocate_pages(books, pages, rng)
    return plan_pages(books, rng)


def make_page(plan: PagePlan, seed: int, index: int) -> tuple[np.ndarray, ScanGeometry, Canvas]:
    """Draw page number ``index`` of a plan: the scanned image (uint8), the geometry from the
    clean page to the image, and the clean canvas (ink and digit records)."""
    rng = np.random.default_rng([seed, 1, index])
    ink, canvas = render_page(plan, rng)
    image, geometry = scan_page(ink, rng, plan.book.dpi)
    return image, geometry, canvas


def generate_corpus(out_dir, pages: int = 200, seed: int = 0, metadata_csv=None,
                    typefaces=None, dpi_range=(150, 300), progress: Progress = silent) -> Path:
    """Generate a synthetic corpus of scanned-looking table pages with full ground truth.

    Parameters
    ----------
    out_dir : str or Path
        New or empty folder (or an earlier synthetic corpus, which is replaced).
    pages : int
        Number of page images (at least 1).
    seed : int
        Random seed; the same seed and arguments give byte-identical files.
    metadata_csv : str or Path, optional
        Metadata index (Sphaera or simple columns) to take books, printers, places and years
        from, books drawn in proportion to their number of pages there.
    typefaces : str or sequence of str, optional
        ``"train"``, ``"heldout"``, ``"all"`` (default) or typeface names.
    dpi_range : (float, float)
        Scan resolutions in dots per inch, drawn per book (150-600 are realistic).
    progress : Progress
        Follows the pages written, ``progress(done, total, "Generating pages")``
        (:mod:`sphaera_tables.progress`).

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    plans = plan_corpus(pages, seed, metadata_csv, typefaces, dpi_range)
    _prepare_folder(out_dir)

    page_rows, table_rows, digit_rows, letter_rows, meta_rows = [], [], [], [], []
    for index, plan in tracked(enumerate(plans), len(plans), progress, "Generating pages"):
        image, geometry, canvas = make_page(plan, seed, index)
        quality = int(np.random.default_rng([seed, 2, index]).integers(60, 93))
        Image.fromarray(image).save(out_dir / plan.page_id, quality=quality)
        height, width = image.shape[:2]
        book, style = plan.book, plan.book.style
        page_rows.append((plan.page_id, plan.kind, style.typeface, round(book.dpi),
                          width, height, geometry.rotation))
        meta_rows.append((plan.page_id, book.book_id, book.title, book.author, book.printer,
                          book.publisher, book.place, book.year, book.handle))
        if plan.table is not None:
            table = plan.table
            table_rows.append((
                plan.page_id, table.instance_id, table.content_id,
                table.content.table_type, json.dumps(table.content.params, sort_keys=True),
                plan.source_book_id, book.book_id, plan.part, json.dumps(plan.misprints),
                json.dumps(list(table.rows)), json.dumps(list(table.group_order))))
        digit_boxes = _image_boxes(geometry, [r.box for r in canvas.digits], width, height)
        for record, box in zip(canvas.digits, digit_boxes, strict=True):
            digit_rows.append((plan.page_id, *box, record.digit, record.number_id,
                               record.position, record.instance_id, record.cell_key,
                               style.typeface))
        letter_boxes = _image_boxes(geometry, [r.box for r in canvas.letters], width, height)
        for record, box in zip(canvas.letters, letter_boxes, strict=True):
            letter_rows.append((plan.page_id, *box, record.char, style.typeface))

    frames = {
        out_dir / "metadata.csv": (meta_rows, METADATA_COLUMNS),
        out_dir / "truth" / "pages.csv": (page_rows, PAGE_COLUMNS),
        out_dir / "truth" / "tables.csv": (table_rows, TABLE_COLUMNS),
        out_dir / "truth" / "digits.csv": (digit_rows, DIGIT_COLUMNS),
        out_dir / "truth" / LETTERS_FILE: (letter_rows, LETTER_COLUMNS),
    }
    for path, (rows, columns) in frames.items():
        frame = pd.DataFrame(rows, columns=list(columns))
        if "year" in frame:
            frame["year"] = frame["year"].astype("Int64")
        gzipped = {"method": "gzip", "mtime": 0} if path.suffix == ".gz" else None
        frame.to_csv(path, index=False, lineterminator="\n", compression=gzipped)
    return out_dir


def _image_boxes(geometry: ScanGeometry, boxes, width: int, height: int) -> list[tuple]:
    """Clean-page boxes (x0, y0, x1, y1) mapped into the saved image of ``width`` x ``height``
    px, clipped to it, as tuples of int."""
    if not boxes:
        return []
    mapped = geometry.map_boxes(np.asarray(boxes, dtype=np.float64))
    mapped[:, :2] = np.maximum(mapped[:, :2], 0)
    mapped[:, 2] = np.minimum(mapped[:, 2], width)
    mapped[:, 3] = np.minimum(mapped[:, 3], height)
    return [tuple(int(v) for v in row) for row in mapped]
