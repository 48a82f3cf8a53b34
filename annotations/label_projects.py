"""Label tool projects for a folder of images to label: a VIA 2 project and Label Studio tasks.

Both pre-draw the suggested boxes: VIA with an empty ``digit`` attribute to fill in (and the
detector's guess in ``suggested``), Label Studio as predictions the labeller accepts or
corrects. Read what comes back with :mod:`annotations.importers` (``tables import-labels``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd

LABEL_STUDIO_CONFIG = """<View>
  <Image name="image" value="$image" zoom="true" zoomControl="true"/>
  <RectangleLabels name="label" toName="image" strokeWidth="1">
{labels}
  </RectangleLabels>
</View>
"""
"""Label Studio labelling interface: one rectangle label per digit."""


def label_studio_config() -> str:
    """The labelling interface (XML) for Label Studio's project settings."""
    labels = "\n".join(f'    <Label value="{digit}"/>' for digit in range(10))
    return LABEL_STUDIO_CONFIG.format(labels=labels)


def label_studio_tasks(folder: Path, sizes: dict[str, tuple[int, int]],
                       boxes: pd.DataFrame) -> list[dict]:
    """Label Studio import tasks for the images ``sizes`` (file name in ``folder`` -> (width,
    height)), served as local files with the folder's parent as document root; ``boxes``
    (file, x0, y0, x1, y1, suggested, and uncertainty) become predictions."""
    tasks = []
    by_file = dict(tuple(boxes.groupby("file", sort=False)))
    for file, (width, height) in sizes.items():
        url = "/data/local-files/?d=" + quote(f"{Path(folder).name}/{file}")
        task = {"data": {"image": url}}
        group = by_file.get(file)
        if group is not None:
            task["predictions"] = [{
                "model_version": "tables suggest-labels",
                "score": float(group["uncertainty"].max()) if "uncertainty" in group else 0.0,
                "result": [_rectangle(row, width, height, index)
                           for index, row in enumerate(group.itertuples())]}]
        tasks.append(task)
    return tasks


def _rectangle(row, width: int, height: int, index: int) -> dict:
    return {"id": f"s{index}", "type": "rectanglelabels", "from_name": "label",
            "to_name": "image", "original_width": int(width), "original_height": int(height),
            "image_rotation": 0,
            "value": {"x": 100 * row.x0 / width, "y": 100 * row.y0 / height,
                      "width": 100 * (row.x1 - row.x0) / width,
                      "height": 100 * (row.y1 - row.y0) / height, "rotation": 0,
                      "rectanglelabels": [str(row.suggested)]}}


def via_project(folder: Path, files: list[str], boxes: pd.DataFrame, name: str) -> dict:
    """A VIA 2 project (Project > Load) for ``files`` in ``folder``, their images looked up in
    that folder; each box of ``boxes`` (file, x0, y0, x1, y1, suggested) is a region whose
    ``digit`` is to be filled in."""
    metadata, order = {}, []
    by_file = dict(tuple(boxes.groupby("file", sort=False)))
    for file in files:
        size = (Path(folder) / file).stat().st_size
        key = f"{file}{size}"
        group = by_file.get(file)
        regions = [] if group is None else [{
            "shape_attributes": {"name": "rect", "x": int(row.x0), "y": int(row.y0),
                                 "width": int(row.x1 - row.x0), "height": int(row.y1 - row.y0)},
            "region_attributes": {"digit": "", "suggested": str(row.suggested)}}
            for row in group.itertuples()]
        metadata[key] = {"filename": file, "size": size, "regions": regions,
                         "file_attributes": {}}
        order.append(key)
    return {
        "_via_settings": {
            "ui": {"annotation_editor_height": 25, "annotation_editor_fontsize": 0.8,
                   "leftsidebar_width": 18,
                   "image_grid": {"img_height": 80, "rshape_fill": "none",
                                  "rshape_fill_opacity": 0.3, "rshape_stroke": "yellow",
                                  "rshape_stroke_width": 2, "show_region_shape": True,
                                  "show_image_policy": "all"},
                   "image": {"region_label": "digit", "region_color": "__via_default_region_color__",
                             "region_label_font": "10px Sans",
                             "on_image_annotation_editor_placement": "NEAR_REGION"}},
            "core": {"buffer_size": 18, "filepath": {},
                     "default_filepath": str(Path(folder).resolve()) + "/"},
            "project": {"name": name}},
        "_via_img_metadata": metadata,
        "_via_attributes": {
            "region": {
                "digit": {"type": "text", "default_value": "",
                          "description": "the digit printed in the box, 0-9 (delete a box that "
                                         "holds no digit)"},
                "suggested": {"type": "text", "default_value": "",
                              "description": "the detector's guess (not imported)"}},
            "file": {}},
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": order,
    }
