"""The product's commands: ``similarity``, ``explain``, ``demo`` and ``evaluate matches``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from corpus_tools.corpus_inputs import InputSettings
from corpus_tools.iiif import DEFAULT_IIIF_WIDTH
from corpus_tools.pdf import DEFAULT_PDF_DPI
from corpus_tools.results_folder import ResultsFolder
from corpus_tools.storage import FolderLocked, atomic_path, write_json_atomic
from sphaera_tables.progress import progress_bar, quiet_option
from sphaera_tables.scoring import DEFAULT_MIN_SCORES, DEFAULT_MODEL, MODELS, ScoreModel
from sphaera_tables.similarity import (
    DEFAULT_MIN_SHARE,
    DEFAULT_REPORT_MATCHES,
    DEFAULT_TOP_K,
    SimilarityOptions,
    run_similarity,
)

EXIT_PAGES_SKIPPED = 3
DEMO_PAGES = 60
DEMO_SEED = 7


def register(main, evaluate):
    """Add the product's commands to the ``tables`` group and its ``evaluate`` subgroup."""
    from sphaera_tables.network_command import network_command
    from sphaera_tables.standard_exports.command import export_command

    for command in (similarity, explain, demo, network_command, export_command):
        main.add_command(command)
    evaluate.add_command(evaluate_matches)


def _detector_option(function):
    return click.option(
        "--detector", "detector_file", type=click.Path(dir_okay=False, exists=True),
        help="Digit detector weights (.safetensors from `tables train-detector`). "
             "Default: the detector shipped with the toolkit.",
    )(function)


@click.command()
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Results folder (created if missing; a rerun into it resumes).")
@click.option("--top-k", default=DEFAULT_TOP_K, show_default=True, type=click.IntRange(1),
              help="Candidate matches kept per page at most (the best ones).")
@click.option("--min-share", default=DEFAULT_MIN_SHARE, show_default=True,
              type=click.FloatRange(0, 1),
              help="A page keeps only matches scoring at least this share of its best match "
                   "(0: keep the top-k that pass --min-score).")
@click.option("--min-score", type=click.FloatRange(0, 1),
              help="Only pairs scoring at least this are candidate matches. Default: 0.2 for "
                   "the numbers model (editions of one table score about 0.4-0.9, tables of "
                   "one type with other numbers about 0.15), 0.35 for the bigram model. Under "
                   "the numbers model a pair's score is its similarity times the share of its "
                   "aligned cells printed alike, squared (matches.csv: similarity, "
                   "cells_agree, cells_differ): a table recomputed with other parameters "
                   "ranks below the editions of the same table.")
@click.option("--model", type=click.Choice(MODELS), default=DEFAULT_MODEL, show_default=True,
              help="numbers: printed numbers in the context of their row and column "
                   "neighbours, plus digit bigrams (links join a cell to the same cell); "
                   "bigram: the paper's bag of digit bigrams.")
@click.option("--explanations/--no-explanations", default=True, show_default=True,
              help="Write a BiLRP explanation (PNG + JSON) for every candidate match.")
@click.option("--pixels/--no-pixels", default=False, show_default=True,
              help="Also draw the pixel-level BiLRP picture of every candidate match "
                   "(explanations/PAIR_pixels.png, as `tables explain` does; a few seconds "
                   "per page).")
@click.option("--links", default=30, show_default=True, type=click.IntRange(1),
              help="Strongest digit-to-digit links listed in each explanation's JSON.")
@_detector_option
@click.option("--workers", type=click.IntRange(1),
              help="Processes that analyse pages on this machine (default: this process "
                   "alone, its convolutions on every core). Each holds a page of its own "
                   "(0.5-1 GB); on two cores, two were no faster than one (0.94x): they pay "
                   "where one process leaves cores idle.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the page analysis on an existing Dask cluster, e.g. tcp://host:8786 "
                   "(needs the 'dask' extra).")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write networks/ and report.html.")
@click.option("--report-matches", default=DEFAULT_REPORT_MATCHES, show_default=True,
              type=click.IntRange(1),
              help="Match cards in report.html (the best-scoring pairs; all are in matches.csv).")
@click.option("--pdf-dpi", default=DEFAULT_PDF_DPI, show_default=True,
              type=click.IntRange(36, 1200),
              help="Resolution at which the pages of PDF files are rendered (that of the scans "
                   "the PDF was made from keeps the digits at their scanned size).")
@click.option("--iiif-width", default=DEFAULT_IIIF_WIDTH, show_default=True,
              type=click.IntRange(500, 10000),
              help="Width (px) of the page images asked of IIIF image services (a level-0 "
                   "service gives the listed size nearest to it).")
