"""BiLRP explanation of one candidate match, on printed numbers, from cached page analyses.

The score of pages a and b is a sum of dot products of their features, each page's features
linear in its counts through its maps (:mod:`sphaera_tables.scoring`). Each page's cached
factors (relevance of every bigram and cell feature on each printed number) are mapped the same
way and multiplied: ``R`` is the (G_a + 1) x (G_b + 1) matrix of how much each number of a,
together with each number of b, supports the score (last row and column: relevance at no
detected digit). ``sum R = score`` (the conservation residual is reported with every
explanation). From ``R`` come the links between numbers, the links between rows and the
collation of the two pages (:mod:`sphaera_tables.collation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sphaera_tables.collation import Collation, collate, match_score
from sphaera_tables.explain import PairExplanation
from sphaera_tables.explain.pair_relevance import conservation_residual
from sphaera_tables.page_analysis import PageAnalysis
from sphaera_tables.scoring import PageMaps, ScoreModel, pair_relevance

DEFAULT_LINKS = 30


@dataclass(frozen=True)
class MatchSide:
    """What one page brings to the explanation of each of its pairs, computed once per page:
    its relevance factors on its numbers and its features, both mapped by the page's maps
    (:meth:`~sphaera_tables.scoring.PageMaps.factors`, :meth:`~sphaera_tables.scoring.
    PageMaps.features`), and the centres of its numbers (page px, y then x)."""

    factors: tuple
    features: tuple
    centres: np.ndarray


def match_side(analysis: PageAnalysis, maps: PageMaps) -> MatchSide:
    """The page's :class:`MatchSide` under its maps."""
    groups = analysis.factors.shape[1]
    with_cells = maps.cells is not None
    cell_factors = analysis.cells.factors(groups) if with_cells else None
    cell_counts = analysis.cells.counts() if with_cells else None
    return MatchSide(maps.factors(analysis.factors, cell_factors),
                     maps.features(analysis.phi, cell_counts), _centres(analysis))


def explain_sides(side_a: MatchSide, side_b: MatchSide) -> PairExplanation:
    """BiLRP of the score of two pages on their printed numbers (last row/column: elsewhere)."""
    relevance = pair_relevance(side_a.factors, side_b.factors)
    (bigram_a, cells_a), (bigram_b, cells_b) = side_a.features, side_b.features
    y = float(bigram_a @ bigram_b)
    if cells_a is not None and cells_b is not None:
        y += float(cells_a.multiply(cells_b).sum())
    return PairExplanation(relevance=relevance, y=y,
                           residual=conservation_residual(relevance, y),
                           centres_a=side_a.centres, centres_b=side_b.centres)


def explain_match(analysis_a: PageAnalysis, maps_a: PageMaps,
                  analysis_b: PageAnalysis, maps_b: PageMaps) -> PairExplanation:
    """BiLRP of the score of two pages on their printed numbers (:func:`explain_sides`)."""
    return explain_sides(match_side(analysis_a, maps_a), match_side(analysis_b, maps_b))


def _centres(analysis: PageAnalysis) -> np.ndarray:
    centres = np.full((analysis.factors.shape[1], 2), np.nan)
    numbers = analysis.numbers
    centres[: len(numbers)] = np.column_stack([(numbers.y0 + numbers.y1) / 2,
                                               (numbers.x0 + numbers.x1) / 2])
    return centres


def collation_of(explanation: PairExplanation, analysis_a: PageAnalysis,
                 analysis_b: PageAnalysis) -> Collation:
    """Aligned rows and variants of the pair (:func:`~sphaera_tables.collation.collate`)."""
    numbers_a, numbers_b = analysis_a.numbers, analysis_b.numbers
    return collate(explanation.relevance[: len(numbers_a), : len(numbers_b)], numbers_a,
                   numbers_b)


