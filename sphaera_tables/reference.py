"""The bigram model with a perfect digit detector: the ceiling of ``tables evaluate matches``.

The truth's own digits give every page its true bigram counts (two consecutive digits of one
printed number). They go through the same feature map as detected counts (common profile of
these counts, the run's floors), so the retrieval scores show what the bigram model itself can
reach on a corpus, whatever the detector.

Faithfulness bound: with the counts ``phi = sum_i e_(m_i)`` over the page's bigram instances i,
the features ``h = M phi`` are linear, so BiLRP gives every pair of instances (i in page A, j in
page B) the relevance ``R_ij = M_a[:, m_i] . M_b[:, m_j]``, one super-pixel per instance. The
share of positive relevance on pairs of the same printed number (same ``cell_key``) is the
faithfulness a perfect detector would score. A bag of bigrams cannot tell which of several
equal bigrams of page B belongs to a bigram of page A, so relevance spreads over all of them
and this bound lies far below 1 for tables that repeat numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from digit_detector.evaluation import true_bigram_instances
from sphaera_tables.features import bigram_profiles, common_profile, feature_map


@dataclass
class TrueBigrams:
    """Bigram instances of one page: index ``10 j + k`` (n,) and ``cell_key`` of their number."""

    bigrams: np.ndarray
    cells: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """The page's 100-bin bigram histogram."""
        return np.bincount(self.bigrams, minlength=100).astype(np.float64)


def read_truth_digits(truth: Path | str) -> pd.DataFrame:
    """``truth/digits.csv`` of a synthetic corpus; ``cell_key`` is "" for digits in no table."""
    return pd.read_csv(Path(truth) / "digits.csv", dtype={"page_id": str, "cell_key": str},
                       keep_default_na=False)


def true_page_bigrams(digits: pd.DataFrame, page_ids: list[str]) -> dict[str, TrueBigrams]:
    """:class:`TrueBigrams` of every page in ``page_ids`` from the truth ``digits``
    (:func:`read_truth_digits`)."""
    by_page = dict(tuple(digits.groupby("page_id")))
    pages = {}
    for page_id in page_ids:
        instances = true_bigram_instances(by_page.get(page_id, digits.iloc[:0]))
        pages[page_id] = TrueBigrams(instances.bigram.to_numpy(np.int64),
                                     instances.cell_key.to_numpy(object))
    return pages


def perfect_digit_maps(pages: dict[str, TrueBigrams], mass_floor: float,
                       norm_floor: float) -> dict[str, np.ndarray]:
    """Each page's feature map ``M`` (100, 100) for its true counts, as a run builds them."""
    phi = np.stack([page.counts for page in pages.values()]) if pages else np.zeros((0, 100))
    common = common_profile(bigram_profiles(phi, mass_floor))
    return {page_id: feature_map(counts, common, mass_floor, norm_floor)
            for page_id, counts in zip(pages, phi, strict=True)}


def instance_faithfulness(page_a: TrueBigrams, map_a: np.ndarray, page_b: TrueBigrams,
                          map_b: np.ndarray) -> float:
    """Share of the positive instance-pair relevance ``R_ij`` that joins the same printed number
    (module docstring); nan when no relevance is positive."""
    relevance = map_a[:, page_a.bigrams].T @ map_b[:, page_b.bigrams]
    positive = np.clip(relevance, 0, None)
    total = positive.sum()
    if total <= 0:
        return float("nan")
    same = (page_a.cells[:, None] == page_b.cells[None, :]) & (page_a.cells[:, None] != "")
    return float(positive[same].sum() / total)
