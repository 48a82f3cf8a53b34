"""The parts of ``tables evaluate matches`` (sphaera_tables.evaluation) on hand-made inputs
with answers worked out by hand: truth contents, the cell under each detected number, the
scores of one explained pair, the pixel baseline, retrieval edge cases. Fast: no corpus run."""

import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from corpus_tools.page_sources import PageSource
from sphaera_tables.evaluation import (
    baseline_features,
    number_cells,
    page_contents,
    pair_scores,
    printed_cells,
    retrieval_scores,
)


def test_page_contents_reads_rows_and_types_of_every_table(tmp_path):
    (tmp_path / "tables.csv").write_text(
        "page_id,content_id,table_type,rows\n"
        'p1.jpg,climate-a,climate,"[0, 1]"\n'
        'p1.jpg,sine-b,sine,"[4]"\n'
        'p2.jpg,climate-a,climate,"[1, 2]"\n'
        '007.jpg,5,chord,"[]"\n')
    contents, table_types = page_contents(tmp_path)
    assert contents == {"p1.jpg": {"climate-a:0", "climate-a:1", "sine-b:4"},
                        "p2.jpg": {"climate-a:1", "climate-a:2"}, "007.jpg": set()}
    assert table_types == {"p1.jpg": {"climate", "sine"}, "p2.jpg": {"climate"},
                           "007.jpg": {"chord"}}


def _truth(rows):
    """Truth digits: (x0, y0, cell_key, position, digit) per digit, 10 x 20 px boxes."""
    return pd.DataFrame([{"x0": x, "y0": y, "x1": x + 10, "y1": y + 20, "cell_key": cell,
                          "position": position, "digit": digit}
                         for x, y, cell, position, digit in rows])


def test_number_cells_takes_the_cell_most_digits_of_a_number_agree_on():
    truth = _truth([(0, 0, "t:0:0", 0, 1), (10, 0, "t:0:0", 1, 2), (20, 0, "t:0:0", 2, 3),
                    (100, 0, "t:0:1", 0, 4), (0, 100, None, 0, 5)])
    centre = lambda x0, y0: ((x0 + x0 + 9) / 2, (y0 + y0 + 19) / 2)  # noqa: E731
    digits = pd.DataFrame([
        (*centre(0, 0), 0), (*centre(10, 0), 0), (*centre(100, 0), 0),  # 2 of 3 say t:0:0
        (*centre(100, 0), 1),                                           # t:0:1
        (centre(100, 0)[0] + 10.5, centre(100, 0)[1], 2),  # farther than half a height (10)
        (*centre(0, 100), 3),                              # a true digit outside every cell
    ], columns=["x", "y", "number"])
    analysis = types.SimpleNamespace(digits=digits)
    assert number_cells(analysis, truth).tolist() == ["t:0:0", "t:0:1", "", ""]
    assert number_cells(analysis, truth.iloc[:0]).tolist() == ["", "", "", ""]
    nothing = types.SimpleNamespace(digits=digits.iloc[:0])
    assert number_cells(nothing, truth).tolist() == []


def test_printed_cells_joins_each_cells_digits_in_position_order():
    truth = _truth([(0, 0, "t:0:1", 1, 7), (0, 0, "t:0:1", 0, 3), (0, 0, "t:0:0", 0, 9),
                    (0, 0, "", 0, 5)])
    assert printed_cells(truth) == {"t:0:0": "9", "t:0:1": "37"}


