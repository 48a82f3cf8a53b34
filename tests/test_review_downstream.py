"""Verdicts downstream: `tables verdicts` import/export, matches.csv, `tables network --verdicts
confirmed` (GEXF/GraphML attribute `verdict`), the report, and suggestions in the queue."""

import csv
import re

import networkx as nx
from click.testing import CliRunner

from corpus_tools.networks import load_results
from sphaera_tables.cli import main
from sphaera_tables.report import build_report
from sphaera_tables.review.app import create_app
from sphaera_tables.review.downstream import annotate_matches_csv


def verdict_file(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["page_a", "page_b", "verdict", "note", "user", "time", "score"])
        writer.writerows(rows)
    return path


def candidate_pairs(out):
    """``(page_a, page_b, score)`` of the candidate matches, one per unordered pair."""
    pairs = {}
    for match in load_results(out).matches:
        pairs.setdefault(frozenset((match.page_a, match.page_b)),
                         (match.page_a, match.page_b, match.score))
    return list(pairs.values())


def unproposed_pair(out):
    results = load_results(out)
    proposed = {frozenset((match.page_a, match.page_b)) for match in results.matches}
    pages = sorted(results.pages)
    return next((a, b) for a in pages for b in pages
                if a < b and frozenset((a, b)) not in proposed)


def import_some(out, tmp_path):
    """Two candidate matches confirmed, one rejected, and one pair that the run never
    proposed confirmed as sharing rows; returns them."""
    pairs = candidate_pairs(out)
    confirmed = pairs[:2]
    rejected = pairs[5]
    rows = [[a, b, "same table", "", "ana", "2026-01-01T00:00:00Z", s] for a, b, s in confirmed]
    rows.append([rejected[0], rejected[1], "unrelated", "", "ana", "2026-01-01T00:00:00Z", ""])
    unproposed = unproposed_pair(out)
    rows.append([*unproposed, "rows shared", "", "ben", "2026-01-02T00:00:00Z", "0.3"])
    result = CliRunner().invoke(main, ["verdicts", str(out), "--import",
                                       str(verdict_file(tmp_path / "v.csv", rows))])
    assert result.exit_code == 0, result.output
    assert "4 verdict(s) imported" in result.output
    return confirmed, rejected, unproposed


def test_network_of_confirmed_pairs_only_carries_the_verdict(review_results, tmp_path):
    confirmed, rejected, unproposed = import_some(review_results, tmp_path)
    result = CliRunner().invoke(main, ["network", str(review_results), "--level", "page",
                                       "--level", "book", "--verdicts", "confirmed"])
    assert result.exit_code == 0, result.output
    networks = review_results / "networks"
    for graph in (nx.read_gexf(networks / "page.gexf", version="1.3"),
                  nx.read_graphml(networks / "page.graphml")):
        edges = {frozenset((a, b)): data["verdict"] for a, b, data in graph.edges(data=True)}
        expected = {frozenset(pair[:2]): "same_table" for pair in confirmed}
        expected[frozenset(unproposed)] = "rows_shared"
        assert edges == expected
    books = nx.read_graphml(networks / "book.graphml")
    assert 1 <= books.number_of_edges() <= 3
    assert {verdicts for *_, verdicts in books.edges(data="verdicts")} <= \
        {"same_table", "rows_shared", "rows_shared; same_table"}
    result = CliRunner().invoke(main, ["network", str(review_results), "--level", "page"])
    graph = nx.read_graphml(networks / "page.graphml")
    verdicts = {frozenset((a, b)): verdict for a, b, verdict in graph.edges(data="verdict")}
    assert None not in verdicts.values() and len(verdicts) > 3
    assert verdicts[frozenset(rejected[:2])] == "unrelated"
    assert set(verdicts.values()) >= {"same_table", "unrelated", "unreviewed"}


def test_matches_csv_gets_a_verdict_column(review_results, tmp_path):
    before = (review_results / "matches.csv").read_text().splitlines()
    confirmed, rejected, _ = import_some(review_results, tmp_path)
    with open(review_results / "matches.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(before) - 1
    assert [row["page_a"] for row in rows] == [line.split(",")[0] for line in before[1:]]
    verdict = {frozenset((row["page_a"], row["page_b"])): row["verdict"] for row in rows}
    assert verdict[frozenset(confirmed[0][:2])] == "same_table"
    assert verdict[frozenset(rejected[:2])] == "unrelated"
    assert sum(value == "unreviewed" for value in verdict.values()) >= len(verdict) - 4


def test_the_report_shows_the_verdicts(review_results, tmp_path):
    import_some(review_results, tmp_path)
    page = build_report(review_results).read_text(encoding="utf-8")
    assert page.count('<span class="verdict same_table">same table</span>') >= 2
    assert '<span class="verdict unrelated">unrelated</span>' in page


def test_export_and_conflicting_import(review_results, tmp_path):
    confirmed, _, _ = import_some(review_results, tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["verdicts", str(review_results), "--export",
                                  str(tmp_path / "out.csv")])
    assert result.exit_code == 0 and "4 verdict(s) written" in result.output
    a, b, _ = confirmed[0]
    other = verdict_file(tmp_path / "other.csv",
                         [[b, a, "unrelated", "no", "cy", "2027-01-01T00:00:00Z", ""]])
    result = runner.invoke(main, ["verdicts", str(review_results), "--import", str(other)])
    assert result.exit_code == 3
    assert "1 conflict(s)" in result.output and "other.csv line 2" in result.output
    result = runner.invoke(main, ["verdicts", str(review_results)])
    assert "same table: 2" in result.output and "unrelated: 1" in result.output


def test_queue_lists_unproposed_and_propagated_pairs(review_results, tmp_path):
    pairs = candidate_pairs(review_results)
    a, b = pairs[0][:2]
    proposed = {frozenset(pair[:2]) for pair in pairs}
    c = next(page for page in sorted(load_results(review_results).pages)
             if page not in (a, b) and frozenset((a, page)) not in proposed)
    rows = [[a, b, "same_table", "", "ana", "2026-01-01T00:00:00Z", ""],
            [b, c, "same_table", "", "ana", "2026-01-01T00:00:00Z", "0.2"]]
    CliRunner().invoke(main, ["verdicts", str(review_results), "--import",
                              str(verdict_file(tmp_path / "v.csv", rows))])
    client = create_app(review_results, "ana", allowed_hosts=["localhost"]).test_client()
    page = client.get("/?verdict=propagated").get_data(as_text=True)
    (row,) = re.findall(r'<tr data-url.*?</tr>', page, re.S)
    assert a in row and c in row and f"via {b}" in row
    reviewed = client.get("/?verdict=reviewed").get_data(as_text=True)
    assert reviewed.count("<tr data-url") == 2
    if frozenset((b, c)) not in proposed:
        assert "not proposed by this run" in reviewed


def test_the_verdict_column_is_replaced_not_repeated(review_results, tmp_path):
    assert annotate_matches_csv(review_results) is False  # nothing reviewed yet
    assert "verdict" not in (review_results / "matches.csv").read_text().splitlines()[0]
    import_some(review_results, tmp_path)
    first = (review_results / "matches.csv").read_text()
    assert annotate_matches_csv(review_results) is True
    assert (review_results / "matches.csv").read_text() == first
    assert first.splitlines()[0] == "page_a,page_b,score,rank,verdict"
