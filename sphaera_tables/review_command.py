"""The ``tables review`` and ``tables verdicts`` commands: review candidate matches in a local web
app, and share the verdicts as CSV."""

from __future__ import annotations

import getpass
import ipaddress
import sys
import threading
import webbrowser
from collections import Counter
from pathlib import Path

import click

from corpus_tools.networks import ResultsError, load_results
from sphaera_tables.review.downstream import annotate_matches_csv
from sphaera_tables.review.exchange import export_csv, import_csv
from sphaera_tables.review.propagation import propagated_pairs
from sphaera_tables.review.verdicts import VERDICTS, PageKeys, VerdictError, VerdictStore

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]
SHOWN_PROBLEMS = 20
"""Conflicts and bad rows printed in full; the rest are counted."""


def default_user() -> str:
    """The login name, the name verdicts are signed with unless ``--user`` says otherwise."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "historian"


def _results_folder(out_dir: str) -> Path:
    try:
        load_results(out_dir)
    except ResultsError as error:
        raise click.ClickException(str(error)) from error
    return Path(out_dir)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("review")
@click.argument("out_dir", metavar="RESULTS", type=click.Path(file_okay=False, path_type=str))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but this computer (127.0.0.1) lets others "
                   "on the network read the pages and give verdicts.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--user", default=default_user, show_default="your login name",
              help="Name every verdict given in this session is signed with.")
@click.option("--no-browser", is_flag=True, help="Do not open the app in a web browser.")
def review_command(out_dir, host, port, user, no_browser):
    """Review the candidate matches of a results folder RESULTS in your web browser.

    A queue of pairs (unreviewed first, then best score; filter by score, book, printer,
    place, family, verdict) and a match view with both pages, the explanation's links and the
    collation. Keys: 1-4 give a verdict (same table / some rows shared / same kind of table,
    other numbers / unrelated), n/p next/previous, e the note. Verdicts go to
    RESULTS/verdicts.sqlite as soon as they are given; Ctrl-C stops the server.
    """
    import waitress

    from sphaera_tables.review.app import create_app

    folder = _results_folder(out_dir)
    if not user.strip():
        raise click.BadParameter("give a name", param_hint="--user")
    loopback = _is_loopback(host)
    if not loopback:
        click.echo(f"warning: listening on {host}: anyone who can reach this computer on port "
                   f"{port} can see the pages and give verdicts", err=True)
    app = create_app(folder, user, allowed_hosts=LOOPBACK_NAMES if loopback else None)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/"
    click.echo(f"reviewing {folder} as {user} at {url} (Ctrl-C stops)")
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    try:
        waitress.serve(app, host=host, port=port, threads=8, ident="tables-review")
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({error.strerror}); choose another --port"
        ) from error
    finally:
        annotate_matches_csv(folder)


@click.command("verdicts")
@click.argument("out_dir", metavar="RESULTS", type=click.Path(file_okay=False, path_type=str))
@click.option("--export", "export_path", type=click.Path(dir_okay=False, path_type=str),
              help="Write every verdict (history included) to this CSV file.")
@click.option("--import", "import_path",
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Add the verdicts of this CSV file (as --export writes it).")
@click.option("--user", default=default_user, show_default="your login name",
              help="User of imported rows that name none.")
def verdicts_command(out_dir, export_path, import_path, user):
    """Show, export or import the verdicts of a results folder RESULTS.

    CSV columns: page_a, page_b, verdict, note, user, time, score (and key_a, key_b,
    model_hash, the pages' content hashes and the detector's hash). An import never overwrites
    a verdict: a pair judged otherwise here is reported as a conflict and left out (exit code
    3, as for bad rows). Either way RESULTS/matches.csv gets a verdict column.
    """
    if export_path and import_path:
        raise click.UsageError("give --export or --import, not both")
    folder = _results_folder(out_dir)
    problems = []
    with VerdictStore.of_results(folder) as store:
        if import_path:
            try:
                report = import_csv(store, PageKeys.of_results(folder), import_path, user)
            except VerdictError as error:
                raise click.ClickException(str(error)) from error
            click.echo(f"{report.imported} verdict(s) imported, {report.already_stored} "
                       f"already here, {len(report.conflicts)} conflict(s), "
                       f"{len(report.errors)} bad row(s)")
            problems = report.conflicts + report.errors
        if export_path:
            count = export_csv(store, export_path)
            click.echo(f"{count} verdict(s) written to {export_path}")
        latest = store.latest()
    if not (export_path or import_path):
        counts = Counter(verdict.verdict for verdict in latest.values())
        for code, words in VERDICTS.items():
            click.echo(f"{words}: {counts.get(code, 0)}")
        click.echo(f"suggested by transitivity: {len(propagated_pairs(latest))}")
    annotate_matches_csv(folder)
    for problem in problems[:SHOWN_PROBLEMS]:
        click.echo(f"warning: {problem}", err=True)
    if len(problems) > SHOWN_PROBLEMS:
        click.echo(f"warning: {len(problems) - SHOWN_PROBLEMS} more problem(s)", err=True)
    if problems:
        sys.exit(3)
