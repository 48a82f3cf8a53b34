"""COCO object detection JSON (``images``, ``annotations``, ``categories``).

A box is an annotation's ``bbox`` ``[x, y, width, height]``; its label is the name of its
category (``"3"``, or a number such as ``"27"``). Problems are named by annotation id.
"""

from __future__ import annotations

from pathlib import Path

from annotations.importers.common import ImportedLabels, LabelCollector, read_json


def is_coco(data) -> bool:
    """Whether parsed JSON is a COCO file."""
    return isinstance(data, dict) and isinstance(data.get("images"), list) \
        and isinstance(data.get("annotations"), list)


def read_coco(path, images_dir=None) -> ImportedLabels:
    """Boxes of a COCO JSON file."""
    collector = LabelCollector(Path(path), images_dir)
    data = read_json(path)
    if not is_coco(data):
        raise ValueError(f"{path}: not a COCO file (needs 'images' and 'annotations' lists)")
    categories = {c.get("id"): c.get("name", "") for c in data.get("categories") or []
                  if isinstance(c, dict)}
    images = {}
    for index, record in enumerate(data["images"]):
        where = f"images[{index}]"
        if not isinstance(record, dict) or "id" not in record:
            collector.problem(where, "image record without an id")
            continue
        image = collector.image(record.get("file_name"))
        if image is None:
            collector.problem(f"image id {record['id']}", "no file_name")
            continue
        images[record["id"]] = image
    boxed = set()
    for index, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict):
            collector.problem(f"annotations[{index}]", "not an annotation object")
            continue
        where = (f"annotation id {annotation['id']}" if "id" in annotation
                 else f"annotations[{index}]")
        image = images.get(annotation.get("image_id"))
        if image is None:
            collector.problem(where, f"image_id {annotation.get('image_id')!r} names no image "
                              "of 'images'")
            continue
        if annotation.get("category_id") not in categories:
            collector.problem(where, f"category_id {annotation.get('category_id')!r} names no "
                              "category of 'categories'")
            continue
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            collector.problem(where, f"bbox {bbox!r} is not [x, y, width, height]")
            continue
        boxed.add(image)
        try:
            x, y, width, height = (float(value) for value in bbox)
        except (TypeError, ValueError):
            collector.problem(where, f"bbox {bbox!r} holds something that is not a number")
            continue
        collector.add(image, (x, y, x + width, y + height),
                      categories[annotation["category_id"]], where)
    for image in images.values():
        if image not in boxed:
            collector.unboxed(image)
    return collector.result()
