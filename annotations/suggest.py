"""Which digits to label next: the windows of a corpus the shipped detector is least sure of.

Every peak of the detector's digit maps down to ``FLOOR_SHARE`` times the detection threshold
is a candidate: detections near the threshold, peaks just under it (digits it nearly reports)
and peaks where a second digit answers almost as strongly. Its uncertainty (0-1) is the larger
of its closeness to the threshold, ``1 - |score - threshold| / threshold``, and the ratio of the
runner-up digit's map to the winner's. The chosen windows are spread over the pages (round by
round, each page gives its most uncertain window not overlapping those already taken) and never
overlap; each shows ``WINDOW_DIGIT_HEIGHTS`` digit heights around its digit, upright.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from digit_detector.inference import DEFAULT_THRESHOLD, detect
from digit_detector.prepare import turn_coords

FLOOR_SHARE = 0.5
"""Weakest peak considered, as a share of the detection threshold."""
WINDOW_DIGIT_HEIGHTS = 4.0
"""Side of a window in digit heights (at the page's working scale): the digit and a few
neighbours, so that a labeller sees it in context."""
CANDIDATE_COLUMNS = ["page", "x", "y", "digit", "score", "second", "uncertainty",
                     "x0", "y0", "x1", "y1", "left", "top", "side", "rotation"]


@dataclass
class Window:
    """A chosen window: its pixels (upright) and the suggested digit box inside them."""

    pixels: np.ndarray
    box: tuple[int, int, int, int]


def page_candidates(grey: np.ndarray, detector, threshold: float = DEFAULT_THRESHOLD
                    ) -> pd.DataFrame:
    """The candidate windows of one page (columns :data:`CANDIDATE_COLUMNS` but ``page``),
    most uncertain first: each peak with its score, the runner-up digit's map value
    ``second``, its uncertainty, its box (page px), and its window (``left``, ``top``,
    ``side`` page px; ``rotation`` that turns it upright)."""
    found = detect(grey, detector, threshold=FLOOR_SHARE * threshold)
    digits, prepared, maps = found.digits, found.prepared, found.maps
    if digits.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS[1:])
    wx, wy = prepared.to_working_coords(digits["x"].to_numpy(), digits["y"].to_numpy())
    height, width = maps.shape[1:]
    xs = np.clip(np.rint(wx).astype(int), 0, width - 1)
    ys = np.clip(np.rint(wy).astype(int), 0, height - 1)
    top_two = maps[:, ys, xs].numpy().T
    top_two.sort(axis=1)
    best, second = top_two[:, -1], top_two[:, -2]
    score = digits["score"].to_numpy()
    near = 1 - np.minimum(1, np.abs(score - threshold) / threshold)
    confusion = np.where(best > 0, np.maximum(second, 0) / np.maximum(best, 1e-12), 0.0)
    page_h, page_w = grey.shape
    side = int(min(page_h, page_w, round(WINDOW_DIGIT_HEIGHTS * detector.config.digit_height_px
                                          / prepared.scale)))
    table = digits.assign(
        second=second.astype(float), uncertainty=np.maximum(near, confusion),
        left=np.clip(np.rint(digits["x"] - side / 2), 0, page_w - side).astype(int),
        top=np.clip(np.rint(digits["y"] - side / 2), 0, page_h - side).astype(int),
        side=side, rotation=prepared.rotation)
    return table[CANDIDATE_COLUMNS[1:]].sort_values("uncertainty", ascending=False,
                                                    kind="stable", ignore_index=True)


def choose_windows(candidates: pd.DataFrame, count: int) -> pd.DataFrame:
    """Up to ``count`` windows of ``candidates`` (with ``page``), spread over the pages and
    never overlapping, sorted by uncertainty (most uncertain first)."""
    queues = {page: group.sort_values("uncertainty", ascending=False, kind="stable")
              for page, group in candidates.groupby("page", sort=True)}
    taken: dict = {page: [] for page in queues}
    position = dict.fromkeys(queues, 0)
    chosen: list[pd.Series] = []
    while len(chosen) < count:
        this_round = []
        for page, queue in queues.items():
            while position[page] < len(queue):
                row = queue.iloc[position[page]]
                position[page] += 1
                if not any(_overlap(row, other) for other in taken[page]):
                    this_round.append(row)
                    taken[page].append(row)
                    break
        if not this_round:
            break
        this_round.sort(key=lambda row: -row["uncertainty"])
        chosen += this_round[: count - len(chosen)]
    if not chosen:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    frame = pd.DataFrame(chosen)[CANDIDATE_COLUMNS]
    return frame.sort_values("uncertainty", ascending=False, kind="stable", ignore_index=True)


def _overlap(a, b) -> bool:
    return (a["left"] < b["left"] + b["side"] and b["left"] < a["left"] + a["side"]
            and a["top"] < b["top"] + b["side"] and b["top"] < a["top"] + a["side"])


def cut_window(grey: np.ndarray, row) -> Window:
    """The window of a chosen candidate, turned upright, and its digit box inside it."""
    left, top, side = int(row["left"]), int(row["top"]), int(row["side"])
    pixels = grey[top: top + side, left: left + side]
    box = tuple(int(np.clip(round(float(value) - origin), 0, side)) for value, origin in
                zip((row["x0"], row["y0"], row["x1"], row["y1"]), (left, top, left, top),
                    strict=True))
    rotation = int(row["rotation"])
    # the box's edges are half a pixel off the pixel centres that turn_coords turns
    xs, ys = turn_coords((side, side), rotation, np.array(box[0::2]) - 0.5,
                         np.array(box[1::2]) - 0.5)
    box = (int(xs.min() + 0.5), int(ys.min() + 0.5), int(xs.max() + 0.5), int(ys.max() + 0.5))
    return Window(np.ascontiguousarray(np.rot90(pixels, k=rotation // 90)), box)
