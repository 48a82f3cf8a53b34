"""CVAT for images 1.1 XML (``<annotations>`` with ``<image>`` elements holding ``<box>``es).

A box's corners are ``xtl, ytl, xbr, ybr`` (px); its label is its ``label``, or, when that is no
digit (a generic ``number``), its ``<attribute>`` named ``digit``, ``number``, ``value`` or
``text``. Other shapes (polygons, points) are counted as skipped. Problems are named by image
id and box index.
"""

from __future__ import annotations

from pathlib import Path

from annotations.importers.common import ImportedLabels, LabelCollector
from annotations.importers.safe_xml import parse_xml

LABEL_ATTRIBUTES = ("digit", "number", "value", "text")
OTHER_SHAPES = ("polygon", "polyline", "points", "ellipse", "mask", "skeleton", "cuboid")


def read_cvat(path, images_dir=None) -> ImportedLabels:
    """Boxes of a CVAT for images 1.1 XML file."""
    collector = LabelCollector(Path(path), images_dir)
    root = parse_xml(path)
    if root.tag != "annotations":
        raise ValueError(f"{path}: not a CVAT for images XML file (root <{root.tag}>, expected "
                         "<annotations>); export as 'CVAT for images 1.1'")
    if root.find("track") is not None and root.find("image") is None:
        raise ValueError(f"{path}: a CVAT for video export (tracks); export the task as "
                         "'CVAT for images 1.1'")
    for index, element in enumerate(root.iter("image")):
        name = f"image id {element.get('id', f'[{index}]')} ({element.get('name')!r})"
        image = collector.image(element.get("name"))
        if image is None:
            collector.problem(name, "no image name")
            continue
        boxes = element.findall("box")
        if not boxes:
            collector.unboxed(image)
        for shape in element:
            if shape.tag in OTHER_SHAPES:
                collector.skip("shape is not a box", shape.tag)
        for number, box in enumerate(boxes):
            corners = [box.get(key) for key in ("xtl", "ytl", "xbr", "ybr")]
            where = f"{name} box {number}"
            if None in corners:
                collector.problem(where, "box lacks one of xtl, ytl, xbr, ybr")
                continue
            if (box.get("rotation") or "0").strip().rstrip("0").rstrip(".") not in ("", "0"):
                collector.problem(where, f"box is rotated ({box.get('rotation')} degrees): draw "
                                  "upright boxes")
                continue
            collector.add(image, corners, _label(box), where)
    return collector.result()


def _label(box) -> str:
    label = (box.get("label") or "").strip()
    if label.isdigit():
        return label
    attributes = {a.get("name", "").lower(): (a.text or "").strip() for a in box.iter("attribute")}
    return next((attributes[key] for key in LABEL_ATTRIBUTES if attributes.get(key)), label)
