"""Build ``OUT/report.html``: an offline page where a historian checks every candidate match.

The page holds a corpus summary, the table families, a network picture, a similarity heatmap
(small corpora) and one card per matched pair of pages: both thumbnails side by side, the
explanation picture, the strongest digit links, score, ranks, metadata and catalogue links.
Images are relative links into the results folder; no file is fetched from the network.
All text from user data is escaped by jinja2 (HTML, SVG, and the JSON the page's script reads).
"""

import json
import re
from collections import Counter
from pathlib import Path

import jinja2
import numpy as np

from corpus_tools.networks import build_networks, load_results
from corpus_tools.results_folder import (
    EXPLANATIONS,
    FEATURES,
    MANIFEST,
    PIXELS_SUFFIX,
    SIMILARITY,
    THUMBNAILS,
    ResultsFolder,
)
from corpus_tools.storage import write_text_atomic
from sphaera_tables import __version__
from sphaera_tables.report.pictures import heatmap, network_picture
from sphaera_tables.review.downstream import pair_states, verdict_labels
from sphaera_tables.review.verdicts import STATE_WORDS

HEATMAP_MAX_PAGES = 60
"""Corpora with at most this many pages get a page-by-page similarity heatmap."""
LAZY_IMAGES_FROM = 40
"""Reports with more matches than this load their images only when scrolled to."""
STRONGEST_LINKS = 5
"""Digit links listed per match (the explanation picture shows them all)."""
_HANDLE = re.compile(r"^(?:https?://)?(?:hdl\.handle\.net/)?(\d+(?:\.\d+)*/\S+)$")
_WEB_URL = re.compile(r"^https?://\S+$")
LINK_COLUMNS = (("homepage", "homepage"), ("canvas", "IIIF canvas"), ("manifest", "IIIF manifest"))
"""pages.csv columns holding a page's web addresses, with the text of their links."""


def handle_url(cell):
    """An https link for a handle cell, or None.

    ``hdl.handle.net/21.11103/x``, ``21.11103/x`` and ``http(s)://hdl.handle.net/...`` become
    ``https://hdl.handle.net/21.11103/x``; other http(s) URLs are kept; anything else
    (``javascript:``, free text) gives no link.
    """
    cell = (cell or "").strip()
    found = _HANDLE.match(cell)
    if found:
        return f"https://hdl.handle.net/{found.group(1)}"
    return cell if _WEB_URL.match(cell) else None


def page_links(record):
    """Links of a page back to where it is published: its catalogue handle, its book's
    homepage, its IIIF canvas and manifest (only http(s) URLs; jinja2 escapes them)."""
    links = []
    url = handle_url(record.get("handle", ""))
    if url:
        links.append({"text": "catalogue (handle)", "url": url})
    for column, text in LINK_COLUMNS:
        if _WEB_URL.match(str(record.get(column) or "")):
            links.append({"text": text, "url": record[column]})
    for column, cell in record.items():
        if "iiif" in column.lower() and _WEB_URL.match(str(cell or "")):
            links.append({"text": "IIIF", "url": cell})
    return links


def _page_view(record, out_dir):
    """What a card shows about one page."""
    page_id = record["page_id"]
    thumbnail = ResultsFolder.thumbnail_name(page_id)
    return {
        "page_id": page_id,
        "thumbnail": thumbnail if (out_dir / thumbnail).is_file() else None,
        "title": record.get("title", ""),
        "author": "; ".join(record.get("author", [])),
        "printer": "; ".join(record.get("printer", [])),
        "place": "; ".join(record.get("place", [])),
        "year": record.get("year"),
        "links": page_links(record),
    }


def _pairs(matches):
    """Matches merged per unordered pair: score (highest), rank each way (0 = not listed)."""
    pairs = {}
    for match in matches:
        key = frozenset((match.page_a, match.page_b))
        pair = pairs.setdefault(key, {
            "page_a": match.page_a, "page_b": match.page_b, "score": match.score,
            "rank_ab": 0, "rank_ba": 0,
        })
        pair["score"] = max(pair["score"], match.score)
        forward = match.page_a == pair["page_a"]
        pair["rank_ab" if forward else "rank_ba"] = match.rank
    return sorted(pairs.values(), key=lambda pair: -pair["score"])


def _explanation(out_dir, page_a, page_b, warnings):
    """Explanation picture and pixel-level picture (relative paths, None when absent) and the
    strongest links of a pair, either direction."""
    for first, second, swapped in ((page_a, page_b, False), (page_b, page_a, True)):
        picture = ResultsFolder.explanation_name(first, second, ".png")
        pixels = ResultsFolder.explanation_name(first, second, PIXELS_SUFFIX)
        data_path = out_dir / ResultsFolder.explanation_name(first, second, ".json")
        if not (out_dir / picture).is_file() and not data_path.is_file():
            continue
        view = _no_explanation()
        view["picture"] = picture if (out_dir / picture).is_file() else None
        view["pixels"] = pixels if (out_dir / pixels).is_file() else None
        if data_path.is_file():
            _read_links(data_path, swapped, view, warnings)
        return view
    return _no_explanation()


