"""The picture of a candidate match: pages upright, rows and variants boxed where they are printed."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sphaera_tables.explain import PairExplanation
from sphaera_tables.match_picture import (
    GAP,
    ROW_COLOURS,
    VARIANT_COLOUR,
    draw_match,
    render_match,
)

PAGE_SHAPE = (240, 160)
"""Full-resolution page (H, W) px; the images drawn are half that size."""
BLOCK = [100.0, 20.0, 140.0, 40.0]
"""A printed row's box [x0, y0, x1, y1] in page px: near the top right of the page."""


def page(rotation):
    """A half-size page image with ink only in ``BLOCK``, as scanned (turned by ``-rotation``:
    the detector turns it by ``rotation`` to read it), and its analysis (boxes in page px)."""
    upright = np.full((PAGE_SHAPE[0] // 2, PAGE_SHAPE[1] // 2), 255, np.uint8)
    x0, y0, x1, y1 = (round(v / 2) for v in BLOCK)
    upright[y0:y1, x0:x1] = 0
    scanned = np.ascontiguousarray(np.rot90(upright, k=-rotation // 90))
    ys, xs = np.nonzero(scanned == 0)
    numbers = pd.DataFrame({"x0": [2.0 * xs.min()], "y0": [2.0 * ys.min()],
                            "x1": [2.0 * xs.max() + 2], "y1": [2.0 * ys.max() + 2]})
    analysis = SimpleNamespace(rotation=rotation, page_shape=tuple(2 * s for s in scanned.shape),
                               numbers=numbers)
    return scanned, analysis


def record(numbers_a, numbers_b, variants=True):
    box_a = numbers_a.iloc[0].tolist()
    box_b = numbers_b.iloc[0].tolist()
    return {"page_a": "A" * 300, "page_b": "book/page 2.jpg", "model": "numbers", "score": 0.5,
            "similarity": 0.55, "cells_agree": 20, "cells_differ": 1, "residual": 1e-16,
            "rows": [{"row_a": 0, "row_b": 0, "label_a": "1", "label_b": "1", "cells": 3,
                      "relevance": 0.4, "box_a": box_a, "box_b": box_b}],
            "variants": [{"box_a": box_a, "box_b": box_b}] if variants else []}


def colour_columns(picture, colour):
    mask = np.all(picture == np.array(colour, np.uint8), axis=2)
    return np.nonzero(mask)


@pytest.mark.parametrize("rotation", [0, 90, -90, 180])
def test_pages_are_drawn_upright_with_each_row_boxed_around_its_ink(rotation):
    image_a, analysis_a = page(rotation)
    image_b, analysis_b = page(0)
    explanation = PairExplanation(relevance=np.zeros((2, 2)), y=0.0, residual=0.0,
                                  centres_a=np.zeros((2, 2)), centres_b=np.zeros((2, 2)))
    picture, offset_b = draw_match(image_a, image_b, explanation, analysis_a, analysis_b,
                                   record(analysis_a.numbers, analysis_b.numbers, variants=False))
    middle = offset_b - GAP // 2
    grey = picture.max(axis=2).astype(int) - picture.min(axis=2) < 8
    ink_rows, ink_columns = np.nonzero(grey & (picture.max(axis=2) < 180))  # faded ink
    row_rows, row_columns = colour_columns(picture, ROW_COLOURS[0])
    for ink, boxed in ((ink_columns < middle, row_columns < middle),
                       (ink_columns >= middle, row_columns >= middle)):
        ys, xs = ink_rows[ink], ink_columns[ink]
        assert len(ys) > 0 and boxed.any()
        assert row_rows[boxed].min() < ys.min() and row_rows[boxed].max() > ys.max()
        assert row_columns[boxed].min() < xs.min() and row_columns[boxed].max() > xs.max()
    # both pages upright: the ink sits at the same height on both sides
    left, right = ink_columns < middle, ink_columns >= middle
    assert abs(np.median(ink_rows[left]) - np.median(ink_rows[right])) <= 1


def test_variants_are_boxed_on_both_pages():
    image_a, analysis_a = page(0)
    image_b, analysis_b = page(0)
    explanation = PairExplanation(relevance=np.zeros((2, 2)), y=0.0, residual=0.0,
                                  centres_a=np.zeros((2, 2)), centres_b=np.zeros((2, 2)))
    picture, offset_b = draw_match(image_a, image_b, explanation, analysis_a, analysis_b,
                                   record(analysis_a.numbers, analysis_b.numbers))
    _, columns = colour_columns(picture, VARIANT_COLOUR)
    middle = offset_b - GAP // 2
    assert (columns < middle).any() and (columns >= middle).any()


def test_a_supporting_pair_of_numbers_is_joined_in_red_and_no_relevance_draws_no_link():
    image_a, analysis_a = page(0)
    image_b, analysis_b = page(0)
    bare = {**record(analysis_a.numbers, analysis_b.numbers), "rows": [], "variants": []}

    def reds(relevance):
        explanation = PairExplanation(relevance=relevance, y=float(relevance.sum()),
                                      residual=0.0, centres_a=np.zeros((2, 2)),
                                      centres_b=np.zeros((2, 2)))
        picture, _ = draw_match(image_a, image_b, explanation, analysis_a, analysis_b, bare)
        return int((picture[..., 0].astype(int) - picture[..., 2] > 5).sum())

    assert reds(np.array([[1.0, 0.0], [0.0, 0.0]])) > 10
    assert reds(np.zeros((2, 2))) == 0


def test_title_and_legend_frame_the_pages_and_a_long_name_does_not_widen_the_picture():
    image_a, analysis_a = page(0)
    image_b, analysis_b = page(0)
    explanation = PairExplanation(relevance=np.zeros((2, 2)), y=0.0, residual=0.0,
                                  centres_a=np.zeros((2, 2)), centres_b=np.zeros((2, 2)))
    picture = render_match(image_a, image_b, explanation, analysis_a, analysis_b,
                           record(analysis_a.numbers, analysis_b.numbers))
    assert picture.shape[0] > image_a.shape[0] + 60  # a title above, a legend below
    assert picture.shape[1] < 1000  # the 300-character page id is shortened, not drawn whole
    title = picture[:20, : picture.shape[1] // 2]
    assert (title.max(axis=2) < 100).any()  # text is drawn there
