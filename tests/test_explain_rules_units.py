"""The LRP rules of sphaera_tables/explain/rules.py on single layers, against their formulas.

Epsilon and zB on biased layers (the bias is an input neuron of its own), zB on a grouped
convolution and on a Linear layer over token sequences, the composite's key precedence, and the
error texts. Every expected value is written out from the rule's formula in float64, with the
zB terms as three separate maps ``x w - low w+ - high w-`` (the code stacks them into one).
"""

import numpy as np
import pytest
import torch
from explain_inputs import F64, linear, rand
from torch import nn

from sphaera_tables.explain import Composite, Epsilon, Gamma, ZBox, lrp_factors

# ---------------------------------------------------------------- epsilon on a biased layer


def test_epsilon_on_a_biased_layer_divides_inputs_and_bias_by_z_plus_eps():
    # z = 0.5 - 0.2 + 0.2 + 0.3 = 0.8: in (0, 1), so sign(z) = +1 matters (not z >= 1)
    w, b = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64), 0.3
    x = torch.tensor([[1.0, 0.2, 0.1]], dtype=F64)
    z, eps = 0.8, 0.25
    factors = lrp_factors(linear(w, [b]), x, Composite({nn.Linear: Epsilon(eps)}))
    np.testing.assert_allclose(factors.phi, [z], rtol=1e-12)
    np.testing.assert_allclose(factors.values, (x * w * z / (z + eps)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.bias, [b * z / (z + eps)], rtol=1e-12)


def test_epsilon_on_a_negative_output_adds_eps_with_its_sign():
    # z = 0.5 - 2 + 0.2 + 0.3 = -1.0 < 0: the stabiliser is -eps
    w, b = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64), 0.3
    x = torch.tensor([[1.0, 2.0, 0.1]], dtype=F64)
    z, eps = -1.0, 0.25
    factors = lrp_factors(linear(w, [b]), x, Composite({nn.Linear: Epsilon(eps)}))
    np.testing.assert_allclose(factors.values, (x * w * z / (z - eps)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.bias, [b * z / (z - eps)], rtol=1e-12)


def test_epsilon_zero_is_allowed_and_is_lrp0_with_the_bias_share_b():
    w, b = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64), 0.3
    x = torch.tensor([[1.0, 0.2, 0.1]], dtype=F64)
    factors = lrp_factors(linear(w, [b]), x, Composite({nn.Linear: Epsilon(0)}))
    np.testing.assert_allclose(factors.values, (x * w).numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.bias, [b], rtol=1e-12)
    with pytest.raises(ValueError, match=r"^eps must be >= 0, got -0.1$"):
        Epsilon(-0.1)


def test_a_unit_whose_output_is_exactly_zero_passes_no_relevance():
    # hidden units: h0 = x0 - x1 = 0 (from non-zero inputs), h1 = x0 + x1 = 2; y = h0 + h1 = 2.
    # LRP: R_h0 = h0 * 1 = 0, so nothing flows through h0 (0 / 0 := 0); R_h1 = 2 splits as
    # x w / h1 = [1, 1]. The plain gradient would also send x * [1, -1] through h0.
    model = nn.Sequential(linear([[1.0, -1.0], [1.0, 1.0]]), linear([[1.0, 1.0]]))
    x = torch.tensor([[1.0, 1.0]], dtype=F64)
    factors = lrp_factors(model, x, Composite({"0": Epsilon(0)}))
    np.testing.assert_allclose(factors.values, [[1.0, 1.0]], rtol=1e-12)


# ---------------------------------------------------------------- zB, written out


