"""The collation's rules on small hand-built number tables: anchors, row alignment, variants.

A number table here has only what the collation reads: text, ux (upright centre) and row.
Relevance joins numbers read alike (each text printed once per page, so every shared number
is its partner's strongest), with a weight per text where the test needs one.
"""

import numpy as np
import pandas as pd

from sphaera_tables.collation import ROW_COLUMNS, VARIANT_COLUMNS, anchors, collate


def table(*rows):
    """A number table printing ``rows`` (lists of texts), cells 60 px apart."""
    cells = [(text, 60.0 * c, r) for r, texts in enumerate(rows) for c, text in enumerate(texts)]
    return pd.DataFrame({"text": pd.Series([t for t, _, _ in cells], dtype=str),
                         "ux": pd.Series([x for _, x, _ in cells], dtype=float),
                         "row": pd.Series([r for _, _, r in cells], dtype=np.int64)})


def alike(a, b, weight=None):
    """Relevance ``weight[text]`` (default 1) between numbers of a and b read alike."""
    weight = weight or {}
    same = a.text.to_numpy()[:, None] == b.text.to_numpy()[None, :]
    values = np.array([weight.get(t, 1.0) for t in a.text])[:, None]
    return np.where(same, values, 0.0)


def aligned(collation):
    return collation.rows[["row_a", "row_b"]].values.tolist()


def variant_texts(collation):
    return collation.variants[["text_a", "text_b"]].values.tolist()


def test_anchors_are_mutual_strongest_positive_partners_read_alike():
    a, b = table(["12", "30", "45", "7"]), table(["12", "30", "54", "7"])
    relevance = np.array([[2.0, 0.0, 0.0, 0.0],   # 12: strongest with B's 12, and back
                          [1.5, 1.0, 0.0, 0.0],   # 30: strongest with B's 12, not back
                          [0.0, 0.0, 3.0, 0.0],   # 45 and 54: mutual, read differently
                          [0.0, 0.0, 0.0, 0.0]])  # 7: no positive partner
    assert anchors(relevance, a, b).tolist() == [[0, 0]]
    assert anchors(np.zeros((4, 4)), a, b).tolist() == []
    assert anchors(-np.ones((4, 4)), a, b).tolist() == []
    assert anchors(np.array([[0.5]]), table(["7"]), table(["7"])).tolist() == [[0, 0]]


def test_no_numbers_on_one_page_give_no_anchors_as_an_empty_int_pair_list():
    a, none = table(["12", "30"]), table()
    for pairs in (anchors(np.zeros((0, 2)), none, a), anchors(np.zeros((2, 0)), a, none)):
        assert pairs.shape == (0, 2) and pairs.dtype == np.int64


def test_pages_without_a_shared_number_collate_to_no_rows_and_no_variants():
    a, b = table(["1", "2"], ["3", "4"]), table(["5", "6"])
    collation = collate(alike(a, b), a, b)
    assert list(collation.rows.columns) == ROW_COLUMNS and collation.rows.empty
    assert all(collation.rows.dtypes[c] == np.int64 for c in ("row_a", "row_b", "anchors"))
    assert list(collation.variants.columns) == VARIANT_COLUMNS and collation.variants.empty


def test_a_page_without_numbers_collates_to_no_rows_and_no_variants():
    """A match may join a page where no digit was read (scores of 0 are listed with
    ``--min-score 0``): its collation is empty, either way round."""
    a, none = table(["12", "30"]), table()
    for collation in (collate(np.zeros((0, 2)), none, a), collate(np.zeros((2, 0)), a, none)):
        assert collation.rows.empty and collation.variants.empty
        assert list(collation.variants.columns) == VARIANT_COLUMNS


