"""From bigram counts to similarity features, and what that does to relevance.

The score of two pages is the dot product of their features,

    f = sqrt(phi) / sqrt(sum(phi) + mass_floor)          y(a, b) = <f_a, f_b>  in [0, 1)

* the square root damps the frequent bigrams ("00", "30", ...) that every sexagesimal table
  has (the authors' analyses use it too);
* dividing by the total makes a large and a small printing of one table comparable;
* ``mass_floor`` (in bigrams) keeps pages with only a handful of detections (prose, title
  pages) from reaching high scores by chance: a page needs well over ``mass_floor`` bigrams to
  have a feature norm near 1.

Each feature is a positive per-dimension rescaling of phi, ``f_m = s_m * phi_m``, so the
first-order relevance of ``f_m`` is ``s_m`` times that of ``phi_m``: BiLRP of the score is
``sum_m (s_m LRP(phi_m, a)) (outer) (s'_m LRP(phi_m, b))`` and stays exactly conservative.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MASS_FLOOR = 8.0


def feature_scales(phi: np.ndarray, mass_floor: float = DEFAULT_MASS_FLOOR) -> np.ndarray:
    """Per-dimension factors ``s`` with ``f = s * phi``; shape of ``phi`` ((100,) or (N, 100)).

    ``s_m = 1 / (sqrt(phi_m) * sqrt(sum(phi) + mass_floor))``, and 0 where ``phi_m == 0``.
    """
    phi = np.asarray(phi, dtype=np.float64)
    if np.any(phi < 0):
        raise ValueError("bigram counts must be non-negative")
    if mass_floor <= 0:
        raise ValueError(f"mass_floor must be positive, got {mass_floor}")
    total = phi.sum(axis=-1, keepdims=True) + mass_floor
    with np.errstate(divide="ignore"):
        scales = np.where(phi > 0, 1.0 / np.sqrt(np.where(phi > 0, phi, 1.0) * total), 0.0)
    return scales


def similarity_features(phi: np.ndarray, mass_floor: float = DEFAULT_MASS_FLOOR) -> np.ndarray:
    """The features whose dot products are the scores: ``sqrt(phi) / sqrt(sum(phi) + floor)``."""
    return np.asarray(phi, dtype=np.float64) * feature_scales(phi, mass_floor)
