"""PDF scans: every page of a PDF is a page (``book.pdf#p0012``), rendered at a set resolution;
a PDF made from page images gives the same digits and matches as the images themselves."""

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from corpus_tools.corpus_inputs import InputSettings
from corpus_tools.page_sources import list_folder
from corpus_tools.pdf import pdf_page_count, render_pdf_page
from corpus_tools.synth import generate_corpus
from digit_detector.page import PageReadError
from sphaera_tables.similarity import SimilarityOptions, run_similarity

SHARED = Path(__file__).parents[2] / "shared"
REAL_PAGE = SHARED / "data" / "real" / "tables" / "1921_pifferi_sfera_1604_p368.jpg"
DPI = 150
SIDE_STEP = 25  # at 150 dpi, 25 px are exactly 12 pt: the page size is exact in the PDF


def pdf_of_images(pages: list[np.ndarray], dpi: int) -> bytes:
    """A PDF with one page per grey image, each filling its page at ``dpi``; the pixels are
    stored losslessly (Flate), as a scanner's PDF export of lossless scans would."""
    objects, kids = [], []
    for grey in pages:
        rows, columns = grey.shape
        width, height = columns * 72 / dpi, rows * 72 / dpi
        data = zlib.compress(np.ascontiguousarray(grey, np.uint8).tobytes())
        image = len(objects) + 3
        objects.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                       b"/DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\n"
                       b"stream\n" % (columns, rows, len(data)) + data + b"\nendstream")
        content = b"q %.4f 0 0 %.4f 0 0 cm /Im0 Do Q" % (width, height)
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.4f %.4f] /Resources "
                       b"<< /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
                       % (width, height, image, image + 1))
        kids.append(image + 2)
    tree = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids), len(kids))
    body, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate([b"<< /Type /Catalog /Pages 2 0 R >>", tree, *objects], 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return body + (b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                   % (len(offsets) + 1, xref))


def _grid_crop(grey: np.ndarray) -> np.ndarray:
    rows, columns = (side - side % SIDE_STEP for side in grey.shape)
    return grey[:rows, :columns]


def test_pages_are_rendered_pixel_for_pixel_at_their_resolution(tmp_path):
    rng = np.random.default_rng(3)
    pages = [rng.integers(0, 256, (100, 75)).astype(np.uint8),
             rng.integers(0, 256, (50, 125)).astype(np.uint8)]
    (tmp_path / "book.pdf").write_bytes(pdf_of_images(pages, DPI))
    assert pdf_page_count(tmp_path / "book.pdf") == 2
    for index, grey in enumerate(pages):
        np.testing.assert_array_equal(render_pdf_page(tmp_path / "book.pdf", index, DPI), grey)
    assert render_pdf_page(tmp_path / "book.pdf", 0, 2 * DPI).shape == (200, 150)
    with pytest.raises(PageReadError, match="has no page 3"):
        render_pdf_page(tmp_path / "book.pdf", 2, DPI)
    with pytest.raises(PageReadError, match="too large to render at 150 dpi"):
        render_pdf_page(tmp_path / "book.pdf", 0, DPI, max_pixels=1000)


def test_every_pdf_page_is_listed_and_a_bad_pdf_is_skipped(tmp_path):
    grey = np.full((50, 50), 200, np.uint8)
    (tmp_path / "book.pdf").write_bytes(pdf_of_images([grey] * 3, DPI))
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "cut.pdf").write_bytes(pdf_of_images([grey], DPI)[:200])
    (tmp_path / "none.pdf").write_bytes(pdf_of_images([], DPI))
    sources, skipped = list_folder(tmp_path, pdf_dpi=DPI)
    assert [s.page_id for s in sources] == ["book.pdf#p0001", "book.pdf#p0002",
                                            "book.pdf#p0003"]
    assert len({s.content_hash() for s in sources}) == 3
    status = {s.page_id: s.status for s in skipped}
    assert set(status) == {"empty.pdf", "cut.pdf", "none.pdf"}
    assert status["empty.pdf"].startswith("skipped: not a readable PDF")
    assert status["cut.pdf"].startswith("skipped: not a readable PDF")
    assert status["none.pdf"].startswith("skipped: ")
    again, _ = list_folder(tmp_path, pdf_dpi=2 * DPI)
    assert again[0].content_hash() != sources[0].content_hash()  # other pixels, other key


def _real_crops() -> list[np.ndarray]:
    """Three blocks of the real 1604 table page, two of them overlapping (a match)."""
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))
    return [grey[400:650, 200:525], grey[450:700, 200:525], grey[900:1150, 200:525]]


def _synthetic_pages(root: Path) -> list[np.ndarray]:
    synthetic = generate_corpus(root / "synthetic", pages=4, seed=11, dpi_range=(DPI, DPI))
    return [_grid_crop(np.asarray(Image.open(path).convert("L")))
            for path in sorted(synthetic.glob("*.jpg"))]


@pytest.fixture(scope="module", params=[
    "real crops", pytest.param("synthetic pages", marks=pytest.mark.slow)])
def image_and_pdf_runs(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("pdf_runs")
    greys = _real_crops() if request.param == "real crops" else _synthetic_pages(root)
    (root / "images").mkdir()
    for index, grey in enumerate(greys):
        Image.fromarray(grey).save(root / "images" / f"book.pdf#p{index + 1:04d}.png")
    (root / "pdf").mkdir()
    (root / "pdf" / "book.pdf").write_bytes(pdf_of_images(greys, DPI))
    options = SimilarityOptions(min_score=0.0, top_k=3, links=5, report=False, networks=False,
                                inputs=InputSettings(pdf_dpi=DPI))
    for name in ("images", "pdf"):
        run_similarity(root / name, root / f"{name} results", options)
    return root, len(greys)


def _results(out: Path):
    pages = pd.read_csv(out / "pages.csv", keep_default_na=False)
    pages["page_id"] = pages["page_id"].str.removesuffix(".png")
    matches = pd.read_csv(out / "matches.csv", keep_default_na=False)
    for column in ("page_a", "page_b"):
        matches[column] = matches[column].str.removesuffix(".png")
    return pages, matches


def test_a_pdf_of_the_pages_gives_the_same_digits_and_matches(image_and_pdf_runs):
    root, count = image_and_pdf_runs
    image_pages, image_matches = _results(root / "images results")
    pdf_pages, pdf_matches = _results(root / "pdf results")
    assert pdf_pages["page_id"].tolist() == [f"book.pdf#p{n:04d}" for n in range(1, count + 1)]
    assert set(pdf_pages["status"]) == {"ok"}
    pd.testing.assert_frame_equal(pdf_pages, image_pages)
    assert image_pages["digits"].sum() > 50
    pd.testing.assert_frame_equal(pdf_matches, image_matches)
    assert len(pdf_matches) > 0
    np.testing.assert_array_equal(np.load(root / "pdf results" / "features.npy"),
                                  np.load(root / "images results" / "features.npy"))
    explained = [len(list((root / f"{name} results" / "explanations").glob("*.json")))
                 for name in ("pdf", "images")]
    assert explained[0] == explained[1] > 0
