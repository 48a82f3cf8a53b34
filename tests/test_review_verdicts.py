"""The verdict store: history and the latest verdict, content-hash keys, CSV export and import
(conflicts, bad rows, speed), two writers at once, transitivity suggestions."""

import csv
import json
import multiprocessing
import time

import pytest

from sphaera_tables.review.exchange import export_csv, import_csv
from sphaera_tables.review.propagation import propagated_pairs
from sphaera_tables.review.verdicts import (
    PageKeys,
    VerdictError,
    VerdictStore,
    new_verdict,
    parse_time,
)

KEYS = PageKeys({"a.jpg": "hash-a", "b.jpg": "hash-b", "c.jpg": "hash-c"})


def give(store, page_a, page_b, verdict, user="ana", note="", time=None, keys=KEYS):
    return store.record(new_verdict(keys.pair(page_a, page_b), verdict, note, user, 0.5, "m1",
                                    time=time))


def write_csv(path, rows, header=("page_a", "page_b", "verdict", "note", "user", "time",
                                  "score")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_latest_verdict_counts_and_history_is_kept(tmp_path):
    with VerdictStore.of_results(tmp_path) as store:
        give(store, "a.jpg", "b.jpg", "same table", time=parse_time("2026-01-01T10:00:00Z"))
        give(store, "b.jpg", "a.jpg", "unrelated", user="ben",
             time=parse_time("2026-01-02T10:00:00Z"))
        give(store, "a.jpg", "c.jpg", "rows_shared")
        latest = store.latest()
        history = store.history("hash-b", "hash-a")
    assert len(latest) == 2
    verdict = latest[("hash-a", "hash-b")]
    assert (verdict.verdict, verdict.user, verdict.page_a, verdict.page_b) == \
        ("unrelated", "ben", "a.jpg", "b.jpg")
    assert [v.verdict for v in history] == ["same_table", "unrelated"]
    assert history[0].score == 0.5 and history[0].model_hash == "m1"
    with VerdictStore.of_results(tmp_path) as store:
        assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [v.id for v in store.since(1)] == [2, 3]


def test_a_rerun_with_other_page_ids_keeps_the_verdicts(tmp_path):
    """Keys are content hashes: the same images under new page ids find their verdicts."""
    with VerdictStore.of_results(tmp_path) as store:
        give(store, "a.jpg", "b.jpg", "same_table")
    renamed = PageKeys({"new/a.png": "hash-a", "new/b.png": "hash-b"})
    with VerdictStore.of_results(tmp_path) as store:
        (verdict,) = store.latest().values()
    assert renamed.page(verdict.key_a, verdict.page_a) == "new/a.png"
    assert renamed.pair("new/b.png", "new/a.png")[:2] == verdict.pair


def test_unknown_verdict_and_bad_time_are_refused_with_the_choices(tmp_path):
    with pytest.raises(VerdictError, match="is not one of same_table"):
        new_verdict(KEYS.pair("a.jpg", "b.jpg"), "maybe", "", "ana")
    with pytest.raises(VerdictError, match="not an ISO 8601 time"):
        parse_time("yesterday")
    with pytest.raises(VerdictError, match="user name"):
        new_verdict(KEYS.pair("a.jpg", "b.jpg"), "unrelated", "", "  ")


def test_export_import_round_trip_keeps_hostile_text(tmp_path):
    hostile = "=HYPERLINK(\"http://x\") <b>'quoted'</b>, \"comma\"\nsecond line"
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with VerdictStore.of_results(tmp_path / "one") as store:
        give(store, "a.jpg", "b.jpg", "same_table", note=hostile, user="'ana")
        give(store, "a.jpg", "c.jpg", "same_kind", note="-1")
        assert export_csv(store, tmp_path / "v.csv") == 2
        exported = store.all()
    with open(tmp_path / "v.csv", newline="", encoding="utf-8") as handle:
        cells = list(csv.DictReader(handle))
    assert cells[0]["note"] == "'" + hostile and cells[1]["note"] == "'-1"  # no live formula
    assert cells[0]["user"] == "''ana"
    with VerdictStore.of_results(tmp_path / "two") as store:
        report = import_csv(store, PageKeys({}), tmp_path / "v.csv", "me")
        imported = store.all()
        again = import_csv(store, PageKeys({}), tmp_path / "v.csv", "me")
        assert len(store.all()) == 2
    assert (report.imported, report.conflicts, report.errors) == (2, [], [])
    assert (again.imported, again.already_stored) == (0, 2)
    strip = [(v.key_a, v.key_b, v.page_a, v.page_b, v.verdict, v.note, v.user, v.time, v.score,
              v.model_hash) for v in exported]
    assert strip == [(v.key_a, v.key_b, v.page_a, v.page_b, v.verdict, v.note, v.user, v.time,
                      v.score, v.model_hash) for v in imported]


def test_import_reports_conflicts_and_never_overwrites(tmp_path):
    with VerdictStore.of_results(tmp_path) as store:
        give(store, "a.jpg", "b.jpg", "same_table", user="ana")
        give(store, "a.jpg", "c.jpg", "unrelated", user="ana")
        path = write_csv(tmp_path / "ben.csv", [
            ["b.jpg", "a.jpg", "unrelated", "I disagree", "ben", "2030-01-01T00:00:00Z", ""],
            ["a.jpg", "c.jpg", "unrelated", "agreed", "ben", "2030-01-01T00:00:00Z", "0.4"],
        ])
        report = import_csv(store, KEYS, path, "me")
        latest = store.latest()
    assert report.imported == 1
    assert len(report.conflicts) == 1
    assert "ben.csv line 2" in report.conflicts[0] and "'unrelated'" in report.conflicts[0]
    assert "'same_table'" in report.conflicts[0]
    assert latest[("hash-a", "hash-b")].verdict == "same_table"
    assert latest[("hash-a", "hash-c")].note == "agreed"


def test_bad_rows_are_named_by_line_and_the_good_ones_imported(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [
        ["a.jpg", "b.jpg", "same table", "", "", "", ""],
        ["a.jpg", "", "same table", "", "", "", ""],
        ["a.jpg", "c.jpg", "perhaps", "", "", "", ""],
        ["b.jpg", "c.jpg", "unrelated", "", "", "last tuesday", ""],
        ["b.jpg", "c.jpg", "unrelated", "", "", "", "high"],
        ["c.jpg", "c.jpg", "unrelated", "", "", "", ""],
    ])
    with VerdictStore.of_results(tmp_path) as store:
        report = import_csv(store, KEYS, path, "me")
        (verdict,) = store.all()
    assert report.imported == 1 and verdict.user == "me" and verdict.verdict == "same_table"
    lines = [error.split(":")[0] for error in report.errors]
    assert lines == [f"{path} line {n}" for n in (3, 4, 5, 6, 7)]
    assert "'perhaps' is not one of" in report.errors[1]
    assert "'high' is not a number" in report.errors[3]


def test_a_file_without_the_columns_is_refused(tmp_path):
    path = write_csv(tmp_path / "x.csv", [["a.jpg", "b.jpg"]], header=("first", "second"))
    with VerdictStore.of_results(tmp_path) as store, \
            pytest.raises(VerdictError, match="no column page_a, page_b, verdict"):
        import_csv(store, KEYS, path, "me")


def _writer(folder, user, count):
    keys = PageKeys({})
    with VerdictStore.of_results(folder) as store:
        for number in range(count):
            pair = keys.pair(f"{user}{number}.jpg", "x.jpg")
            store.record(new_verdict(pair, "same_kind", "", user))


def test_two_servers_writing_at_once_lose_nothing(tmp_path):
    VerdictStore.of_results(tmp_path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(tmp_path, user, 1000))
               for user in ("ana", "ben")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    with VerdictStore.of_results(tmp_path) as store:
        verdicts = store.all()
    assert len(verdicts) == 2000
    assert len({(v.key_a, v.key_b) for v in verdicts}) == 2000
    assert sum(v.user == "ana" for v in verdicts) == 1000


@pytest.mark.slow
def test_import_of_100000_verdicts_takes_under_10_seconds(tmp_path):
    rows = [[f"p{n}.jpg", f"q{n}.jpg", "unrelated", f"note {n}", "ana",
             "2026-01-01T00:00:00Z", "0.3"] for n in range(100_000)]
    path = write_csv(tmp_path / "many.csv", rows)
    with VerdictStore.of_results(tmp_path) as store:
        start = time.perf_counter()
        report = import_csv(store, PageKeys({}), path, "me")
        seconds = time.perf_counter() - start
        assert len(store.latest()) == 100_000
    print(f"import of 100,000 verdicts: {seconds:.2f} s")
    assert report.imported == 100_000 and report.errors == []
    assert seconds < 10


def test_same_table_propagates_and_a_verdict_ends_the_suggestion(tmp_path):
    keys = PageKeys({})
    with VerdictStore.of_results(tmp_path) as store:
        give(store, "a.jpg", "b.jpg", "same_table", keys=keys)
        give(store, "b.jpg", "c.jpg", "same_table", keys=keys)
        give(store, "c.jpg", "d.jpg", "rows_shared", keys=keys)
        suggested = propagated_pairs(store.latest())
        assert suggested == {("page:a.jpg", "page:c.jpg"): "page:b.jpg"}
        give(store, "c.jpg", "a.jpg", "unrelated", keys=keys)
        assert propagated_pairs(store.latest()) == {}


def test_manifest_inputs_give_the_keys(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"inputs": {"a.jpg": "ff00"}}))
    keys = PageKeys.of_results(tmp_path)
    assert keys.key("a.jpg") == "ff00" and keys.key("z.jpg") == "page:z.jpg"
    assert PageKeys.of_results(tmp_path / "missing").key("a.jpg") == "page:a.jpg"
