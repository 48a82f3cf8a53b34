"""Finding the pages of a corpus folder (design.md section 3).

A corpus folder holds page images anywhere below it; the page id is the path relative to the
folder, with ``/`` separators. Files that cannot be pages are reported, not silently dropped.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

PAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class CorpusPage:
    """One page file of a corpus: its id (relative path) and where it lies."""

    page_id: str
    path: Path


@dataclass(frozen=True)
class RejectedFile:
    """A file under the corpus folder that is not read as a page, and why."""

    page_id: str
    reason: str


def list_pages(corpus: Path | str) -> tuple[list[CorpusPage], list[RejectedFile]]:
    """Page files below ``corpus``, sorted by page id, and the rejected ones.

    Symbolic links that lead out of the corpus folder are rejected (a corpus run must not read
    files the user did not put in it); links inside it are followed. Hidden files and folders
    (names starting with ``.``) are ignored, as are the tool's own results folders.
    """
    root = Path(corpus)
    if not root.is_dir():
        raise NotADirectoryError(f"corpus folder not found: {root}")
    real_root = root.resolve()
    pages, rejected = [], []
    for folder, subfolders, files in os.walk(root, followlinks=False):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            page_id = path.relative_to(root).as_posix()
            if name.startswith(".") or path.suffix.lower() not in PAGE_SUFFIXES:
                continue
            if not _utf8(page_id):
                shown = os.fsencode(page_id).decode("utf-8", "backslashreplace")
                rejected.append(RejectedFile(shown, "file name is not valid UTF-8; rename it"))
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                rejected.append(RejectedFile(page_id, "symbolic link out of the corpus folder"))
                continue
            pages.append(CorpusPage(page_id, path))
    pages.sort(key=lambda p: p.page_id)
    return pages, rejected


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_sha256(path: Path | str, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the content key of a page)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def safe_name(page_id: str) -> str:
    """A file-name-safe form of a page id: every char outside [A-Za-z0-9._-] becomes ``_``."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in page_id)
