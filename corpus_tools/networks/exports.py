"""Write the networks of a results folder for Gephi, spreadsheets and Python.

Per level (page, book, printer, place) ``OUT/networks/`` receives ``<level>.gexf`` (GEXF 1.3,
years on Gephi's timeline), ``<level>.graphml``, ``<level>_nodes.csv`` and
``<level>_edges.csv`` (Gephi's spreadsheet import: Id/Label, Source/Target/Type/Weight) and
``<level>.json`` (networkx node-link data, lists kept as lists). The table families go to
``families.json`` and ``families.csv``.
"""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from corpus_tools.networks.families import label_families, table_families
from corpus_tools.networks.gexf import write_gexf, xml_text
from corpus_tools.networks.graphs import LEVELS, group_graph, page_graph
from corpus_tools.networks.results import load_results
from corpus_tools.results_folder import ResultsFolder
from corpus_tools.storage import atomic_path, spreadsheet_safe, write_text_atomic

_FAMILY_COLUMNS = (
    "family", "size", "first_year", "last_year", "first_pages", "books", "printers", "places",
    "years", "internal_matches", "pages",
)


@dataclass
class NetworkSummary:
    """What `write_networks` wrote: ``levels[level] = {"nodes", "edges", "files"}``, and the
    graphs themselves (``level -> networkx.Graph``, for the report)."""

    networks_dir: Path
    levels: dict = field(default_factory=dict)
    families: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    graphs: dict = field(default_factory=dict)


