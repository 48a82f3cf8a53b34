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
    listed_retrieval,
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


def _pair_scores(relevance, y, variants, cells_a, cells_b, printed_a, printed_b):
    """``pair_scores`` of an explanation with number-to-number ``relevance`` and score ``y``
    and a collation with ``variants`` (columns number_a, number_b)."""
    return pair_scores(types.SimpleNamespace(relevance=relevance, y=y),
                       types.SimpleNamespace(variants=variants),
                       cells_a, cells_b, printed_a, printed_b)


def _variant_counts(scores):
    return (scores.variants_found, scores.variants_right, scores.true_variants,
            scores.true_variants_found)


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
    scores = _pair_scores(relevance, 5.0, variants, cells_a, cells_b, printed_a, printed_b)
    assert scores.faithfulness == pytest.approx(6 / 10)
    assert scores.row_consistency == pytest.approx(8 / 10)
    assert scores.positive_ratio == pytest.approx(10 / 5)
    assert _variant_counts(scores) == (3, 1, 1, 1)


def test_pair_scores_of_a_pair_without_positive_relevance_are_undefined():
    scores = _pair_scores(-np.ones((1, 1)), 0.0,
                          pd.DataFrame({"number_a": [], "number_b": []}),
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


def test_baseline_features_average_the_ink_over_each_area_and_skip_only_unreadable_pages(
        tmp_path):
    grey = np.full((4, 8), 252, np.uint8)   # shrunk to 2 x 2: four blocks of 2 x 4 px
    grey[0:2, 0:3] = 0                      # top left: three columns of four inked
    grey[2:4, 0:4] = 0                      # bottom left: all inked; right half blank
    Image.fromarray(grey).save(tmp_path / "page.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    sources = [PageSource(name, str(tmp_path / name))
               for name in ("bad.png", "page.png", "bad.png", "page.png")]
    features = baseline_features(sources, side=2)
    # area averages of the grey: 252 / 4 = 63 top left, 0 bottom left, 252 on the right (a
    # two-pixel interpolation would see 0 top left); the ink is 255 - grey
    ink = np.array([255 - 63, 255 - 252, 255, 255 - 252])
    expected = (ink - ink.mean()) / np.linalg.norm(ink - ink.mean())
    np.testing.assert_allclose(features, [np.zeros(4), expected, np.zeros(4), expected],
                               atol=1e-12)


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


def test_page_contents_keeps_a_numeric_looking_content_id_as_written(tmp_path):
    (tmp_path / "tables.csv").write_text(
        "page_id,content_id,table_type,rows\n"
        'p1.jpg,0012,sine,"[3]"\n')
    contents, table_types = page_contents(tmp_path)
    assert contents == {"p1.jpg": {"0012:3"}} and table_types == {"p1.jpg": {"sine"}}


def test_number_cells_take_true_digits_within_half_a_digit_height_of_the_centre():
    # one true digit, box x 100-109, y 0-19: centre (104.5, 9.5), half height 10 (the median
    # height of 20 over the page, the other digit in another place)
    truth = _truth([(100, 0, "t:3:1", 0, 4), (0, 200, "t:9:9", 0, 1)])
    probes = [(104.5 + 8.0, 9.5),     # 8 px right: found
              (104.5 - 10.3, 9.5),    # 10.3 px left: not found
              (104.5, 9.5 + 10.5),    # 10.5 px below: not found
              (104.5, 9.5 - 10.3),    # 10.3 px above: not found
              (104.5, 9.5 - 9.7)]     # 9.7 px above: found
    digits = pd.DataFrame([(x, y, n) for n, (x, y) in enumerate(probes)],
                          columns=["x", "y", "number"])
    cells = number_cells(types.SimpleNamespace(digits=digits), truth)
    assert cells.tolist() == ["t:3:1", "", "", "", "t:3:1"]


def test_number_cells_ignore_the_votes_of_digits_outside_every_cell():
    # number 0: two digits on true digits outside any table cell, one on a cell: the cell wins
    truth = _truth([(0, 0, "", 0, 1), (10, 0, "", 1, 2), (20, 0, "t:0:4", 0, 3)])
    digits = pd.DataFrame([(4.5, 9.5, 0), (14.5, 9.5, 0), (24.5, 9.5, 0)],
                          columns=["x", "y", "number"])
    cells = number_cells(types.SimpleNamespace(digits=digits), truth)
    assert cells.tolist() == ["t:0:4"]


def test_pair_scores_on_table_cell_keys_with_unknown_numbers_on_both_pages():
    # cell keys as the truth writes them, content:row:column
    cells_a = np.array(["c-1:6:0", "c-1:6:1", "c-1:7:0", ""], dtype=object)
    cells_b = np.array(["c-1:6:0", "c-1:6:1", "c-1:7:2", ""], dtype=object)
    relevance = np.zeros((4, 4))
    relevance[0, 0] = 0.3              # same cell
    relevance[0, 1] = 0.1              # same row 6, other column
    relevance[2, 2] = 0.1              # same row 7, other column
    relevance[1, 2] = 0.05             # row 6 with row 7: same table only
    relevance[3, 3] = 0.2              # unknown with unknown: no cell, no row
    printed_a = {"c-1:6:0": "12", "c-1:6:1": "30", "c-1:7:0": "5", "c-1:7:2": "8"}
    printed_b = {"c-1:6:0": "13", "c-1:6:1": "31", "c-1:7:0": "5", "c-1:7:2": "8"}
    # variants: both misprints found (cells 6:0 and 6:1), one pairing a misprinted cell of a
    # with another cell of b (not a true variant found), one between unknown numbers
    variants = pd.DataFrame({"number_a": [0, 1, 1, 3], "number_b": [0, 1, 2, 3]})
    scores = _pair_scores(relevance, 0.8, variants, cells_a, cells_b, printed_a, printed_b)
    assert scores.faithfulness == pytest.approx(0.3 / 0.75)
    assert scores.row_consistency == pytest.approx(0.5 / 0.75)
    assert scores.positive_ratio == pytest.approx(0.75 / 0.8)
    assert _variant_counts(scores) == (4, 2, 2, 2)
    # a score of 0 with positive relevance: no ratio
    zero = _pair_scores(relevance, 0.0, variants.iloc[:0], cells_a, cells_b, printed_a,
                        printed_b)
    assert np.isnan(zero.positive_ratio) and zero.faithfulness == pytest.approx(0.3 / 0.75)


def test_retrieval_breaks_ties_in_page_order_among_many_pages():
    # 21 pages; the query's others score 0.5 (odd pages) and 0.2 (even pages), and its one
    # edition is the last page at 0.5: ties in page order put it 10th (AP 1/10, miss at 1)
    ids = [f"p{i:02d}" for i in range(21)]
    contents = {"p00": {"t:0"}, "p19": {"t:0"}}
    similarity = np.eye(21)
    similarity[0, 1:] = similarity[1:, 0] = np.where(np.arange(1, 21) % 2 == 1, 0.5, 0.2)
    scores = retrieval_scores(similarity, ids, contents, {})
    # p19 as the query ranks p00 (0.5) first: AP 1, hit
    assert scores.queries == 2
    assert scores.mean_average_precision == pytest.approx((1 / 10 + 1) / 2)
    assert scores.precision_at_1 == pytest.approx(0.5)


def test_listed_retrieval_ranks_each_list_by_score_whatever_its_order_in_the_file():
    ids = ["a", "b", "c"]
    contents = {"a": {"t:0"}, "b": {"t:0"}, "c": {"u:0"}}
    # a's list in the file: b (0.4) before c (0.9): ranked c, b -> AP 1/2, miss at 1
    matches = pd.DataFrame({"page_a": ["a", "a"], "page_b": ["b", "c"], "score": [0.4, 0.9]})
    scores = listed_retrieval(matches, ids, contents, {})
    assert (scores.queries, scores.mean_average_precision, scores.precision_at_1) == (
        2, pytest.approx(0.25), 0.0)  # b lists nothing: AP 0
    # the ranking measures of retrieval_scores have no meaning on a list
    assert np.isnan(scores.same_type_ranked_below)
    assert np.isnan(scores.mean_score_true_match)
    assert np.isnan(scores.mean_score_same_type_other_numbers)
