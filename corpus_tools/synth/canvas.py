"""A clean, upright page being typeset: ink drawn with PIL, every printed digit and letter
recorded.

Coordinates are pixels of the upright page, x to the right, y down; a box ``(x0, y0, x1, y1)``
covers the glyph's ink with x1 / y1 exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw


@lru_cache(maxsize=65536)
def advance(font, text: str) -> float:
    """Advance width of ``text`` in pixels (cached: tables repeat the same figures)."""
    return font.getlength(text, features=font.features)


@lru_cache(maxsize=4096)
def glyph_bitmap(font, glyph: str) -> tuple[Image.Image, tuple[int, int]]:
    """The ink of ``glyph`` (a mask cropped to its ink) and the mask's offset from the baseline
    origin (anchor ``ls``); cached, since tables print the same figures over and over."""
    mask, (dx, dy) = font.getmask2(glyph, anchor="ls", features=font.features)
    pixels = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])
    image = Image.fromarray(pixels)
    x0, y0, _, _ = bbox = image.getbbox() or (0, 0, 0, 0)
    return image.crop(bbox), (dx + x0, dy + y0)


def glyph_ink_box(font, glyph: str) -> tuple[int, int, int, int]:
    """Ink box of ``glyph`` relative to its baseline origin (anchor ``ls``), from the rendered
    bitmap: the font's own bounding box can be wider than the ink (e.g. a figure 1)."""
    bitmap, (x0, y0) = glyph_bitmap(font, glyph)
    return x0, y0, x0 + bitmap.width, y0 + bitmap.height


@dataclass(frozen=True)
class Figures:
    """How a book sets its figures: the ``font``, replacement glyphs for some digits (each
    ``(digit, font, glyph)``, e.g. a small capital I for the figure 1 as in many founts of the
    period) and the uneven baseline of hand-set type (``jitter``: standard deviation in px)."""

    font: object
    replacements: tuple = ()
    jitter: float = 0.0

    def glyph(self, char: str):
        """(font, glyph) that prints the digit ``char``."""
        for digit, font, glyph in self.replacements:
            if digit == char:
                return font, glyph
        return self.font, char

    def width(self, text: str) -> float:
        """Advance width of the digit string ``text`` in pixels."""
        return sum(advance(font, glyph) for font, glyph in map(self.glyph, text))


@dataclass(frozen=True)
class DigitRecord:
    """One printed digit: its ink box on the upright page and what it stands for."""

    box: tuple[int, int, int, int]
    digit: int
    number_id: int
    position: int
    instance_id: str = ""
    cell_key: str = ""


@dataclass(frozen=True)
class LetterRecord:
    """One printed character of a word (letter, ampersand, punctuation): its ink box on the
    upright page, to name the letters a detector reads as digits."""

    box: tuple[int, int, int, int]
    char: str


@dataclass
class Canvas:
    """White page of ``width`` x ``height`` pixels; ``ink()`` gives the ink as floats (1 = ink)."""

    width: int
    height: int
    digits: list[DigitRecord] = field(default_factory=list)
    letters: list[LetterRecord] = field(default_factory=list)
    numbers: int = 0

    def __post_init__(self):
        self.image = Image.new("L", (self.width, self.height), 0)
        self.draw = ImageDraw.Draw(self.image)

    def ink(self) -> np.ndarray:
        """The ink as a float32 array of shape (height, width) in [0, 1]."""
        return np.asarray(self.image, dtype=np.float32) / 255.0

    def words(self, x: float, baseline: float, text: str, font) -> float:
        """Set ``text`` (no digits expected) with its left end at ``x``, recording the ink box
        of each character (placed where the advance up to and including it ends, less its own
        advance, so that the kerning before it counts: the line up to the word, then the word
        up to the character); return its width."""
        self.draw.text((x, baseline), text, font=font, fill=255, anchor="ls",
                       features=font.features)
        for start, word in _words_at(text):
            word_left = x + font.getlength(text[:start], features=font.features)
            for index, char in enumerate(word):
                left = word_left + advance(font, word[:index + 1]) - advance(font, char)
                x0, y0, x1, y1 = glyph_ink_box(font, char)
                if x1 > x0:
                    self.letters.append(LetterRecord(
                        (round(left) + x0, round(baseline) + y0, round(left) + x1,
                         round(baseline) + y1), char))
        return advance(font, text)

    def number(self, x: float, baseline: float, text: str, figures: Figures, rng=None,
               instance_id: str = "", cell_key: str = "") -> None:
        """Set the digit string ``text`` with its left end at ``x``, recording each digit.

        Digits are set one by one at their advance positions (each shifted up or down by the
        figures' jitter when ``rng`` is given) so that each recorded box is the ink of exactly
        that glyph.
        """
        number_id = self.numbers
        self.numbers += 1
        left = x
        for position, char in enumerate(text):
            font, glyph = figures.glyph(char)
            shift = rng.normal(0, figures.jitter) if rng is not None and figures.jitter else 0
            bitmap, (dx, dy) = glyph_bitmap(font, glyph)
            x0, y0 = round(left) + dx, round(baseline + shift) + dy
            self.image.paste(255, (x0, y0, x0 + bitmap.width, y0 + bitmap.height), bitmap)
            box = (x0, y0, x0 + bitmap.width, y0 + bitmap.height)
            self.digits.append(DigitRecord(box, int(char), number_id, position,
                                           instance_id, cell_key))
            left += advance(font, glyph)

    def line(self, x0: float, y0: float, x1: float, y1: float, width: int) -> None:
        """A ruling from (x0, y0) to (x1, y1), ``width`` pixels thick."""
        self.draw.line([(x0, y0), (x1, y1)], fill=255, width=max(1, width))

    def ellipse(self, box, width: int) -> None:
        """An outlined circle or ellipse (for diagrams) in ``box`` = (x0, y0, x1, y1)."""
        self.draw.ellipse(box, outline=255, width=max(1, width))


def _words_at(text: str) -> list[tuple[int, str]]:
    """The space-separated words of ``text`` with the index where each starts."""
    words, start = [], 0
    for word in text.split(" "):
        if word:
            words.append((start, word))
        start += len(word) + 1
    return words
