"""The batched factors of sphaera_tables/explain/factors.py against answers written out by hand.

Tiny float64 models whose LRP factors follow from the rules' formulas: an affine map (gradient x
input is ``W[m] * x``, the bias share ``b[m]``; the gradient is ``W[m]``), a zB layer followed by
an epsilon layer (the formulas layer by layer in numpy), a model with two heads of which
``select`` picks one, and one that adds a Python number outside any layer. Each is run with
every batching strategy and with a chunk of one dimension and of all. ``seeded_relevance`` is
checked against the same formulas, linear in the seeds; ``Factors.residual`` on numbers made up
by hand.
"""

import numpy as np
import pytest
import torch
from explain_inputs import F64, linear
from torch import nn

from sphaera_tables.explain import Composite, Epsilon, ZBox, gradient_factors, lrp_factors
from sphaera_tables.explain.factors import Factors, relevance_chunks, seeded_relevance
from sphaera_tables.explain.guardrails import UnsupportedModelError

STRATEGIES = ("auto", "vmap", "batch", "loop")
BUDGETS = (1, 10**9)  # one dimension per chunk; every dimension in one chunk

# phi = W x + b = [-0.25, 0, 1, 2.5], all exact in binary: dimension 1 is exactly 0 although
# W[1] * x is not (its map must stay zero), dimension 2 is exactly 1
W = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -2.0], [0.25, 0.5, 1.0], [-1.0, 0.5, 4.0]])
B = np.array([0.25, -2.0, -0.75, 0.5])
X = np.array([[1.0, 2.0, 0.5]])
PHI = np.array([-0.25, 0.0, 1.0, 2.5])
NONZERO = np.array([True, False, True, True])


def tensor(values):
    return torch.tensor(values, dtype=F64)


