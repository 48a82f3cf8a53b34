"""A perfect digit detector: the truth's own digits read by the same networks.

``tables evaluate matches`` scores every model twice: on the detector's digits and on the
truth's. A page of the synthetic truth becomes a :class:`~sphaera_tables.page_analysis.PageAnalysis`
as a detector that finds every digit with score 1 would make it: its digits grouped into numbers
in its upright frame, its bigram counts (two consecutive digits of one number) and their
relevance on the numbers (each bigram instance belongs wholly to its number). The same feature
maps, explanations and collation then run on it, so the perfect-digit figures show what each
model itself can reach on a corpus, whatever the detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from digit_detector.geometry import class_height_ratios, image_digit_height
from sphaera_tables.bigram import N_BIGRAMS
from sphaera_tables.numbers import ReadingFrame, number_chains
from sphaera_tables.page_analysis import PageAnalysis


def read_truth_digits(truth: Path | str) -> pd.DataFrame:
    """``truth/digits.csv`` of a synthetic corpus; ``cell_key`` is "" for digits in no table."""
    return pd.read_csv(Path(truth) / "digits.csv", dtype={"page_id": str, "cell_key": str},
                       keep_default_na=False)


def perfect_analyses(truth: Path | str, page_ids: list[str], config) -> dict[str, PageAnalysis]:
    """:func:`perfect_analysis` of every page in ``page_ids`` (detector ``config``)."""
    truth = Path(truth)
    pages = pd.read_csv(truth / "pages.csv", dtype={"page_id": str}).set_index("page_id")
    digits = read_truth_digits(truth)
    ratios = class_height_ratios(digits)
    by_page = dict(tuple(digits.groupby("page_id")))
    return {page_id: perfect_analysis(by_page.get(page_id, digits.iloc[:0]),
                                      pages.loc[page_id], ratios, config)
            for page_id in page_ids}


def perfect_analysis(truth_digits: pd.DataFrame, page, ratios: np.ndarray,
                     config) -> PageAnalysis:
    """The analysis a perfect detector would give one page (module docstring)."""
    digits, frame = truth_reading(truth_digits, page, ratios, config)
    following, number = number_chains(digits, frame)
    first = np.flatnonzero(following >= 0)
    values = digits.digit.to_numpy(np.int64)
    bigram = 10 * values[first] + values[following[first]]
    groups = int(number.max()) + 2 if len(number) else 1
    factors = np.zeros((N_BIGRAMS, groups))
    np.add.at(factors, (bigram, number[first]), 1.0)
    return PageAnalysis(phi=factors.sum(axis=1), factors=factors,
                        digits=digits.assign(number=number), page_shape=frame.page_shape,
                        scale=frame.scale, rotation=frame.rotation, pitch=frame.pitch,
                        height=frame.height)


def truth_reading(truth_digits: pd.DataFrame, page: pd.Series | tuple, ratios: np.ndarray,
                  config) -> tuple[pd.DataFrame, ReadingFrame]:
    """A page's true digits as a perfect detector would report them, and its reading frame.

    ``truth_digits``: the page's rows of ``truth/digits.csv``; ``page``: its row of
    ``truth/pages.csv`` (height, width, rotation); ``ratios``: the corpus's digit height per
    class (:func:`~digit_detector.geometry.class_height_ratios`); ``config``: the detector's
    :class:`~digit_detector.model.DetectorConfig` (working pitch and height). Returns digits
    with columns x, y, digit, score (1), x0, y0, x1, y1 (page px) and the frame at the page's
    true working scale, upright as the truth says.
    """
    rotation = int(page.rotation)
    upright = truth_digits.rename(columns={"x0": "y0", "y0": "x0", "x1": "y1", "y1": "x1"}) \
        if rotation else truth_digits
    scale = config.digit_height_px / image_digit_height(upright, ratios) if len(truth_digits) \
        else 1.0
    digits = pd.DataFrame({
        "x": (truth_digits.x0 + truth_digits.x1 - 1) / 2,
        "y": (truth_digits.y0 + truth_digits.y1 - 1) / 2,
        "digit": truth_digits.digit.astype(np.int64), "score": 1.0,
        "x0": truth_digits.x0, "y0": truth_digits.y0, "x1": truth_digits.x1,
        "y1": truth_digits.y1,
    }).reset_index(drop=True)
    frame = ReadingFrame((int(page.height), int(page.width)), float(scale), -rotation,
                         config.digit_pitch_px, config.digit_height_px)
    return digits, frame
