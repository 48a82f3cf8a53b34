"""The one geometry of "digit j, then the next digit": how printed digits chain into numbers.

Everything that reads digits in order (the bigram histogram of the detection evaluation, the
grouping of detected digits into printed numbers, the number-level similarity network) takes
the next digit from :func:`next_digits`, in the page's upright working frame, where every
page's digits have the detector's nominal pitch and height whatever the scan. The bigram head
looks for the same neighbour on the digit maps, with offsets of about one pitch and up to a
quarter height (``sphaera_tables.bigram.bigram_offsets``), inside these windows.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

NEIGHBOUR_STEP = (0.3, 1.4)
"""Horizontal distance from a digit's centre to the next digit's centre, in digit pitches.
Narrow figures (a 1 after a 1) stand 0.45 pitch apart in the thinnest synthetic typeface."""
NEIGHBOUR_RISE = 0.6
"""Largest vertical distance between the centres of two digits of one number, in digit heights:
old-style figures (3 4 5 7 9 descend, 6 8 ascend) sit up to half a height apart. With these two
windows the true digits of all 660 pages of the four evaluation corpora pair up exactly."""


def next_digits(points: np.ndarray, pitch: float, height: float) -> np.ndarray:
    """Index of the next digit of each digit's number, -1 where the number ends.

    Parameters
    ----------
    points : (n, 2) upright digit centres (x to the right along the line, y down), px of the
        same size as ``pitch`` (centre-to-centre distance of two digits) and ``height``.

    The next digit's centre lies ``NEIGHBOUR_STEP`` pitches to the right and within
    ``NEIGHBOUR_RISE`` heights vertically; of several, the nearest to the right.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    following = np.full(len(points), -1, dtype=np.int64)
    if len(points) < 2:
        return following
    low, high = NEIGHBOUR_STEP[0] * pitch, NEIGHBOUR_STEP[1] * pitch
    rise = NEIGHBOUR_RISE * height
    tree = cKDTree(points)
    for i, near in enumerate(tree.query_ball_point(points, r=np.hypot(high, rise))):
        near = np.asarray(near, dtype=np.int64)
        dx = points[near, 0] - points[i, 0]
        dy = np.abs(points[near, 1] - points[i, 1])
        candidates = near[(dx >= low) & (dx <= high) & (dy <= rise)]
        if len(candidates):
            following[i] = candidates[np.argmin(points[candidates, 0])]
    return following


def linked_components(link: np.ndarray) -> np.ndarray:
    """Connected components of the links ``i -> link[i]`` (-1: none), each element labelled
    by a member of its component: with :func:`next_digits`' links, the printed numbers (two
    digits may take the same next one, so a number is a component, not a chain)."""
    parent = np.arange(len(link))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in enumerate(link):
        if j >= 0:
            parent[root(int(j))] = root(i)
    return np.array([root(i) for i in range(len(link))], dtype=np.int64)
