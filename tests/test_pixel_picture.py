"""The pixel-level picture grades its links: the strongest drawn at full colour, the others by
their share of it (known answers; with many super-pixel pairs, as on a real page pair)."""

import numpy as np
import pytest

import sphaera_tables.pixel_explanation as pixel_explanation
from sphaera_tables.explain import PairExplanation, graded
from sphaera_tables.match_picture import DRAWN_LINKS
from sphaera_tables.pixel_explanation import pixel_picture_of


def test_graded_strengths_are_the_share_of_the_strongest_link_squared():
    relevance = np.array([[2.0, -1.0], [0.0, 0.5]])
    np.testing.assert_allclose(graded(relevance), [[1.0, -0.25], [0.0, 0.0625]])
    np.testing.assert_allclose(graded(relevance, power=1.0), [[1.0, -0.5], [0.0, 0.25]])
    assert not graded(np.zeros((3, 2))).any()
    assert graded(np.zeros((0, 4))).shape == (0, 4)


def test_the_drawn_links_of_a_large_pair_keep_their_gradation(monkeypatch):
    """400 x 400 super-pixels, relevance in 300 pairs from 1 down to 0.1: the 150 strongest
    are drawn, from full colour down to their share of the strongest, squared."""
    rng = np.random.default_rng(0)
    side = 400
    relevance = np.zeros((side, side))
    values = np.linspace(1.0, 0.1, 300)
    relevance.flat[rng.choice(side * side, size=300, replace=False)] = values
    centres = np.column_stack([np.arange(side) % 20 * 5.0, np.arange(side) // 20 * 5.0])
    explanation = PairExplanation(relevance=relevance, y=float(values.sum()), residual=0.0,
                                  centres_a=centres, centres_b=centres)
    drawn = {}

    def capture(image_a, image_b, centres_a, centres_b, strengths, **style):
        drawn["strengths"] = strengths
        return np.zeros((1, 1, 3), np.uint8)

    monkeypatch.setattr(pixel_explanation, "draw_links", capture)
    image = np.full((100, 100), 255, np.uint8)
    pixel_picture_of(explanation, image, image)
    strengths = drawn["strengths"][drawn["strengths"] != 0]
    assert len(strengths) == DRAWN_LINKS
    assert strengths.max() == pytest.approx(1.0)
    assert strengths.min() == pytest.approx(values[DRAWN_LINKS - 1] ** 2)
