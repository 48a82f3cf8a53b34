"""The number-level similarity network: table cells in the context of their neighbours.

The bigram network counts "digit j, then digit k" anywhere on a page; it cannot say which "13"
of page B answers a "13" of page A. This network counts *cells in context*: for every printed
number (:mod:`sphaera_tables.numbers`) and each of its four neighbours (next number to the right
in its row, to the left, below in its column, above) one feature

    key   = (direction, this number's digits, the neighbour's digits)
    value = min over this number's digits of the detector's map peak       (AND of its digits)
            x [the neighbour reads as those digits]                        (a gate)

sum-pooled over the page and hashed into ``2 ** FEATURE_BITS`` dimensions. "16 43" printed in
row 13h of two editions gives the same four keys in both, a "16" elsewhere in the table does
not, so the evidence of two pages joins a cell of one to the same cell of the other.

Why the neighbour is a gate and not a second operand of the ``min``: as with the bigram head's
threshold, the gate decides *whether* a feature fires and the number's own evidence is *what*
it counts; gradient x input then hands each feature's whole value to the digits of the number
it is anchored on (the weakest one wins the ``min``), never to its neighbour, so BiLRP links
cell to cell. Each occurrence is exactly its anchor's contribution: relevance is conserved.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from sphaera_tables.numbers import ReadingFrame, column_neighbours, row_neighbours

FEATURE_BITS = 24
"""Bits of the hashed cell features. A page sets about 300; at 2 ** 20 dimensions a corpus of
100,000 pages put about 23 pages on every feature by chance, which made the top-10 search
score hundreds of millions of chance pairs (78 s against 14 s at 2 ** 24,
``bench/bench_search_numbers.py``). Nothing holds a vector of this length: features are
sparse everywhere."""
N_CELL_FEATURES = 1 << FEATURE_BITS
DIRECTIONS = ("right", "left", "below", "above")


@dataclass(frozen=True)
class CellOccurrences:
    """Every firing of a cell feature on one page, (n,) arrays.

    ``feature``: hashed feature index; ``number``: the number it is anchored on (row of the
    page's number table); ``value``: its value (the anchor's strength).
    """

    feature: np.ndarray
    number: np.ndarray
    value: np.ndarray

    def counts(self) -> sparse.csr_matrix:
        """The page's feature vector ``v``: (1, N_CELL_FEATURES), values summed per feature."""
        return sparse.csr_matrix((self.value, (np.zeros_like(self.feature), self.feature)),
                                 shape=(1, N_CELL_FEATURES))

    def factors(self, groups: int) -> sparse.csc_matrix:
        """First-order relevance of each feature on each number: (N_CELL_FEATURES, groups),
        column sums = the values its numbers anchor, row sums = ``v`` (compressed by number:
        nothing of length N_CELL_FEATURES)."""
        return sparse.csc_matrix((self.value, (self.feature, self.number)),
                                 shape=(N_CELL_FEATURES, groups))


def feature_index(direction: str, text: str, neighbour: str) -> int:
    """Hashed index of the feature "``text`` with ``neighbour`` in ``direction``" (stable
    across processes and machines: a keyed digest, not Python's salted ``hash``)."""
    digest = hashlib.blake2b(f"{direction}|{text}|{neighbour}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (N_CELL_FEATURES - 1)


def cell_occurrences(numbers: pd.DataFrame, frame: ReadingFrame) -> CellOccurrences:
    """The cell features of a page's numbers (:func:`~sphaera_tables.numbers.number_table`)."""
    right = row_neighbours(numbers, frame)
    below = column_neighbours(numbers, frame)
    texts = numbers["text"].to_numpy()
    strength = numbers["strength"].to_numpy(np.float64)
    features, anchors = [], []
    for direction, anchor, neighbour in _pairs(right, below):
        features.append(feature_index(direction, texts[anchor], texts[neighbour]))
        anchors.append(anchor)
    anchors = np.asarray(anchors, dtype=np.int64)
    return CellOccurrences(np.asarray(features, dtype=np.int64), anchors, strength[anchors])


def _pairs(right: np.ndarray, below: np.ndarray):
    """(direction, anchor, neighbour) of every neighbouring pair, both ways."""
    for links, forward, backward in ((right, "right", "left"), (below, "below", "above")):
        for i, j in enumerate(links):
            if j >= 0:
                yield forward, i, int(j)
                yield backward, int(j), i
