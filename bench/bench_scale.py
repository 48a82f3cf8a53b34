"""Corpus throughput with the local executor and a local Dask cluster, and what it means at scale.

Generates a synthetic corpus (default 24 pages), runs the page analysis of ``tables similarity``
on it once in this process and once on a local Dask cluster (default 2 worker processes), each
into a fresh results folder, and prints pages per second for both. It then projects the page
analysis time of the real Sphaera index (9,793 pages) and of 100,000 pages, on this machine and
on 1-16 such machines, assuming throughput grows linearly with the number of machines (each
running the same workers; the search and writing the outputs are left out: they take seconds).
Explanations, networks and report are off: they scale with matches, not pages.

Usage: python bench/bench_scale.py [--pages 24] [--workers 2] [--seed 5]
Figures are wall-clock and noisy on a shared machine.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from corpus_tools.execution import make_executor
from corpus_tools.synth import generate_corpus
from sphaera_tables.similarity import SimilarityOptions, run_similarity

REAL_CORPUS_PAGES = 9_793
LARGE_CORPUS_PAGES = 100_000
MACHINES = (1, 2, 4, 8, 16)


def pages_per_second(corpus: Path, out: Path, workers: int | None) -> tuple[float, int]:
    """Throughput (pages/s) of the page-analysis step of a fresh run, and pages analysed."""
    options = SimilarityOptions(explain=False, report=False, networks=False, workers=workers)
    summary = run_similarity(corpus, out, options)
    if summary.pages_reused:
        raise RuntimeError(f"{out} was not fresh: {summary.pages_reused} pages reused")
    return summary.pages_ok / summary.timings["pages"], summary.pages_ok


def cluster_start_seconds(workers: int) -> float:
    """Seconds to start and stop a local Dask cluster (included in the Dask run's figure)."""
    start = time.perf_counter()
    make_executor(workers=workers).close()
    return time.perf_counter() - start


def hours(pages: int, throughput: float) -> str:
    return f"{pages / throughput / 3600:8.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = generate_corpus(work / "corpus", pages=args.pages, seed=args.seed)
        print(f"corpus: {args.pages} synthetic pages (seed {args.seed}); "
              f"{os.cpu_count()} CPU cores visible")
        local, n_local = pages_per_second(corpus, work / "local", None)
        print(f"local executor          : {local:6.2f} pages/s ({n_local} pages)")
        dask, n_dask = pages_per_second(corpus, work / "dask", args.workers)
        print(f"dask, {args.workers} workers (local)  : {dask:6.2f} pages/s ({n_dask} pages, "
              f"ratio to local {dask / local:.2f}; includes cluster start, "
              f"{cluster_start_seconds(args.workers):.1f} s measured separately)")
    best_name, best = max([("local", local), (f"dask x{args.workers}", dask)],
                          key=lambda item: item[1])
    print(f"\nprojected page-analysis time with the faster setup ({best_name}, {best:.2f} "
          "pages/s per machine), assuming linear scaling per added machine:")
    print(f"{'machines':>8} {REAL_CORPUS_PAGES:>10,} pages {LARGE_CORPUS_PAGES:>10,} pages")
    for machines in MACHINES:
        print(f"{machines:>8} {hours(REAL_CORPUS_PAGES, best * machines):>16} "
              f"{hours(LARGE_CORPUS_PAGES, best * machines):>16}")


if __name__ == "__main__":
    main()
