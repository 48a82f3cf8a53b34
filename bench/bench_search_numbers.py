"""Top-10 search over 100,000 pages with the ``numbers`` model's features (sparse cells + bigrams).

The features of a real results folder (``cell_features.npz`` and ``features.npy`` of a
``tables similarity`` run) are grown to N pages the way a large corpus grows: every new page
copies a page of the run, keeps its common cell features (on at least 10 % of the run's pages:
argument columns, frequent numbers) and moves the others (the table's own numbers) to a family
of 5 editions of its own. Prints the search time, the peak memory it added, and checks
sampled rows against brute force.

Usage: python bench/bench_search_numbers.py RESULTS [N]
"""

import sys
import time
from pathlib import Path

import numpy as np
from bench_search import check_sampled_rows, peak_rss_mb
from scipy import sparse

from corpus_tools.storage import load_sparse
from sphaera_tables.bigram import N_BIGRAMS
from sphaera_tables.cells import N_CELL_FEATURES
from sphaera_tables.scoring import DEFAULT_MIN_SCORES, feature_matrix
from sphaera_tables.search import top_k_matches

FAMILY = 5
COMMON = 0.1


def grown_features(results: Path, n: int, seed: int = 0) -> sparse.csr_matrix:
    """(n, 100 + N_CELL_FEATURES) features grown from a run's (see the module docstring)."""
    cells = load_sparse(results / "cell_features.npz").tocsr()
    bigram = np.load(results / "features.npy")
    df = np.bincount(cells.indices, minlength=cells.shape[1])
    rng = np.random.default_rng(seed)
    source = rng.integers(cells.shape[0], size=n)
    rows = cells[source]
    family = np.repeat(np.arange(n) // FAMILY, np.diff(rows.indptr))
    rare = df[rows.indices] < COMMON * cells.shape[0]
    moved = rows.indices.astype(np.int64)
    moved[rare] = (moved[rare] * 1_000_003 + family[rare] * 7_919) % N_CELL_FEATURES
    grown = sparse.csr_matrix((rows.data, moved, rows.indptr), shape=(n, N_CELL_FEATURES))
    grown.sum_duplicates()
    return feature_matrix(bigram[source], [grown])


def main(results: Path, n: int = 100_000, k: int = 10,
         min_score: float = DEFAULT_MIN_SCORES["numbers"]) -> None:
    features = grown_features(results, n)
    print(f"{n:,} pages, {features.nnz / n:.0f} non-zero features per page "
          f"({features.shape[1]:,} dimensions)")
    before = peak_rss_mb()
    start = time.perf_counter()
    matches = top_k_matches(features, k=k, min_score=min_score, profile_columns=N_BIGRAMS)
    seconds = time.perf_counter() - start
    print(f"top-{k} search (min score {min_score}): {seconds:.1f} s "
          f"({n / seconds:,.0f} queries/s), "
          f"{len(matches):,} matches; peak RSS {peak_rss_mb():.0f} MB (before {before:.0f} MB)")
    check_sampled_rows(features, matches, k, min_score)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
