"""Guardrails: every case of issue 22's list gives an exact explanation or a clear error/warning.

Biases, GELU, residual blocks, transformer layers, L2-normalised embeddings, tuple outputs,
BatchNorm, dropout, products of input-dependent tensors and functional constant adds.
"""

import warnings

import numpy as np
import pytest
import torch
from explain_inputs import F64, rand
from torch import nn

from sphaera_tables.explain import (
    BiasRelevanceWarning,
    Composite,
    ConservationWarning,
    Gamma,
    UnsupportedModelError,
    bilrp,
    lrp_factors,
)


def mlp(bias, activation=nn.ReLU, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8, bias=bias), activation(), nn.Linear(8, 5, bias=bias),
                         nn.ReLU()).double()


def quiet_bilrp(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return bilrp(*args, **kwargs)


# ---------------------------------------------------------------- biases: exact, reported


def test_linear_bias_relevance_is_the_lrp0_share_of_the_bias_neuron():
    layer = nn.Linear(3, 2).double()
    x = rand(1, 3)
    factors = lrp_factors(layer, x)
    phi = layer(x).detach()[0]
    np.testing.assert_allclose(factors.values, (x * layer.weight.detach()).numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.bias, layer.bias.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)
    np.testing.assert_allclose(factors.phi, phi.numpy(), rtol=1e-12)


def test_gamma_rule_gives_the_bias_its_rho_share():
    layer = nn.Linear(3, 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]], dtype=F64))
        layer.bias.copy_(torch.tensor([0.3], dtype=F64))
        x = torch.tensor([[1.0, 0.2, 0.5]], dtype=F64)
        z = float(layer(x))
    rho_w = layer.weight.detach() + 0.5 * layer.weight.detach().clamp(min=0)
    rho_b = 0.3 * 1.5
    z_rho = float(x @ rho_w.T) + rho_b
    factors = lrp_factors(layer, x, Composite({nn.Linear: Gamma(0.5)}))
    np.testing.assert_allclose(factors.values, (x * rho_w * z / z_rho).numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.bias, [rho_b * z / z_rho], rtol=1e-12)


def test_biased_mlp_pair_adds_up_exactly_and_warns_about_the_bias_share():
    model = mlp(bias=True)
    x_a, x_b = rand(1, 6, seed=1), rand(1, 6, seed=2)
    with pytest.warns(BiasRelevanceWarning, match="biases absorb"):
        explanation = bilrp(model, x_a, x_b, composite=Composite({nn.Linear: Gamma(0.1)}))
    assert explanation.residual < 1e-12
    assert abs(explanation.bias_relevance) > 0.01 * abs(explanation.y)
    total = explanation.relevance.sum() + explanation.bias_relevance
    assert total == pytest.approx(explanation.y, rel=1e-12)


def test_bias_free_model_gives_no_warning_and_no_bias_relevance():
    model = mlp(bias=False)
    explanation = quiet_bilrp(model, rand(1, 6, seed=1), rand(1, 6, seed=2),
                              composite=Composite({nn.Linear: Gamma(0.25)}))
    assert explanation.bias_relevance == 0 and explanation.residual < 1e-12


