"""Draw BiLRP explanations: two images side by side, red and blue curves between matched parts.

Implements the supplement's Algorithm 1: normalise the pooled relevance by ``(mean R^4)^(1/4)``,
soft-threshold at ``low``, clip at ``high`` and rescale to [-1, 1], draw every non-zero pair as a
curve of opacity ``|R|^power`` (red: supports the similarity, blue: contradicts it).
"""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

POSITIVE_COLOUR = np.array([215, 25, 28], dtype=float)
NEGATIVE_COLOUR = np.array([30, 80, 220], dtype=float)
BOX_COLOUR = (120, 120, 120)
OPACITY_LEVELS = 16
"""Link opacities are drawn in this many steps (all links of one step in one blend)."""
GREY_STEP = 8
"""Greys of the pages under the links are rounded to multiples of this (of 255)."""
PAPER_PERCENTILE = 90
"""The brightness percentile of a page taken as the colour of its paper."""
MAX_PAPER_GAIN = 1.6
"""Most a page is brightened to bring its paper to white."""
PAPER_TEXTURE = 48
"""Darkness (of 255, after the paper is brought to white) below which a pixel counts as paper:
texture, stains and show-through are not drawn under the links."""


def link_strengths(relevance, low=0.01, high=4.0, power=2.0):
    """Signed link strengths in [-1, 1] after Algorithm 1's normalisation and thresholds.

    Parameters
    ----------
    relevance : ndarray, shape (Ga, Gb)
        Pooled BiLRP relevance.
    low : float
        Sparsification level ``l`` (in units of the normalised relevance): smaller links vanish.
    high : float
        Saturation level ``h``: larger links are drawn at full colour.
    power : float
        Opacity exponent ``p``; larger values keep only the strongest links visible.

    Returns
    -------
    ndarray, shape (Ga, Gb)
        ``sign(R) * |R|^p`` after thresholding: 0 means no link, +-1 a saturated one.
    """
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high, got low={low}, high={high}")
    relevance = np.asarray(relevance, dtype=float)
    if relevance.size == 0:
        return relevance
    scale = np.mean(relevance**4) ** 0.25
    if scale == 0 or not np.isfinite(scale):
        return np.zeros_like(relevance)
    normalised = relevance / scale
    sparse = normalised - np.clip(normalised, -low, low)
    span = high - low
    clipped = np.clip(sparse, -span, span) / span
    return np.sign(clipped) * np.abs(clipped) ** power


def graded(relevance: np.ndarray, power: float = 2.0) -> np.ndarray:
    """Signed link strengths in [-1, 1]: ``sign(R) (|R| / max |R|) ** power``, the strongest
    link at full colour.

    Algorithm 1's normalisation (:func:`link_strengths`: by the fourth-power mean over all
    pairs, saturating at 4) suits the number picture's matrix; over the hundreds of thousands
    of super-pixel pairs of a page pair (the pixel picture), where the relevance sits in a few
    hundred, every one of the strongest 150 links passed the saturation and all were drawn
    alike (the strongest 150 of a demo pair span 1 to 0.36 of the largest)."""
    peak = np.abs(relevance).max() if relevance.size else 0.0
    if peak == 0:
        return np.zeros_like(relevance, dtype=float)
    return np.sign(relevance) * (np.abs(relevance) / peak) ** power


def render_pair(image_a, image_b, explanation, *, low=0.01, high=4.0, power=2.0, **style):
    """Draw a :class:`PairExplanation` over the two images, links between group centres.

    ``image_a`` and ``image_b`` are the inputs in the pixel frame of the explanation's centres:
    grey (H, W) or RGB (H, W, 3) arrays, uint8 as is, other types scaled by their own range.
    ``low``, ``high``, ``power``: see :func:`link_strengths`; ``style``: see :func:`draw_links`.
    Returns the picture as an RGB uint8 array.
    """
    strengths = link_strengths(explanation.relevance, low, high, power)
    return draw_links(image_a, image_b, explanation.centres_a, explanation.centres_b, strengths,
                      **style)


def render_box_links(image_a, image_b, boxes_a, boxes_b, relevance, *, low=0.01, high=4.0,
                     power=2.0, **style):
    """Draw links between given boxes (e.g. detected digits) instead of a grid.

    Parameters
    ----------
    boxes_a, boxes_b : array-like, shapes (Na, 4), (Nb, 4)
        Boxes as (x, y, width, height) in pixels of each image.
    relevance : ndarray, shape (Na, Nb)
        Relevance of each pair of boxes (e.g. pooled with ``box_labels``, background dropped).

    Other parameters as in :func:`render_pair`. Returns an RGB uint8 array.
    """
    boxes_a = np.asarray(boxes_a, dtype=float).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype=float).reshape(-1, 4)
    relevance = np.asarray(relevance, dtype=float)
    if relevance.shape != (len(boxes_a), len(boxes_b)):
        raise ValueError(
            f"relevance has shape {relevance.shape}, expected ({len(boxes_a)}, {len(boxes_b)}) "
            "for the given boxes"
        )
    strengths = link_strengths(relevance, low, high, power)
    return draw_links(image_a, image_b, _box_centres(boxes_a), _box_centres(boxes_b), strengths,
                      boxes_a=boxes_a, boxes_b=boxes_b, **style)


