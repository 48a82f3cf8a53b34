"""Write digit annotations in the three formats that :func:`annotations.load_annotations` reads.

All writers take plain DataFrames with integer pixel boxes (x1 / y1 exclusive) and write CSV
through the ``csv`` module, so commas and quotes in names are quoted properly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def write_digit_boxes(path, boxes: pd.DataFrame) -> Path:
    """Page-level digit boxes: columns page_id, x0, y0, x1, y1, digit (extra columns kept)."""
    return _write(boxes, Path(path))


def write_number_boxes(path, numbers: pd.DataFrame) -> Path:
    """Page-level number boxes in the Sphaera layout: page_id, xywh (``"x,y,w,h"``), number.

    ``numbers`` has page_id, x0, y0, x1, y1 and number (the digits as text, e.g. ``"05"``).
    """
    xywh = [f"{r.x0},{r.y0},{r.x1 - r.x0},{r.y1 - r.y0}" for r in numbers.itertuples()]
    frame = pd.DataFrame({"page_id": numbers["page_id"], "xywh": xywh,
                          "number": numbers["number"].astype(str)})
    return _write(frame, Path(path))


def write_patch_set(folder, images: dict[str, np.ndarray], boxes: pd.DataFrame,
                    extra: pd.DataFrame | None = None) -> Path:
    """A patch-set folder: each image as ``folder/<name>`` (PNG by its name) and ``patches.csv``.

    ``boxes`` has file, x0, y0, x1, y1, digit; images without a box are written as negative
    rows (file only). ``extra`` (indexed by file name) adds columns such as the typeface.
    Returns the CSV path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(folder / name)
    negatives = sorted(set(images) - set(boxes["file"]))
    rows = pd.concat([boxes, pd.DataFrame({"file": negatives})], ignore_index=True)
    for column in ("x0", "y0", "x1", "y1", "digit"):
        rows[column] = rows[column].astype("Int64")
    if extra is not None:
        rows = rows.join(extra, on="file")
    return _write(rows, folder / "patches.csv")
