"""Small rendered pages with known digit boxes, shared by the detector tests (no tests here)."""

from __future__ import annotations

import fontpkg
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

WORDS = ("Principio", "Mezzo", "Fine", "Per Roma", "gr.", "min.", "Clima", "Tavola")


def font(family: str = "eb-garamond", size: int = 24) -> ImageFont.FreeTypeFont:
    """A fontpkg font with old-style figures available through the ``onum`` feature."""
    path = fontpkg.path(family, style="normal", nearest=True)
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)


def render_table(rows: int = 12, seed: int = 0, size: int = 24, family: str = "eb-garamond",
                 width: int = 420, words: bool = True):
    """A table page (uint8 grey) and its digit boxes (x0, y0, x1, y1, digit), page px.

    Each row has a word column (optional) and three numbers of one or two digits.
    """
    rng = np.random.default_rng(seed)
    face = font(family, size)
    line = int(size * 1.4)
    image = Image.new("L", (width, rows * line + 2 * size), 235)
    draw = ImageDraw.Draw(image)
    boxes = []
    for row in range(rows):
        baseline = size + row * line + int(0.8 * size)
        x = 10
        if words:
            draw.text((x, baseline), str(rng.choice(WORDS)), font=face, fill=30, anchor="ls")
        x = int(width * 0.4)
        for _ in range(3):
            number = str(int(rng.integers(0, 60)))
            for char in number:
                draw.text((x, baseline), char, font=face, fill=25, anchor="ls",
                          features=["onum"])
                x0, y0, x1, y1 = face.getbbox(char, anchor="ls", features=["onum"])
                boxes.append((x + x0, baseline + y0, x + x1, baseline + y1, int(char)))
                x += face.getlength(char, features=["onum"])
            x += size * 1.2
    table = pd.DataFrame(boxes, columns=["x0", "y0", "x1", "y1", "digit"])
    return np.asarray(image, dtype=np.uint8), table


def render_text(seed: int = 0, size: int = 24, lines: int = 10, width: int = 420) -> np.ndarray:
    """A digit-free text page (uint8 grey)."""
    rng = np.random.default_rng(seed)
    face = font("eb-garamond", size)
    image = Image.new("L", (width, lines * int(size * 1.4) + 2 * size), 235)
    draw = ImageDraw.Draw(image)
    for row in range(lines):
        text = " ".join(str(w) for w in rng.choice(WORDS, size=4))
        draw.text((10, size + row * int(size * 1.4) + size), text, font=face, fill=30,
                  anchor="ls")
    return np.asarray(image, dtype=np.uint8)
