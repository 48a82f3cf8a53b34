"""One call from a model and two inputs to the explanation of their similarity.

``bilrp(model, x_a, x_b, composite=..., pool=...)`` canonizes the model (BatchNorm folded, on
a copy), checks it (the guardrails), computes both inputs' pooled factors and multiplies them
(docs/method.md sections 2, 4-6). ``bilrp(pooled_a, pooled_b)`` keeps its older meaning: the
pair step alone, from cached pooled factors.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch
from torch import nn

from sphaera_tables.explain.canonizers import Selector, canonize
from sphaera_tables.explain.factors import DEFAULT_MEMORY_BUDGET
from sphaera_tables.explain.pair_relevance import PairExplanation, bilrp_from_factors
from sphaera_tables.explain.pooling import PooledFactors, pooled_lrp_factors
from sphaera_tables.explain.rules import Composite


def explain_pair(model: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, *,
                 composite: Composite | None = None, pool=None, select: Selector = None,
                 similarity: str = "dot", fold_batch_norm: bool = True,
                 strategy: str = "auto",
                 memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> PairExplanation:
    """BiLRP of ``y = <phi(x_a), phi(x_b)>`` (or their cosine) for any supported model.

    Parameters
    ----------
    model : torch.nn.Module
        The embedding ``phi``, in eval mode; it is not modified (BatchNorm is folded on a copy).
    x_a, x_b : torch.Tensor, shapes (1, ...)
        The two inputs (float64 gives residuals near 1e-12).
    composite : Composite, optional
        Rules per layer; None is Gradient x Input (BiLRP then equals Hessian x Product).
    pool : label map, pair of label maps, or None
        Groups of input features (as in :func:`~sphaera_tables.explain.pooling.pool`), one map
        for both inputs or ``(labels_a, labels_b)``; None: every input feature its own group.
    select : int, str or callable, optional
        Picks the embedding from a model returning a tuple, list or dict.
    similarity : {"dot", "cosine"}
        See :func:`~sphaera_tables.explain.pair_relevance.bilrp_from_factors`.
    fold_batch_norm : bool
        Fold BatchNorm layers first (:func:`~sphaera_tables.explain.canonizers.canonize`).

    Returns
    -------
    PairExplanation
        ``relevance`` (Ga, Gb), ``y``, ``residual`` and ``bias_relevance``; a warning is issued
        when the explanation does not add up to ``y`` within 1 %.
    """
    if fold_batch_norm:
        model = canonize(model, x_a, select)
    labels_a, labels_b = _label_maps(pool, x_a, x_b)
    options = dict(composite=composite, select=select, strategy=strategy,
                   memory_budget_bytes=memory_budget_bytes)
    pooled_a = pooled_lrp_factors(model, x_a, labels_a, **options)
    pooled_b = pooled_lrp_factors(model, x_b, labels_b, **options)
    return bilrp_from_factors(pooled_a, pooled_b, similarity=similarity)


@overload
def bilrp(pooled_a: PooledFactors, pooled_b: PooledFactors, *,
          similarity: str = "dot") -> PairExplanation: ...


@overload
def bilrp(model: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, **options) -> PairExplanation:
    ...


def bilrp(first, *args, **options) -> PairExplanation:
    """BiLRP of one pair: ``bilrp(model, x_a, x_b, composite=..., pool=..., ...)`` runs
    :func:`explain_pair`; ``bilrp(pooled_a, pooled_b)`` runs
    :func:`~sphaera_tables.explain.pair_relevance.bilrp_from_factors` on cached factors."""
    if isinstance(first, nn.Module):
        return explain_pair(first, *args, **options)
    return bilrp_from_factors(first, *args, **options)


def _label_maps(pool, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple:
    if pool is None:
        return (np.arange(x_a[0].numel()).reshape(x_a.shape[1:]),
                np.arange(x_b[0].numel()).reshape(x_b.shape[1:]))
    if isinstance(pool, tuple) and len(pool) == 2:
        return pool
    return pool, pool
