"""The faster page step gives the same results as the plain one: the detector run as fused
oneDNN convolutions (the module's maps to float rounding), maps computed only where ink reaches
them, the upright ink reused from the scale and rotation choice. Known answers on small pages;
bit-for-bit where the claim is identity."""

import numpy as np
import pandas as pd
import pytest
import torch
from test_detector_fixtures import render_table

import digit_detector.forward as forward
import digit_detector.inference as inference
import digit_detector.prepare as prepare
from digit_detector import DigitDetector, detect, digit_maps, prepare_page
from digit_detector.model import DetectorConfig
from digit_detector.weights import load_detector


def random_detector(seed=0):
    torch.manual_seed(seed)
    return DigitDetector(DetectorConfig()).eval()


def plain_maps(detector, batch):
    """The module called as it is, layer by layer (the reference)."""
    with torch.no_grad():
        return detector(batch)


def assert_same_maps(maps, reference):
    """Equal to float rounding: within 1e-5 of the largest value (float32 sums of a few hundred
    products in another order differ by about 1e-7 of it)."""
    assert reference.abs().max() > 0
    torch.testing.assert_close(maps, reference, rtol=0,
                               atol=1e-5 * float(reference.abs().max()))


def test_fused_layers_give_the_module_output():
    detector = random_detector(2)
    batch = torch.rand(3, 1, 70, 90)
    batch[1] = 0
    batch[2, :, 20:50, 30:60] = 0
    assert forward._runs_fused(detector, batch)
    maps = forward.detector_maps(detector, batch)
    assert_same_maps(maps, plain_maps(detector, batch))
    assert torch.equal(maps[1], torch.zeros_like(maps[1]))  # bias-free: blank in, blank out


def test_fused_layers_follow_changed_weights():
    """The packed weights are made again when a weight is changed in place or replaced."""
    detector = random_detector(6)
    batch = torch.rand(2, 1, 48, 40)
    before = forward.detector_maps(detector, batch)
    with torch.no_grad():
        detector.layers[2].weight.mul_(-1)
    assert_same_maps(forward.detector_maps(detector, batch), plain_maps(detector, batch))
    replaced = detector.layers[4].weight.detach().clone().neg_()  # new, at the same version
    assert replaced._version == detector.layers[4].weight._version
    detector.layers[4].weight = torch.nn.Parameter(replaced)
    after = forward.detector_maps(detector, batch)
    assert_same_maps(after, plain_maps(detector, batch))
    assert not torch.allclose(after, before)


def test_fused_layers_fall_back_where_they_cannot_run(monkeypatch):
    detector = random_detector(3)
    batch = torch.rand(1, 1, 40, 40)
    assert forward._runs_fused(detector, batch)
    assert not forward._runs_fused(detector.double(), batch.double())
    detector.float()
    two_relus = torch.nn.Sequential(*detector.layers[:2], torch.nn.ReLU(), *detector.layers[2:])
    assert not forward._convolutions_and_relus(list(two_relus))
    assert not forward._convolutions_and_relus(list(detector.layers[1:]))  # ReLU first
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not forward._runs_fused(detector, batch)
    assert torch.equal(forward.detector_maps(detector, batch), plain_maps(detector, batch))


def _islands_page(detector, ink):
    prepared = prepare_page(np.full(ink.shape[-2:], 255, np.uint8), detector, scale=1,
                            rotation=0)
    prepared.image = ink
    return prepared


