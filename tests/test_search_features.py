"""Similarity features and the blockwise top-k search against brute force."""

import numpy as np
import pytest
from scipy import sparse

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
    # the documented formula, written out: f = sqrt(phi) / sqrt(sum(phi) + mass_floor)
    total = phi.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(profiles, np.sqrt(phi) / np.sqrt(total + 8.0))
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


@pytest.mark.parametrize("block_rows", [7, 1024])
@pytest.mark.parametrize("quantile", [None, 0.5, 0.9, 0.99])
def test_sparse_search_equals_dense_search_with_common_and_rare_columns(block_rows, quantile):
    """Common columns (on every page, like the bigram part) are scored densely and the rare
    ones sparsely, pages too far to reach ``min_score`` skipped: together they must list what
    the dense scores list."""
    rng = np.random.default_rng(3)
    common = rng.random((400, 8)) * rng.random((400, 1)) ** 2  # very different norms
    rare = sparse.random(400, 3000, density=0.003, random_state=4, format="csr") * 3
    features = sparse.hstack([common, rare], format="csr")
    scores = (features @ features.T).toarray()[~np.eye(400, dtype=bool)]
    min_score = 0.0 if quantile is None else float(np.quantile(scores, quantile))
    found = top_k_matches(features, k=4, min_score=min_score, block_rows=block_rows)
    expected = top_k_matches(features.toarray(), k=4, min_score=min_score,
                             block_rows=block_rows)
    assert len(found) > 0
    assert found[["a", "b", "rank"]].equals(expected[["a", "b", "rank"]])
    np.testing.assert_allclose(found.score, expected.score, rtol=1e-5)


@pytest.mark.parametrize("block_rows", [5, 1024])
@pytest.mark.parametrize("quantile", [0.5, 0.95, 0.995])
def test_sparse_search_with_a_profile_equals_dense_search(block_rows, quantile):
    """The ``numbers`` model's layout: a profile every page has at a similar length (first
    columns), common columns of very different lengths and rare columns. Bounding the profile
    apart skips more pages; the matches must stay those of the dense scores."""
    rng = np.random.default_rng(11)
    pages = 300
    profile = rng.random((pages, 6)) * (0.8 + 0.2 * rng.random((pages, 1)))
    common = rng.random((pages, 10)) * rng.random((pages, 1)) ** 3
    rare = sparse.random(pages, 2000, density=0.004, random_state=12, format="csr") * 2
    features = sparse.hstack([profile, common, rare], format="csr")
    scores = (features @ features.T).toarray()[~np.eye(pages, dtype=bool)]
    min_score = float(np.quantile(scores, quantile))
    found = top_k_matches(features, k=3, min_score=min_score, block_rows=block_rows,
                          profile_columns=6)
    expected = brute_force(features.toarray().astype(np.float32), 3, min_score)
    assert len(found) == len(expected) > 0
    for row, (a, b, score, rank) in zip(found.itertuples(), expected, strict=True):
        assert (row.a, row.b, row.rank) == (a, b, rank)
        assert row.score == pytest.approx(score, rel=1e-5)


def test_pages_without_common_cells_still_match_on_their_profile():
    """Two pages with no common cell whose profiles alone reach the minimum score: the bound
    on the common part is 0 for them, and the search must still reach every page from them."""
    rng = np.random.default_rng(13)
    pages = 60
    profile = rng.random((pages, 6)) * 0.1
    profile[:2] = 1 / np.sqrt(6)
    common = rng.random((pages, 10))
    common[:2] = 0.0
    features = sparse.csr_matrix(np.hstack([profile, common]))
    found = top_k_matches(features, k=1, min_score=0.9, profile_columns=6)
    expected = brute_force(features.toarray().astype(np.float32), 1, 0.9)
    assert [(row.a, row.b) for row in found.itertuples()] == [(a, b) for a, b, _, _ in expected]
    assert {(0, 1), (1, 0)} <= {(a, b) for a, b, _, _ in expected}


@pytest.mark.parametrize("as_sparse", [False, True])
def test_equal_scores_rank_the_lower_page_first(as_sparse):
    """Pages printed twice score alike against a third: the lower page index ranks first, in
    the dense and the sparse search alike, whatever the block."""
    base = np.array([[1.0, 0.0, 0.5], [0.9, 0.1, 0.4], [0.2, 1.0, 0.0]])
    features = base[[0, 1, 1, 2, 1, 0, 2]]
    features = sparse.csr_matrix(features) if as_sparse else features
    for block_rows in (1, 3, 1024):
        found = top_k_matches(features, k=3, min_score=0.0, block_rows=block_rows)
        assert found.loc[found.a == 0, "b"].tolist() == [5, 1, 2]
        assert found.loc[found.a == 1, "b"].tolist() == [0, 5, 2]
        assert found.loc[found.a == 3, "b"].tolist() == [6, 1, 2]


@pytest.mark.parametrize("as_sparse", [False, True])
def test_a_tie_exactly_at_the_minimum_score_still_ranks_the_lower_page_first(as_sparse):
    """Every pair scores exactly ``min_score``: each page's one match is the lowest other page."""
    features = np.tile([[0.5, 0.5, 0.0]], (6, 1))  # scores 0.5, exact in float32
    features = sparse.csr_matrix(features) if as_sparse else features
    for block_rows in (1, 4, 1024):
        found = top_k_matches(features, k=1, min_score=0.5, block_rows=block_rows)
        assert found.b.tolist() == [1, 0, 0, 0, 0, 0]


