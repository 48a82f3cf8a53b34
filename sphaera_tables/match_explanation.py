"""BiLRP explanation of one candidate match, on printed numbers, from cached page analyses.

The score of pages a and b is ``<h_a, h_b>`` with ``h = M phi`` (see
:mod:`sphaera_tables.features`). Each page's cached factors (relevance of ``phi_m`` on each
printed number) are mapped by its ``M`` and multiplied: ``R = (M_a F_a)^T (M_b F_b)`` is the (G_a + 1) x
(G_b + 1) matrix of how much each number of a, together with each number of b, supports the
score (the last row and column: relevance at no detected digit).
``sum R = score`` (the conservation residual is reported with every explanation).
"""

from __future__ import annotations

import numpy as np

from sphaera_tables.bigram import N_BIGRAMS
from sphaera_tables.explain import PairExplanation, PooledFactors, bilrp, render_box_links
from sphaera_tables.page_analysis import PageAnalysis

DEFAULT_LINKS = 30
DRAWN_LINKS = 150


def pooled_features(analysis: PageAnalysis, feature_map: np.ndarray) -> PooledFactors:
    """The page's number-pooled factors of its similarity features ``feature_map @ phi``."""
    numbers = analysis.numbers
    centres = np.full((analysis.factors.shape[1], 2), np.nan)
    centres[: len(numbers)] = np.column_stack([(numbers.y0 + numbers.y1) / 2,
                                               (numbers.x0 + numbers.x1) / 2])
    return PooledFactors(values=feature_map @ analysis.factors, phi=feature_map @ analysis.phi,
                         centres=centres)


def explain_match(analysis_a: PageAnalysis, map_a: np.ndarray,
                  analysis_b: PageAnalysis, map_b: np.ndarray) -> PairExplanation:
    """BiLRP of the score of two pages on their printed numbers (last row/column: elsewhere).

    ``map_a``, ``map_b``: each page's feature map (100, 100), see
    :func:`sphaera_tables.features.feature_map`.
    """
    for feature_map in (map_a, map_b):
        if np.shape(feature_map) != (N_BIGRAMS, N_BIGRAMS):
            raise ValueError("a feature map must be a 100 x 100 matrix")
    return bilrp(pooled_features(analysis_a, map_a), pooled_features(analysis_b, map_b))


def strongest_links(explanation: PairExplanation, analysis_a: PageAnalysis,
                    analysis_b: PageAnalysis, limit: int = DEFAULT_LINKS) -> list[dict]:
    """The ``limit`` pairs of printed numbers with the largest relevance, strongest first.

    Each link: ``box_a``, ``box_b`` ([x0, y0, x1, y1], page px), ``digits_a``, ``digits_b`` (the
    number as detected, e.g. "39"), ``relevance`` (its share of the score, same unit as the
    score). Relevance at no detected digit is not a link (it is reported as ``unlinked``).
    """
    numbers_a, numbers_b = analysis_a.numbers, analysis_b.numbers
    relevance = explanation.relevance[: len(numbers_a), : len(numbers_b)]
    if relevance.size == 0:
        return []
    boxes_a = numbers_a[["x0", "y0", "x1", "y1"]].to_numpy(np.float64).round(1)
    boxes_b = numbers_b[["x0", "y0", "x1", "y1"]].to_numpy(np.float64).round(1)
    texts_a, texts_b = numbers_a["text"].to_numpy(), numbers_b["text"].to_numpy()
    order = np.argsort(-relevance, axis=None, kind="stable")[:limit]
    links = []
    for i, j in zip(*np.unravel_index(order, relevance.shape), strict=True):
        value = float(relevance[i, j])
        if value <= 0:
            break
        links.append({
            "box_a": boxes_a[i].tolist(),
            "box_b": boxes_b[j].tolist(),
            "digits_a": str(texts_a[i]),
            "digits_b": str(texts_b[j]),
            "relevance": value,
        })
    return links


def explanation_record(page_a: str, page_b: str, score: float, explanation: PairExplanation,
                       analysis_a: PageAnalysis, analysis_b: PageAnalysis,
                       limit: int = DEFAULT_LINKS) -> dict:
    """The JSON-ready explanation of a match (results-folder contract, design.md section 3)."""
    relevance = explanation.relevance
    total = float(relevance.sum())
    linked = float(relevance[:-1, :-1].sum())
    return {
        "page_a": page_a,
        "page_b": page_b,
        "score": float(score),
        "explained": total,
        "residual": float(explanation.residual),
        "unlinked": total - linked,
        "links": strongest_links(explanation, analysis_a, analysis_b, limit),
    }


def render_match(image_a: np.ndarray, image_b: np.ndarray, explanation: PairExplanation,
                 analysis_a: PageAnalysis, analysis_b: PageAnalysis,
                 drawn: int = DRAWN_LINKS) -> np.ndarray:
    """RGB picture of the two pages side by side with red curves between supporting numbers.

    ``image_a``, ``image_b``: the pages at any size (e.g. thumbnails); number boxes are
    scaled from page px to each image. Only the ``drawn`` strongest links are drawn (then
    Algorithm 1's normalisation and thresholds), so that the picture stays readable.
    """
    boxes_a = _boxes_in_image(analysis_a, image_a.shape)
    boxes_b = _boxes_in_image(analysis_b, image_b.shape)
    relevance = strongest_only(explanation.relevance[: len(boxes_a), : len(boxes_b)], drawn)
    return render_box_links(image_a, image_b, boxes_a, boxes_b, relevance)


def strongest_only(relevance: np.ndarray, count: int = DRAWN_LINKS) -> np.ndarray:
    """``relevance`` with all but its ``count`` largest-magnitude entries set to zero (what a
    picture draws, so that it stays readable)."""
    if relevance.size <= count:
        return relevance
    kept = np.zeros_like(relevance)
    flat = np.argpartition(-np.abs(relevance), count - 1, axis=None)[:count]
    kept.flat[flat] = relevance.flat[flat]
    return kept


def _boxes_in_image(analysis: PageAnalysis, image_shape) -> np.ndarray:
    """Number boxes as (x, y, w, h) in the pixels of an image of ``image_shape``."""
    factor_y = image_shape[0] / analysis.page_shape[0]
    factor_x = image_shape[1] / analysis.page_shape[1]
    d = analysis.numbers
    return np.column_stack([d.x0 * factor_x, d.y0 * factor_y, (d.x1 - d.x0) * factor_x,
                            (d.y1 - d.y0) * factor_y]).reshape(-1, 4)
