"""Scores of a results folder against the synthetic truth (``tables evaluate matches``).

* Retrieval: for every table page whose table content (same numbers) appears on another page,
  rank all other pages by score (the ``numbers`` model: the match score of
  :mod:`sphaera_tables.ranking` where the similarity reaches the minimum score, as a corpus
  run ranks its candidates); mean average precision and precision@1 for "same content".
  Pages with a table of the same type but other parameters (other numbers) should rank below:
  the share of queries where every true match outranks every such page is reported.
  Also counted on the match list the default search writes (unlisted editions are misses).
* Explanations of the listed true matches: faithfulness (share of the positive relevance that
  links the same truth cell in both pages; relevance at no detected digit counts against it),
  row consistency (the same truth row), cancellation (positive relevance over the score).
* Collation: the variants found against the cells the two pages print differently in the truth
  (misprints), precision and recall.
* Every measure for both models (``numbers`` and ``bigram``), each on the detector's digits and
  on the truth's (:mod:`sphaera_tables.reference`): how much of the gap to 1 is the detector's
  and how much the model's.
* A generic baseline on the same pages: downsampled ink images compared by cosine.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

from corpus_tools.page_sources import PageSource, list_folder
from corpus_tools.pdf import DEFAULT_PDF_DPI
from corpus_tools.results_folder import ResultsFolder, read_csv_frame
from digit_detector.model import DetectorConfig
from digit_detector.page import PageReadError
from sphaera_tables.bigram import N_BIGRAMS
from sphaera_tables.cells import N_CELL_FEATURES
from sphaera_tables.number_links import collation_of, explain_match
from sphaera_tables.page_analysis import PageAnalysis, n_numbers
from sphaera_tables.progress import Progress, relabelled, silent, tracked
from sphaera_tables.ranking import match_score_matrix, pair_collator, ranked_matches
from sphaera_tables.reference import perfect_analyses, read_truth_digits
from sphaera_tables.scoring import (
    DEFAULT_MIN_SCORES,
    MODELS,
    ScoreModel,
    score_corpus,
)
from sphaera_tables.search import top_k_matches


@dataclass
class RetrievalScores:
    queries: int
    mean_average_precision: float
    precision_at_1: float
    same_type_ranked_below: float
    mean_score_true_match: float
    mean_score_same_type_other_numbers: float


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
    centres = np.column_stack([(truth_digits.x0 + truth_digits.x1 - 1) / 2,
                               (truth_digits.y0 + truth_digits.y1 - 1) / 2])
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


def printed_cells(truth_digits: pd.DataFrame) -> dict[str, str]:
    """``cell_key -> the digits the page prints there`` (misprints included)."""
    table = truth_digits[truth_digits.cell_key != ""].sort_values(["cell_key", "position"])
    return table.groupby("cell_key")["digit"].agg(
        lambda d: "".join(str(int(v)) for v in d)).to_dict()


@dataclass
class PairScores:
    """Explanation and collation scores of one true match."""

    faithfulness: float
    """Share of the positive relevance joining the same truth cell."""
    row_consistency: float
    """Share of the positive relevance joining numbers of the same truth row."""
    positive_ratio: float
    """Positive relevance over the score (1 = no cancellation)."""
    variants_found: int
    variants_right: int
    true_variants: int
    true_variants_found: int


def pair_scores(explanation, collation, cells_a: np.ndarray, cells_b: np.ndarray,
                printed_a: dict, printed_b: dict) -> PairScores:
    """Score one explained true match against the truth (cells of each page's numbers)."""
    relevance = explanation.relevance
    positive = np.clip(relevance, 0, None)
    total = positive.sum()
    linked = positive[: len(cells_a), : len(cells_b)]
    known = (cells_a[:, None] != "") & (cells_b[None, :] != "")
    same_cell = (cells_a[:, None] == cells_b[None, :]) & known
    rows_a = np.array([c.rsplit(":", 1)[0] for c in cells_a], dtype=object)
    rows_b = np.array([c.rsplit(":", 1)[0] for c in cells_b], dtype=object)
    same_row = (rows_a[:, None] == rows_b[None, :]) & known
    true = {cell for cell in printed_a.keys() & printed_b.keys()
            if printed_a[cell] != printed_b[cell]}
    found = set()
    right = 0
    for v in collation.variants.itertuples(index=False):
        cell = cells_a[v.number_a]
        if cell and cell == cells_b[v.number_b] and cell in true:
            right += 1
            found.add(cell)
    nan = float("nan")
    return PairScores(
        faithfulness=float(linked[same_cell].sum() / total) if total > 0 else nan,
        row_consistency=float(linked[same_row].sum() / total) if total > 0 else nan,
        positive_ratio=float(total / explanation.y) if explanation.y > 0 else nan,
        variants_found=len(collation.variants), variants_right=right,
        true_variants=len(true), true_variants_found=len(found))


def baseline_features(sources: list[PageSource], side: int = 32) -> np.ndarray:
    """Generic image features: the ink image shrunk to ``side`` x ``side``, unit length."""
    rows = []
    for source in sources:
        try:
            grey = source.load()
        except PageReadError:
            rows.append(np.zeros(side * side))
            continue
        ink = 255.0 - cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
        vector = ink.ravel() - ink.mean()
        rows.append(vector / (np.linalg.norm(vector) or 1.0))
    return np.asarray(rows)


@dataclass
class ModelEvaluation:
    """The scores of one model on one kind of digits (the detector's or perfect ones)."""

    model: str
    digits: str
    retrieval: RetrievalScores
    """Ranking every page by score."""
    listed: RetrievalScores
    """Counting only the matches the default search lists (unlisted editions are misses)."""
    listed_true_matches: int
    faithfulness: float
    row_consistency: float
    median_positive_ratio: float
    variant_precision: float
    variant_recall: float


@dataclass
class MatchEvaluation:
    """Everything ``tables evaluate matches`` reports."""

    pages: int
    as_written: RetrievalScores
    """matches.csv of the results folder as written (its model and settings)."""
    models: list[ModelEvaluation]
    baseline: RetrievalScores | None

    def to_dict(self) -> dict:
        return asdict(self)


def listed_retrieval(matches: pd.DataFrame, page_ids: list[str], contents, types
                     ) -> RetrievalScores:
    """Retrieval counted on a match list (columns page_a, page_b, score): a query's ranking is
    its listed matches by score, and its true matches that are not listed count as misses."""
    listed = {}
    for row in matches.itertuples(index=False):
        listed.setdefault(row.page_a, []).append((row.score, row.page_b))
    average_precisions, hits = [], []
    empty: set[str] = set()
    for query in page_ids:
        mine = contents.get(query, empty)
        relevant = sum(1 for other in page_ids
                       if other != query and mine & contents.get(other, empty))
        if not mine or relevant == 0:
            continue
        ranked = [bool(mine & contents.get(b, empty))
                  for _, b in sorted(listed.get(query, []), key=lambda t: -t[0])]
        precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1) if ranked else []
        average_precisions.append(float(np.sum(np.asarray(precision)[ranked]) / relevant)
                                  if ranked else 0.0)
        hits.append(float(ranked[0]) if ranked else 0.0)
    nan = float("nan")
    return RetrievalScores(len(average_precisions), _mean(average_precisions), _mean(hits),
                           nan, nan, nan)


