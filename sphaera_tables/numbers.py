"""Detected digits grouped into printed numbers: the unit a historian reads and checks.

Explanations are pooled onto numbers rather than single digits: a bigram's relevance lands on
whichever of its two digits wins the ``min`` (winner-take-all), so at digit level a "39" in one
page may link its 3 to the 9 of the other; at number level the link reads "39" <-> "39".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

NEXT_DIGIT_GAP = 1.6
"""Largest distance between the centres of two digits of one number, in digit-box widths."""
SAME_LINE = 0.5
"""Largest vertical offset between two digits of one number, in digit-box heights."""
NUMBER_COLUMNS = ["x0", "y0", "x1", "y1", "text"]


def group_numbers(digits: pd.DataFrame) -> np.ndarray:
    """Index of the printed number of every detected digit, numbers in reading order.

    A digit continues the number of its nearest right-hand neighbour on the same line (centre
    at most ``SAME_LINE`` box heights higher or lower and ``NEXT_DIGIT_GAP`` box widths away).

    Parameters
    ----------
    digits : columns x, y (centre) and x0, y0, x1, y1 (box), page px.

    Returns
    -------
    (len(digits),) int64 number index, in reading order (by line, then from the left).
    """
    n = len(digits)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    centres = digits[["x", "y"]].to_numpy(np.float64)
    width = float(np.median(digits.x1 - digits.x0))
    height = float(np.median(digits.y1 - digits.y0))
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = cKDTree(centres)
    for i, neighbours in enumerate(tree.query_ball_point(centres, NEXT_DIGIT_GAP * width)):
        dx = centres[neighbours, 0] - centres[i, 0]
        dy = np.abs(centres[neighbours, 1] - centres[i, 1])
        right = [j for j, ddx, ddy in zip(neighbours, dx, dy, strict=True)
                 if ddx > 0 and ddy < SAME_LINE * height]
        if right:
            nearest = min(right, key=lambda j: centres[j, 0])
            parent[root(nearest)] = root(i)
    roots = np.array([root(i) for i in range(n)])
    starts = pd.DataFrame({"root": roots, "y": centres[:, 1], "x": centres[:, 0]}).groupby(
        "root")[["y", "x"]].min()
    starts["line"] = np.round(starts.y / height)
    starts = starts.sort_values(["line", "x"])
    order = {r: k for k, r in enumerate(starts.index)}
    return np.array([order[r] for r in roots], dtype=np.int64)


def number_table(digits: pd.DataFrame, number: np.ndarray) -> pd.DataFrame:
    """One row per number: its box (x0, y0, x1, y1, page px) and its digits as text."""
    if len(digits) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in NUMBER_COLUMNS[:4]}).assign(
            text=pd.Series(dtype=str))
    frame = digits.assign(number=number).sort_values(["number", "x"])
    grouped = frame.groupby("number")
    table = grouped.agg(x0=("x0", "min"), y0=("y0", "min"), x1=("x1", "max"), y1=("y1", "max"))
    table["text"] = grouped["digit"].agg(lambda d: "".join(str(int(v)) for v in d))
    return table.reset_index(drop=True)[NUMBER_COLUMNS]
