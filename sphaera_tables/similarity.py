"""``tables similarity``: a corpus folder in, the results folder of design.md section 3 out.

Steps: list pages -> analyse every page (detector, bigram counts, explanation factors; cached
per page, run by an executor) -> features -> exact blockwise top-k search -> one explanation per
candidate match -> networks and report. A run holds a lock on the results folder, writes every
file atomically and can be interrupted at any point: the next run reuses every finished page and
explanation and produces the same outputs as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import sparse

from corpus_tools.corpus_inputs import InputSettings, expand_inputs, gather_pages
from corpus_tools.execution import make_executor
from corpus_tools.ingest import file_sha256
from corpus_tools.metadata import metadata_for_pages
from corpus_tools.networks import load_results, write_networks
from corpus_tools.results_folder import (
    CELL_FEATURES,
    EXPLANATIONS,
    FEATURES,
    PIXELS_SUFFIX,
    SIMILARITY,
    STATISTICS,
    THUMBNAILS,
    ResultsFolder,
)
from corpus_tools.storage import (
    PNG_END,
    atomic_path,
    ends_complete,
    folder_lock,
    save_npy_atomic,
    save_npz_atomic,
    save_sparse_atomic,
    write_csv_atomic,
    write_json_atomic,
)
from digit_detector.weights import DEFAULT_WEIGHTS, load_detector
from sphaera_tables import __version__
from sphaera_tables.bigram import N_BIGRAMS
from sphaera_tables.cells import N_CELL_FEATURES
from sphaera_tables.explain import save_png
from sphaera_tables.match_picture import render_match
from sphaera_tables.number_links import (
    DEFAULT_LINKS,
    explain_match,
    explanation_record,
)
from sphaera_tables.page_analysis import FeatureConfig
from sphaera_tables.page_task import (
    PageTask,
    cache_file,
    cache_key,
    code_fingerprint,
    load_analysis,
    run_page_task,
)
from sphaera_tables.progress import Progress, silent, tracked
from sphaera_tables.ranking import pair_collator, ranked_matches
from sphaera_tables.report import build_report
from sphaera_tables.review.downstream import annotate_matches_csv, pair_states, verdict_labels
from sphaera_tables.scoring import (
    DEFAULT_MIN_SCORES,
    DEFAULT_MODEL,
    CorpusStatistics,
    ScoreModel,
    score_corpus,
)
from sphaera_tables.search import top_k_matches

DEFAULT_TOP_K = 15
"""Most candidate matches listed per page (``tables similarity --top-k``)."""
DEFAULT_MIN_SHARE = 0.25
"""A page lists only matches whose match score reaches this share of its best match
(``--min-share``). Chosen with ``DEFAULT_TOP_K`` on a development corpus of 500 pages (``tables
synth --pages 500 --seed 505 --typefaces source-serif-4,vollkorn-italic``, editions of up to 17
pages; detector's digits, ``numbers`` model) as the highest mAP counted on the match list:
shares 0 to 0.25 give 0.931 (0.25 lists the fewest pairs, 3,457, of which 70 % are true), 0.3
0.930, 0.35 0.927, 0.42 0.913 (the same order on the development corpora of 200 pages and of
60 pages in lining figures). Before matches were ranked by their collation, a share of 0.42 of
the best similarity gave 0.905 with 67 % of the listed pairs true."""
DEFAULT_MIN_SCORE = DEFAULT_MIN_SCORES[DEFAULT_MODEL]
FULL_MATRIX_LIMIT = 2000
DEFAULT_REPORT_MATCHES = 2000
EXPLANATION_MODULES = ("sphaera_tables.number_links", "sphaera_tables.collation",
                       "sphaera_tables.match_picture")
"""The modules whose code defines what an explanation holds and shows."""
PIXEL_MODULES = ("sphaera_tables.pixel_explanation", "sphaera_tables.pixel_crops",
                 "sphaera_tables.bigram", "sphaera_tables.explain.rules",
                 "sphaera_tables.explain.factors", "sphaera_tables.explain.pair_relevance",
                 "sphaera_tables.explain.render")
"""The modules whose code defines the pixel-level picture (``--pixels``)."""
VARIANT_COLUMNS = ["page_a", "page_b", "row_a", "row_b", "text_a", "text_b", "row_text_a",
                   "row_text_b"]
METADATA_COLUMNS = ["book_id", "title", "author", "printer", "publisher", "place", "year", "handle",
                    "year_text", "year_uncertain", "manifest", "canvas", "attribution", "rights",
                    "homepage"]


@dataclass(frozen=True)
class SimilarityOptions:
    """Settings of a corpus run (the ``tables similarity`` options)."""

    top_k: int = DEFAULT_TOP_K
    min_score: float = DEFAULT_MIN_SCORE
    min_share: float = DEFAULT_MIN_SHARE
    explain: bool = True
    pixels: bool = False
    links: int = DEFAULT_LINKS
    detector_file: str | None = None
    features: FeatureConfig = field(default_factory=FeatureConfig)
    scoring: ScoreModel = field(default_factory=ScoreModel)
    workers: int | None = None
    scheduler: str | None = None
    networks: bool = True
    report: bool = True
    report_matches: int | None = DEFAULT_REPORT_MATCHES
    inputs: InputSettings = field(default_factory=InputSettings)

    def to_dict(self) -> dict:
        return {
            "top_k": self.top_k, "min_score": self.min_score, "min_share": self.min_share,
            "explain": self.explain,
            **({"pixels": True} if self.pixels else {}), "links": self.links, "features": self.features.to_dict(),
            "pdf_dpi": self.inputs.pdf_dpi, "iiif_width": self.inputs.iiif_width,
            "scoring": self.scoring.to_dict(),
        }


@dataclass
class RunSummary:
    """What a run did: page counts, matches, where the results are, step timings (s)."""

    out: Path
    pages_ok: int
    pages_skipped: int
    pages_reused: int
    matches: int
    explanations_written: int
    timings: dict[str, float]
    messages: list[str]


class _StepTimer:
    """Wall-clock seconds spent in each named step of a run."""

    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextmanager
    def timed(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def run_similarity(corpus, out: Path | str,
                   options: SimilarityOptions | None = None,
                   progress: Progress = silent) -> RunSummary:
    """Analyse every page of ``corpus`` and write the results folder ``out``.

    ``corpus`` is a folder, a IIIF manifest (file or URL), a ``.txt`` list of such inputs, or
    a list of any of these (see :mod:`corpus_tools.corpus_inputs`).

    ``progress(done, total, message)`` follows the long steps (pages, search, explanations,
    networks and report; :mod:`sphaera_tables.progress`). Raises ``FolderLocked`` when another
    run holds ``out``.
    """
    options = options or SimilarityOptions()
    corpus, out = expand_inputs(corpus), Path(out)
    steps = _StepTimer()
    messages: list[str] = []
    with folder_lock(out):
        with steps.timed("list"):
            gathered = gather_pages(corpus, out, options.inputs, progress=progress)
            messages.extend(gathered.messages)
            pages, metadata = gathered.sources, gathered.metadata
            load_detector(options.detector_file)  # a bad weight file stops the run here
            model_sha = file_sha256(options.detector_file or DEFAULT_WEIGHTS)
            tasks, statuses, hashes = _page_tasks(pages, out, model_sha, options)
            statuses.update({item.page_id: item.status for item in gathered.skipped})
        with steps.timed("pages"):
            reused = _run_tasks(tasks, options, statuses, progress)
        ok_ids = [t.page_id for t in tasks if statuses[t.page_id] == "ok"]
        cache_of = {t.page_id: t.cache_file for t in tasks}
        with steps.timed("features"):
            phi, cells, page_rows = _read_analyses(ok_ids, cache_of, options.scoring.uses_cells)
            scored = score_corpus(phi, cells, options.scoring)
            features, maps = scored.features, scored.maps
            save_npy_atomic(out / FEATURES, scored.bigram_features.astype(np.float32))
            if options.scoring.uses_cells:
                save_sparse_atomic(out / CELL_FEATURES, scored.cell_features)
            statistics = scored.statistics.to_arrays()
            save_npz_atomic(out / STATISTICS, **statistics)
            _write_pages_csv(out, statuses, page_rows, metadata)
        with steps.timed("search"):
            candidates = top_k_matches(features, options.top_k, options.min_score,
                                       progress=progress, profile_columns=N_BIGRAMS)
        with steps.timed("collation"):
            collate = pair_collator(lambda row: load_analysis(cache_of[ok_ids[row]]), maps) \
                if options.scoring.uses_cells else None
            ranked = ranked_matches(candidates, collate, options.min_score, options.min_share,
                                    progress)
            matches = pd.DataFrame({
                "page_a": [ok_ids[i] for i in ranked.a], "page_b": [ok_ids[i] for i in ranked.b],
                "score": ranked.score.round(6), "rank": ranked["rank"],
                "similarity": ranked.similarity.round(6),
                "cells_agree": ranked.cells_agree.astype("Int64"),
                "cells_differ": ranked.cells_differ.astype("Int64"),
            })
            _write_csv(ResultsFolder(out).matches_csv, matches)
            if len(ok_ids) <= FULL_MATRIX_LIMIT:
                save_npy_atomic(out / SIMILARITY,
                                (features @ features.T).toarray().astype(np.float32))
        _write_manifest(out, corpus, options, model_sha, hashes, steps.timings)
        annotate_matches_csv(out)  # the verdict column, once pairs are reviewed
        written = 0
        if options.explain:
            with steps.timed("explanations"):
                producer = _explanation_producer(statistics, options)
                source_of = {t.page_id: t.source for t in tasks}
                written = _write_explanations(out, matches, ok_ids, cache_of, source_of, maps,
                                              options, producer, progress)
                _write_variants(out, matches)
        _remove_stale_pictures(out, matches, ok_ids, options.explain, options.pixels)
        _networks_and_report(out, options, steps, messages, progress)
        _write_manifest(out, corpus, options, model_sha, hashes, steps.timings)
    skipped = sum(1 for s in statuses.values() if s.startswith("skipped:"))
    return RunSummary(out, len(ok_ids), skipped, reused, len(matches), written, steps.timings,
                      messages)


def results_scoring(out: Path | str) -> tuple[CorpusStatistics, ScoreModel]:
    """The corpus statistics and score model of a finished results folder ``out``."""
    folder = ResultsFolder(out)
    manifest = folder.read_manifest()
    with np.load(folder.file(STATISTICS), allow_pickle=False) as arrays:
        statistics = CorpusStatistics.from_arrays(arrays)
    return statistics, ScoreModel(**manifest["config"]["scoring"])


def _page_tasks(pages, out: Path, model_sha: str, options: SimilarityOptions):
    tasks, statuses, hashes = [], {}, {}
    for page in pages:
        try:
            content = page.content_hash()
        except OSError as error:
            statuses[page.page_id] = f"skipped: cannot read file ({error.strerror})"
            continue
        hashes[page.page_id] = content
        key = cache_key(content, model_sha, options.features)
        tasks.append(PageTask(
            page_id=page.page_id,
            source=page,
            cache_file=str(cache_file(out, key)),
            thumbnail_file=str(ResultsFolder(out).thumbnail(page.page_id)),
            detector_file=options.detector_file,
            features=options.features,
        ))
        statuses[page.page_id] = "pending"
    return tasks, statuses, hashes


def _run_tasks(tasks, options, statuses, progress) -> int:
    executor = make_executor(options.workers, options.scheduler)
    reused = 0
    try:
        results = executor.imap_unordered(run_page_task, tasks)
        for _task, outcome in tracked(results, len(tasks), progress, "Analysing pages"):
            statuses[outcome.page_id] = outcome.status
            reused += outcome.reused
    finally:
        executor.close()
    return reused


def _read_analyses(ok_ids, cache_of, with_cells: bool):
    """Bigram counts (N, 100), cell counts (N, K) sparse (all zero unless ``with_cells``) and
    the pages.csv facts of each analysed page, reading each cached analysis once and keeping
    only these small parts."""
    phi = np.zeros((len(ok_ids), 100))
    cells = []
    page_rows = {}
    for row, page_id in enumerate(ok_ids):
        analysis = load_analysis(cache_of[page_id])
        phi[row] = analysis.phi
        cells.append(analysis.cells.counts() if with_cells
                     else sparse.csr_matrix((1, N_CELL_FEATURES)))
        page_rows[page_id] = {
            "height": analysis.page_shape[0], "width": analysis.page_shape[1],
            "scale": round(analysis.scale, 5), "rotation": analysis.rotation,
            "digits": len(analysis.digits), "numbers": len(analysis.numbers),
            "bigrams": round(float(analysis.phi.sum()), 3),
        }
    cells = sparse.vstack(cells, format="csr") if cells else \
        sparse.csr_matrix((0, N_CELL_FEATURES))
    return phi, cells, page_rows


def _write_pages_csv(out, statuses, page_rows, metadata):
    rows = [{"page_id": page_id, "status": statuses[page_id], **page_rows.get(page_id, {})}
            for page_id in sorted(statuses)]
    frame = pd.DataFrame(rows, columns=["page_id", "status", "width", "height", "scale",
                                        "rotation", "digits", "numbers", "bigrams"])
    pages_only = frame.loc[~frame["status"].str.startswith("ignored:"), "page_id"]
    per_page = metadata_for_pages(metadata, pages_only)
    frame = frame.merge(per_page[["page_id", *METADATA_COLUMNS]], on="page_id", how="left")
    _write_csv(ResultsFolder(out).pages_csv, frame)


def _write_csv(target: Path, frame: pd.DataFrame) -> None:
    write_csv_atomic(target, frame)


def _explanation_producer(statistics: dict, options: SimilarityOptions) -> str:
    """What every explanation of this run is made from, besides its two pages' analyses: the
    corpus statistics, ``--links``, the score model and the explanation code (SHA-256; with
    ``--pixels``, also the code of the pixel-level picture)."""
    digest = hashlib.sha256()
    for name in sorted(statistics):
        array = np.ascontiguousarray(statistics[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    made_of = {"links": options.links, "scoring": options.scoring.to_dict(),
               "code": code_fingerprint(EXPLANATION_MODULES)}
    if options.pixels:
        made_of["pixels"] = code_fingerprint(PIXEL_MODULES)
    digest.update(json.dumps(made_of, sort_keys=True).encode())
    return digest.hexdigest()


def _pair_producer(producer: str, cache_a: str, cache_b: str) -> str:
    """The producer key stored in one explanation: the run's, and both pages' analyses (their
    cache files are named by page content, detector and settings)."""
    names = f"{producer}:{Path(cache_a).stem}:{Path(cache_b).stem}"
    return hashlib.sha256(names.encode()).hexdigest()


def _explanation_current(json_path: Path, pngs: list[Path], producer: str) -> bool:
    """Whether an explanation on disk was made by this producer and all its files are whole
    (the JSON, written last, and its pictures)."""
    if not all(ends_complete(png, PNG_END) for png in pngs):
        return False
    try:
        record = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("producer") == producer


def _write_explanations(out, matches, ok_ids, cache_of, source_of, maps, options, producer,
                        progress) -> int:
    """One JSON and one PNG per candidate match (and with ``--pixels`` the pixel-level picture,
    PAIR_pixels.png); a pair whose files are whole and were made by the same producer (see
    :func:`_pair_producer`) is kept, any other is redone."""
    row_of = {page_id: i for i, page_id in enumerate(ok_ids)}
    pages: OrderedDict = OrderedDict()

    def page(page_id):
        """(analysis, thumbnail) of a page; the last 64 pages used stay in memory."""
        if page_id not in pages:
            pages[page_id] = (load_analysis(cache_of[page_id]), _thumbnail(out, page_id))
            if len(pages) > 64:
                pages.popitem(last=False)
        return pages[page_id]

    folder = ResultsFolder(out)
    pixels = _pixel_pictures(options) if options.pixels else None
    written = 0
    for match in tracked(matches.itertuples(index=False), len(matches), progress,
                         "Explaining matches"):
        json_path = folder.explanation(match.page_a, match.page_b, ".json")
        png_path = folder.explanation(match.page_a, match.page_b, ".png")
        pixel_path = folder.explanation(match.page_a, match.page_b, PIXELS_SUFFIX)
        made_by = _pair_producer(producer, cache_of[match.page_a], cache_of[match.page_b])
        if _explanation_current(json_path, [png_path] + [pixel_path] * options.pixels, made_by):
            continue
        (a, thumbnail_a), (b, thumbnail_b) = page(match.page_a), page(match.page_b)
        explanation = explain_match(a, maps[row_of[match.page_a]], b,
                                    maps[row_of[match.page_b]])
        record = explanation_record(match.page_a, match.page_b, explanation, a, b,
                                    options.links, options.scoring.model)
        record["producer"] = made_by
        picture = render_match(thumbnail_a, thumbnail_b, explanation, a, b, record)
        with atomic_path(png_path) as tmp:
            save_png(tmp, picture)
        if pixels is not None:
            picture, record["pixel_residual"] = pixels.picture(
                *[(p, source_of[p].load, analysis, maps[row_of[p]])
                  for p, analysis in ((match.page_a, a), (match.page_b, b))])
            with atomic_path(pixel_path) as tmp:
                save_png(tmp, picture)
        write_json_atomic(json_path, record)
        written += 1
    return written


def _pixel_pictures(options: SimilarityOptions):
    from sphaera_tables.pixel_explanation import PixelPictures

    detector = load_detector(options.detector_file)
    return PixelPictures(detector, options.features.head(detector.config))


def _write_variants(out: Path, matches: pd.DataFrame) -> None:
    """variants.csv: every variant of every explained match, read back from the explanation
    JSON files (so that a resumed run lists the variants of the pairs it kept)."""
    rows = []
    for match in matches.itertuples(index=False):
        path = ResultsFolder(out).explanation(match.page_a, match.page_b, ".json")
        if path.exists():
            record = json.loads(path.read_text(encoding="utf-8"))
            rows.extend({"page_a": match.page_a, "page_b": match.page_b,
                         **{c: v[c] for c in VARIANT_COLUMNS[2:]}}
                        for v in record.get("variants", []))
    _write_csv(ResultsFolder(out).variants_csv, pd.DataFrame(rows, columns=VARIANT_COLUMNS))


def _remove_stale_pictures(out: Path, matches: pd.DataFrame, ok_ids, explained: bool,
                           pixels: bool) -> None:
    """Delete the thumbnails of pages no longer analysed and, when this run explains, the
    explanations of pairs no longer matched (and pixel pictures unless ``pixels``): the
    folder then holds what a fresh run writes."""
    folder = ResultsFolder(out)
    keep = {folder.thumbnail(page_id).name for page_id in ok_ids}
    stale = [path for path in folder.file(THUMBNAILS).glob("*.jpg") if path.name not in keep]
    if explained:
        suffixes = (".json", ".png") + ((PIXELS_SUFFIX,) if pixels else ())
        keep = {folder.explanation(a, b, suffix).name
                for a, b in zip(matches["page_a"], matches["page_b"], strict=True)
                for suffix in suffixes}
        stale += [path for path in folder.file(EXPLANATIONS).glob("*")
                  if path.suffix in (".json", ".png") and path.name not in keep]
    for path in stale:
        path.unlink(missing_ok=True)


def _thumbnail(out: Path, page_id: str) -> np.ndarray:
    path = ResultsFolder(out).thumbnail(page_id)
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise OSError(f"thumbnail missing or unreadable: {path}")
    return image


def _write_manifest(out, corpus, options, model_sha, hashes, timings):
    write_json_atomic(ResultsFolder(out).manifest, {
        "tool_version": __version__,
        "corpus": str(Path(corpus[0]).resolve()) if len(corpus) == 1 and Path(corpus[0]).is_dir()
        else corpus,
        "config": options.to_dict(),
        "model_hash": model_sha,
        "inputs": hashes,
        "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
    })


def _networks_and_report(out, options, steps, messages, progress=silent):
    """The networks and the report, from one reading of the results folder and one build of
    the networks (with the verdicts given so far)."""
    if not (options.networks or options.report):
        return
    total = options.networks + options.report
    progress(0, total, "Networks and report")
    results = load_results(out)
    states = pair_states(out)
    verdicts = verdict_labels(states) if states else None
    networks = None
    if options.networks:
        with steps.timed("networks"):
            summary = write_networks(out, min_score=options.min_score, results=results,
                                     verdicts=verdicts)
            messages.extend(f"networks: {warning}" for warning in summary.warnings)
            networks = summary.graphs, summary.families
        progress(1, total, "Networks and report")
    if options.report:
        with steps.timed("report"):
            build_report(out, min_score=options.min_score, max_matches=options.report_matches,
                         results=results, networks=networks)
        progress(total, total, "Networks and report")
