"""Typesetting records each digit's box where its glyph's ink is."""

import numpy as np
import pytest
from scipy import ndimage

from corpus_tools.synth import ALL_TYPEFACES
from corpus_tools.synth.canvas import Canvas, Figures
from corpus_tools.synth.pages import BookStyle, book_figures
from corpus_tools.synth.typefaces import load_font, resolve_typefaces


def _ink_box(ink):
    ys, xs = np.nonzero(ink > 0)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("typeface", ALL_TYPEFACES)
def test_single_digit_box_is_its_ink(typeface):
    figures = Figures(load_font(typeface, 24))
    for digit in range(10):
        canvas = Canvas(80, 60)
        canvas.number(20.4, 40.6, str(digit), figures)
        (record,) = canvas.digits
        assert record.digit == digit and record.position == 0
        got, want = np.array(record.box), np.array(_ink_box(canvas.ink()))
        assert np.abs(got - want).max() <= 1, (typeface, digit, got, want)


@pytest.mark.parametrize("typeface", ALL_TYPEFACES[::3])
def test_number_boxes_hold_all_ink_in_order(typeface):
    style = BookStyle(typeface, 10, True, 0.05, "latin", "none", 1, 1.2, (5, 7), 0.1)
    figures = book_figures(style, 30)
    assert figures.replacements[0][2] == "I" and figures.jitter == 0.05 * 30
    canvas = Canvas(300, 80)
    canvas.number(10, 50, "4071", figures, np.random.default_rng(0), "t1", "c:0:1")
    canvas.number(150, 50, "59", figures)
    ink = canvas.ink() > 0
    covered = np.zeros_like(ink)
    for record in canvas.digits:
        x0, y0, x1, y1 = record.box
        covered[y0:y1, x0:x1] = True
        assert ink[y0:y1, x0:x1].any()
    assert not (ink & ~covered).any()
    assert [r.digit for r in canvas.digits] == [4, 0, 7, 1, 5, 9]
    assert [r.number_id for r in canvas.digits] == [0, 0, 0, 0, 1, 1]
    assert [r.position for r in canvas.digits] == [0, 1, 2, 3, 0, 1]
    assert canvas.digits[0].cell_key == "c:0:1" and canvas.digits[4].cell_key == ""
    lefts = [r.box[0] for r in canvas.digits[:4]]
    assert lefts == sorted(lefts)
    # the small-capital I for 1 is no taller than the 0 beside it
    one, zero = canvas.digits[3].box, canvas.digits[1].box
    assert abs((one[3] - one[1]) - (zero[3] - zero[1])) <= 1


def test_old_style_figures_descend():
    # With onum, 3 4 5 7 9 descend below the baseline and 0 1 2 do not.
    canvas = Canvas(400, 100)
    canvas.number(10, 60, "0123456789", Figures(load_font("eb-garamond", 40)))
    bottoms = {r.digit: r.box[3] for r in canvas.digits}
    assert all(bottoms[d] > 62 for d in (3, 4, 5, 7, 9))
    assert all(bottoms[d] <= 61 for d in (0, 1, 2))


def test_resolve_typefaces():
    assert resolve_typefaces("cardo, spectral") == ("cardo", "spectral")
    assert resolve_typefaces(None) == ALL_TYPEFACES
    with pytest.raises(ValueError, match="unknown typeface"):
        resolve_typefaces(",")


@pytest.mark.parametrize("typeface", ALL_TYPEFACES[1::4])
def test_word_letters_boxes_hold_all_ink_in_order(typeface):
    """Every character of a line of words is recorded where its ink is (kerning included),
    spaces are not: boxes in reading order, each inked, together covering the line's ink."""
    font = load_font(typeface, 30)
    canvas = Canvas(900, 80)
    text = "Principio  Mezzo & Fine, AVAT Tavola"
    width = canvas.words(12.3, 50.4, text, font)
    assert width == pytest.approx(font.getlength(text, features=font.features))
    assert "".join(r.char for r in canvas.letters) == text.replace(" ", "")
    ink = canvas.ink() > 0
    covered = np.zeros_like(ink)
    for record in canvas.letters:
        x0, y0, x1, y1 = record.box
        covered[y0:y1, x0:x1] = True
        assert ink[y0:y1, x0:x1].mean() > 0.1, record
    near = ndimage.binary_dilation(covered, np.ones((3, 3), bool))  # sub-pixel placement
    assert not (ink & ~near).any()
    centres = [(r.box[0] + r.box[2]) / 2 for r in canvas.letters]
    assert centres == sorted(centres)
