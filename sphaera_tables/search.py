"""Exact top-k search over a corpus of feature vectors, block by block.

Never holds an N x N matrix: each block of ``block_rows`` query rows is scored against all
pages (``block_rows x N`` floats), its best ``k`` kept, and the block dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import sparse


def top_k_matches(
    features: np.ndarray,
    k: int = 5,
    min_score: float = 0.0,
    block_rows: int = 1024,
    progress=None,
) -> pd.DataFrame:
    """Best ``k`` other rows for every row, by dot product, with score >= ``min_score``.

    Parameters
    ----------
    features : (N, F) float array, dense or scipy sparse (the cell features of the
        ``numbers`` model: a block's scores are a sparse product, never an N x F dense copy).
    k : matches per row (fewer where fewer rows pass ``min_score``).
    min_score : scores below it are not matches.
    block_rows : query rows scored at once; memory is about ``4 * block_rows * N`` bytes.
    progress : optional callable ``progress(rows_done)``.

    Returns
    -------
    DataFrame with int columns ``a``, ``b`` (row indices), ``rank`` (1 = best) and float
    ``score``; sorted by ``a`` then ``rank``. The search is deterministic: the
    same features always give the same result.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    block_scores = _sparse_scorer(features) if sparse.issparse(features) else \
        _dense_scorer(features)
    n = features.shape[0]
    k_eff = min(k, n - 1)
    columns = {"a": [], "b": [], "score": [], "rank": []}
    for start in range(0, n if k_eff >= 1 else 0, block_rows):
        stop = min(start + block_rows, n)
        scores = block_scores(start, stop)
        rows = torch.arange(stop - start)
        scores[rows, rows + start] = -torch.inf
        values, top = torch.topk(scores, k_eff, dim=1)
        keep = values >= min_score
        columns["a"].append((rows[:, None] + start).expand_as(top)[keep].numpy())
        columns["b"].append(top[keep].numpy())
        columns["score"].append(values[keep].numpy().astype(np.float64))
        columns["rank"].append(torch.arange(1, k_eff + 1).expand_as(top)[keep].numpy())
        if progress is not None:
            progress(stop)
    frame = pd.DataFrame(
        {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in columns.items()}
    )
    return frame.astype({"a": np.int64, "b": np.int64, "score": np.float64, "rank": np.int64})


def _dense_scorer(features):
    matrix = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    return lambda start, stop: matrix[start:stop] @ matrix.T


def _sparse_scorer(features):
    rows = sparse.csr_matrix(features, dtype=np.float32)
    columns = rows.T.tocsc()
    return lambda start, stop: torch.from_numpy((rows[start:stop] @ columns).toarray())
