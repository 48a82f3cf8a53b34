"""The number-level network: cell features, their score, their BiLRP and the collation."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from sphaera_tables.cells import feature_index
from sphaera_tables.collation import collate
from sphaera_tables.number_links import explain_match
from sphaera_tables.numbers import ReadingFrame, group_numbers
from sphaera_tables.page_analysis import PageAnalysis
from sphaera_tables.scoring import CorpusStatistics, ScoreModel, page_maps
from sphaera_tables.search import top_k_matches

FRAME = ReadingFrame((600, 400), 1.0, 0, pitch=8.0, height=12.0)


def table_page(rows, score=0.9, dy=0.0):
    """A page printing ``rows`` (lists of numbers as text), rows 30 px apart, cells 60 px."""
    digits = []
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            for p, ch in enumerate(text):
                digits.append((20 + 60 * c + 8 * p, 20 + 30 * r + dy, int(ch)))
    frame = pd.DataFrame(digits, columns=["x", "y", "digit"]).astype({"x": float, "y": float})
    frame = frame.assign(score=score, x0=frame.x - 4, x1=frame.x + 4, y0=frame.y - 6,
                         y1=frame.y + 6)
    frame = frame.assign(number=group_numbers(frame, FRAME))
    groups = int(frame.number.max()) + 2
    return PageAnalysis(phi=np.zeros(100), factors=np.zeros((100, groups)), digits=frame,
                        page_shape=FRAME.page_shape, scale=1.0, rotation=0, pitch=8.0,
                        height=12.0)


TABLE = [["1", "12", "30"], ["2", "12", "45"], ["3", "13", "0"], ["4", "13", "15"]]


def test_each_cell_fires_one_feature_per_neighbour_all_on_itself():
    page = table_page(TABLE, score=0.8)
    occurrences = page.cells
    # 4 rows x 2 horizontal pairs + 3 x 3 vertical pairs, each counted from both ends
    assert len(occurrences.feature) == 2 * (4 * 2 + 3 * 3)
    # the gate hands every feature's value to its anchor: the corner "1" anchors 2 features
    per_number = np.bincount(occurrences.number, weights=occurrences.value)
    assert per_number[0] == pytest.approx(2 * 0.8)
    assert per_number[4] == pytest.approx(4 * 0.8)  # "12" of row 2: left, right, up, down
    key = feature_index("right", "12", "45")
    assert key in set(occurrences.feature[occurrences.number == 4])


def _slow_cell_relevance(a, b, maps_a, maps_b):
    """Occurrence by occurrence: R[i, j] += c_a[k] c_b[k] v_i v_j for equal features."""
    scale_a = dict(zip(maps_a.cells.indices, maps_a.cells.data, strict=True))
    scale_b = dict(zip(maps_b.cells.indices, maps_b.cells.data, strict=True))
    relevance = np.zeros((a.factors.shape[1], b.factors.shape[1]))
    oa, ob = a.cells, b.cells
    for k, i, v in zip(oa.feature, oa.number, oa.value, strict=True):
        for k_b, j, w in zip(ob.feature, ob.number, ob.value, strict=True):
            if k == k_b:
                relevance[i, j] += scale_a[k] * v * scale_b[k] * w
    return relevance


def test_cell_relevance_equals_a_slow_reference_and_sums_to_the_score():
    a = table_page(TABLE)
    b = table_page([["9", "99", "9"], *TABLE[1:], ["5", "14", "30"]], dy=7.0)
    counts = sparse.vstack([a.cells.counts(), b.cells.counts()], format="csr")
    model = ScoreModel(bigram_weight=0.0, cell_floor=1.0)  # 4-row pages: no shortening
    stats = CorpusStatistics.of_corpus(np.zeros((2, 100)), counts, model)
    maps_a = page_maps(a.phi, a.cells.counts(), stats, model)
    maps_b = page_maps(b.phi, b.cells.counts(), stats, model)
    explanation = explain_match(a, maps_a, b, maps_b)
    np.testing.assert_allclose(explanation.relevance, _slow_cell_relevance(a, b, maps_a, maps_b),
                               atol=1e-15)
    assert explanation.residual < 1e-12 and explanation.y > 0.3
    # every positive link joins a number of a to the same cell of b (same text, same row)
    numbers_a, numbers_b = a.numbers, b.numbers
    for i, j in zip(*np.nonzero(explanation.relevance[:-1, :-1] > 0), strict=True):
        assert numbers_a.text[i] == numbers_b.text[j]
        assert numbers_a.row[i] == numbers_b.row[j]


def test_cells_tell_two_tables_of_one_type_apart():
    """Same argument column, other values: the cells score far below an edition."""
    edition = table_page(TABLE, dy=3.0)
    other = table_page([["1", "12", "31"], ["2", "12", "47"], ["3", "13", "2"],
                        ["4", "13", "18"]])
    pages = [table_page(TABLE), edition, other]
    counts = sparse.vstack([p.cells.counts() for p in pages], format="csr")
    model = ScoreModel(bigram_weight=0.0, cell_floor=1.0)  # 4-row pages: no shortening
    stats = CorpusStatistics.of_corpus(np.zeros((3, 100)), counts, model)
    features = sparse.vstack([page_maps(p.phi, p.cells.counts(), stats, model).features(
        p.phi, p.cells.counts())[1] for p in pages], format="csr")
    scores = (features @ features.T).toarray()
    assert scores[0, 1] > 0.8 and scores[0, 2] < 0.5 * scores[0, 1]
    dense = top_k_matches(features.toarray(), 1)
    assert top_k_matches(features, 1).b.tolist() == dense.b.tolist() == [1, 0, 0]


def _same_text_relevance(a, b, same_row=True):
    """1 between numbers of a and b read alike (in rows of the same index, if ``same_row``)."""
    relevance = np.zeros((len(a.numbers), len(b.numbers)))
    for i, text in enumerate(a.numbers.text):
        for j, other in enumerate(b.numbers.text):
            if text == other and (not same_row or a.numbers.row[i] == b.numbers.row[j]):
                relevance[i, j] = 1.0
    return relevance


def test_collation_aligns_rows_and_finds_the_variant():
    a = table_page(TABLE)
    # b misprints 45 as 54, and its first row shares only its argument "1" with a's
    b = table_page([TABLE[0][:1] + ["11", "59"], ["2", "12", "54"], *TABLE[2:]])
    collation = collate(_same_text_relevance(a, b), a.numbers, b.numbers)
    # the first rows share one anchor only, but the rows below them are aligned at the same
    # offset: they are the same row, printed differently
    assert collation.rows[["row_a", "row_b"]].values.tolist() == [[0, 0], [1, 1], [2, 2],
                                                                   [3, 3]]
    assert collation.rows.anchors.tolist() == [1, 2, 3, 3]
    variants = collation.variants
    assert variants[["text_a", "text_b"]].values.tolist() == [["12", "11"], ["30", "59"],
                                                              ["45", "54"]]
    assert variants.row_a.tolist() == [0, 0, 1]


def test_collation_sets_nothing_against_a_number_two_equally_near_anchors_place_apart():
    """Row 0: the anchors 6 and 9 beside 40 both place it at B's 44. Row 1: 5 places 40 at
    B's 41, 8 places it at 42 (B prints one more cell): which one answers it is unknown."""
    a = table_page([["6", "40", "9"], ["5", "40", "8"]])
    b = table_page([["6", "44", "9"], ["5", "41", "42", "8"]])
    collation = collate(_same_text_relevance(a, b), a.numbers, b.numbers)
    assert collation.rows[["row_a", "row_b"]].values.tolist() == [[0, 0], [1, 1]]
    assert collation.variants[["text_a", "text_b", "row_a"]].values.tolist() == [["40", "44", 0]]


