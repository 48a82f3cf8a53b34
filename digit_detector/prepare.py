"""Bringing a page to the detector's working scale and upright rotation.

The working scale makes printed digits ``config.digit_height_px`` high. It is first estimated
from the median height of the page's glyph-like connected ink components (cheap, any
resolution), which follows the letters: figures tall or small for their type (lining figures,
small x-heights, a table set smaller than the text around it) put it off by 0.5-2x. The
rotation (0, +90, -90 degrees) is the one whose inked crops show the most digit pairs one pitch
apart (the detector is trained to stay silent on turned digits); a page that reads upright but
shows few of the digits that read as no digit upside down is also read turned by 180 degrees
(:func:`_upside_down`). The same crops then settle
the scale: read at a few scales around the estimate, the one at which they read best as printed
numbers is taken when they show enough digit pairs (:func:`_scale_by_evidence`). Otherwise
(prose, title pages, tables the crops missed) the estimate stands, the detector tolerates
0.7-1.4x errors (``digit_detector.augmentation.SCALE_JITTER``), and page inference
(:func:`digit_detector.detect`) also tries a smaller scale on the whole page.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import cv2
import numpy as np
import torch

from digit_detector.forward import detector_maps
from digit_detector.model import DigitDetector

ROTATIONS = (0, 90, -90)
UPSIDE_DOWN = 180
ANALYSIS_SIDE = 1600
BED_SHARE = 0.01
"""Least share of a page image that a dark region touching its edge must cover to count as
scanner bed (:func:`scanner_bed`): a bed framing a page covers several per cent, a glyph, rule
or ornament cut by the image's edge far less."""
CROP_SIDE = 64
"""Side of one analysis crop at the estimated working scale, px (about 7 digit heights)."""
CROPS = 10
"""Analysis crops per candidate rotation."""
WEAK_EVIDENCE = 8
"""When no rotation shows this many digit pairs on its ``CROPS`` crops, every rotation is read
again on ``RETRY_CROPS`` crops: ten crops can all miss a sparse table among headings and
ornaments. Chosen on the development corpora (200 pages, seed 101; 120 pages in training
faces, seed 303; 60 lining pages): table pages read at a wrong rotation 6 -> 4 of 268, every
other page as before."""
RETRY_CROPS = 20
UPRIGHT_SETTLES = 12
"""An upright reading with this many digit pairs on its ``CROPS`` crops settles the rotation,
and the turns are not read (nor their scales estimated): on the development corpora no sideways
page showed more than 4 pairs upright (26 pages), no page with 12 was read turned, and 42 % of
the pages (most tables) have 12."""
INKED_SHARE = 0.02
"""Windows with less ink than this share of the inkiest window's count as blank."""
UNTURNABLE_DIGITS = (2, 3, 4, 5, 7)
"""Digits that read as no digit upside down (0, 1 and 8 read as themselves, 6 and 9 as each
other): their pairs tell a page turned by +90 degrees from one turned by -90."""
UPRIGHT_UNTURNABLE = 7
"""An upright reading with this many pairs among ``UNTURNABLE_DIGITS`` on ``CROPS`` crops (in
proportion on more) is not upside down: on the development corpus (242 upright pages of seed
505, each also turned by 180 degrees) no upside-down page read upright showed more than 6;
46 % of the upright pages show fewer and are also read turned (and stay upright)."""
UPSIDE_DOWN_CROPS = 20
"""Analysis crops read on the page turned by 180 degrees: on ten, the unturnable pairs are too
few to tell (the best rule on ten turned 75 % of the upside-down table pages of the development
corpus, or turned upright ones)."""
UPSIDE_DOWN_MIN_PAIRS = 3
"""Digit pairs an upright reading must show (on ``UPSIDE_DOWN_CROPS`` crops, in proportion on
fewer) to be read turned by 180 degrees at all: a prose page read upright shows a pair or two
of letters, and upside down, letters turned read as more (the real Piccolomini prose page: 2
upright). An upside-down table shows its 0, 1, 6, 8 and 9: on the development corpus the
minimum turns the same 86 % of the upside-down table pages as none."""
UPSIDE_DOWN_EVIDENCE = 5
UPSIDE_DOWN_PREFERENCE = 2.0
"""A page is turned by 180 degrees when its turned reading shows at least
``UPSIDE_DOWN_EVIDENCE`` unturnable pairs and ``UPSIDE_DOWN_PREFERENCE`` times as many as its
upright reading (counted on as many crops; at least one): on the development corpus, 91 % of
the upside-down table pages (12 digit pairs or more upright) turned, and none of the 242
upright pages."""
UPRIGHT_PREFERENCE = 3.0
"""A turned page must respond this many times more strongly than upright to be turned."""
MIN_TURNED_EVIDENCE = 3
"""...and at least this strongly on ``CROPS`` crops, in proportion on more (see
:func:`_response`): one stray pair on crops that missed an upright table turned it (1 of 150
upright held-out table pages)."""
MIXED_PAIRS = 5
UNTURNABLE_ONLY = 0.9
"""A turned reading of ``MIXED_PAIRS`` digit pairs or more of which more than this share are
among ``UNTURNABLE_DIGITS`` is not a table turned upright, and does not count (a table mixes
its digits). On the development corpora (880 pages: seeds 505, 101, 303 and 101 in lining
figures) the right turn of the 32 sideways tables showed a median 32 % and at most 72 %,
while 12 of the 43 wrong turns with 5 pairs or more showed 80-100 %, among them the two
upright tables read turned (7 of 7 and 12 of 12 pairs): table pages read at a wrong rotation
4 -> 2, all pages 15 -> 13, every share from 0.75 to 0.95 and minimum from 1 to 5 alike."""
SCALE_STEP = 1.165
"""Ratio of neighbouring scales tried on the analysis crops (:func:`_scale_by_evidence`)."""
COARSE_SCALE_STEPS = (-4, -1, 2)
"""The first scales tried, as powers of ``SCALE_STEP`` times the estimate (0.54, 0.86, 1.36);
the best of them is then compared with its two neighbours one step either side, which reaches
0.47-1.58 times the estimate."""
MIN_COARSE_PAIRS = 3
"""Digit pairs the crops must show at one of the first scales for the neighbours to be tried."""
MIN_SCALE_PAIRS = 5
"""Digit pairs the crops must show at some tried scale for the crops to settle the scale; with
fewer (prose, title pages, tables the crops missed) the estimate stands and page inference
compares it with a smaller scale on the whole page. The steps and both minima were chosen on
the development corpora (264 table pages: seed 101 in source-serif-4 and vollkorn-italic and
their lining styles, seed 303 in cormorant-garamond and eb-garamond-italic): scale within
0.8-1.25x of the truth's on 80 % of the pages with the estimate, on 93 % with this choice."""
INK_GAMMA = 0.7
"""The detector reads ink ** INK_GAMMA at inference (see :func:`inference_ink`)."""