def evaluate_model(analyses: dict[str, PageAnalysis], page_ids: list[str], truth_digits,
                   contents, types, scoring: ScoreModel, *, top_k: int, min_score: float,
                   min_share: float, digits: str, progress: Progress = silent
                   ) -> ModelEvaluation:
    """Score one model on the given page analyses: retrieval over every page and over the
    default match list, and the explanation and collation of every listed true match."""
    phi = np.stack([analyses[p].phi for p in page_ids]) if page_ids else np.zeros((0, 100))
    cells = sparse.vstack([analyses[p].cells.counts() for p in page_ids], format="csr") \
        if page_ids else sparse.csr_matrix((0, N_CELL_FEATURES))
    scored = score_corpus(phi, cells, scoring)
    features = scored.features
    maps = dict(zip(page_ids, scored.maps, strict=True))
    collate = cache(pair_collator(lambda row: analyses[page_ids[row]], scored.maps)) \
        if scoring.uses_cells else None
    similarity = (features @ features.T).toarray()
    if collate is not None:
        similarity = match_score_matrix(
            similarity, collate, min_score,
            relabelled(progress, f"Collating {scoring.model} ({digits})"))
    retrieval = retrieval_scores(similarity, page_ids, contents, types)
    found = ranked_matches(top_k_matches(features, top_k, min_score, profile_columns=N_BIGRAMS),
                           collate, min_score, min_share)
    listed = pd.DataFrame({"page_a": [page_ids[i] for i in found.a],
                           "page_b": [page_ids[i] for i in found.b], "score": found.score})
    true_pairs = sorted({tuple(sorted((a, b))) for a, b in zip(listed.page_a, listed.page_b,
                                                               strict=True)
                         if contents.get(a, set()) & contents.get(b, set())})
    by_page = {page: frame for page, frame in truth_digits.groupby("page_id")}
    page_truth: dict[str, tuple] = {}

    def truth_of(page_id):
        if page_id not in page_truth:
            frame = by_page.get(page_id, truth_digits.iloc[:0])
            page_truth[page_id] = (number_cells(analyses[page_id], frame), printed_cells(frame))
        return page_truth[page_id]

    scores = []
    for a, b in tracked(true_pairs, len(true_pairs), progress,
                        f"Scoring {scoring.model} ({digits})"):
        explanation = explain_match(analyses[a], maps[a], analyses[b], maps[b])
        collation = collation_of(explanation, analyses[a], analyses[b])
        (cells_a, printed_a), (cells_b, printed_b) = truth_of(a), truth_of(b)
        scores.append(pair_scores(explanation, collation, cells_a, cells_b, printed_a,
                                  printed_b))
    found_total = sum(s.variants_found for s in scores)
    true_total = sum(s.true_variants for s in scores)
    return ModelEvaluation(
        model=scoring.model, digits=digits, retrieval=retrieval,
        listed=listed_retrieval(listed, page_ids, contents, types),
        listed_true_matches=len(true_pairs),
        faithfulness=_nanmean([s.faithfulness for s in scores]),
        row_consistency=_nanmean([s.row_consistency for s in scores]),
        median_positive_ratio=float(np.nanmedian([s.positive_ratio for s in scores]))
        if scores else float("nan"),
        variant_precision=sum(s.variants_right for s in scores) / found_total
        if found_total else float("nan"),
        variant_recall=sum(s.true_variants_found for s in scores) / true_total
        if true_total else float("nan"),
    )