def spreadsheet_cell(value):
    """A CSV cell for ``value``: lists ``"; "``-joined, None empty, and text made
    :func:`~corpus_tools.storage.spreadsheet_safe` (a spreadsheet shows it as text)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return spreadsheet_safe(xml_text(value))


def flat_graph(graph):
    """Copy of ``graph`` whose attributes GraphML can hold: lists joined with ``"; "``,
    None dropped, text stripped of characters XML cannot hold."""
    flat = nx.Graph()
    flat.graph.update(_flat(graph.graph))
    flat.add_nodes_from((xml_text(node), _flat(data)) for node, data in graph.nodes(data=True))
    flat.add_edges_from(
        (xml_text(a), xml_text(b), _flat(data)) for a, b, data in graph.edges(data=True)
    )
    return flat


def _flat(attributes):
    flat = {}
    for key, value in attributes.items():
        if value is None:
            continue
        keep = isinstance(value, (bool, int, float))
        flat[key] = value if keep else xml_text(value)
    return flat


def write_gephi_csv(graph, nodes_path, edges_path):
    """Gephi's spreadsheet import: nodes (Id, Label, ...) and edges (Source, Target, Type,
    Id, Weight, ...), each file written atomically. The earlier node of an edge, when known,
    is its Source."""
    node_columns = sorted({key for _, data in graph.nodes(data=True) for key in data} - {"label"})
    with atomic_path(nodes_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Id", "Label", *node_columns])
        for node, data in graph.nodes(data=True):
            row = [node, data.get("label", node)] + [data.get(column) for column in node_columns]
            writer.writerow([spreadsheet_cell(value) for value in row])
    edge_columns = sorted({key for *_, data in graph.edges(data=True) for key in data} - {"weight"})
    with atomic_path(edges_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Source", "Target", "Type", "Id", "Weight", *edge_columns])
        for number, (a, b, data) in enumerate(graph.edges(data=True)):
            source, target = (b, a) if data.get("earlier") == b else (a, b)
            row = [source, target, "Undirected", number, data.get("weight", 1.0)]
            row += [data.get(column) for column in edge_columns]
            writer.writerow([spreadsheet_cell(value) for value in row])


def write_json(graph, path):
    """networkx node-link JSON (``nodes``, ``edges``; lists stay lists), written atomically."""
    data = nx.node_link_data(graph, edges="edges")
    write_text_atomic(path, json.dumps(data, ensure_ascii=False))


def write_level(graph, networks_dir, level):
    """Write one graph in every format, each file atomically (a reader, or a run stopped by a
    full disk, never leaves a half-written network); returns the list of files written."""
    networks_dir = Path(networks_dir)
    stem = networks_dir / level
    files = [
        stem.with_suffix(".gexf"), stem.with_suffix(".graphml"),
        networks_dir / f"{level}_nodes.csv", networks_dir / f"{level}_edges.csv",
        stem.with_suffix(".json"),
    ]
    description = (
        f"{level} network of shared tables (minimum score {graph.graph.get('min_score', 0.0)})"
    )
    with atomic_path(files[0]) as tmp:
        write_gexf(graph, tmp, description=description)
    with atomic_path(files[1]) as tmp:
        nx.write_graphml(flat_graph(graph), tmp)
    write_gephi_csv(graph, files[2], files[3])
    write_json(graph, files[4])
    return files


def write_families(families, networks_dir):
    """``families.json`` (lists kept) and ``families.csv`` (lists ``"; "``-joined), each
    written atomically."""
    networks_dir = Path(networks_dir)
    json_path, csv_path = networks_dir / "families.json", networks_dir / "families.csv"
    write_text_atomic(json_path, json.dumps(families, ensure_ascii=False, indent=1))
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_FAMILY_COLUMNS)
        for family in families:
            writer.writerow([spreadsheet_cell(family[column]) for column in _FAMILY_COLUMNS])
    return [json_path, csv_path]


def build_networks(results, min_score=0.0, levels=LEVELS, verdicts=None):
    """Graphs and families from a loaded results folder (nothing written); ``verdicts`` as
    in `corpus_tools.networks.graphs.page_graph`.

    Returns
    -------
    graphs : dict
        ``level -> networkx.Graph`` for the requested levels.
    families : list of dict
        See `corpus_tools.networks.families.table_families`; page nodes carry ``family``.
    """
    unknown = [level for level in levels if level not in LEVELS]
    if unknown:
        raise ValueError(f"unknown level {unknown[0]!r}; choose from {', '.join(LEVELS)}")
    pages_graph = page_graph(results.pages, results.matches, min_score, verdicts)
    families = table_families(pages_graph)
    label_families(pages_graph, families)
    graphs = {
        level: pages_graph if level == "page" else group_graph(pages_graph, level)
        for level in levels
    }
    return graphs, families


def write_networks(out_dir, min_score=0.0, levels=LEVELS, results=None, verdicts=None):
    """Build and write the networks and table families of a results folder.

    Parameters
    ----------
    out_dir : str or Path
        Results folder written by ``tables similarity``; files go to ``out_dir/networks``.
    min_score : float
        Matches scoring lower are left out of every network.
    levels : sequence of str
        Any of ``"page", "book", "printer", "place"``.
    results : Results, optional
        An already loaded results folder (saves reading it twice).
    verdicts : dict, optional
        ``frozenset({page_a, page_b}) -> verdict``: page edges get a ``verdict`` attribute.

    Returns
    -------
    NetworkSummary
        Files and sizes per level, the families, and one warning line per problem found in
        the results folder (bad rows, missing files, pages without metadata).
    """
    results = results if results is not None else load_results(out_dir)
    networks_dir = ResultsFolder(out_dir).networks
    networks_dir.mkdir(parents=True, exist_ok=True)
    graphs, families = build_networks(results, min_score, levels, verdicts)
    summary = NetworkSummary(networks_dir, families=families, warnings=list(results.warnings),
                             graphs=graphs)
    for level, graph in graphs.items():
        files = write_level(graph, networks_dir, level)
        summary.levels[level] = {
            "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(), "files": files,
        }
        without = graph.graph.get("pages_without_group", 0)
        if without:
            summary.warnings.append(
                f"{level} network: {without} page(s) without a known {level} left out"
            )
    write_families(families, networks_dir)
    return summary