def test_collation_takes_a_one_anchor_row_only_beside_a_row_at_the_same_offset():
    """A two-column row whose argument is misprinted keeps one anchor, its value: aligned
    between rows aligned at the same offset; one shared number elsewhere is chance."""
    a = table_page([["1", "7771"], ["2", "7772"], ["3", "7773"], ["4", "1234"]])
    b = table_page([["1", "7771"], ["7", "7772"], ["3", "7773"], ["8", "9999"],
                    ["6", "1234"]])
    collation = collate(_same_text_relevance(a, b, same_row=False), a.numbers, b.numbers)
    assert collation.rows[["row_a", "row_b"]].values.tolist() == [[0, 0], [1, 1], [2, 2]]
    assert collation.variants[["text_a", "text_b"]].values.tolist() == [["2", "7"]]


def test_collation_places_a_variant_by_the_anchor_of_its_own_column_group():
    """B sets the column group "8 43" before "18 35" and misprints its 8 as 3: the nearer
    anchor on the left (35) points past the end of B's row, the one on the right (43) points
    at the 3."""
    a = table_page([["8", "23", "36", "18", "35", "8", "43"], ["9", "24", "1", "19", "2", "9", "44"]])
    b = table_page([["8", "23", "36", "3", "43", "18", "35"], ["9", "24", "1", "9", "44", "19", "2"]])
    collation = collate(_same_text_relevance(a, b), a.numbers, b.numbers)
    assert collation.rows[["row_a", "row_b"]].values.tolist() == [[0, 0], [1, 1]]
    assert collation.variants[["text_a", "text_b", "row_a"]].values.tolist() == [["8", "3", 0]]


def test_feature_indices_spread_over_the_whole_index_space():
    """A hashed index must use every index alike (both parities, both ends of the range), and
    differ for another direction, number or neighbour."""
    from sphaera_tables.cells import N_CELL_FEATURES

    indices = np.array([feature_index("right", str(n), "60") for n in range(4000)])
    assert ((indices >= 0) & (indices < N_CELL_FEATURES)).all()
    assert 0.4 < np.mean(indices % 2) < 0.6
    assert indices.min() < 0.01 * N_CELL_FEATURES and indices.max() > 0.99 * N_CELL_FEATURES
    assert len(set(indices.tolist())) > 3900  # collisions stay rare
    key = feature_index("right", "12", "45")
    assert len({key, feature_index("below", "12", "45"), feature_index("right", "13", "45"),
                feature_index("right", "12", "46")}) == 4