def test_batch_strategy_keeps_the_bias_relevance_of_each_dimension_apart():
    model, x = mlp(bias=True), rand(1, 6, seed=3)
    composite = Composite({nn.Linear: Gamma(0.3)})
    reference = lrp_factors(model, x, composite, strategy="loop")
    for strategy in ("vmap", "batch"):
        factors = lrp_factors(model, x, composite, strategy=strategy)
        np.testing.assert_allclose(factors.bias, reference.bias, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(factors.values, reference.values, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- clear errors


@pytest.mark.parametrize("activation, name", [(nn.GELU, "GELU"), (nn.SiLU, "SiLU"),
                                              (nn.Tanh, "tanh")])
def test_smooth_activations_are_refused_naming_the_module(activation, name):
    with pytest.raises(UnsupportedModelError, match=rf"'1' \({activation.__name__}\).*{name}"):
        lrp_factors(mlp(bias=False, activation=activation), rand(1, 6))


def test_transformer_encoder_layer_is_refused_naming_a_module():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                       batch_first=True).double().eval()
    with pytest.raises(UnsupportedModelError,
                       match=r"module 'self_attn' \(MultiheadAttention\): attention"):
        lrp_factors(layer, rand(1, 3, 8))


def test_layer_norm_is_refused_with_its_remedy():
    model = nn.Sequential(nn.Linear(6, 4, bias=False), nn.LayerNorm(4)).double()
    with pytest.raises(UnsupportedModelError, match=r"'1' \(LayerNorm\): LayerNorm"):
        lrp_factors(model, rand(1, 6))


class Normalised(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return nn.functional.normalize(self.body(x), dim=1)


def test_l2_normalised_embedding_is_refused_pointing_to_cosine():
    with pytest.raises(UnsupportedModelError, match="similarity='cosine'"):
        lrp_factors(Normalised(mlp(bias=False)), rand(1, 6))


class TwoOutputs(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        phi = self.body(x)
        return phi, {"pooled": phi.sum(dim=1, keepdim=True)}


def test_tuple_output_needs_a_selector_and_then_explains_the_selected_tensor():
    body = mlp(bias=False)
    model, x = TwoOutputs(body), rand(1, 6)
    with pytest.raises(UnsupportedModelError, match=r"returns a tuple of 2 items.*select="):
        lrp_factors(model, x)
    with pytest.raises(UnsupportedModelError, match="select=5"):
        lrp_factors(model, x, select=5)
    selected = lrp_factors(model, x, select=0)
    np.testing.assert_allclose(selected.values, lrp_factors(body, x).values, rtol=1e-12)
    pooled = lrp_factors(model, x, select=lambda output: output[1]["pooled"])
    np.testing.assert_allclose(pooled.values[0], selected.values.sum(axis=0), rtol=1e-12)


def test_unfolded_batch_norm_and_active_dropout_are_refused():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU()).double().eval()
    with pytest.raises(UnsupportedModelError, match=r"'1' \(BatchNorm1d\): BatchNorm must be "
                                                    "folded"):
        lrp_factors(model, rand(1, 6))
    dropout = nn.Sequential(nn.Linear(6, 4, bias=False), nn.Dropout(0.5)).double().train()
    with pytest.raises(UnsupportedModelError, match=r"'1' \(Dropout\) in training mode.*eval"):
        lrp_factors(dropout, rand(1, 6))
    with pytest.raises(UnsupportedModelError, match="training mode"):
        bilrp(dropout, rand(1, 6), rand(1, 6, seed=1))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.value = nn.Linear(6, 4, bias=False)
        self.gate = nn.Linear(6, 4, bias=False)

    def forward(self, x):
        return self.value(x) * torch.relu(self.gate(x))


def test_a_product_of_two_input_dependent_tensors_is_refused():
    with pytest.raises(UnsupportedModelError, match=r"module Gated: a product of two input"):
        lrp_factors(Gated().double(), rand(1, 6))


def test_output_detached_from_the_input_is_refused():
    class Detached(nn.Module):
        def forward(self, x):
            return x.detach() * 2

    with pytest.raises(UnsupportedModelError, match="does not depend on its input"):
        lrp_factors(Detached(), rand(1, 6))


# ---------------------------------------------------------------- warnings for leaks


class ShiftedBody(nn.Module):
    """Constants added to input-dependent values outside any layer bias."""

    def __init__(self, offset):
        super().__init__()
        self.body = mlp(bias=False)
        self.offset = offset

    def forward(self, x):
        return self.body(x) + self.offset


def test_a_constant_tensor_added_in_the_forward_is_counted_as_a_bias():
    offset = torch.tensor([[0.5, -0.2, 0.1, 0.3, 0.0]], dtype=F64)
    model, x = ShiftedBody(offset), rand(1, 6, seed=1)
    factors = lrp_factors(model, x)
    np.testing.assert_allclose(factors.bias, offset[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-12)
    with pytest.warns(BiasRelevanceWarning):
        explanation = bilrp(model, x, rand(1, 6, seed=2))
    assert explanation.residual < 1e-12


def test_a_python_number_added_in_the_forward_leaks_and_the_warning_names_the_module():
    with pytest.warns(ConservationWarning, match="misses .* Constants are added .* ShiftedBody"):
        explanation = bilrp(ShiftedBody(0.5), rand(1, 6, seed=1), rand(1, 6, seed=2))
    assert explanation.residual > 0.01


def test_residual_blocks_conserve_without_warning():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(6, 6, bias=False)

        def forward(self, x):
            return torch.relu(x + torch.relu(self.inner(x)))

    torch.manual_seed(1)
    model = nn.Sequential(Block(), nn.Linear(6, 3, bias=False), nn.ReLU()).double()
    explanation = quiet_bilrp(model, rand(1, 6, seed=4), rand(1, 6, seed=5),
                              composite=Composite({nn.Linear: Gamma(0.5)}))
    assert explanation.residual < 1e-12
