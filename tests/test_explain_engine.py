"""The explanation engine: rules, batching strategies, pooling, multi-use modules, ties."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sphaera_tables.explain import (
    Composite,
    Epsilon,
    Gamma,
    ZBox,
    bilrp,
    box_labels,
    grid_labels,
    lrp_factors,
    pool,
    pooled_lrp_factors,
)
from sphaera_tables.explain.factors import relevance_chunks

F64 = torch.float64


def conv_stack(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5 * 4 * 5, 12, bias=False), nn.ReLU(),
    ).double()
    for layer in (model[0], model[2], model[6]):
        layer.weight.data += 0.05
    model[6].weight.data[:3] = -model[6].weight.data[:3].abs()  # three dead outputs
    return model


def image(seed, shape=(1, 1, 8, 10)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


COMPOSITE = Composite({"0": ZBox(0.0, 1.0), nn.Conv2d: Gamma(0.25), nn.Linear: Epsilon(1e-3)})


def test_single_linear_layer_rules_give_the_textbook_formulas():
    weight = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64)
    a = torch.tensor([[1.0, 2.0, 0.5]], dtype=F64)
    layer = nn.Linear(3, 1, bias=False).double()
    layer.weight.data = weight.clone()
    z = float(a @ weight.T)  # 0.5 - 2 + 1 = -0.5 < 0: keep a positive output with a ReLU-free map
    rho = weight + 0.5 * weight.clamp(min=0)
    gamma = lrp_factors(layer, a, Composite({nn.Linear: Gamma(0.5)}))
    expected_gamma = (a * rho / float(a @ rho.T) * z).numpy()
    np.testing.assert_allclose(gamma.values, expected_gamma, rtol=1e-12)

    eps = lrp_factors(layer, a, Composite({nn.Linear: Epsilon(0.1)}))
    expected_eps = (a * weight * z / (z - 0.1)).numpy()
    np.testing.assert_allclose(eps.values, expected_eps, rtol=1e-12)

    low, high = -1.0, 3.0
    zb = lrp_factors(layer, a, Composite({nn.Linear: ZBox(low, high)}))
    terms = a * weight - low * weight.clamp(min=0) - high * weight.clamp(max=0)
    np.testing.assert_allclose(zb.values, (terms / terms.sum() * z).numpy(), rtol=1e-12)


@pytest.mark.parametrize("budget", [1, 10**9])
def test_all_batching_strategies_agree(budget):
    model, x = conv_stack(), image(1)
    results = {
        strategy: lrp_factors(model, x, COMPOSITE, strategy=strategy, memory_budget_bytes=budget)
        for strategy in ("auto", "vmap", "batch", "loop")
    }
    reference = results["loop"]
    assert np.count_nonzero(reference.phi) >= 3
    for factors in results.values():
        np.testing.assert_allclose(factors.values, reference.values, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(factors.phi, reference.phi)


def test_chunk_size_follows_the_memory_budget():
    model, x = conv_stack(), image(2)
    phi, chunks = relevance_chunks(model, x, COMPOSITE, memory_budget_bytes=1)
    sizes = [len(indices) for indices, *_ in chunks]
    assert sizes == [1] * int(np.count_nonzero(phi.numpy()))
    phi, chunks = relevance_chunks(model, x, COMPOSITE, memory_budget_bytes=10**9)
    assert [len(indices) for indices, *_ in chunks] == [int(np.count_nonzero(phi.numpy()))]


def test_rules_leave_the_forward_output_unchanged():
    model, x = conv_stack(), image(3)
    with torch.no_grad():
        plain = model(x)
    with COMPOSITE.attached(model):
        wrapped = model(x.clone().requires_grad_(True))
    assert torch.equal(wrapped.detach(), plain)
    with torch.no_grad():
        assert torch.equal(model(x), plain)  # rules are detached afterwards


def test_zero_outputs_are_skipped_and_outputs_selects_dimensions():
    model, x = conv_stack(), image(4)
    factors = lrp_factors(model, x, COMPOSITE)
    zero = factors.phi == 0
    assert zero.any() and (~zero).any()
    assert not factors.values[zero].any()
    chosen = [int(np.flatnonzero(~zero)[0]), int(np.flatnonzero(zero)[0])]
    subset = lrp_factors(model, x, COMPOSITE, outputs=chosen)
    np.testing.assert_allclose(subset.values[chosen[0]], factors.values[chosen[0]], rtol=1e-12)
    others = np.ones(len(factors.phi), dtype=bool)
    others[chosen[0]] = False
    assert not subset.values[others].any()


class SharedDetector(nn.Module):
    """One detector applied to the input and to a shifted copy of it."""

    def __init__(self, detector):
        super().__init__()
        self.detector = detector

    def forward(self, x):
        shifted = nn.functional.pad(x, (2, 0))[..., : x.shape[-1]]
        return torch.cat([self.detector(x), self.detector(shifted)], dim=1).sum(dim=(-1, -2))


class TwoDetectors(nn.Module):
    """The same computation with two separate copies of the detector."""

    def __init__(self, detector):
        super().__init__()
        self.first, self.second = detector, copy.deepcopy(detector)

    def forward(self, x):
        shifted = nn.functional.pad(x, (2, 0))[..., : x.shape[-1]]
        return torch.cat([self.first(x), self.second(shifted)], dim=1).sum(dim=(-1, -2))


def test_module_applied_twice_equals_two_separate_copies():
    torch.manual_seed(7)
    detector = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(3, 2, 3, padding=1, bias=False), nn.ReLU(),
    ).double()
    for conv in (detector[0], detector[2]):
        conv.weight.data += 0.1
    x = image(8)
    shared = lrp_factors(SharedDetector(detector), x, Composite({nn.Conv2d: Gamma(0.5)}))
    separate = lrp_factors(TwoDetectors(detector), x, Composite({nn.Conv2d: Gamma(0.5)}))
    np.testing.assert_allclose(shared.values, separate.values, rtol=1e-12, atol=1e-15)
    assert shared.residual().max() < 1e-10 * np.abs(shared.phi).max()


class MinMax(nn.Module):
    def forward(self, v):  # (B, 4)
        return torch.stack([
            torch.maximum(v[:, 0], v[:, 1]),
            torch.minimum(v[:, 0], v[:, 2]),
            v[:, 1:4].amax(dim=1),
            nn.functional.max_pool1d(v[:, None, :2], 2).reshape(-1),
        ], dim=1)


def test_min_and_max_are_winner_take_all_and_conserve_with_ties():
    x = torch.tensor([[2.0, 2.0, 3.0, 3.0]], dtype=F64)
    factors = lrp_factors(MinMax(), x)
    np.testing.assert_array_equal(lrp_factors(MinMax(), x, strategy="vmap").values,
                                  factors.values)
    np.testing.assert_array_equal(factors.phi, [2.0, 2.0, 3.0, 2.0])
    np.testing.assert_allclose(factors.values.sum(axis=1), factors.phi, rtol=1e-15)
    # no tie: everything to the winner
    np.testing.assert_array_equal(factors.values[1], [2.0, 0.0, 0.0, 0.0])
    # ties: relevance shared among the tied winners, never counted twice, losers get nothing
    np.testing.assert_array_equal(factors.values[0, 2:], [0.0, 0.0])
    assert factors.values[0, 0] >= 0 and factors.values[0, 1] >= 0
    assert factors.values[2, 0] == 0 and factors.values[2, 1] == 0
    assert sorted(factors.values[3, :2]) in ([0.0, 2.0], [1.0, 1.0])


def test_pooling_preserves_totals_and_pooled_path_equals_pool_of_factors():
    model, x = conv_stack(), image(9)
    factors = lrp_factors(model, x, COMPOSITE)
    labels = grid_labels((8, 10), (3, 4))
    pooled = pool(factors, labels)
    assert pooled.values.shape == (12, 9)
    np.testing.assert_allclose(pooled.values.sum(axis=1),
                               factors.values.reshape(12, -1).sum(axis=1), rtol=1e-12)
    chunked = pooled_lrp_factors(model, x, labels, COMPOSITE, memory_budget_bytes=1)
    np.testing.assert_allclose(chunked.values, pooled.values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pooled.centres[0], [1.0, 1.5])
    np.testing.assert_allclose(pooled.centres[-1], [6.5, 8.5])  # border cell 2 x 2 pixels


def test_pooled_pair_equals_pooled_pixel_matrix():
    model = conv_stack()
    fa, fb = lrp_factors(model, image(10), COMPOSITE), lrp_factors(model, image(11), COMPOSITE)
    full = fa.values.reshape(12, -1).T @ fb.values.reshape(12, -1)
    labels_a = grid_labels((8, 10), 4)
    labels_b = box_labels((8, 10), [(1, 1, 3, 2), (5, 3, 4, 4)])
    explanation = bilrp(pool(fa, labels_a), pool(fb, labels_b))
    expected = np.zeros((labels_a.max() + 1, labels_b.max() + 1))
    np.add.at(expected, (labels_a.reshape(-1)[:, None], labels_b.reshape(-1)[None, :]), full)
    np.testing.assert_allclose(explanation.relevance, expected, rtol=1e-10, atol=1e-14)
    assert explanation.y == pytest.approx(float(fa.phi @ fb.phi))


def test_label_maps():
    labels = grid_labels((5, 7), 3)
    assert labels.shape == (5, 7) and labels.max() == 5
    assert labels[0, 0] == 0 and labels[0, 6] == 2 and labels[4, 0] == 3
    boxes = box_labels((6, 6), [(0, 0, 2, 3), (3, 2, 10, 10)])
    assert (boxes[:3, :2] == 0).all() and (boxes[2:, 3:] == 1).all()
    assert np.count_nonzero(boxes == 2) == 36 - 6 - 12
    with pytest.raises(ValueError, match="non-positive"):
        box_labels((6, 6), [(0, 0, 0, 3)])


def test_wildcard_names_select_supported_layers_only():
    model, x = conv_stack(), image(13)
    by_pattern = lrp_factors(model, x, Composite({"[0-9]*": Gamma(0.3)}))
    by_type = lrp_factors(model, x, Composite({nn.Conv2d: Gamma(0.3), nn.Linear: Gamma(0.3)}))
    np.testing.assert_allclose(by_pattern.values, by_type.values, rtol=1e-12, atol=1e-15)
    plain = lrp_factors(model, x)
    assert np.abs(by_pattern.values - plain.values).max() > 1e-3


def test_bad_inputs_give_clear_errors():
    model, x = conv_stack(), image(12)
    with pytest.raises(ValueError, match="batch size 1"):
        lrp_factors(model, torch.cat([x, x]), COMPOSITE)
    with pytest.raises(ValueError, match="unknown strategy"):
        lrp_factors(model, x, COMPOSITE, strategy="fast")
    with pytest.raises(ValueError, match="out of range"):
        lrp_factors(model, x, COMPOSITE, outputs=[99])
    with pytest.raises(TypeError, match="layer '1'"):
        lrp_factors(model, x, Composite({"1": Gamma(0.1)}))
    with pytest.raises(ValueError, match="layer '2'"):
        lrp_factors(model, x, Composite({"2": ZBox(0.0, 1.0)}))
    with pytest.raises(ValueError, match="gamma must be"):
        Gamma(-1.0)
    with pytest.raises(ValueError, match="trailing axes"):
        pool(lrp_factors(model, x), np.zeros((3, 3), dtype=int))


def test_conservation_residual_is_the_relative_error_or_the_absolute_one_at_zero():
    from sphaera_tables.explain import conservation_residual

    relevance = np.array([[1.0, 2.0], [3.0, 4.0]])  # sums to 10
    assert conservation_residual(relevance, 10.0) == 0.0
    assert conservation_residual(relevance, 8.0) == pytest.approx(0.25)
    assert conservation_residual(relevance, -10.0) == pytest.approx(2.0)
    assert conservation_residual(relevance, 0.0) == pytest.approx(10.0)
