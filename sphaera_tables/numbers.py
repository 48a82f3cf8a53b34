"""Detected digits read as a table: printed numbers, their rows and their column neighbours.

Everything here works in the page's upright working frame (the rotation and scale the detector
chose, :class:`ReadingFrame`), so a table printed sideways reads like any other and every page's
digits have the detector's nominal pitch and height. Digits chain into numbers with the one
"next digit" rule of :mod:`digit_detector.reading`; a number's neighbours in its row and in its
column are what the number-level similarity network (:mod:`sphaera_tables.cells`) and the
collation of two editions (:mod:`sphaera_tables.collation`) are built on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digit_detector.prepare import working_coords
from digit_detector.reading import NEIGHBOUR_RISE, linked_components, next_digits

NUMBER_COLUMNS = ["x0", "y0", "x1", "y1", "text", "ux", "uy", "ux0", "ux1", "strength", "row"]
"""Columns of :func:`number_table`: box (page px), digits as text, upright centre and left and
right edge (working px), strength (the weakest digit's detector score) and row index."""
CELL_GAP = 12.0
"""Largest gap between two neighbouring numbers of one row, in digit pitches (wide column
gaps and a printed label between two columns stay within it)."""
COLUMN_REACH = 6.0
"""Largest distance between the centres of two numbers one above the other, in digit heights
(the line spacing of the sources is 2-3.5 digit heights)."""
COLUMN_SLACK = 0.5
"""Two numbers share a column when their upright extents, widened by this many pitches on each
side, overlap."""


@dataclass(frozen=True)
class ReadingFrame:
    """How a page's digits are read upright.

    ``page_shape`` (H, W) px, ``scale`` working px per page px, ``rotation`` degrees the page
    was turned to be upright; ``pitch`` and ``height``: the digit pitch and height in working
    px (the detector's :class:`~digit_detector.model.DetectorConfig`).
    """

    page_shape: tuple[int, int]
    scale: float
    rotation: int
    pitch: float
    height: float

    def upright(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Page px -> upright working px."""
        return working_coords(self.page_shape, self.scale, self.rotation, x, y)


def group_numbers(digits: pd.DataFrame, frame: ReadingFrame) -> np.ndarray:
    """Index of the printed number of every digit, numbers in reading order
    (the second half of :func:`number_chains`)."""
    return number_chains(digits, frame)[1]


def number_chains(digits: pd.DataFrame, frame: ReadingFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each digit's next digit and its printed number.

    Parameters
    ----------
    digits : columns x, y (centre, page px).
    frame : how the page is read upright.

    Returns
    -------
    ``(following, number)``, both (len(digits),) int64: the index of the next digit of the
    number (:func:`~digit_detector.reading.next_digits`, -1 at its end), and the number's
    index, numbers ordered by row (top to bottom, upright) and then from the left.
    """
    if len(digits) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ux, uy = frame.upright(digits.x.to_numpy(), digits.y.to_numpy())
    following = next_digits(np.column_stack([ux, uy]), frame.pitch, frame.height)
    component = linked_components(following)
    starts = pd.DataFrame({"c": component, "x": ux, "y": uy}).groupby("c")[["y", "x"]].mean()
    order = _reading_order(starts.x.to_numpy(), starts.y.to_numpy(), frame)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return following, rank[np.searchsorted(starts.index.to_numpy(), component)]


def number_table(digits: pd.DataFrame, number: np.ndarray, frame: ReadingFrame) -> pd.DataFrame:
    """One row per number (index = ``number``), columns :data:`NUMBER_COLUMNS`.

    ``digits``: columns x, y, digit, score and the box x0, y0, x1, y1 (page px).
    """
    if len(digits) == 0:
        return pd.DataFrame({c: pd.Series(dtype=str if c == "text" else float)
                             for c in NUMBER_COLUMNS}).astype({"row": np.int64})
    ux, uy = frame.upright(digits.x.to_numpy(), digits.y.to_numpy())
    frame_ = digits.assign(number=number, ux=ux, uy=uy).sort_values(["number", "ux"])
    grouped = frame_.groupby("number")
    table = grouped.agg(x0=("x0", "min"), y0=("y0", "min"), x1=("x1", "max"), y1=("y1", "max"),
                        ux=("ux", "mean"), uy=("uy", "mean"), ux0=("ux", "min"),
                        ux1=("ux", "max"), strength=("score", "min"))
    table["text"] = grouped["digit"].agg(lambda d: "".join(str(int(v)) for v in d))
    table["ux0"] -= frame.pitch / 2
    table["ux1"] += frame.pitch / 2
    table = table.reset_index(drop=True)
    table["row"] = _rows(table, frame)
    return table[NUMBER_COLUMNS]


def row_summary(numbers: pd.DataFrame) -> pd.DataFrame:
    """One entry per printed row (index: row): ``label`` (its first number), ``text`` (its
    numbers left to right, space-separated) and its box x0, y0, x1, y1 (page px)."""
    ordered = numbers.iloc[np.lexsort((numbers["ux"].to_numpy(), numbers["row"].to_numpy()))]
    ordered = ordered.assign(text=ordered["text"].astype(str))
    grouped = ordered.groupby("row", sort=True)
    summary = grouped.agg(label=("text", "first"), x0=("x0", "min"), y0=("y0", "min"),
                          x1=("x1", "max"), y1=("y1", "max"))
    summary["text"] = grouped["text"].agg(" ".join)
    return summary


def row_neighbours(numbers: pd.DataFrame, frame: ReadingFrame) -> np.ndarray:
    """Index of the next number to the right in each number's row, -1 at the row's end.

    The nearest number whose centre is at most ``NEIGHBOUR_RISE`` digit heights above or below
    (old-style figures of one line rise and hang that much; tables are set with lines about
    1.2 digit heights apart) and whose left edge is at most ``CELL_GAP`` pitches past the
    right edge.
    """
    n = len(numbers)
    right = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return right
    ux0, ux1 = numbers.ux0.to_numpy(), numbers.ux1.to_numpy()
    uy = numbers.uy.to_numpy()
    for i in range(n):
        gap = ux0 - ux1[i]
        ok = (gap > -0.5 * frame.pitch) & (gap <= CELL_GAP * frame.pitch) \
            & (np.abs(uy - uy[i]) <= NEIGHBOUR_RISE * frame.height) & (ux0 > ux0[i])
        ok[i] = False
        if ok.any():
            candidates = np.flatnonzero(ok)
            right[i] = candidates[np.argmin(ux0[candidates])]
    return right


def column_neighbours(numbers: pd.DataFrame, frame: ReadingFrame) -> np.ndarray:
    """Index of the number just below each number in its column, -1 where none is.

    The nearest number below (centre more than ``NEIGHBOUR_RISE`` and at most
    ``COLUMN_REACH`` heights lower: in another line) whose upright
    extent overlaps this one's, each widened by ``COLUMN_SLACK`` pitches.
    """
    n = len(numbers)
    below = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return below
    ux0 = numbers.ux0.to_numpy() - COLUMN_SLACK * frame.pitch
    ux1 = numbers.ux1.to_numpy() + COLUMN_SLACK * frame.pitch
    uy = numbers.uy.to_numpy()
    for i in range(n):
        dy = uy - uy[i]
        ok = (dy > NEIGHBOUR_RISE * frame.height) & (dy <= COLUMN_REACH * frame.height) \
            & (ux0 < ux1[i]) & (ux1 > ux0[i])
        if ok.any():
            candidates = np.flatnonzero(ok)
            below[i] = candidates[np.argmin(dy[candidates])]
    return below


def _rows(numbers: pd.DataFrame, frame: ReadingFrame) -> np.ndarray:
    """Row index of every number: numbers chained by :func:`row_neighbours`, rows numbered
    from the top of the upright page."""
    right = row_neighbours(numbers, frame)
    component = linked_components(right)
    heights = pd.Series(numbers.uy.to_numpy()).groupby(component).mean()
    rank = {c: k for k, c in enumerate(heights.sort_values(kind="stable").index)}
    return np.array([rank[c] for c in component], dtype=np.int64)


def _reading_order(x: np.ndarray, y: np.ndarray, frame: ReadingFrame) -> np.ndarray:
    """Order of points by line (``y`` rounded to a digit height), then ``x``."""
    return np.lexsort((x, np.round(y / frame.height)))
