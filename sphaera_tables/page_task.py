"""The per-page unit of work of a corpus run: idempotent, self-contained, writes its own result.

A task reads one page image, analyses it (:func:`~sphaera_tables.page_analysis.analyse_page`)
and writes the analysis to its cache file and a thumbnail for the report, each atomically. A task
whose cache file exists returns at once: a run that was interrupted resumes where it stopped, and
a page already analysed with the same image, model and settings is never analysed again. Tasks
are plain data, so any executor (this process, a Dask cluster) can run them.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from corpus_tools.page_sources import PageSource
from corpus_tools.results_folder import ResultsFolder
from corpus_tools.storage import JPEG_END, atomic_path, ends_complete, save_npz_atomic
from digit_detector.page import PageReadError
from digit_detector.weights import load_detector
from sphaera_tables.page_analysis import FeatureConfig, PageAnalysis, analyse_page

ANALYSIS_MODULES = ("digit_detector.model", "digit_detector.forward",
                    "digit_detector.inference", "digit_detector.prepare",
                    "digit_detector.reading", "digit_detector.words", "sphaera_tables.bigram",
                    "sphaera_tables.explain.pooling", "sphaera_tables.numbers",
                    "sphaera_tables.page_analysis")
"""The modules whose code defines what a cached page analysis holds: the network, its forward
pass, the page's preparation and digits (letters inside words left out), the bigram head, the
pooling of its relevance onto the numbers, and the analysis itself."""
THUMBNAIL_SIDE = 800
TRIM_ABOVE_BYTES = 1 << 30
"""Resident memory above which a page task hands freed memory back to the system (see
:func:`_return_freed_memory`)."""


@dataclass(frozen=True)
class PageTask:
    """Everything needed to analyse one page, as plain data."""

    page_id: str
    source: PageSource
    cache_file: str
    thumbnail_file: str
    detector_file: str | None
    features: FeatureConfig


@dataclass(frozen=True)
class PageOutcome:
    """What a task reports back: ``status`` is "ok" or "skipped: <reason>"."""

    page_id: str
    status: str
    reused: bool
    seconds: float


def cache_key(content_sha256: str, model_sha256: str, features: FeatureConfig) -> str:
    """Key of a page's cached analysis: same image bytes, model, settings and analysis code
    -> same key. The code's fingerprint makes a change to the network's definition redo the
    pages without anybody having to remember a format number."""
    blob = json.dumps(
        {"code": analysis_code_fingerprint(), "content": content_sha256,
         "model": model_sha256, "features": features.to_dict()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def analysis_code_fingerprint() -> str:
    """SHA-256 of the source of :data:`ANALYSIS_MODULES`."""
    return code_fingerprint(ANALYSIS_MODULES)


@functools.cache
def code_fingerprint(modules: tuple[str, ...]) -> str:
    """SHA-256 of the source of ``modules`` (importable names), read once per process."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    return digest.hexdigest()


def cache_file(out: str | Path, key: str) -> Path:
    """Where a results folder keeps the analysis with cache key ``key``."""
    return ResultsFolder(out).cache_file(key)


def cached_analysis_loader(out: str | Path):
    """``load(page_id) -> PageAnalysis`` for the pages of a finished results folder ``out``."""
    manifest = ResultsFolder(out).read_manifest()
    settings = manifest["config"]["features"]
    features = FeatureConfig(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in settings.items()})

    def load(page_id: str) -> PageAnalysis:
        key = cache_key(manifest["inputs"][page_id], manifest["model_hash"], features)
        return load_analysis(cache_file(out, key))

    return load


def load_analysis(path: str | Path) -> PageAnalysis:
    """Read a cached analysis (``numpy.load`` with pickles refused)."""
    with np.load(path, allow_pickle=False) as arrays:
        return PageAnalysis.from_arrays(arrays)


@functools.lru_cache(maxsize=4)
def _detector(path: str | None):
    detector = load_detector(path)
    detector.eval()
    return detector


def run_page_task(task: PageTask) -> PageOutcome:
    """Analyse one page unless its cache file and thumbnail exist and are whole (a damaged one
    is redone); never raises for a bad page."""
    start = time.perf_counter()
    if _readable(task.cache_file) and ends_complete(task.thumbnail_file, JPEG_END):
        return PageOutcome(task.page_id, "ok", True, 0.0)
    try:
        grey = task.source.load()
    except PageReadError as error:
        reason = str(error).removeprefix(f"{task.source.path}: ")
        return PageOutcome(task.page_id, f"skipped: {reason}", False,
                           time.perf_counter() - start)
    write_thumbnail(grey, task.thumbnail_file)
    analysis = analyse_page(grey, _detector(task.detector_file), task.features)
    save_npz_atomic(task.cache_file, **analysis.to_arrays())
    del grey, analysis
    _return_freed_memory()
    return PageOutcome(task.page_id, "ok", False, time.perf_counter() - start)


def _return_freed_memory() -> None:
    """Hand the memory freed by a page's large arrays back to the system once the process
    holds more than ``TRIM_ABOVE_BYTES``.

    glibc keeps it in fragmented heaps otherwise, and a worker's resident memory grows page
    after page (measured: 1.6 GB after 60 pages of at most 2,100 px instead of 0.55 GB). Not
    after every page: the next page then takes the memory back from the system page by page,
    which cost 8-10 % of the page step (35 pages of 900-2,000 px: 19.9 s against 18.5 s).
    """
    trim = _malloc_trim()
    if trim is not None and _resident_bytes() > TRIM_ABOVE_BYTES:
        trim(0)


def _resident_bytes() -> int:
    """This process's resident memory (Linux; 0 where /proc cannot tell)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, looked up once per process; None elsewhere (the allocator is
    then left as it is)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _readable(cache_file: str) -> bool:
    """Whether a cached analysis exists and loads (a damaged file is redone, not trusted)."""
    if not Path(cache_file).exists():
        return False
    try:
        load_analysis(cache_file)
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return False
    return True


def write_thumbnail(grey: np.ndarray, target: str | Path, side: int = THUMBNAIL_SIDE) -> None:
    """A small JPEG of the page (longest side ``side`` px) for reports and explanations."""
    scale = min(1.0, side / max(grey.shape))
    small = cv2.resize(grey, (max(1, round(grey.shape[1] * scale)),
                              max(1, round(grey.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise OSError(f"could not encode a thumbnail for {target}")
    with atomic_path(target) as tmp:
        tmp.write_bytes(encoded.tobytes())
