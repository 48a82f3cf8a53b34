"""Command ``tables suggest-labels``: the windows of a corpus worth labelling, ready to label."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from digit_detector.inference import DEFAULT_THRESHOLD
from sphaera_tables.progress import quiet_option

PATCH_CSV = "patches.csv"
VIA_PROJECT = "via-project.json"
LABEL_STUDIO_TASKS = "label-studio-tasks.json"
LABEL_STUDIO_CONFIG = "label-studio-config.xml"
HOW_TO = "HOW-TO-LABEL.txt"
WRITTEN = (PATCH_CSV, VIA_PROJECT, LABEL_STUDIO_TASKS, LABEL_STUDIO_CONFIG, HOW_TO)

HOW_TO_TEXT = """Windows to label, chosen by `tables suggest-labels` (w0001 = the detector's least sure).
Each window has one suggested box around the digit in question. Label it in any ONE of these:

* A spreadsheet: fill the `digit` column of patches.csv (0-9; delete the row if the window
  holds no digit there). Then: tables train-detector {name}/patches.csv --init default -o mine.safetensors
* VIA 2 (via.html): Project > Load {via}; type each box's digit in `digit` (the
  detector's guess is in `suggested`); move or add boxes as needed; Annotation > Export
  Annotations (as json or csv) into this folder.
* Label Studio: start it with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and
  LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<the folder that holds {name}>; create a project
  with the labelling interface in {config} and a local-files storage for {name};
  import {tasks} (the detector's guesses come as predictions); label; Export > JSON into
  this folder. Submit a task with no box only if its window shows no digit at all.

Then check and train:
    tables import-labels {name}/EXPORT.json -o {name}/labels.csv
    tables train-detector {name}/labels.csv --init default -o mine.safetensors
"""


@click.command("suggest-labels")
@click.argument("inputs", nargs=-1, required=True, metavar="CORPUS...")
@click.option("-n", "count", default=200, show_default=True, type=click.IntRange(1, 100000),
              help="Windows to suggest.")
@click.option("-o", "--out", "out", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="New folder for the windows and the label tool projects.")
@click.option("--weights", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Detector weights (default: the shipped ones).")
@click.option("--threshold", default=DEFAULT_THRESHOLD, show_default=True,
              type=click.FloatRange(0, None, min_open=True),
              help="Detection threshold the uncertainty is measured against.")
@quiet_option
def suggest_labels_command(inputs, count, out, weights, threshold, quiet):
    """Pick the N digit windows of a corpus the detector is least sure of, to label them.

    CORPUS is a folder of page images or PDFs (or a IIIF manifest, or a .txt list of
    inputs). The detector reads every page; the windows around its most doubtful peaks
    (detections near the threshold, peaks just under it, peaks where two digits answer alike)
    are chosen, spread over the pages and never overlapping, and written to OUT as a patch set
    (w0001.png ... by uncertainty, patches.csv with an empty `digit` column), a VIA 2 project,
    Label Studio tasks and its labelling interface, and HOW-TO-LABEL.txt. Label them, then
    `tables import-labels` and `tables train-detector ... --init default`.
    """
    from annotations.suggest import choose_windows, page_candidates
    from corpus_tools.corpus_inputs import gather_pages
    from digit_detector.page import PageReadError
    from digit_detector.weights import WeightFileError, load_detector
    from sphaera_tables.progress import progress_bar, tracked

    present = [name for name in WRITTEN if (out / name).exists()]
    if present:
        raise click.ClickException(f"{out} already holds {', '.join(present)}: give a new "
                                   "folder (labels made there would be overwritten)")
    candidates, unreadable = [], []
    with progress_bar(quiet) as progress:
        try:
            detector = load_detector(weights)
            pages = gather_pages(list(inputs), out, progress=progress)
        except (WeightFileError, ValueError, OSError) as error:
            raise click.ClickException(str(error)) from None
        for index, source in tracked(enumerate(pages.sources), len(pages.sources), progress,
                                     "Reading pages"):
            try:
                found = page_candidates(source.load(), detector, threshold)
            except PageReadError as error:
                unreadable.append(f"{source.page_id}: {error}")
                continue
            candidates.append(found.assign(page=index))
    for line in unreadable:
        click.echo(f"skipped: {line}", err=True)
    frames = [frame for frame in candidates if len(frame)]
    chosen = choose_windows(pd.concat(frames, ignore_index=True) if frames else
                            pd.DataFrame(columns=["page", "uncertainty"]), count)
    if chosen.empty:
        raise click.ClickException("the detector found no digit at all on these pages: "
                                   "nothing to suggest")
    written = _write(out, chosen, pages.sources)
    pages_used = chosen["page"].nunique()
    click.echo(f"wrote {len(chosen)} windows from {pages_used} of {len(pages.sources)} pages "
               f"to {out} (uncertainty {chosen['uncertainty'].max():.2f} to "
               f"{chosen['uncertainty'].min():.2f})")
    if len(chosen) < count:
        click.echo(f"only {len(chosen)} windows found, {count} asked for", err=True)
    click.echo(f"label them as {written / HOW_TO} says")


def _write(out: Path, chosen: pd.DataFrame, sources) -> Path:
    """The patch set, the label tool projects and the how-to in ``out``."""
    from annotations.label_projects import label_studio_config, label_studio_tasks, via_project
    from annotations.suggest import cut_window
    from annotations.writers import write_patch_set
    from corpus_tools.storage import spreadsheet_safe, write_json_atomic, write_text_atomic

    images, rows = {}, []
    for page, group in chosen.groupby("page", sort=True):
        grey = sources[int(page)].load()
        for rank, row in group.iterrows():
            name = f"w{rank + 1:04d}.png"
            window = cut_window(grey, row)
            images[name] = window.pixels
            rows.append({"file": name, "x0": window.box[0], "y0": window.box[1],
                         "x1": window.box[2], "y1": window.box[3], "digit": pd.NA,
                         "suggested": int(row["digit"]),
                         "uncertainty": round(float(row["uncertainty"]), 4),
                         "score": round(float(row["score"]), 4),
                         "source_page": spreadsheet_safe(sources[int(page)].page_id),
                         "page_left": int(row["left"]), "page_top": int(row["top"]),
                         "page_side": int(row["side"]), "rotation": int(row["rotation"])})
    table = pd.DataFrame(rows).sort_values("file", ignore_index=True)
    boxes = table[["file", "x0", "y0", "x1", "y1", "digit"]]
    write_patch_set(out, dict(sorted(images.items())), boxes,
                    table.drop(columns=["x0", "y0", "x1", "y1", "digit"]).set_index("file"))
    sizes = {name: (pixels.shape[1], pixels.shape[0]) for name, pixels in sorted(images.items())}
    write_json_atomic(out / LABEL_STUDIO_TASKS, label_studio_tasks(out, sizes, table))
    write_text_atomic(out / LABEL_STUDIO_CONFIG, label_studio_config())
    write_json_atomic(out / VIA_PROJECT, via_project(out, list(sizes), table, out.name))
    write_text_atomic(out / HOW_TO, HOW_TO_TEXT.format(
        name=out.name, via=VIA_PROJECT, tasks=LABEL_STUDIO_TASKS, config=LABEL_STUDIO_CONFIG))
    return out
