"""Explanations of one pair: BiLRP from cached pooled factors, and the paper's baselines.

With pooled factors cached per image, explaining a pair is one matrix product: explaining every
match of a page costs one LRP pass per page, not per pair.
"""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PairExplanation:
    """BiLRP explanation of the similarity of two inputs.

    Attributes
    ----------
    relevance : ndarray, shape (Ga, Gb)
        ``relevance[I, I']``: contribution of group ``I`` of input A together with group ``I'``
        of input B to the similarity (positive: supports it; negative: contradicts it).
    y : float
        The similarity ``<phi(a), phi(b)>`` from the forward passes.
    residual : float
        Conservation error ``|sum(relevance) - y| / |y|`` (absolute error when ``y == 0``).
        Near zero for bias-free ReLU networks with conserving rules; report it with the result.
    centres_a, centres_b : ndarray, shape (Ga, 2), (Gb, 2)
        Group centres (row, column) in pixels of each input, for drawing.
    """

    relevance: np.ndarray
    y: float
    residual: float
    centres_a: np.ndarray
    centres_b: np.ndarray


def bilrp(pooled_a, pooled_b):
    """BiLRP (or Hessian x Product, for factors computed without rules) of one pair.

    Parameters
    ----------
    pooled_a, pooled_b : PooledFactors
        Factors of the two inputs from the same model and rules, shapes (h, Ga) and (h, Gb).

    Returns
    -------
    PairExplanation
        ``relevance = pooled_a.values.T @ pooled_b.values``.
    """
    if pooled_a.values.shape[0] != pooled_b.values.shape[0]:
        raise ValueError(
            f"factors have different embedding sizes: {pooled_a.values.shape[0]} and "
            f"{pooled_b.values.shape[0]}"
        )
    relevance = pooled_a.values.T @ pooled_b.values
    y = float(np.dot(pooled_a.phi, pooled_b.phi))
    return PairExplanation(
        relevance=relevance,
        y=y,
        residual=conservation_residual(relevance, y),
        centres_a=pooled_a.centres,
        centres_b=pooled_b.centres,
    )


def conservation_residual(relevance, y):
    """``|sum(relevance) - y| / |y|``, or the absolute error when ``y == 0``."""
    error = abs(float(np.sum(relevance)) - y)
    return error / abs(y) if y != 0 else error


def saliency_matrix(x_a, x_b, labels_a, labels_b):
    """Saliency baseline ``R[i, i'] = (x_i x'_i')^2`` pooled onto groups, shape (Ga, Gb).

    ``x_a``, ``x_b``: arrays of the input shape (without batch axis); labels as in
    :func:`~sphaera_tables.explain.pooling.pool`.
    """
    return np.outer(_group_sums(np.asarray(x_a) ** 2, labels_a),
                    _group_sums(np.asarray(x_b) ** 2, labels_b))


def curvature_matrix(gradients_a, gradients_b, labels_a, labels_b):
    """Curvature baseline ``R[i, i'] = ([d^2 y / dx_i dx'_i'])^2`` pooled onto groups.

    Uses ``d^2 y / dx_i dx'_i' = sum_m g_mi g'_mi'`` for a dot-product similarity of a piecewise
    linear embedding, with ``g`` the gradients of :func:`gradient_factors`. The square is
    factorised per image through the pooled second moments ``sum_{i in I} g_mi g_ni`` (memory
    h^2 x features: meant for small inputs such as the toy benchmark). Returns (Ga, Gb).
    """
    moments_a = _pooled_moments(gradients_a.values, labels_a)
    moments_b = _pooled_moments(gradients_b.values, labels_b)
    return moments_a @ moments_b.T


def _group_sums(values, labels):
    labels = np.asarray(labels)
    flat = values.reshape(-1, labels.size).sum(axis=0)
    return np.bincount(labels.ravel(), weights=flat, minlength=int(labels.max()) + 1)


def _pooled_moments(gradients, labels):
    """Per group, the flattened h x h matrix ``sum_{i in I} g_mi g_ni``, shape (G, h*h)."""
    labels = np.asarray(labels)
    h = gradients.shape[0]
    g = torch.as_tensor(gradients).reshape(h, -1, labels.size)
    outer = torch.einsum("mcp,ncp->pmn", g, g).reshape(labels.size, h * h)
    n_groups = int(labels.max()) + 1
    moments = torch.zeros((n_groups, h * h), dtype=outer.dtype)
    return moments.index_add_(0, torch.as_tensor(labels.ravel()), outer).numpy()
