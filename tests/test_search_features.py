"""Similarity features and the blockwise top-k search against brute force."""

import numpy as np
import pytest

from sphaera_tables.features import feature_scales, similarity_features
from sphaera_tables.search import top_k_matches


def brute_force(features, k, min_score):
    scores = features @ features.T
    np.fill_diagonal(scores, -np.inf)
    rows = []
    for a in range(len(features)):
        order = np.argsort(-scores[a], kind="stable")[:k]
        for rank, b in enumerate(order, start=1):
            if scores[a, b] >= min_score:
                rows.append((a, b, scores[a, b], rank))
    return rows


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
def test_blockwise_search_equals_brute_force(block_rows):
    rng = np.random.default_rng(3)
    features = similarity_features(rng.poisson(2.0, (120, 100)).astype(float))
    found = top_k_matches(features, k=5, min_score=0.3, block_rows=block_rows)
    expected = brute_force(features.astype(np.float32), 5, 0.3)
    assert len(found) == len(expected)
    for row, (a, b, score, rank) in zip(found.itertuples(), expected, strict=True):
        assert (row.a, row.b, row.rank) == (a, b, rank)
        assert row.score == pytest.approx(score, abs=1e-5)


def test_search_never_matches_a_page_with_itself_and_handles_tiny_corpora():
    assert top_k_matches(np.ones((1, 4)), k=3).empty
    found = top_k_matches(np.eye(3), k=5)
    assert (found.a != found.b).all()
    assert found.groupby("a").size().max() == 2
    with pytest.raises(ValueError):
        top_k_matches(np.eye(3), k=0)


def test_features_are_scaled_counts_with_bounded_norm():
    rng = np.random.default_rng(4)
    phi = rng.poisson(1.5, (10, 100)).astype(float)
    phi[0] = 0
    features = similarity_features(phi, mass_floor=8.0)
    np.testing.assert_allclose(features, feature_scales(phi, 8.0) * phi)
    np.testing.assert_allclose(
        np.linalg.norm(features, axis=1) ** 2, phi.sum(1) / (phi.sum(1) + 8.0)
    )
    # the same table printed twice as often gets the same features up to the mass floor
    big = similarity_features(phi[1] * 50, mass_floor=1e-9)
    small = similarity_features(phi[1], mass_floor=1e-9)
    np.testing.assert_allclose(big, small, rtol=1e-6)


def test_pages_with_few_bigrams_cannot_score_high():
    table = np.zeros(100)
    table[[12, 23, 34]] = 40.0
    sparse_page = np.zeros(100)
    sparse_page[12] = 1.0
    f = similarity_features(np.stack([table, sparse_page]))
    assert f[0] @ f[1] < 0.35
    with pytest.raises(ValueError):
        similarity_features(-table)