def test_a_row_goes_to_the_row_it_shares_most_anchors_with_and_each_row_is_aligned_once():
    """A's row 0 shares 2 anchors with B's row 0 and 3 with B's row 1; A's row 1 shares 2
    with B's row 1 as well; A's row 2 shares 4 with B's row 3. Most anchors first, each row
    once: 0-1 and 2-3, listed from the top (index 0, 1)."""
    a = table(["1", "2", "3", "4", "5"], ["6", "7"], ["81", "82", "83", "84"])
    b = table(["1", "2"], ["3", "4", "5", "6", "7"], ["90"], ["81", "82", "83", "84"])
    collation = collate(alike(a, b), a, b)
    assert aligned(collation) == [[0, 1], [2, 3]]
    assert collation.rows.anchors.tolist() == [3, 4]
    assert collation.rows.index.tolist() == [0, 1]


def test_of_two_rows_with_as_many_anchors_the_one_with_more_relevance_is_aligned():
    a = table(["1", "2", "3", "4"])
    b = table(["1", "2"], ["3", "4"])
    collation = collate(alike(a, b, {"3": 2.0, "4": 2.0}), a, b)
    assert aligned(collation) == [[0, 1]]
    assert collation.rows.relevance.tolist() == [4.0]


def test_a_one_anchor_row_is_taken_only_beside_a_row_aligned_at_its_own_offset():
    """B prints an extra row on top (offset 1). A's row 1 keeps one anchor (21) in B's row 2:
    the row above is aligned at offset 1, so it is taken, and its 22 is B's 99. A's row 2
    keeps one anchor (31) in B's row 4, offset 2: no row beside it is aligned at that offset.
    A's row 3 keeps one anchor (41) in B's row 5, the row below it aligned at offset 2."""
    a = table(["11", "12"], ["21", "22"], ["31", "32"], ["41", "42"], ["51", "52"])
    b = table(["77", "78"], ["11", "12"], ["21", "99"], ["88", "89"], ["31", "98"],
              ["41", "97"], ["51", "52"])
    collation = collate(alike(a, b), a, b)
    assert aligned(collation) == [[0, 1], [1, 2], [3, 5], [4, 6]]
    assert variant_texts(collation) == [["22", "99"], ["42", "97"]]


def test_a_variant_is_placed_by_its_anchor_in_the_row_of_b_not_at_its_own_position():
    """B prints two more cells in front of the row: A's 40 (third cell, after the anchor 6)
    answers B's 44 (fifth cell, after B's 6)."""
    a, b = table(["5", "6", "40"]), table(["7", "8", "5", "6", "44"])
    collation = collate(alike(a, b), a, b)
    assert variant_texts(collation) == [["40", "44"]]
    assert collation.variants[["number_a", "number_b"]].values.tolist() == [[2, 4]]


def test_the_nearer_anchor_places_a_variant_and_two_as_near_that_disagree_place_none():
    """Row 0: 5 and 9 are anchors, B prints one more cell between them; 40 is next to 5 (B's
    44), 31 next to 9 (B's 33). Row 1: 6 and 8 are anchors with three cells between them in A,
    four in B: 11 and 22 go by the anchor beside them, 50 in the middle is two cells from
    both, which place it at 56 and 57: unknown."""
    a = table(["5", "40", "31", "9"], ["6", "11", "50", "22", "8"])
    b = table(["5", "44", "12", "33", "9"], ["6", "14", "56", "57", "23", "8"])
    collation = collate(alike(a, b), a, b)
    assert aligned(collation) == [[0, 0], [1, 1]]
    assert variant_texts(collation) == [["40", "44"], ["31", "33"], ["11", "14"], ["22", "23"]]


def test_only_the_nearest_anchor_on_each_side_places_a_number():
    """Row 0: 40 has the anchors 1 and 2 on its left and 9 on its right; 2 and 9 are as near
    and place it at 41 and 42: unknown, whatever the farther 1 says. Row 1 mirrors it (anchors
    3 | 8 and 7 on the right); its last number 31 still gets B's 33 after that unknown one."""
    a = table(["1", "2", "40", "9"], ["3", "60", "8", "7", "31"])
    b = table(["1", "2", "41", "42", "9"], ["3", "61", "62", "8", "7", "33"])
    collation = collate(alike(a, b), a, b)
    assert aligned(collation) == [[0, 0], [1, 1]]
    assert variant_texts(collation) == [["31", "33"]]
