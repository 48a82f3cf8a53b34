"""Every image kind a library publishes is read as the same page, and every file of a corpus
folder that gives no page is listed with its reason (the listing never opens a special file)."""

import os
import socket

import numpy as np
import pytest
from PIL import Image

from corpus_tools.page_sources import PAGE_SUFFIXES, PageSource, list_folder
from digit_detector.page import ORIENTATION, PageReadError, load_page

GREY = np.random.default_rng(7).integers(0, 256, (60, 80)).astype(np.uint8)
#: EXIF orientation -> the page as shown, from the pixels as stored
SHOWN = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
         4: lambda a: a[::-1], 5: lambda a: a.T, 6: lambda a: np.rot90(a, -1),
         7: lambda a: a[::-1, ::-1].T, 8: lambda a: np.rot90(a, 1)}


def _save(path, array=GREY, **options):
    Image.fromarray(array).save(path, **options)
    return path


#: name -> how to write GREY losslessly in that format
LOSSLESS = {
    "page.jp2": lambda p: _save(p),
    "page.j2k": lambda p: _save(p),
    "page.webp": lambda p: _save(p, lossless=True),
    "page.gif": lambda p: _save(p),
    "page.bmp": lambda p: _save(p),
    "twelve_bit.tif": lambda p: _save(p, np.round(GREY * (4095 / 255)).astype(np.uint16)),
    "float01.tif": lambda p: _save(p, (GREY / 255.0).astype(np.float32)),
    "float255.tif": lambda p: _save(p, GREY.astype(np.float32)),
    "upside_down.png": lambda p: _save(p, GREY[::-1, ::-1], exif=_exif(3)),
    "turned_right.png": lambda p: _save(p, np.rot90(GREY, 1), exif=_exif(6)),
    "turned_left.tif": lambda p: _save(p, np.rot90(GREY, -1), tiffinfo={ORIENTATION: 8}),
}


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


@pytest.mark.parametrize("name", sorted(LOSSLESS))
def test_each_image_kind_is_a_page_read_as_the_same_grey_page(tmp_path, name):
    LOSSLESS[name](tmp_path / name)
    sources, skipped = list_folder(tmp_path)
    assert [s.page_id for s in sources] == [name] and skipped == []
    np.testing.assert_array_equal(sources[0].load(), GREY)


@pytest.mark.parametrize("orientation", sorted(SHOWN))
@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_every_exif_orientation_is_applied(tmp_path, orientation, suffix):
    exif = _exif(orientation)
    path = _save(tmp_path / f"page{suffix}", GREY, exif=exif, tiffinfo=exif, lossless=True)
    np.testing.assert_array_equal(load_page(path), SHOWN[orientation](GREY))


def test_a_12_bit_scan_is_not_read_as_a_dark_page(tmp_path):
    white_12_bit = np.full((10, 10), 4095, np.uint16)
    assert load_page(_save(tmp_path / "w.tif", white_12_bit)).min() == 255


def test_every_page_of_a_multi_page_tiff_and_no_thumbnail(tmp_path):
    pages = [Image.fromarray(GREY), Image.fromarray(255 - GREY), Image.fromarray(GREY[:30])]
    pages[0].save(tmp_path / "book.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(GREY).save(tmp_path / "with thumbnail.tiff", save_all=True,
                               append_images=[Image.fromarray(GREY[::4, ::4])],
                               tiffinfo={254: 0})
    _mark_frame_reduced(tmp_path / "with thumbnail.tiff", frame=1)
    sources, skipped = list_folder(tmp_path)
    assert skipped == []
    assert [(s.page_id, s.frame) for s in sources] == [
        ("book.tif#p0001", 0), ("book.tif#p0002", 1), ("book.tif#p0003", 2),
        ("with thumbnail.tiff", 0)]
    np.testing.assert_array_equal(sources[1].load(), 255 - GREY)
    assert sources[2].load().shape == (30, 80)
    hashes = {s.content_hash() for s in sources[:3]}
    assert len(hashes) == 3  # one file, three pages, three cache keys
    with pytest.raises(PageReadError, match="has no page 9"):
        PageSource("x", str(tmp_path / "book.tif"), frame=8).load()


