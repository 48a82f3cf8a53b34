"""Page sources: what a corpus page is, where it comes from and how it is read.

A page source is one page of a corpus: its page id, its content hash (the key of every cached
result made from it) and its loader. One file can hold several pages (a PDF, a multi-page TIFF);
their ids are the file's id with ``#p0001``, ``#p0002``, ... Listing a corpus folder gives the
page sources and, for every other file below it, the reason it is not analysed: nothing in a
corpus folder is left out without a line in pages.csv saying why.

Formats: JPEG, PNG, TIFF (every page; 12- and 16-bit, float), JPEG 2000, WebP, GIF and BMP are
read by Pillow (one library for all images, with EXIF orientation and multi-page access); PDF
pages are rendered by PDFium (:mod:`corpus_tools.pdf`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from corpus_tools.ingest import file_sha256
from corpus_tools.pdf import DEFAULT_PDF_DPI, pdf_page_count, render_pdf_page
from digit_detector.page import IMAGE_SUFFIXES, PageReadError, load_page

PDF_SUFFIXES = (".pdf",)
PAGE_SUFFIXES = IMAGE_SUFFIXES + PDF_SUFFIXES
"""Every file kind whose pages are analysed."""
MULTI_PAGE_IMAGE_SUFFIXES = (".tif", ".tiff")
UNSUPPORTED_IMAGE_SUFFIXES = (".heic", ".heif", ".avif", ".jxl", ".djvu", ".djv", ".psd", ".xcf",
                              ".svg", ".dng", ".cr2", ".nef", ".arw", ".raw")
"""Image kinds a scan may come in that are not read: they are skipped with a reason that says
how to convert them."""
COMPANION_FILES = ("metadata.csv",)
COMPANION_FOLDERS = ("truth",)
"""Files and folders at the top of a corpus that describe its pages (metadata, the ground truth
of a synthetic corpus) and are not pages themselves."""
_SPECIAL_FILES = {stat.S_IFIFO: "named pipe (FIFO)", stat.S_IFSOCK: "socket",
                  stat.S_IFCHR: "character device", stat.S_IFBLK: "block device"}
_REDUCED_RESOLUTION = 1  # bit 0 of the TIFF NewSubfileType tag: a thumbnail of another page


@dataclass(frozen=True)
class PageSource:
    """One page: its id, the file it is in, and where in that file (plain data, so that it
    travels to any worker)."""

    page_id: str
    path: str
    frame: int = 0
    """0-based page of a multi-page file."""
    pdf_dpi: int | None = None
    """Set for a PDF page: the resolution it is rendered at."""

    def load(self) -> np.ndarray:
        """The page as uint8 grey (H, W); :class:`PageReadError` naming the file if it cannot
        be read."""
        if self.pdf_dpi is not None:
            return render_pdf_page(self.path, self.frame, self.pdf_dpi)
        return load_page(self.path, frame=self.frame)

    def content_hash(self) -> str:
        """SHA-256 naming this page's content: the file's hash for a single image, else that
        hash together with the page number (and the PDF rendering resolution)."""
        digest = _file_digest(self.path, *_identity(self.path))
        if self.pdf_dpi is None and self.frame == 0:
            return digest
        return hashlib.sha256(f"{digest}#{self.frame}@{self.pdf_dpi}".encode()).hexdigest()


@dataclass(frozen=True)
class SkippedFile:
    """A file (or folder, its id ending in ``/``) below a corpus folder that gives no page,
    with its pages.csv status: ``skipped: <reason>`` for a page file that cannot be read,
    ``ignored: <reason>`` for a file that is no page image."""

    page_id: str
    status: str


def list_folder(corpus: Path | str, exclude=(), pdf_dpi: int = DEFAULT_PDF_DPI
                ) -> tuple[list[PageSource], list[SkippedFile]]:
    """The page sources below ``corpus`` (sorted by page id) and every file that gives none.

    Folders in ``exclude`` (this run's results folder) are not entered; other results folders
    (a ``manifest.json`` beside a ``pages.csv``) are listed once and not entered, so results are
    never read back as pages. Symbolic links to files inside the corpus are followed, those
    leading out of it are refused; links to folders are not followed. Hidden files and folders
    (names starting with ``.``) are not part of a corpus. Named pipes, sockets and devices are
    never opened (reading one could wait forever).
    """
    root = Path(corpus)
    if not root.is_dir():
        raise NotADirectoryError(f"corpus folder not found: {root}")
    real_root, excluded = root.resolve(), {Path(p).resolve() for p in exclude}
    sources, skipped = [], []
    for folder, subfolders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        subfolders[:] = [name for name in sorted(subfolders)
                         if _enter(root, here / name, excluded, skipped)]
        for name in sorted(files):
            if name.startswith(".") or (here == root and name in COMPANION_FILES):
                continue
            path = here / name
            page_id = path.relative_to(root).as_posix()
            problem = _file_problem(path, page_id, real_root)
            if problem:
                skipped.append(problem)
            else:
                found, bad = _pages_of_file(path, page_id, pdf_dpi)
                sources += found
                skipped += bad
    sources.sort(key=lambda source: source.page_id)
    return sources, skipped


def _enter(root: Path, folder: Path, excluded: set[Path], skipped: list) -> bool:
    """Whether a listing goes into ``folder``; a folder it leaves out for a reason the user may
    not expect is added to ``skipped``."""
    name, folder_id = folder.name, folder.relative_to(root).as_posix() + "/"
    if name.startswith(".") or folder.resolve() in excluded:
        return False
    if folder.parent == root and name in COMPANION_FOLDERS:
        return False
    if folder.is_symlink():
        skipped.append(SkippedFile(folder_id, "ignored: link to a folder (not followed)"))
        return False
    if (folder / "manifest.json").is_file() and (folder / "pages.csv").is_file():
        skipped.append(SkippedFile(folder_id, "ignored: results folder of a corpus run "
                                              "(never read as pages)"))
        return False
    return True


def _file_problem(path: Path, page_id: str, real_root: Path) -> SkippedFile | None:
    """Why the file at ``path`` gives no page without even being opened; None if it may."""
    suffix = path.suffix.lower()
    verdict = "skipped" if suffix in PAGE_SUFFIXES + UNSUPPORTED_IMAGE_SUFFIXES else "ignored"
    if not _utf8(page_id):
        shown = os.fsencode(page_id).decode("utf-8", "backslashreplace")
        return SkippedFile(shown, f"{verdict}: file name is not valid UTF-8; rename it")
    if path.is_symlink() and not path.resolve().is_relative_to(real_root):
        return SkippedFile(page_id, f"{verdict}: symbolic link out of the corpus folder")
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return SkippedFile(page_id, f"{verdict}: cannot read file ({error.strerror}; a link "
                                    "whose target is gone?)")
    if not stat.S_ISREG(mode):
        kind = _SPECIAL_FILES.get(stat.S_IFMT(mode), "not a regular file")
        return SkippedFile(page_id, f"{verdict}: {kind}, never opened")
    if suffix in UNSUPPORTED_IMAGE_SUFFIXES:
        return SkippedFile(page_id, f"skipped: unsupported image type {suffix}; convert it "
                                    "to TIFF, PNG, JPEG or PDF")
    if suffix not in PAGE_SUFFIXES:
        shown = suffix or "no file name extension"
        return SkippedFile(page_id, f"ignored: not a page image ({shown}); pages are "
                                    f"{' '.join(PAGE_SUFFIXES)}")
    return None


def _pages_of_file(path: Path, page_id: str, pdf_dpi: int):
    """The page sources of one page file, and a skipped entry if it has no page at all."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        try:
            count = pdf_page_count(path)
        except PageReadError as error:
            return [], [SkippedFile(page_id, f"skipped: {_reason(error, path)}")]
        if count == 0:
            return [], [SkippedFile(page_id, "skipped: PDF without pages")]
        return [PageSource(numbered_id(page_id, n), str(path), n, pdf_dpi)
                for n in range(count)], []
    frames = _image_frames(path) if suffix in MULTI_PAGE_IMAGE_SUFFIXES else [0]
    if frames == [0]:
        return [PageSource(page_id, str(path))], []
    return [PageSource(numbered_id(page_id, n), str(path), frame)
            for n, frame in enumerate(frames)], []


def numbered_id(file_id: str, index: int) -> str:
    """Page id of the 0-based page ``index`` of a multi-page file: ``book.pdf#p0012``."""
    return f"{file_id}#p{index + 1:04d}"


def _image_frames(path: Path) -> list[int]:
    """The frames of a multi-page image that are pages (reduced-resolution copies, i.e.
    thumbnails a scanner stored beside a page, are not); ``[0]`` when the file cannot be read
    this far (loading it then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                frames = []
                for frame in range(getattr(image, "n_frames", 1)):
                    image.seek(frame)
                    if not int(image.tag_v2.get(254, 0)) & _REDUCED_RESOLUTION:
                        frames.append(frame)
                return frames or [0]
    except Exception:  # noqa: BLE001 - any damage shows when the page is loaded
        return [0]


def _reason(error: Exception, path: Path) -> str:
    return str(error).removeprefix(f"{path}: ")


def _identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """:func:`file_sha256` of a file, computed once per file version (the pages of one PDF
    share it)."""
    return file_sha256(path)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
