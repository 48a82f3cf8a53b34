"""Historical networks: reading results folders, graphs per level, families, exports."""

import csv
import json

import networkx as nx
import pytest
import xmlschema
from click.testing import CliRunner

from corpus_tools.networks import (
    Match,
    ResultsError,
    build_graph,
    group_graph,
    load_results,
    page_graph,
    table_families,
    write_gexf,
    write_level,
    write_networks,
)
from corpus_tools.networks.exports import flat_graph, spreadsheet_cell
from corpus_tools.networks.fabricate import fabricate_results
from corpus_tools.networks.gexf import SCHEMA
from corpus_tools.networks.results import parse_year, split_list
from sphaera_tables.network_command import network_command

# Five pages: p1 has two printers; p4 is undated; p5 has no metadata at all.
PAGE_ROWS = [
    {"page_id": "p1", "book_id": "B1", "title": "Sphaera", "printer": "P; Q", "place": "X",
     "year": "1550"},
    {"page_id": "p2", "book_id": "B1", "title": "Sphaera", "printer": "P", "place": "X",
     "year": "1550"},
    {"page_id": "p3", "book_id": "B2", "title": "Tractatus", "printer": "Q", "place": "Y",
     "year": "1560"},
    {"page_id": "p4", "book_id": "B3", "title": "Commentarius", "printer": "R", "place": "Y",
     "year": ""},
    {"page_id": "p5"},
]
MATCHES = [
    ("p1", "p3", 0.9, 1), ("p3", "p1", 0.8, 2), ("p2", "p3", 0.5, 1), ("p1", "p2", 0.7, 2),
    ("p3", "p4", 0.4, 3), ("p5", "p1", 0.2, 1),
]


