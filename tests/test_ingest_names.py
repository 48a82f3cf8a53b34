"""Files made from page ids (thumbnails, explanations) are one per page and never too long:
ids that differ only in non-ASCII letters, in a space against an underscore, or that are 125
characters long each keep their own files, and the run writes its report."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from corpus_tools.ingest import MAX_NAME, safe_name
from corpus_tools.networks import pair_key
from sphaera_tables.similarity import SimilarityOptions, run_similarity

SHARED = Path(__file__).parents[2] / "shared"
REAL_PAGE = SHARED / "data" / "real" / "tables" / "1921_pifferi_sfera_1604_p368.jpg"
LONG = ("Sphaera_mundi_cum_commentariis_" * 4)[:116] + "p0001.png"
NAMES = ["Müller/0001.png", "Möller/0001.png", "x y.png", "x_y.png", LONG]


def test_names_are_distinct_bounded_and_plain_ids_unchanged():
    names = [safe_name(name) for name in NAMES]
    assert len(set(names)) == len(NAMES) and len(LONG) == 125
    assert max(map(len, names)) <= MAX_NAME
    assert safe_name("x_y.png") == "x_y.png"
    assert all("__" not in name and "/" not in name for name in names)
    keys = {pair_key(a, b) for a in NAMES for b in NAMES if a != b}
    assert len(keys) == len(NAMES) * (len(NAMES) - 1)


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))
    pages = {}
    for k, name in enumerate(NAMES):
        path = root / "corpus" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pages[name] = grey[300 + 40 * k: 550 + 40 * k, 200:520]
        Image.fromarray(pages[name]).save(path)
    summary = run_similarity(root / "corpus", root / "out", SimilarityOptions(
        min_score=0.0, top_k=2, links=3))
    return root / "out", pages, summary


def test_each_page_keeps_its_own_thumbnail(named_run):
    out, pages, summary = named_run
    assert summary.pages_ok == len(NAMES)
    assert len(list((out / "thumbnails").iterdir())) == len(NAMES)
    for name, grey in pages.items():
        thumbnail = cv2.imread(str(out / "thumbnails" / f"{safe_name(name)}.jpg"),
                               cv2.IMREAD_GRAYSCALE)
        assert thumbnail.shape == grey.shape
        assert np.abs(thumbnail.astype(int) - grey).mean() < 3, name  # its own page, not another


def test_every_match_has_its_explanation_and_the_report_is_written(named_run):
    out, _, summary = named_run
    matches = pd.read_csv(out / "matches.csv", keep_default_na=False)
    assert summary.explanations_written == len(matches) > 0
    for match in matches.itertuples():
        assert (out / "explanations" / f"{pair_key(match.page_a, match.page_b)}.json").is_file()
    assert (out / "report.html").is_file()
