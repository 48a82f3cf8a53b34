"""The ``tables network`` command: rebuild networks (and optionally the report) of a results
folder with other filters than the corpus run used."""

import click

from corpus_tools.networks import LEVELS, ResultsError, load_results, write_networks
from sphaera_tables.progress import progress_bar
from sphaera_tables.report import build_report, version_warnings
from sphaera_tables.review.downstream import confirmed_matches, pair_states, verdict_labels

SHOWN_WARNINGS = 10
"""Warnings printed in full; the rest are counted (all are listed in the report)."""


@click.command("network")
@click.argument("out_dir", metavar="OUT", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "--level", "levels", multiple=True, type=click.Choice(LEVELS), default=LEVELS,
    show_default=True,
    help="Which network to build: pages, books (editions), printers or places. Repeat the "
         "option for several; all four by default.",
)
@click.option(
    "--min-score", type=float, default=0.0, show_default=True,
    help="Leave out candidate matches that score lower than this.",
)
@click.option(
    "--verdicts", "verdict_filter", type=click.Choice(["all", "confirmed"]), default="all",
    show_default=True,
    help="all: every candidate match; confirmed: only the pairs confirmed in `tables review` "
         "(same table, or some rows shared), also those this run no longer proposes. Edges "
         "carry the attribute `verdict` once any pair is reviewed.",
)
@click.option(
    "--report/--no-report", default=False, show_default=True,
    help="Also rebuild OUT/report.html with the same minimum score.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def network_command(out_dir, levels, min_score, verdict_filter, report, quiet):
    """Build the historical networks of a results folder OUT.

    OUT is the folder written by `tables similarity CORPUS -o OUT`. The networks link pages,
    editions, printers or places that share tables, with the years of printing, and go to
    OUT/networks/: LEVEL.gexf (open in Gephi; its timeline follows the years), LEVEL.graphml,
    LEVEL_nodes.csv and LEVEL_edges.csv (Gephi's spreadsheet import, or any spreadsheet),
    LEVEL.json, and families.csv / families.json (groups of pages sharing one table, with
    the year and place of its first appearance).
    """
    try:
        results = load_results(out_dir)
    except ResultsError as error:
        raise click.ClickException(str(error)) from error
    states = pair_states(out_dir)
    if verdict_filter == "confirmed":
        results.matches = confirmed_matches(results.matches, states)
        if not states:
            results.warnings.append("no verdicts yet (`tables review`); the networks are empty")
    total = 1 + report
    with progress_bar(quiet) as progress:
        progress(0, total, "Networks and report")
        summary = write_networks(out_dir, min_score=min_score, levels=levels, results=results,
                                 verdicts=verdict_labels(states) if states else None)
        progress(1, total, "Networks and report")
        if report:
            built = verdict_filter == "all" and set(levels) == set(LEVELS)  # all it shows
            report_path = build_report(
                out_dir, min_score=min_score, results=results if built else None,
                networks=(summary.graphs, summary.families) if built else None)
            progress(2, total, "Networks and report")
    if quiet:
        return
    for level, written in summary.levels.items():
        click.echo(f"{level}: {written['nodes']} nodes, {written['edges']} edges")
    click.echo(f"{len(summary.families)} table families; files in {summary.networks_dir}")
    if report:
        click.echo(f"report: {report_path}")
    warnings = version_warnings(results) + summary.warnings
    for warning in warnings[:SHOWN_WARNINGS]:
        click.echo(f"warning: {warning}", err=True)
    hidden = len(warnings) - SHOWN_WARNINGS
    if hidden > 0:
        click.echo(f"warning: {hidden} more problem(s); see the report", err=True)
