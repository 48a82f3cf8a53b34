"""The offline HTML report: content, escaping of user data, links, old or partial folders."""

import json
import re
from html.parser import HTMLParser

import networkx as nx
import numpy as np
import pytest

from corpus_tools.networks import ResultsError, load_results, pair_key
from corpus_tools.networks.fabricate import fabricate_pictures, fabricate_results
from corpus_tools.results_folder import PIXELS_SUFFIX
from sphaera_tables.report import build_report, handle_url, report_context
from sphaera_tables.report.pictures import NETWORK_SIZE, heatmap, network_picture

HOSTILE = "Sphaera <script>alert('x')</script> & </svg><img src=x onerror=alert(1)>"
ROWS = [
    {"page_id": "venice/p1.jpg", "book_id": "B1", "title": HOSTILE, "printer": "Giunta; Scoto",
     "place": "Venezia", "year": "1550", "handle": "hdl.handle.net/21.11103/sphaera.1"},
    {"page_id": "venice/p2.jpg", "book_id": "B1", "title": HOSTILE, "printer": "Giunta",
     "place": "Venezia", "year": "1550", "handle": "javascript:alert(1)",
     "iiif_manifest": "https://iiif.example.org/sphaera/2/manifest.json"},
    {"page_id": "paris/p1.jpg", "book_id": "B2", "title": "Tractatus", "printer": "Cavellat",
     "place": "Paris", "year": "1562", "iiif_manifest": "javascript:alert(3)"},
    {"page_id": "paris/p7.jpg", "book_id": "B2", "title": "Tractatus", "printer": "Cavellat",
     "place": "Paris", "year": "1562"},
    {"page_id": "undescribed.jpg"},
]


