"""Top-10 search over 100,000 random 100-dim feature vectors: time and peak memory.

Prints the exact blockwise search's wall time and the peak resident memory it added, and checks
a sample of rows against brute force. Usage: python bench/bench_search.py [N]
"""

import resource
import sys
import time

import numpy as np
from scipy import sparse

from sphaera_tables.features import bigram_profiles
from sphaera_tables.search import top_k_matches


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int = 100_000, k: int = 10) -> None:
    rng = np.random.default_rng(0)
    features = bigram_profiles(rng.poisson(1.0, (n, 100)).astype(np.float64)).astype(np.float32)
    before = peak_rss_mb()
    start = time.perf_counter()
    matches = top_k_matches(features, k=k, min_score=0.0)
    seconds = time.perf_counter() - start
    print(f"top-{k} search over {n:,} x 100 features: {seconds:.1f} s "
          f"({n / seconds:,.0f} queries/s), {len(matches):,} matches")
    print(f"peak RSS {peak_rss_mb():.0f} MB (before search {before:.0f} MB; N x N float32 "
          f"would be {4 * n * n / 2**30:.1f} GiB)")
    check_sampled_rows(features, matches, k)


def check_sampled_rows(features, matches, k: int, min_score: float = -np.inf,
                       rows: int = 20) -> None:
    """The scores found for ``rows`` sampled pages equal brute force (dense or sparse
    features; only scores from ``min_score`` are matches)."""
    rng = np.random.default_rng(1)
    for a in rng.choice(features.shape[0], rows, replace=False):
        column = features @ features[a].T
        scores = column.toarray().ravel() if sparse.issparse(column) else np.ravel(column)
        scores[a] = -np.inf
        best = np.sort(scores)[::-1][:k]
        found = matches.loc[matches.a == a, "score"].to_numpy()
        expected = best[best >= min_score]
        assert np.allclose(found, expected, atol=1e-5), f"row {a} differs from brute force"
    print(f"{rows} sampled rows equal brute force")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
