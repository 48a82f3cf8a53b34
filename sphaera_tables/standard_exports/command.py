"""The ``tables export`` command: a results folder's detections in standard formats."""

import click

from corpus_tools.networks import ResultsError
from sphaera_tables.standard_exports.page_xml import write_page_xml


@click.command("export")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, exists=True))
def export_command(out_dir):
    """Write the detected digits of every analysed page of OUT as PAGE-XML (2019 schema).

    OUT is the folder written by `tables similarity CORPUS -o OUT`; the files go to
    OUT/page-xml/, one per page (one TextLine per printed number, one Glyph per digit).
    """
    try:
        written = write_page_xml(out_dir)
    except (ResultsError, OSError, KeyError, ValueError) as error:
        raise click.ClickException(
            f"{out_dir}: cannot export ({error}); rerun `tables similarity` into it first"
        ) from error
    click.echo(f"PAGE-XML: {len(written)} page(s) in {out_dir}/page-xml")
