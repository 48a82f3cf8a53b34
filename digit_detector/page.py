"""Reading page images of any common kind into 8-bit grey arrays."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 120_000_000
"""Largest page we decode (about 9000 x 13000 px, far above a 600 dpi folio scan)."""


class PageReadError(ValueError):
    """A page that cannot be read as an image; the message names the file and the reason."""


def load_page(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a page image as uint8 grey (H, W), ink dark and paper light.

    Grey, RGB, RGBA (alpha composited on white), CMYK, palette and 16-bit images are valid
    pages and are converted. The pixel count is checked before decoding, so a decompression bomb
    is refused without allocating it.

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
                width, height = image.size
                if width * height > max_pixels:
                    raise PageReadError(
                        f"{path}: image too large to decode safely ({width} x {height} px, "
                        f"limit {max_pixels} px)"
                    )
                image.load()
                return _to_grey(image)
    except PageReadError:
        raise
    except Image.DecompressionBombError as error:
        raise PageReadError(f"{path}: image too large to decode safely ({error})") from None
    except UnidentifiedImageError as error:
        raise PageReadError(f"{path}: not a readable image ({error.__class__.__name__})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise PageReadError(f"{path}: corrupt or truncated image ({error})") from None


def _to_grey(image: Image.Image) -> np.ndarray:
    """Convert any PIL mode to uint8 grey; 16-bit and float images are rescaled to 0-255."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    grey = image.convert("L")
    return np.array(grey, dtype=np.uint8)
