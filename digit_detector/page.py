"""Reading page images of any common kind into 8-bit grey arrays."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".jp2", ".j2k", ".jpx", ".webp",
                  ".gif", ".bmp")
"""File kinds read as page images (all by Pillow: one library, with EXIF orientation and
multi-page access for every kind)."""
MAX_PIXELS = 120_000_000
"""Largest page we decode (about 9000 x 13000 px, far above a 600 dpi folio scan)."""


ORIENTATION = 0x0112
"""EXIF tag of how a stored image is turned or mirrored for display."""


class PageReadError(ValueError):
    """A page that cannot be read as an image; the message names the file and the reason."""


def load_page(path: str | Path, *, frame: int = 0, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a page image (page ``frame`` of a multi-page file) as uint8 grey (H, W).

    Grey, RGB, RGBA (alpha composited on white), CMYK, palette, 16-bit (also 12 bits stored in
    16) and float images are valid pages and are converted; the EXIF orientation is applied, so
    a scan saved sideways or upside down with its orientation tag is read upright. The pixel
    count is checked before decoding, so a decompression bomb is refused without allocating it.

    Raises
    ------
    PageReadError
        Missing, empty, corrupt, non-image or too large file.
    """
    path = Path(path)
    if not path.is_file():
        raise PageReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PageReadError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(path) as image:
                if frame:
                    image.seek(frame)
                width, height = image.size
                if width * height > max_pixels:
                    raise PageReadError(
                        f"{path}: image too large to decode safely ({width} x {height} px, "
                        f"limit {max_pixels} px)"
                    )
                _keep_tiff_decoding_unturned(image)
                image.load()
                return _to_grey(ImageOps.exif_transpose(image))
    except PageReadError:
        raise
    except Image.DecompressionBombError as error:
        raise PageReadError(f"{path}: image too large to decode safely ({error})") from None
    except UnidentifiedImageError as error:
        raise PageReadError(f"{path}: not a readable image ({error.__class__.__name__})") from None
    except EOFError:
        raise PageReadError(f"{path}: has no page {frame + 1}") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise PageReadError(f"{path}: corrupt or truncated image ({error})") from None


def _keep_tiff_decoding_unturned(image: Image.Image) -> None:
    """Pillow's TIFF reader reports a page with orientation 5-8 (a quarter turn) at its turned
    size and then decodes the strips into a buffer of that size, scrambling the pixels; decoding
    at the stored size lets Pillow's own turn after decoding give the right page."""
    stored = getattr(image, "_tile_size", None)
    if image.format == "TIFF" and stored and image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):
        image._size = stored


def _to_grey(image: Image.Image) -> np.ndarray:
    """Convert any PIL mode to uint8 grey; 16-bit, 32-bit and float images are rescaled to
    0-255 by the range their values use (see :func:`_white_level`)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0,
                               neginf=0.0)
        top = _white_level(values, is_float=image.mode == "F")
        return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    grey = image.convert("L")
    return np.array(grey, dtype=np.uint8)


def _white_level(values: np.ndarray, is_float: bool) -> float:
    """The value that stands for white: 1.0 for floats in 0-1, else the largest value of the
    fewest bits (at least 8) that hold the brightest pixel, so that a 12-bit scan stored in 16
    bits is scaled by 4095, not read as a near-black page."""
    brightest = float(values.max()) if values.size else 0.0
    if is_float and brightest <= 1.0:
        return 1.0
    bits = max(8, int(np.ceil(np.log2(brightest + 1.0))))
    return float(2 ** bits - 1)
