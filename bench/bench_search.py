"""Top-10 search over 100,000 random 100-dim feature vectors: time and peak memory.

Prints the exact blockwise search's wall time and the peak resident memory it added, and checks
a sample of rows against brute force. Usage: python bench/bench_search.py [N]
"""

import resource
import sys
import time

import numpy as np

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
    sample = rng.choice(n, 20, replace=False)
    for a in sample:
        scores = features @ features[a]
        scores[a] = -np.inf
        best = np.sort(scores)[::-1][:k]
        found = matches.loc[matches.a == a, "score"].to_numpy()
        assert np.allclose(found, best, atol=1e-5), f"row {a} differs from brute force"
    print("20 sampled rows equal brute force")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
