"""A corpus run over pages in every published image kind: the same page gives the same features
whatever its file kind, nothing below the corpus folder is dropped without a reason, an empty
corpus is an error, and a results folder inside the corpus is never read back as pages."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from corpus_tools.corpus_inputs import gather_pages
from corpus_tools.metadata import metadata_for_pages
from sphaera_tables.cli import main
from sphaera_tables.similarity import SimilarityOptions, run_similarity

SHARED = Path(__file__).parents[2] / "shared"
REAL_PAGE = SHARED / "data" / "real" / "tables" / "1921_pifferi_sfera_1604_p368.jpg"
CROP = (slice(400, 640), slice(200, 520))  # a block of the table with digits
FAST = SimilarityOptions(min_score=0.0, explain=False, report=False, networks=False)


def _crop() -> np.ndarray:
    return np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]


def _write_kinds(corpus: Path, grey: np.ndarray) -> list[str]:
    """The crop in every lossless kind a library may publish; returns their page ids."""
    page = Image.fromarray(grey)
    page.save(corpus / "grey.png")
    page.save(corpus / "page.jp2")
    page.save(corpus / "page.webp", lossless=True)
    page.save(corpus / "page.gif")
    page.save(corpus / "page.bmp")
    Image.fromarray(np.round(grey * (4095 / 255)).astype(np.uint16)).save(
        corpus / "twelve bit.tif")
    Image.fromarray((grey / 255.0).astype(np.float32)).save(corpus / "float.tif")
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(grey[::-1, ::-1]).save(corpus / "upside down.png", exif=exif)
    page.save(corpus / "book.tif", save_all=True, append_images=[page])
    return ["page.jp2", "page.webp", "page.gif", "page.bmp", "twelve bit.tif", "float.tif",
            "upside down.png", "book.tif#p0001", "book.tif#p0002"]


@pytest.fixture(scope="module")
def kinds_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    corpus = root / "corpus"
    corpus.mkdir()
    same = _write_kinds(corpus, _crop())
    (corpus / "notes.txt").write_text("reading notes")
    os.mkfifo(corpus / "pipe.jpg")
    summary = run_similarity(corpus, corpus / "results", FAST)
    return corpus, summary, same


def _pages(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "pages.csv", keep_default_na=False)


def test_every_kind_gives_the_features_of_the_grey_page(kinds_run):
    corpus, summary, same = kinds_run
    pages = _pages(corpus / "results").set_index("page_id")
    ok_ids = pages.index[pages["status"] == "ok"].tolist()
    assert sorted(ok_ids) == sorted(["grey.png", *same])
    features = np.load(corpus / "results" / "features.npy")
    reference = features[ok_ids.index("grey.png")]
    assert np.abs(reference).sum() > 0
    for page_id in same:
        np.testing.assert_array_equal(features[ok_ids.index(page_id)], reference,
                                      err_msg=page_id)
    assert summary.pages_ok == len(same) + 1


def test_files_that_give_no_page_are_in_pages_csv_with_their_reason(kinds_run):
    corpus, summary, _ = kinds_run
    status = _pages(corpus / "results").set_index("page_id")["status"]
    assert status["notes.txt"].startswith("ignored: not a page image (.txt)")
    assert status["pipe.jpg"] == "skipped: named pipe (FIFO), never opened"
    assert summary.pages_skipped == 1  # the pipe; the notes are no page
    assert any("not pages" in message for message in summary.messages)


def test_a_results_folder_inside_the_corpus_is_never_read_back(kinds_run, tmp_path):
    corpus, first, _ = kinds_run
    again = run_similarity(corpus, corpus / "results", FAST)
    pages = _pages(corpus / "results")
    assert not pages["page_id"].str.startswith("results").any()
    assert (again.pages_ok, again.pages_reused) == (first.pages_ok, first.pages_ok)
    # another run's results folder inside the corpus is listed once and never entered
    other = run_similarity(corpus, tmp_path / "elsewhere", FAST)
    status = _pages(tmp_path / "elsewhere").set_index("page_id")["status"]
    assert status["results/"].startswith("ignored: results folder of a corpus run")
    assert other.pages_ok == first.pages_ok


@pytest.mark.parametrize("content", [None, "notes.txt", "scan.heic"])
def test_an_empty_corpus_is_an_error_that_says_what_was_found(tmp_path, content):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if content:
        (corpus / content).write_bytes(b"not a page")
    result = CliRunner().invoke(main, ["similarity", str(corpus), "-o", str(tmp_path / "out"),
                                       "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: no pages found in {corpus}")
    assert (content or "no files") in result.output
    assert ".jpg .jpeg .png .tif .tiff .jp2" in result.output
    assert not (tmp_path / "out" / "pages.csv").exists()


def test_metadata_rows_naming_no_page_are_noted_a_few_by_name(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "Clavius 1585").mkdir(parents=True)
    Image.fromarray(_crop()).save(corpus / "Clavius 1585" / "0001.png")
    (corpus / "metadata.csv").write_text("page_id;Printer;YEAR\n" + "".join(
        f"other_p{k}.png;Giunta;1585?\n" for k in range(8)), encoding="cp1252")
    gathered = gather_pages(corpus, tmp_path / "out")
    notes = [m for m in gathered.messages if m.startswith("metadata: ")]
    assert len(notes) == 6
    assert notes[0] == (f"metadata: {corpus / 'metadata.csv'}:2: page 'other_p0.png' is not "
                        "in the corpus; the row is not used")
    assert notes[-1] == f"metadata: {corpus / 'metadata.csv'}: 3 more rows name no page of " \
                        "the corpus"
    page = metadata_for_pages(gathered.metadata, ["Clavius 1585/0001.png"]).iloc[0]
    assert page["book_id"] == "Clavius 1585"  # a folder per book, no book id in metadata
