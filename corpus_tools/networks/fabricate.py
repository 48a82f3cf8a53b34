"""Fabricate a results folder with real metadata and random matches (tests, benchmarks).

Networks and the report only read ``pages.csv`` and ``matches.csv`` (plus optional pictures),
so a results folder with the real corpus's books, printers, places and years and random
matches exercises them at the real scale without running the detector.
"""

import csv
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from corpus_tools.networks.results import load_results
from corpus_tools.results_folder import EXPLANATIONS, FEATURES, THUMBNAILS, ResultsFolder
from corpus_tools.storage import spreadsheet_safe

_SPHAERA_COLUMNS = {
    "credited_authors": "author", "short_title": "title", "printers": "printer",
    "publishers": "publisher", "place_of_publication": "place", "year_of_publication": "year",
}
_PAGE_SUFFIX = re.compile(r"_p\d+(\.\w+)?$")
PAGES_COLUMNS = (
    "page_id", "status", "width", "height", "scale",
    "book_id", "title", "author", "printer", "publisher", "place", "year", "handle",
)


def sphaera_rows(csv_path):
    """Rows of a Sphaera-style page index (``sphaera_tables_9793.csv``) in the normalised
    columns of ``pages.csv``; the book id is the page id without its ``_p<number>`` suffix."""
    rows = []
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            normalised = {_SPHAERA_COLUMNS.get(key, key): value for key, value in row.items()}
            normalised["book_id"] = _PAGE_SUFFIX.sub("", normalised["page_id"])
            rows.append(normalised)
    return rows


def fabricate_results(out_dir, page_rows, matches_per_page=3, seed=0, tool_version="0.1.0"):
    """Write ``manifest.json``, ``pages.csv`` and ``matches.csv`` into ``out_dir`` (cells
    spreadsheet-safe, as a corpus run writes them).

    Parameters
    ----------
    out_dir : str or Path
        Folder to create (its parents too).
    page_rows : list of dict
        One dict per page with the ``pages.csv`` metadata columns (missing ones left empty;
        other keys become extra columns, e.g. ``iiif_manifest``).
    matches_per_page : int
        Random partners per page; scores uniform in [0, 1), ranked per page (1 = best).
    seed : int
        Random seed: the same arguments give the same folder.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = ResultsFolder(out_dir)
    rng = np.random.default_rng(seed)
    page_ids = [row["page_id"] for row in page_rows]
    with open(folder.pages_csv, "w", newline="", encoding="utf-8") as handle:
        extra = sorted({key for row in page_rows for key in row} - set(PAGES_COLUMNS))
        writer = csv.DictWriter(handle, [*PAGES_COLUMNS, *extra])
        writer.writeheader()
        for row in page_rows:
            row = {"status": "ok", "width": 960, "height": 1425, "scale": 1.0, **row}
            writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    with open(folder.matches_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["page_a", "page_b", "score", "rank"])
        count = min(matches_per_page, len(page_ids) - 1)
        for index, page_a in enumerate(page_ids):
            partners = rng.choice(len(page_ids) - 1, size=count, replace=False)
            partners = [p + 1 if p >= index else p for p in partners]
            scores = np.sort(rng.random(count))[::-1]
            for rank, (partner, score) in enumerate(zip(partners, scores, strict=True), 1):
                writer.writerow([spreadsheet_safe(page_a), spreadsheet_safe(page_ids[partner]),
                                 f"{score:.6f}", rank])
    manifest = {
        "tool_version": tool_version, "config": {"fabricated": True, "seed": seed},
        "model_hash": "", "inputs": {}, "timings": {}, "corpus": str(out_dir),
    }
    folder.manifest.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out_dir


def fabricate_pictures(out_dir, seed=0):
    """Add ``thumbnails/``, ``explanations/`` (PNG + JSON per match) and ``features.npy`` to a
    fabricated results folder: random pictures of the right names and shapes, one digit link
    per explanation."""
    folder = ResultsFolder(out_dir)
    results = load_results(out_dir)
    rng = np.random.default_rng(seed)
    folder.file(THUMBNAILS).mkdir(exist_ok=True)
    folder.file(EXPLANATIONS).mkdir(exist_ok=True)
    ok_pages = [page for page, record in results.pages.items() if record["status"] == "ok"]
    for page_id in results.pages:
        grey = (rng.random((140, 96)) * 255).astype(np.uint8)
        Image.fromarray(grey).save(folder.thumbnail(page_id))
    for match in results.matches:
        colour = (rng.random((80, 200, 3)) * 255).astype(np.uint8)
        Image.fromarray(colour).save(folder.explanation(match.page_a, match.page_b, ".png"))
        explanation = {
            "page_a": match.page_a, "page_b": match.page_b, "score": match.score,
            "residual": 0.0,
            "links": [{
                "box_a": [10, 20, 30, 32], "box_b": [12, 22, 32, 34], "digits_a": "12",
                "digits_b": "12", "relevance": match.score,
            }],
        }
        folder.explanation(match.page_a, match.page_b, ".json").write_text(
            json.dumps(explanation))
    np.save(folder.file(FEATURES), rng.random((len(ok_pages), 100)).astype(np.float32))
    return out_dir
