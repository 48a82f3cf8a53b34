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