@click.option("--quiet", is_flag=True, help="No progress bars, only the final summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def similarity(corpus, out, top_k, min_share, min_score, model, explanations, pixels, links,
               detector_file, workers, scheduler, report, report_matches, pdf_dpi, iiif_width,
               quiet, as_json):
    """Find the pages of CORPUS that share tables, and explain every match.

    CORPUS is one or more inputs: folders, IIIF manifests (Presentation 2.1 or 3.0, a .json
    file or an http(s) URL; the images are downloaded into OUT/iiif) and .txt files listing
    inputs one a line. A folder holds page images (.jpg .png .tif .jp2 .webp .gif .bmp) and
    PDF files, in any sub-folders (the page id is the path inside the folder; a page of a PDF
    or multi-page TIFF is book.pdf#p0012), optionally with a metadata.csv (page_id, book,
    printer, place, year, ...). Files that give no page are listed in pages.csv with the
    reason. The results folder gets pages.csv, features.npy, matches.csv, explanations/,
    networks/ and report.html (open it in a browser).

    Interrupted runs resume: rerun the same command and finished pages are reused. Exit code 0:
    all pages analysed; 3: some pages were skipped (see the status column of pages.csv).
    """
    if min_score is None:
        min_score = DEFAULT_MIN_SCORES[model]
    options = SimilarityOptions(top_k=top_k, min_score=min_score, min_share=min_share,
                                explain=explanations,
                                pixels=pixels and explanations, scoring=ScoreModel(model=model),
                                links=links, detector_file=detector_file, workers=workers,
                                scheduler=scheduler, networks=report, report=report,
                                report_matches=report_matches,
                                inputs=InputSettings(pdf_dpi=pdf_dpi, iiif_width=iiif_width))
    try:
        with progress_bar(quiet) as progress:
            summary = run_similarity(corpus, out, options, progress=progress)
    except (FolderLocked, RuntimeError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    _print_summary(summary, as_json)
    if summary.pages_skipped:
        raise SystemExit(EXIT_PAGES_SKIPPED)


def _print_summary(summary, as_json: bool) -> None:
    facts = {
        "results": str(summary.out),
        "pages_ok": summary.pages_ok,
        "pages_skipped": summary.pages_skipped,
        "pages_reused": summary.pages_reused,
        "matches": summary.matches,
        "explanations_written": summary.explanations_written,
        "timings_s": {k: round(v, 2) for k, v in summary.timings.items()},
        "messages": summary.messages,
    }
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"Pages analysed: {summary.pages_ok} ({summary.pages_reused} reused from an "
               f"earlier run), skipped: {summary.pages_skipped}")
    click.echo(f"Candidate matches: {summary.matches}, explanations written: "
               f"{summary.explanations_written}")
    click.echo("Time per step (s): " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                  summary.timings.items()))
    for message in summary.messages:
        click.echo(f"note: {message}")
    report = ResultsFolder(summary.out).report
    click.echo(f"Results: {summary.out}" + (f"  (open {report} in a browser)"
                                           if report.exists() else ""))


