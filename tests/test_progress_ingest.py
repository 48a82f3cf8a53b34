"""The one progress protocol (sphaera_tables/progress.py) where corpora are made or fetched:
``tables synth`` (pages generated), IIIF manifests (pages downloaded from a server on
127.0.0.1) and PDF scans (pages listed, then rendered while analysed). Each step reports
``(0, total)`` first and a unit only once it is done; ``--quiet`` keeps standard error empty, and
the bars never reach standard output.
"""

import json

import cv2
import pytest
from click.testing import CliRunner
from test_iiif import QUICK, IIIFServer, _page_jpegs, manifest_v2
from test_pdf import pdf_of_images
from test_progress import Recorder, draw_page

from corpus_tools.corpus_inputs import InputSettings, gather_pages
from corpus_tools.synth import generate_corpus
from sphaera_tables import progress as progress_module
from sphaera_tables.cli import main
from sphaera_tables.similarity import SimilarityOptions, run_similarity

FAST_RUN = SimilarityOptions(min_score=0.0, top_k=2, explain=False, report=False,
                             networks=False, inputs=InputSettings(pdf_dpi=150, downloads=QUICK))


class Checked(Recorder):
    """A :class:`Recorder` that checks, at every call of ``message``, that at least ``done``
    units are finished (``finished()`` counts them)."""

    def __init__(self, message, finished):
        super().__init__()
        self.message, self.finished = message, finished

    def __call__(self, done, total, message=""):
        if message == self.message:
            assert self.finished() >= done, (message, done, total)
        super().__call__(done, total, message)


@pytest.fixture()
def terminal(monkeypatch):
    """Progress bars drawn as on a terminal."""
    monkeypatch.setattr(progress_module, "stderr_is_terminal", lambda: True)


def test_synth_reports_each_page_once_it_is_written(tmp_path):
    out = tmp_path / "corpus"
    recorder = Checked("Generating pages", lambda: len(list(out.glob("*.jpg"))))
    generate_corpus(out, pages=3, seed=1, dpi_range=(150, 160), progress=recorder)
    recorder.assert_well_formed()
    assert recorder.calls == {"Generating pages": [(0, 3), (1, 3), (2, 3), (3, 3)]}


def test_tables_synth_draws_its_bar_on_stderr_and_nothing_with_quiet(tmp_path, terminal):
    runner = CliRunner()
    shown = runner.invoke(main, ["synth", str(tmp_path / "a"), "--pages", "2"])
    assert shown.exit_code == 0, shown.output
    assert "Generating pages" in shown.stderr
    assert shown.stdout == f"wrote 2 pages and their ground truth to {tmp_path / 'a'}\n"
    quiet = runner.invoke(main, ["synth", str(tmp_path / "b"), "--pages", "2", "--quiet"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and quiet.stdout == ""


@pytest.fixture(scope="module")
def iiif_manifests():
    """Two manifests (4 and 3 canvases, all images distinct) on a local IIIF server."""
    bodies = _page_jpegs(7)
    server = IIIFServer({f"page{k:02d}.jpg": body for k, body in enumerate(bodies)})
    urls = []
    for name, pages in (("a.json", range(4)), ("b.json", range(4, 7))):
        manifest = manifest_v2(server.base, [f"page{k:02d}.jpg" for k in pages], label=name)
        server.manifests[name] = json.dumps(manifest).encode()
        urls.append(f"{server.base}/manifests/{name}")
    yield urls
    server.close()


def test_iiif_pages_are_reported_as_they_are_downloaded(iiif_manifests, tmp_path):
    out = tmp_path / "results"

    def downloaded():  # a URL's record is written once its image is in the cache
        return len(list((out / "iiif" / "urls").glob("*.json"))) - len(iiif_manifests)

    recorder = Checked("Downloading pages", downloaded)
    gathered = gather_pages(iiif_manifests, out, FAST_RUN.inputs, progress=recorder)
    recorder.assert_well_formed()
    assert recorder.calls["Listing pages"] == [(0, 2), (1, 2), (2, 2)]
    assert recorder.calls["Downloading pages"][-1] == (7, 7)
    assert len(gathered.sources) == gathered.downloaded == 7

    again = Recorder()  # from the cache: the same steps, nothing fetched
    assert len(gather_pages(iiif_manifests, out, FAST_RUN.inputs, progress=again).sources) == 7
    again.assert_well_formed()
    assert again.calls["Downloading pages"][-1] == (7, 7)


def test_tables_similarity_on_iiif_is_silent_with_quiet(iiif_manifests, tmp_path,
                                                         terminal):
    result = CliRunner().invoke(main, ["similarity", iiif_manifests[1], "-o",
                                       str(tmp_path / "r"), "--no-explanations", "--no-report",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "Downloading" not in result.stdout


def test_tables_similarity_shows_the_downloads_on_a_terminal(iiif_manifests, tmp_path,
                                                              terminal):
    result = CliRunner().invoke(main, ["similarity", iiif_manifests[1], "-o",
                                       str(tmp_path / "r"), "--no-explanations", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "Downloading pages" in result.stderr
    assert "Downloading pages" not in result.stdout


@pytest.fixture(scope="module")
def pdf_folder(tmp_path_factory):
    """A folder holding one PDF of three table pages (150 dpi)."""
    root = tmp_path_factory.mktemp("pdf")
    pages = []
    for k in range(3):
        draw_page(root / f"{k}.png", table_seed=k % 2)
        pages.append(cv2.imread(str(root / f"{k}.png"), cv2.IMREAD_GRAYSCALE))
    folder = root / "corpus"
    folder.mkdir()
    (folder / "book.pdf").write_bytes(pdf_of_images(pages, 150))
    return folder


def test_pdf_pages_are_listed_then_rendered_and_analysed_with_progress(pdf_folder, tmp_path):
    listed = Recorder()
    gathered = gather_pages(pdf_folder, tmp_path / "r", FAST_RUN.inputs, progress=listed)
    assert listed.calls == {"Listing pages": [(0, 1), (1, 1)]}
    assert len(gathered.sources) == 3
    analysed = Recorder()
    summary = run_similarity(pdf_folder, tmp_path / "r", FAST_RUN, progress=analysed)
    analysed.assert_well_formed()
    assert analysed.calls["Analysing pages"][-1] == (3, 3)  # each page is rendered there
    assert summary.pages_ok == 3


def test_tables_similarity_on_a_pdf_is_silent_with_quiet(pdf_folder, tmp_path, terminal):
    result = CliRunner().invoke(main, ["similarity", str(pdf_folder), "-o", str(tmp_path / "r"),
                                       "--pdf-dpi", "150", "--no-explanations", "--no-report",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
