"""The score of two pages under either model, and the per-page linear maps that explain it.

Two models (``tables similarity --model``):

* ``numbers`` (default): ``y = <b_a, b_b> + <c_a, c_b>`` with
  ``b = sqrt(w) f`` the page's bigram profile (:func:`~sphaera_tables.features.bigram_profiles`,
  nothing removed) and ``c = sqrt(1 - w) S v`` its cell features (:mod:`sphaera_tables.cells`),
  ``S = diag(idf_k / sqrt(v_k (sum_k idf_k^2 v_k + cell_floor)))``. ``idf_k = log(1 + N / df_k)``
  (``df_k``: pages of the corpus with feature k) weighs a cell in context by how rare it is in
  the corpus, as the common profile did for bigrams: the argument columns 1..30 that every
  table prints count little, the numbers a table computed count much. Two editions of one table
  score about the share of cells they print alike; ``w`` (``bigram_weight``) keeps pages with
  misread digits matching on their bigrams.
* ``bigram``: the paper's model, ``y = <h_a, h_b>`` with the features of
  :func:`~sphaera_tables.features.feature_map` (common profile removed).

For a given page every part is linear in its counts, so each page has maps ``(B, C)`` with
``b = B phi`` and ``c = C v``; first-order relevance goes through the same maps and BiLRP of the
score is ``(B_a F_a)^T (B_b F_b) + (C_a G_a)^T (C_b G_b)`` (``F``, ``G``: the page's bigram and cell
factors on its numbers), exactly conservative. In the ``numbers`` model every factor is
non-negative: evidence never cancels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from sphaera_tables.bigram import N_BIGRAMS
from sphaera_tables.cells import N_CELL_FEATURES
from sphaera_tables.features import (
    DEFAULT_MASS_FLOOR,
    DEFAULT_NORM_FLOOR,
    bigram_profiles,
    common_profile,
    feature_map,
    feature_scales,
)

MODELS = ("numbers", "bigram")
DEFAULT_MODEL = "numbers"
DEFAULT_BIGRAM_WEIGHT = 0.1
"""Share of the bigram part in the ``numbers`` model, chosen on the development corpus (200
pages, seed 101, typefaces source-serif-4 and vollkorn-italic; detector's digits): 0.1, 0.2,
0.3 give mAP 0.961, 0.960, 0.959 and faithfulness 0.82, 0.75, 0.68 (the bigram part's evidence
is shared by every number printing the same digit pair)."""
DEFAULT_MIN_SCORES = {"numbers": 0.2, "bigram": 0.35}
"""Score from which a pair is a candidate match, per model (``tables similarity --min-score``).
``numbers``: on the development corpus, with 10 matches per page, mAP counted on the match
list is 0.951 at 0.2 and 0.25, 0.889 at 0.3 (editions there score 0.56 on average, tables of
one type with other numbers 0.15)."""
DEFAULT_CELL_FLOOR = 50.0
"""Weighted cell mass (in cells of idf 1) below which a page's cell features are shortened: a
page with a handful of numbers (letters of prose read as digits) cannot score high by chance,
while a table's mass is in the thousands. Chosen on the development corpus (10 matches per
page, ``min_score`` 0.2): floors 4, 50, 200, 800 list 20, 0, 0, 0 pairs with a non-table page,
at match-list mAP 0.952, 0.951, 0.946, 0.938."""


@dataclass(frozen=True)
class ScoreModel:
    """Which model scores pages, and its settings (see the module docstring)."""

    model: str = DEFAULT_MODEL
    bigram_weight: float = DEFAULT_BIGRAM_WEIGHT
    mass_floor: float = DEFAULT_MASS_FLOOR
    norm_floor: float = DEFAULT_NORM_FLOOR
    cell_floor: float = DEFAULT_CELL_FLOOR

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if not 0 <= self.bigram_weight <= 1:
            raise ValueError(f"bigram_weight must lie in [0, 1], got {self.bigram_weight}")
        if self.cell_floor <= 0:
            raise ValueError(f"cell_floor must be positive, got {self.cell_floor}")

    @property
    def uses_cells(self) -> bool:
        """Whether the model scores cell features (the ``numbers`` model). Its links join a
        cell to a cell, so its candidate matches are also ranked by their collation
        (:mod:`sphaera_tables.ranking`); the paper's ``bigram`` model ranks by its similarity
        alone."""
        return self.model == "numbers"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CorpusStatistics:
    """What the score takes from the whole corpus: the common bigram profile ``u`` (100,)
    (used by the ``bigram`` model) and each cell feature's document frequency (sparse)."""

    pages: int
    common: np.ndarray
    cell_features: np.ndarray
    """(d,) sorted feature indices with ``df > 0``."""
    cell_df: np.ndarray
    """(d,) their document frequencies."""

    @classmethod
    def of_corpus(cls, phi: np.ndarray, cells: sparse.csr_matrix,
                  model: ScoreModel) -> CorpusStatistics:
        """From the pages' bigram counts (N, 100) and cell counts (N, N_CELL_FEATURES)."""
        common = common_profile(bigram_profiles(phi, model.mass_floor))
        present = sparse.csr_matrix(cells, copy=True)
        present.sum_duplicates()
        features, df = np.unique(present.indices[present.data > 0], return_counts=True)
        return cls(len(phi), common, features.astype(np.int64), df.astype(np.int64))

    @classmethod
    def neutral(cls) -> CorpusStatistics:
        """No corpus: nothing removed from the bigram profile, every cell feature weighs 1
        (scores two pages on their own, e.g. ``tables explain`` without ``--results``)."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(0, np.zeros(N_BIGRAMS), empty, empty)

    def idf(self, features: np.ndarray) -> np.ndarray:
        """``log(1 + N / df)`` of the given feature indices (a feature the corpus never saw
        counts as seen once; all ones for :meth:`neutral` statistics)."""
        if self.pages == 0:
            return np.ones(len(features))
        df = np.ones(len(features))
        _, mine, theirs = np.intersect1d(features, self.cell_features, return_indices=True)
        df[mine] = self.cell_df[theirs]
        return np.log1p(self.pages / df)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"pages": np.asarray(self.pages), "common": self.common,
                "cell_features": self.cell_features, "cell_df": self.cell_df,
                "cell_dimensions": np.asarray(N_CELL_FEATURES)}

    @classmethod
    def from_arrays(cls, arrays) -> CorpusStatistics:
        """Statistics saved by :meth:`to_arrays`; refused when their cell features were
        hashed into another number of dimensions (a results folder of an older version)."""
        dimensions = int(arrays["cell_dimensions"]) if "cell_dimensions" in arrays else 1 << 20
        if dimensions != N_CELL_FEATURES:
            raise ValueError(
                f"these corpus statistics hash cell features into {dimensions:,} dimensions, "
                f"this version into {N_CELL_FEATURES:,}: run `tables similarity` on the corpus "
                "again (its cached page analyses are reused)")
        return cls(int(arrays["pages"]), np.asarray(arrays["common"], dtype=np.float64),
                   np.asarray(arrays["cell_features"], dtype=np.int64),
                   np.asarray(arrays["cell_df"], dtype=np.int64))


@dataclass(frozen=True)
class PageMaps:
    """One page's linear maps: ``bigram`` (100, 100) and ``cells`` (N_CELL_FEATURES,) diagonal
    (sparse (1, N_CELL_FEATURES) row; None in the ``bigram`` model)."""

    bigram: np.ndarray
    cells: sparse.csr_matrix | None

    def features(self, phi: np.ndarray, cell_counts: sparse.csr_matrix | None
                 ) -> tuple[np.ndarray, sparse.csr_matrix | None]:
        """The page's feature vectors: bigram part (100,) and cell part (1, K) sparse."""
        bigram = self.bigram @ np.asarray(phi, dtype=np.float64)
        if self.cells is None:
            return bigram, None
        return bigram, self.cells.multiply(cell_counts).tocsr()

    def factors(self, bigram_factors: np.ndarray, cell_factors: sparse.spmatrix | None
                ) -> tuple[np.ndarray, sparse.coo_matrix | None]:
        """The page's relevance factors on its numbers, mapped like its features: the cell
        factors (K, groups) with each feature's row scaled by the page's map."""
        bigram = self.bigram @ bigram_factors
        if self.cells is None:
            return bigram, None
        factors = sparse.coo_matrix(cell_factors)
        return bigram, sparse.coo_matrix(
            (factors.data * _entries(self.cells, factors.row), (factors.row, factors.col)),
            shape=factors.shape)


