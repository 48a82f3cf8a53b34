"""Similarity features and the blockwise top-k search against brute force."""

import numpy as np
import pytest

from sphaera_tables.features import (
    bigram_profiles,
    common_profile,
    feature_map,
    feature_scales,
    similarity_features,
)
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
    features = bigram_profiles(rng.poisson(2.0, (120, 100)).astype(float))
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


def test_feature_map_is_linear_in_the_counts_and_removes_the_common_profile():
    rng = np.random.default_rng(4)
    phi = rng.poisson(1.5, (10, 100)).astype(float)
    phi[0] = 0
    profiles = bigram_profiles(phi, 8.0)
    np.testing.assert_allclose(profiles, feature_scales(phi, 8.0) * phi)
    np.testing.assert_allclose(np.linalg.norm(profiles, axis=1) ** 2,
                               phi.sum(1) / (phi.sum(1) + 8.0))
    common = common_profile(profiles)
    assert np.linalg.norm(common) == pytest.approx(1.0)
    features = similarity_features(phi, common)
    for row, counts in zip(features, phi, strict=True):
        np.testing.assert_allclose(feature_map(counts, common) @ counts, row)
    np.testing.assert_allclose(features @ common, 0, atol=1e-12)
    assert (np.linalg.norm(features, axis=1) < 1).all()
    # the same table printed twice as often gets nearly the same features
    big = similarity_features(phi[1] * 50, common)
    np.testing.assert_allclose(big, similarity_features(phi[1] * 51, common), atol=1e-3)


def test_tables_of_one_type_with_other_numbers_score_low_once_the_common_profile_is_gone():
    rng = np.random.default_rng(5)
    shared = rng.poisson(6.0, 100).astype(float)        # what every table of the type prints
    tables = np.tile(shared, (6, 1))
    for n, table in enumerate(tables):                  # and what only this table prints
        table[rng.choice(100, 12, replace=False)] += 25 + n
    copy = tables[0] + rng.poisson(0.2, 100)            # an edition of table 0 with misprints
    phi = np.vstack([tables, copy])
    plain = bigram_profiles(phi)
    plain = plain / np.linalg.norm(plain, axis=1, keepdims=True)
    features = similarity_features(phi, common_profile(bigram_profiles(phi)))
    scores, plain_scores = features @ features[-1], plain @ plain[-1]
    assert scores[0] > 0.6 and scores[1:6].max() < 0.1
    assert plain_scores[1:6].min() > 0.7   # without removal every table looks alike


def test_pages_with_few_bigrams_cannot_score_high():
    table = np.zeros(100)
    table[[12, 23, 34]] = 40.0
    sparse_page = np.zeros(100)
    sparse_page[12] = 1.0
    f = similarity_features(np.stack([table, sparse_page]), np.zeros(100))
    assert f[0] @ f[1] < 0.35
    with pytest.raises(ValueError):
        similarity_features(-table, np.zeros(100))
