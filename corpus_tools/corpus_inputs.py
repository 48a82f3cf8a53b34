"""The inputs of a corpus run gathered into one list of pages, with their metadata.

An input is a folder of page files (with an optional ``metadata.csv``), a IIIF manifest (a
``.json`` file or an http(s) URL), or a ``.txt`` file listing inputs, one a line (``#`` starts a
comment; relative paths are relative to the list). A single folder gives page ids relative to
it; with several inputs a folder's ids start with its name, so that two folders' ``0001.png``
stay two pages. A manifest's pages are ``<book>/<canvas>`` (see :mod:`corpus_tools.iiif`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from corpus_tools.downloads import DownloadCache, DownloadSettings
from corpus_tools.iiif import (
    DEFAULT_IIIF_WIDTH,
    Manifest,
    check_image,
    is_manifest_location,
    page_id,
    read_manifest,
)
from corpus_tools.metadata import (
    COLUMNS,
    FileProblem,
    parse_year,
    read_metadata,
    rows_naming_no_page,
)
from corpus_tools.page_sources import (
    COMPANION_FILES,
    PAGE_SUFFIXES,
    PageSource,
    SkippedFile,
    list_folder,
)
from corpus_tools.pdf import DEFAULT_PDF_DPI
from sphaera_tables.progress import Progress, relabelled, silent, tracked

UNUSED_ROWS_SHOWN = 5
"""Rows of a metadata.csv naming no page that are listed one by one (a library's whole index
beside a few of its books would otherwise fill the screen)."""
IIIF_CACHE = "iiif"
"""Folder of the results folder that keeps downloaded manifests and images."""


@dataclass(frozen=True)
class InputSettings:
    """How inputs become pages: PDF rendering resolution, width asked of IIIF image services,
    how downloads behave."""

    pdf_dpi: int = DEFAULT_PDF_DPI
    iiif_width: int = DEFAULT_IIIF_WIDTH
    downloads: DownloadSettings = field(default_factory=DownloadSettings)


@dataclass
class CorpusPages:
    """The pages of a run's inputs, the files that gave none, and their metadata."""

    sources: list[PageSource]
    skipped: list[SkippedFile]
    metadata: pd.DataFrame | None = None
    messages: list[str] = field(default_factory=list)
    downloaded: int = 0


