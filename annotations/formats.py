"""Read and validate digit annotations in the formats of the design (section 3).

Formats, detected from the path:

* **patch set**: a folder of small images and one CSV (``patches.csv``, or the only CSV there)
  with one row per digit (``file, x0, y0, x1, y1, digit``) or per number box
  (``..., number``, or ``xywh`` instead of the four corners); a row with a file and no label and
  no box marks a negative image (no digit at all);
* **page-level number boxes** like the Sphaera corpus (``page_id, xywh, number``): a box around
  a whole number, its digits split evenly across the box width;
* **page-level digit boxes** (``page_id, x0, y0, x1, y1, digit``, or ``xywh`` with a digit
  label such as ``^1`` / ``0$`` as in the Sphaera digit annotations);
* a **synthetic corpus folder** (``truth/digits.csv``; pages without digits are negatives);
* a label tool's export (VIA CSV or JSON, COCO JSON, Label Studio JSON, CVAT XML, PAGE-XML), read
  by :mod:`annotations.importers`.

Coordinates are full-resolution pixels of the image, x1 / y1 exclusive. Images are looked up
beside the CSV (or in ``images_dir``); a URL page id is looked up by its file name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image

from corpus_tools.metadata import FileProblem, read_csv_rows
from corpus_tools.storage import csv_cell_text

#: A problem with an annotation file or one of its rows; ``str()`` gives ``file:line: reason``.
AnnotationProblem = FileProblem

BOX_COLUMNS = ("image", "x0", "y0", "x1", "y1", "digit")
FILE_COLUMNS = ("file", "page_id_", "page_id", "image")
LABEL_COLUMNS = ("digit", "number", "element_label")


@dataclass
class AnnotationSet:
    """Digit boxes ready for training.

    ``boxes``: one row per digit with image (absolute path, str), x0, y0, x1, y1 (int pixels,
    x1 / y1 exclusive) and digit (int 0-9). ``negatives``: images with no digit at all.
    ``problems``: every row or image that was left out, with the reason.
    """

    boxes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(BOX_COLUMNS)))
    negatives: list[Path] = field(default_factory=list)
    problems: list[AnnotationProblem] = field(default_factory=list)


def detect_format(path) -> str:
    """``"synthetic-corpus"``, ``"patch-set"``, ``"page-boxes"`` or a label tool's format
    (``"via-csv"``, ``"via-json"``, ``"coco"``, ``"label-studio"``, ``"cvat"``, ``"page-xml"``,
    see :mod:`annotations.importers`) for ``path``.

    Raises ``ValueError`` when the path is none of them.
    """
    from annotations.importers import detect_label_format

    path = Path(path)
    if path.is_dir():
        if (path / "truth" / "digits.csv").is_file():
            return "synthetic-corpus"
        _patch_csv(path)
        return "patch-set"
    if not path.exists():
        raise ValueError(f"{path}: not found")
    tool_format = detect_label_format(path) if path.is_file() else None
    if tool_format is not None:
        return tool_format
    if path.is_file() and path.suffix.lower() == ".csv":
        return "page-boxes"
    raise ValueError(f"{path}: not a CSV file, label tool export (VIA, COCO, Label Studio, CVAT, "
                     "PAGE-XML), patch-set folder or synthetic corpus folder")


def _patch_csv(folder: Path) -> Path:
    if (folder / "patches.csv").is_file():
        return folder / "patches.csv"
    found = sorted(folder.glob("*.csv"))
    if len(found) != 1:
        raise ValueError(f"{folder}: a patch-set folder needs patches.csv or exactly one CSV "
                         f"file (found {len(found)})")
    return found[0]


def _label(text: str) -> str:
    """Digits of a label: markers ``^`` / ``$`` and a ``.0`` float suffix removed."""
    text = text.strip().strip("^$").strip()
    return re.sub(r"\.0+$", "", text)


def _box(row: dict) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) from corner or ``xywh`` columns; None when the row has no box."""
    if row.get("xywh", "").strip():
        parts = [p for p in row["xywh"].replace(" ", "").split(",") if p]
        if len(parts) != 4:
            raise ValueError(f"xywh {row['xywh']!r} needs four numbers")
        x, y, w, h = (_integer(p) for p in parts)
        return x, y, x + w, y + h
    corners = [row.get(name, "").strip() for name in ("x0", "y0", "x1", "y1")]
    if not any(corners):
        return None
    if not all(corners):
        raise ValueError("box needs all of x0, y0, x1, y1")
    x0, y0, x1, y1 = (_integer(p) for p in corners)
    return x0, y0, x1, y1


