"""The scan geometry maps boxes exactly where it moves the pixels."""

import numpy as np
import pytest

from corpus_tools.synth.degrade import ScanGeometry, print_ink, scan_page


@pytest.mark.parametrize("rotation", [0, 90, -90])
@pytest.mark.parametrize("skew, curl, side", [(0.0, 0.0, "right"), (0.8, 12.0, "right"),
                                              (-1.2, 9.0, "left")])
def test_boxes_follow_the_pixels(rotation, skew, curl, side):
    geometry = ScanGeometry(120, 160, skew_deg=skew, curl_px=curl, curl_side=side,
                            pad=(5, 7, 3, 2), rotation=rotation)
    boxes = [(10, 10, 22, 25), (90, 60, 110, 75), (50, 130, 60, 150)]
    for box, mapped in zip(boxes, geometry.map_boxes(np.array(boxes)), strict=True):
        x0, y0, x1, y1 = box
        page = np.zeros((160, 120), dtype=np.float32)
        page[y0:y1, x0:x1] = 1
        moved = geometry.frame(geometry.warp(page), 0)
        u0, v0, u1, v1 = (int(v) for v in mapped)
        inside = moved[max(v0, 0):v1, max(u0, 0):u1].sum()
        assert inside / moved.sum() > 0.97, (box, geometry)
        # and the box is tight: not much larger than the moved block
        rows, cols = np.nonzero(moved > 0.5)
        assert abs(u0 - cols.min()) <= 2 and abs(u1 - cols.max() - 1) <= 2
        assert abs(v0 - rows.min()) <= 2 and abs(v1 - rows.max() - 1) <= 2


def test_frame_turns_the_page_counter_clockwise_for_90():
    page = np.zeros((4, 6), dtype=np.float32)
    page[0, 5] = 1                       # top right corner of the upright page
    turned = ScanGeometry(6, 4, rotation=90).frame(page, 0)
    assert turned.shape == (6, 4) and turned[0, 0] == 1     # now top left
    x, y = ScanGeometry(6, 4, rotation=90).map_points(np.array([5.5]), np.array([0.5]))
    assert (x[0], y[0]) == (0.5, 0.5)


def test_scan_page_is_deterministic_and_looks_like_paper():
    ink = np.zeros((300, 200), dtype=np.float32)
    ink[100:110, 50:150] = 1
    first, geometry = scan_page(ink, np.random.default_rng(7), 150)
    second, _ = scan_page(ink, np.random.default_rng(7), 150)
    assert np.array_equal(first, second) and first.dtype == np.uint8
    grey = first if first.ndim == 2 else first.mean(axis=2)
    ((x0, y0, x1, y1),) = geometry.map_boxes(np.array([(50, 100, 150, 110)]))
    assert grey[y0:y1, x0:x1].mean() < np.median(grey) - 60      # the bar is dark ink
    printed = print_ink(ink, np.random.default_rng(1), 150)
    assert 0.5 < printed[100:110, 50:150].mean() <= 1 and printed[:90].max() < 0.05
