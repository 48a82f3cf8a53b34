"""Label Studio's JSON export of rectangle labels (Export > JSON).

Each task's last annotation that was not cancelled counts (earlier ones are counted as
skipped). A region is a ``rectanglelabels`` (or ``rectangle``) result whose ``x``, ``y``,
``width``, ``height`` are percent of ``original_width`` / ``original_height`` (read from the
image when missing); its label is its rectangle label, or the text of a ``textarea`` / the
choice of a ``choices`` result with the same region id (a transcribed number). A submitted
annotation with no region marks its image as holding no digit. Problems are named by task and
result id.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from annotations.importers.common import ImportedLabels, LabelCollector, read_json

BOX_TYPES = ("rectanglelabels", "rectangle")
TEXT_TYPES = {"textarea": "text", "choices": "choices", "labels": "labels"}


def is_label_studio(data) -> bool:
    """Whether parsed JSON is a Label Studio export (a list of tasks with ``data``)."""
    return isinstance(data, list) and bool(data) and all(
        isinstance(task, dict) and isinstance(task.get("data"), dict) for task in data)


def read_label_studio(path, images_dir=None) -> ImportedLabels:
    """Boxes of a Label Studio JSON export."""
    collector = LabelCollector(Path(path), images_dir)
    data = read_json(path)
    if not is_label_studio(data):
        raise ValueError(f"{path}: not a Label Studio JSON export (a list of tasks, each with "
                         "'data'); export with Export > JSON (not JSON-MIN or CSV)")
    for index, task in enumerate(data):
        task_name = f"task id {task['id']}" if "id" in task else f"task [{index}]"
        image = collector.image(_image_reference(task["data"]))
        if image is None:
            collector.problem(task_name, "names no image in 'data'")
            continue
        done = [a for a in task.get("annotations") or []
                if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            collector.unboxed(image)
            continue
        for _ in done[:-1]:
            collector.skip("earlier annotation of a task annotated more than once (the last "
                           "one counts)")
        annotation = done[-1]
        results = annotation.get("result") or []
        if not isinstance(results, list):
            collector.problem(task_name, "annotation 'result' is not a list")
            continue
        if not results:
            collector.negative(image)
            continue
        _add_results(collector, image, results, f"{task_name} annotation id "
                     f"{annotation.get('id', '?')}")
    return collector.result()


def _image_reference(data: dict):
    """The task's image: ``data.image``, else the only value that names a file."""
    if "image" in data:
        return data["image"]
    texts = [value for value in data.values() if isinstance(value, str) and "." in value]
    return texts[0] if len(texts) == 1 else None


def _add_results(collector: LabelCollector, image: str, results: list, annotation: str) -> None:
    regions, texts = {}, {}
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            collector.problem(f"{annotation} result [{index}]", "not a result object")
            continue
        key = result.get("id", f"[{index}]")
        if result.get("type") in BOX_TYPES:
            regions[key] = result
        elif result.get("type") in TEXT_TYPES:
            values = (result.get("value") or {}).get(TEXT_TYPES[result["type"]]) or [""]
            texts[key] = values[0] if isinstance(values, list) else values
        else:
            collector.skip("result is not a rectangle", str(result.get("type", "")))
    for key, result in regions.items():
        where = f"{annotation} result id {key}"
        value = result.get("value")
        if not isinstance(value, dict):
            collector.problem(where, "result has no 'value'")
            continue
        if value.get("rotation"):
            collector.problem(where, f"box is rotated by {value['rotation']} degrees: draw "
                              "upright boxes")
            continue
        try:
            box = _pixel_box(value, result, image)
        except ValueError as error:
            collector.problem(where, str(error))
            continue
        labels = value.get("rectanglelabels") or [texts.get(key, "")]
        if len(labels) > 1:
            collector.problem(where, f"several labels {labels} on one box")
            continue
        collector.add(image, box, texts.get(key) or labels[0], where)


def _pixel_box(value: dict, result: dict, image: str) -> tuple[float, float, float, float]:
    """The box in image px from Label Studio's percent coordinates."""
    try:
        x, y, w, h = (float(value[name]) for name in ("x", "y", "width", "height"))
    except KeyError as error:
        raise ValueError(f"box lacks {error.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError("box coordinates are not numbers") from None
    width, height = result.get("original_width"), result.get("original_height")
    if not width or not height:
        try:
            with Image.open(image) as opened:
                width, height = opened.size
        except (OSError, ValueError):
            raise ValueError("no original_width / original_height and the image cannot be "
                             f"read to measure it: {image}") from None
    sx, sy = float(width) / 100, float(height) / 100
    return x * sx, y * sy, (x + w) * sx, (y + h) * sy
