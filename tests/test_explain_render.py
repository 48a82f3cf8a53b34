"""Rendering of explanations (supplement Algorithm 1) and the invariance measure (Eq. 7)."""

import numpy as np
import pytest
from PIL import Image

from sphaera_tables.explain import (
    PairExplanation,
    invariance,
    link_strengths,
    render_box_links,
    render_pair,
    save_png,
)


def test_link_strengths_follow_algorithm_1():
    relevance = np.array([[2.0, -1.0], [0.001, 0.0]])
    scale = np.mean(relevance**4) ** 0.25
    strengths = link_strengths(relevance, low=0.1, high=1.1, power=2)
    expected_00 = min((2.0 / scale - 0.1) / 1.0, 1.0) ** 2
    expected_01 = -(((1.0 / scale) - 0.1) / 1.0) ** 2
    np.testing.assert_allclose(strengths, [[expected_00, expected_01], [0.0, 0.0]])
    assert np.all(link_strengths(np.zeros((3, 3))) == 0)
    with pytest.raises(ValueError, match="low < high"):
        link_strengths(relevance, low=2, high=1)


def coloured_pixels(picture):
    r, g, b = (picture[..., i].astype(int) for i in range(3))
    return int(np.sum((r > g + 60) & (r > b + 60))), int(np.sum((b > r + 60) & (b > g + 30)))


def explanation(relevance, centres_a, centres_b):
    return PairExplanation(relevance=np.asarray(relevance, dtype=float), y=1.0, residual=0.0,
                           centres_a=np.asarray(centres_a, float),
                           centres_b=np.asarray(centres_b, float))


def test_render_pair_draws_red_and_blue_links_between_centres():
    page_a = np.full((60, 80), 200, dtype=np.uint8)
    page_b = np.full((40, 50), 0.8)
    positive = explanation([[5.0, 0.0], [0.0, 0.0]], [[10, 10], [50, 70]], [[5, 5], [30, 40]])
    picture = render_pair(page_a, page_b, positive, high=1.2, gap=10)
    assert picture.shape == (60, 80 + 10 + 50, 3) and picture.dtype == np.uint8
    red, blue = coloured_pixels(picture)
    assert red > 20 and blue == 0
    # the link starts at the centre of group 0 of image A (row 10, column 10)
    assert picture[10, 10, 0] > picture[10, 10, 2] + 60

    negative = explanation([[0.0, 0.0], [0.0, -5.0]], [[10, 10], [50, 70]], [[5, 5], [30, 40]])
    red, blue = coloured_pixels(render_pair(page_a, page_b, negative, high=1.2))
    assert blue > 20 and red == 0

    blank = explanation(np.zeros((2, 2)), [[10, 10], [50, 70]], [[5, 5], [30, 40]])
    assert coloured_pixels(render_pair(page_a, page_b, blank)) == (0, 0)


def test_render_box_links_and_png_round_trip(tmp_path):
    page = np.random.default_rng(0).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    boxes_a = [(5, 5, 10, 12), (30, 20, 8, 10)]
    boxes_b = [(40, 30, 10, 10)]
    picture = render_box_links(page, page, boxes_a, boxes_b, [[3.0], [-1.0]], low=0.01, high=1.5)
    assert picture.shape == (50, 140, 3)
    path = tmp_path / "pair.png"
    save_png(path, picture)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), picture)
    with pytest.raises(ValueError, match="expected \\(2, 1\\)"):
        render_box_links(page, page, boxes_a, boxes_b, [[1.0, 2.0]])


def test_invariance_is_local_mean_over_global_mean():
    similarity = np.array([[9.0, 4.0, 1.0, 1.0],
                           [4.0, 9.0, 1.0, 1.0],
                           [1.0, 1.0, 9.0, 2.0],
                           [1.0, 1.0, 2.0, 9.0]])
    groups = np.array([0, 0, 1, 1])
    local = groups[:, None] == groups[None, :]
    # local off-diagonal pairs: 4, 4, 2, 2 -> mean 3;
    # all off-diagonal pairs: (4 + 1 + 1) * 2 + (1 + 1 + 2) * 2 = 20 over 12 pairs
    assert invariance(similarity, local) == pytest.approx(3.0 / (20.0 / 12.0))
    with pytest.raises(ValueError, match="no local pairs"):
        invariance(similarity, np.eye(4, dtype=bool))
    with pytest.raises(ValueError, match="square"):
        invariance(np.ones((2, 3)), np.ones((2, 3), dtype=bool))
