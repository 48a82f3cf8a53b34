"""Collation of two pages that print one table: which row answers which, and where they differ.

A historian compares editions cell by cell: the cells that agree show that one table was
copied, the cells that differ ("row 13: A prints 16 43, B prints 16 34") show which edition was
copied from which. The explanation of a match already joins cells: a pair of numbers that are
each other's strongest partner, read alike, is an *anchor*. Rows are aligned on their anchors
(each row of A with the row of B it shares most anchors with, at least ``MIN_ROW_ANCHORS``, or
one beside a row aligned at the same offset), and
inside two aligned rows every other number of A is set against the number of B at the same
distance from an anchor beside it (the column groups of two editions may be set in another
order; the cells around an anchor keep theirs). A number read with another value and as many
digits is a variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_ROW_ANCHORS = 2
"""Anchors two rows must share to be aligned: one shared number is chance, two are a row."""
AGREEMENT_POWER = 2
"""Exponent of the agreement in :func:`match_score`. Chosen on the development corpora (every
pair whose similarity reaches the minimum score collated; detector's digits; mAP / share of
queries ranking every table of the same type with other numbers below every true edition):

=================================  ============  ============  ============  ============
development corpus                 similarity    power 2       power 4       power 8
=================================  ============  ============  ============  ============
500 pages, seed 505                0.928 / 65 %  0.945 / 73 %  0.946 / 77 %  0.941 / 74 %
200 pages, seed 101                0.968 / 77 %  0.976 / 88 %  0.974 / 86 %  0.969 / 82 %
60 pages, seed 101, lining styles  0.912 / 77 %  0.913 / 77 %  0.919 / 71 %  0.885 / 63 %
=================================  ============  ============  ============  ============

