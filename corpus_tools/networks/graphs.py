"""Historical networks from candidate matches: pages, books (editions), printers, places.

The page graph has one node per page and one edge per matched pair of pages. The other levels
group pages by a metadata column and count shared tables: an edge between two books (or
printers, or places) carries the matched page pairs that link them. Plain networkx graphs with
plain attribute values (str, int, float, bool, lists of str), so any networkx reader, writer or
algorithm applies.
"""

from collections import defaultdict

import networkx as nx

from corpus_tools.networks.results import METADATA_COLUMNS

LEVELS = ("page", "book", "printer", "place")
"""Graph levels, finest first."""


def page_graph(pages, matches, min_score=0.0, verdicts=None):
    """Graph of pages linked by candidate matches.

    Parameters
    ----------
    pages : dict
        ``page_id -> record`` as in `corpus_tools.networks.results.Results.pages`.
    matches : iterable of Match
        Candidate matches; a pair listed in both directions gives one edge.
    min_score : float
        Matches with a lower score are left out.
    verdicts : dict, optional
        ``frozenset({page_a, page_b}) -> verdict`` (historians' verdicts, see
        ``sphaera_tables.review``); when given, every edge gets ``verdict`` (``unreviewed``
        for a pair without one).

    Returns
    -------
    networkx.Graph
        Nodes: every page whose status is ``ok`` or that takes part in a match (also one
        missing from ``pages``), with the metadata as attributes (``year`` only when known).
        Edges: ``score`` (the highest score seen for the pair), ``weight`` (= score) and
        ``rank`` (the best rank of the pair in either direction, 0 when unknown); when both
        pages are dated, ``first_year`` (the later of the two years) and, if they differ,
        ``earlier`` (the page printed first); ``verdict`` when ``verdicts`` are given.
    """
    graph = nx.Graph(level="page", min_score=float(min_score))
    kept = [match for match in matches if match.score >= min_score]
    in_matches = {page for match in kept for page in (match.page_a, match.page_b)}
    for page_id, record in pages.items():
        if record.get("status", "ok") == "ok" or page_id in in_matches:
            graph.add_node(page_id, **_page_attributes(record))
    for match in kept:
        for page_id in (match.page_a, match.page_b):
            if page_id not in graph:
                graph.add_node(page_id, label=page_id, status="ok")
        _add_page_edge(graph, match)
    if verdicts is not None:
        for a, b, edge in graph.edges(data=True):
            edge["verdict"] = verdicts.get(frozenset((a, b)), "unreviewed")
    return graph


def _page_attributes(record):
    attributes = {"label": record["page_id"], "status": record.get("status", "ok")}
    for column in METADATA_COLUMNS:
        value = record.get(column)
        if value not in (None, "", []):
            attributes[column] = value
    return attributes


def _add_page_edge(graph, match):
    a, b = match.page_a, match.page_b
    if graph.has_edge(a, b):
        edge = graph.edges[a, b]
        edge["score"] = edge["weight"] = max(edge["score"], match.score)
        known = [rank for rank in (edge["rank"], match.rank) if rank > 0]
        edge["rank"] = min(known) if known else 0
        return
    graph.add_edge(a, b, score=match.score, weight=match.score, rank=match.rank)
    year_a, year_b = graph.nodes[a].get("year"), graph.nodes[b].get("year")
    if year_a is not None and year_b is not None:
        graph.edges[a, b]["first_year"] = max(year_a, year_b)
    earlier = _earlier_node(year_a, year_b, a, b)
    if earlier is not None:
        graph.edges[a, b]["earlier"] = earlier


def group_keys(record, level):
    """Names of the groups a page belongs to at ``level`` (several for lists; [] if unknown).

    A page without a book id is its own edition (key ``"page:<page_id>"``), so that undescribed
    pages are never merged into one false book.
    """
    if level == "book":
        book = record.get("book_id") or ""
        return [book] if book else [f"page:{record.get('label') or record.get('page_id')}"]
    if level in ("printer", "place"):
        return list(record.get(level) or [])
    raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS[1:])}")


