"""Digit size statistics of labelled boxes: the working scale of each training image.

Old-style figures differ in height by class (0, 1, 2 are x-height; 3-9 ascend or descend), so an
image's digit height is the median of its box heights each divided by its class's typical
relative height; a page of x-height digits is then not mistaken for a page in a larger type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BOX_COLUMNS = ["image", "x0", "y0", "x1", "y1", "digit"]


def check_boxes(boxes: pd.DataFrame) -> pd.DataFrame:
    """Return ``boxes`` with typed columns; raise ``ValueError`` naming what is wrong."""
    missing = [c for c in BOX_COLUMNS if c not in boxes.columns]
    if missing:
        raise ValueError(f"digit boxes lack the columns {', '.join(missing)}")
    boxes = boxes[BOX_COLUMNS].copy()
    for column in BOX_COLUMNS[1:]:
        boxes[column] = pd.to_numeric(boxes[column], errors="raise")
    boxes["digit"] = boxes["digit"].astype(np.int64)
    bad = ~boxes["digit"].between(0, 9) | (boxes.x1 <= boxes.x0) | (boxes.y1 <= boxes.y0)
    if bad.any():
        row = boxes[bad].iloc[0]
        raise ValueError(f"{row.image}: bad digit box {row.x0, row.y0, row.x1, row.y1} "
                         f"digit {row.digit}")
    boxes["image"] = boxes["image"].astype(str)
    return boxes


def class_height_ratios(boxes: pd.DataFrame) -> np.ndarray:
    """Median box height of each digit class over the overall median, shape (10,)."""
    heights = (boxes.y1 - boxes.y0).astype(float)
    overall = float(np.median(heights))
    ratios = np.ones(10)
    for digit, group in heights.groupby(boxes.digit):
        ratios[int(digit)] = float(np.median(group)) / overall
    return ratios


def image_digit_height(boxes: pd.DataFrame, ratios: np.ndarray) -> float:
    """Class-corrected median digit height (px) of the boxes of one image."""
    heights = (boxes.y1 - boxes.y0).to_numpy(float) / ratios[boxes.digit.to_numpy()]
    return float(np.median(heights))


def neighbour_distances(boxes: pd.DataFrame, height: float) -> np.ndarray:
    """Centre distances (px) from each box to its right-hand neighbour in the same line.

    A neighbour lies right of the box, its centre within 0.35 ``height`` vertically and at most
    1.3 ``height`` horizontally (further apart means a gap between two numbers).
    """
    cx = ((boxes.x0 + boxes.x1) / 2).to_numpy(float)
    cy = ((boxes.y0 + boxes.y1) / 2).to_numpy(float)
    order = np.argsort(cx)
    cx, cy = cx[order], cy[order]
    distances = []
    for i in range(len(cx)):
        dx = cx[i + 1:] - cx[i]
        near = (dx > 0.2 * height) & (dx <= 1.3 * height) & (np.abs(cy[i + 1:] - cy[i]) < 0.35 * height)
        if near.any():
            distances.append(float(dx[near].min()))
    return np.asarray(distances)
