"""What names a corpus file: its content hash, and file names made from page ids.

The pages themselves are listed by :mod:`corpus_tools.page_sources`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

MAX_NAME = 64
"""Longest file name made from a page id (two of them and a suffix stay far below 255)."""
PLAIN_ID = re.compile(r"[A-Za-z0-9.-]+(?:_[A-Za-z0-9.-]+)*")


def file_sha256(path: Path | str, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the content key of a page)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def safe_name(page_id: str) -> str:
    """A file name made from a page id, one per id and at most :data:`MAX_NAME` characters.

    An id of ``[A-Za-z0-9.-]`` words joined by single ``_`` (``1594_beyer_p101.jpg``) is its own
    name. Any other id gets a readable prefix (other characters made ``_``) and 10 hex digits of
    its SHA-256 after a ``~``, which no such id contains: ``Müller/0001.png`` and
    ``Möller/0001.png``, or ``x y.png`` and ``x_y.png``, get two names, and no id is too long
    for a file system. ``__`` occurs in no name, so it can join two (explanation files).
    """
    if len(page_id) <= MAX_NAME and PLAIN_ID.fullmatch(page_id):
        return page_id
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", page_id).strip("_")[:MAX_NAME - 12].strip("_")
    digest = hashlib.sha256(page_id.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{readable}~{digest}"
