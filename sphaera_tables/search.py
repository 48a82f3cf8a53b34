"""Exact top-k search over a corpus of feature vectors, block by block.

Never holds an N x N matrix: each block of ``block_rows`` query rows is scored against the
pages that can match it (at most ``block_rows x N`` floats), its best ``k`` kept, and the
block dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from sphaera_tables.progress import Progress, silent

DENSE_SHARE = 0.02
"""Feature columns set on more than this share of pages are scored as dense columns."""
SCORE_MARGIN = 1e-5
"""Float32 slack: a page is scored when its bound comes within this of ``min_score``."""

Part = tuple[torch.Tensor | None, torch.Tensor]
"""Candidates of a block's queries: the page of each score (m, c) (None: column j is page j)
and the scores (m, c) (-inf: no candidate)."""


def top_k_matches(
    features: np.ndarray,
    k: int = 5,
    min_score: float = 0.0,
    block_rows: int = 1024,
    progress: Progress = silent,
    profile_columns: int = 0,
) -> pd.DataFrame:
    """Best ``k`` other rows for every row, by dot product, with score >= ``min_score`` (the
    match list is cut from these: :func:`~sphaera_tables.ranking.ranked_matches`).

    Parameters
    ----------
    features : (N, F) float array, dense or scipy sparse (the features of the ``numbers``
        model: scored with sparse products and bounds, never an N x F dense copy).
    k : matches per row (fewer where fewer rows pass ``min_score``).
    min_score : scores below it are not matches.
    block_rows : query rows scored at once; memory is at most about ``4 * block_rows * N``
        bytes.
    progress : ``progress(rows_done, N, "Searching")`` after each block (see
        :mod:`sphaera_tables.progress`).
    profile_columns : sparse features only: the first columns form a profile every page has
        at a similar length (the ``numbers`` model's bigram part, ``N_BIGRAMS``); bounding it
        apart from the other columns lets the search skip more pages (same result).

    Returns
    -------
    DataFrame with int columns ``a``, ``b`` (row indices), ``rank`` (1 = best) and float
    ``score``; sorted by ``a`` then ``rank``; of equal scores the lower ``b`` ranks first. The
    search is deterministic: the same features always give the same result.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n = features.shape[0]
    k_eff = min(k, n - 1)
    columns = {"a": [], "b": [], "score": [], "rank": []}
    progress(0, n, "Searching")
    if k_eff >= 1:
        blocks = _sparse_blocks(features, min_score, block_rows, profile_columns) \
            if sparse.issparse(features) else _dense_blocks(features, block_rows)
        done = 0
        for queries, parts in blocks:
            for name, values in _best(queries, parts, k_eff, min_score).items():
                columns[name].append(values)
            done += len(queries)
            progress(done, n, "Searching")
    frame = pd.DataFrame(
        {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in columns.items()}
    )
    frame = frame.astype({"a": np.int64, "b": np.int64, "score": np.float64, "rank": np.int64})
    return frame.sort_values(["a", "rank"], ignore_index=True)


def _best(queries: torch.Tensor, parts: list[Part], k: int, min_score: float
          ) -> dict[str, np.ndarray]:
    """The best ``k`` candidates of each query (m,) of a block that reach ``min_score``; of
    equal scores the lower page comes first (as a stable sort of each row would give)."""
    floor = max(min_score, float(torch.finfo(torch.float32).min))
    found = [_leading(pages, scores, k, floor) for pages, scores in parts if scores.shape[1]]
    if not found:
        return {}
    row, page, score = (np.concatenate(arrays) for arrays in zip(*found, strict=True))
    order = np.lexsort((page, -score, row))
    row, page, score = row[order], page[order], score[order]
    first = np.searchsorted(row, row)
    rank = np.arange(len(row)) - first
    keep = rank < k
    return {"a": queries.numpy()[row[keep]], "b": page[keep],
            "score": score[keep].astype(np.float64), "rank": rank[keep] + 1}


def _leading(pages, scores, k: int, floor: float):
    """(row, page, score) of each row's ``k`` best scores from ``floor``, and of every score
    tied with its k-th best (``torch.topk`` keeps an arbitrary one of equal scores)."""
    values, top = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    tied = torch.zeros(len(scores), dtype=torch.bool)
    if values.shape[1] > k:
        tied = (values[:, k] == values[:, k - 1]) & (values[:, k] >= floor)
    values, top = values[:, :k], top[:, :k]
    row, rank = torch.nonzero((values >= floor) & ~tied[:, None], as_tuple=True)
    column = top[row, rank]
    if tied.any():
        rows = torch.nonzero(tied, as_tuple=True)[0]
        tied_row, tied_column = torch.nonzero(scores[rows] >= values[rows, -1:], as_tuple=True)
        row, column = torch.cat([row, rows[tied_row]]), torch.cat([column, tied_column])
    page = column if pages is None else pages[row, column]
    return row.numpy(), page.numpy(), scores[row, column].numpy()


def _dense_blocks(features, block_rows: int) -> Iterator[tuple[torch.Tensor, list[Part]]]:
    """Every query against every page."""
    matrix = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    for start in range(0, len(matrix), block_rows):
        stop = min(start + block_rows, len(matrix))
        scores = matrix[start:stop] @ matrix.T
        rows = torch.arange(stop - start)
        scores[rows, rows + start] = -torch.inf
        yield torch.arange(start, stop), [(None, scores)]


def _sparse_blocks(features, min_score: float, block_rows: int, profile_columns: int
                   ) -> Iterator[tuple[torch.Tensor, list[Part]]]:
    """Each query against the pages that can reach ``min_score`` with it.

    Columns set on many pages are a dense part ``D`` (the profile ``P``, the first
    ``profile_columns``, and the other common columns ``C``), the rest a sparse part ``R``
    (whose product costs each column's count of pages squared). A pair scores
    ``D_a . D_b + R_a . R_b <= |P_a| max|P| + |C_a| |C_b| + R_a . R_b``. With the pages sorted
    by ``|C|``, largest first, the pages a block can reach without sharing a sparse column are
    a prefix, scored exactly; of the later pages sharing one, only those whose bound reaches
    ``min_score`` are scored. Every other pair scores below ``min_score``.
    """
    rows = sparse.csr_matrix(features, dtype=np.float32)
    n = rows.shape[0]
    pages_per_column = np.bincount(rows.indices, minlength=rows.shape[1])
    dense_columns = pages_per_column > DENSE_SHARE * n
    dense_columns[:profile_columns] = True
    dense = rows[:, np.flatnonzero(dense_columns)].toarray()  # the profile first
    common_norms = np.linalg.norm(dense[:, profile_columns:], axis=1)
    order = np.argsort(-common_norms, kind="stable")
    dense, rows, common_norms = dense[order], rows[order], common_norms[order]
    profile_norms = np.linalg.norm(dense[:, :profile_columns], axis=1)
    dense = torch.from_numpy(dense)
    rare = rows.copy()
    rare.data[dense_columns[rare.indices]] = 0
    rare.eliminate_zeros()
    columns = rare.T.tocsr()
    threshold = min_score - SCORE_MARGIN
    reach = _reach(profile_norms, common_norms, threshold)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        end = int(reach[start:stop].max())
        shared = (rare[start:stop] @ columns).tocoo()
        query, page, value = shared.row, shared.col, shared.data
        prefix = dense[start:stop] @ dense[:end].T
        inside = page < end
        prefix[_index(query[inside]), _index(page[inside])] += torch.from_numpy(value[inside])
        diagonal = np.flatnonzero(np.arange(start, stop) < end)
        prefix[_index(diagonal), _index(start + diagonal)] = -torch.inf
        extra = _reachable_sharers(query[~inside], page[~inside], value[~inside], start,
                                   profile_norms, common_norms, dense, threshold)
        extra_pages, extra_scores = _padded(*extra, stop - start)
        yield torch.from_numpy(order[start:stop]), [
            (torch.from_numpy(order[:end]).expand(stop - start, -1), prefix),
            (torch.from_numpy(order[extra_pages]), extra_scores)]


def _reach(profile_norms, common_norms, threshold: float) -> np.ndarray:
    """(N,) for each query, how many pages (sorted by ``|C|``, largest first) it can reach
    with ``|P_a| max|P| + |C_a| |C_b| >= threshold``."""
    n = len(common_norms)
    need = threshold - profile_norms * (profile_norms.max() if n else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        least = np.where(common_norms > 0, need / common_norms, np.inf)
    ends = np.searchsorted(-common_norms, -least, side="right")
    return np.where(need <= 0, n, ends).astype(np.int64)


def _reachable_sharers(query, page, value, start, profile_norms, common_norms, dense,
                       threshold: float):
    """Pairs (block row, page) sharing a sparse column whose bound reaches ``threshold``,
    with their exact scores."""
    rows = start + query
    keep = (page != rows) & (value + profile_norms[rows] * profile_norms[page]
                             + common_norms[rows] * common_norms[page] >= threshold)
    query, page, value = query[keep], page[keep], value[keep]
    exact = (dense[_index(start + query)] * dense[_index(page)]).sum(dim=1).numpy() + value
    return query, page, exact


def _padded(query, page, score, rows: int) -> tuple[np.ndarray, torch.Tensor]:
    """Pages and scores of a block's extra candidates as (rows, most per row) matrices, padded
    with page 0 at -inf."""
    counts = np.bincount(query, minlength=rows)
    width = int(counts.max()) if len(query) else 0
    order = np.argsort(query, kind="stable")
    slot = np.arange(len(query)) - np.repeat(np.cumsum(counts) - counts, counts)
    pages = np.zeros((rows, width), dtype=np.int64)
    scores = torch.full((rows, width), -torch.inf)
    pages[query[order], slot] = page[order]
    scores[query[order], slot] = torch.from_numpy(score[order].astype(np.float32))
    return pages, scores


def _index(positions: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(positions, dtype=np.int64))
