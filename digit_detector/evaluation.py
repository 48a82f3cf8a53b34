"""Scoring detections against synthetic ground truth.

Two measures: precision / recall / F1 of individual digits (right class, centre within half a
digit height of a true centre, one detection per true digit), and the authors' measure, the
Pearson correlation between the predicted and the true 100-bin bigram histogram of a page.
Recall is also given by where a digit is printed (table cells, folios, title pages), and false
detections are named by the printed letter they lie on (``truth/letters.csv.gz``).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from corpus_tools.synth.corpus import LETTERS_FILE
from digit_detector.geometry import class_height_ratios, image_digit_height
from digit_detector.inference import DEFAULT_THRESHOLD, detect
from digit_detector.model import DetectorConfig, DigitDetector
from digit_detector.page import PageReadError
from digit_detector.prepare import PreparedPage
from digit_detector.reading import next_digits

DENSITY_CLASSES = ((0, 150, "sparse"), (150, 400, "dense"), (400, np.inf, "very dense"))
"""Table density by true digits per page: (from, to, name)."""
ROLES = ("cells", "folios", "titles")
"""Where a true digit is printed: in a table cell, elsewhere on a table, prose or diagram page
(the folio), or on a title page (the imprint's year)."""


@dataclasses.dataclass(frozen=True)
class MatchCounts:
    """True positives, false positives and false negatives of one page or a corpus."""

    true_positives: int
    false_positives: int
    false_negatives: int

    def __add__(self, other: MatchCounts) -> MatchCounts:
        return MatchCounts(self.true_positives + other.true_positives,
                           self.false_positives + other.false_positives,
                           self.false_negatives + other.false_negatives)

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        true = self.true_positives + self.false_negatives
        return self.true_positives / true if true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match_digits(detected: pd.DataFrame, truth: pd.DataFrame) -> MatchCounts:
    """Count correct, spurious and missed digits on one page.

    A detection (x, y, digit, score) is correct when an unmatched true digit (box x0, y0, x1,
    y1, digit) of the same class has its centre within half its box height; detections are
    matched in order of decreasing score, each true digit at most once.
    """
    correct, _ = matched_digits(detected, truth)
    hits = int(correct.sum())
    return MatchCounts(hits, len(detected) - hits, len(truth) - hits)


def matched_digits(detected: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Which detections are correct (bool, in the order of ``detected``) and which true digits
    were found (bool, in the order of ``truth``), matched as in :func:`match_digits`."""
    correct = np.zeros(len(detected), dtype=bool)
    taken = np.zeros(len(truth), dtype=bool)
    if len(truth) == 0 or len(detected) == 0:
        return correct, taken
    true_x = ((truth.x0 + truth.x1) / 2).to_numpy(float)
    true_y = ((truth.y0 + truth.y1) / 2).to_numpy(float)
    radius = ((truth.y1 - truth.y0) / 2).to_numpy(float)
    true_digit = truth.digit.to_numpy()
    tree = cKDTree(np.column_stack([true_x, true_y]))
    order = np.argsort(-detected.score.to_numpy(float), kind="stable")
    xs, ys, digits = (detected[c].to_numpy() for c in ("x", "y", "digit"))
    for i in order:
        for index in tree.query_ball_point([xs[i], ys[i]], r=float(radius.max())):
            if (not taken[index] and true_digit[index] == digits[i]
                    and np.hypot(xs[i] - true_x[index], ys[i] - true_y[index]) <= radius[index]):
                taken[index] = correct[i] = True
                break
    return correct, taken


def digit_roles(truth: pd.DataFrame, kind: str) -> np.ndarray:
    """The :data:`ROLES` entry of every true digit of a page of ``kind`` (str array)."""
    in_cell = truth.cell_key.fillna("").astype(str).to_numpy() != ""
    return np.where(in_cell, "cells", "titles" if kind == "title" else "folios")


def letters_read_as_digits(detected: pd.DataFrame, letters: pd.DataFrame) -> Counter:
    """Count the ``detected`` digits (x, y, digit) that lie on a printed letter (truth box x0,
    y0, x1, y1 with its ``char``), as ``"char>digit"``: the letter whose box holds the centre,
    the nearest box centre where boxes overlap. Digits set as words (e.g. the "2a" of a seconds
    column) are not letters and are left out."""
    letters = letters[~letters.char.astype(str).str.isdigit()]
    counts: Counter = Counter()
    if len(letters) == 0 or len(detected) == 0:
        return counts
    x0, y0, x1, y1 = (letters[c].to_numpy(float) for c in ("x0", "y0", "x1", "y1"))
    chars = letters.char.astype(str).to_numpy()
    for x, y, digit in zip(detected.x, detected.y, detected.digit, strict=True):
        inside = np.flatnonzero((x0 <= x) & (x < x1) & (y0 <= y) & (y < y1))
        if len(inside):
            distance = np.hypot((x0[inside] + x1[inside]) / 2 - x,
                                (y0[inside] + y1[inside]) / 2 - y)
            counts[f"{chars[inside[np.argmin(distance)]]}>{int(digit)}"] += 1
    return counts


def true_bigram_instances(truth: pd.DataFrame) -> pd.DataFrame:
    """Every digit j at position p followed by k at p + 1 of the same number, from truth rows
    with number_id, position and digit: the row of the first digit plus ``bigram`` (10 j + k)."""
    ordered = truth.sort_values(["number_id", "position"])
    number, position, digit = (ordered[c].to_numpy() for c in ("number_id", "position", "digit"))
    follows = (number[1:] == number[:-1]) & (position[1:] == position[:-1] + 1)
    return ordered.iloc[:-1][follows].assign(
        bigram=(10 * digit[:-1][follows] + digit[1:][follows]).astype(np.int64))


def true_bigrams(truth: pd.DataFrame) -> np.ndarray:
    """100-bin histogram (index 10 j + k) of :func:`true_bigram_instances`."""
    return np.bincount(true_bigram_instances(truth).bigram.to_numpy(np.int64), minlength=100)


def detected_bigrams(detected: pd.DataFrame, pitch: float, height: float) -> np.ndarray:
    """100-bin histogram of detected digits followed by a detected next digit.

    ``x``, ``y`` are upright coordinates (numbers read along +x), in px of the same size as
    ``pitch`` and ``height``; the next digit is :func:`~digit_detector.reading.next_digits`'s.
    Fed the true digit centres of any synthetic table page, this gives its true histogram.
    """
    following = next_digits(detected[["x", "y"]].to_numpy(float), pitch, height)
    digits = detected.digit.to_numpy(np.int64)
    paired = following >= 0
    return np.bincount(10 * digits[paired] + digits[following[paired]], minlength=100)


def page_bigrams(found: pd.DataFrame, prepared: PreparedPage, config: DetectorConfig) -> np.ndarray:
    """:func:`detected_bigrams` of digits found on a page (page px), read in the page's upright
    working frame, so that numbers on a page printed sideways pair up too."""
    x, y = prepared.to_working_coords(found.x.to_numpy(), found.y.to_numpy())
    upright = pd.DataFrame({"x": x, "y": y, "digit": found.digit.to_numpy()})
    return detected_bigrams(upright, config.digit_pitch_px, config.digit_height_px)


def histogram_correlation(predicted: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation of two histograms (nan when either is constant)."""
    if predicted.std() == 0 or true.std() == 0:
        return float("nan")
    return float(np.corrcoef(predicted, true)[0, 1])


def evaluate_corpus(
    corpus: str | Path,
    detector: DigitDetector,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_pages: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Detect every page of a synthetic corpus and score it against ``truth/``.

    Returns one row per page: page_id, kind, typeface, true_digits, detected, true_positives,
    false_positives, false_negatives, precision, recall, f1, bigram_correlation, density
    (tables only), scale_ratio (chosen working scale over the true one, see
    :func:`scale_ratio`), ``<role>_true`` and ``<role>_found`` for each of :data:`ROLES`,
    letters_read (JSON ``{"char>digit": count}`` of :func:`letters_read_as_digits`; empty
    when the corpus has no letters file) and error (a page that could not be read, skipped).
    """
    corpus = Path(corpus)
    pages = pd.read_csv(corpus / "truth" / "pages.csv")
    digits = pd.read_csv(corpus / "truth" / "digits.csv", dtype={"cell_key": str})
    letters_path = corpus / "truth" / LETTERS_FILE
    letters = (pd.read_csv(letters_path, dtype={"char": str}, keep_default_na=False)
               if letters_path.is_file() else None)
    letters_by_page = {} if letters is None else dict(tuple(letters.groupby("page_id")))
    class_ratios = class_height_ratios(digits)
    if max_pages is not None:
        pages = pages.head(max_pages)
    rows = []
    for index, page in enumerate(pages.itertuples(index=False)):
        truth = digits[digits.page_id == page.page_id]
        roles = digit_roles(truth, page.kind)
        row = {"page_id": page.page_id, "kind": page.kind, "typeface": page.typeface,
               "true_digits": len(truth), "detected": 0, "true_positives": 0,
               "false_positives": 0, "false_negatives": 0, "precision": np.nan,
               "recall": np.nan, "f1": np.nan, "bigram_correlation": np.nan, "density": "",
               "scale_ratio": np.nan,
               **{f"{role}_true": int((roles == role).sum()) for role in ROLES},
               **{f"{role}_found": 0 for role in ROLES}, "letters_read": "", "error": ""}
        if progress is not None:
            progress(index, len(pages))
        try:
            detection = detect(corpus / page.page_id, detector, threshold=threshold)
        except PageReadError as error:
            rows.append({**row, "error": str(error)})
            continue
        found = detection.digits
        correct, taken = matched_digits(found, truth)
        counts = MatchCounts(int(correct.sum()), int((~correct).sum()), int((~taken).sum()))
        scale = detection.prepared.scale
        predicted = page_bigrams(found, detection.prepared, detector.config)
        row.update(detected=len(found), true_positives=counts.true_positives,
                   false_positives=counts.false_positives,
                   false_negatives=counts.false_negatives, precision=counts.precision,
                   recall=counts.recall, f1=counts.f1,
                   bigram_correlation=histogram_correlation(predicted, true_bigrams(truth)),
                   density=density_class(len(truth)) if page.kind == "table" else "",
                   scale_ratio=scale_ratio(scale, truth, detector.config.digit_height_px,
                                           class_ratios),
                   **{f"{role}_found": int(taken[roles == role].sum()) for role in ROLES})
        if letters is not None:
            read = letters_read_as_digits(found[~correct],
                                          letters_by_page.get(page.page_id, letters.iloc[:0]))
            row["letters_read"] = json.dumps(dict(sorted(read.items())), ensure_ascii=False)
        rows.append(row)
    if progress is not None:
        progress(len(pages), len(pages))
    return pd.DataFrame(rows)


def scale_ratio(scale: float, truth: pd.DataFrame, digit_height_px: float,
                class_ratios: np.ndarray) -> float:
    """Chosen working scale over the true one, the scale that brings the page's class-corrected
    median digit height (as in training, :func:`~digit_detector.geometry.image_digit_height`
    with ``class_ratios`` (10,)) to ``digit_height_px``; nan with fewer than 20 true digits."""
    if len(truth) < 20:
        return float("nan")
    return scale * image_digit_height(truth, class_ratios) / digit_height_px


def density_class(true_digits: int) -> str:
    """Name of the density class of a table page with ``true_digits`` digits."""
    return next(name for low, high, name in DENSITY_CLASSES if low <= true_digits < high)


def summarise(per_page: pd.DataFrame) -> dict:
    """Corpus figures: overall and table-only P/R/F1, non-table false positives, mean bigram
    correlation per density class, share of measurable pages whose chosen scale is within 20 %
    of the true one, pages skipped, recall by :data:`ROLES`, the false digits read on letters
    (``{"char>digit": count}``, most frequent first; None without a letters file) and, per
    typeface, its table-only P/R/F1, non-table false positives, recall by role and letters."""
    ok = per_page[per_page.error == ""] if "error" in per_page else per_page
    summary: dict = {"pages": int(len(per_page)), "skipped": int(len(per_page) - len(ok))}
    summary["all"] = _scores(ok)
    summary.update(_detection_figures(ok))
    tables = ok[ok.kind == "table"]
    summary["bigram_correlation"] = {
        name: {"pages": int((tables.density == name).sum()),
               "mean": float(tables.loc[tables.density == name, "bigram_correlation"].mean())}
        for _, _, name in DENSITY_CLASSES
    }
    ratios = ok.scale_ratio.dropna() if "scale_ratio" in ok else pd.Series(dtype=float)
    summary["scale_within_20_percent"] = {
        "pages": int(len(ratios)),
        "share": float((ratios.sub(1).abs() <= 0.2).mean()) if len(ratios) else float("nan")}
    if "typeface" in ok:
        summary["by_typeface"] = {typeface: _detection_figures(pages)
                                  for typeface, pages in ok.groupby("typeface")}
    return summary


def _detection_figures(pages: pd.DataFrame) -> dict:
    """Table-only P/R/F1, non-table false positives, recall by role and letters of ``pages``."""
    others = pages[pages.kind != "table"]
    return {"tables": _scores(pages[pages.kind == "table"]),
            "non_table_pages": int(len(others)),
            "non_table_false_positives": int(others.false_positives.sum()),
            "recall_by_role": {
                role: {"true_digits": int(pages[f"{role}_true"].sum()),
                       "recall": float(pages[f"{role}_found"].sum() / pages[f"{role}_true"].sum())
                       if pages[f"{role}_true"].sum() else float("nan")}
                for role in ROLES if f"{role}_true" in pages},
            "letters_read_as_digits": _letter_totals(pages)}


def _scores(pages: pd.DataFrame) -> dict:
    """Precision, recall, F1, true and detected digits summed over ``pages``."""
    counts = MatchCounts(int(pages.true_positives.sum()), int(pages.false_positives.sum()),
                         int(pages.false_negatives.sum()))
    return {"precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
            "true_digits": int(pages.true_digits.sum()), "detected": int(pages.detected.sum())}


def _letter_totals(per_page: pd.DataFrame) -> dict[str, int] | None:
    """The pages' ``letters_read`` added up, most frequent first (None without letters)."""
    if "letters_read" not in per_page or not (per_page.letters_read != "").any():
        return None
    totals: Counter = Counter()
    for read in per_page.letters_read[per_page.letters_read != ""]:
        totals.update(json.loads(read))
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))
