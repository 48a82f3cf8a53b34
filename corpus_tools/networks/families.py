"""Table families: groups of pages that share the same table, found as graph communities.

A family is a community of the page graph (Louvain modularity, fixed seed so that a rerun on
the same matches gives the same families). For each family the historian sees where and when
the table first appears and which books, printers, places and years it spans.
"""

import networkx as nx

SEED = 0
"""Seed of the community search: the same matches always give the same families."""


def table_families(pages_graph, seed=SEED):
    """Communities of the page graph, largest first.

    Parameters
    ----------
    pages_graph : networkx.Graph
        Output of `corpus_tools.networks.graphs.page_graph`; edge ``weight`` is the score.
    seed : int
        Seed of the Louvain community search.

    Returns
    -------
    list of dict
        One dict per family of two or more pages linked by positive scores (unmatched pages
        form no family), numbered
        from 1 by decreasing size: ``family``, ``size``, ``pages`` (sorted), ``books``,
        ``printers``, ``places``, ``years`` (sorted unique lists), ``first_year``,
        ``last_year`` (None when no page is dated), ``first_pages`` (the pages printed in
        ``first_year``: the table's first appearance) and ``internal_matches``.
    """
    supporting = nx.Graph()
    supporting.add_weighted_edges_from(
        (a, b, w) for a, b, w in pages_graph.edges(data="weight", default=0.0) if w > 0
    )
    if supporting.number_of_edges() == 0:
        return []
    communities = nx.community.louvain_communities(supporting, weight="weight", seed=seed)
    groups = [sorted(pages) for pages in communities if len(pages) > 1]
    groups.sort(key=lambda pages: (-len(pages), pages[0]))
    return [_describe(pages_graph, number, pages) for number, pages in enumerate(groups, 1)]


def _describe(pages_graph, number, pages):
    nodes = [pages_graph.nodes[page] for page in pages]
    years = sorted({node["year"] for node in nodes if "year" in node})
    first_year = years[0] if years else None
    return {
        "family": number,
        "size": len(pages),
        "pages": pages,
        "books": sorted({node["book_id"] for node in nodes if "book_id" in node}),
        "printers": sorted({name for node in nodes for name in node.get("printer", [])}),
        "places": sorted({name for node in nodes for name in node.get("place", [])}),
        "years": years,
        "first_year": first_year,
        "last_year": years[-1] if years else None,
        "first_pages": [
            page for page, node in zip(pages, nodes, strict=True)
            if first_year is not None and node.get("year") == first_year
        ],
        "internal_matches": pages_graph.subgraph(pages).number_of_edges(),
    }


def label_families(pages_graph, families):
    """Set node attribute ``family`` (its number) on every page that belongs to a family."""
    for family in families:
        for page in family["pages"]:
            pages_graph.nodes[page]["family"] = family["family"]
