"""The review app through Flask's test client: queue, match view, verdicts, and its safety
(session token, files outside the folders, hostile text, malformed requests, foreign hosts)."""

import html
import json
import re
import time

import markupsafe
import pytest
from conftest import REVIEW_HOSTILE

from corpus_tools.networks.fabricate import fabricate_results
from sphaera_tables.review.app import create_app
from sphaera_tables.review.files import FileRefused, contained_file
from sphaera_tables.review.verdicts import VerdictStore, new_verdict

HOSTS = ["127.0.0.1", "localhost"]


@pytest.fixture
def client(review_results):
    app = create_app(review_results, "ana <i>admin</i>", allowed_hosts=HOSTS)
    return app.test_client()


def queue_rows(client, query=""):
    """``(url, verdict class)`` of the queue's rows, in order."""
    page = client.get(f"/{query}").get_data(as_text=True)
    return [(html.unescape(url), verdict) for url, verdict in
            re.findall(r'<tr data-url="([^"]+)" class="verdict-(\w+)"', page)]


def match_data(client, url):
    page = client.get(url).get_data(as_text=True)
    data = re.search(r'<script type="application/json" id="match-data">(.*?)</script>', page,
                     re.S).group(1)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return json.loads(data), token, page


def post(client, data, verdict, token, note=""):
    return client.post("/api/verdict", headers={"X-CSRF-Token": token}, json={
        "page_a": data["page_a"], "page_b": data["page_b"], "verdict": verdict, "note": note})


def test_a_verdict_is_stored_and_moves_the_pair_behind_the_unreviewed(client, review_results):
    rows = queue_rows(client)
    assert len(rows) > 5 and all(verdict == "unreviewed" for _, verdict in rows)
    data, token, _ = match_data(client, rows[0][0])
    answer = post(client, data, "rows_shared", token, note="rows 1-12")
    assert answer.status_code == 200 and answer.json["saved"] is True
    with VerdictStore.of_results(review_results) as store:
        (stored,) = store.all()
    assert (stored.verdict, stored.note, stored.user) == ("rows_shared", "rows 1-12",
                                                          "ana <i>admin</i>")
    assert stored.score == pytest.approx(data["score"])
    after = queue_rows(client)
    assert after[-1] == (rows[0][0], "rows_shared")
    assert queue_rows(client, "?verdict=rows_shared") == \
        [(rows[0][0] + "&verdict=rows_shared", "rows_shared")]
    again, _, page = match_data(client, rows[0][0])
    assert again["verdict"] == "rows_shared" and again["history"][0]["note"] == "rows 1-12"


def test_next_and_previous_follow_the_score_order(client):
    rows = queue_rows(client)
    data, _, _ = match_data(client, rows[1][0])
    following, _, _ = match_data(client, data["next"])
    previous, _, _ = match_data(client, data["previous"])
    assert previous["score"] >= data["score"] >= following["score"]
    assert (previous["page_a"], previous["page_b"]) == \
        tuple(re.search(r"a=(.*)&b=(.*)", rows[0][0]).groups())


def test_a_post_without_the_session_token_is_refused(client, review_results):
    data, token, _ = match_data(client, queue_rows(client)[0][0])
    for headers in ({}, {"X-CSRF-Token": token[:-1] + "x"}):
        answer = client.post("/api/verdict", headers=headers, json={
            "page_a": data["page_a"], "page_b": data["page_b"], "verdict": "same_table"})
        assert answer.status_code == 403 and "token" in answer.json["error"]
    other_browser = create_app(review_results, "eve", allowed_hosts=HOSTS).test_client()
    answer = post(other_browser, data, "same_table", token)
    assert answer.status_code == 403
    with VerdictStore.of_results(review_results) as store:
        assert store.all() == []


@pytest.mark.parametrize("body, status, message", [
    ("not json", 400, "JSON object"),
    ("[1, 2]", 400, "JSON object"),
    ('{"page_a": 1, "page_b": "x", "verdict": "same_table"}', 400, "must be text"),
    ('{"page_a": "book0/p0.jpg", "page_b": "nowhere.jpg", "verdict": "same_table"}', 404,
     "neither a candidate match"),
])
def test_malformed_posts_get_a_4xx_with_a_message(client, body, status, message):
    _, token, _ = match_data(client, queue_rows(client)[0][0])
    answer = client.post("/api/verdict", data=body, content_type="application/json",
                         headers={"X-CSRF-Token": token})
    assert answer.status_code == status and message in answer.json["error"]


def test_an_unknown_verdict_is_refused(client):
    data, token, _ = match_data(client, queue_rows(client)[0][0])
    answer = post(client, data, "probably", token)
    assert answer.status_code == 400 and "is not one of same_table" in answer.json["error"]


@pytest.mark.parametrize("url, status, message", [
    ("/?min_score=high", 400, "min_score &#39;high&#39; is not a number"),
    ("/?family=x", 400, "not a family number"),
    ("/?verdict=yes", 400, "is not one of"),
    ("/?page=99", 404, "page 99 does not exist"),
    ("/?page=-1", 400, "not a whole number"),
    ("/match?a=book0/p0.jpg", 400, "name both pages"),
    ("/match?a=x&b=y", 404, "neither a candidate match"),
    ("/nowhere", 404, "Not Found"),
])
def test_malformed_pages_get_a_4xx_with_a_message(client, url, status, message):
    answer = client.get(url)
    text = answer.get_data(as_text=True)
    assert answer.status_code == status and message in text
    assert "Traceback" not in text


