"""Every output of a corpus run with explanations, networks and the report on: a run that
crashed at any write and was resumed ends with the very bytes of an uninterrupted run, and the
report of a real run loads in a headless browser with every picture and score in place.

The corpus is three crops of the real 1604 table page (a run takes a few seconds)."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from real_crops import write_real_crops
from test_report_browser import browser, errors, evaluate, open_page  # noqa: F401 (fixture)

from sphaera_tables.similarity import SimilarityOptions, run_similarity

EVERYTHING = SimilarityOptions(min_score=0.0, min_share=0.0, top_k=2)  # every pair; all outputs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = write_real_crops(tmp_path_factory.mktemp("run_outputs") / "corpus")
    (folder / "metadata.csv").write_text(
        "page_id,printer,place,year\ncrop0.png,Marchetti,Siena,1604\n"
        "crop1.png,Giunta,Venezia,1585\ncrop2.png,Marchetti,Siena,1604\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run_outputs") / "reference"
    run_similarity(corpus, out, EVERYTHING)
    return out


def every_output(out: Path) -> dict[str, bytes]:
    """Every file of a results folder by its path, the manifest without its timings (the one
    thing that differs between two runs of the same inputs)."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file()}
    manifest = json.loads(files.pop("manifest.json"))
    manifest.pop("timings")
    files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    return files


def test_the_reference_run_wrote_every_promised_output(reference):
    files = every_output(reference)
    matches = pd.read_csv(reference / "matches.csv")
    assert len(matches) == 6
    for name in ("pages.csv", "features.npy", "cell_features.npz", "corpus_statistics.npz",
                 "similarity.npy", "matches.csv", "variants.csv", "report.html",
                 "networks/page.gexf", "networks/book.graphml", "networks/printer.json",
                 "networks/place_edges.csv", "networks/families.csv"):
        assert name in files, name
    assert sum(name.startswith("explanations/") for name in files) == 2 * len(matches)
    assert sum(name.startswith("thumbnails/") for name in files) == 3


#: Writes at which the crash falls: (a path pattern, which write of it). Every atomic write
#: ends in os.replace, so a crash there leaves exactly what a kill at that moment leaves.
CRASHES = {
    "between an explanation's PNG and its JSON": ("explanations/*.json", 2),
    "in the middle of the networks": ("networks/*", 5),
    "before the report": ("report.html", 1),
}


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_run_resumed_after_a_crash_ends_with_the_bytes_of_an_uninterrupted_run(
        corpus, reference, tmp_path, monkeypatch, crash):
    pattern, nth = CRASHES[crash]
    out = tmp_path / "out"
    real_replace, seen = os.replace, []

    def replace_or_crash(source, target):
        if Path(target).is_relative_to(out) and Path(target).relative_to(out).match(pattern):
            seen.append(target)
            if len(seen) == nth:
                raise KeyboardInterrupt  # the bytes are written, the name never appears
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_or_crash)
    with pytest.raises(KeyboardInterrupt):
        run_similarity(corpus, out, EVERYTHING)
    monkeypatch.undo()
    assert len(seen) == nth
    assert not (out / ".tables.lock").exists()
    if crash.startswith("between"):  # the crash fell between the two files of one pair
        pictures = {p.stem for p in (out / "explanations").glob("*.png")}
        records = {p.stem for p in (out / "explanations").glob("*.json")}
        assert len(pictures - records) == 1
    summary = run_similarity(corpus, out, EVERYTHING)
    assert summary.pages_reused == 3
    assert not list(out.rglob("*.part")), "temporary file left behind"
    got, expected = every_output(out), every_output(reference)
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []


def test_a_rerun_with_nothing_to_do_rewrites_nothing_differently(corpus, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    summary = run_similarity(corpus, out, EVERYTHING)
    assert (summary.pages_reused, summary.explanations_written) == (3, 0)
    assert every_output(out) == every_output(reference)


def test_the_report_of_a_real_run_loads_in_the_browser(reference, browser):  # noqa: F811
    session = open_page(browser, reference / "report.html")
    images = evaluate(browser, session, "Array.from(document.images).map(i => "
                                        "[i.getAttribute('src'), i.complete, i.naturalWidth])")
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert images and broken == []
    sources = {src for src, _, _ in images}
    matches = pd.read_csv(reference / "matches.csv")
    pairs = {}  # a match found from both pages is one card
    for row in matches.itertuples():
        pairs.setdefault(frozenset((row.page_a, row.page_b)), row.score)
    cards = evaluate(browser, session, "document.querySelectorAll('article.match').length")
    assert cards == len(pairs) == 3
    for name in ("crop0.png", "crop1.png", "crop2.png"):
        assert f"thumbnails/{name}.jpg" in sources, name
    shown = [src.removeprefix("explanations/").removesuffix(".png").split("__")
             for src in sources if src.startswith("explanations/")]
    assert len(shown) == len(pairs) and {frozenset(pair) for pair in shown} == set(pairs)
    for a, b in shown:
        assert (reference / "explanations" / f"{a}__{b}.png").is_file()
    index = evaluate(browser, session, "JSON.parse(document.getElementById('match-index')"
                                       ".textContent).map(e => e.score)")
    assert sorted(index) == pytest.approx(sorted(pairs.values()), abs=1e-4)
    # each card says how its score comes about: the similarity and the collation's counts
    collations = evaluate(browser, session, "Array.from(document.querySelectorAll("
                                            "'article.match p.collation')).map(p => p.textContent)")
    said = {f"Similarity {row.similarity:.4g}; in the aligned rows {row.cells_agree} cells "
            f"printed alike and {row.cells_differ} differently" for row in matches.itertuples()}
    assert len(collations) == len(pairs)
    assert all(any(text.startswith(sentence) for sentence in said) for text in collations)
    assert errors(browser.events) == []
