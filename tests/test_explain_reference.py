"""The fast factored BiLRP against a slow reference of the second-order rules themselves.

The reference propagates the full pairwise relevance matrices ``R_kk'`` layer by layer with the
paper's Eq. 3 (linear/ReLU layers, LRP-gamma and zB) and Eq. 4 (positively homogeneous layers,
Hessian of ``a_k a_k'``), never using the factorisation. Tiny networks only.
"""

import numpy as np
import pytest
import torch
from torch import nn

from sphaera_tables.explain import (
    Composite,
    Gamma,
    ZBox,
    bilrp,
    curvature_matrix,
    gradient_factors,
    lrp_factors,
    pool,
    saliency_matrix,
)

SHIFTS = (1, 2)


# ---------------------------------------------------------------- slow reference (Eq. 3 and 4)


def _dense(linear_fn, n_inputs):
    """Matrix W (K x J) of a linear map on flat vectors."""
    return torch.autograd.functional.jacobian(linear_fn, torch.zeros(n_inputs, dtype=torch.float64))


def _second_order(z, z_prime, relevance):
    """``R_jj' = sum_kk' Z_jk Z'_j'k' / (sum_jj' Z_jk Z'_j'k') R_kk'`` with 0/0 = 0."""
    denominator = torch.einsum("jk,lm->km", z, z_prime)
    ratio = torch.where(denominator == 0, torch.zeros_like(relevance),
                        relevance / torch.where(denominator == 0, 1.0, denominator))
    return z @ ratio @ z_prime.T


def reference_bilrp(steps, x, x_prime):
    """Full BiLRP matrix over input features, shape (d, d), by the second-order rules.

    ``steps``: list of ("linear", fn, gamma), ("zb", fn, low, high) (each a linear map followed
    by a ReLU) or ("homogeneous", fn), all on flat vectors.
    """
    activations = [[x.reshape(-1)], [x_prime.reshape(-1)]]
    for step in steps:
        for branch in activations:
            a = branch[-1]
            out = step[1](a)
            branch.append(torch.relu(out) if step[0] != "homogeneous" else out)
    phi, phi_prime = activations[0][-1], activations[1][-1]
    relevance = torch.diag(phi * phi_prime)  # R_kk' = a_k a_k' [id(k) = id(k')]
    for index in reversed(range(len(steps))):
        step = steps[index]
        a, a_prime = activations[0][index], activations[1][index]
        if step[0] == "homogeneous":
            jacobian = torch.autograd.functional.jacobian(step[1], a)
            jacobian_prime = torch.autograd.functional.jacobian(step[1], a_prime)
            # [Hessian of a_k a_k']_jj' (cross block) = [grad a_k]_j [grad a_k']_j'
            z, z_prime = a[:, None] * jacobian.T, a_prime[:, None] * jacobian_prime.T
        else:
            weight = _dense(step[1], len(a))
            if step[0] == "linear":
                rho = weight + step[2] * weight.clamp(min=0)
                z, z_prime = a[:, None] * rho.T, a_prime[:, None] * rho.T
            else:
                low, high = step[2], step[3]
                positive, negative = weight.clamp(min=0), weight.clamp(max=0)
                z = (a[:, None] * weight.T - low * positive.T - high * negative.T)
                z_prime = (a_prime[:, None] * weight.T - low * positive.T - high * negative.T)
        relevance = _second_order(z, z_prime, relevance)
    return relevance.detach()


# ---------------------------------------------------------------- tiny models


def shift_right(maps, tau):
    """Shift (B, H, W) maps right by ``tau`` pixels, zeros entering on the left."""
    return nn.functional.pad(maps, (tau, 0))[..., : maps.shape[-1]]


