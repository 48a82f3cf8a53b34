"""Pixel-level LRP on crops (sphaera_tables/pixel_crops.py) against whole-page LRP passes.

The reference is the slow path ``tables explain`` used before: ``pooled_lrp_factors`` on the
whole page model, one backward pass through the whole page per bigram dimension, with the same
rules (zB on the input convolution, LRP-gamma 0.5 on the others). The page is small and drawn
here: numbers touching every page edge and numbers in the middle, crops cut small (``tile``) so
that seeded digit pairs are split between crops.
"""

from functools import cache

import cv2
import numpy as np
import pytest
import torch

from digit_detector.weights import load_detector
from sphaera_tables.bigram import PageModel
from sphaera_tables.explain import Composite, Gamma, grid_labels, pooled_lrp_factors
from sphaera_tables.page_analysis import FeatureConfig
from sphaera_tables.pixel_crops import (
    CropDetector,
    core_cut,
    cropped_pooled_factors,
    head_seeds,
    plan_crops,
    unpadded_detector,
)
from sphaera_tables.pixel_explanation import detector_composite

HEIGHT, WIDTH = 72, 150
NUMBERS = (("1234", (0, 9)), ("5678", (120, 9)), ("3690", (44, 40)), ("5678", (2, 71)),
           ("1234", (121, 71)))
"""(text, (x, baseline y)): the four corners and the middle; each corner number twice, far apart
(so its bigrams keep several crops)."""
SMALL_TILE = 6


def small_page(dtype=torch.float64) -> torch.Tensor:
    """A prepared page (1, 1, HEIGHT, WIDTH): ink in [0, 1], digits about 9 px high."""
    ink = np.zeros((HEIGHT, WIDTH), np.uint8)
    for text, origin in NUMBERS:
        cv2.putText(ink, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
    return torch.tensor(ink / 255.0, dtype=dtype)[None, None]


@pytest.fixture(scope="module")
def page_model():
    detector = load_detector().eval().double()
    return detector, FeatureConfig().head(detector.config)


def reference(detector, head, x, labels, composite):
    """The whole-page path: one LRP pass through the whole page per dimension."""
    return pooled_lrp_factors(PageModel(detector, head).eval(), x, labels, composite)


def page_seeds(detector, head):
    """``(maps, active pixels, head_seeds(...))`` of :func:`small_page`."""
    with torch.no_grad():
        maps = detector(small_page())
    active = head.active_pixels(maps)
    return maps, active, head_seeds(head, active, maps)


@cache
def paper_reference(cell: int):
    """:func:`reference` on :func:`small_page` (float64) with the paper's rules, computed once."""
    detector = load_detector().eval().double()
    head = FeatureConfig().head(detector.config)
    return reference(detector, head, small_page(), grid_labels((HEIGHT, WIDTH), cell),
                     detector_composite(detector))


def test_the_drawn_page_has_seeded_pixels_at_every_edge_and_split_clusters(page_model):
    """The page exercises what the crops must get right: zero padding at all four page edges,
    and digit pairs whose seeded pixels fall into different crops."""
    maps, active, (phi, dims, seeds) = page_seeds(*page_model)
    assert len(dims) >= 8
    crops = plan_crops(seeds, active, (HEIGHT, WIDTH), 15, SMALL_TILE)
    tops = {c.top for c in crops}
    lefts = {c.left for c in crops}
    assert 0 in tops and 0 in lefts
    assert any(c.top + c.size[0] == HEIGHT for c in crops)
    assert any(c.left + c.size[1] == WIDTH for c in crops)
    ys, xs = np.divmod(active.flat.numpy(), WIDTH)
    seeded = (seeds != 0).any(dim=1).numpy()
    assert ys[seeded.any(axis=0)].min() <= 3 and xs[seeded.any(axis=0)].min() <= 3
    crops_per_row = np.bincount([c.row for c in crops])
    assert crops_per_row.max() > 2


@pytest.mark.parametrize("cell, tile", [(1, SMALL_TILE), (1, 64), (8, 64)])
def test_crops_give_the_relevance_of_whole_page_passes(page_model, cell, tile):
    """Pixel by pixel (cell 1) and pooled (cell 8), equal to the whole-page passes to float64
    rounding, with the same phi and no bias; so conservation and the rules are the reference's."""
    detector, head = page_model
    x = small_page()
    labels = grid_labels((HEIGHT, WIDTH), cell)
    expected = paper_reference(cell)
    got = cropped_pooled_factors(detector, head, x, labels, detector_composite(detector),
                                 tile=tile)
    scale = np.abs(expected.values).max()
    assert scale > 0
    np.testing.assert_array_equal(got.phi, expected.phi)
    np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(got.centres, expected.centres)
    assert not got.bias.any()


def test_float32_crops_match_whole_page_passes_to_float32_tolerance(page_model):
    detector, head = page_model
    detector32 = load_detector().eval()
    x = small_page(torch.float32)
    labels = grid_labels((HEIGHT, WIDTH), 8)
    composite = detector_composite(detector32)
    expected = reference(detector32, head, x, labels, composite)
    got = cropped_pooled_factors(detector32, head, x, labels, composite, tile=SMALL_TILE)
    scale = np.abs(expected.values).max()
    np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=1e-5 * scale)


