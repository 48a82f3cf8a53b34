"""Commands ``tables make-patches``, ``validate-annotations``, ``import-labels`` and
``suggest-labels``."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("make-patches")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same set).")
@click.option("--per-digit", default=30, show_default=True, type=click.IntRange(1, 1000),
              help="Patches centred on each digit 0-9.")
@click.option("--negatives", default=150, show_default=True, type=click.IntRange(0, 10000),
              help="Patches with no digit at all.")
def make_patches_command(out_dir, seed, per_digit, negatives):
    """Make the labelled digit patches the detector trains from by default.

    Renders synthetic pages in the TRAINING typefaces only and cuts 64 x 64 px patches around
    digits (balanced over 0-9) and patches without any digit. OUT_DIR receives the PNG files and
    patches.csv. The set shipped with the tool was made with `--seed 0`.
    """
    from annotations.patches import make_patches

    try:
        csv_path = make_patches(out_dir, seed=seed, per_digit=per_digit, negatives=negatives)
    except (ValueError, ImportError) as error:  # ImportError: the synth extra's fonts missing
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"{out_dir}: cannot write ({error.strerror or error})") \
            from error
    click.echo(f"wrote {csv_path}")


@click.command("validate-annotations")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--images", type=click.Path(file_okay=False, path_type=Path),
              help="Folder with the page images (default: beside the CSV file).")
def validate_annotations_command(path, images):
    """Check an annotation file or folder and list every problem, one per line.

    PATH is a patch-set folder, a CSV of page-level number or digit boxes (as in the Sphaera
    corpus), or a synthetic corpus folder. Exits with status 1 when there are problems.
    """
    from annotations.formats import load_annotations

    try:
        loaded = load_annotations(path, images)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    for problem in loaded.problems:
        click.echo(str(problem))
    click.echo(f"{len(loaded.boxes)} digit boxes on {loaded.boxes['image'].nunique()} images, "
               f"{len(loaded.negatives)} negative images, {len(loaded.problems)} problems",
               err=bool(loaded.problems))
    if loaded.problems:
        sys.exit(1)


def register(main, evaluate):
    """Add this package's commands to the ``tables`` group."""
    from annotations.import_command import import_labels_command
    from annotations.suggest_command import suggest_labels_command

    main.add_command(make_patches_command)
    main.add_command(validate_annotations_command)
    main.add_command(import_labels_command)
    main.add_command(suggest_labels_command)
