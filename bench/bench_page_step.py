"""The page step of `tables similarity`, committed (git HEAD or ``--old REV``) against today's, in
one process.

For pages of about 1000 x 1450 px (the real 1604 table page and synthetic pages at 165 dpi, or
the page images of the folders given) it prints, old beside new:
- pages/s of the whole page step (content hash, decoding, thumbnail, page analysis, cache
  write), old and new alternating within each repetition; medians over the repetitions and
  their ratio (the machine may be shared: only the ratio of one run is a fair comparison);
- GFLOP per page: the detector's nominal work (both working scales and the scale and rotation
  choice, as in ``bench_detector.py``) and what each version ran (tile margins, blank parts
  skipped), the share of the machine's measured conv peak that the nominal work reaches, and
  the page time over the time the nominal work takes at that peak (the FLOP floor);
- time per stage, median over repetitions, stages called one by one;
- peak resident memory of a child process that runs the page step on the pages.

Usage: python bench/bench_page_step.py [FOLDER ...] [--repeats N] [--synthetic N] [--old REV]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from snapshot import ROOT, current_modules, snapshot_modules  # noqa: E402

from corpus_tools.ingest import file_sha256  # noqa: E402
from corpus_tools.storage import save_npz_atomic  # noqa: E402
from digit_detector import forward  # noqa: E402
from digit_detector.page import IMAGE_SUFFIXES, load_page  # noqa: E402
from digit_detector.weights import load_detector  # noqa: E402
from sphaera_tables.page_task import write_thumbnail  # noqa: E402

REAL_PAGE = ROOT.parent / "shared/data/real/tables/1921_pifferi_sfera_1604_p368.jpg"
DPI_FOR_1450_PX = 165
STAGES = ("hash", "decode", "thumbnail", "scale + rotation choice", "ink at working scale",
          "maps, chosen scale", "second scale (maps + evidence)", "peaks",
          "bigram head + pooling", "cache write")


def bench_pages(folders, synthetic: int, tmp: Path) -> list[Path]:
    """The page images of ``folders``, or the real table page and ``synthetic`` new ones."""
    if folders:
        return [p for f in folders for p in sorted(Path(f).iterdir())
                if p.suffix.lower() in IMAGE_SUFFIXES]
    from corpus_tools.synth import generate_corpus

    corpus = generate_corpus(tmp / "corpus", pages=synthetic, seed=3,
                             dpi_range=(DPI_FOR_1450_PX, DPI_FOR_1450_PX))
    return [REAL_PAGE, *sorted(corpus.glob("*.jpg"))][: synthetic + 1]


def page_step(impl, path: Path, detector, out: Path) -> None:
    """What a corpus run does for one new page (``sphaera_tables.page_task``)."""
    file_sha256(path)
    grey = load_page(path)
    write_thumbnail(grey, out / "thumbnail.jpg")
    analysis = impl.page_analysis.analyse_page(grey, detector,
                                               impl.page_analysis.FeatureConfig())
    save_npz_atomic(out / "cache.npz", **analysis.to_arrays())


def stage_times(impl, path: Path, detector, out: Path) -> dict[str, float]:
    """Seconds of each of ``STAGES`` on one page, the stages called one by one."""
    prepare, inference, config = impl.prepare, impl.inference, detector.config
    settled = _settled(prepare, load_page(path), detector)
    times, clock = {}, time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        times[stage] = times.get(stage, 0.0) + now - clock
        clock = now

    file_sha256(path)
    lap("hash")
    grey = load_page(path)
    lap("decode")
    write_thumbnail(grey, out / "thumbnail.jpg")
    lap("thumbnail")
    scale, rotation = prepare.choose_scale_and_rotation(grey, detector)
    lap("scale + rotation choice")
    prepared = dataclasses.replace(
        prepare.prepare_page(grey, detector, scale=scale, rotation=rotation), **settled)
    lap("ink at working scale")
    maps = inference.digit_maps(detector, prepared)
    lap("maps, chosen scale")
    if not getattr(prepared, "scale_from_evidence", False):
        prepared, maps = inference._better_of_two_scales(grey, detector, prepared, maps,
                                                         getattr(inference, "TILE", 512))
    lap("second scale (maps + evidence)")
    inference.find_digits(maps, prepared, digit_height_px=config.digit_height_px,
                          digit_pitch_px=config.digit_pitch_px)
    lap("peaks")
    detect_seconds = time.perf_counter()
    inference.detect(grey, detector)
    detect_seconds = time.perf_counter() - detect_seconds
    clock = time.perf_counter()
    analysis = impl.page_analysis.analyse_page(grey, detector,
                                               impl.page_analysis.FeatureConfig())
    lap("bigram head + pooling")
    times["bigram head + pooling"] -= detect_seconds
    save_npz_atomic(out / "cache.npz", **analysis.to_arrays())
    lap("cache write")
    return times


def _settled(prepare, grey, detector) -> dict:
    """``scale_from_evidence`` of the page's automatic preparation, for versions that have it
    (found before the stages are timed)."""
    if "scale_from_evidence" not in getattr(prepare.PreparedPage, "__dataclass_fields__", {}):
        return {}
    return {"scale_from_evidence": prepare.prepare_page(grey, detector).scale_from_evidence}


PEAK_SIDES = (192, 256, 350, 542)
"""Squares the conv peak is measured on, px: tiles of 160 to 512 px with their margins (the page
step's is 320). On a 1024 px square (64 MB a tensor) the same convolution is bound by memory and
reached 70 GFLOP/s where these reached 118-133 (2 cores)."""


def conv_peak_gflops(repeats: int = 5) -> float:
    """Best rate of the detector's widest layer kind (16 -> 16 channels, 3 x 3, a ReLU fused)
    on the squares ``PEAK_SIDES``, channels-last in and out with its weight packed, as
    ``digit_detector.forward`` runs it within the network, GFLOP/s: what this machine's
    convolutions reach."""
    layer = torch.nn.Module()
    layer.layers = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1, bias=False),
                                       torch.nn.ReLU())
    [(conv, weight, activation)] = forward._packed_layers(layer)
    rates = []
    with torch.no_grad():
        for side in PEAK_SIDES:
            x = torch.rand(1, 16, side, side).contiguous(memory_format=torch.channels_last)
            best = np.inf
            for _ in range(repeats + 1):
                start = time.perf_counter()
                torch.ops.mkldnn._convolution_pointwise(x, weight, None, [1, 1], [1, 1], [1, 1],
                                                        1, activation, [], "")
                best = min(best, time.perf_counter() - start)
            rates.append(2 * 16 * 16 * 9 * side * side / best / 1e9)
    return max(rates)


def nominal_pixels(paths, detector, impl) -> float:
    """Mean working pixels per page that the detector's nominal work covers: the page at its
    chosen scale and, unless its crops settled the scale, at ``SMALLER_SCALE`` times it; the
    rotation choice's crops; and the scale choice's crops (``CROPS`` crops at each coarse
    scale and two neighbours of the estimate, where versions have it)."""
    prepare = impl.prepare
    crop = prepare.CROPS * prepare.CROP_SIDE**2
    scale_steps = [*getattr(prepare, "COARSE_SCALE_STEPS", ()), -1, 1]
    scale_crops = crop * sum(getattr(prepare, "SCALE_STEP", 1) ** (2 * step)
                             for step in scale_steps) if len(scale_steps) > 2 else 0
    pixels = []
    for path in paths:
        prepared = prepare.prepare_page(load_page(path), detector)
        second = 0 if getattr(prepared, "scale_from_evidence", False) else 1
        pixels.append(prepared.image[0, 0].numel() * (1 + second * impl.inference.SMALLER_SCALE**2)
                      + crop * len(prepare.ROTATIONS) + scale_crops)
    return float(np.mean(pixels))


def run_pixels(impl, paths, detector) -> float:
    """Mean pixels per page that ``impl`` actually passed through the detector."""
    counted = [0]

    def count(batch):
        counted[0] += batch.shape[0] * batch.shape[-1] * batch.shape[-2]

    hook = detector.register_forward_pre_hook(lambda _, args: count(args[0]))
    patched = hasattr(impl.prepare, "detector_maps")
    if patched:
        original = impl.prepare.detector_maps

        def counting(net, batch):  # (a fallback to net(batch) would count twice)
            count(batch)
            return original(net, batch)

        impl.prepare.detector_maps = impl.inference.detector_maps = counting
    try:
        for path in paths:
            impl.inference.detect(load_page(path), detector)
    finally:
        hook.remove()
        if patched:
            impl.prepare.detector_maps = impl.inference.detector_maps = original
    return counted[0] / len(paths)


def peak_memory_mib(version: str, paths, old_rev: str) -> float:
    """Peak resident memory (MiB) of a child process running ``version``'s page step (``old``:
    the code of ``old_rev``)."""
    result = subprocess.run([sys.executable, __file__, "--memory-child", version,
                             "--old", old_rev, *map(str, paths)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def memory_child(version: str, paths, old_rev: str) -> None:
    impl = snapshot_modules(old_rev) if version == "old" else current_modules()
    detector = load_detector()
    detector.eval()
    with tempfile.TemporaryDirectory() as out:
        for path in paths:
            page_step(impl, Path(path), detector, Path(out))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--synthetic", type=int, default=5)
    parser.add_argument("--old", default="HEAD", help="git revision of the old code")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.folders, args.old)
        return
    impls = {"old": snapshot_modules(args.old), "new": current_modules()}
    detector = load_detector()
    detector.eval()
    with tempfile.TemporaryDirectory() as tmp:
        paths = bench_pages(args.folders, args.synthetic, Path(tmp))
        shape = load_page(paths[0]).shape
        print(f"{len(paths)} pages (first {shape[1]} x {shape[0]} px), torch threads "
              f"{torch.get_num_threads()}, {args.repeats} repetitions, old and new alternating")
        totals = {name: [] for name in impls}
        stages = {name: {stage: [] for stage in STAGES} for name in impls}
        for repeat in range(args.repeats):
            for name in (("old", "new") if repeat % 2 == 0 else ("new", "old")):
                start = time.perf_counter()
                for path in paths:
                    page_step(impls[name], path, detector, Path(tmp))
                totals[name].append(time.perf_counter() - start)
                for stage, seconds in stage_times(impls[name], paths[repeat % len(paths)],
                                                  detector, Path(tmp)).items():
                    stages[name][stage].append(seconds)
        report(impls, totals, stages, paths, detector, args.old)


def report(impls, totals, stages, paths, detector, old_rev: str) -> None:
    """Print the side-by-side table."""
    flops_per_pixel = detector.config.flops_per_pixel()
    nominal = flops_per_pixel * nominal_pixels(paths, detector, impls["new"]) / 1e9
    peak = conv_peak_gflops()
    seconds = {name: float(np.median(values)) / len(paths) for name, values in totals.items()}
    print(f"{'':34}{'old':>12}{'new':>12}")
    print(f"{'pages/s (median)':34}{1 / seconds['old']:12.2f}{1 / seconds['new']:12.2f}"
          f"   ratio {seconds['old'] / seconds['new']:.2f}x")
    print(f"{'s per page (median)':34}{seconds['old']:12.3f}{seconds['new']:12.3f}")
    ran = {name: flops_per_pixel * run_pixels(impl, paths, detector) / 1e9
           for name, impl in impls.items()}
    print(f"{'GFLOP per page, nominal':34}{nominal:12.1f}{nominal:12.1f}")
    print(f"{'GFLOP per page, run':34}{ran['old']:12.1f}{ran['new']:12.1f}")
    print(f"{'% of conv peak (nominal / time)':34}"
          + "".join(f"{100 * nominal / seconds[n] / peak:12.1f}" for n in ("old", "new"))
          + f"   (peak {peak:.0f} GFLOP/s, 16->16 3x3 conv)")
    print(f"{'times the FLOP floor (nominal)':34}"
          + "".join(f"{seconds[n] * peak / nominal:12.2f}" for n in ("old", "new")))
    print("time per stage, ms (median; one page per repetition):")
    for stage in STAGES:
        old, new = (1000 * float(np.median(stages[n][stage])) for n in ("old", "new"))
        print(f"  {stage:32}{old:12.1f}{new:12.1f}")
    memory = {name: peak_memory_mib(name, paths, old_rev) for name in impls}
    print(f"{'peak RSS, MiB (child process)':34}{memory['old']:12.0f}{memory['new']:12.0f}")


if __name__ == "__main__":
    main()