def test_pair_scores_known_answer():
    # page a: numbers in cells r:0 (row r), r:1, s:0 and one unknown; page b: r:0, r:1, s:5
    cells_a = np.array(["r:0", "r:1", "s:0", ""], dtype=object)
    cells_b = np.array(["r:0", "r:1", "s:5"], dtype=object)
    relevance = np.zeros((5, 4))        # an extra row and column: relevance at no number
    relevance[0, 0] = 4.0               # same cell
    relevance[1, 1] = 2.0               # same cell
    relevance[0, 1] = 1.0               # same row, other cell
    relevance[2, 2] = 1.0               # row s both, other cells
    relevance[3, 0] = 1.0               # unknown cell on a
    relevance[4, 3] = 1.0               # no number
    relevance[1, 0] = -3.0              # negative: left out of every share
    printed_a = {"r:0": "12", "r:1": "30", "s:0": "5"}
    printed_b = {"r:0": "12", "r:1": "31", "s:5": "5"}  # r:1 is a misprint
    variants = pd.DataFrame({"number_a": [1, 0, 2], "number_b": [1, 0, 2]})
    scores = pair_scores(types.SimpleNamespace(relevance=relevance, y=5.0),
                         types.SimpleNamespace(variants=variants),
                         cells_a, cells_b, printed_a, printed_b)
    assert scores.faithfulness == pytest.approx(6 / 10)
    assert scores.row_consistency == pytest.approx(8 / 10)
    assert scores.positive_ratio == pytest.approx(10 / 5)
    assert (scores.variants_found, scores.variants_right, scores.true_variants,
            scores.true_variants_found) == (3, 1, 1, 1)


def test_pair_scores_of_a_pair_without_positive_relevance_are_undefined():
    scores = pair_scores(types.SimpleNamespace(relevance=-np.ones((1, 1)), y=0.0),
                         types.SimpleNamespace(variants=pd.DataFrame(
                             {"number_a": [], "number_b": []})),
                         np.array(["r:0"], dtype=object), np.array(["r:0"], dtype=object),
                         {}, {})
    assert np.isnan(scores.faithfulness) and np.isnan(scores.row_consistency)
    assert np.isnan(scores.positive_ratio)
    assert (scores.variants_found, scores.true_variants) == (0, 0)


def test_baseline_features_are_the_centred_unit_ink_image(tmp_path):
    grey = np.full((64, 32), 255, np.uint8)
    grey[:32, :16] = 0                       # ink in the top-left quarter
    Image.fromarray(grey).save(tmp_path / "a.png")
    Image.fromarray(np.full((10, 10), 128, np.uint8)).save(tmp_path / "flat.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    sources = [PageSource(name, str(tmp_path / name)) for name in ("a.png", "flat.png",
                                                                     "bad.png")]
    features = baseline_features(sources, side=4)
    assert features.shape == (3, 16)
    ink = np.zeros((4, 4))
    ink[:2, :2] = 255.0
    expected = (ink - ink.mean()).ravel()
    np.testing.assert_allclose(features[0], expected / np.linalg.norm(expected))
    assert features[0] @ features[0] == pytest.approx(1.0)
    np.testing.assert_array_equal(features[1], 0)  # an even page: nothing to compare
    np.testing.assert_array_equal(features[2], 0)  # an unreadable page: no feature
    assert baseline_features(sources[:1]).shape == (1, 32 * 32)


def test_retrieval_skips_pages_without_an_edition_and_counts_ties_in_page_order():
    ids = ["a", "b", "c", "d"]
    contents = {"a": {"t:0"}, "b": {"t:0"}, "c": {"u:0"}}  # c has no edition, d no table
    table_types = {"a": {"sine"}, "b": {"sine"}, "c": {"sine"}}
    similarity = np.array([[1.0, 0.5, 0.5, 0.9],
                           [0.5, 1.0, 0.6, 0.0],
                           [0.5, 0.6, 1.0, 0.0],
                           [0.9, 0.0, 0.0, 1.0]])
    scores = retrieval_scores(similarity, ids, contents, table_types)
    # a ranks d (0.9), then b and c tied at 0.5 in page order: b at 2 -> AP 1/2, miss at 1;
    # b ranks c (0.6) first, then a -> AP 1/2, miss
    assert scores.queries == 2
    assert scores.mean_average_precision == pytest.approx(0.5)
    assert scores.precision_at_1 == 0.0
    assert scores.same_type_ranked_below == 0.0   # c never below b for either query
    assert scores.mean_score_true_match == pytest.approx(0.5)
    assert scores.mean_score_same_type_other_numbers == pytest.approx((0.5 + 0.6) / 2)
    empty = retrieval_scores(similarity, ids, {}, {})
    assert empty.queries == 0 and np.isnan(empty.mean_average_precision)
