"""End-to-end throughput of `tables similarity` on ~1200 px pages, and where the time goes.

Generates a synthetic corpus whose pages are about 1200 px on their longest side, then
1. times detection alone and the whole page analysis (detection, bigram features,
   explanation factors) per page,
   and the share the ``numbers`` model's reading of the digits takes,
2. runs the whole corpus pipeline without and with explanations (top-5 matches) and prints
   pages/s and the share the explanations add.
Usage: python bench/bench_pipeline.py [PAGES]
"""

import sys
import tempfile
import time
from pathlib import Path

from corpus_tools.synth import generate_corpus
from digit_detector.inference import detect
from digit_detector.page import load_page
from digit_detector.weights import load_detector
from sphaera_tables.numbers import group_numbers
from sphaera_tables.page_analysis import FeatureConfig, PageAnalysis, analyse_page
from sphaera_tables.similarity import SimilarityOptions, run_similarity

DPI_FOR_1200_PX = 137  # synthetic pages are about 8.8 inches tall


def split_per_page(paths, detector) -> tuple[float, float, float]:
    """Mean seconds per page for detection alone, for the page analysis without the
    ``numbers`` model's reading, and for that reading (digits into numbers, rows and
    neighbours, cell features)."""
    config = FeatureConfig()
    detection = analysis = reading = 0.0
    for path in paths:
        grey = load_page(path)
        start = time.perf_counter()
        detect(grey, detector)
        detection += time.perf_counter() - start
        start = time.perf_counter()
        page = analyse_page(grey, detector, config)
        analysis += time.perf_counter() - start
        fresh = PageAnalysis.from_arrays(page.to_arrays())
        start = time.perf_counter()
        group_numbers(fresh.digits, fresh.frame)  # part of analyse_page
        grouping = time.perf_counter() - start
        fresh.cells.counts()  # done when the corpus is scored
        reading += time.perf_counter() - start
        analysis -= grouping
    return detection / len(paths), analysis / len(paths), reading / len(paths)


def main(pages: int = 40) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        generate_corpus(corpus, pages=pages, seed=3, dpi_range=(DPI_FOR_1200_PX, DPI_FOR_1200_PX))
        paths = sorted(corpus.glob("*.jpg"))
        sizes = [load_page(p).shape for p in paths[:5]]
        print(f"{len(paths)} pages, e.g. {sizes[0][1]} x {sizes[0][0]} px")
        detector = load_detector()
        detection, analysis, reading = split_per_page(paths[:8], detector)
        print(f"per page: detection alone {detection:.2f} s; analysis without the numbers "
              f"(detection, bigram features, explanation factors) {analysis:.2f} s; reading numbers and cell "
              f"features {reading:.3f} s (+{100 * reading / analysis:.1f} % of the page time without "
              "them)")
        runs = {}
        for name, explain in (("without explanations", False), ("with explanations", True)):
            options = SimilarityOptions(explain=explain, networks=False, report=False)
            start = time.perf_counter()
            summary = run_similarity(corpus, Path(tmp) / name.replace(" ", "_"), options)
            runs[name] = time.perf_counter() - start
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in summary.timings.items())
            print(f"{name}: {runs[name]:.1f} s = {len(paths) / runs[name]:.2f} pages/s "
                  f"({summary.matches} matches; {steps})")
        extra = runs["with explanations"] / runs["without explanations"] - 1
        print(f"explanations for all top-5 matches add {100 * extra:.0f} % to the run")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
