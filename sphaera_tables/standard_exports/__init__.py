"""Results in the formats other tools read: detected digits as PAGE-XML."""

from sphaera_tables.standard_exports.page_xml import PAGE_SCHEMA, page_xml, write_page_xml

__all__ = ["PAGE_SCHEMA", "page_xml", "write_page_xml"]
