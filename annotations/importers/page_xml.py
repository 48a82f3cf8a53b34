"""PAGE-XML (PRImA PAGE, any schema version): ``Glyph`` elements with ``Coords`` and a
``TextEquiv/Unicode`` digit, as OCR tools (and ``tables export``) write them.

A glyph's box is the bounding box of its ``Coords`` (``points="x,y x,y ..."``, or the 2010
schema's ``<Point x= y=/>``); its label is the text of its first ``TextEquiv`` (lowest
``index``). The image is the ``Page``'s ``imageFilename``. Problems are named by glyph id.
"""

from __future__ import annotations

from pathlib import Path

from annotations.importers.common import ImportedLabels, LabelCollector
from annotations.importers.safe_xml import local_name, parse_xml


def read_page_xml(path, images_dir=None) -> ImportedLabels:
    """Digit glyph boxes of a PAGE-XML file."""
    collector = LabelCollector(Path(path), images_dir)
    root = parse_xml(path)
    if local_name(root) != "PcGts":
        raise ValueError(f"{path}: not a PAGE-XML file (root <{local_name(root)}>, expected "
                         "<PcGts>)")
    for number, page in enumerate(_children(root, "Page")):
        image = collector.image(page.get("imageFilename"))
        if image is None:
            collector.problem(f"Page {number}", "no imageFilename")
            continue
        glyphs = [e for e in page.iter() if local_name(e) == "Glyph"]
        if not glyphs:
            collector.unboxed(image)
        for index, glyph in enumerate(glyphs):
            where = f"Glyph id {glyph.get('id')!r}" if glyph.get("id") else f"Glyph [{index}]"
            try:
                box = _bounding_box(glyph)
            except ValueError as error:
                collector.problem(where, str(error))
                continue
            collector.add(image, box, _text(glyph), where)
    return collector.result()


def _children(element, name: str) -> list:
    return [child for child in element if local_name(child) == name]


def _bounding_box(glyph) -> tuple[float, float, float, float]:
    coords = _children(glyph, "Coords")
    if not coords:
        raise ValueError("glyph has no Coords")
    try:
        if coords[0].get("points"):
            points = [tuple(float(v) for v in pair.split(","))
                      for pair in coords[0].get("points").split()]
        else:
            points = [(float(p.get("x")), float(p.get("y"))) for p in _children(coords[0], "Point")]
        xs, ys = zip(*points, strict=True)
    except (TypeError, ValueError):
        raise ValueError(f"Coords points {coords[0].get('points')!r} are not 'x,y x,y ...' "
                         "numbers") from None
    return min(xs), min(ys), max(xs), max(ys)


def _text(glyph) -> str:
    equivs = _children(glyph, "TextEquiv")
    if not equivs:
        return ""
    first = min(equivs, key=lambda e: int(e.get("index", "0") or 0)
                if (e.get("index") or "0").lstrip("-").isdigit() else 0)
    unicode = _children(first, "Unicode")
    return (unicode[0].text or "").strip() if unicode else ""
