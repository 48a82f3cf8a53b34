"""BiLRP of one pair from pooled factors (sphaera_tables.explain.pair_relevance) on hand-made
factors, with answers worked out by hand: the pair matrix, the bias row and column, the cosine
scaling, the residual and its warnings, and the saliency and curvature baselines against their
definitions summed pixel by pixel. No model: fast."""

import itertools
import types
import warnings

import numpy as np
import pytest

from sphaera_tables.explain import BiasRelevanceWarning, ConservationWarning
from sphaera_tables.explain.pair_relevance import (
    bilrp_from_factors,
    curvature_matrix,
    saliency_matrix,
    unit_scaled,
)
from sphaera_tables.explain.pooling import PooledFactors

CENTRES_A = np.array([[0.0, 1.0], [2.0, 3.0]])
CENTRES_B = np.array([[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])


def _a(bias=None):
    # h = 2 dimensions over 2 groups; group sums s_a = (3, 4)
    values = np.array([[1.0, 2.0], [0.0, 4.0]])
    bias = None if bias is None else np.asarray(bias, dtype=float)
    phi = values.sum(axis=1) + (0 if bias is None else bias)
    return PooledFactors(values=values, phi=phi, centres=CENTRES_A, bias=bias)


def _b(bias=None):
    # 3 groups; s_b = (2, 3)
    values = np.array([[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    bias = None if bias is None else np.asarray(bias, dtype=float)
    phi = values.sum(axis=1) + (0 if bias is None else bias)
    return PooledFactors(values=values, phi=phi, centres=CENTRES_B, bias=bias)


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return bilrp_from_factors(*args, **kwargs)


def test_the_pair_matrix_joins_each_group_of_a_with_each_group_of_b():
    explanation = _quiet(_a(), _b())
    # relevance[I, I'] = sum_m a[m, I] b[m, I']
    np.testing.assert_array_equal(explanation.relevance, [[1 * 1 + 0 * 2, 1 * 0 + 0 * 1, 1 * 1],
                                                          [2 * 1 + 4 * 2, 2 * 0 + 4 * 1, 2 * 1]])
    assert explanation.y == 3 * 2 + 4 * 3 == explanation.relevance.sum()
    assert explanation.bias_relevance == 0.0 and explanation.residual == 0.0
    assert explanation.centres_a is CENTRES_A and explanation.centres_b is CENTRES_B


def test_the_bias_row_and_column_take_what_the_biases_absorbed():
    # phi_a = s_a + r_a = (3.5, 5), phi_b = s_b + r_b = (3, 2): y = 10.5 + 10 = 20.5;
    # bias relevance r_a.s_b + s_a.r_b + r_a.r_b = (1 + 3) + (3 - 4) + (0.5 - 1) = 2.5
    with pytest.warns(BiasRelevanceWarning, match="biases absorb 12.2 % of the score 20.5"):
        explanation = bilrp_from_factors(_a(bias=[0.5, 1.0]), _b(bias=[1.0, -1.0]))
    assert explanation.y == pytest.approx(20.5)
    assert explanation.bias_relevance == pytest.approx(2.5)
    assert explanation.relevance.sum() == pytest.approx(18.0)
    assert explanation.residual == pytest.approx(0.0, abs=1e-15)
    # a bias on one side only: s_a.r_b = 3 - 4 = -1, phi_b = (3, 2): y = 9 + 8 = 17
    with pytest.warns(BiasRelevanceWarning):
        one_side = bilrp_from_factors(_a(), _b(bias=[1.0, -1.0]))
    assert one_side.bias_relevance == pytest.approx(-1.0) and one_side.y == pytest.approx(17.0)
    # r_a.s_b = 1 + 3 = 4, phi_a = (3.5, 5), phi_b = (2, 3): y = 7 + 15 = 22
    with pytest.warns(BiasRelevanceWarning):
        other_side = bilrp_from_factors(_a(bias=[0.5, 1.0]), _b())
    assert other_side.bias_relevance == pytest.approx(4.0) and other_side.y == pytest.approx(22.0)


def test_the_residual_is_the_share_of_the_score_the_factors_miss_and_warns_naming_constants():
    a, b = _a(), _b()
    leaky_a = PooledFactors(values=a.values, phi=a.phi + np.array([1.0, 0.0]), centres=CENTRES_A,
                            constant_adds=("body.shift",))
    leaky_b = PooledFactors(values=b.values, phi=b.phi, centres=CENTRES_B,
                            constant_adds=("head.offset",))
    # y = 4 * 2 + 4 * 3 = 20, the relevance sums to 18: 10 % missing
    with pytest.warns(ConservationWarning, match="misses 10 % of the score 20. Constants are "
                                                 "added to input-dependent values in body.shift, "
                                                 "head.offset;"):
        explanation = bilrp_from_factors(leaky_a, leaky_b)
    assert explanation.residual == pytest.approx(0.1)
    # y = 0 (orthogonal embeddings) while the relevance sums to 1 * 0 + 1 * 0.5: the absolute
    # error
    zero_a = PooledFactors(values=np.array([[1.0], [1.0]]), phi=np.array([1.0, 0.0]),
                           centres=CENTRES_A[:1])
    zero_b = PooledFactors(values=np.array([[0.0], [0.5]]), phi=np.array([0.0, 2.0]),
                           centres=CENTRES_B[:1])
    with pytest.warns(ConservationWarning, match="misses 50 % of the score 0.$"):
        orthogonal = bilrp_from_factors(zero_a, zero_b)
    assert orthogonal.y == 0.0 and orthogonal.residual == pytest.approx(0.5)
    assert orthogonal.relevance.tolist() == [[0.5]]


def test_cosine_divides_each_side_by_the_norm_of_its_embedding():
    a, b = _a(bias=[0.5, 1.0]), _b(bias=[1.0, -1.0])
    norm_a, norm_b = np.hypot(3.5, 5.0), np.hypot(3.0, 2.0)
    with pytest.warns(BiasRelevanceWarning):
        dot = bilrp_from_factors(a, b)
        cosine = bilrp_from_factors(a, b, similarity="cosine")
    assert cosine.y == pytest.approx(20.5 / (norm_a * norm_b), rel=1e-14)
    np.testing.assert_allclose(cosine.relevance, dot.relevance / (norm_a * norm_b), rtol=1e-14)
    assert cosine.bias_relevance == pytest.approx(2.5 / (norm_a * norm_b), rel=1e-14)
    assert cosine.residual == pytest.approx(0.0, abs=1e-14)
    scaled = unit_scaled(a)
    np.testing.assert_allclose(scaled.phi, [3.5 / norm_a, 5.0 / norm_a], rtol=1e-15)
    np.testing.assert_allclose(scaled.bias, [0.5 / norm_a, 1.0 / norm_a], rtol=1e-15)
    np.testing.assert_allclose(scaled.values, a.values / norm_a, rtol=1e-15)
    assert scaled.centres is CENTRES_A and unit_scaled(_b()).bias is None
    with pytest.raises(ValueError, match="^the embedding is zero: its cosine similarity is "
                                         "undefined$"):
        unit_scaled(PooledFactors(values=np.zeros((2, 1)), phi=np.zeros(2), centres=CENTRES_A))


def test_factors_of_other_sizes_or_an_unknown_similarity_are_refused():
    short = PooledFactors(values=np.ones((3, 2)), phi=np.full(3, 2.0), centres=CENTRES_A)
    with pytest.raises(ValueError, match="^factors have different embedding sizes: 2 and 3$"):
        bilrp_from_factors(_a(), short)
    with pytest.raises(ValueError, match="^factors have different embedding sizes: 3 and 2$"):
        bilrp_from_factors(short, _a())  # sizes, not group counts (short has 2 groups)
    with pytest.raises(ValueError, match=r"^unknown similarity 'euclid'; choose one of "
                                         r"\('dot', 'cosine'\)$"):
        bilrp_from_factors(_a(), _b(), similarity="euclid")


def _pooled(full, labels):
    """Sum a pixel-by-pixel (n, n') matrix over the groups of two flat label vectors."""
    groups_a, groups_b = labels[0].max() + 1, labels[1].max() + 1
    pooled = np.zeros((groups_a, groups_b))
    for i, j in itertools.product(range(full.shape[0]), range(full.shape[1])):
        pooled[labels[0][i], labels[1][j]] += full[i, j]
    return pooled


def test_saliency_is_the_product_of_squared_inputs_summed_over_channels_and_groups():
    x_a = np.arange(1.0, 9.0).reshape(2, 2, 2)        # 2 channels of 2 x 2 pixels
    x_b = np.array([[1.0, -2.0, 3.0]])                 # 1 channel of 1 x 3 pixels
    labels_a = np.array([[0, 0], [2, 2]])              # group 1 empty
    labels_b = np.array([[1, 0, 1]])
    full = np.array([[sum(x_a[c].ravel()[i] ** 2 for c in range(2)) * x_b[0, j] ** 2
                      for j in range(3)] for i in range(4)])
    expected = _pooled(full, (labels_a.ravel(), labels_b.ravel()))
    saliency = saliency_matrix(x_a, x_b, labels_a, labels_b)
    assert saliency.shape == (3, 2)
    np.testing.assert_allclose(saliency, expected, rtol=1e-15)
    np.testing.assert_array_equal(saliency[1], 0)


def test_curvature_is_the_squared_mixed_derivative_summed_over_groups():
    rng = np.random.default_rng(7)
    h = 3
    g_a = rng.normal(size=(h, 2, 2, 2))                # gradients: h x channels x 2 x 2
    g_b = rng.normal(size=(h, 1, 1, 3))
    labels_a = np.array([[0, 2], [2, 0]])              # group 1 empty
    labels_b = np.array([[0, 1, 1]])
    # d^2 y / dx_i dx'_j = sum_m g_a[m, i] g_b[m, j] for each channel pair; squared, summed
    flat_a, flat_b = g_a.reshape(h, 2, 4), g_b.reshape(h, 1, 3)
    full = np.zeros((4, 3))
    for i, j in itertools.product(range(4), range(3)):
        for c, d in itertools.product(range(2), range(1)):
            full[i, j] += sum(flat_a[m, c, i] * flat_b[m, d, j] for m in range(h)) ** 2
    expected = _pooled(full, (labels_a.ravel(), labels_b.ravel()))
    curvature = curvature_matrix(types.SimpleNamespace(values=g_a),
                                 types.SimpleNamespace(values=g_b), labels_a, labels_b)
    assert curvature.shape == (3, 2)
    np.testing.assert_allclose(curvature, expected, rtol=1e-12)
    np.testing.assert_allclose(curvature[1], 0, atol=1e-15)