class BigramHead(nn.Module):
    """min(a_j, shift(a_k, tau)), max over tau, sum over pixels, for every ordered pair jk."""

    def forward(self, maps):
        return self.sum_pixels(self.max_shifts(self.pairs(maps)))

    @staticmethod
    def pairs(maps):
        n = maps.shape[1]
        return torch.stack([
            torch.stack([torch.minimum(maps[:, j], shift_right(maps[:, k], t)) for t in SHIFTS], 1)
            for j in range(n) for k in range(n)
        ], 1)  # (B, n*n, n_shifts, H, W)

    @staticmethod
    def max_shifts(pairs):
        return pairs.amax(dim=2)

    @staticmethod
    def sum_pixels(bigram_maps):
        return bigram_maps.sum(dim=(-1, -2))


def stand_in_model(seed=0):
    """Bias-free conv/ReLU detector (1 -> 4 -> 3 maps, same size) and the bigram head."""
    torch.manual_seed(seed)
    detector = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(4, 3, 3, padding=1, bias=False), nn.ReLU(),
    )
    for conv in (detector[0], detector[2]):
        conv.weight.data += 0.15  # more positive weights: more active maps, more bigrams
    return nn.Sequential(detector, BigramHead()).double()


HEIGHT, WIDTH, MAPS = 5, 7, 3


def head_steps():
    """The head as three positively homogeneous layers on flat vectors."""
    maps_shape = (1, MAPS, HEIGHT, WIDTH)
    pairs_shape = (1, MAPS * MAPS, len(SHIFTS), HEIGHT, WIDTH)
    bigram_shape = (1, MAPS * MAPS, HEIGHT, WIDTH)
    return [
        ("homogeneous", lambda a: BigramHead.pairs(a.reshape(maps_shape)).reshape(-1)),
        ("homogeneous", lambda a: BigramHead.max_shifts(a.reshape(pairs_shape)).reshape(-1)),
        ("homogeneous", lambda a: BigramHead.sum_pixels(a.reshape(bigram_shape)).reshape(-1)),
    ]


def conv_fn(conv, in_channels):
    shape = (1, in_channels, HEIGHT, WIDTH)
    return lambda a: conv(a.reshape(shape)).reshape(-1)


def fast_bilrp(model, composite, x, x_prime):
    fa = lrp_factors(model, x, composite)
    fb = lrp_factors(model, x_prime, composite)
    h = len(fa.phi)
    return fa.values.reshape(h, -1).T @ fb.values.reshape(h, -1), float(fa.phi @ fb.phi)