def test_only_files_inside_the_folders_are_served(client, review_results, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for the browser")
    (review_results / "thumbnails" / "escape.jpg").symlink_to(secret)
    thumbnail = next((review_results / "thumbnails").glob("book*.jpg")).name
    assert client.get(f"/file/results/thumbnails/{thumbnail}").status_code == 200
    refused = {
        "/file/results/%2e%2e/secret.jpg": 403,
        "/file/results/thumbnails/%2e%2e/%2e%2e/secret.jpg": 403,
        "/file/results/thumbnails/escape.jpg": 403,
        "/file/results/%2Fetc%2Fpasswd": 404,  # slashes merged: results/etc/passwd
        "/file/results/verdicts.sqlite": 403,
        "/file/results/pages.csv": 403,
        "/file/results/thumbnails/missing.jpg": 404,
        "/file/elsewhere/thumbnails/x.jpg": 404,
    }
    for url, status in refused.items():
        answer = client.get(url, follow_redirects=True)
        assert answer.status_code == status, url
        assert b"not for the browser" not in answer.data and b"root:" not in answer.data
    with pytest.raises(FileRefused, match="not a path inside"):
        contained_file(review_results, "/etc/passwd")


def test_hostile_strings_reach_the_page_as_text(client):
    rows = queue_rows(client)
    queue = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)" not in queue and "<img src=x" not in queue
    assert str(markupsafe.escape(REVIEW_HOSTILE)) in queue
    assert "ana &lt;i&gt;admin&lt;/i&gt;" in queue
    url = next(url for url, _ in rows if "book0" in url)
    data, token, page = match_data(client, url)
    side = data["a"] if data["a"]["page_id"].startswith("book0") else data["b"]
    assert side["title"] == REVIEW_HOSTILE
    assert page.count("<script") == 2  # the data block and review.js, nothing injected
    note = "</script><script>alert(3)</script>"
    assert post(client, data, "unrelated", token, note=note).status_code == 200
    data, _, page = match_data(client, url)
    assert data["history"][0]["note"] == note
    assert "alert(3)</script>" not in page and page.count("<script") == 2


def test_a_foreign_host_name_is_refused(client):
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


@pytest.mark.slow
def test_the_queue_answers_in_under_a_second_for_50000_matches(tmp_path):
    rows = [{"page_id": f"b{n // 20}/p{n % 20}.jpg", "book_id": f"b{n // 20}",
             "title": f"Book {n // 20}", "printer": f"Printer {n % 37}",
             "place": f"Place {n % 11}", "year": str(1500 + n % 150)} for n in range(10_000)]
    out = fabricate_results(tmp_path / "big", rows, matches_per_page=5, seed=1)
    client = create_app(out, "ana", allowed_hosts=HOSTS).test_client()
    timings = {}
    for query in ("", "?page=400", "?min_score=0.5&printer=printer+3&place=place+1",
                  "?book=book+12&verdict=unreviewed", "?family=1"):
        start = time.perf_counter()
        answer = client.get(f"/{query}")
        timings[query or "/"] = time.perf_counter() - start
        assert answer.status_code == 200, query
    data, token, _ = match_data(client, queue_rows(client)[0][0])
    start = time.perf_counter()
    assert post(client, data, "same_table", token).status_code == 200
    assert len(queue_rows(client, "?verdict=same_table")) == 1
    timings["verdict + fresh queue"] = time.perf_counter() - start
    print("queue of 50,000 matches, seconds:", {k: round(v, 3) for k, v in timings.items()})
    assert max(timings.values()) < 1.0


def test_hostile_page_ids_in_urls_stay_inside_the_app(tmp_path):
    page_id = "x/../../<b>p.jpg"
    rows = [{"page_id": page_id}, {"page_id": "plain.jpg"}]
    out = fabricate_results(tmp_path / "r", rows, matches_per_page=1)
    client = create_app(out, "ana", allowed_hosts=HOSTS).test_client()
    ((url, _),) = queue_rows(client)[:1]
    data, _, page = match_data(client, url)
    assert page_id in (data["page_a"], data["page_b"])
    assert "<b>p.jpg" not in page and "&lt;b&gt;p.jpg" in page


def test_a_pair_judged_in_another_run_can_be_judged_again(review_results):
    with VerdictStore.of_results(review_results) as store:
        store.record(new_verdict(("h1", "h2", "old/a.jpg", "old/b.jpg"), "same_table", "",
                                 "ben", 0.7))
    client = create_app(review_results, "ana", allowed_hosts=HOSTS).test_client()
    ((url, verdict),) = queue_rows(client, "?verdict=reviewed")
    assert verdict == "same_table" and "not proposed by this run" in client.get(
        "/?verdict=reviewed").get_data(as_text=True)
    data, token, _ = match_data(client, url)
    assert data["proposed"] is False and data["score"] == 0.7
    assert post(client, data, "unrelated", token).status_code == 200
    with VerdictStore.of_results(review_results) as store:
        assert [v.verdict for v in store.history("h2", "h1")] == ["same_table", "unrelated"]