def draw_links(image_a, image_b, centres_a, centres_b, strengths, *, boxes_a=None, boxes_b=None,
               gap=20, line_width=1, bend=0.2, fade=0.45):
    """Place the images side by side and draw one curve per non-zero link.

    Parameters
    ----------
    centres_a, centres_b : ndarray, shapes (Ga, 2), (Gb, 2)
        Link end points as (row, column) in pixels of each image.
    strengths : ndarray, shape (Ga, Gb)
        Signed opacities in [-1, 1] (see :func:`link_strengths`).
    boxes_a, boxes_b : ndarray, optional
        Boxes (x, y, w, h) outlined in grey on each image.
    gap : int
        Blank pixels between the two images.
    line_width : int
        Curve thickness in pixels.
    bend : float
        Height of each curve's arc as a fraction of its length (0: straight lines).
    fade : float
        How much the images are lightened (0: unchanged, 1: white) so the links stand out.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
    """
    left, right = _faded_rgb(image_a, fade), _faded_rgb(image_b, fade)
    height, width, top_a, top_b, offset_b = side_by_side(left.shape, right.shape, gap)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    canvas[top_a:top_a + left.shape[0], :left.shape[1]] = left
    canvas[top_b:top_b + right.shape[0], offset_b:] = right
    for boxes, dx, dy in ((boxes_a, 0, top_a), (boxes_b, offset_b, top_b)):
        for x, y, w, h in [] if boxes is None else boxes:
            cv2.rectangle(canvas, (int(x + dx), int(y + dy)), (int(x + w + dx), int(y + h + dy)),
                          BOX_COLOUR, 1)
    strengths = np.asarray(strengths, dtype=float)
    pairs = np.argwhere(strengths != 0)
    values = strengths[pairs[:, 0], pairs[:, 1]]
    levels = np.ceil(np.abs(values) * OPACITY_LEVELS).astype(int)
    for sign, colour in ((1, POSITIVE_COLOUR), (-1, NEGATIVE_COLOUR)):
        curves_by_level = []
        for level in range(1, OPACITY_LEVELS + 1):
            chosen = pairs[(levels == level) & (np.sign(values) == sign)]
            curves = []
            for i, j in chosen:
                start = np.array([centres_a[i][1], centres_a[i][0] + top_a])
                end = np.array([centres_b[j][1] + offset_b, centres_b[j][0] + top_b])
                if np.isfinite(start).all() and np.isfinite(end).all():
                    curves.append(_curve(start, end, bend))
            curves_by_level.append(curves)
        _blend_curves(canvas, curves_by_level, colour, line_width)
    return canvas


def side_by_side(shape_a, shape_b, gap=20):
    """Layout of two images side by side, each centred vertically: ``(height, width, top_a,
    top_b, offset_b)`` in pixels (image A's left edge is at x = 0, image B's at ``offset_b``)."""
    height = max(shape_a[0], shape_b[0])
    offset_b = shape_a[1] + gap
    return (height, offset_b + shape_b[1], (height - shape_a[0]) // 2,
            (height - shape_b[0]) // 2, offset_b)


def save_png(path, image):
    """Write an RGB uint8 array as a PNG file."""
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(Path(path), format="PNG",
                                                             compress_level=3)


def _faded_rgb(image, fade):
    """``image`` as uint8 RGB lightened by ``fade``.

    Non-uint8 images are first stretched to 0-255. Yellowed or grey paper (the
    ``PAPER_PERCENTILE`` brightness) is brought to white, faint texture (``PAPER_TEXTURE``)
    dropped and greys rounded to steps of ``GREY_STEP``: the paper of a scan then neither hides
    the links nor bloats the PNG.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"images must be (H, W) or (H, W, 3) arrays, got shape {image.shape}")
    values = image.astype(np.float32)
    if image.dtype != np.uint8:
        span = values.max() - values.min()
        values = (values - values.min()) / (span if span > 0 else 1) * 255
    paper = float(np.percentile(values, PAPER_PERCENTILE))
    if paper > 0:
        values = np.minimum(values * min(255 / paper, MAX_PAPER_GAIN), 255)
    darkness = 255 - values
    darkness[darkness < PAPER_TEXTURE] = 0
    darkness = np.round(darkness * (1 - fade) / GREY_STEP) * GREY_STEP
    return np.broadcast_to((255 - darkness).astype(np.uint8), (*image.shape[:2], 3))


def _box_centres(boxes):
    """(row, column) centres of (x, y, w, h) boxes."""
    return np.stack([boxes[:, 1] + boxes[:, 3] / 2, boxes[:, 0] + boxes[:, 2] / 2], axis=1)


def _curve(start, end, bend, n_points=32):
    """Quadratic Bezier from ``start`` to ``end`` (x, y), arching upwards, shape (n, 2)."""
    middle = (start + end) / 2
    control = middle - np.array([0.0, bend * np.linalg.norm(end - start)])
    t = np.linspace(0, 1, n_points)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end


def _blend_curves(canvas, curves_by_level, colour, line_width):
    """Alpha-blend anti-aliased polylines of one colour into ``canvas`` (uint8 RGB, in place).

    ``curves_by_level[k]`` holds the curves of opacity ``(k + 1) / OPACITY_LEVELS``. All are
    drawn into one opacity mask, weaker levels first (a stronger link covers a weaker one where
    they cross), and blended once, so a picture with many links costs one blend per colour.
    """
    if not any(curves_by_level):
        return
    mask = np.zeros(canvas.shape[:2], dtype=np.uint8)
    for level, curves in enumerate(curves_by_level, start=1):
        if curves:
            shifted = [np.round(curve * 16).astype(np.int32) for curve in curves]
            opacity = round(255 * level / len(curves_by_level))
            cv2.polylines(mask, shifted, False, opacity, line_width, cv2.LINE_AA, shift=4)
    rows, columns = np.nonzero(mask)
    alpha = (mask[rows, columns].astype(np.float64) / 255)[:, None]
    blended = canvas[rows, columns] * (1 - alpha) + colour * alpha
    canvas[rows, columns] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
