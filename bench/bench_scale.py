"""Corpus throughput in this process and in worker processes, and what it means at scale.

Generates a synthetic corpus (default 24 pages of about 1000 x 1450 px), runs the page analysis
of ``tables similarity`` (hash, decode, thumbnail, analysis, cache write) on it in this process
(``--workers 1``) and in ``--workers N`` processes (default: one per core), alternating over
``--repeats`` runs, each into a fresh results folder, and prints the median pages per second of
both and their ratio. It then projects the page analysis time of the real Sphaera index (9,793
pages) and of 100,000 pages, on this machine and on 1-16 such machines, assuming throughput
grows linearly with the number of machines (the search and writing the outputs are left out:
they take seconds). Explanations, networks and report are off: they scale with matches, not
pages.

Usage: python bench/bench_scale.py [--pages 24] [--workers N] [--repeats 3] [--seed 3]
Figures are wall-clock and noisy on a shared machine: compare the two of one run.
"""

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

from corpus_tools.execution import make_executor, usable_cores
from corpus_tools.synth import generate_corpus
from sphaera_tables.similarity import SimilarityOptions, run_similarity

REAL_CORPUS_PAGES = 9_793
LARGE_CORPUS_PAGES = 100_000
MACHINES = (1, 2, 4, 8, 16)
DPI_FOR_1450_PX = 165


def pages_per_second(corpus: Path, out: Path, workers: int) -> float:
    """Throughput (pages/s) of the page-analysis step of a run into the fresh folder ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    options = SimilarityOptions(explain=False, report=False, networks=False, workers=workers)
    summary = run_similarity(corpus, out, options)
    if summary.pages_reused or summary.pages_skipped:
        raise RuntimeError(f"{summary.pages_reused} pages reused, {summary.pages_skipped} "
                           "skipped: not a fresh run of readable pages")
    return summary.pages_ok / summary.timings["pages"]


def hours(pages: int, throughput: float) -> str:
    return f"{pages / throughput / 3600:8.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = generate_corpus(work / "corpus", pages=args.pages, seed=args.seed,
                                 dpi_range=(DPI_FOR_1450_PX, DPI_FOR_1450_PX))
        executor = make_executor(workers=args.workers)
        print(f"corpus: {args.pages} synthetic pages (seed {args.seed}); {usable_cores()} cores; "
              f"workers: {executor.description}")
        executor.close()
        settings = (1, args.workers)
        rates = {workers: [] for workers in settings}
        for repeat in range(args.repeats):
            for workers in settings if repeat % 2 == 0 else settings[::-1]:
                rates[workers].append(pages_per_second(corpus, work / "out", workers))
    median = {workers: statistics.median(found) for workers, found in rates.items()}
    for workers in settings:
        print(f"{workers:>2} process{'es' if workers > 1 else '  '}: {median[workers]:6.2f} "
              f"pages/s (median of {', '.join(f'{r:.2f}' for r in rates[workers])})")
    print(f"ratio {median[args.workers] / median[1]:.2f}x")
    best_workers = max(median, key=median.get)
    best = median[best_workers]
    print(f"\nprojected page-analysis time with {best_workers} process(es) ({best:.2f} pages/s per "
          "machine), assuming linear scaling per added machine:")
    print(f"{'machines':>8} {REAL_CORPUS_PAGES:>10,} pages {LARGE_CORPUS_PAGES:>10,} pages")
    for machines in MACHINES:
        print(f"{machines:>8} {hours(REAL_CORPUS_PAGES, best * machines):>16} "
              f"{hours(LARGE_CORPUS_PAGES, best * machines):>16}")


if __name__ == "__main__":
    main()
