"""Digit detector speed and memory: pages per second on a 1200 px page, share of the machine's
measured peak FLOP rate, and peak memory on a 600 dpi-sized page (about 3500 x 5000 px).

Run: python bench/bench_detector.py [--weights FILE] [--baseline FILE] [--repeats N]
(--baseline: time another weight file on the same page in the same process and print the
speed ratio, e.g. the previous shipped weights).
Figures are noisy on a shared machine: every figure is a median over repeats, and the peak FLOP
rate is measured in the same process, just before.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from digit_detector import detect, digit_maps, find_digits, load_detector, prepare_page
from digit_detector.inference import SMALLER_SCALE
from digit_detector.prepare import COARSE_SCALE_STEPS, CROP_SIDE, CROPS, ROTATIONS, SCALE_STEP

REAL_PAGE = Path(__file__).resolve().parents[2] / "shared/data/real/tables/1921_pifferi_sfera_1604_p368.jpg"


def peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matmul rate, GFLOP/s (best of ``repeats``)."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def test_page(longest: int) -> np.ndarray:
    """The real 1604 table page (or a rendered one) resized so its longest side is ``longest``."""
    if REAL_PAGE.is_file():
        from digit_detector import load_page

        grey = load_page(REAL_PAGE)
    else:
        from corpus_tools.synth import generate_corpus

        corpus = generate_corpus("/tmp/bench_detector_corpus", pages=3, seed=0)
        grey = cv2.imread(str(sorted(corpus.glob("*.jpg"))[1]), cv2.IMREAD_GRAYSCALE)
    factor = longest / max(grey.shape)
    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def time_page(grey, detector, repeats):
    """Median seconds of ``detect`` (which maps the page at one working scale, or at two when
    the crops did not settle it, see ``digit_detector.inference.SMALLER_SCALE``) and of its
    stages at the chosen scale."""
    stages = {"total": [], "prepare (scale + rotation)": [], "maps, chosen scale": [],
              "peaks": []}
    detection = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        detection = detect(grey, detector)
        t1 = time.perf_counter()
        prepared = prepare_page(grey, detector)
        t2 = time.perf_counter()
        maps = digit_maps(detector, prepared)
        t3 = time.perf_counter()
        find_digits(maps, prepared, digit_height_px=detector.config.digit_height_px,
                    digit_pitch_px=detector.config.digit_pitch_px)
        t4 = time.perf_counter()
        for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key].append(value)
    return {k: float(np.median(v)) for k, v in stages.items()}, detection


def memory_child(weights: str | None) -> None:
    """Run in a child process: detect on a 3500 x 5000 px page, print RSS before and after."""
    detector = load_detector(weights)
    grey = test_page(5000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    detection = detect(grey, detector)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{grey.shape[1]}x{grey.shape[0]} {before:.0f} {after:.0f} {seconds:.2f} "
          f"{len(detection.digits)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--baseline", default=None,
                        help="another weight file timed on the same page for a speed ratio")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.weights)
        return
    detector = load_detector(args.weights)
    print(f"torch threads: {torch.get_num_threads()}")
    peak = peak_gflops()
    print(f"peak (2048^2 float32 matmul): {peak:.1f} GFLOP/s")
    grey = test_page(1200)
    seconds, detection = time_page(grey, detector, args.repeats)
    prepared, digits = detection.prepared, detection.digits
    chosen = prepare_page(grey, detector)
    second = 0 if chosen.scale_from_evidence else SMALLER_SCALE**2
    working = chosen.image.shape[-1] * chosen.image.shape[-2] * (1 + second)
    config = detector.config
    scale_steps = [*COARSE_SCALE_STEPS, -1, 1]
    choice_pixels = CROPS * CROP_SIDE**2 * (len(ROTATIONS) + sum(SCALE_STEP ** (2 * step)
                                                                 for step in scale_steps))
    flops = config.flops_per_pixel() * (working + choice_pixels)
    print(f"page {grey.shape[1]}x{grey.shape[0]} px, chosen working {prepared.image.shape[-1]}x"
          f"{prepared.image.shape[-2]} px (scale {prepared.scale:.3f}, chosen by the crops: "
          f"{chosen.scale_from_evidence}, rotation {prepared.rotation}), {len(digits)} digits")
    print(f"detector: {config.flops_per_pixel() / 1e3:.1f} kFLOP per working pixel, "
          f"{flops / 1e9:.1f} GFLOP per page (maps at the scale(s) tried + scale/rotation "
          "choice, "
          "no blank-tile skip)")
    for stage, value in seconds.items():
        print(f"  {stage:<28} {value * 1000:8.1f} ms (median of {args.repeats})")
    print(f"throughput: {1 / seconds['total']:.2f} pages/s")
    if args.baseline:
        base_seconds, base = time_page(grey, load_detector(args.baseline), args.repeats)
        print(f"baseline {args.baseline}: {1 / base_seconds['total']:.2f} pages/s (scale "
              f"{base.prepared.scale:.3f}, {len(base.digits)} digits); speed-up "
              f"{base_seconds['total'] / seconds['total']:.2f}x")
    rate = flops / seconds["total"] / 1e9
    print(f"achieved: {rate:.1f} GFLOP/s = {100 * rate / peak:.1f} % of measured peak")
    child = subprocess.run([sys.executable, __file__, "--memory-child"]
                           + (["--weights", args.weights] if args.weights else []),
                           capture_output=True, text=True, check=True)
    size, before, after, elapsed, found = child.stdout.split()
    print(f"600 dpi-sized page {size}: peak RSS {after} MiB (process after imports and page "
          f"load: {before} MiB), {elapsed} s, {found} digits")


if __name__ == "__main__":
    main()
