"""Pages of a PDF scan: how many there are, and each one rendered as a grey image.

Rendering uses PDFium (pypdfium2, Apache/BSD licensed), the engine of the Chrome PDF viewer. A
page is rendered at a set resolution so that the digits of a PDF have the size they have in the
scan it was made from.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from digit_detector.page import MAX_PIXELS, PageReadError

DEFAULT_PDF_DPI = 300
"""Rendering resolution of PDF pages (dots per inch): that of a typical library scan."""
POINTS_PER_INCH = 72


def pdf_page_count(path: str | Path) -> int:
    """Number of pages of the PDF at ``path``; raises :class:`PageReadError` when it cannot be
    opened (damaged, encrypted, not a PDF)."""
    with _open(path) as document:
        return len(document)


def render_pdf_page(path: str | Path, index: int, dpi: int = DEFAULT_PDF_DPI,
                    max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Page ``index`` (0-based) of the PDF at ``path`` as uint8 grey (H, W) at ``dpi``.

    The rendered size is checked before rendering, so a page declared huge is refused without
    allocating it.
    """
    with _open(path) as document:
        if not 0 <= index < len(document):
            raise PageReadError(f"{path}: has no page {index + 1}")
        page = document[index]
        width, height = page.get_size()
        columns, rows = (max(1, round(side * dpi / POINTS_PER_INCH)) for side in (width, height))
        pixels = columns * rows
        if pixels > max_pixels:
            raise PageReadError(f"{path}: page {index + 1} too large to render at {dpi} dpi "
                                f"({pixels} px, limit {max_pixels} px)")
        # PDFium rounds the rendered size up: a scale a hair below the exact one keeps a page of
        # 320 px at 150 dpi (153.6 pt, stored as 153.600006) at 320 px instead of 321
        scale = min(columns / width, rows / height) * (1 - 1e-6)
        bitmap = page.render(scale=scale, grayscale=True, fill_color=(255, 255, 255, 255))
        grey = bitmap.to_numpy()
        return np.ascontiguousarray(grey[..., 0] if grey.ndim == 3 else grey, dtype=np.uint8)


@contextmanager
def _open(path: str | Path):
    """The PDF at ``path`` opened by PDFium, closed afterwards; any PDFium error while it is
    open becomes a :class:`PageReadError` naming the file."""
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(Path(path))
    except pypdfium2.PdfiumError as error:
        raise PageReadError(f"{path}: not a readable PDF ({error})") from None
    try:
        yield document
    except pypdfium2.PdfiumError as error:
        raise PageReadError(f"{path}: damaged PDF ({error})") from None
    finally:
        document.close()
