"""The bigram head against a dense reference, known answers and conservation."""

import numpy as np
import pytest
import torch

from sphaera_tables.bigram import (
    BIGRAM_LABELS,
    ActivePixels,
    BigramHead,
    PageModel,
    bigram_offsets,
    blob_unit,
)

PEAK, SIGMA, THRESHOLD = 1.0, 2.0, 0.2
PITCH, HEIGHT = 10, 12
RISES = (-1 / 6, 0.0, 1 / 6)  # next digit 2 px higher, level or 2 px lower


def dense_reference(maps: np.ndarray, offsets, threshold, unit) -> np.ndarray:
    """phi_jk = sum_x relu(max_(dx,dy) min(a_j(x, y), a_k(x + dx, y + dy)) - t) / unit, on full
    maps (zeros beyond the page)."""
    _, height, width = maps.shape
    padded = np.pad(maps, ((0, 0), (height, height), (0, width)))
    phi = np.zeros(100)
    for j in range(10):
        for k in range(10):
            best = np.full((height, width), -np.inf)
            for dx, dy in offsets:
                right = padded[k, height + dy : 2 * height + dy, dx : width + dx]
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


def make_head(rises=RISES):
    return BigramHead(bigram_offsets(PITCH, HEIGHT, rise_factors=rises), THRESHOLD,
                      blob_unit(PEAK, SIGMA, THRESHOLD))


def test_offsets_follow_the_digit_pitch_and_height():
    assert bigram_offsets(10, 12) == ((8, 0), (10, 0), (12, 0))
    assert bigram_offsets(1, 12) == ((1, 0),)  # never less than one pixel, never repeated
    assert bigram_offsets(20, 24, (0.8, 1.0), (-0.25, 0.0, 0.25)) == (
        (16, -6), (16, 0), (16, 6), (20, -6), (20, 0), (20, 6))


def test_old_style_figures_pair_up_a_little_higher_or_lower():
    # "37" with the 7 two pixels lower, "86" with the 6 two pixels higher
    maps = blob_maps([(20, 10, 3), (30, 12, 7), (60, 30, 8), (70, 28, 6)])
    counts = dict(zip(BIGRAM_LABELS, make_head()(maps)[0].numpy(), strict=True))
    level_only = dict(zip(BIGRAM_LABELS, make_head(rises=(0.0,))(maps)[0].numpy(), strict=True))
    for label in ("37", "86"):
        assert counts[label] == pytest.approx(1.0, abs=0.02)
        assert level_only[label] < 0.8
    assert sum(counts.values()) == pytest.approx(2.0, abs=0.04)


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
    digits += [(50, 0, 4), (60, 1, 4), (70, 39, 5), (80, 37, 5), (119, 20, 6)]  # on the edges
    maps = blob_maps(digits) + torch.tensor(rng.uniform(0, 0.15, (1, 10, 40, 120)))
    head = make_head()
    fast = head(maps)[0].numpy()
    slow = dense_reference(maps[0].numpy(), head.offsets, head.threshold, head.unit)
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
        BigramHead(((8, 0),), 0.0, 1.0)
    with pytest.raises(ValueError, match="dx >= 1"):
        BigramHead(((0, 2),), 0.2, 1.0)
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


@pytest.mark.parametrize(("sigma", "threshold"), [(3.0, 0.2), (4.0, 0.3), (3.5, 0.1)])
def test_blob_unit_is_the_mass_of_a_gaussian_above_the_threshold(sigma, threshold):
    """Known answer: the integral of relu(p exp(-r^2 / 2 sigma^2) - t) over the plane is
    2 pi sigma^2 (p - t - t ln(p / t)); on the integer grid a blob this wide sums to it within
    0.1 %."""
    exact = 2 * np.pi * sigma**2 * (PEAK - threshold - threshold * np.log(PEAK / threshold))
    assert blob_unit(PEAK, sigma, threshold) == pytest.approx(exact, rel=1e-3)


def test_a_blob_narrower_than_a_pixel_counts_its_centre_only():
    # sigma 0.3: the next pixel holds exp(-1 / 0.18) = 0.004 of the peak, below the threshold
    assert blob_unit(1.0, 0.3, 0.5) == pytest.approx(0.5, rel=1e-12)


