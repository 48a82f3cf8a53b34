"""Letters read as digits inside words: a detected number with a letter right beside it.

Printed numbers stand apart: a table sets its cells off by spaces or rules, running text its
numbers by word spaces. A letter the detector reads as a digit (the o of "Mezzo" as 0, its zz
as 22, an o or a g in a line of prose) sits inside a word, a letter's gap from the next letter.
So a detected number (its digits linked by :func:`~digit_detector.reading.next_digits`, as
:func:`~digit_detector.reading.linked_components` groups them) is dropped with all its digits
when, within ``WORD_GAP`` digit heights of its ink on the left or the right, lies letter-high
ink on the same line (a letter, or a run of touching letters) that does not look like a digit
to the detector (its strongest map stays under ``DIGIT_LIKE``: a digit the detector missed
beside a number does not make it a word).

Everything is measured in the upright working frame, where digits are ``digit_height_px``
high whatever the scan. ``WORD_GAP`` and ``DIGIT_LIKE`` were chosen on the first 100 pages of
two development corpora (``tables synth --seed 101`` and ``--seed 505``, typefaces
source-serif-4 and vollkorn-italic), F1 of all detected digits / false digits on printed letters:

==============================  =============  =============
gap (heights), digit-like map   seed 101       seed 505
==============================  =============  =============
no rule                         0.9702 / 535   0.9806 / 634
0.25, 0.2                       0.9742 / 368   0.9884 / 300
0.25, 0.3                       0.9744 / 351   0.9890 / 266
0.25, 0.4                       0.9743 / 338   0.9887 / 252
0.35, 0.3                       0.9727 / 343   0.9876 / 253
0.5, 0.3                        0.9687 / 335   0.9872 / 240
0.7, 0.3                        0.9620 / 332   0.9864 / 236
==============================  =============  =============

A wider gap reaches true numbers set a word space from a label, and a lower digit-like map
drops numbers beside a digit the detector missed. A letter beside a number was first also at
most 1.6 pitches wide; letters of a word often touch, and counting letter-high ink of any width
took the same 100 pages from 0.9743 / 356 to 0.9779 / 225 and from 0.9888 / 272 to 0.9917 /
154, recall unchanged. (Dropping numbers whose own ink reaches far beyond their digits, letters
touching the ones read as digits, gained on seed 505 but cost recall on seed 101, 0.9745 ->
0.9682: not taken.)
"""

from __future__ import annotations

import cv2
import numpy as np

from digit_detector.reading import linked_components, next_digits

WORD_GAP = 0.25
"""Widest gap between a number's ink and a letter of its word, in digit heights."""
DIGIT_LIKE = 0.3
"""Strongest map value over a glyph at and above which it may be a missed digit, not a letter."""
INK_LEVEL = 0.5
"""Working-scale ink (0 paper, 1 full ink) from which a pixel belongs to a glyph."""
CORE = (0.25, 0.3)
"""Half width (pitches) and half height (digit heights) of the window around a digit's centre
whose ink is the digit's own."""
GLYPH_HEIGHTS = (0.4, 1.6)
"""Heights (digit heights) of ink that can be letters: no dot, hyphen or comma, no rule. Any
width: letters of a word often touch, and a run of them is one component."""
SAME_LINE = 0.5
"""Share of the lower of the two heights a glyph must overlap the number's ink vertically."""


def digits_in_words(ink: np.ndarray, strongest: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                    pitch_px: float, height_px: float) -> np.ndarray:
    """Which detected digits belong to numbers set inside words (module docstring).

    Parameters
    ----------
    ink : (h, w) float working-scale ink of the upright page, in [0, 1].
    strongest : (h, w) the strongest digit map per pixel (the detector's maps, same frame).
    xs, ys : (n,) digit centres in that frame, px.
    pitch_px, height_px : the detector's digit pitch and height at working scale.

    Returns a bool array (n,): True for a digit to drop.
    """
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    in_words = np.zeros(len(xs), dtype=bool)
    if len(xs) == 0:
        return in_words
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        (ink >= INK_LEVEL).astype(np.uint8), connectivity=8)
    owned = _digit_glyphs(labels, xs, ys, pitch_px, height_px)
    letter_sized = _letter_sized(stats, height_px)
    following = next_digits(np.column_stack([xs, ys]), pitch_px, height_px)
    for number in _numbers(linked_components(following)):
        glyphs = sorted(set().union(*(owned[i] for i in number)))
        if glyphs and _beside_a_letter(labels, stats, strongest, glyphs, letter_sized,
                                       WORD_GAP * height_px):
            in_words[number] = True
    return in_words


def _digit_glyphs(labels: np.ndarray, xs, ys, pitch_px: float, height_px: float) -> list[set]:
    """The ink components (labels) within each digit's core window (``CORE``)."""
    height, width = labels.shape
    half_w, half_h = CORE[0] * pitch_px, CORE[1] * height_px
    owned = []
    for x, y in zip(xs, ys, strict=True):
        y0, y1 = max(0, int(y - half_h)), min(height, int(y + half_h) + 1)
        x0, x1 = max(0, int(x - half_w)), min(width, int(x + half_w) + 1)
        owned.append(set(np.unique(labels[y0:y1, x0:x1]).tolist()) - {0})
    return owned


def _letter_sized(stats: np.ndarray, height_px: float) -> np.ndarray:
    """Per component label: letter-high (``GLYPH_HEIGHTS``). A detected digit within reach of
    a number on its line is no letter beside it but part of it: its centre lies within the step
    and rise of :func:`~digit_detector.reading.next_digits`."""
    height = stats[:, cv2.CC_STAT_HEIGHT]
    sized = (height >= GLYPH_HEIGHTS[0] * height_px) & (height <= GLYPH_HEIGHTS[1] * height_px)
    sized[0] = False
    return sized


def _numbers(component: np.ndarray) -> list[np.ndarray]:
    """Digit indices of each number, from each digit's component label."""
    order = np.argsort(component, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(component[order]) != 0])
    return np.split(order, starts[1:])


def _beside_a_letter(labels: np.ndarray, stats: np.ndarray, strongest: np.ndarray,
                     glyphs: list[int], letter_sized: np.ndarray, gap_px: float) -> bool:
    """Whether a letter lies within ``gap_px`` left or right of the ink of the components
    ``glyphs`` (a number's): a letter-sized component on the number's line (``SAME_LINE``)
    that does not look like a digit to the detector (``DIGIT_LIKE``)."""
    x0, y0, x1, y1 = _extent(stats, glyphs)
    reach = int(np.ceil(gap_px))
    beside = np.concatenate([labels[y0:y1, max(0, x0 - reach):x0].ravel(),
                             labels[y0:y1, x1:x1 + reach].ravel()])
    for label in np.unique(beside):
        if not letter_sized[label]:
            continue
        left, top, right, bottom = _extent(stats, [label])
        if min(y1, bottom) - max(y0, top) < SAME_LINE * min(y1 - y0, bottom - top):
            continue
        if strongest[top:bottom, left:right].max() < DIGIT_LIKE:
            return True
    return False


def _extent(stats: np.ndarray, labels: list[int]) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1; ends exclusive) of the components ``labels``, px."""
    left, top = stats[labels, cv2.CC_STAT_LEFT], stats[labels, cv2.CC_STAT_TOP]
    right = left + stats[labels, cv2.CC_STAT_WIDTH]
    bottom = top + stats[labels, cv2.CC_STAT_HEIGHT]
    return int(left.min()), int(top.min()), int(right.max()), int(bottom.max())