def _no_explanation() -> dict:
    """A card's explanation view before anything is found (a new dict each time: the links
    list is filled in place)."""
    return {"picture": None, "pixels": None, "links": [], "residual": None, "collation": None}


def _read_links(path, swapped, view, warnings):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        links = sorted(data.get("links", []), key=lambda link: -abs(float(link["relevance"])))
        view["residual"] = data.get("residual")
        if all(key in data for key in ("similarity", "cells_agree", "cells_differ")):
            view["collation"] = {"similarity": float(data["similarity"]),
                                 "agree": int(data["cells_agree"]),
                                 "differ": int(data["cells_differ"])}
        for link in links[:STRONGEST_LINKS]:
            digits_a, digits_b = str(link.get("digits_a", "")), str(link.get("digits_b", ""))
            box_a, box_b = link.get("box_a", []), link.get("box_b", [])
            if swapped:
                digits_a, digits_b, box_a, box_b = digits_b, digits_a, box_b, box_a
            view["links"].append({
                "digits_a": digits_a, "digits_b": digits_b,
                "box_a": ", ".join(str(round(float(v))) for v in box_a),
                "box_b": ", ".join(str(round(float(v))) for v in box_b),
                "relevance": float(link["relevance"]),
            })
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        warnings.append(f"{path}: unreadable explanation ({error}); links not shown")


def _summary(results, graphs, pairs):
    pages = list(results.pages.values())
    statuses = Counter(record["status"] for record in pages)
    years = sorted({record["year"] for record in pages if record["year"] is not None})
    manifest = results.manifest
    return {
        "pages": len(pages),
        "ok": statuses.pop("ok", 0),
        "skipped": sorted(statuses.items()),
        "books": graphs["book"].number_of_nodes(),
        "printers": graphs["printer"].number_of_nodes(),
        "places": graphs["place"].number_of_nodes(),
        "first_year": years[0] if years else None,
        "last_year": years[-1] if years else None,
        "undated": sum(record["year"] is None for record in pages),
        "matches": len(results.matches),
        "pairs": len(pairs),
        "tool_version": manifest.get("tool_version", "unknown"),
        "model_hash": manifest.get("model_hash", ""),
        "corpus": manifest.get("corpus", ""),
        "config": json.dumps(manifest.get("config", {}), indent=1, sort_keys=True, default=str),
    }


def _heatmap(results, pairs, warnings, max_pages):
    ok_pages = [page for page, record in results.pages.items() if record["status"] == "ok"]
    if not 2 <= len(ok_pages) <= max_pages:
        return None
    saved = _saved_similarity(results.out_dir, len(ok_pages), warnings)
    if saved is not None:
        return heatmap(ok_pages, saved)
    features_path = results.out_dir / FEATURES
    similarity = np.full((len(ok_pages), len(ok_pages)), np.nan)
    try:
        features = np.load(features_path, allow_pickle=False) if features_path.is_file() else None
    except (OSError, ValueError) as error:
        warnings.append(f"{features_path}: unreadable ({error}); heatmap from matches only")
        features = None
    if features is not None and features.ndim == 2 and len(features) == len(ok_pages):
        similarity = features.astype(float) @ features.astype(float).T
    else:
        if features is not None:
            warnings.append(
                f"{features_path}: shape {features.shape} does not fit {len(ok_pages)} pages "
                "with status ok; heatmap from matches only"
            )
        index = {page: number for number, page in enumerate(ok_pages)}
        for pair in pairs:
            if pair["page_a"] in index and pair["page_b"] in index:
                i, j = index[pair["page_a"]], index[pair["page_b"]]
                similarity[i, j] = similarity[j, i] = pair["score"]
    return heatmap(ok_pages, similarity)


def _saved_similarity(out_dir, pages: int, warnings) -> np.ndarray | None:
    """The run's similarity of every pair of its ``pages`` ok pages (similarity.npy, written
    for corpora up to 2,000 pages: the model's whole similarity, where features.npy holds only
    the bigram part of the ``numbers`` model), or None when it is missing or does not fit."""
    path = out_dir / SIMILARITY
    if not path.is_file():
        return None
    try:
        similarity = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        warnings.append(f"{path}: unreadable ({error}); heatmap from features.npy or matches")
        return None
    if similarity.shape != (pages, pages):
        warnings.append(f"{path}: shape {similarity.shape} does not fit {pages} pages with "
                        "status ok; heatmap from features.npy or matches")
        return None
    return similarity.astype(float)