@click.command()
@click.argument("page_a", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("page_b", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG of the digit-level links; PAIR.json and PAIR_pixels.png go beside it.")
@_detector_option
@click.option("--pixels/--no-pixels", default=True, show_default=True,
              help="Also render the pixel-level explanation (LRP passes through the detector "
                   "on crops around the digits; seconds per page).")
@click.option("--cell", default=8, show_default=True, type=click.IntRange(2),
              help="Super-pixel size (working-scale px) of the pixel-level rendering.")
@click.option("--links", default=30, show_default=True, type=click.IntRange(1),
              help="Strongest number-to-number links listed in the JSON.")
@click.option("--results", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A results folder of `tables similarity`: score the pair as that corpus run "
                   "does (its model, and how rare each cell and bigram is in its corpus).")
@quiet_option
def explain(page_a, page_b, out, detector_file, pixels, cell, links, results, quiet):
    """Explain the similarity of two page images PAGE_A and PAGE_B.

    Draws red curves between the printed numbers of PAGE_A and PAGE_B that support the score
    (blue: contradict it; the stronger, the more opaque), lists the strongest number-to-number
    links in a JSON file, and reports the conservation residual (how exactly the explanation
    adds up to the score).
    """
    from digit_detector.page import PageReadError
    from digit_detector.weights import WeightFileError, load_detector
    from sphaera_tables.explain import save_png
    from sphaera_tables.pixel_explanation import explain_pages
    from sphaera_tables.similarity import results_scoring

    try:
        detector = load_detector(detector_file)
        statistics, scoring = (None, None) if results is None else results_scoring(results)
        with progress_bar(quiet) as progress:
            result = explain_pages(page_a, page_b, detector, statistics=statistics,
                                   scoring=scoring, links=links, pixels=pixels, cell=cell,
                                   progress=progress)
    except (PageReadError, WeightFileError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    try:
        with atomic_path(out) as tmp:
            save_png(tmp, result.digit_picture)
        write_json_atomic(out.with_suffix(".json"), result.record)
        if result.pixel_picture is not None:
            with atomic_path(out.with_name(out.stem + "_pixels.png")) as tmp:
                save_png(tmp, result.pixel_picture)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror or error}") from None
    record = result.record
    click.echo(f"score {record['score']:.4f} (similarity {record['similarity']:.4f}; aligned "
               f"cells: {record['cells_agree']} agree, {record['cells_differ']} differ); the "
               f"explanation sums to {record['explained']:.4f} (residual "
               f"{record['residual']:.2e}); {len(record['links'])} links")
    click.echo(f"wrote {out}, {out.with_suffix('.json')}"
               + (f", {out.with_name(out.stem + '_pixels.png')}" if pixels else ""))


@click.command()
@click.argument("folder", required=False, default="tables-demo",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--pages", default=DEMO_PAGES, show_default=True, type=click.IntRange(10),
              help="Pages in the synthetic demo corpus.")
@quiet_option
def demo(folder, pages, quiet):
    """Run the whole pipeline on a built-in synthetic corpus, in FOLDER (default tables-demo).

    Generates scanned-looking pages of early-modern astronomical tables (with their ground
    truth), finds the pages that share tables with the shipped digit detector, explains every
    match, builds the historical networks and the report, and scores the result against the
    truth. Needs no data of your own; takes a few minutes.
    """
    from corpus_tools.synth import generate_corpus
    from sphaera_tables.evaluation import evaluate_matches
    from sphaera_tables.page_task import cached_analysis_loader

    corpus, results = folder / "corpus", folder / "results"
    try:
        if not (corpus / "truth" / "digits.csv").exists():
            click.echo(f"Generating a synthetic corpus of {pages} pages in {corpus} ...")
            with progress_bar(quiet) as progress:
                generate_corpus(corpus, pages=pages, seed=DEMO_SEED, progress=progress)
        click.echo("Finding and explaining shared tables ...")
        with progress_bar(quiet) as progress:
            summary = run_similarity(corpus, results, SimilarityOptions(), progress=progress)
            scores = evaluate_matches(results, corpus / "truth", baseline=True,
                                      load_analysis=cached_analysis_loader(results),
                                      progress=progress)
    except (FolderLocked, OSError, ValueError, ImportError) as error:  # ImportError: no fonts
        raise click.ClickException(str(error)) from None
    _print_summary(summary, as_json=False)
    _print_evaluation(scores)


@click.command("matches")
@click.argument("results", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--truth", type=click.Path(file_okay=False, exists=True, path_type=Path),
              required=True, help="The truth/ folder of a synthetic corpus (`tables synth`).")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also score a generic baseline (downsampled page images) on the same pages.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@quiet_option
def evaluate_matches(results, truth, baseline, as_json, quiet):
    """Score the matches and explanations in RESULTS against a synthetic corpus's truth.

    For both models (numbers, bigram), on the detector's digits and on the truth's (what a
    perfect detector would reach): retrieval (mean average precision and precision@1 for pages
    carrying the same table; how often tables of one type with other numbers rank below), also
    counted on the match list the search writes; explanations of the listed true matches (share
    of positive relevance joining the same cell, the same row; positive relevance over the
    score); variants found against the misprints of the truth (precision, recall).
    """
    from sphaera_tables.evaluation import evaluate_matches as evaluate
    from sphaera_tables.page_task import cached_analysis_loader

    try:
        with progress_bar(quiet) as progress:
            scores = evaluate(results, truth, baseline=baseline,
                              load_analysis=cached_analysis_loader(results), progress=progress)
    except (OSError, ValueError, KeyError) as error:
        raise click.ClickException(f"cannot evaluate {results}: {error}") from None
    if as_json:
        click.echo(json.dumps(scores.to_dict(), indent=2))
    else:
        _print_evaluation(scores)


def _print_evaluation(scores) -> None:
    click.echo(f"Over {scores.pages} pages ({scores.as_written.queries} queries with a true "
               f"match); matches.csv as written: mAP {scores.as_written.mean_average_precision:.3f}"
               f"  P@1 {scores.as_written.precision_at_1:.3f} (unlisted editions are misses)")
    click.echo("  model    digits    | all pages: mAP   P@1  same-type-below | listed: mAP   "
               "P@1 | faithful  row   pos/score | variants P    R")
    for e in scores.models:
        r, listed = e.retrieval, e.listed
        click.echo(f"  {e.model:8s} {e.digits:9s} |  {r.mean_average_precision:.3f}  "
                   f"{r.precision_at_1:.3f}  {r.same_type_ranked_below:.2f}            |  "
                   f"{listed.mean_average_precision:.3f}  {listed.precision_at_1:.3f} |  "
                   f"{e.faithfulness:.3f}  {e.row_consistency:.3f}  {e.median_positive_ratio:.2f}"
                   f"      |  {e.variant_precision:.3f}  {e.variant_recall:.3f}")
    if scores.baseline is not None:
        b = scores.baseline
        click.echo(f"  generic baseline (pixels): mAP {b.mean_average_precision:.3f}  P@1 "
                   f"{b.precision_at_1:.3f}")
