"""VGG Image Annotator (VIA 1.x / 2.x): its CSV export, JSON export and saved project JSON.

A region's box is its ``rect`` shape (a polygon or polyline counts by its bounding box); its
label is the region attribute named ``digit`` (else ``number``, ``label``, ``class``, ``text``,
``name``, ``type``, else the only attribute). A checkbox attribute counts when exactly one
option is ticked. Images are looked up by file name from the label file's folder; images with
no region are listed as unboxed (not used).
"""

from __future__ import annotations

import json
from pathlib import Path

from annotations.importers.common import ImportedLabels, LabelCollector, read_json
from corpus_tools.metadata import read_csv_rows

LABEL_ATTRIBUTES = ("digit", "number", "label", "class", "text", "name", "type")
"""Region attributes read as the label, in this order."""
CSV_COLUMNS = ("region_shape_attributes", "region_attributes")


def is_via_csv(header: list[str]) -> bool:
    """Whether a CSV header is that of VIA's CSV export."""
    return set(CSV_COLUMNS) <= set(header)


def via_images(data) -> dict | None:
    """The image records of a VIA JSON export or project (None: not VIA)."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("_via_img_metadata"), dict):
        return data["_via_img_metadata"]
    records = list(data.values())
    if records and all(isinstance(r, dict) and "filename" in r and "regions" in r
                       for r in records):
        return data
    return None


def read_via_csv(path, images_dir=None) -> ImportedLabels:
    """Boxes of a VIA CSV export (one row per region; problems named by line)."""
    collector = LabelCollector(Path(path), images_dir)
    notes = []
    header, rows = read_csv_rows(Path(path), notes)
    collector.imported.problems += notes
    if not is_via_csv(header):
        raise ValueError(f"{path}: not a VIA CSV export (no columns {', '.join(CSV_COLUMNS)})")
    for line, row in rows:
        image = collector.image(row.get("filename") or row.get("#filename"))
        if image is None:
            collector.problem(line, "no file name")
            continue
        try:
            shape = _json_cell(row.get("region_shape_attributes", ""), "region_shape_attributes")
            attributes = _json_cell(row.get("region_attributes", ""), "region_attributes")
        except ValueError as error:
            collector.problem(line, str(error))
            continue
        if not shape and row.get("region_count", "") in ("", "0"):
            collector.unboxed(image)
            continue
        _add_region(collector, image, shape, attributes, line)
    return collector.result()


def read_via_json(path, images_dir=None) -> ImportedLabels:
    """Boxes of a VIA JSON export or saved project (problems named by image and region)."""
    collector = LabelCollector(Path(path), images_dir)
    images = via_images(read_json(path))
    if images is None:
        raise ValueError(f"{path}: not a VIA JSON export or project (no image records with "
                         "'filename' and 'regions')")
    for key, record in images.items():
        if not isinstance(record, dict):
            collector.problem(f"image {key!r}", "not an image record")
            continue
        image = collector.image(record.get("filename"))
        if image is None:
            collector.problem(f"image {key!r}", "no file name")
            continue
        regions = record.get("regions") or []
        if isinstance(regions, dict):  # VIA 1.x: regions keyed "0", "1", ...
            regions = list(regions.values())
        if not isinstance(regions, list):
            collector.problem(f"image {key!r}", "'regions' is not a list")
            continue
        if not regions:
            collector.unboxed(image)
        for index, region in enumerate(regions):
            where = f"image {record.get('filename')!r} region {index}"
            if not isinstance(region, dict):
                collector.problem(where, "not a region record")
                continue
            _add_region(collector, image, region.get("shape_attributes"),
                        region.get("region_attributes"), where)
    return collector.result()


def _json_cell(text: str, column: str) -> dict:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{column} is not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{column} is not a JSON object")
    return value


def _add_region(collector: LabelCollector, image: str, shape, attributes, where) -> None:
    try:
        box = region_box(shape)
        label = region_label(attributes)
    except ValueError as error:
        collector.problem(where, str(error))
        return
    if box is None:
        collector.skip("shape is not a box", str(shape.get("name", "")))
        return
    collector.add(image, box, label, where)


def region_box(shape) -> tuple | None:
    """``(x0, y0, x1, y1)`` of a VIA shape (None for a point, circle or ellipse)."""
    if not isinstance(shape, dict) or not shape:
        raise ValueError("region has no shape")
    name = shape.get("name")
    try:
        if name == "rect":
            x, y = shape["x"], shape["y"]
            return x, y, _plus(x, shape["width"]), _plus(y, shape["height"])
        if name in ("polygon", "polyline"):
            xs, ys = shape["all_points_x"], shape["all_points_y"]
            return min(xs), min(ys), max(xs), max(ys)
    except KeyError as error:
        raise ValueError(f"{name} shape lacks {error.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{name} shape has coordinates that are not numbers: {shape}") from None
    return None


def _plus(start, size):
    try:
        return float(start) + float(size)
    except (TypeError, ValueError):
        raise ValueError(f"box {start!r} + {size!r} is not a number") from None


def region_label(attributes):
    """The label of a region's attributes (see the module docstring); '' when unlabelled."""
    if not isinstance(attributes, dict):
        raise ValueError("region_attributes is not an object")
    name = next((key for key in LABEL_ATTRIBUTES if key in attributes), None)
    if name is None and len(attributes) > 1:
        raise ValueError(f"cannot tell which region attribute is the label among "
                         f"{sorted(attributes)}: name it 'digit'")
    value = attributes.get(name, "") if name else next(iter(attributes.values()), "")
    if isinstance(value, dict):  # checkbox: {"3": true}
        ticked = [option for option, on in value.items() if on]
        if len(ticked) > 1:
            raise ValueError(f"several options ticked: {ticked}")
        value = ticked[0] if ticked else ""
    return value