def page_maps(phi: np.ndarray, cell_counts: sparse.csr_matrix | None,
              statistics: CorpusStatistics, model: ScoreModel) -> PageMaps:
    """The linear maps of a page with bigram counts ``phi`` (100,) and cell counts (1, K)."""
    if model.model == "bigram":
        return PageMaps(feature_map(phi, statistics.common, model.mass_floor, model.norm_floor),
                        None)
    bigram = np.sqrt(model.bigram_weight) * np.diag(feature_scales(phi, model.mass_floor))
    counts = sparse.csr_matrix(cell_counts)
    counts.sum_duplicates()
    idf = statistics.idf(counts.indices)
    mass = float(np.sum(idf**2 * counts.data))
    with np.errstate(divide="ignore"):
        scale = np.where(counts.data > 0, np.sqrt(1 - model.bigram_weight) * idf
                         / np.sqrt(np.where(counts.data > 0, counts.data, 1.0)
                                   * (mass + model.cell_floor)), 0.0)
    cells = sparse.csr_matrix((scale, counts.indices.copy(), np.array([0, len(scale)])),
                              shape=(1, N_CELL_FEATURES))
    return PageMaps(bigram, cells)


def _entries(row: sparse.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """The values of a sparse (1, K) row at the given columns (0 where it has none)."""
    row = sparse.csr_matrix(row, copy=True)
    row.sum_duplicates()  # sorted indices, one value each
    if row.nnz == 0:
        return np.zeros(len(columns))
    position = np.searchsorted(row.indices, columns).clip(max=row.nnz - 1)
    return np.where(row.indices[position] == columns, row.data[position], 0.0)


def feature_matrix(bigram: np.ndarray, cells: list[sparse.csr_matrix | None]) -> sparse.csr_matrix:
    """All pages' features as one sparse (N, 100 + K) matrix (K = 0 in the ``bigram`` model):
    the score of two pages is the dot product of their rows."""
    bigram = sparse.csr_matrix(np.asarray(bigram, dtype=np.float64).reshape(-1, N_BIGRAMS))
    if not cells or cells[0] is None:
        return bigram
    return sparse.hstack([bigram, sparse.vstack(cells)], format="csr")


def pair_relevance(factors_a, factors_b) -> np.ndarray:
    """BiLRP of one pair from both pages' mapped factors (:meth:`PageMaps.factors`):
    ``(G_a + 1, G_b + 1)``, summing to the pair's score."""
    relevance = factors_a[0].T @ factors_b[0]
    if factors_a[1] is not None and factors_b[1] is not None:
        relevance = relevance + _shared_product(factors_a[1], factors_b[1])
    return relevance


def _shared_product(a, b) -> np.ndarray:
    """``a.T @ b`` (dense (Ga, Gb)) of sparse (K, Ga) and (K, Gb) matrices, over the rows both
    set (nothing of length K is built)."""
    a, b = sparse.coo_matrix(a), sparse.coo_matrix(b)
    shared = np.intersect1d(a.row, b.row)
    return (_compacted_rows(a, shared).T @ _compacted_rows(b, shared)).toarray()


def _compacted_rows(matrix: sparse.coo_matrix, rows: np.ndarray) -> sparse.csr_matrix:
    """The given rows (sorted) of a sparse matrix, renumbered 0 .. len(rows) - 1."""
    keep = np.isin(matrix.row, rows)
    return sparse.csr_matrix(
        (matrix.data[keep], (np.searchsorted(rows, matrix.row[keep]), matrix.col[keep])),
        shape=(len(rows), matrix.shape[1]))


@dataclass(frozen=True)
class CorpusScores:
    """A corpus scored by one model: its statistics, each page's maps and all features
    (:func:`feature_matrix`; rows in the order of the pages given)."""

    statistics: CorpusStatistics
    maps: list[PageMaps]
    features: sparse.csr_matrix

    @property
    def bigram_features(self) -> np.ndarray:
        """The bigram part of the features, (N, 100) dense."""
        return self.features[:, :N_BIGRAMS].toarray()

    @property
    def cell_features(self) -> sparse.csr_matrix:
        """The cell part of the features, (N, K) sparse (K = 0 in the ``bigram`` model)."""
        return self.features[:, N_BIGRAMS:]


def score_corpus(phi: np.ndarray, cells: sparse.csr_matrix, model: ScoreModel) -> CorpusScores:
    """Statistics, page maps and features of a corpus with bigram counts ``phi`` (N, 100) and
    cell counts ``cells`` (N, N_CELL_FEATURES): everything a run or an evaluation scores with."""
    statistics = CorpusStatistics.of_corpus(phi, cells, model)
    counts = [cells[row] if model.uses_cells else None for row in range(len(phi))]
    maps = [page_maps(phi[row], counts[row], statistics, model) for row in range(len(phi))]
    parts = [page_map.features(phi[row], counts[row]) for row, page_map in enumerate(maps)]
    bigram = np.array([part[0] for part in parts]).reshape(-1, N_BIGRAMS)
    return CorpusScores(statistics, maps, feature_matrix(bigram, [part[1] for part in parts]))
