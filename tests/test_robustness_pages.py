"""A corpus run survives bad and unusual page files: every page is ok or skipped with its reason.

One corpus holds a crop of the real 1604 table page in every image kind a scan can come in (grey,
RGB, RGBA, palette, CMYK, 16-bit TIFF), copies of it under odd names, and files that are no
usable page (empty, text, truncated, corrupt, a decompression bomb, links out of the folder).
Lossless conversions of the same page must give the same features as the grey original.
"""

import os
import pickle
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from corpus_tools.storage import load_sparse
from digit_detector.prepare import page_ink
from digit_detector.weights import DEFAULT_WEIGHTS
from sphaera_tables.cli import main
from sphaera_tables.similarity import SimilarityOptions, run_similarity

SHARED = Path(__file__).parents[2] / "shared"
REAL_PAGE = SHARED / "data" / "real" / "tables" / "1921_pifferi_sfera_1604_p368.jpg"
CROP = (slice(400, 640), slice(200, 520))  # rows, columns: a block of the table with digits

#: Lossless re-encodings of the grey crop: each must be read back to exactly the same page.
SAME_PAGE = ["rgb.png", "rgba.png", "palette.png", "cmyk.tif", "grey16.tif",
             "copy of grey.png", "Sphæra Ptolemæus ΑΒΓ.png", '<script>&amp;"x",y.png',
             "sub/inside link.png"]
