"""Pool per-image factors onto groups of input features (super-pixels, digits, table cells).

Pooling each image's factors first and multiplying afterwards gives the coarse-grained BiLRP
matrix ``R[I, I'] = sum_{i in I, i' in I'} R[i, i']`` without ever building the feature-by-feature
matrix (supplement appendix E). Pooled factors are small (h x G) and can be cached per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sphaera_tables.explain.canonizers import Selector
from sphaera_tables.explain.factors import DEFAULT_MEMORY_BUDGET, Factors, relevance_chunks
from sphaera_tables.explain.rules import Composite


@dataclass(frozen=True)
class PooledFactors:
    """Factors summed over groups of input features.

    Attributes
    ----------
    values : ndarray, shape (h, G)
        ``values[m, g]``: relevance of ``phi_m`` carried by group ``g``.
    phi : ndarray, shape (h,)
        The embedding of the input.
    centres : ndarray, shape (G, 2)
        Centre of each group as (row, column) in input pixels (mean of its pixel positions over
        the last two axes of the label map; NaN for an empty group). Used for drawing links.
    bias, constant_adds
        As in :class:`~sphaera_tables.explain.factors.Factors`.
    """

    values: np.ndarray
    phi: np.ndarray
    centres: np.ndarray
    bias: np.ndarray | None = None
    constant_adds: tuple[str, ...] = ()


def grid_labels(shape, cell):
    """Label map of a regular grid of super-pixels.

    Parameters
    ----------
    shape : (int, int)
        Height and width of the input in pixels.
    cell : int or (int, int)
        Super-pixel height and width in pixels; border cells may be smaller.

    Returns
    -------
    labels : ndarray of int64, shape ``shape``
        Cells numbered row by row from 0.
    """
    height, width = shape
    cell_h, cell_w = (cell, cell) if np.isscalar(cell) else cell
    if cell_h < 1 or cell_w < 1:
        raise ValueError(f"super-pixel size must be at least 1 pixel, got {cell}")
    rows = np.arange(height) // cell_h
    columns = np.arange(width) // cell_w
    n_columns = -(-width // cell_w)
    return rows[:, None] * n_columns + columns[None, :]


def box_labels(shape, boxes):
    """Label map with one group per box and a last group for all other pixels.

    Parameters
    ----------
    shape : (int, int)
        Height and width of the input in pixels.
    boxes : array-like, shape (n, 4)
        Boxes as (x, y, width, height) in pixels. Where boxes overlap, the later box wins.

    Returns
    -------
    labels : ndarray of int64, shape ``shape``
        ``k`` inside box ``k``, ``n`` elsewhere (the background group, so totals are preserved).
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    labels = np.full(shape, len(boxes), dtype=np.int64)
    for k, (x, y, w, h) in enumerate(boxes):
        if w <= 0 or h <= 0:
            raise ValueError(f"box {k} has a non-positive size: {(x, y, w, h)}")
        top, left = max(int(round(y)), 0), max(int(round(x)), 0)
        labels[top:int(round(y + h)), left:int(round(x + w))] = k
    return labels


def pool(factors: Factors, labels) -> PooledFactors:
    """Sum factors over groups of input features.

    Parameters
    ----------
    factors : Factors
        ``values`` of shape (h, *input_shape).
    labels : ndarray of int, non-negative
        Group of every feature. Its shape must equal the trailing axes of the input shape
        (e.g. (H, W) for an input of shape (C, H, W): channels are summed), so totals are kept.

    Returns
    -------
    PooledFactors
    """
    values = torch.as_tensor(factors.values)
    labels = _check_labels(labels, tuple(values.shape[1:]))
    pooled = _pool_tensor(values, labels)
    return PooledFactors(values=pooled.numpy(), phi=np.asarray(factors.phi),
                         centres=group_centres(labels), bias=factors.bias,
                         constant_adds=factors.constant_adds)


def pooled_lrp_factors(model: nn.Module, x: torch.Tensor, labels,
                       composite: Composite | None = None, *, outputs=None,
                       strategy: str = "auto", memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
                       select: Selector = None) -> PooledFactors:
    """:func:`lrp_factors` followed by :func:`pool`, pooling each chunk as it is computed.

    Only the (h, G) result is kept, so a large page never holds h full relevance maps at once.
    Parameters as in :func:`lrp_factors` and :func:`pool`.
    """
    labels = _check_labels(labels, tuple(x.shape[1:]))
    phi, chunks = relevance_chunks(model, x, composite, outputs=outputs, strategy=strategy,
                                   memory_budget_bytes=memory_budget_bytes, select=select)
    n_groups = int(labels.max()) + 1
    pooled = torch.zeros((len(phi), n_groups), dtype=x.dtype)
    bias = torch.zeros(len(phi), dtype=x.dtype)
    for indices, relevance, absorbed in chunks:
        pooled[indices] = _pool_tensor(relevance.detach().cpu(), labels)
        bias[indices] = absorbed.detach().cpu()
    return PooledFactors(values=pooled.numpy(), phi=phi.numpy(), centres=group_centres(labels),
                         bias=bias.numpy(), constant_adds=chunks.constant_adds)


def group_centres(labels):
    """Mean (row, column) of the pixels of each group over the last two axes, shape (G, 2).

    A one-dimensional label map is read as a single row.
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[None]
    spatial = labels.reshape((-1,) + labels.shape[-2:])
    n_groups = int(labels.max()) + 1
    rows, columns = np.indices(spatial.shape[1:])
    counts = np.zeros(n_groups)
    sums = np.zeros((n_groups, 2))
    for plane in spatial:
        counts += np.bincount(plane.ravel(), minlength=n_groups)
        sums[:, 0] += np.bincount(plane.ravel(), weights=rows.ravel(), minlength=n_groups)
        sums[:, 1] += np.bincount(plane.ravel(), weights=columns.ravel(), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def _check_labels(labels, input_shape):
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if labels.dim() == 0 or tuple(labels.shape) != input_shape[len(input_shape) - labels.dim():]:
        raise ValueError(
            f"label map of shape {tuple(labels.shape)} does not match the trailing axes of the "
            f"input shape {input_shape}"
        )
    if labels.min() < 0:
        raise ValueError("labels must be non-negative group numbers")
    return labels


def _pool_tensor(values, labels):
    """Sum (h, *input_shape) values into (h, G) groups given by ``labels``."""
    h = values.shape[0]
    flat = values.reshape(h, -1, labels.numel()).sum(dim=1)
    n_groups = int(labels.max()) + 1
    pooled = torch.zeros((h, n_groups), dtype=values.dtype)
    return pooled.index_add_(1, labels.reshape(-1), flat)
