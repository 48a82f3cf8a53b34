"""The results folder: one owner of its file names, CSV cells read back as written (a page id
like ``=x.png`` keeps its thumbnail and explanation in the report and the review app), and the
report's links back to where a page is published."""

import csv
import html
import json
import re

import pytest

from corpus_tools.networks import load_results
from corpus_tools.networks.exports import spreadsheet_cell
from corpus_tools.networks.fabricate import fabricate_pictures, fabricate_results
from corpus_tools.results_folder import ResultsFolder, read_csv_frame
from corpus_tools.storage import spreadsheet_safe, write_csv_atomic
from sphaera_tables.report import build_report
from sphaera_tables.review.app import create_app
from sphaera_tables.review.downstream import annotate_matches_csv
from sphaera_tables.review.exchange import export_csv, read_cell
from sphaera_tables.review.queue import ReviewQueue
from sphaera_tables.review.verdicts import PageKeys, VerdictStore, new_verdict

FORMULA_IDS = ["=x.png", "+1.png", "-2.png", "@a.png", "'quoted.png"]
CANVAS = "https://iiif.example.org/canvas/1?a=1&b=<2>"
HOMEPAGE = "https://library.example.org/book/7"


@pytest.fixture
def formula_results(tmp_path):
    """Eight pages, five of them with ids a spreadsheet would run as formulas; the first page
    has a IIIF canvas and a homepage, the second a ``javascript:`` one."""
    ids = FORMULA_IDS + ["plain_1.png", "plain_2.png", "plain_3.png"]
    rows = [{"page_id": page_id, "book_id": f"book{n % 2}", "title": f"T{n}"}
            for n, page_id in enumerate(ids)]
    rows[0] |= {"canvas": CANVAS, "homepage": HOMEPAGE}
    rows[1] |= {"homepage": "javascript:alert(1)"}
    out = fabricate_results(tmp_path / "results", rows, matches_per_page=3, seed=2)
    return fabricate_pictures(out, seed=2)


def test_formula_cells_are_written_safe_and_read_back_as_they_were(formula_results):
    with open(formula_results / "pages.csv", newline="", encoding="utf-8") as handle:
        written = [row["page_id"] for row in csv.DictReader(handle)]
    assert "'=x.png" in written and "''quoted.png" in written
    results = load_results(formula_results)
    assert set(FORMULA_IDS) <= set(results.pages)
    assert not results.warnings
    assert {m.page_a for m in results.matches} >= set(FORMULA_IDS)


def test_report_keeps_thumbnails_and_explanations_of_formula_page_ids(formula_results):
    page = build_report(formula_results).read_text(encoding="utf-8")
    folder = ResultsFolder(formula_results)
    for page_id in FORMULA_IDS:
        assert folder.thumbnail(page_id).is_file()
        assert f'src="{html.escape(folder.thumbnail_name(page_id))}"' in page
    pictures = re.findall(r'<img src="(explanations/[^"]+\.png)"', page)
    assert len(pictures) == len({frozenset((m.page_a, m.page_b))
                                 for m in load_results(formula_results).matches})
    assert "no explanation picture" not in page and "no thumbnail" not in page


def test_report_links_pages_to_their_canvas_and_homepage_escaped(formula_results):
    page = build_report(formula_results).read_text(encoding="utf-8")
    assert f'href="{html.escape(CANVAS)}"' in page
    assert f'href="{HOMEPAGE}"' in page
    assert "javascript:alert" not in page
    assert "<2>" not in page


def test_review_queue_finds_formula_page_ids(formula_results):
    results = load_results(formula_results)
    queue = ReviewQueue(results, PageKeys.of_results(formula_results))
    assert set(FORMULA_IDS) <= set(queue.frame["page_a"]) | set(queue.frame["page_b"])


def test_review_app_shows_formula_pages_with_thumbnail_and_explanation(formula_results):
    client = create_app(formula_results, "ana", allowed_hosts=["localhost"]).test_client()
    queue = client.get("/").get_data(as_text=True)
    urls = [html.unescape(url) for url in re.findall(r'<tr data-url="([^"]+)"', queue)]
    shown = set()
    for url in urls:
        page = client.get(url).get_data(as_text=True)
        data = json.loads(re.search(r'<script type="application/json" id="match-data">(.*?)'
                                    r'</script>', page, re.S).group(1))
        for side in ("a", "b"):
            assert data[side]["in_results"] and data[side]["thumbnail"], data[side]["page_id"]
        assert data["explanation"]["links"]
        shown |= {data["page_a"], data["page_b"]}
    assert set(FORMULA_IDS) <= shown


def test_verdict_column_keeps_crlf_rows_and_safe_cells(formula_results):
    keys = PageKeys.of_results(formula_results)
    with VerdictStore.of_results(formula_results) as store:
        store.record(new_verdict(keys.pair("=x.png", "+1.png"), "same_table", "", "ana"))
    before = read_csv_frame(formula_results / "matches.csv", ("page_a", "page_b"))
    assert annotate_matches_csv(formula_results)
    data = (formula_results / "matches.csv").read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") == len(before) + 1
    assert b"\n'=x.png," in data
    after = read_csv_frame(formula_results / "matches.csv", ("page_a", "page_b", "verdict"))
    assert after["page_a"].tolist() == before["page_a"].tolist()
    assert after["score"].tolist() == before["score"].tolist()
    assert set(after["verdict"]) == {"unreviewed", "same_table"}
    assert {m.page_a for m in load_results(formula_results).matches} >= set(FORMULA_IDS)


def test_one_spreadsheet_rule_for_every_csv(tmp_path):
    for text in ("=1+1", "'quoted", "-3", "plain", "\tx"):
        assert spreadsheet_cell(text) == spreadsheet_safe(text)
        assert read_cell(spreadsheet_safe(text)) == text
    import pandas as pd

    write_csv_atomic(tmp_path / "m.csv", pd.DataFrame(
        {"page_a": ["'a", "NA", ""], "page_b": ["=b", "c", "d"], "score": [-0.5, 0.25, 1.0]}))
    frame = read_csv_frame(tmp_path / "m.csv", ("page_a", "page_b"))
    assert frame["page_a"].tolist() == ["'a", "NA", ""]
    assert frame["page_b"].tolist() == ["=b", "c", "d"]
    assert frame["score"].tolist() == [-0.5, 0.25, 1.0]


def test_verdict_export_uses_the_shared_rule(tmp_path, formula_results):
    keys = PageKeys.of_results(formula_results)
    with VerdictStore.of_results(formula_results) as store:
        store.record(new_verdict(keys.pair("'quoted.png", "=x.png"), "same_table", "=note", "ana"))
        export_csv(store, tmp_path / "v.csv")
    with open(tmp_path / "v.csv", newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert {row["page_a"], row["page_b"]} == {"''quoted.png", "'=x.png"}
    assert row["note"] == "'=note"
