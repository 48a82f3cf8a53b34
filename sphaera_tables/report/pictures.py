"""Geometry of the report's pictures: a network drawing and a similarity heatmap.

Functions return plain numbers and strings; the template turns them into SVG, so every label
taken from user data passes through jinja2's autoescaping.
"""

import math

import networkx as nx
import numpy as np

NETWORK_SIZE = (900, 560)
"""Width and height of the network picture in SVG user units (px)."""


def network_picture(graph, max_nodes=150, max_edges=600, labelled=12, seed=0):
    """Node and edge positions of a graph drawn with a spring layout.

    Parameters
    ----------
    graph : networkx.Graph
        A book, printer or place graph (edge ``weight`` = shared tables, node ``label``,
        ``pages``).
    max_nodes, max_edges : int
        Only the nodes with the most shared tables, and the heaviest edges among them, are
        drawn (the picture stays readable; the layout uses every edge between drawn nodes).
    labelled : int
        The best-connected nodes get a visible label; every node has a tooltip.
    seed : int
        Layout seed: the same graph always gives the same picture.

    Returns
    -------
    dict or None
        ``{"width", "height", "nodes": [{"x", "y", "r", "label", "anchor", "title"}], "edges":
        [{"x1", "y1", "x2", "y2", "width", "title"}], "hidden": int, "hidden_edges": int}``;
        None for an empty graph.
    """
    if graph.number_of_nodes() == 0:
        return None
    strength = dict(graph.degree(weight="weight"))
    kept = sorted(graph, key=lambda node: (-strength[node], str(node)))[:max_nodes]
    sub = graph.subgraph(kept)
    positions = nx.spring_layout(sub, seed=seed, weight=None) if len(sub) > 1 else {kept[0]: (0, 0)}
    width, height = NETWORK_SIZE
    xy = _fit(np.array([positions[node] for node in kept], dtype=float), width, height, 30)
    where = {node: xy[index] for index, node in enumerate(kept)}
    top = set(kept[:labelled])
    most_pages = max(graph.nodes[node].get("pages", 1) for node in kept)
    nodes = []
    for node in kept:
        data = graph.nodes[node]
        label = str(data.get("label", node))
        nodes.append({
            "x": round(where[node][0], 1), "y": round(where[node][1], 1),
            "r": round(3 + 9 * math.sqrt(data.get("pages", 1) / most_pages), 1),
            "label": label if node in top else "",
            "anchor": "end" if where[node][0] > 0.6 * width else "start",
            "title": f"{label}: {data.get('pages', 1)} table page(s), "
                     f"{strength[node]:g} shared table(s)",
        })
    drawn = sorted(sub.edges(data=True), key=lambda edge: -edge[2].get("weight", 1))[:max_edges]
    heaviest = max((data.get("weight", 1) for *_, data in drawn), default=1)
    edges = [
        {
            "x1": round(where[a][0], 1), "y1": round(where[a][1], 1),
            "x2": round(where[b][0], 1), "y2": round(where[b][1], 1),
            "width": round(0.5 + 3.5 * data.get("weight", 1) / heaviest, 2),
            "title": f"{graph.nodes[a].get('label', a)} \u2014 {graph.nodes[b].get('label', b)}: "
                     f"{data.get('weight', 1):g} shared table(s)",
        }
        for a, b, data in drawn
    ]
    return {
        "width": width, "height": height, "nodes": nodes, "edges": edges,
        "hidden": graph.number_of_nodes() - len(kept),
        "hidden_edges": graph.number_of_edges() - len(edges),
    }


def _fit(points, width, height, margin):
    """Scale 2-D points into a ``width`` x ``height`` box with a margin (px)."""
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    box = np.array([width - 2 * margin, height - 2 * margin])
    return margin + (points - low) / span * box


def heatmap(page_ids, similarity, cell=None):
    """Cells of a similarity heatmap.

    Parameters
    ----------
    page_ids : list of str
        Row and column names.
    similarity : ndarray, shape (N, N)
        Pairwise scores; NaN where unknown (drawn grey).
    cell : int, optional
        Cell size in px; by default 12 to 40 px, so that the map is about 480 px wide.

    Returns
    -------
    dict
        ``{"size", "cell", "labels": [{"y", "text"}], "cells": [{"x", "y", "colour",
        "title"}]}``; colour runs from white (lowest off-diagonal score) to dark red (highest).
    """
    cell = cell or max(12, min(40, 480 // max(len(page_ids), 1)))
    known = similarity[np.isfinite(similarity) & ~np.eye(len(page_ids), dtype=bool)]
    low, high = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
    span = high - low if high > low else 1.0
    cells = []
    for i, row_page in enumerate(page_ids):
        for j, column_page in enumerate(page_ids):
            value = similarity[i, j]
            if np.isfinite(value):
                level = min(max((value - low) / span, 0.0), 1.0)
                colour = _red(level)
                title = f"{row_page} \u00d7 {column_page}: {value:.4g}"
            else:
                colour, title = "#dddddd", f"{row_page} \u00d7 {column_page}: not compared"
            cells.append({"x": j * cell, "y": i * cell, "colour": colour, "title": title})
    labels = [{"y": i * cell + cell * 0.8, "text": page} for i, page in enumerate(page_ids)]
    return {"size": len(page_ids) * cell, "cell": cell, "labels": labels, "cells": cells}


def _red(level):
    """White (0) to dark red (1) as ``#rrggbb``."""
    red = round(255 - 100 * level)
    other = round(255 * (1 - level))
    return f"#{red:02x}{other:02x}{other:02x}"
