"""Parse an XML label file without the dangers of XML: no document type declarations.

Label tools (CVAT, PAGE-XML editors) never write a ``<!DOCTYPE ...>``; one in a label file can
only declare entities, which expand exponentially ("billion laughs") or pull in other files. A
first pass with expat stops at the start of any DOCTYPE, before anything is expanded; only then
is the file parsed into a tree. The standard library suffices, so no extra dependency.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat


class UnsafeXMLError(ValueError):
    """The XML file declares a document type (entities); it is refused unread."""


def _refuse(*_args):
    raise UnsafeXMLError("document type declaration")


def parse_xml(path) -> ET.Element:
    """The root element of the XML file ``path``.

    Raises :class:`UnsafeXMLError` when the file holds a ``<!DOCTYPE`` (or entity) declaration
    and ``ValueError`` when it is not well-formed XML, each naming the file and what to do.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error.strerror or error})") from None
    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = _refuse
    scanner.EntityDeclHandler = _refuse
    try:
        scanner.Parse(data, True)
    except UnsafeXMLError:
        raise UnsafeXMLError(
            f"{path}: refused: the file declares a document type (<!DOCTYPE ...>), which can "
            "define entities that expand without end or read other files; label tools do not "
            "write one: export the labels again, or delete the <!DOCTYPE ...> part") from None
    except expat.ExpatError as error:
        raise ValueError(f"{path}: not well-formed XML ({error}); export the labels again "
                         "from the label tool") from None
    return ET.fromstring(data)


def local_name(element: ET.Element) -> str:
    """An element's tag without its namespace (``{http://...}Glyph`` -> ``Glyph``)."""
    return element.tag.rsplit("}", 1)[-1]
