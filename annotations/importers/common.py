"""What every importer shares: the collected boxes, label and coordinate checks, image lookup.

An importer walks its file and hands each box to :class:`LabelCollector` with the image it is on
and *where* it is in the file (a CSV line number, or text such as ``"annotation id 7"``). The
collector turns digit and number labels into digit boxes, counts boxes whose label is no digit
(reported once, with the count) and records every bad box as a problem naming its place.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pandas as pd

from annotations.formats import (
    BOX_COLUMNS,
    AnnotationProblem,
    _label,
    digit_boxes,
    problem_at,
)

LABEL_STUDIO_UPLOAD = re.compile(r"^[0-9a-f]{8}-")
"""Prefix Label Studio puts before the name of an uploaded file (``/data/upload/3/1a2b3c4d-p1.png``)."""
SKIPPED_SHOWN = 5
"""Non-digit labels named one by one in the summary (the rest are counted)."""


@dataclass
class ImportedLabels:
    """Boxes read from a label tool's file.

    ``boxes``: one row per digit, columns image (absolute path), x0, y0, x1, y1 (int px, x1 / y1
    exclusive), digit (int) and where (CSV line, or the object's place in a JSON / XML file).
    ``negatives``: images the file marks as checked and holding no digit. ``problems``: bad boxes
    and objects, each named. ``skipped``: boxes left out on purpose (label no digit, shape no
    box), counted by reason. ``unboxed``: images the file lists with no box at all (not used).
    """

    source: str
    boxes: pd.DataFrame
    negatives: list[str] = field(default_factory=list)
    problems: list[AnnotationProblem] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    unboxed: list[str] = field(default_factory=list)

    def skipped_problems(self) -> list[AnnotationProblem]:
        """The skipped boxes as whole-file notes (one line per reason, with the count)."""
        return [AnnotationProblem(self.source, None, line) for line in self.skipped_lines()]

    def skipped_lines(self) -> list[str]:
        """``"12 boxes skipped: label is not a digit ('x' 10, 'table' 2)"``-style lines."""
        by_reason: dict[str, Counter] = {}
        for (reason, detail), count in self.skipped.items():
            by_reason.setdefault(reason, Counter())[detail] += count
        lines = []
        for reason, details in sorted(by_reason.items()):
            shown = [f"{detail!r} {count}" for detail, count in details.most_common(SKIPPED_SHOWN)
                     if detail]
            more = len(details) - SKIPPED_SHOWN
            listed = ", ".join(shown) + (f", {more} more" if more > 0 else "")
            lines.append(f"{sum(details.values())} boxes skipped: {reason}"
                         + (f" ({listed})" if shown else ""))
        return lines


class LabelCollector:
    """Collects the boxes of one label file (see the module docstring)."""

    def __init__(self, source: Path, images_dir: Path | None = None):
        self.source = str(source)
        self.base = Path(images_dir) if images_dir is not None else Path(source).parent
        self.records: list[tuple] = []
        self.imported = ImportedLabels(self.source, pd.DataFrame())

    def problem(self, where, reason: str) -> None:
        """Report a bad object at ``where``."""
        self.imported.problems.append(problem_at(self.source, where, reason))

    def skip(self, reason: str, detail: str = "") -> None:
        """Count a box left out on purpose (``detail``: e.g. the label, shown in the summary)."""
        self.imported.skipped[(reason, detail)] += 1

    def image(self, reference) -> str | None:
        """The absolute path of an image named in the file (None, reported by the caller, when
        the name is empty or unusable)."""
        return resolve_image(reference, self.base)

    def add(self, image: str, box, label, where) -> None:
        """Add the box ``(x0, y0, x1, y1)`` (numbers, page px) labelled ``label`` on ``image``."""
        text = _label(str(label)) if label is not None and not isinstance(label, bool) else ""
        if not text:
            self.skip("no label")
            return
        if not text.isdigit() or not text.isascii():
            self.skip("label is not a digit", str(label).strip())
            return
        try:
            pixels = tuple(whole_pixels(value) for value in box)
            found = digit_boxes(pixels, text)
        except ValueError as error:
            self.problem(where, str(error))
            return
        self.records += [(image, *digit_box, where) for digit_box in found]

    def negative(self, image: str) -> None:
        """An image the file marks as checked and holding no digit."""
        self.imported.negatives.append(image)

    def unboxed(self, image: str) -> None:
        """An image the file lists without any box (not used for training)."""
        self.imported.unboxed.append(image)

    def result(self) -> ImportedLabels:
        """The collected boxes, problems and counts."""
        boxes = pd.DataFrame(self.records, columns=[*BOX_COLUMNS, "where"])
        self.imported.boxes = boxes.astype({"x0": int, "y0": int, "x1": int, "y1": int,
                                            "digit": int})
        return self.imported


def whole_pixels(value) -> int:
    """A coordinate from a label file rounded to whole pixels (``ValueError`` if no number)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"coordinate {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"coordinate {value!r} is not a finite number")
    return int(math.floor(number + 0.5))


def resolve_image(reference, base: Path) -> str | None:
    """Absolute path of an image named in a label file, looked up from ``base`` (the label
    file's folder): the path as given (relative to ``base``), else its shorter and shorter
    trailing parts (``C:/scans/book/p1.png``: ``scans/book/p1.png``, ``book/p1.png``,
    ``p1.png``), else the file name without Label Studio's upload prefix. A URL counts by its
    path (``/data/local-files/?d=folder/p1.png`` by ``d``). Not found: the path as given (the
    caller's image check reports it). None for an empty name or one holding a NUL byte."""
    text = str(reference or "").strip()
    if not text or "\x00" in text:
        return None
    if "://" in text or text.startswith("/data/"):
        parsed = urlparse(text)
        local = parse_qs(parsed.query).get("d")
        text = local[0] if local else unquote(parsed.path)
    parts = [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts:
        return None
    candidates = [base / text] + [base.joinpath(*parts[k:]) for k in range(1, len(parts))]
    candidates.append(base / LABEL_STUDIO_UPLOAD.sub("", parts[-1]))
    found = next((path for path in candidates if path.is_file()), candidates[0])
    return str(found.resolve())


def read_json(path: Path):
    """A JSON label file, ``ValueError`` naming the file and the place of a syntax error."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read ({error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: "
                         f"{error.msg}); export the file again from the label tool") from None