class Collector(HTMLParser):
    """Tags, attributes and script bodies of a page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def parse(html):
    collector = Collector()
    collector.feed(html)
    return collector


@pytest.fixture
def folder(tmp_path):
    out = fabricate_results(tmp_path / "out", ROWS, matches_per_page=2, seed=2)
    return fabricate_pictures(out, seed=2)


def test_handle_urls():
    assert handle_url("hdl.handle.net/21.11103/sphaera.101121") == (
        "https://hdl.handle.net/21.11103/sphaera.101121"
    )
    assert handle_url("21.11103/sphaera.1") == "https://hdl.handle.net/21.11103/sphaera.1"
    assert handle_url("http://hdl.handle.net/21.11103/x") == "https://hdl.handle.net/21.11103/x"
    assert handle_url("https://example.org/iiif/manifest.json") == (
        "https://example.org/iiif/manifest.json"
    )
    assert handle_url("javascript:alert(1)") is None
    assert handle_url("") is None


def test_report_shows_every_match_with_its_pictures(folder):
    path = build_report(folder)
    html = path.read_text(encoding="utf-8")
    page = parse(html)
    context = report_context(folder)
    cards = [attrs for tag, attrs in page.tags if tag == "article"]
    assert len(cards) == len(context["cards"]) == len(context["index"])
    pairs = {frozenset(line.split(",")[:2]) for line in
             (folder / "matches.csv").read_text().splitlines()[1:]}
    assert len(cards) == len(pairs)
    sources = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert sources and all((folder / source).is_file() for source in sources)
    assert sum(source.startswith("explanations/") for source in sources) == len(cards)
    assert sum(source.startswith("thumbnails/") for source in sources) == 2 * len(cards)
    assert not any(re.match(r"(https?:)?//", attrs.get("src", "")) for _, attrs in page.tags)
    assert "<svg class=\"network\"" in html and "<svg class=\"heatmap\"" in html
    assert "Strongest digit links" in html


def test_a_pairs_pixel_picture_is_linked_when_it_exists(folder):
    """`tables similarity --pixels` writes PAIR_pixels.png beside PAIR.png: its card links it,
    the others do not."""
    first = report_context(folder)["cards"][0]
    picture = folder / first["explanation"]["picture"]
    pixels = picture.with_name(picture.stem + PIXELS_SUFFIX)
    pixels.write_bytes(picture.read_bytes())
    page = parse(build_report(folder).read_text(encoding="utf-8"))
    links = [attrs["href"] for tag, attrs in page.tags
             if tag == "a" and attrs.get("href", "").endswith(PIXELS_SUFFIX)]
    assert links == [pixels.relative_to(folder).as_posix()]


def test_user_data_is_escaped_everywhere(folder):
    html = build_report(folder).read_text(encoding="utf-8")
    page = parse(html)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert not any("onerror" in attrs for _, attrs in page.tags)
    assert [tag for tag, _ in page.tags].count("script") == 2  # match index + report.js
    index = json.loads(next(s for s in page.scripts if s.lstrip().startswith("[")))
    assert any(HOSTILE.lower() in entry["text"] for entry in index)
    assert "Sphaera &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;/svg&gt;" in html


def test_links_are_https_and_never_scripts(folder):
    page = parse(build_report(folder).read_text(encoding="utf-8"))
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a" and "href" in attrs]
    external = [href for href in hrefs if not href.startswith("#")]
    assert "https://hdl.handle.net/21.11103/sphaera.1" in external
    assert "https://iiif.example.org/sphaera/2/manifest.json" in external
    assert all(href.startswith("https://") for href in external)


def test_family_and_summary_figures(folder):
    context = report_context(folder)
    summary = context["summary"]
    assert (summary["pages"], summary["ok"], summary["books"]) == (5, 5, 3)
    assert (summary["first_year"], summary["last_year"], summary["undated"]) == (1550, 1562, 1)
    assert summary["printers"] == 3 and summary["places"] == 2
    covered = sorted(page for family in context["families"] for page in family["pages"])
    assert covered == sorted(row["page_id"] for row in ROWS)


def test_min_score_filters_cards(folder):
    everything = report_context(folder)["cards"]
    threshold = sorted(card["score"] for card in everything)[len(everything) // 2]
    kept = report_context(folder, min_score=threshold)["cards"]
    expected = {(card["page_a"], card["page_b"]) for card in everything
                if card["score"] >= threshold}
    assert {(card["page_a"], card["page_b"]) for card in kept} == expected
    assert 0 < len(kept) < len(everything)
    best = report_context(folder, max_matches=2)
    assert [card["score"] for card in best["cards"]] == [card["score"] for card in everything][:2]
    assert best["not_shown"] == len(everything) - 2
    html = build_report(folder, max_matches=2).read_text(encoding="utf-8")
    assert f"The {len(everything) - 2} weaker candidate matches are not shown" in html


def test_old_or_partial_results_folder(tmp_path):
    out = fabricate_results(tmp_path / "out", ROWS, matches_per_page=2, tool_version="0.0.1")
    html = build_report(out).read_text(encoding="utf-8")
    assert "written by version 0.0.1" in html
    assert "thumbnails: missing" in html and "explanations: missing" in html
    assert html.count("no thumbnail") == 2 * html.count("<article")
    assert "no explanation picture" in html


def test_broken_explanation_and_features_are_reported(folder):
    first = (folder / "matches.csv").read_text().splitlines()[1].split(",")
    (folder / "explanations" / f"{pair_key(first[0], first[1])}.json").write_text("{not json")
    np.save(folder / "features.npy", np.zeros((2, 100), np.float32))
    context = report_context(folder)
    text = "\n".join(context["warnings"])
    assert "unreadable explanation" in text
    assert "features.npy: shape (2, 100) does not fit 5 pages" in text
    assert context["heatmap"] is not None  # drawn from the matches instead


def test_empty_match_list_and_bad_folder(tmp_path):
    out = fabricate_results(tmp_path / "out", ROWS, matches_per_page=0)
    html = build_report(out).read_text(encoding="utf-8")
    assert "No candidate matches" in html and "No table families" in html
    assert "<article" not in html
    with pytest.raises(ResultsError, match="not a results folder"):
        build_report(tmp_path / "missing")



def test_skipped_pages_are_counted_not_drawn(tmp_path):
    rows = [dict(row) for row in ROWS]
    rows[-1]["status"] = "skipped: unreadable image"
    out = fabricate_results(tmp_path / "out", rows, matches_per_page=0)
    context = report_context(out)
    assert (context["summary"]["ok"], context["summary"]["skipped"]) == (
        4, [("skipped: unreadable image", 1)]
    )
    assert context["summary"]["books"] == 2  # the skipped, undescribed page is no edition
    assert "1 skipped: unreadable image" in build_report(out).read_text(encoding="utf-8")


def test_network_picture_keeps_the_strongest_and_fits_the_box():
    graph = nx.Graph()
    graph.add_nodes_from((name, {"label": f"<{name}>", "pages": pages})
                         for name, pages in [("a", 4), ("b", 1), ("c", 1), ("d", 1)])
    graph.add_edge("a", "b", weight=5)
    graph.add_edge("a", "c", weight=2)
    graph.add_edge("c", "d", weight=1)
    picture = network_picture(graph, max_nodes=3, max_edges=1)
    assert [node["title"].split(":")[0] for node in picture["nodes"]] == ["<a>", "<b>", "<c>"]
    assert (picture["hidden"], picture["hidden_edges"], len(picture["edges"])) == (1, 2, 1)
    assert picture["edges"][0]["title"] == "<a> \u2014 <b>: 5 shared table(s)"
    width, height = NETWORK_SIZE
    assert all(0 <= node["x"] <= width and 0 <= node["y"] <= height for node in picture["nodes"])
    assert picture["nodes"][0]["r"] == 12.0  # the largest edition gets the largest circle
    assert network_picture(nx.Graph()) is None


def test_heatmap_colours():
    similarity = np.array([[9.0, 1.0, np.nan], [1.0, 9.0, 3.0], [np.nan, 3.0, 9.0]])
    drawn = heatmap(["p", "q", "r"], similarity, 10)["cells"]
    cells = {(cell["y"], cell["x"]): cell for cell in drawn}
    assert cells[(0, 10)]["colour"] == "#ffffff"  # lowest off-diagonal score
    assert cells[(10, 20)]["colour"] == "#9b0000"  # highest off-diagonal score
    assert cells[(0, 20)]["colour"] == "#dddddd" and "not compared" in cells[(0, 20)]["title"]


def test_heatmap_shows_the_runs_whole_similarity_where_it_was_saved(folder):
    """similarity.npy holds the model's whole score; features.npy only the bigram part of the
    numbers model, so the heatmap takes the first where it fits the ok pages."""
    pages = [p for p, r in load_results(folder).pages.items() if r["status"] == "ok"]
    saved = np.arange(len(pages) ** 2, dtype=np.float32).reshape(len(pages), len(pages)) / 100
    np.save(folder / "similarity.npy", saved)
    cells = report_context(folder)["heatmap"]["cells"]
    titles = {cell["title"] for cell in cells}
    assert f"{pages[0]} \u00d7 {pages[1]}: {saved[0, 1]:.4g}" in titles
    assert f"{pages[2]} \u00d7 {pages[1]}: {saved[2, 1]:.4g}" in titles
    np.save(folder / "similarity.npy", saved[:2, :2])  # a run of other pages: not used
    context = report_context(folder)
    assert "similarity.npy: shape (2, 2) does not fit" in "\n".join(context["warnings"])
    features = np.load(folder / "features.npy").astype(float)
    titles = {cell["title"] for cell in context["heatmap"]["cells"]}
    assert f"{pages[0]} \u00d7 {pages[1]}: {features[0] @ features[1]:.4g}" in titles
