"""The one progress protocol (sphaera_tables/progress.py) at its call sites, and ``--pixels``.

A tiny corpus drawn here (three pages of two-digit numbers; two pages print one table) keeps
the runs short: long steps must report ``progress(done, total, message)`` non-decreasing from
0 to ``total``; ``--quiet`` must keep standard error empty; a corpus run with ``--pixels``
writes a pixel-level picture beside every explanation and redoes a pair whose picture is
missing.
"""

import json
from collections import defaultdict

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from sphaera_tables import progress as progress_module
from sphaera_tables.cli import main
from sphaera_tables.progress import progress_bar, silent, tracked
from sphaera_tables.similarity import PIXELS_SUFFIX, SimilarityOptions, run_similarity


def draw_page(path, table_seed: int) -> None:
    """A page of 7 rows of three pairs of numbers (digits about 15 px high), white paper."""
    image = np.full((230, 320), 255, np.uint8)
    rows = np.random.default_rng(table_seed).integers(0, 60, size=(7, 3))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            cv2.putText(image, f"{value:02d} {(value * 7) % 60:02d}", (20 + 100 * c, 30 + 27 * r),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0, 2, cv2.LINE_AA)
    cv2.imwrite(str(path), image)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("tiny") / "corpus"
    corpus.mkdir()
    for name, table in (("a.png", 1), ("b.png", 1), ("c.png", 2)):
        draw_page(corpus / name, table)
    return corpus


class Recorder:
    """A progress callback that keeps every call, per message."""

    def __init__(self):
        self.calls = defaultdict(list)

    def __call__(self, done, total, message=""):
        self.calls[message].append((done, total))

    def assert_well_formed(self):
        assert self.calls
        for message, calls in self.calls.items():
            done = [d for d, _ in calls]
            totals = {t for _, t in calls}
            assert len(totals) == 1, message
            assert done == sorted(done), message
            assert done[0] == 0 and done[-1] == totals.pop(), message


def test_tracked_reports_each_item_once_it_is_done():
    recorder = Recorder()
    seen = []
    for item in tracked("abc", 3, recorder, "letters"):
        seen.append((item, recorder.calls["letters"][-1][0]))
    assert seen == [("a", 0), ("b", 1), ("c", 2)]
    assert recorder.calls["letters"] == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_the_bar_is_silent_when_quiet_or_off_a_terminal(monkeypatch):
    with progress_bar(quiet=True) as progress:
        assert progress is silent
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: False)
    with progress_bar() as progress:
        assert progress is silent


def test_a_corpus_run_reports_every_long_step_and_writes_pixel_pictures(tiny_corpus, tmp_path):
    out = tmp_path / "results"
    recorder = Recorder()
    summary = run_similarity(tiny_corpus, out, SimilarityOptions(pixels=True),
                             progress=recorder)
    recorder.assert_well_formed()
    assert {"Analysing pages", "Searching", "Explaining matches",
            "Networks and report"} <= set(recorder.calls)
    assert summary.matches >= 2
    explanations = out / "explanations"
    pictures = sorted(explanations.glob(f"*{PIXELS_SUFFIX}"))
    assert len(pictures) == summary.matches == summary.explanations_written
    records = [json.loads(p.read_text()) for p in explanations.glob("*.json")]
    assert all(abs(r["pixel_residual"]) < 1e-3 for r in records)

    # resume: a pair whose pixel picture is missing is redone, and only that pair
    missing = pictures[0]
    kept = {p: p.read_bytes() for p in explanations.iterdir() if p != missing}
    missing.unlink()
    again = run_similarity(tiny_corpus, out, SimilarityOptions(pixels=True))
    assert again.explanations_written == 1 and missing.exists()
    assert {p: p.read_bytes() for p in kept} == kept

    # a run without --pixels ends as a fresh one: no pixel pictures, explanations redone
    plain = run_similarity(tiny_corpus, out, SimilarityOptions())
    assert not list(explanations.glob(f"*{PIXELS_SUFFIX}"))
    assert plain.explanations_written == plain.matches


def test_tables_explain_shows_progress_on_a_terminal_and_nothing_with_quiet(tiny_corpus,
                                                                           tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: True)
    pages = [str(tiny_corpus / "a.png"), str(tiny_corpus / "b.png")]
    runner = CliRunner()
    quiet = runner.invoke(main, ["explain", *pages, "-o", str(tmp_path / "q.png"), "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    shown = runner.invoke(main, ["explain", *pages, "-o", str(tmp_path / "s.png")])
    assert shown.exit_code == 0, shown.output
    assert "Pixel relevance, page A" in shown.stderr
    assert (tmp_path / "s_pixels.png").exists()