def _integer(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value != round(value):
        raise ValueError(f"{text!r} is not a whole number of pixels")
    return int(value)


def split_number_box(box, digits: str) -> list[tuple[int, int, int, int]]:
    """Split a number box evenly across its width into one box per digit (integer pixels)."""
    x0, y0, x1, y1 = box
    count = len(digits)
    edges = [x0 + round(k * (x1 - x0) / count) for k in range(count + 1)]
    return [(edges[k], y0, edges[k + 1], y1) for k in range(count)]


def digit_boxes(box, label: str) -> list[tuple[int, int, int, int, int]]:
    """``(x0, y0, x1, y1, digit)`` for each digit of a digit or number ``label`` in ``box``
    (a number box is split evenly across its width); ``ValueError`` saying what is wrong when
    the label is no digit string or the box cannot hold it."""
    if not label.isdigit() or not label.isascii():
        raise ValueError(f"label {label!r} is not a digit or number")
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0:
        raise ValueError(f"box {x0},{y0},{x1},{y1} starts outside the image")
    if x1 - x0 < len(label) or y1 <= y0:
        raise ValueError(f"box {x0},{y0},{x1},{y1} is too small for {label!r}")
    return [(*digit_box, int(digit))
            for digit, digit_box in zip(label, split_number_box(box, label), strict=True)]


def problem_at(source: str, where, reason: str) -> AnnotationProblem:
    """A problem at ``where``: a CSV line (int), an object of a JSON or XML file (text such as
    ``"annotation id 7"``, put before the reason) or None (the whole file)."""
    if where is None or isinstance(where, int):
        return AnnotationProblem(source, where, reason)
    return AnnotationProblem(source, None, f"{where}: {reason}")


def _image_path(row: dict) -> str | None:
    for name in FILE_COLUMNS:
        value = csv_cell_text(row.get(name, "").strip())
        if value:
            if "://" in value:
                value = value.rstrip("/").rsplit("/", 1)[-1]
            return value
    return None


def read_box_csv(csv_path, images_dir=None) -> tuple[pd.DataFrame, list[str],
                                                      list[AnnotationProblem]]:
    """Parse every row of a box CSV (any of the formats), without opening images.

    Returns the digit boxes (image path as given, joined to ``images_dir`` or the CSV's folder;
    ``line`` column = CSV line), the image paths of negative rows and one problem per bad row.
    Raises ``ValueError`` when the file cannot be read or lacks the needed columns.
    """
    csv_path = Path(csv_path)
    base = Path(images_dir) if images_dir is not None else csv_path.parent
    unreadable: list[AnnotationProblem] = []  # rows the CSV reader cannot take, by line
    header, rows = read_csv_rows(csv_path, unreadable)
    if not any(name in header for name in FILE_COLUMNS):
        raise ValueError(f"{csv_path}: no image column (one of {', '.join(FILE_COLUMNS)})")
    if not any(name in header for name in LABEL_COLUMNS):
        raise ValueError(f"{csv_path}: no label column (one of {', '.join(LABEL_COLUMNS)})")
    if "xywh" not in header and not {"x0", "y0", "x1", "y1"} <= set(header):
        raise ValueError(f"{csv_path}: no box columns (xywh, or x0, y0, x1, y1)")
    records, negatives, problems = [], [], unreadable
    for line, row in rows:
        image = _image_path(row)
        if image is None:
            problems.append(AnnotationProblem(str(csv_path), line, "no image name"))
            continue
        if "\x00" in image:
            problems.append(AnnotationProblem(str(csv_path), line, "image name holds a NUL byte"))
            continue
        image = str((base / image).resolve())
        label = next((_label(row[name]) for name in LABEL_COLUMNS if row.get(name, "").strip()),
                     "")
        try:
            box = _box(row)
            if box is None and not label:
                negatives.append(image)
                continue
            if box is None:
                raise ValueError(f"label {label!r} has no box")
            if not label:
                raise ValueError("box has no digit or number label")
            found = digit_boxes(box, label)
        except ValueError as error:
            problems.append(AnnotationProblem(str(csv_path), line, str(error)))
            continue
        records += [(image, *digit_box, line) for digit_box in found]
    boxes = pd.DataFrame(records, columns=[*BOX_COLUMNS, "line"])
    return boxes, negatives, problems


def _check_images(boxes: pd.DataFrame, negatives: list[str], source: str
                  ) -> tuple[pd.DataFrame, list[Path], list[AnnotationProblem]]:
    """Drop boxes and negatives whose image is missing or unreadable, or boxes outside it."""
    problems, sizes = [], {}
    first_line = boxes.groupby("image")["line"].first().to_dict() if len(boxes) else {}
    for image in sorted(set(boxes["image"]) | set(negatives)):
        if not Path(image).is_file():
            problems.append(problem_at(source, first_line.get(image),
                                       f"image not found: {image}"))
            continue
        try:
            with Image.open(image) as opened:
                sizes[image] = opened.size
        except (OSError, ValueError) as error:
            problems.append(problem_at(source, first_line.get(image),
                                       f"image not readable: {image} ({error})"))
    known = boxes["image"].isin(list(sizes))
    width = boxes["image"].map(lambda name: sizes.get(name, (0, 0))[0])
    height = boxes["image"].map(lambda name: sizes.get(name, (0, 0))[1])
    outside = known & ((boxes["x1"] > width) | (boxes["y1"] > height))
    for _, row in boxes[outside].iterrows():
        where = row["line"] if isinstance(row["line"], str) else int(row["line"])
        problems.append(problem_at(
            source, where, f"box {row.x0},{row.y0},{row.x1},{row.y1} extends beyond "
            f"the image ({sizes[row['image']][0]} x {sizes[row['image']][1]} px)"))
    kept = boxes[known & ~outside].drop(columns="line").reset_index(drop=True)
    kept = kept.astype({"x0": int, "y0": int, "x1": int, "y1": int, "digit": int})
    return kept, [Path(name) for name in negatives if name in sizes], problems


def load_annotations(path, images_dir=None) -> AnnotationSet:
    """Load digit annotations from ``path``, detecting the format (see the module docstring).

    Bad rows and missing images are reported in ``problems`` and left out; the rest is loaded.
    Raises ``ValueError`` (one line, naming the file) when the path is no annotation file at all.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "synthetic-corpus":
        csv_path = path / "truth" / "digits.csv"
        boxes, negatives, problems = read_box_csv(csv_path, path)
        pages_csv = path / "truth" / "pages.csv"
        if pages_csv.is_file():
            _, page_rows = read_csv_rows(pages_csv)
            with_digits = set(boxes["image"])
            negatives = [str((path / row["page_id"]).resolve()) for _, row in page_rows
                         if str((path / row["page_id"]).resolve()) not in with_digits]
    elif kind in ("patch-set", "page-boxes"):
        csv_path = _patch_csv(path) if kind == "patch-set" else path
        boxes, negatives, problems = read_box_csv(csv_path, images_dir)
    else:
        from annotations.importers import import_labels

        csv_path = path
        imported = import_labels(path, kind, images_dir)
        boxes, negatives = imported.boxes.rename(columns={"where": "line"}), imported.negatives
        problems = imported.problems + imported.skipped_problems()
    kept, negative_paths, image_problems = _check_images(boxes, negatives, str(csv_path))
    return AnnotationSet(kept, negative_paths, problems + image_problems)


def validate(path, images_dir=None) -> list[AnnotationProblem]:
    """Every problem of an annotation file or folder (empty list: all good)."""
    try:
        return load_annotations(path, images_dir).problems
    except ValueError as error:
        return [AnnotationProblem(str(path), None, str(error).removeprefix(f"{path}: "))]