2 is the strongest power that made no development corpus worse: misread digits look like
variants, and the worst-read corpus (lining figures) loses at 4. Perfect digits, 500 pages:
0.953 / 73 % -> 0.964 / 79 %. Weighing the agreement only beyond a tolerance of 5-15 %
differing cells did worse on the 500 pages (0.933-0.944 / 67-77 %)."""


@dataclass(frozen=True)
class Collation:
    """The aligned rows and the variants of a pair of pages.

    ``rows``: one row per aligned row pair, columns row_a, row_b, anchors (cells that agree),
    relevance (their share of the score). ``variants``: one row per differing cell, columns
    number_a, number_b (indices into the pages' number tables), row_a, row_b, text_a, text_b.
    """

    rows: pd.DataFrame
    variants: pd.DataFrame

    @property
    def cells_agree(self) -> int:
        """Numbers read alike in the aligned rows (their anchors)."""
        return int(self.rows["anchors"].sum())

    @property
    def cells_differ(self) -> int:
        """Numbers of the aligned rows read differently (the variants)."""
        return len(self.variants)


def agreement(cells_agree, cells_differ):
    """Share of the aligned cells that two pages print alike (1 where none is aligned: nothing
    speaks against the pair). Numbers or arrays."""
    aligned = np.asarray(cells_agree, dtype=np.float64) + cells_differ
    return np.where(aligned > 0, cells_agree / np.maximum(aligned, 1), 1.0)


def match_score(similarity, cells_agree, cells_differ):
    """The score a candidate match is ranked by: the model's similarity times the agreement of
    its collation to the power ``AGREEMENT_POWER``.

    Editions of one table print the same numbers in their aligned rows, up to a few misprints
    and misread digits (2 % of the aligned cells differ, median, on the development corpus); a
    table of the same type computed with other parameters (another obliquity, a longer list of
    climates) shares its argument columns and many values, so it can reach an edition's
    similarity, but differs in a third of its aligned cells (median). Numbers or arrays."""
    return similarity * agreement(cells_agree, cells_differ) ** AGREEMENT_POWER


ROW_COLUMNS = ["row_a", "row_b", "anchors", "relevance"]
VARIANT_COLUMNS = ["number_a", "number_b", "row_a", "row_b", "text_a", "text_b"]


def anchors(relevance: np.ndarray, numbers_a: pd.DataFrame,
            numbers_b: pd.DataFrame) -> np.ndarray:
    """(n, 2) index pairs of numbers that are each other's strongest positive partner and read
    alike. ``relevance``: (len(numbers_a), len(numbers_b)) number-to-number BiLRP."""
    if relevance.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    best_b = relevance.argmax(axis=1)
    best_a = relevance.argmax(axis=0)
    rows = np.arange(relevance.shape[0])
    mutual = (best_a[best_b] == rows) & (relevance[rows, best_b] > 0)
    texts_a, texts_b = numbers_a["text"].to_numpy(), numbers_b["text"].to_numpy()
    pairs = np.column_stack([rows[mutual], best_b[mutual]]).astype(np.int64)
    return pairs[texts_a[pairs[:, 0]] == texts_b[pairs[:, 1]]] if len(pairs) else pairs


def collate(relevance: np.ndarray, numbers_a: pd.DataFrame,
            numbers_b: pd.DataFrame) -> Collation:
    """Rows and variants of two pages from their number-to-number relevance (module docstring).

    ``numbers_a``, ``numbers_b``: number tables (:func:`~sphaera_tables.numbers.number_table`,
    columns text, ux, row); ``relevance``: (len(numbers_a), len(numbers_b)).
    """
    pairs = anchors(relevance, numbers_a, numbers_b)
    row_a, row_b = numbers_a["row"].to_numpy(), numbers_b["row"].to_numpy()
    rows = _align_rows(_row_votes(row_a[pairs[:, 0]], row_b[pairs[:, 1]],
                                  relevance[pairs[:, 0], pairs[:, 1]]))
    partner = {int(i): int(j) for i, j in pairs}
    cells_a, cells_b = _cells_by_row(numbers_a), _cells_by_row(numbers_b)
    texts_a = numbers_a["text"].astype(str).to_numpy()
    texts_b = numbers_b["text"].astype(str).to_numpy()
    variants = [variant for row in rows.itertuples(index=False)
                for variant in _row_variants(row.row_a, row.row_b, cells_a[row.row_a],
                                             cells_b[row.row_b], texts_a, texts_b, partner)]
    return Collation(rows.astype({"row_a": np.int64, "row_b": np.int64,
                                  "anchors": np.int64}),
                     pd.DataFrame(variants, columns=VARIANT_COLUMNS))


def _row_votes(row_a: np.ndarray, row_b: np.ndarray, relevance: np.ndarray) -> pd.DataFrame:
    """The anchors' votes per pair of rows (one anchor each): columns of ``ROW_COLUMNS``, one
    row per pair of rows (sorted), its anchors counted and their relevance summed."""
    keys = np.column_stack([row_a, row_b]).astype(np.int64)
    pairs, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return pd.DataFrame({"row_a": pairs[:, 0], "row_b": pairs[:, 1],
                         "anchors": np.bincount(inverse, minlength=len(pairs)),
                         "relevance": np.bincount(inverse, weights=relevance,
                                                  minlength=len(pairs))})


def _align_rows(counted: pd.DataFrame) -> pd.DataFrame:
    """Aligned row pairs from the anchors each pair of rows shares (columns of ROW_COLUMNS).

    Pairs with at least ``MIN_ROW_ANCHORS`` anchors are taken greedily, most anchors first. A
    pair with one anchor is then taken when a row next to it is aligned at the same offset
    (rows a - 1 and b - 1, or a + 1 and b + 1): a two-column row whose value is misprinted
    keeps only its argument, or only its value, as an anchor.
    """
    ranked = counted.sort_values(["anchors", "relevance", "row_a", "row_b"],
                                 ascending=[False, False, True, True])
    aligned, used_a, used_b = [], set(), set()

    def take(candidates, admit):
        for row in candidates.itertuples(index=False):
            if row.row_a not in used_a and row.row_b not in used_b and admit(row):
                aligned.append(row)
                used_a.add(row.row_a)
                used_b.add(row.row_b)

    take(ranked[ranked.anchors >= MIN_ROW_ANCHORS], lambda row: True)
    pairs = {(row.row_a, row.row_b) for row in aligned}
    take(ranked[ranked.anchors == 1], lambda row: (row.row_a - 1, row.row_b - 1) in pairs
         or (row.row_a + 1, row.row_b + 1) in pairs)
    return pd.DataFrame(aligned, columns=ROW_COLUMNS).sort_values("row_a", ignore_index=True)


def _cells_by_row(numbers: pd.DataFrame) -> dict[int, np.ndarray]:
    """Row index -> positions (into ``numbers``) of its numbers, left to right."""
    rows, ux = numbers["row"].to_numpy(), numbers["ux"].to_numpy()
    if len(rows) == 0:
        return {}
    order = np.lexsort((ux, rows))
    starts = np.flatnonzero(np.r_[True, np.diff(rows[order]) != 0])
    return {int(rows[order[k]]): part
            for k, part in zip(starts, np.split(order, starts[1:]), strict=True)}


def _row_variants(row_a, row_b, cells_a, cells_b, texts_a, texts_b, partner):
    """Variants of two aligned rows: each number of A that is no anchor is set against B's
    number at the same distance from an anchor, read differently with as many digits.

    The nearest anchor on each side of the number proposes a place in B; a place outside B's
    row or on an anchor is dropped, and of two places the nearer anchor's wins; two as near
    that disagree give none (chosen on the development corpus: variant precision 0.587 ->
    0.604 with the detector's digits, recall unchanged). Two anchors are needed where editions set the column groups in another order: the
    group of "8 43" after "18 35" in A and before it in B is placed by its own "43", not by
    the "35" of the group before. ``cells_a``, ``cells_b``: the rows' numbers left to right;
    ``partner``: anchor of A -> its number of B."""
    position_b = {int(j): q for q, j in enumerate(cells_b)}
    ties = sorted((p, position_b[partner[int(i)]]) for p, i in enumerate(cells_a)
                  if int(i) in partner and partner[int(i)] in position_b)
    if not ties:
        return
    anchored_a = {p for p, _ in ties}
    anchored_b = {q for _, q in ties}
    for p, i in enumerate(cells_a):
        if p in anchored_a:
            continue
        left = [t for t in ties if t[0] < p][-1:]
        right = [t for t in ties if t[0] > p][:1]
        places = [(abs(t[0] - p), side, p + t[1] - t[0])
                  for side, sides in enumerate((left, right)) for t in sides]
        places = sorted((distance, side, q) for distance, side, q in places
                        if 0 <= q < len(cells_b) and q not in anchored_b)
        if not places or (len(places) == 2 and places[0][0] == places[1][0]
                          and places[0][2] != places[1][2]):
            continue  # none, or two anchors as near that disagree: groups reordered, unknown
        j = cells_b[places[0][2]]
        text_a, text_b = texts_a[i], texts_b[j]
        if text_a != text_b and len(text_a) == len(text_b):
            yield int(i), int(j), int(row_a), int(row_b), text_a, text_b