# ---------------------------------------------------------------- an affine map


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_affine_map_gives_weight_times_input_and_the_bias_every_strategy(strategy, budget):
    factors = lrp_factors(linear(W, B), tensor(X), strategy=strategy,
                          memory_budget_bytes=budget)
    np.testing.assert_array_equal(factors.phi, PHI)
    assert factors.values.dtype == np.float64 and factors.bias.dtype == np.float64
    assert factors.values.shape == (4, 3)
    # gradient x input: R_mi = W_mi x_i; the bias absorbs b_m; nothing where phi_m == 0
    np.testing.assert_allclose(factors.values, (W * X) * NONZERO[:, None], rtol=1e-15)
    np.testing.assert_allclose(factors.bias, B * NONZERO, rtol=1e-15)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-15)
    assert factors.constant_adds == ()


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gradient_factors_of_an_affine_map_are_its_weight_rows(strategy, budget):
    factors = gradient_factors(linear(W, B), tensor(X), strategy=strategy,
                               memory_budget_bytes=budget)
    np.testing.assert_array_equal(factors.phi, PHI)
    assert factors.values.dtype == np.float64
    np.testing.assert_allclose(factors.values, W * NONZERO[:, None], rtol=1e-15)
    assert factors.bias is None
    # only the dimensions asked for; phi zero elsewhere
    subset = gradient_factors(linear(W, B), tensor(X), outputs=[2], strategy=strategy)
    np.testing.assert_array_equal(subset.phi, [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(subset.values, W * np.array([0, 0, 1, 0])[:, None], rtol=1e-15)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_outputs_explain_the_chosen_dimensions_and_zero_phi_elsewhere(strategy):
    model, x = linear(W, B), tensor(X)
    # duplicates and any order; the others are zero in values, bias and phi
    factors = lrp_factors(model, x, outputs=[3, 0, 3], strategy=strategy)
    chosen = np.array([1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(factors.phi, PHI * chosen)
    np.testing.assert_allclose(factors.values, W * X * chosen[:, None], rtol=1e-15)
    np.testing.assert_allclose(factors.bias, B * chosen, rtol=1e-15)
    np.testing.assert_allclose(factors.residual(), 0, atol=1e-15)
    # a dimension with phi == 0 asked for alone: nothing to explain
    dead = lrp_factors(model, x, outputs=[np.int64(1)], strategy=strategy)
    assert not dead.values.any() and not dead.bias.any() and not dead.phi.any()
    # both ends of the range are valid, one past either end is not
    for m in (0, 3):
        edge = lrp_factors(model, x, outputs=[m], strategy=strategy)
        np.testing.assert_allclose(edge.values[m], W[m] * X[0], rtol=1e-15)
        np.testing.assert_array_equal(edge.phi, PHI * (np.arange(4) == m))
    for m in (4, -1):
        with pytest.raises(ValueError, match=f"output index {m} out of range for an embedding "
                                             "of size 4"):
            lrp_factors(model, x, outputs=[m], strategy=strategy)


def test_bad_arguments_name_the_valid_choices():
    model, x = linear(W, B), tensor(X)
    with pytest.raises(ValueError, match=r"^unknown strategy 'fast'; choose one of auto, vmap, "
                                         r"batch, loop$"):
        lrp_factors(model, x, strategy="fast")
    with pytest.raises(ValueError, match=r"^x must hold one input \(batch size 1\), got shape "
                                         r"\(2, 3\)$"):
        gradient_factors(model, torch.cat([x, x]))


# ---------------------------------------------------------------- zB, ReLU, epsilon, biases

W1 = np.array([[1.0, -0.5, 0.5], [-1.0, 2.0, 0.25], [0.5, 0.5, 2.0]])
B1 = np.array([0.25, -0.5, 0.125])
W2 = np.array([[1.0, 0.5, -0.25], [0.75, -1.0, 1.0]])
B2 = np.array([0.5, -0.25])
X2 = np.array([[0.5, 0.25, 1.0]])
LOW, HIGH, EPS = -1.0, 2.0, 0.25


def two_layers():
    """Linear (zB, bias) -> ReLU -> Linear (epsilon, bias); hidden unit 1 is off (z = -0.25)."""
    model = nn.Sequential(linear(W1, B1), nn.ReLU(), linear(W2, B2))
    return model, Composite({"0": ZBox(LOW, HIGH), "2": Epsilon(EPS)})


def two_layer_reference(x):
    """LRP of each output of :func:`two_layers` on ``x`` (3,): (values (2, 3), bias (2,), phi).

    Epsilon: R_k = a_k W2_mk / (z_m + eps sign z_m) * z_m, bias share b2_m / (...) * z_m; the
    ReLU passes R_k on; zB: R_i = sum_k t_ik / (sum_i t_ik + b1_k) R_k with
    t_ik = x_i W1_ki - low W1+_ki - high W1-_ki, bias share b1_k / (sum_i t_ik + b1_k) R_k.
    """
    z1 = W1 @ x + B1
    a = np.maximum(z1, 0)
    z2 = W2 @ a + B2
    values, bias = np.zeros((2, 3)), np.zeros(2)
    for m in range(2):
        stabilised = z2[m] + EPS * np.sign(z2[m])
        hidden = a * W2[m] / stabilised * z2[m]
        bias[m] = B2[m] / stabilised * z2[m]
        for k in range(3):
            if z1[k] <= 0:
                continue  # the ReLU is off: no relevance flows back through unit k
            terms = [x[i] * W1[k, i] - LOW * max(W1[k, i], 0) - HIGH * min(W1[k, i], 0)
                     for i in range(3)]
            z_box = sum(terms) + B1[k]
            values[m] += np.array(terms) / z_box * hidden[k]
            bias[m] += B1[k] / z_box * hidden[k]
    return values, bias, z2


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_zbox_relu_epsilon_with_biases_against_the_formulas(strategy, budget):
    model, composite = two_layers()
    values, bias, phi = two_layer_reference(X2[0])
    assert np.all(phi != 0) and (W1 @ X2[0] + B1)[1] < 0
    factors = lrp_factors(model, tensor(X2), composite, strategy=strategy,
                          memory_budget_bytes=budget)
    np.testing.assert_allclose(factors.phi, phi, rtol=1e-14)
    np.testing.assert_allclose(factors.values, values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(factors.bias, bias, rtol=1e-12, atol=1e-15)
    # epsilon keeps eps / (z + eps sign z) of each output: not conservative, and by that much
    np.testing.assert_allclose(factors.residual(), EPS / (np.abs(phi) + EPS) * np.abs(phi),
                               rtol=1e-12)


# ---------------------------------------------------------------- select, unused leaves


class TwoHeads(nn.Module):
    """An embedding head and an auxiliary head with a bias of its own, returned as a dict."""

    def __init__(self):
        super().__init__()
        self.embedding = linear(W[2:], B[2:])  # phi = [1, 2.5]
        self.aux = linear(W[:3], [0.5, 0.25, -1.0])

    def forward(self, x):
        return {"embedding": self.embedding(x), "aux": self.aux(x)}


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_select_picks_the_head_and_the_other_heads_bias_takes_nothing(strategy, budget):
    # the auxiliary head's bias is a leaf of the forward that the embedding does not reach
    model, x = TwoHeads(), tensor(X)
    factors = lrp_factors(model, x, select="embedding", strategy=strategy,
                          memory_budget_bytes=budget)
    np.testing.assert_array_equal(factors.phi, PHI[2:])
    np.testing.assert_allclose(factors.values, W[2:] * X, rtol=1e-15)
    np.testing.assert_allclose(factors.bias, B[2:], rtol=1e-15)
    gradients = gradient_factors(model, x, select="embedding", strategy=strategy,
                                 memory_budget_bytes=budget)
    np.testing.assert_allclose(gradients.values, W[2:], rtol=1e-15)
    with pytest.raises(UnsupportedModelError, match="returns a dict of 2 items"):
        lrp_factors(model, x, strategy=strategy)


class Offset(nn.Module):
    """``W x + 1.0``: a Python number added outside any layer (it cannot become a bias leaf)."""

    def __init__(self):
        super().__init__()
        self.linear = linear(W[2:])

    def forward(self, x):
        return self.linear(x) + 1.0


def test_a_constant_added_outside_a_layer_is_named_and_its_share_missing():
    factors = lrp_factors(Offset(), tensor(X))
    assert factors.constant_adds == ("Offset",)
    np.testing.assert_array_equal(factors.phi, (W[2:] @ X[0]) + 1.0)
    np.testing.assert_allclose(factors.values, W[2:] * X, rtol=1e-15)
    np.testing.assert_allclose(factors.residual(), [1.0, 1.0], rtol=1e-15)


# ---------------------------------------------------------------- seeded_relevance


def test_seeded_relevance_of_an_affine_map_is_input_times_weighted_rows():
    # two inputs, each with its own seed; float32 seeds are taken in the model's dtype
    x = tensor([[1.0, 2.0, 0.5], [-0.5, 0.25, 2.0]])
    seeds = torch.tensor([[1.0, 0.0, 0.5, -2.0], [0.0, 0.25, 0.0, 1.0]], dtype=torch.float32)
    relevance, bias = seeded_relevance(linear(W, B), x, seeds)
    s = seeds.double().numpy()
    assert relevance.dtype == F64 and relevance.shape == (2, 3)
    np.testing.assert_allclose(relevance.detach().numpy(), x.numpy() * (s @ W), rtol=1e-15)
    np.testing.assert_allclose(bias.detach().numpy(), s @ B, rtol=1e-15)


def test_seeded_relevance_with_rules_is_the_seed_weighted_sum_of_the_factors():
    model, composite = two_layers()
    x = tensor([list(X2[0]), [1.0, 0.5, 0.25]])
    references = [two_layer_reference(row) for row in x.numpy()]
    seeds = tensor([[1.0, 0.0], [0.5, -2.0]])
    relevance, bias = seeded_relevance(model, x, seeds, composite)
    for b, (values, absorbed, _) in enumerate(references):
        s = seeds[b].numpy()
        np.testing.assert_allclose(relevance[b].detach().numpy(), s @ values, rtol=1e-12,
                                   atol=1e-15)
        np.testing.assert_allclose(float(bias[b].detach()), s @ absorbed, rtol=1e-12)


def test_seeded_relevance_selects_the_head_and_ignores_the_unused_bias():
    x = tensor([[1.0, 2.0, 0.5], [-0.5, 0.25, 2.0]])
    seeds = tensor([[1.0, -0.5], [0.25, 2.0]])
    relevance, bias = seeded_relevance(TwoHeads(), x, seeds, select="embedding")
    s = seeds.numpy()
    np.testing.assert_allclose(relevance.detach().numpy(), x.numpy() * (s @ W[2:]), rtol=1e-15)
    np.testing.assert_allclose(bias.detach().numpy(), s @ B[2:], rtol=1e-15)


# ---------------------------------------------------------------- chunks and the residual


def test_batch_strategy_frees_the_first_forwards_graph_and_vmap_keeps_it():
    # "batch" runs one forward per chunk: the first forward's graph (saved activations,
    # reference and bias leaves) is not kept while the chunks run
    model, composite = two_layers()
    _, chunks = relevance_chunks(model, tensor(X2), composite, strategy="batch")
    forward = chunks.forward
    assert forward.output.grad_fn is None and not forward.leaf.requires_grad
    assert forward.references == [] and forward.biases == []
    _, chunks = relevance_chunks(model, tensor(X2), composite, strategy="vmap")
    assert chunks.forward.output.grad_fn is not None
    assert len(chunks.forward.references) == 2 and len(chunks.forward.biases) == 2


def test_residual_is_the_per_dimension_gap_between_relevance_plus_bias_and_phi():
    values = np.array([[[1.0, 2.0]], [[3.0, 4.0]]])  # (h, 1, 2): sums 3 and 7
    phi = np.array([3.5, 6.0])
    with_bias = Factors(values=values, phi=phi, bias=np.array([0.25, -1.0]))
    np.testing.assert_array_equal(with_bias.residual(), [0.25, 0.0])
    without = Factors(values=values, phi=phi)
    np.testing.assert_array_equal(without.residual(), [0.5, 1.0])
    # sums -3 and -7, plus the bias -3 and -5, against phi -3.5 and -6
    negative = Factors(values=-values, phi=-phi, bias=np.array([0.0, 2.0]))
    np.testing.assert_array_equal(negative.residual(), [0.5, 1.0])
