"""Commands of this package for the ``tables`` command line: train-detector, detect and
evaluate detection."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digit_detector.inference import DEFAULT_THRESHOLD
from digit_detector.page import IMAGE_SUFFIXES
from sphaera_tables.progress import progress_bar, quiet_option, stderr_is_terminal, tracked

LETTERS_SHOWN = 12
"""Letter-as-digit confusions printed by ``tables evaluate detection`` (all are in --json)."""


def _load_weights(weights):
    from digit_detector.weights import WeightFileError, load_detector

    try:
        return load_detector(weights)
    except WeightFileError as error:
        raise click.ClickException(str(error)) from None


def _negative_images(paths) -> list[Path]:
    """Image files given directly or found (recursively) in the given folders."""
    images = []
    for path in paths:
        if path.is_dir():
            images += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            images.append(path)
    return images


weights_option = click.option(
    "--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Detector weight file (.safetensors); default: the weights shipped with the tool.")
threshold_option = click.option(
    "--threshold", type=click.FloatRange(0, None, min_open=True), default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Minimum strength of a detected digit (a clearly printed digit reaches about 1).")


@click.command("train-detector")
@click.argument("annotations_path", metavar="ANNOTATIONS",
                type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Weight file to write (.safetensors).")
@click.option("--negatives", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Images without digits (non-table pages), or folders of them; repeatable. "
                   "Added to the negatives the annotations already name.")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1),
              help="Most training epochs.")
@click.option("--steps-per-epoch", default=60, show_default=True, type=click.IntRange(min=1),
              help="Batches of 32 windows per epoch.")
@click.option("--patience", default=10, show_default=True, type=click.IntRange(min=1),
              help="Stop after this many epochs without a better validation loss.")
@click.option("--validation", default=0.15, show_default=True, type=click.FloatRange(0, 0.5),
              help="Share of the images held out for validation.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--fully-labelled", is_flag=True,
              help="Every digit on the annotated images is labelled: train on the whole image, "
                   "not only around the labels. Always on for a synthetic corpus folder.")
@click.option("--init", "init_weights", default=None, metavar="WEIGHTS",
              help="Fine-tune: start from these weights (a .safetensors file, or 'default' for "
                   "the shipped ones) instead of random ones, e.g. on a few hundred patches of "
                   "a typeface the shipped detector reads badly.")
@quiet_option
def train_detector_command(annotations_path, output, negatives, epochs, steps_per_epoch,
                           patience, validation, seed, fully_labelled, init_weights, quiet):
    """Train a digit detector from annotated digits and digit-free pages.

    ANNOTATIONS is a patch-set folder, a page-level CSV of number or digit boxes, or a
    synthetic corpus folder (tables synth; its non-table pages serve as negatives). The
    weights (with the working scale and a hash of the training data) are written to OUTPUT as
    safetensors.

    After every epoch the whole training state is saved to OUTPUT.checkpoint. A run that was
    interrupted resumes from it when the same command is given again (and ends as the
    uninterrupted run would have); the file is removed when the run is done.

    Reproduce the shipped weights (from the repository root, the real non-table pages beside
    it; about 2 hours; one thread gives bit-identical weights) with:

    \b
        tables synth /tmp/detector-train --pages 160 --seed 1 --typefaces \\
    eb-garamond,eb-garamond-italic,cardo,cormorant-garamond,vollkorn,crimson-pro,literata,spectral-italic
        OMP_NUM_THREADS=1 tables train-detector /tmp/detector-train \\
            --negatives ../shared/data/real/nontable \\
            --epochs 120 --steps-per-epoch 120 --patience 12 \\
            -o digit_detector/weights/default.safetensors
    """
    import annotations
    from digit_detector.checkpoint import CheckpointError
    from digit_detector.training import train_to_file

    try:
        loaded = annotations.load_annotations(annotations_path)
    except (ValueError, OSError) as error:
        raise click.ClickException(f"{annotations_path}: {error}") from None
    for problem in loaded.problems:
        click.echo(f"skipped: {problem}", err=True)
    negative_paths = list(loaded.negatives) + _negative_images(negatives)
    init = None
    if init_weights is not None:
        init = _load_weights(None if init_weights == "default" else Path(init_weights))
    synthetic = (annotations_path / "truth" / "digits.csv").is_file()
    def report(progress, epoch, epochs, message):
        progress(epoch, epochs, "Training")
        if not quiet and not stderr_is_terminal():  # a log: one line per epoch
            click.echo(f"epoch {epoch}/{epochs}: {message}", err=True)

    with progress_bar(quiet) as progress:
        try:
            detector, summary = train_to_file(
                loaded.boxes, negative_paths, output, epochs=epochs,
                steps_per_epoch=steps_per_epoch, seed=seed, validation_fraction=validation,
                patience=patience, fully_labelled=fully_labelled or synthetic, init=init,
                progress=lambda done, total, message: report(progress, done, total, message),
                notice=lambda message: click.echo(message, err=True))
        except CheckpointError as error:
            raise click.ClickException(str(error)) from None
        except ValueError as error:
            raise click.ClickException(f"{annotations_path}: {error}") from None
    for problem in summary.problems:
        click.echo(f"skipped: {problem}", err=True)
    stop = "early stop" if summary.stopped_early else "all epochs"
    if summary.resumed_after_epoch:
        stop += f", resumed after epoch {summary.resumed_after_epoch}"
    click.echo(
        f"trained on {len(loaded.boxes)} digits in {summary.images} images and "
        f"{summary.negative_images} negative images ({summary.train_windows} training / "
        f"{summary.validation_windows} validation windows); {summary.epochs_run} epochs "
        f"({stop}), best validation loss {summary.best_validation_loss:.5f} at epoch "
        f"{summary.best_epoch} (output gain {summary.output_gain:.3f}); "
        f"{summary.seconds:.0f} s; digit pitch "
        f"{detector.config.digit_pitch_px:.2f} px at working scale; wrote {output}")


@click.command("detect")
@click.argument("pages", metavar="PAGE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <page>.overlay.png and <page>.digits.csv.")
@weights_option
@threshold_option
@quiet_option
def detect_command(pages, out_dir, weights, threshold, quiet):
    """Find the printed digits on page images and show them.

    For every PAGE, writes an overlay image (a box and the digit read for every detection) and
    a CSV with one row per digit: x, y (centre, page pixels), digit, score and its box. Pages
    that cannot be read are skipped and reported; the rest go on.
    """
    from digit_detector.inference import detect
    from digit_detector.overlay import draw_overlay
    from digit_detector.page import PageReadError, load_page

    detector = _load_weights(weights)
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped, used_names = [], set()
    with progress_bar(quiet) as progress:
        for page in tracked(pages, len(pages), progress, "Detecting"):
            try:
                grey = load_page(page)
            except PageReadError as error:
                skipped.append(str(error))
                click.echo(f"skipped: {error}", err=True)
                continue
            detection = detect(grey, detector, threshold=threshold)
            name = _unique_name(page.stem, used_names)
            detection.digits.to_csv(out_dir / f"{name}.digits.csv", index=False,
                                    float_format="%.2f")
            draw_overlay(grey, detection.digits).save(out_dir / f"{name}.overlay.png")
            click.echo(f"{page}: {len(detection.digits)} digits "
                       f"(scale {detection.prepared.scale:.3f}, rotation "
                       f"{detection.prepared.rotation})")
    if len(skipped) == len(pages):
        raise click.ClickException(f"no page could be read ({len(skipped)} skipped)")
    click.echo(f"{len(pages) - len(skipped)} pages written to {out_dir}, {len(skipped)} skipped")


def _unique_name(stem: str, used: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... if an earlier page had the same file name."""
    name, counter = stem, 1
    while name in used:
        counter += 1
        name = f"{stem}-{counter}"
    used.add(name)
    return name


