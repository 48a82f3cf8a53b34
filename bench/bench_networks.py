"""Benchmark: networks, exports and the report at the real corpus's scale.

A results folder is fabricated from the real index of 9,793 table pages (263 books, their
printers, places and years) with random matches; every stage is timed once and printed.
Baseline in the same process: networkx's own GEXF writer on the same book graph.

    python bench/bench_networks.py [--matches-per-page 5] [--report]

Figures are wall-clock seconds on a shared machine: expect noise of tens of percent.
"""

import argparse
import tempfile
import time
from pathlib import Path

import networkx as nx

from corpus_tools.networks import load_results, page_graph, table_families, write_level
from corpus_tools.networks.exports import flat_graph
from corpus_tools.networks.fabricate import fabricate_results, sphaera_rows
from corpus_tools.networks.gexf import write_gexf
from corpus_tools.networks.graphs import group_graph

REAL_INDEX = Path(__file__).parents[2] / "shared" / "data" / "real" / "metadata" / (
    "sphaera_tables_9793.csv"
)


def timed(label, function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"{label:<38} {seconds:8.2f} s")
    return value, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches-per-page", type=int, default=5)
    parser.add_argument("--report", action="store_true", help="also time report.html")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        rows = sphaera_rows(REAL_INDEX)
        timed("fabricate results folder", fabricate_results, out, rows, args.matches_per_page)
        results, _ = timed("read pages.csv + matches.csv", load_results, out)
        print(f"{len(results.pages)} pages, {len(results.matches)} match rows")
        pages, _ = timed("page graph", page_graph, results.pages, results.matches)
        print(f"page graph: {pages.number_of_nodes()} nodes, {pages.number_of_edges()} edges")
        families, _ = timed("table families (Louvain)", table_families, pages)
        print(f"{len(families)} families, largest {families[0]['size'] if families else 0}")
        for level in ("book", "printer", "place"):
            graph, _ = timed(f"{level} graph", group_graph, pages, level)
            size = f"{graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges"
            print(f"{level} graph: {size}")
            if level == "book":
                books = graph
        for level, graph in (("page", pages), ("book", books)):
            timed(f"write {level} level (all 5 formats)", write_level, graph, out, level)
        _, ours = timed("GEXF 1.3 book graph (ours)", write_gexf, books, out / "ours.gexf")
        _, baseline = timed(
            "GEXF 1.2 book graph (networkx)", nx.write_gexf, flat_graph(books), out / "nx.gexf"
        )
        print(f"our GEXF writer / networkx's: {ours / baseline:.2f} x the time")
        if args.report:
            from sphaera_tables.report import build_report

            path, _ = timed("report.html (no pictures)", build_report, out)
            print(f"report.html: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
