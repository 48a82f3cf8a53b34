"""Drawing detected digits over their page, for checking a detection by eye."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

COLOURS = [
    (230, 25, 75), (60, 140, 60), (0, 90, 200), (245, 130, 48), (145, 30, 180),
    (0, 150, 150), (200, 0, 160), (120, 110, 0), (128, 0, 0), (0, 0, 128),
]
"""One colour per digit class 0-9."""


def draw_overlay(grey: np.ndarray, digits: pd.DataFrame) -> Image.Image:
    """RGB image of the page with a box and the class label of every detected digit.

    ``digits`` has the columns of :func:`digit_detector.find_digits` (page px). The label is
    drawn above the box, in the class colour.
    """
    image = Image.fromarray(grey).convert("RGB")
    draw = ImageDraw.Draw(image)
    heights = (digits.y1 - digits.y0).to_numpy()
    size = int(np.clip(np.median(heights) * 0.9, 8, 60)) if len(digits) else 10
    font = ImageFont.load_default(size=size)
    width = max(1, size // 10)
    for row in digits.itertuples(index=False):
        colour = COLOURS[int(row.digit)]
        draw.rectangle([row.x0, row.y0, row.x1, row.y1], outline=colour, width=width)
        draw.text((row.x0, row.y0 - 1), str(int(row.digit)), fill=colour, font=font,
                  anchor="lb")
    return image
