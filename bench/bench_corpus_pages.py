"""The page step of a corpus run, in this process against worker processes, in one run.

`tables similarity` analyses the pages of a corpus (hash, decode, thumbnail, page analysis,
cache write) in this process, or in ``--workers N`` processes (``corpus_tools.execution``).
For synthetic pages of about 1000 x 1450 px (or the page images of the folders given) this
prints, for this process alone and for one worker process per core, the pages/s of that step
(median over repetitions, the two alternating, each into a fresh results folder) and their
ratio.

Usage: python bench/bench_corpus_pages.py [FOLDER ...] [--repeats N] [--synthetic N]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
from pathlib import Path

from corpus_tools.execution import make_executor, usable_cores
from corpus_tools.synth import generate_corpus
from sphaera_tables.similarity import SimilarityOptions, run_similarity

DPI_FOR_1450_PX = 165
PAGES_ONLY = SimilarityOptions(explain=False, report=False, networks=False)


def corpus_folder(folders, synthetic: int, tmp: Path) -> Path:
    """A folder holding the pages to time: the given folders' pages, or new synthetic ones."""
    if not folders:
        return generate_corpus(tmp / "corpus", pages=synthetic, seed=3,
                               dpi_range=(DPI_FOR_1450_PX, DPI_FOR_1450_PX))
    corpus = tmp / "corpus"
    corpus.mkdir()
    for folder in folders:
        for path in sorted(Path(folder).iterdir()):
            if path.is_file() and path.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif"):
                shutil.copy(path, corpus / f"{Path(folder).name}_{path.name}")
    return corpus


def pages_per_second(corpus: Path, out: Path, workers: int | None) -> float:
    """Pages/s of the page step of a run into the fresh folder ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    summary = run_similarity(corpus, out, dataclasses.replace(PAGES_ONLY, workers=workers))
    if summary.pages_skipped:
        raise RuntimeError(f"{summary.pages_skipped} pages could not be read")
    return summary.pages_ok / summary.timings["pages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_folder(args.folders, args.synthetic, Path(tmp))
        cores = usable_cores()
        described = make_executor(workers=cores)
        print(f"{cores} cores; {described.description}")
        described.close()
        rates = {1: [], cores: []}
        for repeat in range(args.repeats):
            for workers in ((1, cores) if repeat % 2 == 0 else (cores, 1)):
                rates[workers].append(pages_per_second(corpus, Path(tmp) / "out", workers))
        one, many = statistics.median(rates[1]), statistics.median(rates[cores])
        print(f"pages/s, this process alone   {one:6.2f}   "
              f"({', '.join(f'{r:.2f}' for r in rates[1])})")
        print(f"pages/s, {cores} processes         {many:6.2f}   "
              f"({', '.join(f'{r:.2f}' for r in rates[cores])})   ratio {many / one:.2f}x")


if __name__ == "__main__":
    main()
