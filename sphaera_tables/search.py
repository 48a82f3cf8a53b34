"""Exact top-k search over a corpus of feature vectors, block by block.

Never holds an N x N matrix: each block of ``block_rows`` query rows is scored against all
pages (``block_rows x N`` floats), its best ``k`` kept, and the block dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from sphaera_tables.progress import Progress, silent

DENSE_SHARE = 0.02
"""Feature columns set on more than this share of pages are scored as dense columns."""
SCORE_MARGIN = 1e-5
"""Float32 slack: a page is scored when its bound comes within this of ``min_score``."""


def top_k_matches(
    features: np.ndarray,
    k: int = 5,
    min_score: float = 0.0,
    block_rows: int = 1024,
    progress: Progress = silent,
) -> pd.DataFrame:
    """Best ``k`` other rows for every row, by dot product, with score >= ``min_score``.

    Parameters
    ----------
    features : (N, F) float array, dense or scipy sparse (the cell features of the
        ``numbers`` model: a block's scores are a sparse product, never an N x F dense copy).
    k : matches per row (fewer where fewer rows pass ``min_score``).
    min_score : scores below it are not matches.
    block_rows : query rows scored at once; memory is about ``4 * block_rows * N`` bytes.
    progress : ``progress(rows_done, N, "Searching")`` after each block (see
        :mod:`sphaera_tables.progress`).

    Returns
    -------
    DataFrame with int columns ``a``, ``b`` (row indices), ``rank`` (1 = best) and float
    ``score``; sorted by ``a`` then ``rank``. The search is deterministic: the
    same features always give the same result.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    block_scores = _sparse_scorer(features, min_score) if sparse.issparse(features) else \
        _dense_scorer(features)
    n = features.shape[0]
    k_eff = min(k, n - 1)
    columns = {"a": [], "b": [], "score": [], "rank": []}
    progress(0, n, "Searching")
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
        progress(stop, n, "Searching")
    frame = pd.DataFrame(
        {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in columns.items()}
    )
    return frame.astype({"a": np.int64, "b": np.int64, "score": np.float64, "rank": np.int64})


def _dense_scorer(features):
    matrix = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    return lambda start, stop: matrix[start:stop] @ matrix.T


def _sparse_scorer(features, min_score: float):
    """Scores of sparse features, exact wherever a score can reach ``min_score``.

    Columns set on many pages (the bigram part, common cells) are a dense part ``D``, the rest
    a sparse part ``R`` (whose product costs each column's count of pages squared). A pair
    that shares no sparse column scores ``D_a . D_b <= |D_a| |D_b|``: only the pages whose
    ``|D|`` can bring a query to ``min_score`` are scored densely (the others are left at
    -inf, below ``min_score``); pages sharing a sparse column with the block are scored
    exactly.
    """
    rows = sparse.csr_matrix(features, dtype=np.float32)
    pages_per_column = np.bincount(rows.indices, minlength=rows.shape[1])
    common = np.flatnonzero(pages_per_column > DENSE_SHARE * rows.shape[0])
    dense = torch.from_numpy(rows[:, common].toarray())
    rare = rows.copy()
    rare.data[np.isin(rare.indices, common)] = 0
    rare.eliminate_zeros()
    columns = rare.T.tocsr()
    norms = torch.linalg.vector_norm(dense, dim=1)
    by_norm = torch.argsort(norms, descending=True)
    sorted_norms = norms[by_norm]

    def scores(start, stop):
        shared = (rare[start:stop] @ columns).tocsr()
        reach = _reachable(norms[start:stop], sorted_norms, min_score)
        scored = np.zeros(rows.shape[0], dtype=bool)
        scored[by_norm[:reach].numpy()] = True
        scored[shared.indices] = True
        pages = torch.from_numpy(np.flatnonzero(scored))
        block = torch.full((stop - start, rows.shape[0]), -torch.inf)
        block[:, pages] = dense[start:stop] @ dense[pages].T
        return block + torch.from_numpy(np.asarray(shared.todense(), dtype=np.float32))

    return scores


def _reachable(query_norms, sorted_norms, min_score: float) -> int:
    """How many of the pages (sorted by ``|D|``, largest first) can score at least
    ``min_score`` against some query of the block on their dense part alone."""
    if min_score <= 0 or len(query_norms) == 0:
        return len(sorted_norms)
    need = (min_score - SCORE_MARGIN) / max(float(query_norms.max()), 1e-30)
    return int(torch.searchsorted(-sorted_norms, torch.tensor([-need]), right=True)[0])
