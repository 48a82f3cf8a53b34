"""Downloads into a local, content-addressed cache: bounded concurrency, retries with backoff,
resume.

A file is stored under the SHA-256 of its bytes; a small record per URL says which file it
gave, so a rerun (after an interruption, or after the server went away halfway) fetches only
what is missing. Only complete responses are kept: a body shorter than announced, or one that a
check refuses (e.g. an image that does not decode), is retried and never cached.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from corpus_tools.storage import atomic_path, write_json_atomic
from sphaera_tables.progress import Progress, silent

USER_AGENT = "sphaera-tables (scholarly table comparison)"


@dataclass(frozen=True)
class DownloadSettings:
    """How downloads behave: parallel requests, tries per URL, first backoff (doubled after
    each failed try), seconds to wait for a server."""

    workers: int = 4
    tries: int = 4
    backoff_s: float = 1.0
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Download:
    """The outcome for one URL: the cached file, or the reason there is none."""

    url: str
    path: Path | None
    error: str = ""
    fetched: bool = False
    """True when this call downloaded it, False when it came from the cache."""


class DownloadCache:
    """Files downloaded from URLs, kept in ``folder`` under the hash of their content."""

    def __init__(self, folder: Path | str, settings: DownloadSettings | None = None):
        self.folder = Path(folder)
        self.settings = settings or DownloadSettings()

    def fetch_all(self, choices, check=None, progress: Progress = silent) -> list[Download]:
        """For each entry of ``choices`` (URLs to try in turn), the first that gives a file,
        ``settings.workers`` entries at a time; ``check(path)`` raises ``ValueError`` for a body
        that must not be kept. ``progress(done, total, "Downloading")`` counts the entries
        finished."""
        choices = list(choices)
        progress(0, len(choices), "Downloading")
        with ThreadPoolExecutor(max_workers=self.settings.workers) as pool:
            futures = [pool.submit(self.fetch_first, urls, check) for urls in choices]
            for done, _ in enumerate(as_completed(futures), 1):
                progress(done, len(choices), "Downloading")
            return [future.result() for future in futures]

    def fetch_first(self, urls, check=None) -> Download:
        """The first of ``urls`` that gives a file; else the reasons of all of them."""
        errors = []
        for url in urls:
            download = self.fetch(url, check)
            if download.path is not None:
                return download
            errors.append(download.error)
        return Download(urls[0] if urls else "", None, "; ".join(errors) or "no image URL")

    def fetch(self, url: str, check=None) -> Download:
        """One URL, from the cache if it was fetched before, else from the network."""
        cached = self._cached(url)
        if cached is not None:
            return Download(url, cached)
        error = ""
        for attempt in range(self.settings.tries):
            if attempt:
                time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                return Download(url, self._download(url, check), fetched=True)
            except _Permanent as failure:
                return Download(url, None, str(failure))
            except (OSError, HTTPException, ValueError) as failure:
                error = _describe(failure)
        return Download(url, None, f"{error} (after {self.settings.tries} tries)")

    def _record(self, url: str) -> Path:
        return self.folder / "urls" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

    def _cached(self, url: str) -> Path | None:
        try:
            record = json.loads(self._record(url).read_text(encoding="utf-8"))
            path = self.folder / "files" / record["file"]
            if path.stat().st_size == record["bytes"] > 0:
                return path
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def _download(self, url: str, check) -> Path:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                body = response.read()
                suffix = _suffix(response.headers.get_content_type())
        except urllib.error.HTTPError as error:
            if error.code in (404, 410, 400, 401, 403):
                raise _Permanent(f"HTTP {error.code} {error.reason} for {url}") from None
            raise
        digest = hashlib.sha256(body).hexdigest()
        path = self.folder / "files" / digest[:2] / f"{digest}{suffix}"
        if not path.is_file() or path.stat().st_size != len(body):
            with atomic_path(path) as tmp:
                tmp.write_bytes(body)
                if check is not None:
                    check(tmp)
        write_json_atomic(self._record(url), {
            "url": url, "file": path.relative_to(self.folder / "files").as_posix(),
            "bytes": len(body)})
        return path


class _Permanent(Exception):
    """A failure that another try cannot mend (the resource is not there)."""


def _describe(failure: Exception) -> str:
    if isinstance(failure, urllib.error.HTTPError):
        return f"HTTP {failure.code} {failure.reason} for {failure.url}"
    if isinstance(failure, urllib.error.URLError):
        return f"cannot reach the server ({failure.reason})"
    if isinstance(failure, TimeoutError):
        return "the server did not answer in time"
    if isinstance(failure, ValueError):
        return str(failure)
    return f"{failure.__class__.__name__}: {failure}"


def _suffix(content_type: str) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/tiff": ".tif",
            "image/jp2": ".jp2", "image/webp": ".webp", "image/gif": ".gif",
            "application/json": ".json", "application/ld+json": ".json"}.get(content_type, "")
