"""Shared fixtures: the real reference data beside the repository and a small synthetic corpus."""

from pathlib import Path

import pytest

SHARED = Path(__file__).parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (real scans and metadata, read-only)."""
    return SHARED


@pytest.fixture(scope="session")
def synthetic_corpus_args() -> dict:
    """Arguments of ``generate_corpus`` for :func:`synthetic_corpus` (to redraw its pages)."""
    return {"pages": 16, "seed": 43, "dpi_range": (150, 200)}


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory, synthetic_corpus_args) -> Path:
    """A 16-page synthetic corpus (two books, all six table types, copied and split tables,
    misprints, non-table pages), written once per test session. Treat it as read-only."""
    from corpus_tools.synth import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("synthetic") / "corpus",
                           **synthetic_corpus_args)


REVIEW_HOSTILE = "Tabulae <script>alert(1)</script><img src=x onerror=alert(2)> & \"Co\""
"""A title that must reach the review app's pages as text, never as markup."""


@pytest.fixture
def review_results(tmp_path) -> Path:
    """A small results folder for the review app: 12 pages of 4 books (book 0's title is
    `REVIEW_HOSTILE`), two random matches a page, thumbnails and one-link explanations."""
    from corpus_tools.networks.fabricate import fabricate_pictures, fabricate_results

    rows = [
        {"page_id": f"book{b}/p{p}.jpg", "book_id": f"book{b}",
         "title": REVIEW_HOSTILE if b == 0 else f"Tractatus {b}", "printer": f"Printer {b % 3}",
         "place": ["Venezia", "Paris"][b % 2], "year": str(1540 + 7 * b),
         "handle": f"hdl.handle.net/21.11103/sphaera.{b}"}
        for b in range(4) for p in range(3)
    ]
    out = fabricate_results(tmp_path / "results", rows, matches_per_page=2, seed=5)
    return fabricate_pictures(out, seed=5)