def write_folder(folder, page_rows=PAGE_ROWS, matches=MATCHES, manifest=True):
    """A hand-made results folder with known answers."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = ["page_id", "status", "book_id", "title", "author", "printer", "publisher",
               "place", "year", "handle"]
    with open(folder / "pages.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in page_rows:
            writer.writerow({"status": "ok", **row})
    with open(folder / "matches.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["page_a", "page_b", "score", "rank"])
        writer.writerows(matches)
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({"tool_version": "0.1.0"}))
    return folder


@pytest.fixture
def results(tmp_path):
    return load_results(write_folder(tmp_path / "out"))


def test_cells_are_split_and_years_parsed():
    assert split_list(" A; B;;A ;") == ["A", "B"]
    assert [parse_year(cell) for cell in ("1550", "ca. 1550", "1550.0", "", "s.d.")] == [
        1550, 1550, 1550, None, None,
    ]


def test_page_graph_merges_both_directions(results):
    graph = page_graph(results.pages, results.matches)
    assert graph.number_of_nodes() == 5
    assert graph.number_of_edges() == 5
    edge = graph.edges["p1", "p3"]
    assert (edge["score"], edge["rank"]) == (0.9, 1)
    assert (edge["earlier"], edge["first_year"]) == ("p1", 1560)
    assert "earlier" not in graph.edges["p1", "p2"]  # same year
    assert "first_year" not in graph.edges["p3", "p4"]  # p4 undated
    assert graph.nodes["p1"]["printer"] == ["P", "Q"]
    assert "year" not in graph.nodes["p5"]


def test_book_graph_known_answer(results):
    books = build_graph(results.pages, results.matches, "book")
    assert set(books) == {"B1", "B2", "B3", "page:p5"}
    edge = books.edges["B1", "B2"]
    assert edge["shared_tables"] == edge["weight"] == 2
    assert edge["mean_score"] == pytest.approx(0.7)
    assert edge["max_score"] == 0.9
    assert edge["pairs"] == ["p1|p3", "p2|p3"]
    assert (edge["earlier"], edge["year_gap"], edge["first_year"]) == ("B1", 10, 1560)
    assert "earlier" not in books.edges["B2", "B3"]
    assert books.nodes["B1"]["internal_shared_tables"] == 1
    assert books.nodes["B1"]["pages"] == 2
    assert books.nodes["page:p5"]["metadata_missing"] is True


def test_printer_graph_splits_lists_and_counts_pages_without_printer(results):
    printers = build_graph(results.pages, results.matches, "printer")
    assert set(printers) == {"P", "Q", "R"}
    assert printers.edges["P", "Q"]["weight"] == 3  # p1-p3 (P of p1), p2-p3, p1-p2 (Q of p1)
    assert printers.nodes["P"]["internal_shared_tables"] == 1  # p1-p2
    assert printers.nodes["Q"]["internal_shared_tables"] == 1  # p1-p3, Q printed both
    assert printers.edges["Q", "R"]["weight"] == 1
    assert printers.graph["pages_without_group"] == 1  # p5


def test_min_score_drops_weak_matches(results):
    books = build_graph(results.pages, results.matches, "book", min_score=0.45)
    assert not books.has_edge("B2", "B3")
    assert not books.has_edge("B1", "page:p5")
    assert books.edges["B1", "B2"]["weight"] == 2


def test_grouping_conserves_matches(tmp_path):
    """Every page edge is an edge weight unit or an internal match, exactly once."""
    rows = [
        {"page_id": f"p{i}", "book_id": f"B{i % 7}", "place": f"C{i % 3}", "year": str(1500 + i)}
        for i in range(40)
    ]
    folder = fabricate_results(tmp_path / "out", rows, matches_per_page=4, seed=3)
    results = load_results(folder)
    pages = page_graph(results.pages, results.matches)
    for level in ("book", "place"):
        grouped = group_graph(pages, level)
        between = sum(weight for *_, weight in grouped.edges(data="weight"))
        inside = sum(count for _, count in grouped.nodes(data="internal_shared_tables"))
        assert between + inside == pages.number_of_edges()


def test_families_known_answer():
    pages = {
        f"{group}{i}": {"page_id": f"{group}{i}", "status": "ok", "book_id": f"{group}-book{i}",
                        "printer": [f"printer {group}"], "place": [f"place {group}"],
                        "year": 1500 + 10 * i + (group == "b")}
        for group in "ab" for i in range(4)
    }
    matches = [
        Match(f"{group}{i}", f"{group}{j}", 0.9, 1)
        for group in "ab" for i in range(4) for j in range(i + 1, 4)
    ] + [Match("a3", "b0", 0.1, 5)]
    families = table_families(page_graph(pages, matches))
    assert [family["pages"] for family in families] == [["a0", "a1", "a2", "a3"],
                                                        ["b0", "b1", "b2", "b3"]]
    first = families[0]
    assert (first["first_year"], first["last_year"], first["first_pages"]) == (1500, 1530, ["a0"])
    assert first["printers"] == ["printer a"] and first["places"] == ["place a"]
    assert first["internal_matches"] == 6
    assert families[1]["first_year"] == 1501
    assert table_families(page_graph(pages, [])) == []


def test_gexf_validates_and_round_trips(results, tmp_path):
    books = build_graph(results.pages, results.matches, "book")
    books.nodes["B2"]["title"] = "Tractatus <script>alert(1)</script> & \x0b"
    path = tmp_path / "book.gexf"
    write_gexf(books, path)
    xmlschema.XMLSchema(SCHEMA).validate(path)
    back = nx.read_gexf(path, version="1.3")
    assert set(back) == set(books)
    assert back.number_of_edges() == books.number_of_edges()
    assert back.nodes["B2"]["title"] == "Tractatus <script>alert(1)</script> & "
    assert back.nodes["B1"]["start"] == 1550
    assert back.nodes["B1"]["printed"] == [(True, 1550, 1550)]
    edge = back.edges["B1", "B2"]
    assert (edge["weight"], edge["shared_tables"], edge["earlier"]) == (2.0, 2, "B1")
    assert edge["shared_tables_so_far"] == [(2, 1560, 1560)]
    assert edge["pairs"] == "p1|p3; p2|p3"
    source = [e for e in nx.read_gexf(path, version="1.3").edges if set(e) == {"B1", "B2"}]
    assert source == [("B1", "B2")]  # the earlier edition is the source


def test_schema_rejects_what_it_should(tmp_path):
    """The shipped schema is not vacuous: networkx's own GEXF 1.3 output (with a ``name``
    attribute on <graph>) and a wrong version are rejected."""
    schema = xmlschema.XMLSchema(SCHEMA)
    graph = nx.path_graph(3)
    path = tmp_path / "networkx.gexf"
    nx.write_gexf(graph, path, version="1.3")
    assert not schema.is_valid(path)
    ours = tmp_path / "ours.gexf"
    write_gexf(graph, ours)
    assert schema.is_valid(ours)
    ours.write_text(ours.read_text().replace('version="1.3"', 'version="1.2"'))
    assert not schema.is_valid(ours)


def test_every_export_round_trips(results, tmp_path):
    graphs = {level: build_graph(results.pages, results.matches, level)
              for level in ("page", "book", "printer", "place")}
    for level, graph in graphs.items():
        gexf, graphml, nodes_csv, edges_csv, json_path = write_level(graph, tmp_path, level)
        for back in (nx.read_gexf(gexf, version="1.3"), nx.read_graphml(graphml)):
            assert set(back) == set(graph)
            assert {frozenset(e) for e in back.edges} == {frozenset(e) for e in graph.edges}
        from_json = nx.node_link_graph(json.loads(json_path.read_text()), edges="edges")
        assert nx.utils.graphs_equal(from_json, graph)
        with open(nodes_csv, newline="", encoding="utf-8") as handle:
            assert {row["Id"] for row in csv.DictReader(handle)} == set(graph)
        with open(edges_csv, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert {frozenset((row["Source"], row["Target"])) for row in rows} == {
            frozenset(e) for e in graph.edges
        }
        for row in rows:
            weight = graph.edges[row["Source"], row["Target"]]["weight"]
            assert float(row["Weight"]) == pytest.approx(weight)
    back = nx.read_graphml(tmp_path / "book.graphml")
    assert back.nodes["B1"]["printer"] == "P; Q"
    assert back.edges["B1", "B2"]["max_score"] == 0.9


def test_flat_graph_and_spreadsheet_cells():
    graph = nx.Graph()
    graph.add_node("n", years=[1550, 1560], missing=None, flag=True)
    flat = flat_graph(graph)
    assert flat.nodes["n"] == {"years": "1550; 1560", "flag": True}
    assert spreadsheet_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert spreadsheet_cell(["A", "B"]) == "A; B"
    assert spreadsheet_cell(-1.5) == -1.5
    assert spreadsheet_cell(None) == ""


def test_write_networks_writes_every_level_and_families(tmp_path):
    folder = write_folder(tmp_path / "out")
    summary = write_networks(folder, min_score=0.3)
    names = {path.name for path in (folder / "networks").iterdir()}
    for level in ("page", "book", "printer", "place"):
        assert {f"{level}.gexf", f"{level}.graphml", f"{level}_nodes.csv",
                f"{level}_edges.csv", f"{level}.json"} <= names
    assert summary.levels["book"]["edges"] == 2  # B1-B2, B2-B3 (p5-p1 scores 0.2)
    families = json.loads((folder / "networks" / "families.json").read_text())
    assert families == summary.families
    assert sorted(page for family in families for page in family["pages"]) == [
        "p1", "p2", "p3", "p4",
    ]
    assert any("printer" in warning and "1 page" in warning for warning in summary.warnings)
    books = nx.read_graphml(folder / "networks" / "book.graphml")
    family_of = {page: family["family"] for family in families for page in family["pages"]}
    assert books.nodes["B1"]["families"] == "; ".join(
        str(number) for number in sorted({family_of["p1"], family_of["p2"]})
    )


def test_bad_rows_are_skipped_and_reported(tmp_path):
    matches = MATCHES + [("p1", "p4", "high", 1), ("p2", "p2", 0.5, 1), ("p9", "p1", 0.6, 1),
                         ("p1", "p4", "nan", 1)]
    rows = PAGE_ROWS[:3] + [{"page_id": "p4", "year": "sometime"}, {"page_id": "p1"}]
    folder = write_folder(tmp_path / "out", page_rows=rows, matches=matches)
    results = load_results(folder)
    text = "\n".join(results.warnings)
    assert "matches.csv line 8: score 'high' is not a number" in text
    assert "matches.csv line 9: page 'p2' matched with itself" in text
    assert "matches.csv line 11: score nan is not finite" in text
    assert "pages.csv line 5: year 'sometime' is not a year" in text
    assert "pages.csv line 6: page 'p1' listed twice" in text
    assert "not in pages.csv ('p5', 'p9')" in text
    assert results.pages["p1"]["book_id"] == "B1"  # the first row is kept
    assert len(results.matches) == len(MATCHES) + 1
    assert write_networks(folder).levels["page"]["nodes"] == 6


def test_missing_or_empty_parts_still_give_networks(tmp_path):
    only_matches = write_folder(tmp_path / "a", manifest=False)
    (only_matches / "pages.csv").unlink()
    summary = write_networks(only_matches)
    assert summary.levels["page"]["edges"] == 5
    assert any("pages.csv: missing" in warning for warning in summary.warnings)
    assert any("manifest.json: missing" in warning for warning in summary.warnings)
    empty = write_networks(write_folder(tmp_path / "b", matches=[]))
    assert empty.levels["page"] == {**empty.levels["page"], "nodes": 5, "edges": 0}
    assert empty.families == []
    books = nx.read_gexf(tmp_path / "b" / "networks" / "book.gexf", version="1.3")
    assert books.number_of_edges() == 0
    with pytest.raises(ResultsError, match="neither pages.csv nor matches.csv"):
        load_results(tmp_path)
    with pytest.raises(ResultsError, match="no such directory"):
        load_results(tmp_path / "nowhere")


def test_network_command(tmp_path):
    folder = write_folder(tmp_path / "out")
    runner = CliRunner()
    result = runner.invoke(network_command, [str(folder), "--level", "book", "--min-score", "0.45"])
    assert result.exit_code == 0, result.output
    assert "book: 4 nodes, 1 edges" in result.output
    assert {path.name for path in (folder / "networks").glob("*.gexf")} == {"book.gexf"}
    (folder / "manifest.json").write_text(json.dumps({"tool_version": "0.0.9"}))
    result = runner.invoke(network_command, [str(folder), "--level", "place"])
    assert "written by version 0.0.9" in result.output
    result = runner.invoke(network_command, [str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "Error:" in result.output and "no such directory" in result.output
    result = runner.invoke(network_command, [str(folder), "--report", "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    assert (folder / "report.html").is_file()


def test_unusable_files_are_reported_not_fatal(tmp_path):
    folder = write_folder(tmp_path / "out")
    (folder / "pages.csv").write_text("page_id,place\np1,Roma; Venezia\np2,\n")
    (folder / "matches.csv").write_text("page_a,page_b\np1,p2\n")
    results = load_results(folder)
    text = "\n".join(results.warnings)
    assert "pages.csv: no column book_id, title, author, printer, publisher, year, handle" in text
    assert "matches.csv: no column score; file ignored" in text
    assert results.pages["p1"]["place"] == ["Roma", "Venezia"] and results.matches == []
    (folder / "matches.csv").write_bytes(b"page_a,page_b,score\n\xff\xfe,p1,0.5\n")
    warnings = load_results(folder).warnings
    assert any("matches.csv: not UTF-8 text (invalid start byte at byte 20)" in warning
               for warning in warnings)
