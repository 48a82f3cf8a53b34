"""The bigram head against a dense reference, known answers and conservation."""

import numpy as np
import pytest
import torch

from sphaera_tables.bigram import (
    BIGRAM_LABELS,
    BigramHead,
    bigram_shifts,
    blob_unit,
)

PEAK, SIGMA, THRESHOLD = 1.0, 2.0, 0.2
PITCH = 10


def dense_reference(maps: np.ndarray, shifts, threshold, unit) -> np.ndarray:
    """phi_jk = sum_x relu(max_tau min(a_j(x), a_k(x + tau)) - t) / unit, on full maps."""
    _, height, width = maps.shape
    phi = np.zeros(100)
    for j in range(10):
        for k in range(10):
            best = np.full((height, width), -np.inf)
            for tau in shifts:
                right = np.zeros((height, width))
                right[:, : width - tau] = maps[k][:, tau:]
                best = np.maximum(best, np.minimum(maps[j], right))
            phi[10 * j + k] = np.clip(best - threshold, 0, None).sum() / unit
    return phi


def blob_maps(digits_at, height=40, width=120) -> torch.Tensor:
    """Ideal detector output: a Gaussian blob of class d at each (x, y, d)."""
    yy, xx = np.mgrid[0:height, 0:width]
    maps = np.zeros((10, height, width))
    for x, y, d in digits_at:
        maps[d] += PEAK * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * SIGMA**2))
    return torch.tensor(maps[None], dtype=torch.float64)


def make_head():
    return BigramHead(bigram_shifts(PITCH), THRESHOLD, blob_unit(PEAK, SIGMA, THRESHOLD))


def test_shifts_follow_the_digit_pitch():
    assert bigram_shifts(10) == (8, 10, 12)
    assert bigram_shifts(20) == (16, 20, 24)


def test_known_answer_counts_adjacent_digits_only():
    # "123" on one line and "45" on another; a lone "7" far away.
    maps = blob_maps([(20, 10, 1), (30, 10, 2), (40, 10, 3), (20, 30, 4), (30, 30, 5), (90, 30, 7)])
    phi = make_head()(maps)[0].numpy()
    counts = dict(zip(BIGRAM_LABELS, phi, strict=True))
    for label in ("12", "23", "45"):
        assert counts[label] == pytest.approx(1.0, abs=0.02)
    others = [v for label, v in counts.items() if label not in ("12", "23", "45")]
    assert max(others) < 1e-9
    # order matters: "21" is not "12"
    assert counts["21"] == 0


def test_equals_dense_reference_on_noisy_maps():
    rng = np.random.default_rng(0)
    digits = [(rng.integers(5, 110), rng.integers(5, 35), rng.integers(0, 10)) for _ in range(25)]
    maps = blob_maps(digits) + torch.tensor(rng.uniform(0, 0.15, (1, 10, 40, 120)))
    head = make_head()
    fast = head(maps)[0].numpy()
    slow = dense_reference(maps[0].numpy(), head.shifts, head.threshold, head.unit)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-12)
    assert fast.sum() > 1


def test_translation_invariance():
    digits = [(20, 10, 3), (30, 10, 0), (40, 12, 8), (20, 30, 1), (31, 30, 9)]
    head = make_head()
    phi = head(blob_maps(digits))
    moved = head(blob_maps([(x + 37, y + 5, d) for x, y, d in digits]))
    torch.testing.assert_close(phi, moved)


def test_gradient_times_input_conserves_every_bigram():
    rng = np.random.default_rng(1)
    digits = [(rng.integers(5, 110), rng.integers(5, 35), rng.integers(0, 10)) for _ in range(30)]
    maps = (blob_maps(digits) + torch.tensor(rng.uniform(0, 0.2, (1, 10, 40, 120)))).requires_grad_()
    phi = make_head()(maps)[0]
    for m in torch.nonzero(phi > 0).flatten()[:15]:
        (grad,) = torch.autograd.grad(phi[m], maps, retain_graph=True)
        relevance = (grad * maps).sum().item()
        assert relevance == pytest.approx(phi[m].item(), rel=1e-9)


def test_empty_and_invalid_inputs():
    head = make_head()
    phi = head(torch.zeros(1, 10, 20, 30, dtype=torch.float64))
    assert phi.shape == (1, 100) and phi.abs().sum() == 0
    with pytest.raises(ValueError, match="shape"):
        head(torch.zeros(10, 20, 30))
    with pytest.raises(ValueError, match="threshold"):
        BigramHead((8,), 0.0, 1.0)
    with pytest.raises(ValueError, match="above the blob peak"):
        blob_unit(1.0, 2.0, 2.0)


def test_digit_at_right_edge_has_no_successor():
    maps = blob_maps([(115, 10, 1)], width=120)
    assert make_head()(maps).abs().sum() == 0


def test_one_pass_pixel_relevance_equals_the_engine_with_one_seed_per_bigram():
    from sphaera_tables.explain import lrp_factors

    rng = np.random.default_rng(2)
    digits = [(rng.integers(5, 55), rng.integers(5, 20), rng.integers(0, 10)) for _ in range(14)]
    maps = blob_maps(digits, height=25, width=60) + torch.tensor(
        rng.uniform(0, 0.25, (1, 10, 25, 60)))
    head = make_head()
    active = head.active_pixels(maps)
    pairs = head.pairs_model(active)
    values = active.gather(maps)
    phi, relevance = pairs.pixel_relevance(values)
    reference = lrp_factors(pairs, values, strategy="loop")
    np.testing.assert_allclose(phi.numpy(), reference.phi, rtol=1e-12)
    np.testing.assert_allclose(relevance.numpy(), reference.values.sum(axis=1), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(relevance.sum(dim=1).numpy(), phi.numpy(), rtol=1e-10)
    assert (phi > 0).sum() >= 5
