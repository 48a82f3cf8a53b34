"""Scores of a results folder against the synthetic truth (``tables evaluate matches``).

* Retrieval: for every table page whose table content (same numbers) appears on another page,
  rank all other pages by score; mean average precision and precision@1 for "same content".
  Pages with a table of the same type but other parameters (other numbers) should rank below:
  the share of queries where every true match outranks every such page is reported.
* Explanation faithfulness (a pointing game for similarity): for true matches, the share of the
  positive relevance that links the same printed number in both pages (same ``cell_key`` in the
  truth); relevance at no detected digit counts against it.
* A generic baseline on the same pages: downsampled ink images compared by cosine, to show
  what the bigram model adds.
* The same bigram model with the truth's own digits (:mod:`sphaera_tables.reference`): the
  retrieval scores and explanation faithfulness a perfect detector would reach, i.e. how much
  of the gap to 1 is the detector's and how much the model's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from digit_detector.page import PageReadError, load_page
from sphaera_tables.features import feature_map
from sphaera_tables.match_explanation import explain_match
from sphaera_tables.page_analysis import PageAnalysis, n_numbers
from sphaera_tables.reference import (
    instance_faithfulness,
    perfect_digit_maps,
    read_truth_digits,
    true_page_bigrams,
)


@dataclass
class RetrievalScores:
    queries: int
    mean_average_precision: float
    precision_at_1: float
    same_type_ranked_below: float
    mean_score_true_match: float
    mean_score_same_type_other_numbers: float


@dataclass
class MatchEvaluation:
    """Everything ``tables evaluate matches`` reports."""

    pages: int
    bigram: RetrievalScores
    baseline: RetrievalScores | None
    faithfulness: float | None
    explained_matches: int
    perfect_digits: RetrievalScores
    faithfulness_bound: float
    """Faithfulness with perfect digits over the same true matches (nan when there are none)."""

    def to_dict(self) -> dict:
        return asdict(self)


def page_contents(truth: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per page: the printed table rows (``content_id:row``) and the table types on it.

    Two pages carry "the same table" when they print at least one common row of one table
    content; the two halves of a table split over two pages do not.
    """
    tables = pd.read_csv(truth / "tables.csv", dtype={"page_id": str, "content_id": str})
    contents: dict[str, set[str]] = {}
    types: dict[str, set[str]] = {}
    for row in tables.itertuples(index=False):
        rows = json.loads(row.rows)
        contents.setdefault(row.page_id, set()).update(f"{row.content_id}:{r}" for r in rows)
        types.setdefault(row.page_id, set()).add(str(row.table_type))
    return contents, types


def retrieval_scores(similarity: np.ndarray, page_ids: list[str], contents, types) -> RetrievalScores:
    """Retrieval quality of a page-by-page similarity matrix against the truth."""
    average_precisions, hits, separated, true_scores, type_scores = [], [], [], [], []
    empty: set[str] = set()
    for q, query in enumerate(page_ids):
        mine = contents.get(query, empty)
        others = [i for i in range(len(page_ids)) if i != q]
        relevant = np.array([bool(mine & contents.get(page_ids[i], empty)) for i in others])
        if not mine or not relevant.any():
            continue
        same_type = np.array([
            not relevant[n] and bool(types.get(query, empty) & types.get(page_ids[i], empty))
            for n, i in enumerate(others)
        ])
        scores = similarity[q, others]
        order = np.argsort(-scores, kind="stable")
        ranked = relevant[order]
        precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
        average_precisions.append(float(precision[ranked].mean()))
        hits.append(float(ranked[0]))
        true_scores.extend(scores[relevant])
        if same_type.any():
            type_scores.extend(scores[same_type])
            separated.append(float(scores[relevant].min() > scores[same_type].max()))
    return RetrievalScores(
        queries=len(average_precisions),
        mean_average_precision=_mean(average_precisions),
        precision_at_1=_mean(hits),
        same_type_ranked_below=_mean(separated),
        mean_score_true_match=_mean(true_scores),
        mean_score_same_type_other_numbers=_mean(type_scores),
    )


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def number_cells(analysis: PageAnalysis, truth_digits: pd.DataFrame) -> np.ndarray:
    """``cell_key`` of the true number under each detected number ('' where none is near).

    Each detected digit takes the cell of the true digit whose centre is nearest, within half a
    digit height; a number takes the cell most of its digits agree on.
    """
    digits = analysis.digits
    cells = np.full(n_numbers(digits), "", dtype=object)
    if truth_digits.empty or digits.empty:
        return cells
    centres = np.column_stack([(truth_digits.x0 + truth_digits.x1) / 2,
                               (truth_digits.y0 + truth_digits.y1) / 2])
    half_height = float(np.median(truth_digits.y1 - truth_digits.y0)) / 2
    distance, nearest = cKDTree(centres).query(digits[["x", "y"]].to_numpy(),
                                               distance_upper_bound=half_height)
    found = np.isfinite(distance)
    votes = pd.DataFrame({"number": digits["number"].to_numpy()[found],
                          "cell": truth_digits.cell_key.fillna("").to_numpy()[nearest[found]]})
    votes = votes[votes.cell != ""]
    for number, cell in votes.groupby("number")["cell"].agg(lambda c: c.value_counts().idxmax()
                                                           ).items():
        cells[number] = cell
    return cells