#: Files that cannot be pages, and the status pages.csv must give (whole, except the
#: decoder's own words in brackets after a corrupt file, which vary with the Pillow version).
BAD_PAGES = {
    "empty.jpg": "skipped: empty file (0 bytes)",
    "text.jpg": "skipped: not a readable image (UnidentifiedImageError)",
    "truncated.jpg": "skipped: corrupt or truncated image (",
    "corrupt.jpg": "skipped: corrupt or truncated image (",
    "bomb.png": "skipped: image too large to decode safely (12000 x 12000 px, limit "
                "120000000 px)",
    "escape.png": "skipped: symbolic link out of the corpus folder",
    "dangling.png": "skipped: cannot read file (No such file or directory; a link whose "
                    "target is gone?)",
    "giant bomb.png": "skipped: image too large to decode safely (",
}
NON_UTF8_NAME = b"latin1 \xe9t\xe9.png"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny valid-looking grey PNG whose header claims ``width x height`` px."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def _write_corpus(corpus: Path, outside: Path) -> np.ndarray:
    """Every page kind of the module docstring; returns the grey crop (uint8, H x W)."""
    (corpus / "sub").mkdir(parents=True)
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]
    page = Image.fromarray(grey)
    page.save(corpus / "grey.png")
    page.convert("RGB").save(corpus / "rgb.png")
    rgba = page.convert("RGBA")
    rgba.putalpha(255)
    rgba.save(corpus / "rgba.png")
    page.convert("P").save(corpus / "palette.png")
    page.convert("RGB").convert("CMYK").save(corpus / "cmyk.tif")
    Image.fromarray(grey.astype(np.uint16) * 257).save(corpus / "grey16.tif")
    for name in ["copy of grey.png", "Sphæra Ptolemæus ΑΒΓ.png", '<script>&amp;"x",y.png']:
        (corpus / name).write_bytes((corpus / "grey.png").read_bytes())
    os.symlink(corpus / "grey.png", corpus / "sub" / "inside link.png")
    Image.fromarray(grey[:20, :20]).save(corpus / "tiny.png")
    (corpus / "empty.jpg").write_bytes(b"")
    (corpus / "text.jpg").write_text("Tabula climatum, not an image\n")
    page.save(corpus / "page.jpg", quality=90)
    jpeg = (corpus / "page.jpg").read_bytes()
    (corpus / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    # noise free of marker bytes (a decoder resyncs past it) holding one start-of-image marker
    # in the middle of the scan data, which no decoder can pass
    noise = np.random.default_rng(7).integers(0, 0xFF, 4000, dtype=np.uint8).tobytes()
    damaged = bytearray(jpeg)
    damaged[len(jpeg) // 2: len(jpeg) // 2 + 4000] = noise[:2000] + b"\xff\xd8" + noise[2002:]
    (corpus / "corrupt.jpg").write_bytes(bytes(damaged))
    (corpus / "bomb.png").write_bytes(_png_bomb(12_000, 12_000))  # above the page limit
    (corpus / "giant bomb.png").write_bytes(_png_bomb(100_000, 100_000))  # above Pillow's too
    outside.write_bytes((corpus / "grey.png").read_bytes())
    os.symlink(outside, corpus / "escape.png")
    os.symlink(corpus / "gone.png", corpus / "dangling.png")
    return grey


@pytest.fixture(scope="module")
def bad_corpus_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust_pages")
    _write_corpus(root / "corpus", root / "outside.png")
    options = SimilarityOptions(top_k=len(SAME_PAGE) + 3, min_score=0.0, explain=False,
                                report=False, networks=False)
    summary = run_similarity(root / "corpus", root / "out", options)
    return root, summary


def _pages(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "pages.csv", keep_default_na=False, encoding="utf-8")


def test_every_page_is_ok_or_skipped_with_its_reason(bad_corpus_run):
    root, summary = bad_corpus_run
    pages = _pages(root / "out").set_index("page_id")["status"]
    for page_id, reason in BAD_PAGES.items():
        if reason.endswith("("):  # the decoder's words follow, in brackets
            assert pages[page_id].startswith(reason) and pages[page_id].endswith(")"), (
                page_id, pages[page_id])
            assert len(pages[page_id]) > len(reason) + 1, page_id
        else:
            assert pages[page_id] == reason, (page_id, pages[page_id])
    # a 20 x 20 px image is still a readable page: analysed, with nothing on it
    ok_pages = ["grey.png", *SAME_PAGE, "page.jpg", "tiny.png"]
    for page_id in ok_pages:
        assert pages[page_id] == "ok", (page_id, pages[page_id])
    assert sorted(pages.index) == sorted([*ok_pages, *BAD_PAGES])  # every file, listed once
    assert (summary.pages_ok, summary.pages_skipped) == (len(ok_pages), len(BAD_PAGES))


def test_non_utf8_file_name_is_listed_and_the_run_goes_on(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]
    Image.fromarray(grey).save(corpus / "grey.png")
    (corpus / os.fsdecode(NON_UTF8_NAME)).write_bytes((corpus / "grey.png").read_bytes())
    options = SimilarityOptions(explain=False, report=False, networks=False)
    summary = run_similarity(corpus, tmp_path / "out", options)
    pages = _pages(tmp_path / "out").set_index("page_id")["status"]
    assert pages["grey.png"] == "ok"
    odd = [page_id for page_id in pages.index if page_id.startswith("latin1 ")]
    assert len(odd) == 1
    # the outputs are UTF-8: a name they cannot hold is refused, saying what to do
    assert pages[odd[0]] == "skipped: file name is not valid UTF-8; rename it"
    assert (summary.pages_ok, summary.pages_skipped) == (1, 1)


def test_a_bomb_beyond_pillows_own_limit_is_named_too_large(bad_corpus_run):
    root, _ = bad_corpus_run
    status = _pages(root / "out").set_index("page_id")["status"]["giant bomb.png"]
    assert status.startswith("skipped: image too large to decode safely"), status


def test_lossless_conversions_give_the_grey_page_features(bad_corpus_run):
    root, _ = bad_corpus_run
    pages = _pages(root / "out")
    ok_ids = pages.loc[pages["status"] == "ok", "page_id"].tolist()
    features = np.load(root / "out" / "features.npy")
    assert features.shape == (len(ok_ids), 100)
    reference = features[ok_ids.index("grey.png")]
    assert np.abs(reference).sum() > 0  # the crop has bigrams, so equality means something
    for page_id in SAME_PAGE:
        np.testing.assert_array_equal(features[ok_ids.index(page_id)], reference,
                                      err_msg=page_id)


def test_duplicates_are_each_others_best_matches_with_the_self_score(bad_corpus_run):
    root, _ = bad_corpus_run
    matches = pd.read_csv(root / "out" / "matches.csv", keep_default_na=False)
    pages = _pages(root / "out")
    ok_ids = set(pages.loc[pages["status"] == "ok", "page_id"])
    assert set(matches["page_a"]) | set(matches["page_b"]) <= ok_ids
    same = set(SAME_PAGE) | {"grey.png"}
    between_copies = matches[matches["page_a"].isin(same) & matches["page_b"].isin(same)]
    assert between_copies.groupby("page_a").size().to_dict() == {p: len(same) - 1 for p in same}
    ok_ids = pages.loc[pages["status"] == "ok", "page_id"].tolist()
    row = ok_ids.index("grey.png")
    grey = np.load(root / "out" / "features.npy")[row].astype(np.float64)
    cells = load_sparse(root / "out" / "cell_features.npz")[row]
    self_score = grey @ grey + cells.multiply(cells).sum()
    assert self_score > 0.4  # shipped weights: 0.496
    assert np.allclose(between_copies["score"], self_score, atol=1e-5)


def test_cli_exit_code_says_whether_pages_were_skipped(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]
    Image.fromarray(grey).save(corpus / "page.png")
    args = ["similarity", str(corpus), "-o", str(tmp_path / "out"), "--no-explanations",
            "--no-report", "--quiet"]
    clean = CliRunner().invoke(main, args)
    assert clean.exit_code == 0, clean.output
    (corpus / "broken.jpg").write_text("not an image")
    with_bad = CliRunner().invoke(main, args)
    assert with_bad.exit_code == 3, with_bad.output
    assert "skipped: 1" in with_bad.output
    assert "1 reused" in with_bad.output
    status = _pages(tmp_path / "out").set_index("page_id")["status"]
    assert status["broken.jpg"].startswith("skipped: not a readable image")
    help_text = CliRunner().invoke(main, ["similarity", "--help"]).output
    assert "3: some pages were skipped" in help_text


def test_hostile_page_name_is_escaped_in_the_report(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]
    Image.fromarray(grey).save(corpus / "a.png")
    hostile = "<img src=x onerror=alert(1)>.png"
    (corpus / hostile).write_bytes((corpus / "a.png").read_bytes())
    summary = run_similarity(corpus, tmp_path / "out", SimilarityOptions(min_score=0.0, links=5))
    assert summary.matches == 2 and summary.explanations_written >= 1
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


class _Trap:
    """Unpickling this creates the folder named by $TRAP_DIR: proof that the file was executed."""

    def __reduce__(self):
        return (os.makedirs, (os.environ["TRAP_DIR"],))


@pytest.mark.parametrize("kind", ["pickle", "truncated"])
def test_similarity_refuses_a_bad_detector_file_without_executing_it(tmp_path, monkeypatch,
                                                                     kind):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    Image.fromarray(np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]).save(corpus / "a.png")
    trap_dir = tmp_path / "trap_was_executed"
    monkeypatch.setenv("TRAP_DIR", str(trap_dir))
    weights = tmp_path / "detector.safetensors"
    if kind == "pickle":
        weights.write_bytes(pickle.dumps({"conv.weight": _Trap()}))
    else:
        weights.write_bytes(DEFAULT_WEIGHTS.read_bytes()[:-300])
    result = CliRunner().invoke(main, ["similarity", str(corpus), "-o", str(tmp_path / "out"),
                                       "--detector", str(weights), "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert f"{weights}: not a safetensors weight file" in result.output
    assert not trap_dir.exists()
    assert not (tmp_path / "out" / "pages.csv").exists()
    assert not (tmp_path / "out" / ".tables.lock").exists()


def test_metadata_problems_are_noted_and_book_rows_reach_pages_csv(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))[CROP]
    Image.fromarray(grey).save(corpus / "pifferi_sfera_p368.png")
    (corpus / "metadata.csv").write_text(
        "page_id,book_id,printer,place,year\n"
        ",pifferi_sfera,Salvestro Marchetti,Siena,1604\n"
        "other_p1.png,,Giunta,Venezia,MDCIV\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["similarity", str(corpus), "-o", str(tmp_path / "out"),
                                       "--no-explanations", "--no-report", "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"note: metadata: {corpus / 'metadata.csv'}:3: page 'other_p1.png' is not in the " \
        "corpus; the row is not used" in result.output
    row = _pages(tmp_path / "out").set_index("page_id").loc["pifferi_sfera_p368.png"]
    assert (row["book_id"], row["printer"], row["place"], str(row["year"])) == (
        "pifferi_sfera", "Salvestro Marchetti", "Siena", "1604")


def test_unreadable_metadata_file_is_a_one_line_error_naming_it(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "metadata.csv").write_bytes(b"page_id,year\n\x00\xff\xfe1604\n")
    result = CliRunner().invoke(main, ["similarity", str(corpus), "-o", str(tmp_path / "out"),
                                       "--quiet"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert f"{corpus / 'metadata.csv'}: cannot read as CSV" in result.output


def _even_grey_with_a_few_strokes() -> np.ndarray:
    """Paper at 239 with a lighter dot every 8 px (the local paper level, 255) and one stroke
    40 levels below it: median darkness 16, so the texture floor (2.5 x 16) meets the contrast
    (40) exactly."""
    grey = np.full((200, 200), 239, np.uint8)
    grey[::8, ::8] = 255
    grey[5, 5:60] = 215
    return grey


def _noise() -> np.ndarray:
    """Dense texture (uniform noise), darker on average than any table page."""
    return np.random.default_rng(0).integers(0, 256, (200, 200)).astype(np.uint8)


@pytest.mark.parametrize("grey", [_even_grey_with_a_few_strokes(), _noise()],
                         ids=["floor-equals-contrast", "dense-texture"])
def test_page_ink_is_finite_and_paper_is_never_ink(grey):
    digit_height = 4.0
    ink = page_ink(grey, 1.0, digit_height)
    assert np.isfinite(ink).all() and ink.min() >= 0 and ink.max() <= 1
    side = int(2.5 * digit_height) | 1
    paper = cv2.dilate(grey, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    assert (ink[grey == paper] == 0).all()  # a pixel as light as its paper is no ink
