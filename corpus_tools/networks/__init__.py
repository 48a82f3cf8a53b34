"""Historical networks of shared tables: pages, books, printers, places; table families.

Read a results folder, build networkx graphs per level, find table families, and export them
for Gephi (GEXF 1.3 with a timeline, Gephi CSV), GraphML and JSON::

    from corpus_tools.networks import write_networks
    summary = write_networks("results", min_score=0.5)
"""

from corpus_tools.ingest import safe_name
from corpus_tools.networks.exports import (
    NetworkSummary,
    build_networks,
    write_families,
    write_level,
    write_networks,
)
from corpus_tools.networks.families import label_families, table_families
from corpus_tools.networks.gexf import write_gexf
from corpus_tools.networks.graphs import LEVELS, build_graph, group_graph, page_graph
from corpus_tools.networks.results import Match, Results, ResultsError, load_results
from corpus_tools.results_folder import pair_key

__all__ = [
    "LEVELS", "Match", "NetworkSummary", "Results", "ResultsError", "build_graph",
    "build_networks", "group_graph", "label_families", "load_results", "page_graph",
    "pair_key", "safe_name", "table_families", "write_families", "write_gexf", "write_level",
    "write_networks",
]
