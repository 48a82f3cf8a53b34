"""Bringing a page to the detector's working scale and upright rotation.

The working scale makes printed digits ``config.digit_height_px`` high. It is estimated from
the median height of the page's connected ink components (cheap, any resolution), then a
correction factor and the rotation (0, +90, -90 degrees) are chosen by running the detector on
a few small, ink-rich crops and keeping the strongest confident response.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from digit_detector.model import DigitDetector

ROTATIONS = (0, 90, -90)
SCALE_FACTORS = (0.5, 0.7, 1.0, 1.4)
"""Candidate corrections of the estimated scale (the estimate is off by up to 2x on
degraded pages)."""
ANALYSIS_SIDE = 1600
CROP_SIDE = 80
CROPS = 3
UPRIGHT_PREFERENCE = 3.0
"""A turned page must respond this many times more strongly than upright to be turned."""


@dataclasses.dataclass
class PreparedPage:
    """A page ready for the detector.

    Attributes
    ----------
    image : (1, 1, h, w) float32 ink in [0, 1] (0 = paper) at working scale, upright.
    scale : working px per page px (nominal; x and y differ by at most a rounding pixel).
    rotation : degrees counter-clockwise the page was turned to be upright (0, 90 or -90).
    page_shape : (H, W) of the original page, px.
    """

    image: torch.Tensor
    scale: float
    rotation: int
    page_shape: tuple[int, int]

    def to_page_coords(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Map working-image pixel coordinates (x right, y down) to page pixel coordinates."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        height, width = self.page_shape
        scaled_h, scaled_w = _scaled_shape(self.page_shape, self.scale)
        if self.rotation == 90:
            x, y = scaled_w - 1 - y, x
        elif self.rotation == -90:
            x, y = y, scaled_h - 1 - x
        page_x = (x + 0.5) * width / scaled_w - 0.5
        page_y = (y + 0.5) * height / scaled_h - 0.5
        return page_x, page_y

    def to_page_length(self, length) -> np.ndarray:
        """Convert a length in working px to page px."""
        return np.asarray(length, dtype=np.float64) / self.scale


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
    if scale is None or rotation is None:
        scale, rotation = choose_scale_and_rotation(grey, detector, scale=scale, rotation=rotation)
    ink = page_ink(grey, scale, detector.config.digit_height_px)
    ink = np.ascontiguousarray(np.rot90(ink, k=rotation // 90))
    return PreparedPage(torch.from_numpy(ink)[None, None], float(scale), int(rotation),
                        (grey.shape[0], grey.shape[1]))


def page_ink(grey: np.ndarray, scale: float, digit_height_px: float) -> np.ndarray:
    """Ink intensity in [0, 1] (float32) of ``grey`` resized by ``scale``.

    The paper level is a local maximum over about 2.5 digit heights (so uneven lighting and
    yellowed paper read as 0); faint texture (below 15 % of the ink contrast or 2.5 times the
    median paper darkness) is cut to exactly 0, which lets inference skip blank tiles.
    """
    resized = resize(grey, scale)
    side = int(2.5 * digit_height_px) | 1
    paper = cv2.dilate(resized, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    darkness = paper.astype(np.float32) - resized.astype(np.float32)
    contrast = max(float(np.percentile(darkness, 99.5)), 40.0)
    floor = max(0.15 * contrast, 2.5 * float(np.median(darkness)))
    ink = (darkness - floor) / (contrast - floor)
    return np.clip(ink, 0.0, 1.0, out=ink)


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
    """Median height of the glyph-like connected ink components of a page, in page px.

    Returns ``None`` when the page has fewer than 10 such components (blank or picture pages).
    """
    factor = min(1.0, ANALYSIS_SIDE / max(grey.shape))
    small = resize(grey, factor)
    _, binary = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    widths, heights, areas = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT], stats[
        1:, cv2.CC_STAT_AREA]
    limit = 0.1 * min(small.shape)
    glyph = (heights >= 4) & (heights <= limit) & (widths >= 2) & (widths <= 2 * heights)
    glyph &= areas >= 0.15 * widths * heights
    if glyph.sum() < 10:
        return None
    return float(np.median(heights[glyph])) / factor


def estimate_scale(grey: np.ndarray, detector: DigitDetector) -> float:
    """Working px per page px from the page's glyph height (1.0 when it cannot be measured)."""
    height = glyph_height(grey)
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
    """Pick scale and rotation with the strongest detector response on a few ink-rich crops.

    The scale is searched upright among ``SCALE_FACTORS`` times :func:`estimate_scale` (unless
    given), then the rotation among ``ROTATIONS`` (unless given) at that scale, and the scale
    again if the page was turned. The score of a candidate is the sum of the per-pixel maximum
    over digit maps above 0.5 (half the blob peak), divided by the squared scale factor (a
    larger scale shows the detector more pixels of the same crops); upright gets
    ``UPRIGHT_PREFERENCE`` times its score, as most pages are upright.
    """
    base = estimate_scale(grey, detector) if scale is None else scale
    boxes = _ink_rich_boxes(grey, base, detector.config.digit_height_px)

    def best_scale(turn):
        if scale is not None:
            return scale
        scores = {f: _response(grey, detector, boxes, base * f, turn) / f
                  for f in SCALE_FACTORS}
        return base * max(scores, key=scores.get)

    chosen = best_scale(rotation or 0)
    if rotation is None:
        scores = {r: _response(grey, detector, boxes, chosen, r) for r in ROTATIONS}
        rotation = max(scores, key=scores.get)
        if rotation != 0:
            chosen = best_scale(rotation)
    return chosen, rotation


def _response(grey, detector, boxes, scale, rotation) -> float:
    """Confident detector response on the page crops ``boxes`` at one scale and rotation."""
    crops = [np.rot90(page_ink(grey[y0:y1, x0:x1], scale, detector.config.digit_height_px),
                      k=rotation // 90) for y0, y1, x0, x1 in boxes]
    with torch.no_grad():
        maps = detector(_stack(crops)).amax(dim=1)
    score = float(torch.relu(maps - 0.5).sum())
    return score * UPRIGHT_PREFERENCE if rotation == 0 else score


def _ink_rich_boxes(grey: np.ndarray, scale: float, digit_height_px: float):
    """Page-px boxes (y0, y1, x0, x1) of the ``CROPS`` inkiest square windows of the page."""
    side = min(int(round(CROP_SIDE / scale)), *grey.shape)
    ink = page_ink(grey, scale, digit_height_px)
    cell = max(1, round(side * scale))
    rows, cols = max(1, ink.shape[0] // cell), max(1, ink.shape[1] // cell)
    sums = ink[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).sum(axis=(1, 3))
    order = np.argsort(sums, axis=None)[::-1][:CROPS]
    boxes = []
    for index in order:
        row, col = divmod(int(index), cols)
        y0 = min(int(row * cell / scale), grey.shape[0] - side)
        x0 = min(int(col * cell / scale), grey.shape[1] - side)
        boxes.append((y0, y0 + side, x0, x0 + side))
    return boxes


def _stack(crops) -> torch.Tensor:
    """Zero-pad crops to a common size and stack them as a (N, 1, h, w) tensor."""
    height = max(c.shape[0] for c in crops)
    width = max(c.shape[1] for c in crops)
    batch = np.zeros((len(crops), 1, height, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        batch[i, 0, : crop.shape[0], : crop.shape[1]] = crop
    return torch.from_numpy(batch)