def explanation_faithfulness(analysis_a, map_a, cells_a, analysis_b, map_b, cells_b) -> float:
    """Share of the positive relevance of a pair that links the same printed number."""
    relevance = explain_match(analysis_a, map_a, analysis_b, map_b).relevance
    positive = np.clip(relevance, 0, None)
    total = positive.sum()
    if total <= 0:
        return float("nan")
    linked = positive[: len(cells_a), : len(cells_b)]
    same = (cells_a[:, None] == cells_b[None, :]) & (cells_a[:, None] != "")
    return float(linked[same].sum() / total)


def baseline_features(paths: list[Path], side: int = 32) -> np.ndarray:
    """Generic image features: the ink image shrunk to ``side`` x ``side``, unit length."""
    rows = []
    for path in paths:
        try:
            grey = load_page(path)
        except PageReadError:
            rows.append(np.zeros(side * side))
            continue
        ink = 255.0 - cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
        vector = ink.ravel() - ink.mean()
        rows.append(vector / (np.linalg.norm(vector) or 1.0))
    return np.asarray(rows)


def evaluate_matches(out: Path | str, truth: Path | str, *, baseline: bool = True,
                     load_analysis=None, progress=None) -> MatchEvaluation:
    """Evaluate a results folder ``out`` against a synthetic corpus's ``truth`` folder.

    ``load_analysis(page_id) -> PageAnalysis`` gives the cached page analyses (needed for the
    faithfulness of the explanations; skipped when ``None``).
    """
    out, truth = Path(out), Path(truth)
    track = progress or (lambda iterable, total, label: iterable)
    pages = pd.read_csv(out / "pages.csv", dtype={"page_id": str}, keep_default_na=False)
    page_ids = pages.loc[pages.status == "ok", "page_id"].tolist()
    features = np.load(out / "features.npy", allow_pickle=False)
    if len(features) != len(page_ids):
        raise ValueError(f"{out}: features.npy has {len(features)} rows for {len(page_ids)} pages")
    manifest = json.loads((out / "manifest.json").read_text())
    config = manifest["config"]
    contents, types = page_contents(truth)
    bigram = retrieval_scores(features @ features.T, page_ids, contents, types)
    matches = pd.read_csv(out / "matches.csv", dtype={"page_a": str, "page_b": str})
    true_matches = [(a, b) for a, b in zip(matches.page_a, matches.page_b, strict=True)
                    if contents.get(a, set()) & contents.get(b, set())]
    digits = read_truth_digits(truth)
    perfect, bound = _perfect_digits(digits, page_ids, true_matches, contents, types, config)
    generic = None
    if baseline:
        corpus = Path(manifest["corpus"])
        base = baseline_features([corpus / p for p in page_ids])
        generic = retrieval_scores(base @ base.T, page_ids, contents, types)
    faithfulness, explained = None, 0
    if load_analysis is not None:
        common = np.load(out / "common_profile.npy", allow_pickle=False)

        def page_map(phi):
            return feature_map(phi, common, config["mass_floor"], config["norm_floor"])

        faithfulness, explained = _faithfulness(digits, true_matches, load_analysis, page_map,
                                                track)
    return MatchEvaluation(len(page_ids), bigram, generic, faithfulness, explained, perfect,
                           bound)


def _perfect_digits(digits, page_ids, true_matches, contents, types, config):
    """Retrieval scores and faithfulness bound of the model fed the truth's digits."""
    pages = true_page_bigrams(digits, page_ids)
    maps = perfect_digit_maps(pages, config["mass_floor"], config["norm_floor"])
    features = np.stack([maps[p] @ pages[p].counts for p in page_ids]) if page_ids \
        else np.zeros((0, 100))
    scores = retrieval_scores(features @ features.T, page_ids, contents, types)
    shares = [instance_faithfulness(pages[a], maps[a], pages[b], maps[b])
              for a, b in true_matches]
    return scores, _mean([s for s in shares if np.isfinite(s)])


def _faithfulness(digits, true_matches, load_analysis, page_map, track):
    by_page = {page: frame for page, frame in digits.groupby("page_id")}
    cache: dict[str, tuple] = {}

    def page(page_id):
        if page_id not in cache:
            analysis = load_analysis(page_id)
            cells = number_cells(analysis, by_page.get(page_id, digits.iloc[:0]))
            cache[page_id] = (analysis, page_map(analysis.phi), cells)
        return cache[page_id]

    shares = []
    for page_a, page_b in track(true_matches, len(true_matches), "Scoring explanations"):
        a, b = page(page_a), page(page_b)
        shares.append(explanation_faithfulness(a[0], a[1], a[2], b[0], b[1], b[2]))
    shares = [s for s in shares if np.isfinite(s)]
    return _mean(shares), len(shares)