def test_a_margin_below_half_the_receptive_field_is_not_exact(page_model):
    """Half the receptive field (15 px) is the least exact margin: one pixel less loses
    context the LRP ratios of the outer neurons depend on, and the test above would see it."""
    detector, head = page_model
    assert detector.config.receptive_field_px // 2 == 15
    x = small_page()
    labels = grid_labels((HEIGHT, WIDTH), 1)
    expected = paper_reference(1)
    got = cropped_pooled_factors(detector, head, x, labels, detector_composite(detector),
                                 tile=SMALL_TILE, margin=14)
    assert np.abs(got.values - expected.values).max() > 1e-6 * np.abs(expected.values).max()


@pytest.mark.parametrize("top, left, height, width", [(10, 20, 48, 60), (0, 0, 40, 44),
                                                     (HEIGHT - 40, WIDTH - 52, 40, 52)])
def test_a_crop_computes_the_page_maps_on_its_core(page_model, top, left, height, width):
    """Inside the page, on the crop's core (``margin`` px in from inner sides, up to the page
    edge on the others), the crop's maps are the whole page's, bit for bit in float64 up to
    rounding; a window inside the page, and windows in two opposite corners."""
    detector = page_model[0]
    page = small_page()
    margin = detector.config.receptive_field_px // 2
    inner = (top > 0, top + height < HEIGHT, left > 0, left + width < WIDTH)
    unpadded, paddings = unpadded_detector(detector)
    crop = CropDetector(unpadded, paddings, inner, core_cut(paddings, margin))
    with torch.no_grad():
        expected = detector(page)
        got = crop(page[..., top:top + height, left:left + width])
    cut_top, cut_bottom, cut_left, cut_right = (margin * side for side in inner)
    core = expected[..., top + cut_top:top + height - cut_bottom,
                    left + cut_left:left + width - cut_right]
    assert got.shape == core.shape
    torch.testing.assert_close(got, core, rtol=0, atol=1e-12)


def test_a_margin_below_what_the_later_layers_take_is_refused(page_model):
    paddings = unpadded_detector(page_model[0])[1]
    assert core_cut(paddings, 15) == paddings[0][0]
    with pytest.raises(ValueError, match="margin"):
        core_cut(paddings, 12)


def test_crops_follow_the_composite_they_are_given(page_model):
    """The crops honour the rules: under LRP-0 they equal the LRP-0 reference and differ from
    the paper's rules (which the default composite sets)."""
    detector, head = page_model
    x = small_page()
    labels = grid_labels((HEIGHT, WIDTH), 8)
    lrp0 = Composite({torch.nn.Conv2d: Gamma(0.0)})
    got = cropped_pooled_factors(detector, head, x, labels, lrp0, tile=SMALL_TILE)
    expected = reference(detector, head, x, labels, lrp0)
    scale = np.abs(expected.values).max()
    np.testing.assert_allclose(got.values, expected.values, rtol=0, atol=1e-12 * scale)
    assert np.abs(paper_reference(8).values - got.values).max() > 1e-3 * scale


def test_head_seeds_equal_one_backward_pass_per_dimension(page_model):
    head = page_model[1]
    maps, active, (phi, dims, seeds) = page_seeds(*page_model)
    values = active.gather(maps).requires_grad_(True)
    counts = head.pairs_model(active)(values).reshape(-1)
    for row, m in enumerate(dims):
        (gradient,) = torch.autograd.grad(counts[m], values, retain_graph=True)
        np.testing.assert_array_equal(seeds[row].numpy(), gradient[0, :, :active.count].numpy())
    np.testing.assert_array_equal(phi.numpy(), counts.detach().numpy())


def test_crop_progress_is_monotone_and_ends_at_the_total(page_model):
    detector, head = page_model
    calls = []
    cropped_pooled_factors(detector, head, small_page(), grid_labels((HEIGHT, WIDTH), 8),
                           detector_composite(detector), tile=SMALL_TILE,
                           memory_budget_bytes=1 << 20,
                           progress=lambda done, total, message="": calls.append((done, total)))
    done = [d for d, _ in calls]
    assert len(calls) > 2 and done[0] == 0
    assert done == sorted(done) and {t for _, t in calls} == {done[-1]}