def test_active_pixel_coordinates_are_where_some_map_exceeds_the_threshold():
    maps = blob_maps([(20, 10, 3), (30, 12, 7), (95, 30, 1)])
    active = ActivePixels.from_maps(maps, THRESHOLD, bigram_offsets(PITCH, HEIGHT))
    ys, xs = np.nonzero(maps[0].numpy().max(axis=0) > THRESHOLD)  # row-major, like flat
    x, y = active.coordinates()
    np.testing.assert_array_equal(x.numpy(), xs)
    np.testing.assert_array_equal(y.numpy(), ys)



def test_float32_maps_have_the_active_pixels_of_the_same_maps_in_float64():
    """Page analysis finds the active pixels on the detector's float32 maps and runs the head
    on their values in float64: a value that rounds to the threshold in float32 is above it."""
    maps = blob_maps([(20, 10, 3), (60, 20, 8)]).float()
    maps[0, 5, 30, 100] = float(np.float32(THRESHOLD))  # 0.2000000030 > 0.2, equal in float32
    offsets = bigram_offsets(PITCH, HEIGHT)
    single = ActivePixels.from_maps(maps, THRESHOLD, offsets)
    double = ActivePixels.from_maps(maps.double(), THRESHOLD, offsets)
    assert torch.equal(single.flat, double.flat)
    assert torch.equal(single.neighbours, double.neighbours)
    assert torch.equal(single.gather(maps).double(), double.gather(maps.double()))

def test_page_model_is_the_head_applied_to_the_detector_output():
    maps = blob_maps([(20, 10, 3), (30, 12, 7)])
    head = make_head()
    torch.testing.assert_close(PageModel(torch.nn.Identity(), head)(maps), head(maps))


def _spikes(points, height=12, width=40) -> torch.Tensor:
    """Maps that are 1 at single pixels (x, y, digit) and 0 elsewhere."""
    maps = torch.zeros(1, 10, height, width, dtype=torch.float64)
    for x, y, d in points:
        maps[0, d, y, x] = 1.0
    return maps


def test_one_offset_counts_a_lone_pair_exactly_once():
    """With the next digit exactly one offset away, min(a_1(x), a_2(x + dx)) is the blob of
    "1" itself: "12" counts exactly one blob mass and nothing else counts."""
    head = BigramHead(((PITCH, 0),), THRESHOLD, blob_unit(PEAK, SIGMA, THRESHOLD))
    phi = head(blob_maps([(20, 10, 1), (20 + PITCH, 10, 2)]))[0].numpy()
    expected = np.zeros(100)
    expected[12] = 1.0
    np.testing.assert_allclose(phi, expected, rtol=1e-12, atol=1e-12)


def test_the_next_digit_is_looked_for_only_on_the_page_and_on_the_side_of_the_rise():
    """A single active pixel is nobody's neighbour; a pixel dx from the right edge has no
    successor on the next line's first column; a rise of +2 px looks 2 px lower only."""
    unit = 1.0 - THRESHOLD  # a spike of height 1 above the threshold
    lone = BigramHead(((3, 0),), THRESHOLD, unit)
    assert lone(_spikes([(5, 5, 3)])).abs().sum() == 0
    width = 40
    wrap = _spikes([(width - 3, 5, 1), (0, 6, 2)], width=width)
    assert lone(wrap).abs().sum() == 0
    adjacent = BigramHead(((1, 0),), THRESHOLD, unit)
    assert adjacent(_spikes([(5, 5, 1), (6, 5, 2)]))[0, 12] == pytest.approx(1.0)
    lower = BigramHead(((3, 2),), THRESHOLD, unit)
    assert lower(_spikes([(5, 5, 3), (8, 7, 7)]))[0, 37] == pytest.approx(1.0)
    assert lower(_spikes([(5, 7, 3), (8, 5, 7)])).abs().sum() == 0


def test_maps_must_be_one_page_of_ten_digit_maps():
    head = make_head()
    for shape in [(1, 9, 20, 30), (2, 10, 20, 30), (10, 20, 30)]:
        with pytest.raises(ValueError, match="shape"):
            head(torch.zeros(shape, dtype=torch.float64))
    pairs = head.pairs_model(head.active_pixels(blob_maps([(20, 10, 1), (30, 10, 2)])))
    for shape in [(1, 9, pairs.active.count + 1), (1, 10)]:
        with pytest.raises(ValueError, match=r"expected values of shape \(1, 10, n \+ 1\), got"):
            pairs(torch.zeros(shape, dtype=torch.float64))
