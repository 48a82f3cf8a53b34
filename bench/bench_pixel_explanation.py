"""Pixel-level BiLRP of one page pair: whole-page LRP passes (old) against crops (new).

Old: ``pooled_lrp_factors`` on the page model, one backward pass through the whole page per
non-zero bigram dimension (what ``tables explain`` did). New: ``cropped_pooled_factors``, LRP
passes on crops around the digits (sphaera_tables/pixel_crops.py). Both run in this process on
the same two synthetic pages (`tables synth`, real size, the two with the most digits) and the
same rules; the pair explanations are compared. Per pair: wall and CPU seconds of the two pages'
factors and the pair product, and the peak resident memory during it (Linux: the high-water mark
is reset before each run through /proc/self/clear_refs). New runs before and after old, so a
shared machine's load shows in the spread.

Run: python3 bench/bench_pixel_explanation.py [--pages 6] [--seed 7] [--threads N] [--new-only]
(old takes minutes per pair; on a loaded machine compare CPU seconds with --threads 1).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from corpus_tools.synth import generate_corpus
from digit_detector.page import load_page
from digit_detector.prepare import prepare_page
from digit_detector.weights import load_detector
from sphaera_tables.bigram import PageModel
from sphaera_tables.explain import bilrp, grid_labels, pooled_lrp_factors
from sphaera_tables.page_analysis import FeatureConfig, analyse_page
from sphaera_tables.pixel_crops import cropped_pooled_factors
from sphaera_tables.pixel_explanation import PIXEL_CELL, detector_composite


def busiest_pages(corpus: Path, n: int = 2) -> list[Path]:
    """The ``n`` pages of a synthetic corpus printing the most digits (from its truth)."""
    digits = pd.read_csv(corpus / "truth" / "digits.csv")
    column = "page_id" if "page_id" in digits else digits.columns[0]
    busiest = digits[column].value_counts().index[:n]
    return [corpus / name for name in busiest]


def peak_rss_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(name, run):
    """Run ``run()`` once: (result, wall s, CPU s, peak RSS MiB, peak above the start MiB)."""
    peak_rss_reset()
    start_rss = rss_kib("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = rss_kib("VmHWM")
    print(f"{name:4s} wall {wall:7.2f} s  CPU {cpu:7.2f} s  peak RSS {peak / 1024:7.0f} MiB "
          f"(+{(peak - start_rss) / 1024:.0f} MiB above the start)", flush=True)
    return result, wall, peak / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=6, help="synthetic pages to choose from")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--new-only", action="store_true", help="skip the slow reference")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    detector = load_detector().eval()
    features = FeatureConfig()
    head = features.head(detector.config)
    composite = detector_composite(detector)
    with tempfile.TemporaryDirectory() as folder:
        corpus = generate_corpus(Path(folder) / "corpus", pages=args.pages, seed=args.seed)
        inputs = []
        for path in busiest_pages(corpus):
            grey = load_page(path)
            analysis = analyse_page(grey, detector, features)
            x = prepare_page(grey, detector, scale=analysis.scale,
                             rotation=analysis.rotation).image
            inputs.append((x, grid_labels(tuple(x.shape[-2:]), PIXEL_CELL)))
            print(f"{path.name}: {grey.shape[1]} x {grey.shape[0]} px, working scale "
                  f"{x.shape[-1]} x {x.shape[-2]} px, {int(np.count_nonzero(analysis.phi))} "
                  "bigram dimensions", flush=True)
    model = PageModel(detector, head).eval()

    def old():
        return bilrp(*[pooled_lrp_factors(model, x, labels, composite) for x, labels in inputs])

    def new():
        return bilrp(*[cropped_pooled_factors(detector, head, x, labels, composite)
                       for x, labels in inputs])

    print(f"torch threads: {args.threads}; per pair (two pages' factors + pair product):")
    new_1, new_wall_1, new_peak_1 = measure("new", new)
    if args.new_only:
        return
    reference, old_wall, old_peak = measure("old", old)
    new_2, new_wall_2, new_peak_2 = measure("new", new)
    scale = np.abs(reference.relevance).max()
    for result in (new_1, new_2):
        error = np.abs(result.relevance - reference.relevance).max()
        print(f"max |new - old| relevance {error:.2e} (largest |old| {scale:.2e}); "
              f"score {reference.y:.6f} / {result.y:.6f}")
    new_wall = (new_wall_1 + new_wall_2) / 2
    print(f"old / new: wall {old_wall / new_wall:.1f}x faster (new {new_wall_1:.2f} s, "
          f"{new_wall_2:.2f} s), peak RSS old {old_peak:.0f} MiB, new "
          f"{max(new_peak_1, new_peak_2):.0f} MiB")


if __name__ == "__main__":
    main()