def page(seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((1, 1, HEIGHT, WIDTH), generator=generator, dtype=torch.float64)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("first_rule", ["zb", "gamma"])
def test_bigram_chain_from_pixels_matches_second_order_rules(first_rule):
    model = stand_in_model()
    detector = model[0]
    first = ZBox(0.0, 1.0) if first_rule == "zb" else Gamma(0.5)
    composite = Composite({"0.0": first, "0.2": Gamma(0.5)})
    first_step = (("zb", conv_fn(detector[0], 1), 0.0, 1.0) if first_rule == "zb"
                  else ("linear", conv_fn(detector[0], 1), 0.5))
    steps = [first_step, ("linear", conv_fn(detector[2], 4), 0.5)] + head_steps()
    x, x_prime = page(1), page(2)

    expected = reference_bilrp(steps, x, x_prime).numpy()
    relevance, y = fast_bilrp(model, composite, x, x_prime)

    assert y > 0 and np.abs(expected).max() > 0
    np.testing.assert_allclose(relevance, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert abs(relevance.sum() - y) / y < 1e-6  # conservation


def test_bigram_head_alone_matches_second_order_rules():
    """The head explained from the detector maps: the factors are gradient x input."""
    generator = torch.Generator().manual_seed(5)
    maps = torch.relu(torch.rand((2, 1, MAPS, HEIGHT, WIDTH), generator=generator,
                                  dtype=torch.float64) - 0.3)
    head = BigramHead()

    expected = reference_bilrp(head_steps(), maps[0], maps[1]).numpy()
    relevance, y = fast_bilrp(head, None, maps[0], maps[1])

    np.testing.assert_allclose(relevance, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert abs(relevance.sum() - y) / y < 1e-10


def test_mlp_with_gamma_schedule_matches_second_order_rules():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Linear(12, 9, bias=False), nn.ReLU(),
        nn.Linear(9, 8, bias=False), nn.ReLU(),
        nn.Linear(8, 5, bias=False), nn.ReLU(),
    ).double()
    for layer in model[::2]:
        layer.weight.data += 0.1
    gammas = {"0": 0.3, "2": 0.1, "4": 0.0}
    composite = Composite({name: Gamma(g) for name, g in gammas.items()})
    steps = [("linear", model[int(name)], g) for name, g in gammas.items()]
    x, x_prime = torch.rand(1, 12, dtype=torch.float64), torch.rand(1, 12, dtype=torch.float64)

    expected = reference_bilrp(steps, x, x_prime).numpy()
    relevance, y = fast_bilrp(model, composite, x, x_prime)

    np.testing.assert_allclose(relevance, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert abs(relevance.sum() - y) / y < 1e-6


def double_autograd_hessian(model, x, x_prime):
    """``d^2 y / dx dx'`` of ``y = <phi(x), phi(x')>``, shape (d, d')."""

    def similarity_gradient(b):
        a = x.clone().requires_grad_(True)
        y = (model(a) * model(b)).sum()
        return torch.autograd.grad(y, a, create_graph=True)[0].reshape(-1)

    jacobian = torch.autograd.functional.jacobian(similarity_gradient, x_prime)
    return jacobian.reshape(x.numel(), x_prime.numel())


def test_gamma_zero_equals_hessian_times_product_by_double_autograd():
    model = stand_in_model(seed=4)
    x, x_prime = page(3), page(4)
    hessian = double_autograd_hessian(model, x, x_prime)
    expected = (x.reshape(-1, 1) * hessian * x_prime.reshape(1, -1)).numpy()

    plain, _ = fast_bilrp(model, None, x, x_prime)
    gamma_zero, _ = fast_bilrp(model, Composite({nn.Conv2d: Gamma(0.0)}), x, x_prime)
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(plain, expected, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(gamma_zero, expected, rtol=1e-9, atol=1e-12 * scale)


def test_curvature_and_saliency_baselines_match_their_definitions():
    model = stand_in_model(seed=9)
    x, x_prime = page(5), page(6)
    labels = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) % 4
    onehot = np.eye(4)[labels.reshape(-1)]  # (d, G)
    hessian = double_autograd_hessian(model, x, x_prime).numpy()
    curvature = curvature_matrix(gradient_factors(model, x), gradient_factors(model, x_prime),
                                 labels, labels)
    expected = onehot.T @ hessian**2 @ onehot
    np.testing.assert_allclose(curvature, expected, rtol=1e-9, atol=1e-12 * expected.max())
    pixels, pixels_prime = x.reshape(-1).numpy(), x_prime.reshape(-1).numpy()
    saliency = saliency_matrix(x[0], x_prime[0], labels, labels)
    np.testing.assert_allclose(saliency, onehot.T @ np.outer(pixels, pixels_prime) ** 2 @ onehot,
                               rtol=1e-12)


def test_symmetry_and_pooled_conservation():
    model = stand_in_model(seed=6)
    composite = Composite({nn.Conv2d: Gamma(0.5)})
    labels = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) // 6
    pa = pool(lrp_factors(model, page(7), composite), labels)
    pb = pool(lrp_factors(model, page(8), composite), labels)

    forward, backward = bilrp(pa, pb), bilrp(pb, pa)

    np.testing.assert_allclose(backward.relevance, forward.relevance.T, rtol=1e-12, atol=0)
    assert forward.y == pytest.approx(backward.y, rel=1e-12)
    assert forward.residual < 1e-6
    with torch.no_grad():
        y = float((model(page(7)) * model(page(8))).sum())
    assert forward.y == pytest.approx(y, rel=1e-12)
