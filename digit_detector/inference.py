"""Page inference: tiled digit maps and the list of detected digits in page coordinates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from digit_detector.forward import detector_maps
from digit_detector.model import DigitDetector
from digit_detector.page import load_page
from digit_detector.prepare import (
    PreparedPage,
    local_maxima,
    maps_scale_evidence,
    prepare_page,
)
from digit_detector.words import digits_in_words

DIGIT_COLUMNS = ["x", "y", "digit", "score", "x0", "y0", "x1", "y1"]
DEFAULT_THRESHOLD = 0.45
"""Minimum map value of a detected digit (target blobs peak at 1; training fits the output
gain to the targets, which leaves uncertain peaks below 1): the best of 0.25-0.5 by F1 on new
pages in the training typefaces."""
TILE = 320
"""Side of the square tiles a page's maps are computed on, px (plus the margins). Smaller
tiles keep the activations in the processor's caches and outweigh their larger margins: on
this 2-core machine 256-384 px tiles ran the maps of the 6 pages of ``bench/bench_page_step.py``
(about 1000 x 1450 px) in 10-20 % less time than 512 px tiles, 320 among the fastest in both
of two runs of 7 repetitions."""
SMALLER_SCALE = 0.74
"""The second working scale tried for a page, relative to the glyph-height estimate."""


@dataclasses.dataclass
class Detection:
    """Everything inference produced for one page.

    Attributes
    ----------
    prepared : the page at working scale, see :class:`~digit_detector.PreparedPage`.
    maps : (10, h, w) float32 digit maps at working scale.
    digits : one row per detected digit, columns ``DIGIT_COLUMNS`` (page px).
    """

    prepared: PreparedPage
    maps: torch.Tensor
    digits: pd.DataFrame


def digit_maps(detector: DigitDetector, prepared: PreparedPage, *, tile: int = TILE
               ) -> torch.Tensor:
    """Digit maps (10, h, w) of a prepared page, computed tile by tile without gradients.

    Each tile is run with a margin of half the receptive field, so the result equals one pass
    over the whole page while memory stays bounded by the tile size. Only the part of a tile
    within half the receptive field of its ink is run (:func:`_reached_by_ink`): a bias-free
    network maps zero input to exactly zero, and the paper around a page's print is exactly 0.
    """
    image = prepared.image[0, 0]
    height, width = image.shape
    margin = detector.config.receptive_field_px // 2
    maps = torch.zeros((10, height, width), dtype=torch.float32)
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            reached = _reached_by_ink(image, (y0, min(y0 + tile, height)),
                                      (x0, min(x0 + tile, width)), margin)
            if reached is not None:
                (top, bottom), (left, right) = reached
                maps[:, top:bottom, left:right] = _window_maps(detector, image, reached, margin)
    return maps


def _window_maps(detector: DigitDetector, image: torch.Tensor, window, margin: int):
    """Digit maps (10, y1 - y0, x1 - x0) of the window ((y0, y1), (x0, x1)) of ``image``
    (h, w), run on the window with ``margin`` px of context on every side (less at the page
    border, where the convolutions' zero padding is the page's own)."""
    (top, bottom), (left, right) = window
    in_top, in_left = max(0, top - margin), max(0, left - margin)
    patch = image[in_top : bottom + margin, in_left : right + margin]
    out = detector_maps(detector, patch[None, None].float())[0]
    return out[:, top - in_top : bottom - in_top, left - in_left : right - in_left]


def _reached_by_ink(image: torch.Tensor, rows: tuple[int, int], columns: tuple[int, int],
                    margin: int):
    """The part ((y0, y1), (x0, x1)) of the output window ``rows`` x ``columns`` of ``image``
    (h, w) within ``margin`` px of ink, rows and columns separately: the bounding box of the
    window's possibly non-zero maps (None when no ink reaches the window)."""
    in_y0, in_x0 = max(0, rows[0] - margin), max(0, columns[0] - margin)
    window = image[in_y0 : rows[1] + margin, in_x0 : columns[1] + margin]
    inked_rows = torch.nonzero(window.any(dim=1))[:, 0]
    if len(inked_rows) == 0:
        return None
    inked_columns = torch.nonzero(window.any(dim=0))[:, 0]
    return (_reach(inked_rows, in_y0, rows, margin),
            _reach(inked_columns, in_x0, columns, margin))


def _reach(inked: torch.Tensor, offset: int, span: tuple[int, int], margin: int):
    """Indices (start, stop) within ``span`` that lie within ``margin`` of the inked indices
    ``inked`` (sorted, counted from ``offset``)."""
    first, last = offset + int(inked[0]), offset + int(inked[-1])
    return max(span[0], first - margin), min(span[1], last + 1 + margin)