def _card(number, pair, results, pages_graph, warnings):
    """One match card: the pair, both pages, its family and its explanation."""
    return {
        **pair,
        "id": f"match-{number}",
        "a": _page_view(results.pages[pair["page_a"]], results.out_dir),
        "b": _page_view(results.pages[pair["page_b"]], results.out_dir),
        "family": pages_graph.nodes[pair["page_a"]].get("family"),
        "verdict": pages_graph.edges[pair["page_a"], pair["page_b"]].get("verdict"),
        "explanation": _explanation(results.out_dir, pair["page_a"], pair["page_b"], warnings),
    }


def _index_entry(card):
    """What the page's script sorts and filters a card by (the text is lower case)."""
    ranks = [rank for rank in (card["rank_ab"], card["rank_ba"]) if rank > 0]
    words = [
        str(card[side][key] or "") for side in ("a", "b")
        for key in ("page_id", "title", "author", "printer", "place", "year")
    ] + [STATE_WORDS.get(card["verdict"], "")]
    return {
        "id": card["id"], "score": card["score"], "rank": min(ranks, default=0),
        "text": " ".join(words).lower(),
    }


def version_warnings(results):
    """A warning when the results folder was written by another version of this tool."""
    version = results.manifest.get("tool_version")
    if version is None or version == __version__:
        return []
    return [
        f"{results.out_dir / MANIFEST}: written by version {version}, this is "
        f"{__version__}; rerun `tables similarity` for up-to-date results"
    ]


def report_context(out_dir, min_score=0.0, heatmap_max_pages=HEATMAP_MAX_PAGES,
                   max_matches=None, results=None, networks=None):
    """Everything the report template shows, as plain data (see `build_report`)."""
    out_dir = Path(out_dir)
    results = results if results is not None else load_results(out_dir)
    warnings = list(results.warnings) + version_warnings(results)
    for folder in (THUMBNAILS, EXPLANATIONS):
        if results.matches and not (out_dir / folder).is_dir():
            warnings.append(f"{out_dir / folder}: missing; matches are shown without these images")
    if networks is None:
        states = pair_states(out_dir)
        networks = build_networks(results, min_score,
                                  verdicts=verdict_labels(states) if states else None)
    graphs, families = networks
    pairs = [pair for pair in _pairs(results.matches) if pair["score"] >= min_score]
    shown = pairs if max_matches is None else pairs[:max_matches]
    cards = [
        _card(number, pair, results, graphs["page"], warnings)
        for number, pair in enumerate(shown, start=1)
    ]
    return {
        "version": __version__,
        "summary": _summary(results, graphs, pairs),
        "warnings": warnings,
        "families": families,
        "network": network_picture(graphs["book"]),
        "heatmap": _heatmap(results, pairs, warnings, heatmap_max_pages),
        "cards": cards,
        "index": [_index_entry(card) for card in cards],
        "lazy": len(cards) > LAZY_IMAGES_FROM,
        "not_shown": len(pairs) - len(shown),
        "min_score": min_score,
        "verdict_words": STATE_WORDS,
    }


def _environment():
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "data"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def build_report(out_dir, min_score=0.0, heatmap_max_pages=HEATMAP_MAX_PAGES, max_matches=None,
                 results=None, networks=None):
    """Write ``OUT/report.html`` for a results folder and return its path.

    Parameters
    ----------
    out_dir : str or Path
        Results folder written by ``tables similarity`` (design.md section 3).
    min_score : float
        Matches scoring lower are left out of the report and its networks.
    heatmap_max_pages : int
        A page-by-page similarity heatmap is drawn when the corpus has at most this many
        pages with status ok.
    max_matches : int, optional
        Show only the best-scoring pairs (every pair by default; the real corpus with five
        matches per page gives about 50,000 cards and an HTML file of about 85 MB).
    results : Results, optional
        The results folder as already loaded (read once per run).
    networks : tuple, optional
        ``(graphs, families)`` of every level as `corpus_tools.networks.build_networks` gives
        them for this ``min_score`` and the folder's verdicts (built once per run).

    Returns
    -------
    Path
        The report file.

    Raises
    ------
    corpus_tools.networks.ResultsError
        When ``out_dir`` is not a results folder at all.
    """
    context = report_context(out_dir, min_score, heatmap_max_pages, max_matches, results,
                             networks)
    html = _environment().get_template("report.html.j2").render(**context)
    path = ResultsFolder(out_dir).report
    write_text_atomic(path, html)
    return path
