"""The results folder of a corpus run: the one place that names its files and reads them back.

``tables similarity CORPUS -o OUT`` writes these files into OUT; the networks, the report, the
review app and the exports find them through :class:`ResultsFolder` instead of spelling their
names. CSV files are written with :func:`corpus_tools.storage.write_csv_atomic` (formula cells
neutralised by a leading ``'``) and read back through :func:`read_csv_rows`, which undoes it,
so that a page id such as ``=x.png`` stays itself.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from corpus_tools.ingest import safe_name
from corpus_tools.storage import csv_cell_text

PAGES_CSV = "pages.csv"
MATCHES_CSV = "matches.csv"
VARIANTS_CSV = "variants.csv"
FEATURES = "features.npy"
CELL_FEATURES = "cell_features.npz"
STATISTICS = "corpus_statistics.npz"
SIMILARITY = "similarity.npy"
MANIFEST = "manifest.json"
EXPLANATIONS = "explanations"
PIXELS_SUFFIX = "_pixels.png"
"""Suffix of a match's pixel-level picture in ``EXPLANATIONS`` (``tables similarity --pixels``)."""
THUMBNAILS = "thumbnails"
NETWORKS = "networks"
PAGE_XML = "page-xml"
REPORT = "report.html"
CACHE = "cache"
VERDICTS = "verdicts.sqlite"


def pair_key(page_a: str, page_b: str) -> str:
    """Base name of a match's files in ``explanations/`` (``__`` occurs in no safe name)."""
    return f"{safe_name(page_a)}__{safe_name(page_b)}"


@dataclass(frozen=True)
class ResultsFolder:
    """Paths of the files of one results folder (nothing is read or created by the paths)."""

    root: Path

    def __init__(self, root: Path | str):
        object.__setattr__(self, "root", Path(root))

    def file(self, name: str) -> Path:
        """``root/name`` for one of this module's file names."""
        return self.root / name

    @property
    def pages_csv(self) -> Path:
        return self.root / PAGES_CSV

    @property
    def matches_csv(self) -> Path:
        return self.root / MATCHES_CSV

    @property
    def variants_csv(self) -> Path:
        return self.root / VARIANTS_CSV

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def networks(self) -> Path:
        return self.root / NETWORKS

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @staticmethod
    def thumbnail_name(page_id: str) -> str:
        """A page's thumbnail relative to the folder (a link in report.html)."""
        return f"{THUMBNAILS}/{safe_name(page_id)}.jpg"

    def thumbnail(self, page_id: str) -> Path:
        return self.root / self.thumbnail_name(page_id)

    @staticmethod
    def explanation_name(page_a: str, page_b: str, suffix: str) -> str:
        """A match's explanation (``suffix`` ``.json`` or ``.png``) relative to the folder."""
        return f"{EXPLANATIONS}/{pair_key(page_a, page_b)}{suffix}"

    def explanation(self, page_a: str, page_b: str, suffix: str) -> Path:
        return self.root / self.explanation_name(page_a, page_b, suffix)

    def page_xml(self, page_id: str) -> Path:
        """A page's detected digits as PAGE-XML (``tables export``)."""
        return self.root / PAGE_XML / f"{safe_name(page_id)}.xml"

    def cache_file(self, key: str) -> Path:
        """Where the page analysis with cache key ``key`` is kept."""
        return self.root / CACHE / key[:2] / f"{key}.npz"

    def read_manifest(self) -> dict:
        """``manifest.json`` as a dict; raises OSError or ValueError when it is missing or not
        a JSON object (callers that can do without it catch these)."""
        manifest = json.loads(self.manifest.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"{self.manifest}: not a JSON object")
        return manifest


def read_csv_rows(handle):
    """A ``csv.DictReader`` over an open results CSV whose cells come back as the text that
    was written (the spreadsheet-safety ``'`` removed); ``line_num`` as the reader's."""
    return _TextRows(handle)


class _TextRows(csv.DictReader):
    def __next__(self) -> dict:
        row = super().__next__()
        return {key: csv_cell_text(value) if isinstance(value, str) else value
                for key, value in row.items()}


def read_csv_frame(path: Path | str, text_columns) -> pd.DataFrame:
    """A results CSV as a DataFrame: ``text_columns`` (those present) as the text that was
    written (``'`` removed, an empty cell or ``NA`` stays text), the others parsed by pandas
    (an empty cell is NaN)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    text = [column for column in header if column in text_columns]
    frame = pd.read_csv(
        path, encoding="utf-8-sig", dtype={column: str for column in text},
        keep_default_na=False,
        na_values={column: [""] for column in header if column not in text},
    )
    for column in text:
        frame[column] = frame[column].map(csv_cell_text)
    return frame
