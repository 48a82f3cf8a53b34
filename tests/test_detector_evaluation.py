"""Detection scores and bigram histograms against ground truth, with known answers."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from digit_detector import evaluation
from digit_detector.evaluation import (
    MatchCounts,
    density_class,
    detected_bigrams,
    histogram_correlation,
    letters_read_as_digits,
    match_digits,
    page_bigrams,
    scale_ratio,
    summarise,
    true_bigrams,
)
from digit_detector.geometry import class_height_ratios, image_digit_height
from digit_detector.model import DetectorConfig, DigitDetector
from digit_detector.prepare import PreparedPage

TRUTH = pd.DataFrame({
    "x0": [0, 10, 50, 60], "y0": [0, 0, 0, 0], "x1": [8, 18, 58, 68], "y1": [12, 12, 12, 12],
    "digit": [1, 2, 3, 4], "number_id": [0, 0, 1, 1], "position": [0, 1, 0, 1],
})


def detections(rows):
    return pd.DataFrame(rows, columns=["x", "y", "digit", "score"])


def test_match_digits_counts_class_distance_and_duplicates():
    found = detections([
        (4.0, 6.0, 1, 0.9),    # correct
        (14.5, 10.5, 2, 0.8),  # correct: 4.6 px from the centre (14, 6) < 6
        (14.0, 6.0, 2, 0.5),   # duplicate of the same true digit
        (54.0, 6.0, 8, 0.9),   # wrong class
        (64.0, 13.0, 4, 0.9),  # 7 px away: too far
    ])
    counts = match_digits(found, TRUTH)
    assert counts == MatchCounts(2, 3, 2)
    assert counts.precision == pytest.approx(0.4) and counts.recall == pytest.approx(0.5)
    assert counts.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert match_digits(detections([]), TRUTH) == MatchCounts(0, 0, 4)


def test_bigram_histograms():
    expected = np.zeros(100, dtype=int)
    expected[12] = expected[34] = 1
    np.testing.assert_array_equal(true_bigrams(TRUTH), expected)
    found = detections([(4, 6, 1, 1), (14, 6, 2, 1), (54, 6, 3, 1), (64, 7, 4, 1),
                        (24, 30, 5, 1), (90, 6, 9, 1)])  # 5 on another line, 9 too far right
    np.testing.assert_array_equal(detected_bigrams(found, pitch=10, height=12), expected)
    assert histogram_correlation(expected, expected) == pytest.approx(1.0)
    assert np.isnan(histogram_correlation(np.zeros(100), expected))


def test_true_digits_pair_up_into_the_true_histogram_on_every_synthetic_table(synthetic_corpus):
    """Perfect detections score correlation 1: the pairing holds old-style figures (eb-garamond)
    and a table printed sideways, read upright at the page's true working scale."""
    pages = pd.read_csv(synthetic_corpus / "truth" / "pages.csv")
    digits = pd.read_csv(synthetic_corpus / "truth" / "digits.csv")
    ratios = class_height_ratios(digits)
    config = DetectorConfig(digit_pitch_px=6.5)  # the shipped weights' pitch
    tables = pages[pages.kind == "table"]
    assert (tables.rotation != 0).any()
    for page in tables.itertuples():
        truth = digits[digits.page_id == page.page_id]
        upright = truth.rename(columns={"x0": "y0", "y0": "x0", "x1": "y1", "y1": "x1"}) \
            if page.rotation else truth
        scale = config.digit_height_px / image_digit_height(upright, ratios)
        prepared = PreparedPage(torch.zeros(1, 1, 1, 1), scale, -page.rotation,
                                (page.height, page.width))
        centres = pd.DataFrame({"x": (truth.x0 + truth.x1 - 1) / 2,
                                "y": (truth.y0 + truth.y1 - 1) / 2, "digit": truth.digit})
        np.testing.assert_array_equal(page_bigrams(centres, prepared, config),
                                      true_bigrams(truth), err_msg=page.page_id)


def test_summary_and_density():
    assert density_class(10) == "sparse" and density_class(200) == "dense"
    assert density_class(1000) == "very dense"
    per_page = pd.DataFrame({
        "page_id": ["a", "b", "c"], "kind": ["table", "table", "prose"],
        "true_digits": [200, 100, 0], "detected": [190, 100, 3], "true_positives": [180, 100, 0],
        "false_positives": [10, 0, 3], "false_negatives": [20, 0, 0],
        "bigram_correlation": [0.9, 0.7, np.nan], "density": ["dense", "sparse", ""],
        "scale_ratio": [1.1, 0.5, np.nan], "error": ["", "", ""],
    })
    summary = summarise(per_page)
    assert summary["tables"]["precision"] == pytest.approx(280 / 290)
    assert summary["tables"]["recall"] == pytest.approx(280 / 300)
    assert summary["non_table_false_positives"] == 3
    assert summary["bigram_correlation"]["dense"] == {"pages": 1, "mean": 0.9}
    assert summary["scale_within_20_percent"] == {"pages": 2, "share": 0.5}


