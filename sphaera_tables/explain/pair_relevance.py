"""Explanations of one pair: BiLRP from cached pooled factors, and the paper's baselines.

With pooled factors cached per image, explaining a pair is one matrix product: explaining every
match of a page costs one LRP pass per page, not per pair (docs/method.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from sphaera_tables.explain.guardrails import warn_if_leaking
from sphaera_tables.explain.pooling import PooledFactors

SIMILARITIES = ("dot", "cosine")


@dataclass(frozen=True)
class PairExplanation:
    """BiLRP explanation of the similarity of two inputs.

    Attributes
    ----------
    relevance : ndarray, shape (Ga, Gb)
        ``relevance[I, I']``: contribution of group ``I`` of input A together with group ``I'``
        of input B to the similarity (positive: supports it; negative: contradicts it).
    y : float
        The similarity ``<phi(a), phi(b)>`` (or the cosine) from the forward passes.
    residual : float
        Conservation error ``|sum(relevance) + bias_relevance - y| / |y|`` (absolute error
        when ``y == 0``): near zero whenever every operation has an exact rule; above 1 % a
        :class:`~sphaera_tables.explain.guardrails.ConservationWarning` is issued.
    centres_a, centres_b : ndarray, shape (Ga, 2), (Gb, 2)
        Group centres (row, column) in pixels of each input, for drawing.
    bias_relevance : float
        The part of ``y`` absorbed by biases (docs/method.md section 5): ``relevance`` sums to
        ``y - bias_relevance``.
    """

    relevance: np.ndarray
    y: float
    residual: float
    centres_a: np.ndarray
    centres_b: np.ndarray
    bias_relevance: float = 0.0


def bilrp_from_factors(pooled_a: PooledFactors, pooled_b: PooledFactors, *,
                       similarity: str = "dot") -> PairExplanation:
    """BiLRP (or Hessian x Product, for factors computed without rules) of one pair.

    Parameters
    ----------
    pooled_a, pooled_b : PooledFactors
        Factors of the two inputs from the same model and rules, shapes (h, Ga) and (h, Gb).
    similarity : {"dot", "cosine"}
        "cosine" explains ``<phi(a), phi(b)> / (|phi(a)| |phi(b)|)``: each input's factors are
        divided by the norm of its embedding, a fixed per-input scale (docs/method.md section 6).

    Returns
    -------
    PairExplanation
        ``relevance = pooled_a.values.T @ pooled_b.values``; warns when it does not add up.
    """
    if pooled_a.values.shape[0] != pooled_b.values.shape[0]:
        raise ValueError(
            f"factors have different embedding sizes: {pooled_a.values.shape[0]} and "
            f"{pooled_b.values.shape[0]}"
        )
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; choose one of {SIMILARITIES}")
    if similarity == "cosine":
        pooled_a, pooled_b = unit_scaled(pooled_a), unit_scaled(pooled_b)
    relevance = pooled_a.values.T @ pooled_b.values
    y = float(np.dot(pooled_a.phi, pooled_b.phi))
    bias = _bias_relevance(pooled_a, pooled_b)
    residual = warn_if_leaking(y, float(np.sum(relevance)), bias,
                               pooled_a.constant_adds + pooled_b.constant_adds)
    return PairExplanation(relevance=relevance, y=y, residual=residual,
                           centres_a=pooled_a.centres, centres_b=pooled_b.centres,
                           bias_relevance=bias)


def unit_scaled(pooled: PooledFactors) -> PooledFactors:
    """Factors of ``phi / |phi|``: values, phi and bias divided by the norm of ``phi``.

    The norm is held fixed (not differentiated), as a per-input scale (docs/method.md section 6).
    """
    norm = float(np.linalg.norm(pooled.phi))
    if norm == 0:
        raise ValueError("the embedding is zero: its cosine similarity is undefined")
    bias = None if pooled.bias is None else pooled.bias / norm
    return replace(pooled, values=pooled.values / norm, phi=pooled.phi / norm, bias=bias)


def _bias_relevance(pooled_a: PooledFactors, pooled_b: PooledFactors) -> float:
    """The bias row and column of the pair matrix: ``sum_m r_a s_b + s_a r_b + r_a r_b``.

    ``s``: the input relevance of ``phi_m`` summed over groups, ``r``: its bias relevance.
    """
    r_a = np.zeros(len(pooled_a.phi)) if pooled_a.bias is None else pooled_a.bias
    r_b = np.zeros(len(pooled_b.phi)) if pooled_b.bias is None else pooled_b.bias
    s_a, s_b = pooled_a.values.sum(axis=1), pooled_b.values.sum(axis=1)
    return float(np.dot(r_a, s_b) + np.dot(s_a, r_b) + np.dot(r_a, r_b))


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