def _mark_frame_reduced(path, frame):
    """Set NewSubfileType (tag 254) of one frame of a TIFF to 1, reduced resolution, as
    scanners do for a stored thumbnail (Pillow writes one value for all frames)."""
    data = bytearray(path.read_bytes())
    _set_short_tag(data, _ifd_offsets(bytes(data))[frame], 254, 1)
    path.write_bytes(bytes(data))


def _ifd_offsets(data: bytes) -> list[int]:
    order = "little" if data[:2] == b"II" else "big"
    offsets, offset = [], int.from_bytes(data[4:8], order)
    while offset:
        offsets.append(offset)
        count = int.from_bytes(data[offset:offset + 2], order)
        offset = int.from_bytes(data[offset + 2 + 12 * count: offset + 6 + 12 * count], order)
    return offsets


def _set_short_tag(data: bytearray, ifd: int, tag: int, value: int) -> None:
    order = "little" if data[:2] == b"II" else "big"
    count = int.from_bytes(data[ifd:ifd + 2], order)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if int.from_bytes(data[entry:entry + 2], order) == tag:
            data[entry + 8:entry + 12] = value.to_bytes(4, order)
            return
    raise AssertionError(f"tag {tag} not in the IFD")


def test_every_file_that_gives_no_page_is_listed_with_its_reason(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "book").mkdir(parents=True)
    _save(corpus / "book" / "0001.png")
    (corpus / "notes.txt").write_text("Tabula climatum")
    (corpus / "README").write_text("no extension")
    (corpus / "scan.heic").write_bytes(b"\0\0\0\x18ftypheic")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    os.mkfifo(corpus / "pipe.png")
    os.mkfifo(corpus / "pipe.txt")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(corpus / "sock.jpg"))
        os.symlink(tmp_path, corpus / "linked folder")
        (corpus / ".hidden.png").write_bytes(b"not listed: hidden")
        (corpus / "metadata.csv").write_text("page_id,year\n")
        sources, skipped = list_folder(corpus)
    statuses = {s.page_id: s.status for s in skipped}
    assert [s.page_id for s in sources] == ["book/0001.png"]
    assert statuses == {
        "README": "ignored: not a page image (no file name extension); pages are "
                  + " ".join(PAGE_SUFFIXES),
        "broken.pdf": statuses["broken.pdf"],
        "linked folder/": "ignored: link to a folder (not followed)",
        "notes.txt": "ignored: not a page image (.txt); pages are " + " ".join(PAGE_SUFFIXES),
        "pipe.png": "skipped: named pipe (FIFO), never opened",
        "pipe.txt": "ignored: named pipe (FIFO), never opened",
        "scan.heic": "skipped: unsupported image type .heic; convert it to TIFF, PNG, JPEG or "
                     "PDF",
        "sock.jpg": "skipped: socket, never opened",
    }
    assert statuses["broken.pdf"].startswith("skipped: not a readable PDF")


def test_results_folders_are_never_listed_as_pages(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "results" / "thumbnails").mkdir(parents=True)
    (corpus / "old run" / "thumbnails").mkdir(parents=True)
    _save(corpus / "page.png")
    for run in ("results", "old run"):
        _save(corpus / run / "thumbnails" / "page.png.jpg")
    (corpus / "old run" / "manifest.json").write_text("{}")
    (corpus / "old run" / "pages.csv").write_text("page_id,status\n")
    sources, skipped = list_folder(corpus, exclude=[corpus / "results"])
    assert [s.page_id for s in sources] == ["page.png"]
    assert [(s.page_id, s.status) for s in skipped] == [
        ("old run/", "ignored: results folder of a corpus run (never read as pages)")]
