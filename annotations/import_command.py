"""Command ``tables import-labels``: a label tool's export as a page-level digit-box CSV."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pandas as pd


@click.command("import-labels")
@click.argument("label_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False,
                                                             path_type=Path))
@click.option("--format", "kind", default="auto", show_default=True,
              type=click.Choice(["auto", "via-csv", "via-json", "coco", "label-studio", "cvat",
                                 "page-xml"]),
              help="The label tool's format (auto: from the extension and content).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Digit-box CSV to write (page_id, x0, y0, x1, y1, digit).")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder the images are looked up in (default: beside FILE).")
def import_labels_command(label_file, kind, output, images):
    """Import digit labels made in a label tool into the digit-box CSV that train-detector reads.

    FILE is an export of VIA (CSV, JSON or a saved project), COCO (JSON), Label Studio (JSON
    export of rectangle labels), CVAT (for images 1.1, XML) or PAGE-XML (Glyphs with a digit
    as TextEquiv). A box labelled with a number ("27") is split into one box per digit; boxes
    labelled otherwise are counted and left out; each bad box is named (line or id) and left
    out. Image paths in OUTPUT are relative to its folder.
    """
    from annotations.formats import _check_images
    from annotations.importers import import_labels
    from corpus_tools.storage import write_csv_atomic

    try:
        imported = import_labels(label_file, kind, images)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    boxes = imported.boxes
    for problem in imported.problems:
        click.echo(f"skipped: {problem}", err=True)
    for line in imported.skipped_lines():
        click.echo(f"note: {line}", err=True)
    if boxes.empty and not imported.negatives:
        raise click.ClickException(f"{label_file}: no digit box to import ({len(imported.problems)}"
                                   f" bad boxes, {sum(imported.skipped.values())} boxes not "
                                   "digits or not boxes); nothing written")
    folder = output.resolve().parent
    table = boxes.assign(page_id=[_relative(name, folder) for name in boxes["image"]])
    table = table[["page_id", "x0", "y0", "x1", "y1", "digit"]]
    negatives = [_relative(name, folder) for name in imported.negatives]
    table = pd.concat([table, pd.DataFrame({"page_id": negatives})], ignore_index=True)
    table = table.astype({name: "Int64" for name in ("x0", "y0", "x1", "y1", "digit")})
    try:
        write_csv_atomic(output, table)
    except OSError as error:
        raise click.ClickException(f"{output}: cannot write ({error.strerror or error})") \
            from None
    _, _, image_problems = _check_images(boxes.rename(columns={"where": "line"}),
                                         imported.negatives, str(label_file))
    for problem in image_problems:
        click.echo(f"warning: {problem}", err=True)
    click.echo(f"wrote {output}: {len(boxes)} digits on {boxes['image'].nunique()} images, "
               f"{len(imported.negatives)} images without digits; skipped: "
               f"{len(imported.problems)} bad boxes, {sum(imported.skipped.values())} boxes not "
               f"digits or not boxes, {len(imported.unboxed)} images with no box"
               + (f"; {len(image_problems)} image problems (above)" if image_problems else ""))


def _relative(image: str, folder: Path) -> str:
    """An image's path relative to the output's folder (absolute on another drive)."""
    try:
        return Path(os.path.relpath(image, folder)).as_posix()
    except ValueError:
        return Path(image).as_posix()
