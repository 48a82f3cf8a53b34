"""Detected digits of each page as PAGE-XML (schema 2019-07-15), for OCR and layout tools.

A page's printed numbers form one TextRegion; each number is a TextLine holding one Word whose
Glyphs are its digits (box, digit, detector score as ``conf``). Coordinates are px of the page
image as analysed (``width`` x ``height`` in pages.csv); ``imageFilename`` is the page id (the
file's path inside the corpus folder). The schema shipped beside this module
(``data/pagecontent-2019-07-15.xsd``) is PRImA's PAGE schema (Apache License 2.0), as
distributed with OCR-D; tests validate every file against it.
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from corpus_tools.networks import load_results
from corpus_tools.results_folder import PAGE_XML, ResultsFolder
from corpus_tools.storage import atomic_path
from sphaera_tables import __version__
from sphaera_tables.page_analysis import PageAnalysis
from sphaera_tables.page_task import cached_analysis_loader

PAGE_NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_SCHEMA = Path(__file__).parent / "data" / "pagecontent-2019-07-15.xsd"


def page_xml(page_id: str, analysis: PageAnalysis, created: str) -> bytes:
    """The PAGE-XML document of one analysed page (UTF-8; ``created`` an ISO UTC time)."""
    ET.register_namespace("", PAGE_NAMESPACE)
    root = ET.Element(_tag("PcGts"))
    metadata = ET.SubElement(root, _tag("Metadata"))
    ET.SubElement(metadata, _tag("Creator")).text = f"tables {__version__}"
    ET.SubElement(metadata, _tag("Created")).text = created
    ET.SubElement(metadata, _tag("LastChange")).text = created
    height, width = analysis.page_shape
    page = ET.SubElement(root, _tag("Page"), imageFilename=page_id,
                         imageWidth=str(width), imageHeight=str(height))
    digits = analysis.digits.assign(  # boxes of digits at the edge reach past it
        x0=analysis.digits["x0"].clip(0, width), x1=analysis.digits["x1"].clip(0, width),
        y0=analysis.digits["y0"].clip(0, height), y1=analysis.digits["y1"].clip(0, height))
    if len(digits):
        region = ET.SubElement(page, _tag("TextRegion"), id="r0", type="other")
        _coords(region, digits[["x0", "y0"]].min().tolist() + digits[["x1", "y1"]].max().tolist())
        texts = analysis.numbers["text"].tolist()
        for number, group in digits.groupby("number", sort=True):
            _text_line(region, int(number), group, texts[int(number)])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _text_line(region: ET.Element, number: int, digits, text: str) -> None:
    box = digits[["x0", "y0"]].min().tolist() + digits[["x1", "y1"]].max().tolist()
    line = ET.SubElement(region, _tag("TextLine"), id=f"l{number}")
    _coords(line, box)
    word = ET.SubElement(line, _tag("Word"), id=f"w{number}")
    _coords(word, box)
    for index, digit in enumerate(digits.sort_values(["x0", "y0"]).itertuples(index=False)):
        glyph = ET.SubElement(word, _tag("Glyph"), id=f"g{number}_{index}")
        _coords(glyph, [digit.x0, digit.y0, digit.x1, digit.y1])
        _text(glyph, str(int(digit.digit)), digit.score)
    _text(word, text)
    _text(line, text)


def _coords(parent: ET.Element, box) -> None:
    """A ``Coords`` rectangle of ``[x0, y0, x1, y1]`` (whole px)."""
    x0, y0, x1, y1 = (round(float(value)) for value in box)
    points = f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"
    ET.SubElement(parent, _tag("Coords"), points=points)


def _text(parent: ET.Element, text: str, confidence: float | None = None) -> None:
    attributes = {} if confidence is None else {"conf": f"{np.clip(confidence, 0, 1):.4f}"}
    equiv = ET.SubElement(parent, _tag("TextEquiv"), attributes)
    ET.SubElement(equiv, _tag("Unicode")).text = text


def _tag(name: str) -> str:
    return f"{{{PAGE_NAMESPACE}}}{name}"


def write_page_xml(out: Path | str, created: str | None = None) -> list[Path]:
    """One PAGE-XML file per analysed page of the results folder ``out`` into ``OUT/page-xml/``
    (named like the thumbnails), each written atomically, and those of pages no longer
    analysed removed; returns the files."""
    folder = ResultsFolder(out)
    results = load_results(out)
    load = cached_analysis_loader(out)
    created = created or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    written = []
    for page_id, record in results.pages.items():
        if record["status"] != "ok":
            continue
        path = folder.page_xml(page_id)
        with atomic_path(path) as tmp:
            tmp.write_bytes(page_xml(page_id, load(page_id), created))
        written.append(path)
    for path in set(folder.file(PAGE_XML).glob("*.xml")) - set(written):
        path.unlink()  # a page no longer analysed
    return written
