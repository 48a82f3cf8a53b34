"""The invariance measure of the paper (Eq. 7): local over global mean similarity."""

import numpy as np


def invariance(similarity, local):
    """``INV = <y(x, x')>_local / <y(x, x')>_global`` (paper Eq. 7).

    Parameters
    ----------
    similarity : ndarray, shape (N, N)
        Similarities ``y`` between all pairs of N inputs.
    local : ndarray of bool, shape (N, N)
        True for the pairs of transformed versions of one input (e.g. nearby video frames, or
        the same table page shifted or rescaled), which the model should find similar.

    Returns
    -------
    float
        Mean similarity over the local pairs divided by the mean over all pairs; the diagonal
        (an input with itself) is left out of both. Above 1: the model is invariant to the
        transformations while still telling inputs apart.
    """
    similarity = np.asarray(similarity, dtype=float)
    local = np.asarray(local, dtype=bool)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be a square matrix, got shape {similarity.shape}")
    if local.shape != similarity.shape:
        raise ValueError(f"local mask has shape {local.shape}, expected {similarity.shape}")
    off_diagonal = ~np.eye(len(similarity), dtype=bool)
    local = local & off_diagonal
    if not local.any():
        raise ValueError("no local pairs: the mask marks no pair of distinct inputs")
    global_mean = similarity[off_diagonal].mean()
    if global_mean == 0:
        raise ValueError("the mean similarity over all pairs is zero; invariance is undefined")
    return float(similarity[local].mean() / global_mean)
