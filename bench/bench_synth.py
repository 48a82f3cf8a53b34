"""Speed of the synthetic corpus generator (target: 200 pages in under 2 minutes).

Prints the wall time of ``generate_corpus`` for N pages and, as a baseline measured in the same
process on the same page plans, the time of the clean typesetting alone, so the cost of the
print-and-scan simulation and of writing JPEGs shows as a ratio. Timings on a shared machine
are noisy.

    python bench/bench_synth.py [--pages 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from corpus_tools.synth import generate_corpus
from corpus_tools.synth.corpus import plan_corpus, render_page


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    plans = plan_corpus(args.pages, args.seed)
    start = time.perf_counter()
    for index, plan in enumerate(plans):
        render_page(plan, np.random.default_rng([args.seed, 1, index]))
    typeset = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        corpus = generate_corpus(Path(tmp) / "corpus", pages=args.pages, seed=args.seed)
        total = time.perf_counter() - start
        megapixels = sum(plan.book.style.page_inches[0] * plan.book.style.page_inches[1]
                         * plan.book.dpi ** 2 for plan in plans) / 1e6
        size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file()) / 1e6

    print(f"pages: {args.pages}  (about {megapixels:.0f} megapixels, {size:.0f} MB written)")
    print(f"generate_corpus: {total:.1f} s  = {args.pages / total:.2f} pages/s  "
          f"(target: 200 pages < 120 s -> {'met' if total * 200 / args.pages < 120 else 'missed'})")
    print(f"baseline, clean typesetting only: {typeset:.1f} s  = {args.pages / typeset:.2f} pages/s")
    print(f"ratio full / typesetting: {total / typeset:.2f}")


if __name__ == "__main__":
    main()
