"""The match list: candidates found by similarity, ranked by their collation.

The search finds each page's ``top_k`` most similar pages (:func:`~sphaera_tables.search.
top_k_matches`). Under the ``numbers`` model each candidate pair is then collated (its rows
aligned, its cells compared: :mod:`sphaera_tables.collation`) and ranked by its match score,
the similarity times the agreement of its aligned cells to a power
(:func:`~sphaera_tables.collation.match_score`): a table of the same type computed with other
parameters falls behind the editions of the page's own table. The ``bigram`` model (the
paper's) ranks by its similarity alone. A page then keeps the matches whose match score
reaches ``min_score`` and ``min_share`` of its best one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from sphaera_tables.collation import Collation, match_score
from sphaera_tables.number_links import collation_of, explain_sides, match_side
from sphaera_tables.page_analysis import PageAnalysis
from sphaera_tables.progress import Progress, silent, tracked
from sphaera_tables.scoring import PageMaps

MATCH_COLUMNS = ["a", "b", "score", "rank", "similarity", "cells_agree", "cells_differ"]
PAGES_KEPT = 512
"""Pages whose analysis and mapped factors :func:`pair_collator` keeps in memory: a page held
takes 0.13 MB (median; 0.44 MB at most) on the 500 test pages, and a page read again costs
about 20 ms. A page's candidates lie all over the corpus, so with 64 kept 3,371 of the test
corpus's 7,830 page uses were reads."""


def pair_collator(analysis: Callable[[int], PageAnalysis], maps: Sequence[PageMaps]
                  ) -> Callable[[int, int], Collation]:
    """``collate(a, b)``: the collation of two pages given by row, from ``analysis(row)`` and
    ``maps[row]``; each page's analysis and :class:`~sphaera_tables.number_links.MatchSide`
    are made once and kept for its next pairs (the last ``PAGES_KEPT`` pages)."""
    @lru_cache(maxsize=PAGES_KEPT)
    def page(row: int):
        found = analysis(row)
        return found, match_side(found, maps[row])

    def collate(a: int, b: int) -> Collation:
        (analysis_a, side_a), (analysis_b, side_b) = page(a), page(b)
        return collation_of(explain_sides(side_a, side_b), analysis_a, analysis_b)

    return collate


def ranked_matches(candidates: pd.DataFrame, collate: Callable[[int, int], Collation] | None,
                   min_score: float, min_share: float, progress: Progress = silent
                   ) -> pd.DataFrame:
    """Each page's candidate matches ranked by match score, those under ``min_score`` or under
    ``min_share`` of the page's best left out.

    ``candidates``: columns a, b (page rows), score (the model's similarity), as
    :func:`~sphaera_tables.search.top_k_matches` returns them; ``collate(a, b)``: the
    collation of a pair, or None to rank by similarity (the ``bigram`` model). Returns the
    columns of ``MATCH_COLUMNS``, sorted by a then rank: score is the match score, similarity
    the model's, cells_agree and cells_differ the collation's counts (NaN without one).
    """
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must be between 0 and 1, got {min_share}")
    frame = pd.DataFrame({"a": candidates["a"].to_numpy(np.int64),
                          "b": candidates["b"].to_numpy(np.int64),
                          "similarity": candidates["score"].to_numpy(np.float64)})
    if collate is None:
        frame["cells_agree"] = frame["cells_differ"] = np.nan
        frame["score"] = frame["similarity"]
    else:
        collations = _collations(collate, frame.a.to_numpy(), frame.b.to_numpy(), progress,
                                 "Collating candidates")
        frame["cells_agree"] = [c.cells_agree for c in collations]
        frame["cells_differ"] = [c.cells_differ for c in collations]
        frame["score"] = match_score(frame.similarity, frame.cells_agree, frame.cells_differ)
    frame = frame.sort_values(["a", "score", "b"], ascending=[True, False, True],
                              ignore_index=True)
    best = frame.groupby("a")["score"].transform("max")
    kept = (frame.score >= min_score) & ((best <= 0) | (frame.score >= min_share * best))
    frame = frame[kept].copy()
    frame["rank"] = frame.groupby("a").cumcount() + 1
    return frame[MATCH_COLUMNS].reset_index(drop=True)


def match_score_matrix(similarity: np.ndarray, collate: Callable[[int, int], Collation],
                       min_score: float, progress: Progress = silent) -> np.ndarray:
    """The match score of every ordered pair of pages whose similarity reaches ``min_score``
    (the pairs that can be candidates), the similarity elsewhere: the full ranking a corpus
    run's match list is cut from. ``similarity``: (N, N); ``collate`` as in
    :func:`ranked_matches`."""
    scores = np.array(similarity, dtype=np.float64, copy=True)
    a, b = np.nonzero(scores >= min_score)
    off_diagonal = a != b
    a, b = a[off_diagonal], b[off_diagonal]
    collations = _collations(collate, a, b, progress, "Collating pairs")
    scores[a, b] = match_score(scores[a, b], [c.cells_agree for c in collations],
                               [c.cells_differ for c in collations])
    return scores


def _collations(collate: Callable[[int, int], Collation], a: np.ndarray, b: np.ndarray,
                progress: Progress, message: str) -> list[Collation]:
    """``collate(a[i], b[i])`` for every i, in input order. They are computed with both
    directions of a pair one after the other, so that its two pages are still in memory for
    the second (counted for the test corpus's match list with room for 64 pages: 1,307 page
    reads instead of 2,531)."""
    order = np.lexsort((np.maximum(a, b), np.minimum(a, b)))
    found: list[Collation | None] = [None] * len(order)
    for i in tracked(order, len(order), progress, message):
        found[i] = collate(int(a[i]), int(b[i]))
    return found