def _nanmean(values) -> float:
    values = [v for v in values if np.isfinite(v)]
    return _mean(values)


def evaluate_matches(out: Path | str, truth: Path | str, *, load_analysis,
                     baseline: bool = True, progress: Progress = silent) -> MatchEvaluation:
    """Evaluate a results folder ``out`` against a synthetic corpus's ``truth`` folder.

    ``load_analysis(page_id) -> PageAnalysis`` gives the cached page analyses of the run. Both
    models are scored with the run's search settings (top-k, minimum score; the ``bigram``
    model, whose scores mean something else, with its own default minimum), each on the
    detector's digits and on the truth's.
    """
    out, truth = Path(out), Path(truth)
    folder = ResultsFolder(out)
    pages = read_csv_frame(folder.pages_csv, ["page_id", "status"])
    page_ids = pages.loc[pages.status == "ok", "page_id"].tolist()
    manifest = folder.read_manifest()
    config = manifest["config"]
    contents, types = page_contents(truth)
    matches = read_csv_frame(folder.matches_csv, ["page_a", "page_b"])
    as_written = listed_retrieval(matches, page_ids, contents, types)
    digits = read_truth_digits(truth)
    detected = {p: load_analysis(p) for p in page_ids}
    first = next(iter(detected.values()), None)
    detector_config = DetectorConfig(digit_pitch_px=first.pitch, digit_height_px=first.height) \
        if first is not None else DetectorConfig()
    perfect = perfect_analyses(truth, page_ids, detector_config)
    run_model = ScoreModel(**config["scoring"])
    models = []
    for model in MODELS:
        scoring = run_model if model == run_model.model else ScoreModel(model=model)
        min_score = config["min_score"] if model == run_model.model \
            else DEFAULT_MIN_SCORES[model]
        for kind, analyses in (("detector", detected), ("perfect", perfect)):
            models.append(evaluate_model(analyses, page_ids, digits, contents, types, scoring,
                                         top_k=config["top_k"], min_score=min_score,
                                         min_share=config.get("min_share", 0.0),
                                         digits=kind, progress=progress))
    generic = None
    if baseline:
        if not isinstance(manifest["corpus"], str):
            raise ValueError("the generic baseline reads the pages of one corpus folder, and "
                             "this run had other inputs; evaluate with --no-baseline")
        listed, _ = list_folder(manifest["corpus"],
                                pdf_dpi=config.get("pdf_dpi", DEFAULT_PDF_DPI))
        sources = {source.page_id: source for source in listed}
        base = baseline_features([sources[p] for p in page_ids])
        generic = retrieval_scores(base @ base.T, page_ids, contents, types)
    return MatchEvaluation(len(page_ids), as_written, models, generic)
