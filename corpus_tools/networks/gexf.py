"""GEXF 1.3 writer with years on Gephi's timeline.

networkx writes GEXF too, but its output does not validate against the GEXF 1.3 schema (it
adds a ``name`` attribute to ``<graph>``) and has no notion of our years. This writer emits the
subset of GEXF 1.3 described by ``data/gexf-1.3-subset.xsd`` and reads back with
``networkx.read_gexf(path, version="1.3")``.

Time: ``timeformat="integer"``, years. A node appears on the timeline in its first year
(``start``); its dynamic attribute ``printed`` is true in every year it has a dated page. An
edge appears in the first year both sides of a shared table are printed; its dynamic attribute
``shared_tables_so_far`` counts the shared tables printed up to each year.
"""

import datetime
import re
import xml.etree.ElementTree as ET
from pathlib import Path

NAMESPACE = "http://gexf.net/1.3"
SCHEMA = Path(__file__).parent / "data" / "gexf-1.3-subset.xsd"
"""XML Schema of the GEXF 1.3 subset this writer emits (validate offline, e.g. with xmlschema)."""
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value):
    """``value`` as text that XML 1.0 can hold (control characters dropped; lists joined)."""
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(item) for item in value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return _INVALID_XML.sub("", str(value))


def _gexf_type(values):
    if all(isinstance(value, bool) for value in values):
        return "boolean"
    if all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return "long"
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return "double"
    return "string"


def _declare(items, skip, prefix):
    """Static attribute declarations ``title -> (id, type)`` for node or edge attribute dicts;
    ids are ``prefix`` + a number, so node and edge ids never collide."""
    values = {}
    for attributes in items:
        for title, value in attributes.items():
            if title not in skip and value is not None:
                values.setdefault(title, []).append(value)
    return {
        title: (f"{prefix}{number}", _gexf_type(values[title]))
        for number, title in enumerate(sorted(values))
    }


def _node_years(attributes):
    if "years" in attributes:
        return list(attributes["years"])
    return [attributes["year"]] if "year" in attributes else []


def _edge_years(attributes):
    if "pair_years" in attributes:
        return list(attributes["pair_years"])
    return [attributes["first_year"]] if "first_year" in attributes else []


def write_gexf(graph, path, description=""):
    """Write an undirected graph as GEXF 1.3 with years as dynamic attributes.

    Parameters
    ----------
    graph : networkx.Graph
        Node and edge attributes: str, int, float, bool or lists (written ``"; "``-joined).
        Node ``years`` (or ``year``) and edge ``pair_years`` (or ``first_year``) place them on
        the timeline; ``label`` becomes the GEXF label, ``weight`` the edge weight.
    path : str or Path
        Output file.
    description : str
        Free text stored in ``<meta><description>``.
    """
    all_years = [year for _, data in graph.nodes(data=True) for year in _node_years(data)]
    all_years += [year for *_, data in graph.edges(data=True) for year in _edge_years(data)]
    dynamic = bool(all_years)
    root = ET.Element("gexf", {"xmlns": NAMESPACE, "version": "1.3"})
    meta = ET.SubElement(root, "meta", lastmodifieddate=datetime.date.today().isoformat())
    ET.SubElement(meta, "creator").text = "sphaera-tables"
    ET.SubElement(meta, "description").text = xml_text(description)
    graph_element = ET.SubElement(root, "graph", defaultedgetype="undirected")
    if dynamic:
        graph_element.attrib.update(
            mode="dynamic", timeformat="integer", start=str(min(all_years)),
            end=str(max(all_years)),
        )
    node_keys = _declare((data for _, data in graph.nodes(data=True)), {"label"}, "n")
    edge_keys = _declare((data for _, _, data in graph.edges(data=True)), {"weight"}, "e")
    _attributes_element(graph_element, "node", "static", node_keys)
    _attributes_element(graph_element, "edge", "static", edge_keys)
    if dynamic:
        _attributes_element(graph_element, "node", "dynamic", {"printed": ("printed", "boolean")})
        so_far = "shared_tables_so_far"
        _attributes_element(graph_element, "edge", "dynamic", {so_far: (so_far, "integer")})
    end = max(all_years) if dynamic else None
    nodes = ET.SubElement(graph_element, "nodes", count=str(graph.number_of_nodes()))
    for node, data in graph.nodes(data=True):
        element = ET.SubElement(nodes, "node", id=xml_text(node))
        element.set("label", xml_text(data.get("label", node)))
        years = sorted(set(_node_years(data)))
        if years:
            element.set("start", str(years[0]))
        values = _static_values(data, node_keys)
        values += [("printed", "true", year, year) for year in years]
        _attvalues(element, values)
    edges = ET.SubElement(graph_element, "edges", count=str(graph.number_of_edges()))
    for number, (a, b, data) in enumerate(graph.edges(data=True)):
        source, target = (b, a) if data.get("earlier") == b else (a, b)
        element = ET.SubElement(
            edges, "edge", id=str(number), source=xml_text(source), target=xml_text(target),
        )
        element.set("weight", repr(float(data.get("weight", 1.0))))
        years = sorted(_edge_years(data))
        if years:
            element.set("start", str(years[0]))
        _attvalues(element, _static_values(data, edge_keys) + _cumulative(years, end))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _attributes_element(parent, kind, mode, keys):
    if not keys:
        return
    element = ET.SubElement(parent, "attributes", {"class": kind, "mode": mode})
    for title, (key, gexf_type) in keys.items():
        ET.SubElement(element, "attribute", id=key, title=xml_text(title), type=gexf_type)


def _static_values(data, keys):
    return [
        (keys[title][0], _typed(value, keys[title][1]), None, None)
        for title, value in data.items()
        if title in keys and value is not None
    ]


def _typed(value, gexf_type):
    if gexf_type == "double":
        return repr(float(value))
    return xml_text(value)


def _cumulative(years, end):
    """``shared_tables_so_far`` values: the count, one interval per distinct year."""
    distinct = sorted(set(years))
    values = []
    for index, year in enumerate(distinct):
        until = distinct[index + 1] - 1 if index + 1 < len(distinct) else end
        count = sum(1 for seen in years if seen <= year)
        values.append(("shared_tables_so_far", str(count), year, max(until, year)))
    return values


def _attvalues(element, values):
    if not values:
        return
    container = ET.SubElement(element, "attvalues")
    for key, value, start, end in values:
        attvalue = ET.SubElement(container, "attvalue", {"for": key, "value": value})
        if start is not None:
            attvalue.set("start", str(start))
            attvalue.set("end", str(end))