def expand_inputs(inputs) -> list[str]:
    """``inputs`` (one or several) with every ``.txt`` list replaced by the inputs it lists."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    expanded = []
    for item in map(str, items):
        if item.lower().endswith(".txt") and not is_manifest_location(item):
            expanded += _listed(Path(item))
        else:
            expanded.append(item)
    return expanded


def gather_pages(inputs, out: Path | str, settings: InputSettings | None = None,
                 progress: Progress = silent) -> CorpusPages:
    """Every page of ``inputs`` (see the module docstring), never reading ``out``; IIIF images
    are downloaded into ``out/iiif`` (a rerun fetches only what is missing).

    ``progress(done, total, message)`` follows the inputs listed ("Listing pages": folders
    listed, manifests read) and then the IIIF images ("Downloading pages"). Raises
    ``ValueError`` when an input does not exist, or when the inputs hold no page at all,
    saying what was found instead.
    """
    settings = settings or InputSettings()
    items = expand_inputs(inputs)
    folders = [item for item in items if not is_manifest_location(item)]
    prefixes = dict(zip(folders, _prefixes(folders, len(items)), strict=True))
    cache = DownloadCache(Path(out) / IIIF_CACHE, settings.downloads)
    gathered, frames, manifests = CorpusPages([], []), [], []
    for item in tracked(items, len(items), progress, "Listing pages"):
        if item in prefixes:
            frames.append(_add_folder(Path(item), prefixes[item], out, settings, gathered))
        else:
            manifest = _read_manifest(item, cache, settings, gathered)
            if manifest is not None:
                manifests.append(manifest)
    if manifests:
        frames += _add_manifests(manifests, cache, gathered,
                                 relabelled(progress, "Downloading pages"))
    if not gathered.sources:
        raise ValueError(_empty_message(items, gathered.skipped))
    _refuse_repeated_ids(gathered.sources)
    gathered.sources.sort(key=lambda source: source.page_id)
    frames = [frame for frame in frames if frame is not None]
    if frames:
        gathered.metadata = pd.concat(frames, ignore_index=True)
    if gathered.downloaded:
        gathered.messages.append(f"downloaded {gathered.downloaded} page images from IIIF into "
                                 f"{cache.folder}")
    ignored = sum(s.status.startswith("ignored:") for s in gathered.skipped)
    if ignored:
        gathered.messages.append(f"{ignored} files or folders are not pages (listed in pages.csv "
                                 "with status 'ignored: <reason>')")
    return gathered


def _listed(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the list of inputs ({error})") from None
    items = [line.strip() for line in lines]
    return [item if item.startswith(("http://", "https://")) else str(path.parent / item)
            for item in items if item and not item.startswith("#")]


def _prefixes(folders: list[str], inputs: int) -> list[str]:
    if inputs == 1:
        return [""] * len(folders)
    names = [Path(item).resolve().name for item in folders]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"two inputs are named {repeated[0]!r}; page ids are made from input "
                         "names, so give each input a distinct name")
    return [f"{name}/" for name in names]


def _add_folder(folder: Path, prefix: str, out, settings: InputSettings,
                gathered: CorpusPages) -> pd.DataFrame | None:
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder, IIIF manifest (.json, http URL) or list "
                         "of inputs (.txt)")
    sources, skipped = list_folder(folder, exclude=[out], pdf_dpi=settings.pdf_dpi)
    gathered.sources += [_prefixed(source, prefix) for source in sources]
    gathered.skipped += [SkippedFile(prefix + s.page_id, s.status) for s in skipped]
    metadata = _folder_metadata(folder, [s.page_id for s in sources], gathered.messages)
    return None if metadata is None else _prefixed_metadata(metadata, prefix)


def _read_manifest(location: str, cache: DownloadCache, settings: InputSettings,
                   gathered: CorpusPages) -> Manifest | None:
    """The manifest at ``location``, or None: a manifest that cannot be read, or has no
    canvases, is one skipped line."""
    try:
        manifest = read_manifest(location, cache, settings.iiif_width)
    except ValueError as error:
        gathered.skipped.append(SkippedFile(location, f"skipped: {error}"))
        return None
    if not manifest.canvases:
        gathered.skipped.append(SkippedFile(location, "skipped: the manifest has no canvases"))
        return None
    return manifest


def _add_manifests(manifests: list[Manifest], cache: DownloadCache, gathered: CorpusPages,
                   progress: Progress) -> list[pd.DataFrame]:
    """The pages of the manifests, their images fetched together (a canvas whose image cannot
    be fetched is a skipped page), and their metadata."""
    downloads = iter(cache.fetch_all([canvas.image_urls for manifest in manifests
                                      for canvas in manifest.canvases],
                                     check=check_image, progress=progress))
    frames = []
    for manifest in manifests:
        rows = []
        for index, canvas in enumerate(manifest.canvases):
            page, download = page_id(manifest, index), next(downloads)
            if download.path is None:
                gathered.skipped.append(SkippedFile(page, f"skipped: image download failed: "
                                                          f"{download.error}"))
            else:
                gathered.sources.append(PageSource(page, str(download.path)))
                gathered.downloaded += download.fetched
            rows.append(_page_metadata(manifest.metadata, page, manifest.book_id,
                                       canvas.canvas_id))
        frames.append(pd.DataFrame(rows, columns=list(COLUMNS)))
    return frames


def _page_metadata(book: dict, page: str, book_id: str, canvas_id: str) -> dict:
    record = {name: book.get(name, "") for name in COLUMNS}
    try:
        record["year"], record["year_uncertain"] = parse_year(record["year_text"])
    except ValueError:
        record["year"], record["year_uncertain"] = None, True
    return record | {"page_id": page, "book_id": book_id, "canvas": canvas_id, "line": None}


def _refuse_repeated_ids(sources: list[PageSource]) -> None:
    seen = set()
    for source in sources:
        if source.page_id in seen:
            raise ValueError(f"page {source.page_id!r} comes from two inputs; give each input "
                             "once")
        seen.add(source.page_id)


def _prefixed(source: PageSource, prefix: str) -> PageSource:
    if not prefix:
        return source
    return PageSource(prefix + source.page_id, source.path, source.frame, source.pdf_dpi)


def _folder_metadata(folder: Path, page_ids: list[str], messages: list[str]
                     ) -> pd.DataFrame | None:
    """The folder's metadata.csv, if any; its problems, and its rows that name no page of the
    folder, become messages."""
    path = folder / COMPANION_FILES[0]
    if not path.is_file():
        return None
    frame, problems = read_metadata(path)
    unused = rows_naming_no_page(frame, page_ids, str(path))
    problems += unused[:UNUSED_ROWS_SHOWN]
    if len(unused) > UNUSED_ROWS_SHOWN:
        problems.append(FileProblem(str(path), None, f"{len(unused) - UNUSED_ROWS_SHOWN} more "
                                                     "rows name no page of the corpus"))
    messages.extend(f"metadata: {problem}" for problem in problems)
    return frame


def _prefixed_metadata(metadata: pd.DataFrame, prefix: str) -> pd.DataFrame:
    if prefix:
        metadata = metadata.copy()
        named = metadata["page_id"] != ""
        metadata.loc[named, "page_id"] = prefix + metadata.loc[named, "page_id"]
    return metadata


def _empty_message(inputs: list[str], skipped: list[SkippedFile]) -> str:
    where = ", ".join(inputs)
    found = "; ".join(f"{s.page_id}: {s.status}" for s in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return (f"no pages found in {where} ({found + more if found else 'no files'}); a corpus "
            f"holds page files of these kinds: {' '.join(PAGE_SUFFIXES)}, or IIIF manifests")
