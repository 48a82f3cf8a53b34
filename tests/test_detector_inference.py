"""Page preparation, tiled maps, peak finding and coordinates, with known answers."""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from test_detector_fixtures import render_table

from digit_detector import DigitDetector, digit_maps, find_digits, inference, prepare, prepare_page
from digit_detector.model import DetectorConfig
from digit_detector.prepare import (
    INK_GAMMA,
    cell_sums,
    count_digit_pairs,
    glyph_height,
    inference_ink,
    local_maxima,
    maps_scale_evidence,
    page_glyphs,
    page_ink,
    resize,
    scanner_bed,
)


def random_detector(seed=0):
    torch.manual_seed(seed)
    return DigitDetector(DetectorConfig()).eval()


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.7])
@pytest.mark.parametrize("rotation", [0, 90, -90, 180])
def test_working_coordinates_map_back_to_the_page(scale, rotation):
    grey = np.full((300, 200), 230, np.uint8)
    grey[50:56, 120:126] = 20  # a dark square centred on page pixel (122.5, 52.5)
    prepared = prepare_page(grey, random_detector(), scale=scale, rotation=rotation)
    ink = prepared.image[0, 0].numpy()
    expected_shape = (round(300 * scale), round(200 * scale))
    assert ink.shape == (expected_shape if rotation % 180 == 0 else expected_shape[::-1])
    ys, xs = np.nonzero(ink > 0.3)
    weights = ink[ys, xs]
    x, y = prepared.to_page_coords((xs * weights).sum() / weights.sum(),
                                   (ys * weights).sum() / weights.sum())
    assert abs(x - 122.5) < 0.6 and abs(y - 52.5) < 0.6
    back_x, back_y = prepared.to_working_coords(x, y)
    assert back_x == pytest.approx((xs * weights).sum() / weights.sum())
    assert back_y == pytest.approx((ys * weights).sum() / weights.sum())


def test_page_ink_is_zero_on_uneven_paper_and_high_on_ink():
    rows = np.linspace(250, 170, 400)[:, None]  # strong lighting gradient
    grey = np.repeat(rows, 300, axis=1).astype(np.uint8)
    grey += np.random.default_rng(0).integers(0, 6, grey.shape, dtype=np.uint8)
    grey[100:112, 100:103] = 40
    grey[300:312, 200:203] = 20
    ink = page_ink(grey, 1.0, 12.0)
    assert ink.dtype == np.float32
    assert ink[100:112, 100:103].min() > 0.7 and ink[300:312, 200:203].min() > 0.7
    paper = np.ones_like(ink, dtype=bool)
    paper[95:117, 95:108] = False
    paper[295:317, 195:208] = False
    assert ink[paper].max() == 0.0


