"""From bigram counts to similarity features, and what that does to relevance.

The score of two pages is the dot product of their features, built in three steps:

    f = sqrt(phi) / sqrt(sum(phi) + mass_floor)      bigram profile
    g = f - (u . f) u                                what is particular to this table
    h = g |f| / sqrt(|g|^2 + norm_floor |f|^2)       y(a, b) = <h_a, h_b>

* the square root damps the frequent bigrams; dividing by the total makes a large and a small
  printing of one table comparable; ``mass_floor`` (in bigrams) keeps pages with only a handful
  of detections (prose, title pages) from reaching high scores by chance;
* every sexagesimal table shares a common bigram profile (minutes 00-59 make "0x".."5x"
  frequent): ``u`` is that profile, the unit mean of ``f`` over the corpus, and removing it
  leaves what tells one table from another. Two tables of one type with other numbers then
  score near 0 instead of near 0.8 (measured on the synthetic truth);
* ``h`` gets back the length of ``f`` (near 1 for a real table, short for a sparse page, so the
  mass floor keeps working); ``norm_floor`` keeps a page that is nothing but the common profile
  from being blown up.

Every step is linear in ``phi`` for a given page: ``h = M phi`` with
``M = c (I - u u^T) diag(s)``, ``s_m = 1 / sqrt(phi_m (sum(phi) + mass_floor))`` and ``c`` the last
normalisation. First-order relevance is linear too, so the factors of ``h`` are ``M`` times the
factors of ``phi``, BiLRP of the score is ``(M_a F_a)^T (M_b F_b)`` and stays exactly
conservative. Removing ``u`` gives negative relevance where two pages share only the common
profile: BiLRP shows it as contradicting evidence.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MASS_FLOOR = 8.0
DEFAULT_NORM_FLOOR = 0.03


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


def bigram_profiles(phi: np.ndarray, mass_floor: float = DEFAULT_MASS_FLOOR) -> np.ndarray:
    """``f = sqrt(phi) / sqrt(sum(phi) + mass_floor)`` for one page (100,) or many (N, 100)."""
    return np.asarray(phi, dtype=np.float64) * feature_scales(phi, mass_floor)


def common_profile(profiles: np.ndarray) -> np.ndarray:
    """``u``: the unit-length mean of the pages' bigram profiles (N, 100) -> (100,).

    All zeros when there is no profile at all (then nothing is removed).
    """
    mean = np.asarray(profiles, dtype=np.float64).reshape(-1, 100).mean(axis=0) \
        if len(profiles) else np.zeros(100)
    length = np.linalg.norm(mean)
    return mean / length if length > 0 else mean


def feature_map(phi: np.ndarray, common: np.ndarray, mass_floor: float = DEFAULT_MASS_FLOOR,
                norm_floor: float = DEFAULT_NORM_FLOOR) -> np.ndarray:
    """The page's linear map ``M`` (100, 100) with features ``h = M @ phi`` (module docstring)."""
    if norm_floor <= 0:
        raise ValueError(f"norm_floor must be positive, got {norm_floor}")
    common = np.asarray(common, dtype=np.float64)
    scaled = np.diag(feature_scales(phi, mass_floor))
    removed = scaled - np.outer(common, common @ scaled)
    phi = np.asarray(phi, dtype=np.float64)
    profile, particular = scaled @ phi, removed @ phi
    length2 = profile @ profile
    if length2 == 0:
        return removed
    return removed * np.sqrt(length2 / (particular @ particular + norm_floor * length2))


def similarity_features(phi: np.ndarray, common: np.ndarray,
                        mass_floor: float = DEFAULT_MASS_FLOOR,
                        norm_floor: float = DEFAULT_NORM_FLOOR) -> np.ndarray:
    """Features ``h`` (N, 100) of bigram counts ``phi`` (N, 100); scores are their dot products."""
    phi = np.asarray(phi, dtype=np.float64).reshape(-1, 100)
    return np.stack([feature_map(p, common, mass_floor, norm_floor) @ p for p in phi]) \
        if len(phi) else np.zeros((0, 100))