def strongest_links(explanation: PairExplanation, analysis_a: PageAnalysis,
                    analysis_b: PageAnalysis, limit: int = DEFAULT_LINKS) -> list[dict]:
    """The ``limit`` pairs of printed numbers with the largest relevance, strongest first.

    Each link: ``box_a``, ``box_b`` ([x0, y0, x1, y1], page px), ``digits_a``, ``digits_b`` (the
    number as detected, e.g. "39"), ``relevance`` (its share of the similarity, same unit as the
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


def row_links(collation: Collation, analysis_a: PageAnalysis,
              analysis_b: PageAnalysis) -> list[dict]:
    """The aligned rows: ``row_a``, ``row_b`` (row indices, upright reading order),
    ``label_a``, ``label_b`` (each row's first number), ``cells`` (numbers read alike in both),
    ``relevance`` (their share of the similarity), ``box_a``, ``box_b`` (the rows' boxes, page px)."""
    rows_a, rows_b = analysis_a.rows, analysis_b.rows
    links = []
    for row in collation.rows.itertuples(index=False):
        links.append({
            "row_a": int(row.row_a), "row_b": int(row.row_b),
            "label_a": rows_a.label[row.row_a], "label_b": rows_b.label[row.row_b],
            "cells": int(row.anchors), "relevance": float(row.relevance),
            "box_a": _row_box(rows_a, row.row_a), "box_b": _row_box(rows_b, row.row_b),
        })
    return links


def variant_records(collation: Collation, analysis_a: PageAnalysis,
                    analysis_b: PageAnalysis) -> list[dict]:
    """The cells the two pages print differently, each with its row and both readings, e.g.
    ``{"row_a": "13", "text_a": "43", "text_b": "34", ...}`` with boxes in page px."""
    numbers_a, numbers_b = analysis_a.numbers, analysis_b.numbers
    rows_a, rows_b = analysis_a.rows, analysis_b.rows
    records = []
    for v in collation.variants.itertuples(index=False):
        records.append({
            "row_a": rows_a.label[v.row_a], "row_b": rows_b.label[v.row_b],
            "row_text_a": rows_a.text[v.row_a], "row_text_b": rows_b.text[v.row_b],
            "text_a": v.text_a, "text_b": v.text_b,
            "box_a": _box(numbers_a, v.number_a), "box_b": _box(numbers_b, v.number_b),
        })
    return records


def _row_box(rows, row: int) -> list[float]:
    return [round(float(rows.at[row, column]), 1) for column in ("x0", "y0", "x1", "y1")]


def _box(numbers, index: int) -> list[float]:
    return numbers.loc[index, ["x0", "y0", "x1", "y1"]].to_numpy(np.float64).round(1).tolist()


def explanation_record(page_a: str, page_b: str, explanation: PairExplanation,
                       analysis_a: PageAnalysis, analysis_b: PageAnalysis,
                       limit: int = DEFAULT_LINKS, model: str = "numbers") -> dict:
    """The JSON-ready explanation of a match (results-folder contract, README "The results
    folder"): its match score (:mod:`sphaera_tables.ranking`), the model's similarity that the
    relevance adds up to, number links, row links, the collation's counts and variants."""
    relevance = explanation.relevance
    total = float(relevance.sum())
    linked = float(relevance[:-1, :-1].sum())
    collation = collation_of(explanation, analysis_a, analysis_b)
    agree, differ = collation.cells_agree, collation.cells_differ
    collates = ScoreModel(model=model).uses_cells
    return {
        "page_a": page_a,
        "page_b": page_b,
        "model": model,
        "score": float(match_score(explanation.y, agree, differ)) if collates
        else float(explanation.y),
        "similarity": float(explanation.y),
        "cells_agree": agree,
        "cells_differ": differ,
        "explained": total,
        "residual": float(explanation.residual),
        "unlinked": total - linked,
        "positive": float(np.clip(relevance, 0, None).sum()),
        "negative": float(np.clip(relevance, None, 0).sum()),
        "links": strongest_links(explanation, analysis_a, analysis_b, limit),
        "rows": row_links(collation, analysis_a, analysis_b),
        "variants": variant_records(collation, analysis_a, analysis_b),
    }