def _ink_pixel_by_pixel(grey, scale, digit_height_px):
    """The ink of :func:`page_ink`'s docstring computed on every pixel, with numpy's
    percentile and median of the float darkness (the slow reference; its float32 percentile
    may differ from the histogram's in the last bit)."""
    resized = resize(grey, scale)
    side = int(2.5 * digit_height_px) | 1
    paper = cv2.dilate(resized, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    darkness = paper.astype(np.float32) - resized.astype(np.float32)
    contrast = max(float(np.percentile(darkness, 99.5)), 40.0)
    floor = min(max(0.15 * contrast, 2.5 * float(np.median(darkness))), 0.5 * contrast)
    return np.clip((darkness - floor) / (contrast - floor), 0.0, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_page_ink_from_the_histogram_equals_the_ramp_on_every_pixel(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 300, 2)
    grey = (255 - rng.exponential(rng.uniform(2, 80), (height, width))).clip(0, 255)
    grey = grey.astype(np.uint8)  # mostly paper, some ink: contrast and floor both vary
    scale = float(rng.choice([0.37, 1.0, 1.6]))
    expected = _ink_pixel_by_pixel(grey, scale, 9.0)
    np.testing.assert_allclose(page_ink(grey, scale, 9.0), expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(inference_ink(grey, scale, 9.0),
                               np.power(expected, INK_GAMMA, dtype=np.float32), rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(40, 57), (3, 25, 31), (2, 10, 8, 9), (0, 6, 6)])
@pytest.mark.parametrize("radius", [1, 3])
def test_local_maxima_are_those_of_max_pooling(shape, radius):
    values = torch.from_numpy(np.random.default_rng(radius).random(shape, dtype=np.float32)
                              .round(1) - 0.5)  # ties and negative values, up to the borders
    images = values.reshape(-1, 1, *shape[-2:])
    pooled = torch.nn.functional.max_pool2d(images, 2 * radius + 1, stride=1, padding=radius)
    expected = (images >= pooled).reshape(shape)
    found = local_maxima(values, radius)
    assert found.dtype == torch.bool and found.shape == values.shape
    assert torch.equal(found, expected)
    assert 0 < int(found.sum()) < found.numel() or found.numel() == 0


def test_the_detector_reads_faint_strokes_lifted_and_paper_and_full_ink_unchanged():
    grey = np.full((120, 160), 230, np.uint8)
    grey[20:60, 20:40] = 20  # a block of full ink
    grey[20:40, 60:62] = 150  # a hairline, faint after normalisation
    plain = page_ink(grey, 1.0, 12.0)
    read = inference_ink(grey, 1.0, 12.0)
    assert read.dtype == np.float32
    faint = plain[25, 60]
    assert 0.1 < faint < 0.9 and read[25, 60] == pytest.approx(faint**INK_GAMMA, rel=1e-6)
    assert read[25, 60] > faint + 0.03
    np.testing.assert_array_equal(read[plain == 0], 0.0)
    np.testing.assert_array_equal(read[plain == 1], 1.0)
    prepared = prepare_page(grey, random_detector(), scale=1.0, rotation=0)
    np.testing.assert_array_equal(prepared.image[0, 0].numpy(), read)


def test_tiled_maps_equal_one_pass_and_skip_blank_tiles():
    detector = random_detector(1)
    image = torch.rand(1, 1, 150, 170)
    image[..., :70, :] = 0  # blank top band
    prepared = prepare_page(np.full((150, 170), 255, np.uint8), detector, scale=1, rotation=0)
    prepared.image = image
    with torch.no_grad():
        whole = detector(image)[0]
    tiled = digit_maps(detector, prepared, tile=32)
    torch.testing.assert_close(tiled, whole, rtol=1e-4, atol=1e-5)
    assert torch.count_nonzero(tiled[:, : 70 - detector.config.receptive_field_px // 2]) == 0


def _blob(maps, digit, x, y, peak=1.0, sigma=2.0):
    ys, xs = torch.meshgrid(torch.arange(maps.shape[1]), torch.arange(maps.shape[2]),
                            indexing="ij")
    maps[digit] += peak * torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))


def test_find_digits_recovers_blobs_with_subpixel_accuracy():
    grey = np.full((100, 120), 255, np.uint8)
    prepared = prepare_page(grey, random_detector(), scale=0.5, rotation=0)
    maps = torch.zeros(10, 50, 60)
    truth = [(3, 10.0, 12.0), (7, 18.4, 12.0), (0, 40.0, 30.3), (9, 50.0, 40.0)]
    for digit, x, y in truth:
        _blob(maps, digit, x, y)
    _blob(maps, 5, 30.0, 40.0, peak=0.3)  # too weak
    maps[2] += 0.2 * maps[3]  # a weaker competing class under the 3
    found = find_digits(maps, prepared, threshold=0.5)
    assert list(found.columns) == ["x", "y", "digit", "score", "x0", "y0", "x1", "y1"]
    assert sorted(found.digit) == sorted(d for d, _, _ in truth)
    for digit, x, y in truth:
        row = found[found.digit == digit].iloc[0]
        # page px = (working px + 0.5) / 0.5 - 0.5
        assert row.x == pytest.approx((x + 0.5) * 2 - 0.5, abs=0.25)
        assert row.y == pytest.approx((y + 0.5) * 2 - 0.5, abs=0.25)
        assert row.x0 < row.x < row.x1 and row.y0 < row.y < row.y1
        assert row.score == pytest.approx(1.0, abs=0.05)


def test_find_digits_on_empty_maps():
    prepared = prepare_page(np.full((40, 40), 255, np.uint8), random_detector(), scale=1,
                            rotation=0)
    found = find_digits(torch.zeros(10, 40, 40), prepared)
    assert len(found) == 0 and found.digit.dtype == np.int64


def test_glyph_height_measures_rendered_type():
    grey, boxes = render_table(rows=14, size=40, words=False)
    expected = float(np.median(boxes.y1 - boxes.y0))
    assert glyph_height(grey) == pytest.approx(expected, rel=0.15)
    assert glyph_height(np.full((200, 200), 255, np.uint8)) is None
    assert isinstance(boxes, pd.DataFrame)


def test_glyph_height_of_faint_type_on_a_dark_scanner_bed():
    grey, boxes = render_table(rows=14, size=40, words=False)
    faint = (235 - 0.35 * (235 - grey.astype(np.float32))).astype(np.uint8)  # type at ~160
    side = grey.shape[1] // 6
    framed = cv2.copyMakeBorder(faint, side, side, side, side, cv2.BORDER_CONSTANT, value=20)
    expected = float(np.median(boxes.y1 - boxes.y0))
    assert glyph_height(framed) == pytest.approx(expected, rel=0.15)


def test_scanner_bed_is_a_large_dark_region_at_the_edge():
    dark = np.zeros((200, 300), np.uint8)
    dark[:, :20] = 255  # bed along the left edge: 6.7 % of the image
    dark[80:120, 130:170] = 255  # a large blot inside the page (2.7 %) is no bed
    dark[0:3, 200:203] = 255  # a speck at the edge is no bed
    bed = scanner_bed(*cv2.connectedComponentsWithStats(dark, connectivity=8)[1:3])
    assert bed[:, :20].all() and bed.sum() == 200 * 20
    dark[:, :20] = 0
    assert scanner_bed(*cv2.connectedComponentsWithStats(dark, connectivity=8)[1:3]) is None


def test_count_digit_pairs_known_answer():
    strongest = torch.zeros(2, 40, 60)
    for x in (5, 13, 21):  # a three-digit number at pitch 8: two digits have a right neighbour
        strongest[0, 10, x] = 0.9
    strongest[0, 30, 5] = strongest[0, 30, 25] = 0.9  # too far apart
    strongest[0, 20, 40] = 0.9
    strongest[0, 26, 48] = 0.9  # one pitch right but 6 px lower (> 0.3 x 12 px)
    strongest[1, 10, 5] = 0.9
    strongest[1, 12, 14] = 0.9  # 9 px right, 2 px lower: a pair
    strongest[1, 30, 5] = 0.9
    strongest[1, 30, 13] = 0.4  # too weak to count
    assert count_digit_pairs(strongest, pitch_px=8.0, height_px=12.0) == 3
    # at pitch 16: x 5 -> 21 in row 10 and x 5 -> 25 in row 30
    assert count_digit_pairs(strongest, pitch_px=16.0, height_px=12.0) == 2


def test_scale_evidence_is_pairs_times_mean_peak_height():
    config = DetectorConfig(digit_pitch_px=8.0, digit_height_px=12.0)
    maps = torch.zeros(10, 40, 60)
    for digit, (x, height) in enumerate([(5, 1.0), (13, 0.8), (21, 0.6)]):
        maps[digit, 10, x] = height  # a three-digit number: two pairs
    maps[7, 30, 45] = 0.4  # below the peak threshold: neither a pair nor in the mean
    assert maps_scale_evidence(maps, config) == pytest.approx(2 * 0.8)
    maps[3, 30, 5] = 0.6  # a lone peak lowers the mean only
    assert maps_scale_evidence(maps, config) == pytest.approx(2 * 0.75)
    assert maps_scale_evidence(torch.zeros(10, 40, 60), config) == 0.0


@pytest.mark.parametrize(("first", "retry", "chosen"), [
    ({0: 0, 90: 1, -90: 0}, None, 0),  # one stray pair is no evidence
    ({0: 0, 90: 3, -90: 0}, None, 90),
    ({0: 2, 90: 5, -90: 0}, None, 0),  # a turn must beat three times the upright score
    ({0: 2, 90: 0, -90: 7}, None, -90),
    ({0: 10, 90: 40, -90: 0}, None, 90),  # strong evidence: no second reading
    ({0: 12, 90: 40, -90: 0}, None, 0),  # upright evidence this strong: the turns are not read
    ({0: 0, 90: 5, -90: 0}, {0: 25, 90: 2, -90: 1}, 0),  # ten crops missed the table
    ({0: 0, 90: 1, -90: 1}, {0: 2, 90: 17, -90: 4}, 90),
    ({0: 0, 90: 1, -90: 0}, {0: 0, 90: 5, -90: 0}, 0),  # 5 pairs on 20 crops: under 3 per 10
])
def test_rotation_rule(monkeypatch, first, retry, chosen):
    """Scores are digit pairs on the analysis crops: upright is read first and settles the
    rotation with UPRIGHT_SETTLES pairs; with fewer than WEAK_EVIDENCE pairs on every turn,
    each turn is read again on RETRY_CROPS crops (``retry``; None: as many pairs per crop as
    the first reading), where a turn needs MIN_TURNED_EVIDENCE per CROPS crops."""
    import digit_detector.prepare as prepare

    page = np.full((60, 80), 255, np.uint8)
    page[0, 0] = 0  # marks the top-left corner, so each turn is known by where it went
    readings = []

    def boxes(grey, scale, height, ink=None, crops=prepare.CROPS):
        return [(0, 1, 0, 1)] * crops

    def response(grey, detector, crops, scale):
        turn = _turn_of(grey, page)
        readings.append(len(crops))
        if turn == 180:  # no unturnable pairs: these pages are not upside down
            return prepare.Reading(first[0], 0)
        if len(crops) == prepare.CROPS:
            return prepare.Reading(first[turn], 0)
        return prepare.Reading(retry[turn] if retry else first[turn] * len(crops) / prepare.CROPS,
                               0)

    monkeypatch.setattr(prepare, "_inked_boxes", boxes)
    monkeypatch.setattr(prepare, "_response", response)
    _, rotation = prepare.choose_scale_and_rotation(page, random_detector())
    assert rotation == chosen
    weak = max(first.values()) < prepare.WEAK_EVIDENCE
    last = retry if weak and retry else first
    upside_down_check = [prepare.UPSIDE_DOWN_CROPS] if chosen == 0 and last[0] > 0 else []
    if first[0] >= prepare.UPRIGHT_SETTLES:
        assert readings == [prepare.CROPS] + upside_down_check
    else:
        assert readings == [prepare.CROPS] * 3 + ([prepare.RETRY_CROPS] * 3 if weak else []) \
            + upside_down_check


def test_a_turn_whose_pairs_do_not_mix_digits_is_no_table():
    """Nearly all pairs among the unturnable digits (2, 3, 4, 5, 7): no table read upright."""
    Reading = prepare.Reading
    upright = Reading(5, 0)
    assert prepare._preferred_rotation({0: upright, 90: Reading(12, 5)}, prepare.CROPS) == 90
    assert prepare._preferred_rotation({0: upright, 90: Reading(12, 12)}, prepare.CROPS) == 0
    assert prepare._preferred_rotation({0: upright, 90: Reading(12, 11)}, prepare.CROPS) == 0
    assert prepare._preferred_rotation({0: upright, 90: Reading(20, 18)}, prepare.CROPS) == 90
    # too few pairs to judge how they mix: the turn counts by its score alone
    assert prepare._preferred_rotation({0: Reading(1, 0), 90: Reading(4, 4)},
                                       prepare.CROPS) == 90


def _turn_of(grey, page):
    """How ``page``, whose top-left pixel alone is black, was turned to give ``grey``."""
    if grey.shape == page.shape:
        return 0 if grey[0, 0] == 0 else 180
    return 90 if grey[-1, 0] == 0 else -90


@pytest.mark.parametrize(("upright", "turned", "chosen"), [
    ((30, 10), (20, 0), 0),  # upright shows many unturnable pairs: not read turned
    ((30, 2), (30, 9), 180),
    ((30, 2), (30, 8), 180),  # twice the upright's 2 on 10 crops, counted on 20: 8
    ((30, 2), (30, 7), 0),
    ((12, 0), (12, 5), 180),
    ((12, 0), (12, 4), 0),  # too few to turn
    ((0, 0), (30, 20), 0),  # nothing upright: prose or a blank page, not read turned
    ((2, 0), (30, 20), 0),  # two pairs on 20 crops (a prose page's letters): not read turned
    ((3, 0), (30, 20), 180),
])
def test_upside_down_rule(monkeypatch, upright, turned, chosen):
    """A page that reads upright (turns not preferred), shows UPSIDE_DOWN_MIN_PAIRS digit pairs
    but fewer than UPRIGHT_UNTURNABLE unturnable ones is read turned by 180 degrees on
    UPSIDE_DOWN_CROPS crops and turned when those show UPSIDE_DOWN_EVIDENCE unturnable pairs and
    UPSIDE_DOWN_PREFERENCE times the upright's, counted on as many crops."""
    import digit_detector.prepare as prepare

    page = np.full((60, 80), 255, np.uint8)
    page[0, 0] = 0
    readings = []
    monkeypatch.setattr(prepare, "_inked_boxes",
                        lambda grey, scale, height, ink=None, crops=prepare.CROPS:
                        [(0, 1, 0, 1)] * crops)

    def response(grey, detector, crops, scale):
        turn = _turn_of(grey, page)
        readings.append((turn, len(crops)))
        return prepare.Reading(*{0: upright, 180: turned}.get(turn, (0, 0)))

    monkeypatch.setattr(prepare, "_response", response)
    scale, rotation = prepare.choose_scale_and_rotation(page, random_detector())
    assert rotation == chosen
    read_turned = (180, prepare.UPSIDE_DOWN_CROPS) in readings
    crops = prepare.RETRY_CROPS if sum(upright) < prepare.WEAK_EVIDENCE else prepare.CROPS
    assert (0, crops) in readings
    assert read_turned == (
        upright[0] * prepare.UPSIDE_DOWN_CROPS >= prepare.UPSIDE_DOWN_MIN_PAIRS * crops
        and upright[1] * prepare.CROPS < prepare.UPRIGHT_UNTURNABLE * crops)


def tent(peak_step, height, slope=4):
    """Crop readings (pairs, mean peak height 1) as a function of the scale step (power of
    ``SCALE_STEP`` times the estimate): ``height`` pairs at ``peak_step``, ``slope`` fewer a
    step."""
    return lambda step: (max(0, height - slope * abs(step - peak_step)), 1.0)


@pytest.mark.parametrize(("readings", "chosen", "read"), [
    # coarse 0.54x (16 pairs) beats 0.86x (12) and 1.36x (0); its neighbours: 0.63x has 20
    (tent(-3, 20), -3, [-4, -1, 2, -5, -3]),
    (tent(1, 20), 1, [-4, -1, 2, 1, 3]),
    (tent(2, 20), 2, [-4, -1, 2, 1, 3]),
    # equal pairs everywhere: the detector's surer peaks decide (pairs x mean peak height)
    ((lambda step: (10, 1 / (1 + abs(step - 1)))), 1, [-4, -1, 2, 1, 3]),
    # the first scales show 3 pairs, a neighbour 4: under MIN_SCALE_PAIRS, no choice
    (tent(0, 4, slope=1), None, [-4, -1, 2, -2, 0]),
    (tent(0, 5, slope=1), 0, [-4, -1, 2, -2, 0]),
    # 2 pairs at most on the first scales: the neighbours are not read
    (tent(-1, 2), None, [-4, -1, 2]),
])
def test_scale_by_evidence_rule(monkeypatch, readings, chosen, read):
    made = []

    def reading(grey, detector, boxes, scale):
        step = round(np.log(scale / 0.3) / np.log(prepare.SCALE_STEP))
        assert scale == pytest.approx(0.3 * prepare.SCALE_STEP**step)
        made.append(step)
        return readings(step)

    monkeypatch.setattr(prepare, "_crop_reading", reading)
    result = prepare._scale_by_evidence(None, None, 0.3, [(0, 1, 0, 1)])
    assert made == read
    assert result == (None if chosen is None else pytest.approx(0.3 * prepare.SCALE_STEP**chosen))


@pytest.mark.parametrize("crop_pairs", [0, 30])
def test_detect_tries_a_second_scale_only_when_the_crops_did_not_settle_it(monkeypatch,
                                                                           crop_pairs):
    page, _ = render_table(rows=6, seed=3, width=300)
    monkeypatch.setattr(prepare, "_crop_reading", lambda g, d, b, scale: (crop_pairs, 1.0))
    scales = []
    maps = inference.digit_maps
    monkeypatch.setattr(inference, "digit_maps",
                        lambda det, prepared, tile: scales.append(prepared.scale)
                        or maps(det, prepared, tile=tile))
    detection = inference.detect(page, random_detector())
    estimate = prepare.estimate_scale(np.rot90(page, k=detection.prepared.rotation // 90),
                                      random_detector())
    if crop_pairs:
        assert scales == [pytest.approx(estimate * prepare.SCALE_STEP**-5)]
    else:
        assert scales == [pytest.approx(estimate),
                          pytest.approx(estimate * inference.SMALLER_SCALE)]
    assert detection.prepared.scale_from_evidence == bool(crop_pairs)
    assert detection.prepared.scale in scales


def test_cell_sums_known_values():
    values = np.arange(35, dtype=np.float32).reshape(5, 7)
    sums = cell_sums(values, 3)  # one whole cell down, two across; the rest is left out
    assert sums.tolist() == [[0 + 1 + 2 + 7 + 8 + 9 + 14 + 15 + 16, 3 + 4 + 5 + 10 + 11 + 12
                              + 17 + 18 + 19]]
    assert cell_sums(values, 8).tolist() == [[values.sum()]]  # smaller than a cell: padded


def test_the_upside_down_reading_places_its_crops_on_the_turned_pages_ink(monkeypatch):
    """The 180-degree reading borrows the upright page's ink, turned: its crops lie on ink."""
    import digit_detector.prepare as prepare

    page = np.full((400, 300), 255, np.uint8)
    page[20:120, 30:130] = 0  # ink in the top-left corner only
    page[0, 0] = 0  # tells the turns apart (_turn_of)
    crops_read = {}

    def response(grey, detector, boxes, scale):
        turn = _turn_of(grey, page)
        crops_read[turn] = [grey[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes]
        return prepare.Reading(5, 0) if turn == 0 else prepare.Reading(0, 0)

    monkeypatch.setattr(prepare, "_response", response)
    prepare.choose_scale_and_rotation(page, random_detector(), scale=1.0)
    assert crops_read[180]
    assert all((crop < 128).any() for crop in crops_read[180])


def test_glyphs_measured_once_give_the_turned_page_its_own_height():
    """A page's ink components measured upright give the height of the page turned by 90
    degrees either way (their widths), exactly as measuring the turned page does."""
    grey, _ = render_table(rows=14, size=40, words=True)
    glyphs = page_glyphs(grey)
    for turn in (1, -1):
        turned = np.ascontiguousarray(np.rot90(grey, k=turn))
        assert glyphs.median_height(sideways=True) == glyph_height(turned)
        assert page_glyphs(turned).median_height(sideways=True) == glyph_height(grey)
    assert glyphs.median_height(sideways=True) != glyph_height(grey)
