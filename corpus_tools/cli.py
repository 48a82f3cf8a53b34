"""Commands of this package for the ``tables`` command line."""

from __future__ import annotations

from pathlib import Path

import click

from sphaera_tables.progress import progress_bar, quiet_option


@click.command("synth")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--pages", default=200, show_default=True, type=click.IntRange(min=1),
              help="Number of page images.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Random seed; the same seed gives byte-identical files.")
@click.option("--metadata", "metadata_csv", type=click.Path(exists=True, dir_okay=False,
                                                            path_type=Path),
              help="Take books, printers, places and years from this metadata CSV "
                   "(e.g. the Sphaera index).")
@click.option("--typefaces", default="all", show_default=True,
              help="train, heldout, all, or typeface names separated by commas.")
@click.option("--dpi-range", nargs=2, type=float, default=(150, 300), show_default=True,
              help="Lowest and highest scan resolution in dots per inch.")
@quiet_option
def synth_command(out_dir, pages, seed, metadata_csv, typefaces, dpi_range, quiet):
    """Generate a synthetic corpus of scanned-looking early-modern table pages.

    DIR receives the page images (<book>_p<NNN>.jpg), metadata.csv, and the ground truth in
    DIR/truth: pages.csv (kind, typeface, dpi, rotation), tables.csv (which table, copied from
    which book, with which misprints), digits.csv (a box for every printed digit) and
    letters.csv.gz (a box for every printed character of the words, to name the letters a
    detector reads as digits: tables evaluate detection).
    """
    from corpus_tools.synth import generate_corpus

    try:
        with progress_bar(quiet) as progress:
            generate_corpus(out_dir, pages=pages, seed=seed, metadata_csv=metadata_csv,
                            typefaces=typefaces, dpi_range=tuple(dpi_range), progress=progress)
    except (ValueError, ImportError) as error:  # ImportError: the synth extra's fonts missing
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(
            f"{error.filename or out_dir}: cannot write ({error.strerror or error})") from error
    if not quiet:
        click.echo(f"wrote {pages} pages and their ground truth to {out_dir}")


def register(main, evaluate):
    """Add this package's commands to the ``tables`` group and its ``evaluate`` subgroup."""
    main.add_command(synth_command)