def group_graph(pages_graph, level):
    """Group a page graph into a book, printer or place graph.

    Parameters
    ----------
    pages_graph : networkx.Graph
        Output of `page_graph`.
    level : {"book", "printer", "place"}
        Metadata column to group by; a page with several printers (places) belongs to each.

    Returns
    -------
    networkx.Graph
        Nodes: ``pages`` (count), ``books`` (count), ``years`` (sorted list), ``first_year`` and
        ``last_year`` (when dated), ``internal_shared_tables`` (matches inside the group),
        ``families`` (table families of its pages, when the page graph is labelled), plus
        ``title``/``author``/``printer``/``place``/``year``/``handle`` for books. Edges:
        ``weight`` = ``shared_tables`` (number of matched page pairs between the two groups),
        ``mean_score``, ``max_score``, ``pairs`` (sorted list of ``"page_a|page_b"``),
        ``first_year`` (earliest year in which both sides of a shared table are printed),
        ``pair_years`` (that year for every dated shared table, sorted), ``verdicts`` (the
        sorted distinct verdicts of its pairs, when the page edges carry ``verdict``) and,
        when the two sides' earliest dated pages differ in year, ``earlier`` (the node printed
        first: the candidate direction of transmission) and ``year_gap``. Pages whose group is
        unknown at this level are left out; ``graph.graph["pages_without_group"]`` counts them.
    """
    graph = nx.Graph(level=level, min_score=pages_graph.graph.get("min_score", 0.0))
    members = defaultdict(list)
    without_group = 0
    for page_id, attributes in pages_graph.nodes(data=True):
        keys = group_keys(attributes, level)
        without_group += not keys
        for key in keys:
            members[key].append(page_id)
    graph.graph["pages_without_group"] = without_group
    for key, page_ids in members.items():
        graph.add_node(key, **_group_attributes(pages_graph, key, page_ids, level))
    shared = defaultdict(list)
    for a, b, edge in pages_graph.edges(data=True):
        for key_a in group_keys(pages_graph.nodes[a], level):
            for key_b in group_keys(pages_graph.nodes[b], level):
                if key_a == key_b:
                    graph.nodes[key_a]["internal_shared_tables"] += 1
                else:
                    pair = (a, b) if key_a < key_b else (b, a)
                    shared[tuple(sorted((key_a, key_b)))].append((pair, edge["score"]))
    for (key_a, key_b), pairs in shared.items():
        graph.add_edge(key_a, key_b, **_shared_attributes(pages_graph, pairs))
        first_a = _first_year(pages_graph, [pair[0] for pair, _ in pairs])
        first_b = _first_year(pages_graph, [pair[1] for pair, _ in pairs])
        earlier = _earlier_node(first_a, first_b, key_a, key_b)
        if earlier is not None:
            graph.edges[key_a, key_b]["earlier"] = earlier
            graph.edges[key_a, key_b]["year_gap"] = abs(first_a - first_b)
    return graph


def _group_attributes(pages_graph, key, page_ids, level):
    records = [pages_graph.nodes[page_id] for page_id in page_ids]
    years = sorted({record["year"] for record in records if "year" in record})
    books = {group_keys(record, "book")[0] for record in records}
    attributes = {
        "label": key, "pages": len(page_ids), "books": len(books), "years": years,
        "internal_shared_tables": 0,
    }
    if years:
        attributes["first_year"], attributes["last_year"] = years[0], years[-1]
    families = sorted({record["family"] for record in records if "family" in record})
    if families:
        attributes["families"] = families
    if level == "book":
        first = records[0]
        for column in ("title", "author", "printer", "publisher", "place", "year", "handle"):
            if column in first:
                attributes[column] = first[column]
        if key.startswith("page:"):
            attributes["metadata_missing"] = True
        elif "title" in first:
            attributes["label"] = _book_label(first)
    return attributes


def _book_label(record):
    title = record["title"]
    short = title if len(title) <= 40 else title[:39] + "\u2026"
    return f"{short} ({record['year']})" if "year" in record else short


def _shared_attributes(pages_graph, pairs):
    scores = [score for _, score in pairs]
    pair_years = [
        max(pages_graph.nodes[a]["year"], pages_graph.nodes[b]["year"])
        for (a, b), _ in pairs
        if "year" in pages_graph.nodes[a] and "year" in pages_graph.nodes[b]
    ]
    attributes = {
        "weight": len(pairs), "shared_tables": len(pairs),
        "mean_score": sum(scores) / len(scores), "max_score": max(scores),
        "pairs": sorted(f"{a}|{b}" for (a, b), _ in pairs),
    }
    if pair_years:
        attributes["first_year"] = min(pair_years)
        attributes["pair_years"] = sorted(pair_years)
    verdicts = {pages_graph.edges[pair].get("verdict") for pair, _ in pairs} - {None}
    if verdicts:
        attributes["verdicts"] = sorted(verdicts)
    return attributes


def _first_year(pages_graph, page_ids):
    nodes = pages_graph.nodes
    years = [nodes[page]["year"] for page in page_ids if "year" in nodes[page]]
    return min(years) if years else None


def _earlier_node(year_a, year_b, a, b):
    """The node printed first, or None when a year is unknown or both are the same."""
    if year_a is None or year_b is None or year_a == year_b:
        return None
    return a if year_a < year_b else b


def build_graph(pages, matches, level, min_score=0.0):
    """The graph of one level (see `LEVELS`) straight from pages and matches."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    pages_graph = page_graph(pages, matches, min_score)
    return pages_graph if level == "page" else group_graph(pages_graph, level)