def test_scale_ratio_against_true_digit_heights():
    truth = pd.DataFrame({"y0": np.zeros(30), "y1": np.r_[np.full(20, 20.0), np.full(10, 30.0)],
                          "digit": np.r_[np.zeros(20, int), np.full(10, 7)]})
    same = np.ones(10)
    # median true height 20 px; a working height of 9 px needs scale 0.45
    assert scale_ratio(0.45, truth, 9.0, same) == pytest.approx(1.0)
    assert scale_ratio(0.9, truth, 9.0, same) == pytest.approx(2.0)
    assert np.isnan(scale_ratio(0.45, truth.head(19), 9.0, same))
    # 7s are 1.5 times as tall as 0s in this type: corrected, every digit is 20 px
    tall_sevens = same.copy()
    tall_sevens[7] = 1.5
    mostly_sevens = truth.assign(y1=np.r_[np.full(10, 20.0), np.full(20, 30.0)],
                                 digit=np.r_[np.zeros(10, int), np.full(20, 7)])
    assert scale_ratio(0.45, mostly_sevens, 9.0, same) == pytest.approx(1.5)
    assert scale_ratio(0.45, mostly_sevens, 9.0, tall_sevens) == pytest.approx(1.0)


def test_letters_read_as_digits_names_the_letter_under_each_detection():
    letters = pd.DataFrame({"x0": [0, 10, 20, 40], "y0": [0, 0, 0, 0], "x1": [10, 20, 30, 50],
                            "y1": [12, 12, 12, 12], "char": ["o", "l", "&", "2"]})
    found = detections([(5, 6, 0, 1), (6, 2, 0, 1), (14, 6, 1, 1), (25, 11, 8, 1),
                        (35, 6, 3, 1),     # between letters: not on one
                        (45, 6, 2, 1)])    # a digit set as a word is not a letter
    assert letters_read_as_digits(found, letters) == {"o>0": 2, "l>1": 1, "&>8": 1}
    overlapping = pd.DataFrame({"x0": [0, 6], "y0": [0, 0], "x1": [10, 16], "y1": [12, 12],
                                "char": ["r", "n"]})
    assert letters_read_as_digits(detections([(9, 6, 1, 1)]), overlapping) == {"n>1": 1}


def test_evaluate_corpus_counts_recall_by_place_and_false_digits_on_letters(
        synthetic_corpus, monkeypatch):
    """Known answers: a stand-in detector finds every cell digit and no folio, reads each
    title page's year, and puts a 0 on the first two 'o's of every page: recall 1, 0 and 1 by
    place, and every false digit named 'o' read as 0."""
    pages = pd.read_csv(synthetic_corpus / "truth" / "pages.csv")
    digits = pd.read_csv(synthetic_corpus / "truth" / "digits.csv", dtype={"cell_key": str},
                         keep_default_na=False)
    letters = pd.read_csv(synthetic_corpus / "truth" / "letters.csv.gz", keep_default_na=False)
    kinds = dict(zip(pages.page_id, pages.kind, strict=True))

    def stand_in(path, detector, threshold):
        page_id = Path(path).name
        truth = digits[(digits.page_id == page_id)
                       & ((digits.cell_key != "") | (kinds[page_id] == "title"))]
        o = letters[(letters.page_id == page_id) & (letters.char == "o")].head(2)
        rows = [((t.x0 + t.x1) / 2, (t.y0 + t.y1) / 2, t.digit, 1.0) for t in truth.itertuples()]
        rows += [((t.x0 + t.x1) / 2, (t.y0 + t.y1) / 2, 0, 0.5) for t in o.itertuples()]
        prepared = PreparedPage(torch.zeros(1, 1, 1, 1), 1.0, 0, (10, 10))
        return SimpleNamespace(digits=detections(rows), prepared=prepared)

    monkeypatch.setattr(evaluation, "detect", stand_in)
    summary = summarise(evaluation.evaluate_corpus(synthetic_corpus, DigitDetector()))
    roles = summary["recall_by_role"]
    assert roles["cells"]["true_digits"] == int((digits.cell_key != "").sum()) > 0
    assert roles["cells"]["recall"] == 1.0 and roles["titles"]["recall"] == 1.0
    assert roles["folios"]["true_digits"] > 0 and roles["folios"]["recall"] == 0.0
    assert sum(part["true_digits"] for part in roles.values()) == len(digits)
    with_o = letters[letters.char == "o"].groupby("page_id").size().clip(upper=2)
    assert summary["letters_read_as_digits"] == {"o>0": int(with_o.sum())}
    faces = summary["by_typeface"]
    assert set(faces) == set(pages.typeface) and len(faces) > 1
    per_face_o = with_o.groupby(pages.set_index("page_id").typeface).sum()
    for typeface, figures in faces.items():
        face_digits = digits[digits.page_id.isin(pages.page_id[pages.typeface == typeface])]
        assert sum(part["true_digits"] for part in figures["recall_by_role"].values()) \
            == len(face_digits)
        assert figures["letters_read_as_digits"] == ({"o>0": int(per_face_o[typeface])}
                                                     if typeface in per_face_o else None)
    assert sum(f["tables"]["true_digits"] for f in faces.values()) \
        == summary["tables"]["true_digits"]
