"""The only files the review app serves: images inside the results folder (thumbnails) and
inside its corpus (the pages), found without leaving either folder (no ``..``, no absolute
paths, no symbolic link that points outside)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

SERVED_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
BROWSER_IMAGES = {".jpg", ".jpeg", ".png"}
"""Served as they are; other page images are converted to PNG (browsers do not show TIFF)."""


class FileRefused(Exception):
    """A file request that is refused; ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def contained_file(root: Path, relative: str) -> Path:
    """The real path of ``root/relative`` when it is a servable file inside ``root``.

    Raises FileRefused: 403 for a path that leaves ``root`` (also through a symbolic link) or
    a kind of file that is not served, 404 for a missing file.
    """
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        raise FileRefused(403, f"{relative!r} is not a path inside the folder")
    real_root = root.resolve()
    try:
        real = (real_root / relative).resolve()
    except (OSError, RuntimeError):
        raise FileRefused(403, f"{relative!r} cannot be read") from None
    if not real.is_relative_to(real_root):
        raise FileRefused(403, f"{relative!r} leads outside the folder; not served")
    if not real.exists():
        raise FileRefused(404, f"no file {relative!r}")
    if real.suffix.lower() not in SERVED_SUFFIXES or not real.is_file():
        raise FileRefused(403, f"{relative!r} is not a page image; not served")
    return real


def browser_image(path: Path) -> tuple[bytes | Path, str]:
    """``(content, mimetype)`` for a served file: the file itself when a browser shows it,
    else the image converted to PNG in memory."""
    suffix = path.suffix.lower()
    if suffix in BROWSER_IMAGES:
        return path, "image/png" if suffix == ".png" else "image/jpeg"
    try:
        with Image.open(path) as image:
            image.load()
            converted = image.convert("L" if image.mode in ("1", "L", "I;16", "I") else "RGB")
    except (OSError, ValueError) as error:
        raise FileRefused(415, f"{path.name} is not a readable image ({error})") from None
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"