def test_zbox_on_a_biased_linear_layer_over_tokens_explains_each_token_on_its_own():
    # (N, T, F) = (1, 4, 3): the zB map runs over the feature axis (the last), token by token
    w = torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.8, 0.4]], dtype=F64)
    b = torch.tensor([0.2, -0.1], dtype=F64)
    x = rand(1, 4, 3, seed=5)
    low, high = -1.0, torch.tensor([1.0, 2.0, 1.5], dtype=F64)
    factors = lrp_factors(linear(w, b), x, Composite({nn.Linear: ZBox(low, high)}))
    expected = np.zeros((4, 2, 4, 3))  # (token, out) x (token, feature)
    expected_bias = np.zeros((4, 2))
    for t in range(4):
        for o in range(2):
            terms = [float(x[0, t, f] * w[o, f] - low * max(w[o, f], 0)
                           - high[f] * min(w[o, f], 0)) for f in range(3)]
            z = float(x[0, t] @ w[o] + b[o])
            z_box = sum(terms) + float(b[o])
            expected[t, o, t] = np.array(terms) * z / z_box
            expected_bias[t, o] = float(b[o]) * z / z_box
    np.testing.assert_allclose(factors.values, expected.reshape(8, 4, 3), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(factors.bias, expected_bias.ravel(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)


def test_zbox_on_a_biased_grouped_convolution_keeps_the_groups_apart():
    # Conv1d 4 -> 4 channels in 2 groups of 2, kernel 2, length 4 -> 3; bounds per channel
    torch.manual_seed(3)
    conv = nn.Conv1d(4, 4, 2, groups=2).double()
    x = rand(1, 4, 4, seed=7)
    low = torch.tensor([-1.0, -0.5, 0.0, -2.0], dtype=F64).reshape(1, 4, 1)
    high = torch.tensor([1.0, 2.0, 1.5, 3.0], dtype=F64).reshape(1, 4, 1)
    factors = lrp_factors(conv, x, Composite({nn.Conv1d: ZBox(low, high)}))
    w, b = conv.weight.detach(), conv.bias.detach()
    expected = np.zeros((4, 3, 4, 4))  # (out channel, position) x (in channel, position)
    expected_bias = np.zeros((4, 3))
    for o in range(4):
        group = o // 2  # output channels 0, 1 read input channels 0, 1; 2, 3 read 2, 3
        for t in range(3):
            terms = np.zeros((4, 4))
            for i in range(2):
                c = 2 * group + i
                for k in range(2):
                    v = float(w[o, i, k])
                    terms[c, t + k] = (float(x[0, c, t + k]) * v - float(low[0, c, 0]) * max(v, 0)
                                       - float(high[0, c, 0]) * min(v, 0))
            z = sum(float(x[0, 2 * group + i, t + k] * w[o, i, k])
                    for i in range(2) for k in range(2)) + float(b[o])
            z_box = terms.sum() + float(b[o])
            expected[o, t] = terms * z / z_box
            expected_bias[o, t] = float(b[o]) * z / z_box
    np.testing.assert_allclose(factors.phi, conv(x).detach().numpy().ravel(), rtol=1e-12)
    np.testing.assert_allclose(factors.values, expected.reshape(12, 4, 4), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(factors.bias, expected_bias.ravel(), rtol=1e-10, atol=1e-14)


def test_zbox_away_from_the_input_names_the_layer_and_the_remedy():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match=r"^ZBox rule on layer '2': this layer does not read the "
                                         r"model input directly; use Gamma or Epsilon here$"):
        lrp_factors(model, rand(1, 3), Composite({"2": ZBox(0.0, 1.0)}))


# ---------------------------------------------------------------- the composite


def test_a_name_key_wins_over_a_type_key_placed_before_it():
    layer, gamma, eps, box = nn.Linear(2, 2), Gamma(0.5), Epsilon(0.1), ZBox(0.0, 1.0)
    composite = Composite({nn.Linear: gamma, "head": eps, "in*": box})
    assert composite.rule_for("head", layer) is eps
    assert composite.rule_for("input", layer) is box
    assert composite.rule_for("body", layer) is gamma
    assert composite.rule_for("head", nn.ReLU()) is eps  # an exact name needs no type match
    assert composite.rule_for("input", nn.ReLU()) is None


def test_a_composite_key_that_is_neither_a_name_nor_a_type_is_refused():
    with pytest.raises(TypeError, match=r"^composite keys are layer names or types, got 3$"):
        Composite({3: Gamma(0.0)})