@dataclasses.dataclass
class PreparedPage:
    """A page ready for the detector.

    Attributes
    ----------
    image : (1, 1, h, w) float32 ink in [0, 1] (0 = paper; :func:`inference_ink`) at working
        scale, upright.
    scale : working px per page px (nominal; x and y differ by at most a rounding pixel).
    rotation : degrees counter-clockwise the page was turned to be upright (0, 90 or -90).
    page_shape : (H, W) of the original page, px.
    scale_from_evidence : whether the detector's reading of the page's crops chose the scale
        (:func:`_scale_by_evidence`); page inference then tries no other scale.
    """

    image: torch.Tensor
    scale: float
    rotation: int
    page_shape: tuple[int, int]
    scale_from_evidence: bool = False

    def to_page_coords(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Map working-image pixel coordinates (x right, y down) to page pixel coordinates."""
        height, width = self.page_shape
        scaled_h, scaled_w = _scaled_shape(self.page_shape, self.scale)
        x, y = turn_coords(tuple(self.image.shape[-2:]), -self.rotation, x, y)
        page_x = (x + 0.5) * width / scaled_w - 0.5
        page_y = (y + 0.5) * height / scaled_h - 0.5
        return page_x, page_y

    def to_working_coords(self, page_x, page_y) -> tuple[np.ndarray, np.ndarray]:
        """Map page pixel coordinates to the upright working image: the inverse of
        :meth:`to_page_coords`."""
        return working_coords(self.page_shape, self.scale, self.rotation, page_x, page_y)


def working_coords(page_shape, scale: float, rotation: int, page_x, page_y
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Page pixel coordinates -> the upright working frame of a page of ``page_shape`` (H, W)
    prepared at ``scale`` (working px per page px) and turned by ``rotation`` degrees: what a
    page analysis keeps is enough to read its digits upright without the image."""
    height, width = page_shape
    scaled_h, scaled_w = _scaled_shape(page_shape, scale)
    x = (np.asarray(page_x, dtype=np.float64) + 0.5) * scaled_w / width - 0.5
    y = (np.asarray(page_y, dtype=np.float64) + 0.5) * scaled_h / height - 0.5
    return turn_coords((scaled_h, scaled_w), rotation, x, y)


def turn_coords(shape, rotation: int, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x right, y down) in an image of ``shape`` (H, W) -> the same points
    in that image turned by ``rotation`` degrees counter-clockwise (a multiple of 90, as
    ``np.rot90``)."""
    height, width = shape
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    for _ in range((rotation // 90) % 4):
        x, y = y, width - 1 - x
        height, width = width, height
    return x, y


def prepare_page(
    grey: np.ndarray,
    detector: DigitDetector,
    *,
    scale: float | None = None,
    rotation: int | None = None,
) -> PreparedPage:
    """Rescale, rotate and normalise a uint8 grey page (H, W) for ``detector``.

    Parameters
    ----------
    grey : uint8 (H, W), ink dark.
    detector : gives the working digit height and scores the candidate scales and rotations.
    scale, rotation : working px per page px and degrees counter-clockwise; ``None`` = estimate.
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected a uint8 grey page (H, W), got {grey.dtype} {grey.shape}")
    ink, from_evidence = None, False
    if scale is None or rotation is None:
        scale, rotation, ink, from_evidence = _choose(grey, detector, scale, rotation)
    if ink is None:
        ink = inference_ink(grey, scale, detector.config.digit_height_px)
        ink = np.ascontiguousarray(np.rot90(ink, k=rotation // 90))
    return PreparedPage(torch.from_numpy(ink)[None, None], float(scale), int(rotation),
                        (grey.shape[0], grey.shape[1]), from_evidence)


def page_ink(grey: np.ndarray, scale: float, digit_height_px: float) -> np.ndarray:
    """Ink intensity in [0, 1] (float32) of ``grey`` resized by ``scale``.

    The paper level is a local maximum over about 2.5 digit heights (so uneven lighting and
    yellowed paper read as 0); faint texture (below 15 % of the ink contrast or 2.5 times the
    median paper darkness, but at most half the contrast, for crops that are mostly ink) is
    cut to exactly 0, which lets inference skip blank tiles.
    """
    darkness = _darkness(grey, scale, digit_height_px)
    return _ink_levels(darkness)[darkness]


def inference_ink(grey: np.ndarray, scale: float, digit_height_px: float) -> np.ndarray:
    """:func:`page_ink` ** ``INK_GAMMA``: what the detector reads on a page (float32, [0, 1]).

    The power lifts faint strokes (0.3 -> 0.43) and keeps paper at 0 and full ink at 1. Light
    typefaces lose their hairlines to area averaging at the 9 px working digit height, and the
    detector, trained on plain ink re-inked with stroke weights of gamma 0.5-2, then misses
    digits. Training keeps the plain ink, so the shipped weights still reproduce.

    Chosen with the 80-epoch weights on 100 new held-out-typeface synthetic pages (not the
    test corpus), table F1 and false digits on non-table pages: 0.923 / 175 at gamma 1, 0.931
    at 0.85, 0.943 / 200 at 0.7, 0.947 / 228 at 0.5; a lower threshold instead (0.35 at gamma
    1) gave 0.936 / 401. On new pages in the training typefaces and on 20 pages of another
    held-out typeface, 0.7 changes F1 by -0.001 and +0.002, 0.5 by -0.002 and -0.001. The
    shipped 120-epoch weights gain as much on the 100 pages: 0.928 / 173 at gamma 1, 0.948 /
    181 at 0.7.
    """
    darkness = _darkness(grey, scale, digit_height_px)
    return np.power(_ink_levels(darkness), INK_GAMMA, dtype=np.float32)[darkness]


def _darkness(grey: np.ndarray, scale: float, digit_height_px: float) -> np.ndarray:
    """How much darker than the local paper each pixel of ``grey`` resized by ``scale`` is
    (uint8, the paper level being the brightest pixel within about 2.5 digit heights)."""
    resized = resize(grey, scale)
    side = int(2.5 * digit_height_px) | 1
    paper = cv2.dilate(resized, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    return cv2.subtract(paper, resized)


def _ink_levels(darkness: np.ndarray) -> np.ndarray:
    """The ink (float32, [0, 1]) of each of the 256 darkness levels of ``darkness`` (uint8):
    a ramp from the faint-texture floor to the contrast (:func:`page_ink`). The page's
    statistics come from its histogram, and a page's ink is a lookup: the same values as the
    ramp applied to every pixel, at a fraction of the time."""
    counts = np.bincount(darkness.ravel(), minlength=256)
    contrast = max(_percentile(counts, 99.5), 40.0)
    floor = min(max(0.15 * contrast, 2.5 * _percentile(counts, 50.0)), 0.5 * contrast)
    ramp = (np.arange(256, dtype=np.float32) - floor) / (contrast - floor)
    return np.clip(ramp, 0.0, 1.0, out=ramp)


def _percentile(counts: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of the values whose histogram is ``counts``: linear
    interpolation between the order statistics around ``(n - 1) q / 100``, as ``np.percentile``
    (which, on float32 values, may differ in the last bit)."""
    cumulative = np.cumsum(counts)
    last = int(cumulative[-1]) - 1
    position = last * (q / 100)
    below = int(np.floor(position))
    low = float(np.searchsorted(cumulative, below, side="right"))
    high = float(np.searchsorted(cumulative, min(below + 1, last), side="right"))
    return low + (high - low) * (position - below)


def resize(grey: np.ndarray, scale: float) -> np.ndarray:
    """Resize by ``scale`` (area averaging when shrinking, bilinear when enlarging)."""
    height, width = _scaled_shape(grey.shape, scale)
    if (height, width) == grey.shape:
        return grey
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(grey, (width, height), interpolation=interpolation)


def _scaled_shape(shape, scale: float) -> tuple[int, int]:
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def glyph_height(grey: np.ndarray) -> float | None:
    """Median height of the glyph-like connected ink components of a page, in page px
    (:func:`page_glyphs`)."""
    return page_glyphs(grey).median_height()


@dataclasses.dataclass(frozen=True)
class Glyphs:
    """The bounding boxes of a page's connected ink components, measured once for every
    rotation: turned by 90 degrees, a component's width is its height.

    ``widths``, ``heights``, ``areas``: px of the page resized by ``factor`` (at most
    ``ANALYSIS_SIDE`` px a side); ``short_side``: that image's shorter side, px.
    """

    widths: np.ndarray
    heights: np.ndarray
    areas: np.ndarray
    short_side: int
    factor: float

    def median_height(self, *, sideways: bool = False) -> float | None:
        """Median height (page px) of the glyph-like components of the page upright or turned
        ``sideways``.

        Components under half the 90th percentile height (specks, dots, broken strokes) are
        left out: on a dirty scan they are many and would pull the median far down. Returns
        ``None`` when the page has fewer than 10 glyph-like components (blank or picture pages).
        """
        widths, heights = (self.heights, self.widths) if sideways else (self.widths, self.heights)
        limit = 0.1 * self.short_side
        glyph = (heights >= 4) & (heights <= limit) & (widths >= 2) & (widths <= 2 * heights)
        glyph &= self.areas >= 0.15 * widths * heights
        if glyph.sum() < 10:
            return None
        heights = heights[glyph]
        letters = heights[heights >= 0.5 * np.percentile(heights, 90)]
        return float(np.median(letters)) / self.factor


def page_glyphs(grey: np.ndarray) -> Glyphs:
    """The connected ink components of an upright page (:class:`Glyphs`). The ink is told from
    the paper by Otsu's threshold on the page without its scanner bed (:func:`scanner_bed`)."""
    factor = min(1.0, ANALYSIS_SIDE / max(grey.shape))
    small = resize(grey, factor)
    _, binary = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    bed = scanner_bed(labels, stats)
    if bed is not None:
        page = ~bed
        threshold, _ = cv2.threshold(small[page].reshape(-1, 1), 0, 255,
                                     cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
        binary = np.where((small <= threshold) & page, 255, 0).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    return Glyphs(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT],
                  stats[1:, cv2.CC_STAT_AREA], min(small.shape), factor)


def scanner_bed(labels: np.ndarray, stats: np.ndarray) -> np.ndarray | None:
    """Where the scanner bed around a page lies (bool, the shape of ``labels``), from the
    connected components of the page's dark pixels (``labels`` and ``stats`` as
    ``cv2.connectedComponentsWithStats`` gives them, label 0 the pixels not dark): the
    components touching the image's edge that cover at least ``BED_SHARE`` of it; None when
    there are none. On a page of light type framed by a dark bed, Otsu's threshold falls
    between bed and paper, the type reads as paper and the glyph height is lost."""
    height, width = labels.shape
    x0, y0 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[:, cv2.CC_STAT_WIDTH], y0 + stats[:, cv2.CC_STAT_HEIGHT]
    is_bed = (x0 == 0) | (y0 == 0) | (x1 == width) | (y1 == height)
    is_bed &= stats[:, cv2.CC_STAT_AREA] >= BED_SHARE * height * width
    is_bed[0] = False
    return is_bed[labels] if is_bed.any() else None


def estimate_scale(grey: np.ndarray, detector: DigitDetector) -> float:
    """Working px per page px from the page's glyph height (1.0 when it cannot be measured)."""
    return scale_for_glyphs(glyph_height(grey), detector)


def scale_for_glyphs(height: float | None, detector: DigitDetector) -> float:
    """Working px per page px for a page whose glyphs are ``height`` page px high (1.0 for
    None, a height that could not be measured)."""
    if height is None:
        return 1.0
    config = detector.config
    return float(np.clip(config.digit_height_px / (height * config.glyph_to_digit_height), 0.05, 4))


def choose_scale_and_rotation(
    grey: np.ndarray,
    detector: DigitDetector,
    *,
    scale: float | None = None,
    rotation: int | None = None,
) -> tuple[float, int]:
    """Pick the working scale and rotation of a page (each unless given).

    For every candidate rotation among ``ROTATIONS`` the scale is first estimated from the
    glyph height of the page turned that way (:func:`estimate_scale`; the page's ink components
    are measured once for all turns, :func:`page_glyphs`), and the rotation whose
    inked crops show the most digit pairs (see :func:`_response`) wins; upright gets
    ``UPRIGHT_PREFERENCE`` times its score, as most pages are upright, and a turn scoring under
    ``MIN_TURNED_EVIDENCE`` does not count; an upright reading of ``UPRIGHT_SETTLES`` pairs
    wins without the turns being read. The crops of the winner then settle the scale when
    they show digits enough (:func:`_scale_by_evidence`).
    """
    chosen_scale, chosen_rotation, _, _ = _choose(grey, detector, scale, rotation)
    return chosen_scale, chosen_rotation


def _choose(grey, detector, scale, rotation) -> tuple[float, int, np.ndarray | None, bool]:
    """:func:`choose_scale_and_rotation`, plus the page's :func:`inference_ink` at the chosen
    scale when the choice computed it upright (rotation 0, the common case; None otherwise),
    so that :func:`prepare_page` does not compute it again (the ink of a turned page differs
    from the turned ink by resampling, so only the upright one is kept), and whether the crops
    chose the scale."""
    candidates = ROTATIONS if rotation is None else (rotation,)
    if len(candidates) == 1 and scale is not None:
        return scale, candidates[0], None, False
    height_px = detector.config.digit_height_px
    scales, inks = {}, {}
    glyphs = page_glyphs(grey) if scale is None else None

    def estimate(turns):
        for turn in turns:
            turned = np.rot90(grey, k=turn // 90)
            scales[turn] = scale if glyphs is None else scale_for_glyphs(
                glyphs.median_height(sideways=turn % 180 != 0), detector)
            inks[turn] = inference_ink(turned, scales[turn], height_px)

    best = candidates[0]
    estimate([best])
    if len(candidates) > 1:
        crops = CROPS
        readings = _rotation_scores(grey, detector, scales, inks, crops, [best])
        if readings[best].score < UPRIGHT_SETTLES:
            estimate(candidates[1:])
            readings |= _rotation_scores(grey, detector, scales, inks, crops, candidates[1:])
            if max(reading.score for reading in readings.values()) < WEAK_EVIDENCE:
                crops = RETRY_CROPS
                readings = _rotation_scores(grey, detector, scales, inks, crops, candidates)
            best = _preferred_rotation(readings, crops)
        if best == 0 and _upside_down(grey, detector, scales, inks, readings[0], crops):
            best = UPSIDE_DOWN
    if scale is not None:
        return scale, best, inks.get(0) if best == 0 else None, False
    turned = np.rot90(grey, k=best // 90)
    boxes = _inked_boxes(turned, scales[best], height_px, inks[best])
    chosen = _scale_by_evidence(turned, detector, scales[best], boxes)
    if chosen is None:
        return scales[best], best, inks.get(0) if best == 0 else None, False
    return chosen, best, None, True


def _upside_down(grey, detector, scales, inks, upright: Reading, crops: int) -> bool:
    """Whether a page that reads best upright (``upright``: its reading on ``crops`` crops)
    is upside down: read turned by 180 degrees on ``UPSIDE_DOWN_CROPS`` crops when the upright
    reading shows digit pairs (``UPSIDE_DOWN_MIN_PAIRS``) but few unturnable ones
    (``UPRIGHT_UNTURNABLE``), and turned when that reading shows many more
    (``UPSIDE_DOWN_EVIDENCE``, ``UPSIDE_DOWN_PREFERENCE``). Sets
    the turn's scale and ink in ``scales`` and ``inks``: those of the upright page, turned (the
    glyph heights are the same; the ink only places the crops)."""
    per_crop = upright.unturnable / crops
    if (upright.pairs * UPSIDE_DOWN_CROPS < UPSIDE_DOWN_MIN_PAIRS * crops
            or per_crop * CROPS >= UPRIGHT_UNTURNABLE):
        return False
    scales[UPSIDE_DOWN] = scales[0]
    inks[UPSIDE_DOWN] = np.rot90(inks[0], k=2)
    turned = _rotation_scores(grey, detector, scales, inks, UPSIDE_DOWN_CROPS, [UPSIDE_DOWN])
    unturnable = turned[UPSIDE_DOWN].unturnable
    return (unturnable >= UPSIDE_DOWN_EVIDENCE
            and unturnable >= UPSIDE_DOWN_PREFERENCE * max(per_crop * UPSIDE_DOWN_CROPS, 1))


def _rotation_scores(grey, detector, scales, inks, crops: int, turns) -> dict[int, Reading]:
    """Digit pairs (:func:`_response`) on ``crops`` analysis crops of the page turned each of
    the ways ``turns`` (``inks``: each turn's :func:`inference_ink` at its scale)."""
    scores = {}
    for turn in turns:
        turned = np.rot90(grey, k=turn // 90)
        boxes = _inked_boxes(turned, scales[turn], detector.config.digit_height_px, inks[turn],
                             crops)
        scores[turn] = _response(turned, detector, boxes, scales[turn])
    return scores


def _scale_by_evidence(grey, detector, estimate: float, boxes) -> float | None:
    """The scale at which the page crops ``boxes`` read best as printed numbers
    (:func:`maps_scale_evidence`), among ``SCALE_STEP`` powers of ``COARSE_SCALE_STEPS`` times
    ``estimate`` and then the best one's two neighbours (when one of the first shows
    ``MIN_COARSE_PAIRS`` digit pairs); None when no tried scale shows ``MIN_SCALE_PAIRS``.

    The glyph-height estimate follows the page's letters, and figures are taller or shorter
    than letters by typeface (lining figures, small x-heights): the detector misses digits
    printed far off its working size and starts to answer to letters.
    """
    readings = {}

    def read(step: int) -> tuple[int, float]:
        if step not in readings:
            readings[step] = _crop_reading(grey, detector, boxes, estimate * SCALE_STEP**step)
        return readings[step]

    def evidence(step: int) -> float:
        pairs, strength = read(step)
        return pairs * strength

    coarse = max(COARSE_SCALE_STEPS, key=evidence)
    if max(pairs for pairs, _ in readings.values()) < MIN_COARSE_PAIRS:
        return None
    best = max((coarse - 1, coarse, coarse + 1), key=evidence)
    if max(pairs for pairs, _ in readings.values()) < MIN_SCALE_PAIRS:
        return None
    return estimate * SCALE_STEP**best


def _crop_reading(grey, detector, boxes, scale: float) -> tuple[int, float]:
    """Digit pairs and mean peak height (:func:`_pairs_and_strength`) of the page crops
    ``boxes`` read at ``scale``."""
    return _pairs_and_strength(_crop_maps(grey, detector, boxes, scale), detector.config)


def _crop_maps(grey, detector, boxes, scale: float) -> torch.Tensor:
    """Digit maps (N, 10, h, w) of the page crops ``boxes`` (page px: y0, y1, x0, x1), each
    prepared at ``scale`` (:func:`inference_ink`) and zero-padded to a common size."""
    crops = [inference_ink(grey[y0:y1, x0:x1], scale, detector.config.digit_height_px)
             for y0, y1, x0, x1 in boxes]
    return detector_maps(detector, _stack(crops))


def _preferred_rotation(readings: dict[int, Reading], crops: int) -> int:
    """The rotation with the most evidence (:attr:`Reading.score`): upright counts
    ``UPRIGHT_PREFERENCE`` times, and a turn does not count under ``MIN_TURNED_EVIDENCE`` per
    ``CROPS`` crops, nor when it reads like no table (:func:`_mixed_digits`)."""
    weighted = {turn: _weight(turn, reading, crops) for turn, reading in readings.items()}
    return max(weighted, key=weighted.get)


def _weight(turn: int, reading: Reading, crops: int) -> float:
    """How much a reading on ``crops`` crops of the page turned by ``turn`` counts."""
    if turn == 0:
        return reading.score * UPRIGHT_PREFERENCE
    counts = reading.score >= MIN_TURNED_EVIDENCE * crops / CROPS and _mixed_digits(reading)
    return float(reading.score) if counts else 0.0


def _mixed_digits(reading: Reading) -> bool:
    """Whether the pairs of a reading mix digits as a table does: not ``MIXED_PAIRS`` pairs or
    more that are nearly all (``UNTURNABLE_ONLY``) among ``UNTURNABLE_DIGITS``."""
    return reading.pairs < MIXED_PAIRS or reading.unturnable <= UNTURNABLE_ONLY * reading.pairs


class Reading(NamedTuple):
    """What the analysis crops of a page show at one rotation: digit pairs, and pairs among
    ``UNTURNABLE_DIGITS`` alone."""

    pairs: int
    unturnable: int

    @property
    def score(self) -> int:
        """The pairs, with the unturnable ones counted twice (see :func:`_response`)."""
        return self.pairs + self.unturnable


def _response(grey, detector, boxes, scale) -> Reading:
    """Confidently seen digit pairs (:func:`count_digit_pairs`) on the page crops ``boxes``
    at one scale, and the pairs among ``UNTURNABLE_DIGITS`` alone: a page upside down still
    shows pairs of 0, 1, 6, 8 and 9, but hardly any of the others."""
    config = detector.config
    maps = _crop_maps(grey, detector, boxes, scale)
    return Reading(maps_digit_pairs(maps, config),
                   maps_digit_pairs(maps[:, list(UNTURNABLE_DIGITS)], config))


def maps_digit_pairs(maps: torch.Tensor, config) -> int:
    """:func:`count_digit_pairs` on digit maps, (10, h, w) or (N, 10, h, w), at the working
    digit pitch and height of the detector ``config``."""
    return count_digit_pairs(_strongest(maps), config.digit_pitch_px, config.digit_height_px)


def maps_scale_evidence(maps: torch.Tensor, config) -> float:
    """How convincingly digit maps (10, h, w) read as printed numbers at their scale: the digit
    pairs of :func:`maps_digit_pairs` times the mean height of the detected peaks (0 without
    any). At a wrong scale fewer digits line up and the detector is less sure of those it sees;
    the product chose the better of two scales more often than the pairs alone (measured on
    held-out-typeface synthetic pages)."""
    pairs, strength = _pairs_and_strength(maps, config)
    return pairs * strength


def _pairs_and_strength(maps: torch.Tensor, config) -> tuple[int, float]:
    """Digit pairs (:func:`maps_digit_pairs`) of digit maps (10, h, w) or (N, 10, h, w) and
    the mean height of their detected peaks (0.0 without any)."""
    strongest = _strongest(maps)
    peaks = digit_peaks(strongest, config.digit_pitch_px)
    if not peaks.any():
        return 0, 0.0
    pairs = _paired_peaks(peaks, config.digit_pitch_px, config.digit_height_px)
    return pairs, float(strongest.numpy()[peaks].mean())


def _strongest(maps: torch.Tensor) -> torch.Tensor:
    """The strongest digit map per pixel, (10, h, w) or (N, 10, h, w) -> (N, h, w)."""
    return maps.amax(dim=-3).reshape(-1, *maps.shape[-2:])


def digit_peaks(strongest: torch.Tensor, pitch_px: float) -> np.ndarray:
    """Detected digits on (N, h, w) strongest-map images: local maxima (within 0.4
    ``pitch_px``) above 0.5, as a boolean array of the same shape."""
    radius = max(1, round(0.4 * pitch_px))
    return (local_maxima(strongest, radius) & (strongest > 0.5)).numpy()


def local_maxima(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Whether each pixel of float32 images (..., h, w) is the largest of the (2 ``radius`` +
    1)^2 square around it (ties included; the square clipped at the image border), as a bool
    tensor of the same shape: ``values >= max_pool2d(values, 2 radius + 1, stride 1, padding
    radius)``, with OpenCV's separable dilation (on the CPU some 50 times faster than torch's
    pooling of one channel, the same maxima)."""
    images = values.detach().cpu().reshape(-1, *values.shape[-2:]).numpy()
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    pooled = np.stack([cv2.dilate(image, kernel) for image in images]) if len(images) \
        else images
    return torch.from_numpy(images >= pooled).reshape(values.shape).to(values.device)


def count_digit_pairs(strongest: torch.Tensor, pitch_px: float, height_px: float) -> int:
    """Detected digits (:func:`digit_peaks`) with a detected right-hand neighbour, on (N, h, w)
    strongest-map images.

    The neighbour lies 0.75-1.25 ``pitch_px`` to the right and within 0.3 ``height_px``
    vertically. Digits of a number sit one pitch apart only at the right scale and rotation,
    while stray responses to letters or ornaments rarely line up so.
    """
    return _paired_peaks(digit_peaks(strongest, pitch_px), pitch_px, height_px)


def _paired_peaks(peaks: np.ndarray, pitch_px: float, height_px: float) -> int:
    rise = max(1, round(0.3 * height_px))
    lowest, highest = round(0.75 * pitch_px), round(1.25 * pitch_px)
    padded = np.pad(peaks, ((0, 0), (rise, rise), (0, highest)))
    height, width = peaks.shape[1:]
    neighbour = np.zeros_like(peaks)
    for dy in range(-rise, rise + 1):
        for dx in range(lowest, highest + 1):
            neighbour |= padded[:, rise + dy : rise + dy + height, dx : dx + width]
    return int((peaks & neighbour).sum())


def _inked_boxes(grey: np.ndarray, scale: float, digit_height_px: float,
                 ink: np.ndarray | None = None, crops: int = CROPS):
    """Page-px boxes (y0, y1, x0, x1) of ``crops`` square windows spread over the inked ones.

    The windows are spread evenly over the ink ranks of all windows holding at least
    ``INKED_SHARE`` of the inkiest one's ink: the very inkiest are headings, rules, ornaments
    and running text, while a table's numbers are often sparser. (Spreading over the upper
    half of the ranks only turned 13 of 18 turned synthetic table pages right, this 16, at the
    same cost and with all 150 upright ones still upright.) ``ink``: the page's
    :func:`inference_ink` at ``scale`` when the caller has it already.
    """
    side = min(int(round(CROP_SIDE / scale)), *grey.shape)
    if ink is None:
        ink = inference_ink(grey, scale, digit_height_px)
    cell = max(1, round(side * scale))
    sums = cell_sums(ink, cell)
    cols = sums.shape[1]
    ranked = np.argsort(sums, axis=None)[::-1]
    inked = ranked[: max(1, int(np.count_nonzero(sums > INKED_SHARE * sums.max())))]
    order = inked[np.unique(np.linspace(0, len(inked) - 1, crops).round().astype(int))]
    boxes = []
    for index in order:
        row, col = divmod(int(index), cols)
        y0 = min(int(row * cell / scale), grey.shape[0] - side)
        x0 = min(int(col * cell / scale), grey.shape[1] - side)
        boxes.append((y0, y0 + side, x0, x0 + side))
    return boxes


def cell_sums(values: np.ndarray, cell: int) -> np.ndarray:
    """Sums of ``values`` (h, w) over ``cell`` x ``cell`` cells, (rows, columns): the cells
    that fit, at least one each way (zero-padded when the image is smaller than a cell)."""
    rows, columns = max(1, values.shape[0] // cell), max(1, values.shape[1] // cell)
    cropped = np.zeros((rows * cell, columns * cell), dtype=values.dtype)
    part = values[: rows * cell, : columns * cell]
    cropped[: part.shape[0], : part.shape[1]] = part
    return cropped.reshape(rows, cell, columns, cell).sum(axis=(1, 3))


def _stack(crops) -> torch.Tensor:
    """Zero-pad crops to a common size and stack them as a (N, 1, h, w) tensor."""
    height = max(c.shape[0] for c in crops)
    width = max(c.shape[1] for c in crops)
    batch = np.zeros((len(crops), 1, height, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        batch[i, 0, : crop.shape[0], : crop.shape[1]] = crop
    return torch.from_numpy(batch)