def find_digits(
    maps: torch.Tensor,
    prepared: PreparedPage,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    digit_height_px: float | None = None,
    digit_pitch_px: float | None = None,
    keep_in_words: bool = False,
) -> pd.DataFrame:
    """Detected digits: local maxima of the strongest map above ``threshold``, less the numbers
    set inside words (letters read as digits, :mod:`digit_detector.words`) unless
    ``keep_in_words``.

    Parameters
    ----------
    maps : (10, h, w) digit maps at working scale.
    prepared : the page the maps belong to (for the conversion to page coordinates).
    threshold : minimum map value of a detection (target blobs peak at 1).
    digit_height_px, digit_pitch_px : digit size at working scale (defaults 12 and 8); set the
        suppression radius (0.4 pitch), the box size and the reach of a word.

    Returns
    -------
    DataFrame with columns x, y (digit centre, page px), digit (0-9), score (map value) and
    the box x0, y0, x1, y1 (page px), sorted by y then x.
    """
    height_px = digit_height_px or 12.0
    pitch_px = digit_pitch_px or 8.0
    strongest, label = maps.max(dim=0)
    radius = max(1, int(round(0.4 * pitch_px)))
    peaks = local_maxima(strongest, radius) & (strongest > threshold)
    ys, xs = torch.nonzero(peaks, as_tuple=True)
    if len(ys) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in DIGIT_COLUMNS}).astype(
            {"digit": "int64"})
    digits = label[ys, xs]
    fine_x, fine_y = _refine(maps, digits, ys, xs)
    if not keep_in_words:
        kept = ~digits_in_words(prepared.image[0, 0].numpy(), strongest.numpy(), fine_x, fine_y,
                                pitch_px, height_px)
        ys, xs, digits = (values[torch.from_numpy(kept)] for values in (ys, xs, digits))
        fine_x, fine_y = fine_x[kept], fine_y[kept]
    page_x, page_y = prepared.to_page_coords(fine_x, fine_y)
    half_w, half_h = 0.45 * pitch_px, 0.5 * height_px
    corner_ax, corner_ay = prepared.to_page_coords(fine_x - half_w, fine_y - half_h)
    corner_bx, corner_by = prepared.to_page_coords(fine_x + half_w, fine_y + half_h)
    table = pd.DataFrame({
        "x": page_x,
        "y": page_y,
        "digit": digits.numpy().astype(np.int64),
        "score": strongest[ys, xs].numpy().astype(np.float64),
        "x0": np.minimum(corner_ax, corner_bx),
        "y0": np.minimum(corner_ay, corner_by),
        "x1": np.maximum(corner_ax, corner_bx),
        "y1": np.maximum(corner_ay, corner_by),
    })
    return table.sort_values(["y", "x"], ignore_index=True)


def _refine(maps, digits, ys, xs):
    """Sub-pixel peak positions: a parabola through the log of the peak and its two
    neighbours along each axis (exact for a Gaussian blob), offsets clamped to half a pixel."""
    height, width = maps.shape[1:]

    def log_value(yy, xx):
        return torch.log(maps[digits, yy.clamp(0, height - 1), xx.clamp(0, width - 1)]
                         .double().clamp_min(1e-12))

    def offset(before, centre, after):
        curvature = before - 2 * centre + after
        step = torch.where(curvature < 0, 0.5 * (before - after) / curvature.clamp_max(-1e-12),
                           torch.zeros_like(centre))
        return step.clamp(-0.5, 0.5)

    centre = log_value(ys, xs)
    dx = offset(log_value(ys, xs - 1), centre, log_value(ys, xs + 1))
    dy = offset(log_value(ys - 1, xs), centre, log_value(ys + 1, xs))
    return (xs + dx).numpy(), (ys + dy).numpy()


def detect(
    page: str | Path | np.ndarray,
    detector: DigitDetector,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    tile: int = TILE,
    scale: float | None = None,
    rotation: int | None = None,
) -> Detection:
    """Detect the digits of a page (a path or a uint8 grey array): prepare, maps, peaks.

    ``threshold`` is the minimum map value of a digit; ``scale`` and ``rotation`` override the
    automatic choice (working px per page px, degrees counter-clockwise). An automatic scale is
    the one the page's analysis crops read best at (see
    :func:`~digit_detector.prepare.choose_scale_and_rotation`) or, when the crops show too few
    digits to tell, the glyph-height estimate or ``SMALLER_SCALE`` times it
    (:func:`_better_of_two_scales`).
    """
    grey = load_page(page) if isinstance(page, (str, Path)) else page
    prepared = prepare_page(grey, detector, scale=scale, rotation=rotation)
    maps = digit_maps(detector, prepared, tile=tile)
    if scale is None and not prepared.scale_from_evidence:
        prepared, maps = _better_of_two_scales(grey, detector, prepared, maps, tile)
    config = detector.config
    digits = find_digits(maps, prepared, threshold=threshold,
                         digit_height_px=config.digit_height_px,
                         digit_pitch_px=config.digit_pitch_px)
    return Detection(prepared, maps, digits)


def _better_of_two_scales(grey, detector, prepared, maps, tile):
    """The page at its estimated scale or at ``SMALLER_SCALE`` times it, with its maps.

    The glyph-height estimate errs towards too large a scale when a page's figures are tall
    for its type (lining figures, small x-heights), and the detector then misses digits printed
    larger than it was trained on while letters start to answer like digits. The smaller
    scale is kept when its evidence (:func:`~digit_detector.prepare.maps_scale_evidence`:
    digit pairs times mean peak height) is at least ``SMALLER_SCALE ** 2`` times that of the
    estimate: this bias toward the smaller scale was chosen on held-out-typeface synthetic
    pages, where plain "more evidence" still picks too large scales.
    """
    config = detector.config
    smaller = prepare_page(grey, detector, scale=prepared.scale * SMALLER_SCALE,
                           rotation=prepared.rotation)
    smaller_maps = digit_maps(detector, smaller, tile=tile)
    smaller_evidence = maps_scale_evidence(smaller_maps, config)
    if smaller_evidence / SMALLER_SCALE**2 > maps_scale_evidence(maps, config):
        return smaller, smaller_maps
    return prepared, maps
