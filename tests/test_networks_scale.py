"""Networks at the real corpus's scale: the 9,793 real table pages, their real books, printers,
places and years, and random matches."""

import csv
from pathlib import Path

import networkx as nx
import pytest
import xmlschema

from corpus_tools.networks import write_networks
from corpus_tools.networks.fabricate import fabricate_results, sphaera_rows
from corpus_tools.networks.gexf import SCHEMA
from corpus_tools.networks.results import split_list

SHARED = Path(__file__).parents[2] / "shared"
REAL_INDEX = SHARED / "data" / "real" / "metadata" / "sphaera_tables_9793.csv"


def distinct(column):
    """Distinct ``;``-separated values of a column of the real index, read independently."""
    with open(REAL_INDEX, newline="", encoding="utf-8") as handle:
        return {value for row in csv.DictReader(handle) for value in split_list(row[column])}


@pytest.mark.slow  # about 8 s: runs in `make test-slow` (CI)
def test_real_metadata_gives_networks_at_full_scale(tmp_path):
    rows = sphaera_rows(REAL_INDEX)
    assert len(rows) == 9793
    folder = fabricate_results(tmp_path / "out", rows, matches_per_page=1, seed=1)
    summary = write_networks(folder, levels=("book", "place"))
    book_graph = nx.read_graphml(folder / "networks" / "book.graphml")
    assert sum(pages for _, pages in book_graph.nodes(data="pages")) == 9793
    assert summary.levels["book"]["nodes"] == len({row["book_id"] for row in rows}) == 263
    assert summary.levels["place"]["nodes"] == len(distinct("place_of_publication"))
    assert summary.families and sum(family["size"] for family in summary.families) <= 9793
    networks = folder / "networks"
    xmlschema.XMLSchema(SCHEMA).validate(networks / "book.gexf")
    books = nx.read_gexf(networks / "book.gexf", version="1.3")
    assert books.number_of_nodes() == 263
    assert books.number_of_edges() == summary.levels["book"]["edges"]
    places = nx.read_graphml(networks / "place.graphml")
    assert places.number_of_edges() == summary.levels["place"]["edges"]
    assert all(1400 < years[0][1] < 1700 for _, years in books.nodes(data="printed"))
