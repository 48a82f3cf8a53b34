"""Numbers set inside words are letters read as digits: known answers on drawn glyph boxes, and
the rule's effect on real print (the 1604 table's word columns)."""

import numpy as np
import torch

from digit_detector import DigitDetector, find_digits, prepare_page
from digit_detector.model import DetectorConfig
from digit_detector.words import DIGIT_LIKE, WORD_GAP, digits_in_words

HEIGHT, PITCH = 9.0, 6.5
LINE = 20


def glyph(ink, left, width=4, top=LINE - 4, height=8):
    ink[top:top + height, left:left + width] = 1.0


def page_with_number(letters=(), read_as_digits=()):
    """Ink (40, 140) with the number "12" (glyphs at x 8 and 14, detected) and the glyphs
    ``letters`` (left edges; not detected) and ``read_as_digits`` (left edges; detected), each
    4 px wide. Returns ink, strongest map and the detected centres."""
    ink = np.zeros((40, 140), np.float32)
    strongest = np.zeros_like(ink)
    centres = []
    for left in (8, 14, *read_as_digits):
        glyph(ink, left)
        strongest[LINE - 4:LINE + 4, left:left + 4] = 0.9
        centres.append((left + 2.0, float(LINE)))
    for left in letters:
        glyph(ink, left)
    xs, ys = np.array(centres).T
    return ink, strongest, xs, ys


def in_words(ink, strongest, xs, ys):
    return digits_in_words(ink, strongest, xs, ys, PITCH, HEIGHT).tolist()


def test_a_letter_read_as_a_digit_inside_a_word_is_dropped():
    # "Mezzo": M e z z o with 1 px between letters; the o (x 80) read as a digit
    ink, strongest, xs, ys = page_with_number(letters=(60, 65, 70, 75), read_as_digits=(80,))
    assert in_words(ink, strongest, xs, ys) == [False, False, True]


def test_a_run_of_touching_letters_beside_a_number_is_a_word():
    ink, strongest, xs, ys = page_with_number()
    glyph(ink, 19, width=25)  # "Mezz" printed as one blot of ink
    assert in_words(ink, strongest, xs, ys) == [True, True]


def test_a_number_with_a_letter_on_either_side_is_dropped_whole():
    gap = int(WORD_GAP * HEIGHT)  # 2 px: a letter's gap, within the word reach
    for letter in (8 - gap - 4, 18 + gap):  # left of the 1, right of the 2
        ink, strongest, xs, ys = page_with_number(letters=(letter,))
        assert in_words(ink, strongest, xs, ys) == [True, True]


def test_numbers_beside_other_ink_are_kept():
    reach = int(np.ceil(WORD_GAP * HEIGHT))
    cases = {
        "a word space away": dict(letters=(18 + reach + 1,)),
        "a letter of the next line": dict(letters=(19,), top=LINE + 1),
        "a rule beside it": dict(letters=(19,), height=30, top=5),
        "a dot beside it": dict(letters=(19,), height=2, top=LINE + 2),
    }
    for name, case in cases.items():
        ink, strongest, xs, ys = page_with_number()
        for left in case["letters"]:
            glyph(ink, left, width=case.get("width", 4), top=case.get("top", LINE - 4),
                  height=case.get("height", 8))
        assert in_words(ink, strongest, xs, ys) == [False, False], name


def test_a_missed_digit_beside_a_number_does_not_make_it_a_word():
    ink, strongest, xs, ys = page_with_number(letters=(19,))
    strongest[LINE - 4:LINE + 4, 19:23] = DIGIT_LIKE  # the detector half sees a digit there
    assert in_words(ink, strongest, xs, ys) == [False, False]
    strongest[LINE - 4:LINE + 4, 19:23] = DIGIT_LIKE - 0.01
    assert in_words(ink, strongest, xs, ys) == [True, True]


def test_find_digits_leaves_out_numbers_inside_words_unless_asked():
    ink, strongest, xs, ys = page_with_number(letters=(60, 65, 70, 75), read_as_digits=(80,))
    detector = DigitDetector(DetectorConfig()).eval()
    prepared = prepare_page(np.full(ink.shape, 255, np.uint8), detector, scale=1, rotation=0)
    prepared.image = torch.from_numpy(ink)[None, None]
    maps = torch.zeros(10, *ink.shape)
    for digit, (x, y) in enumerate(zip(xs, ys, strict=True)):  # blobs peaking at the centres
        yy, xx = np.mgrid[: ink.shape[0], : ink.shape[1]]
        maps[digit] = torch.from_numpy(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0))
    kept = find_digits(maps, prepared, digit_height_px=HEIGHT, digit_pitch_px=PITCH)
    everything = find_digits(maps, prepared, digit_height_px=HEIGHT, digit_pitch_px=PITCH,
                             keep_in_words=True)
    assert sorted(everything.digit) == [0, 1, 2]
    assert sorted(kept.digit) == [0, 1]


def test_no_digits():
    nothing = np.zeros(0)
    assert digits_in_words(np.zeros((5, 5)), np.zeros((5, 5)), nothing, nothing, PITCH,
                           HEIGHT).shape == (0,)
