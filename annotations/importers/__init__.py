"""Importers of a historian's labels made in a label tool, one module per tool.

Every importer returns :class:`~annotations.importers.common.ImportedLabels`: digit boxes (a
number label split per digit), the images marked as holding no digit, every bad box or object
named by its CSV line or its id in the file (and left out; the rest is kept), and the boxes
skipped on purpose (label no digit, shape no box), counted.
"""

from __future__ import annotations

from pathlib import Path

from annotations.importers.coco import is_coco, read_coco
from annotations.importers.common import ImportedLabels, read_json
from annotations.importers.cvat import read_cvat
from annotations.importers.label_studio import is_label_studio, read_label_studio
from annotations.importers.page_xml import read_page_xml
from annotations.importers.safe_xml import local_name, parse_xml
from annotations.importers.via import is_via_csv, read_via_csv, read_via_json, via_images
from corpus_tools.metadata import read_csv_rows

READERS = {
    "via-csv": read_via_csv,
    "via-json": read_via_json,
    "coco": read_coco,
    "label-studio": read_label_studio,
    "cvat": read_cvat,
    "page-xml": read_page_xml,
}
"""Format name -> reader (``path, images_dir=None`` -> ImportedLabels)."""
FORMATS = tuple(READERS)


def detect_label_format(path) -> str | None:
    """The label tool format of the file ``path`` from its extension and content, or None when
    it is none of :data:`FORMATS` (a plain CSV, for instance). Raises ``ValueError`` for a
    ``.json`` or ``.xml`` file that cannot be read or is of no known tool."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            header, _ = read_csv_rows(path)
        except ValueError:
            return None
        return "via-csv" if is_via_csv(header) else None
    if suffix == ".json":
        data = read_json(path)
        if is_coco(data):
            return "coco"
        if via_images(data) is not None:
            return "via-json"
        if is_label_studio(data):
            return "label-studio"
        raise ValueError(f"{path}: JSON of no known label tool (expected a VIA export or "
                         "project, COCO, or a Label Studio JSON export)")
    if suffix == ".xml":
        root = parse_xml(path)
        if root.tag == "annotations":
            return "cvat"
        if local_name(root) == "PcGts":
            return "page-xml"
        raise ValueError(f"{path}: XML of no known label tool (root <{local_name(root)}>; "
                         "expected CVAT for images <annotations> or PAGE-XML <PcGts>)")
    return None


def import_labels(path, kind: str = "auto", images_dir=None) -> ImportedLabels:
    """Read the label file ``path`` in format ``kind`` (``"auto"``: detected).

    Raises ``ValueError`` (naming the file) when the file cannot be read at all or is not of
    the format; bad boxes inside a readable file are reported in ``problems`` instead.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: not found (or not a file)")
    if kind == "auto":
        kind = detect_label_format(path)
        if kind is None:
            raise ValueError(f"{path}: not a label tool export (formats: {', '.join(FORMATS)}); "
                             "give --format if the extension is unusual")
    if kind not in READERS:
        raise ValueError(f"unknown label format {kind!r} (one of {', '.join(FORMATS)})")
    return READERS[kind](path, images_dir)


__all__ = ["FORMATS", "READERS", "ImportedLabels", "detect_label_format", "import_labels"]