@pytest.mark.parametrize("tile", [32, 128, 512])
def test_maps_run_only_near_ink_and_equal_one_pass(monkeypatch, tile):
    detector = random_detector(1)
    margin = detector.config.receptive_field_px // 2
    ink = torch.zeros(1, 1, 256, 256)
    ink[..., 5:9, 60:70] = torch.rand(4, 10)  # near the top border
    ink[..., 125:128, 100:103] = torch.rand(3, 3)  # just above a 32/128 px tile boundary
    ink[..., 210:240, 220:256] = torch.rand(30, 36)  # against the right border
    run, blocked = [], prepare.detector_maps

    def counting(net, batch):
        run.append(batch.shape[-1] * batch.shape[-2])
        return blocked(net, batch)

    monkeypatch.setattr(inference, "detector_maps", counting)
    maps = digit_maps(detector, _islands_page(detector, ink), tile=tile)
    assert_same_maps(maps, plain_maps(detector, ink)[0])
    if tile == 128:  # the blank paper between the islands was not run
        assert sum(run) < ink.numel() / 2
    assert margin == 15


def test_reach_is_the_window_part_within_the_margin_of_ink():
    image = torch.zeros(100, 100)
    image[40, 70] = 1
    assert inference._reached_by_ink(image, (0, 50), (50, 100), 15) == ((25, 50), (55, 86))
    assert inference._reached_by_ink(image, (0, 24), (0, 50), 15) is None
    assert inference._reached_by_ink(image, (50, 100), (0, 100), 15) == ((50, 56), (55, 86))
    assert inference._reached_by_ink(image, (56, 100), (0, 100), 15) is None


def test_upright_ink_from_the_choice_is_the_ink_of_the_page():
    detector = random_detector(4)
    page, _ = render_table(rows=6, seed=3, width=300)
    for grey in (page, np.ascontiguousarray(np.rot90(page))):
        chosen = prepare_page(grey, detector)
        again = prepare_page(grey, detector, scale=chosen.scale, rotation=chosen.rotation)
        assert torch.equal(chosen.image, again.image)


def test_upright_ink_is_reused_and_turned_ink_is_recomputed(monkeypatch):
    """The shortcut's fallback: a page chosen turned, or at a scale its crops chose, gets its
    ink computed afresh."""
    detector = random_detector(5)
    page = np.full((80, 60), 255, np.uint8)
    page[20:30, 10:50] = 0
    calls = []
    ink = prepare.inference_ink
    monkeypatch.setattr(prepare, "inference_ink", lambda *a: calls.append(a[:2]) or ink(*a))
    for turn, crop_pairs, computed_afresh in ((0, 0, 0), (90, 0, 1), (0, 9, 1)):
        monkeypatch.setattr(prepare, "_response", lambda g, d, b, s, turn=turn: prepare.Reading(
            9 * ((g.shape == page.shape) == (turn == 0)), 0))
        monkeypatch.setattr(prepare, "_crop_reading",
                            lambda g, d, b, scale, pairs=crop_pairs: (pairs, 1.0))
        calls.clear()
        prepared = prepare_page(page, detector)
        assert prepared.rotation == turn
        assert prepared.scale_from_evidence == (crop_pairs > 0)
        full_page = [(grey.shape, scale) for grey, scale in calls if max(grey.shape) >= 60]
        assert len(full_page) == 3 + computed_afresh  # one per rotation (+ the final ink)
        if computed_afresh:
            assert full_page[-1][1] == prepared.scale


def test_detections_on_a_rendered_table_are_those_of_the_plain_module(monkeypatch):
    """The page step's digits on a small page with known digits: found, and the same as the
    detector called layer by layer finds (scores to float rounding)."""
    detector = load_detector()
    detector.eval()
    page, boxes = render_table(rows=8, seed=5, width=380)
    fast = detect(page, detector)
    monkeypatch.setattr(prepare, "detector_maps", plain_maps)
    monkeypatch.setattr(inference, "detector_maps", plain_maps)
    plain = detect(page, detector)
    pd.testing.assert_frame_equal(fast.digits, plain.digits, check_exact=False, rtol=1e-5)
    assert (fast.prepared.scale, fast.prepared.rotation) == (plain.prepared.scale,
                                                            plain.prepared.rotation)
    assert_same_maps(fast.maps, plain.maps)
    assert len(fast.digits) >= 0.8 * len(boxes)
