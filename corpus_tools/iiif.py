"""Pages from IIIF: the canvases of a Presentation 2.1 or 3.0 manifest, their images fetched
through the Image API (or the canvas's direct image), and the book's metadata.

A page id is ``<book>/<canvas number> <canvas label>``, where the book is the manifest's label
made file-name-safe plus a short hash of the manifest's id (two editions with one title stay two
books; the same manifest always gives the same ids). Images are asked for about
:data:`DEFAULT_IIIF_WIDTH` px wide: from a level-0 service one of the sizes it lists, from a
level-1/2 service ``full/<width>,/0/default.jpg``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from corpus_tools.downloads import DownloadCache

DEFAULT_IIIF_WIDTH = 2000
"""Width (px) of the images asked of an image service: a folio page at about 250-300 dpi."""
#: metadata column -> labels of manifest metadata pairs that give it (lower case)
METADATA_LABELS = {
    "author": ("author", "authors", "creator", "author(s)", "verfasser", "auteur"),
    "printer": ("printer", "printers", "printed by", "drucker", "imprimeur", "stampatore"),
    "publisher": ("publisher", "publishers", "published by", "verlag", "editeur", "éditeur",
                  "editore", "imprint"),
    "place": ("place", "place of publication", "publication place", "place of printing",
              "ort", "erscheinungsort", "druckort", "lieu", "luogo"),
    "year_text": ("date", "year", "date of publication", "publication date", "dated",
                  "erscheinungsjahr", "datierung", "datum", "date d'édition", "data"),
}


@dataclass(frozen=True)
class Canvas:
    """One canvas of a manifest: its id, label, and the image URLs to try, best first."""

    canvas_id: str
    label: str
    image_urls: tuple[str, ...]


@dataclass
class Manifest:
    """What the run needs of a manifest: the book id, its canvases and its metadata."""

    manifest_id: str
    book_id: str
    canvases: list[Canvas]
    metadata: dict = field(default_factory=dict)


def is_manifest_location(text: str) -> bool:
    """Whether an input names a manifest (an http(s) URL or a ``.json`` file)."""
    return text.startswith(("http://", "https://")) or text.lower().endswith(".json")


def read_manifest(location: str, cache: DownloadCache, width: int = DEFAULT_IIIF_WIDTH
                  ) -> Manifest:
    """The manifest at ``location`` (URL or file); ``ValueError`` saying what is wrong when it
    cannot be fetched or is no IIIF Presentation manifest."""
    data = _json_at(location, cache)
    if not isinstance(data, dict) or not ("sequences" in data or "items" in data):
        raise ValueError(f"{location}: not a IIIF Presentation manifest (no 'sequences' or "
                         "'items')")
    manifest_id = str(data.get("id") or data.get("@id") or location)
    label = _text(data.get("label")) or "manifest"
    book_id = f"{_slug(label)}-{hashlib.sha256(manifest_id.encode()).hexdigest()[:6]}"
    v2_canvases = (data.get("sequences") or [{}])[0].get("canvases", [])
    raw = data.get("items") if "items" in data else v2_canvases
    canvases = [_canvas(item, cache, width) for item in raw if isinstance(item, dict)]
    return Manifest(manifest_id, book_id, canvases, _book_metadata(data, manifest_id, label))


def page_id(manifest: Manifest, index: int) -> str:
    """Page id of the canvas number ``index`` (0-based) of ``manifest``."""
    label = manifest.canvases[index].label
    return f"{manifest.book_id}/{index + 1:04d}" + (f" {_slug(label, 40)}" if label else "")


def check_image(path: Path) -> None:
    """Refuse a downloaded body that is no complete image (``ValueError``)."""
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # noqa: BLE001 - any decoding failure means: not an image
        raise ValueError(f"not a complete image ({error})") from None


def _json_at(location: str, cache: DownloadCache):
    if location.startswith(("http://", "https://")):
        download = cache.fetch(location, check=_check_json)
        if download.path is None:
            raise ValueError(f"{location}: cannot fetch the manifest ({download.error})")
        path = download.path
    else:
        path = Path(location)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{location}: cannot read as JSON ({error})") from None


def _check_json(path: Path) -> None:
    try:
        json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not JSON ({error})") from None


def _canvas(canvas: dict, cache: DownloadCache, width: int) -> Canvas:
    canvas_id = str(canvas.get("id") or canvas.get("@id") or "")
    if "images" in canvas:  # Presentation 2
        resources = [image.get("resource") or {} for image in canvas.get("images") or []]
    else:  # Presentation 3: AnnotationPage -> painting Annotation -> body
        resources = [annotation.get("body") or {}
                     for page in canvas.get("items") or [] for annotation in page.get("items") or []]
    urls = []
    for resource in resources:
        resource = resource[0] if isinstance(resource, list) and resource else resource
        if not isinstance(resource, dict):
            continue
        services = resource.get("service") or []
        for service in services if isinstance(services, list) else [services]:
            url = _service_request(service, cache, width, resource.get("width"))
            if url:
                urls.append(url)
        direct = resource.get("id") or resource.get("@id")
        if direct:
            urls.append(str(direct))
    return Canvas(canvas_id, _text(canvas.get("label")), tuple(dict.fromkeys(urls)))


def _service_request(service, cache: DownloadCache, width: int, image_width) -> str | None:
    """The Image API request for an image about ``width`` px wide, or None if ``service`` is no
    image service."""
    if not isinstance(service, dict):
        return None
    base = str(service.get("id") or service.get("@id") or "").rstrip("/")
    kind = str(service.get("type") or service.get("@type") or "")
    context = str(service.get("@context") or "")
    profile = json.dumps(service.get("profile", ""))
    if not base or not ("ImageService" in kind or "image" in context or "level" in profile):
        return None
    version3 = "ImageService3" in kind or "image/3" in context
    full = "max" if version3 else "full"
    level = re.search(r"level([012])", profile)
    if level and level.group(1) != "0":
        wanted = min(width, int(image_width)) if isinstance(image_width, int) else width
        return f"{base}/full/{wanted},/0/default.jpg"
    sizes = service.get("sizes") or _info_sizes(base, cache)
    if not sizes:
        return f"{base}/full/{full}/0/default.jpg"
    chosen = min(sizes, key=lambda size: (size["width"] < width, abs(size["width"] - width)))
    size = f"{chosen['width']},{chosen['height']}" if version3 else f"{chosen['width']},"
    return f"{base}/full/{size}/0/default.jpg"


def _info_sizes(base: str, cache: DownloadCache) -> list[dict]:
    """The sizes a level-0 service lists in its info.json ([] when it lists none)."""
    download = cache.fetch(f"{base}/info.json", check=_check_json)
    if download.path is None:
        return []
    info = json.loads(download.path.read_text(encoding="utf-8-sig"))
    return [size for size in info.get("sizes") or []
            if isinstance(size, dict) and isinstance(size.get("width"), int)
            and isinstance(size.get("height"), int)]


def _book_metadata(data: dict, manifest_id: str, label: str) -> dict:
    """Title, date, printer, publisher, place, author, attribution, rights, homepage."""
    record = {"title": label, "manifest": manifest_id}
    for pair in data.get("metadata") or []:
        if not isinstance(pair, dict):
            continue
        name = _text(pair.get("label")).strip().lower().rstrip(":")
        for column, names in METADATA_LABELS.items():
            if name in names and not record.get(column):
                record[column] = _text(pair.get("value"))
    if not record.get("year_text") and data.get("navDate"):
        record["year_text"] = str(data["navDate"])[:10]
    statement = data.get("requiredStatement") or {}
    record["attribution"] = _text(data.get("attribution")) or _text(
        statement.get("value") if isinstance(statement, dict) else "")
    record["rights"] = _text(data.get("rights") or data.get("license"))
    homepage = data.get("homepage") or data.get("related") or ""
    homepage = homepage[0] if isinstance(homepage, list) and homepage else homepage
    record["homepage"] = str(homepage.get("id") or homepage.get("@id") or "") \
        if isinstance(homepage, dict) else str(homepage)
    return record


def _text(value) -> str:
    """Plain text of a IIIF label or value: a string, a v2 list of ``@value`` objects, or a v3
    language map (English or language-neutral first); HTML tags removed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return html.unescape(re.sub(r"<[^>]*>", "", value)).strip()
    if isinstance(value, list):
        return "; ".join(filter(None, (_text(item) for item in value)))
    if isinstance(value, dict):
        if "@value" in value:
            return _text(value["@value"])
        for language in ("en", "none", *value):
            if language in value:
                return _text(value[language])
    return str(value)


def _slug(text: str, limit: int = 60) -> str:
    """``text`` with every run of characters other than letters, digits, ``.`` and ``-``
    made one ``_``, at most ``limit`` characters."""
    slug = re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("_.")
    return slug[:limit].rstrip("_.") or "untitled"