@pytest.mark.parametrize(("mass_floor", "norm_floor"), [(2.0, 0.1), (20.0, 0.01)])
def test_features_follow_the_three_documented_steps(mass_floor, norm_floor):
    """f = sqrt(phi) / sqrt(sum(phi) + mass_floor); g = f - (u.f) u;
    h = g |f| / sqrt(|g|^2 + norm_floor |f|^2), written out here step by step."""
    rng = np.random.default_rng(6)
    phi = rng.poisson(1.0, (5, 100)).astype(float)
    common = common_profile(bigram_profiles(rng.poisson(3.0, (20, 100)), mass_floor))
    features = similarity_features(phi, common, mass_floor, norm_floor)
    profiles = bigram_profiles(phi, mass_floor)
    for counts, h, profile in zip(phi, features, profiles, strict=True):
        f = np.sqrt(counts) / np.sqrt(counts.sum() + mass_floor)
        np.testing.assert_allclose(profile, f, rtol=1e-12)
        g = f - (common @ f) * common
        expected = g * np.linalg.norm(f) / np.sqrt(g @ g + norm_floor * (f @ f))
        np.testing.assert_allclose(h, expected, rtol=1e-10, atol=1e-15)


def test_no_pages_empty_pages_and_the_limits_of_the_settings():
    np.testing.assert_array_equal(common_profile(np.zeros((0, 100))), np.zeros(100))
    assert similarity_features(np.zeros((0, 100)), np.zeros(100)).shape == (0, 100)
    np.testing.assert_array_equal(common_profile(np.zeros((3, 100))), np.zeros(100))
    mean = np.arange(100.0)
    np.testing.assert_allclose(common_profile(np.stack([mean, mean])),
                               mean / np.linalg.norm(mean))
    with pytest.raises(ValueError, match="norm_floor must be positive, got 0"):
        feature_map(np.ones(100), np.zeros(100), norm_floor=0)
    with pytest.raises(ValueError, match="mass_floor must be positive, got 0"):
        feature_scales(np.ones(100), mass_floor=0)
    with pytest.raises(ValueError, match="bigram counts must be non-negative"):
        feature_scales(-np.ones(100))
    np.testing.assert_allclose(feature_scales(np.ones(100), mass_floor=0.5), 1 / np.sqrt(100.5))
    # s_m = 1 / sqrt(phi_m (sum(phi) + mass_floor)), and 0 where phi_m == 0; counts are soft
    phi = np.zeros(100)
    phi[[3, 7]] = [0.5, 2.5]
    expected = np.zeros(100)
    expected[[3, 7]] = 1 / np.sqrt(np.array([0.5, 2.5]) * (3.0 + 8.0))
    np.testing.assert_allclose(feature_scales(phi, mass_floor=8.0), expected, rtol=1e-12)


@pytest.mark.parametrize("block_rows", [1, 1024])
def test_sparse_search_keeps_a_match_that_reaches_the_minimum_score_exactly(block_rows):
    """Pages whose dense parts point the same way score |D_a| |D_b|, the bound a search may
    use to skip pages: a pair at that bound, just above min_score, must still be found."""
    lengths = np.array([1.0, 0.5, 0.3, 0.2, 0.1, 0.05])
    direction = np.ones(3) / np.sqrt(3)
    features = sparse.csr_matrix(lengths[:, None] * direction)
    min_score = lengths[0] * lengths[1] - 1e-6
    found = top_k_matches(features, k=2, min_score=min_score, block_rows=block_rows)
    assert sorted(zip(found.a, found.b, strict=True)) == [(0, 1), (1, 0)]
    np.testing.assert_allclose(found.score, lengths[0] * lengths[1], rtol=1e-6)


def test_one_best_match_per_page_and_five_by_default():
    rng = np.random.default_rng(5)
    features = rng.random((9, 6))
    scores = features @ features.T
    np.fill_diagonal(scores, -np.inf)
    best = top_k_matches(features, k=1)
    assert best.a.tolist() == list(range(9)) and best["rank"].eq(1).all()
    np.testing.assert_array_equal(best.b, scores.argmax(axis=1))
    assert top_k_matches(features).groupby("a").size().eq(5).all()
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        top_k_matches(features, k=0)


@pytest.mark.parametrize("block_rows", [16, 1024])
def test_sparse_search_scores_rare_columns_shared_by_a_few_pages(block_rows):
    """Columns set on two or three of 200 pages (rare: scored by the sparse product) decide
    the matches here; the search must give the brute-force result of the dense matrix."""
    rng = np.random.default_rng(8)
    pages, columns = 200, 400
    rows, cols = [], []
    for column in range(columns):
        owners = rng.choice(pages, size=rng.integers(2, 4), replace=False)
        rows += owners.tolist()
        cols += [column] * len(owners)
    features = sparse.csr_matrix((rng.random(len(rows)) + 0.5, (rows, cols)),
                                 shape=(pages, columns))
    found = top_k_matches(features, k=3, min_score=0.01, block_rows=block_rows)
    expected = brute_force(features.toarray().astype(np.float32), 3, 0.01)
    assert len(found) == len(expected) > pages
    for row, (a, b, score, rank) in zip(found.itertuples(), expected, strict=True):
        assert (row.a, row.b, row.rank) == (a, b, rank)
        assert row.score == pytest.approx(score, rel=1e-5)


def test_progress_reports_the_rows_done_and_an_empty_result_keeps_its_types():
    done = []
    top_k_matches(np.eye(10), k=2, block_rows=4,
                  progress=lambda rows, total, message: done.append((rows, total, message)))
    assert done == [(rows, 10, "Searching") for rows in (0, 4, 8, 10)]
    empty = top_k_matches(np.ones((1, 4)), k=3)
    assert empty.empty
    assert empty.dtypes.to_dict() == {"a": np.int64, "b": np.int64, "score": np.float64,
                                      "rank": np.int64}