@click.command("detection")
@click.argument("corpus", type=click.Path(exists=True, file_okay=False, path_type=Path))
@weights_option
@threshold_option
@click.option("--pages", "max_pages", type=click.IntRange(min=1), default=None,
              help="Score only the first N pages.")
@click.option("--per-page", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-page scores to this CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@quiet_option
def evaluate_detection_command(corpus, weights, threshold, max_pages, per_page, as_json, quiet):
    """Score the digit detector on a synthetic corpus with ground truth (tables synth).

    Prints precision, recall and F1 of the detected digits (right digit, centre within half
    a digit height of the true one), recall in table cells, folios and title pages, false
    detections on non-table pages and the printed letters most often read as digits, the mean
    correlation of predicted and true bigram histograms for sparse, dense and very dense
    tables, how often the automatic working scale is within 20 % of the true one, and the
    detection figures again for each typeface. Use a corpus in typefaces the detector was not
    trained on (--typefaces heldout).
    """
    from digit_detector.evaluation import evaluate_corpus, summarise

    if not (corpus / "truth" / "pages.csv").is_file() or not (
            corpus / "truth" / "digits.csv").is_file():
        raise click.ClickException(f"{corpus}: no truth/pages.csv and truth/digits.csv "
                                   "(is it a synthetic corpus?)")
    detector = _load_weights(weights)
    with progress_bar(quiet) as progress:
        try:
            table = evaluate_corpus(corpus, detector, threshold=threshold, max_pages=max_pages,
                                    progress=lambda done, total: progress(
                                        done, total, "Evaluating detection"))
        except (KeyError, ValueError) as error:
            raise click.ClickException(f"{corpus}: bad ground truth ({error})") from None
    for error in table.error[table.error != ""]:
        click.echo(f"skipped: {error}", err=True)
    if per_page is not None:
        table.to_csv(per_page, index=False)
    summary = summarise(table)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(_scores_line("all pages", summary["all"]))
    for line in _detection_lines(summary):
        click.echo(line)
    for name, part in summary["bigram_correlation"].items():
        click.echo(f"bigram correlation, {name} tables: {part['mean']:.3f} "
                   f"({part['pages']} pages)")
    scales = summary["scale_within_20_percent"]
    click.echo(f"working scale within 20 % of the true one: {scales['share']:.0%} of "
               f"{scales['pages']} pages with digits")
    for typeface, figures in summary.get("by_typeface", {}).items():
        click.echo(f"{typeface}:")
        for line in _detection_lines(figures):
            click.echo("  " + line)


def _scores_line(name: str, part: dict) -> str:
    """One line of precision, recall, F1 and digit counts (``summarise``'s "all" or "tables")."""
    return (f"{name}: precision {part['precision']:.3f}  recall {part['recall']:.3f}  "
            f"F1 {part['f1']:.3f}  ({part['detected']} detected, {part['true_digits']} true)")


def _detection_lines(figures: dict) -> list[str]:
    """Lines of :func:`~digit_detector.evaluation.summarise`'s detection figures (a corpus's or
    one typeface's): table pages, recall by place, non-table pages, letters read as digits."""
    lines = [_scores_line("table pages", figures["tables"]),
             "recall by place: " + ", ".join(
                 f"{role} {role_part['recall']:.3f} ({role_part['true_digits']} digits)"
                 for role, role_part in figures["recall_by_role"].items()),
             f"non-table pages: {figures['non_table_pages']}, false detections "
             f"{figures['non_table_false_positives']}"]
    letters = figures["letters_read_as_digits"]
    if letters is not None:
        shown = list(letters.items())[:LETTERS_SHOWN]
        lines.append(f"false detections on printed letters: {sum(letters.values())}"
                     + ("; most often " if shown else "") + ", ".join(
                         "{!r} as {} ({})".format(*pair.rsplit(">", 1), count)
                         for pair, count in shown))
    return lines


def register(main, evaluate):
    """Add this package's commands to the ``tables`` group and its ``evaluate`` subgroup."""
    main.add_command(train_detector_command)
    main.add_command(detect_command)
    evaluate.add_command(evaluate_detection_command)
