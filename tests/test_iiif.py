"""IIIF: manifests (Presentation 2.1 and 3.0) served by a local IIIF server on 127.0.0.1 (a
level-0 static tree, a level-2 image service, direct images, and 404, 500, slow, flaky and
truncated responses) give the same pages as a folder of the same images; downloads are retried,
cached by content and resumed after the server went away halfway."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from corpus_tools.corpus_inputs import InputSettings, gather_pages
from corpus_tools.downloads import DownloadCache, DownloadSettings
from corpus_tools.iiif import read_manifest
from sphaera_tables.cli import main
from sphaera_tables.similarity import SimilarityOptions, run_similarity

SHARED = Path(__file__).parents[2] / "shared"
REAL_PAGE = SHARED / "data" / "real" / "tables" / "1921_pifferi_sfera_1604_p368.jpg"
QUICK = DownloadSettings(workers=3, tries=3, backoff_s=0.01, timeout_s=1.0)
FAST_RUN = SimilarityOptions(min_score=0.0, top_k=3, explain=False, report=False,
                             networks=False, inputs=InputSettings(downloads=QUICK))


def _page_jpegs(count: int) -> list[bytes]:
    """``count`` JPEG crops of the real 1604 table page (neighbours overlap: they match)."""
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))
    pages = []
    for k in range(count):
        top = 300 + 60 * (k % 12)
        left = 150 + 120 * (k // 12)
        buffer = io.BytesIO()
        Image.fromarray(grey[top:top + 250, left:left + 320]).save(buffer, "JPEG", quality=90)
        pages.append(buffer.getvalue())
    return pages


class IIIFServer:
    """A IIIF server on 127.0.0.1 with the routes of the module docstring; ``requests`` lists
    the paths asked for, ``down`` makes every image request fail (503)."""

    def __init__(self, images: dict[str, bytes]):
        self.images = images
        self.manifests: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.down = False
        self.asked: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                server.requests.append(self.path)
                server.asked[self.path] = server.asked.get(self.path, 0) + 1
                server.answer(self, self.path)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, handler, path: str) -> None:
        parts = path.strip("/").split("/")
        if parts[0] == "manifests" and path.split("/", 2)[2] in self.manifests:
            return _send(handler, 200, self.manifests[path.split("/", 2)[2]], "application/json")
        if self.down:
            return _send(handler, 503, b"down for maintenance", "text/plain")
        kind, name = parts[0], parts[1] if len(parts) > 1 else ""
        if kind == "fault404" or name not in self.images:
            return _send(handler, 404, b"not found", "text/plain")
        if kind == "fault500":
            return _send(handler, 500, b"server error", "text/plain")
        first = self.asked[path] == 1
        if kind == "flaky" and first:
            return _send(handler, 500, b"try again", "text/plain")
        if kind == "slow" and (first or name.startswith("always")):
            time.sleep(1.5)
        if kind == "truncated" and (first or name.startswith("always")):
            body = self.images[name]
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2])
            handler.close_connection = True
            return None
        if kind == "l0" and parts[2] == "info.json":
            return _send(handler, 200, json.dumps(self.info(name)).encode(), "application/json")
        if kind in ("l0", "l2") and parts[2] == "full":
            return self.sized(handler, name, parts[3])
        return _send(handler, 200, self.images[name], "image/jpeg")

    def info(self, name: str) -> dict:
        width, height = Image.open(io.BytesIO(self.images[name])).size
        return {"@context": "http://iiif.io/api/image/2/context.json",
                "@id": f"{self.base}/l0/{name}", "profile": ["http://iiif.io/api/image/2/"
                                                            "level0.json"],
                "width": width, "height": height,
                "sizes": [{"width": width // 2, "height": height // 2},
                          {"width": width, "height": height}]}

    def sized(self, handler, name: str, size: str) -> None:
        image = Image.open(io.BytesIO(self.images[name]))
        width = int(size.split(",")[0]) if size not in ("full", "max") else image.width
        if width == image.width:
            return _send(handler, 200, self.images[name], "image/jpeg")
        buffer = io.BytesIO()
        image.resize((width, round(image.height * width / image.width))).save(buffer, "JPEG")
        return _send(handler, 200, buffer.getvalue(), "image/jpeg")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _send(handler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def manifest_v2(base: str, names: list[str], kind: str = "l2", label="Sphaera 1604") -> dict:
    """A Presentation 2.1 manifest of ``names``, images behind ``kind`` (l0, l2 or a direct
    route such as img, fault404, flaky)."""
    canvases = []
    for k, name in enumerate(names):
        resource = {"@id": f"{base}/img/{name}", "@type": "dctypes:Image", "width": 320,
                    "height": 250}
        if kind in ("l0", "l2"):
            resource["service"] = {"@context": "http://iiif.io/api/image/2/context.json",
                                   "@id": f"{base}/{kind}/{name}",
                                   "profile": f"http://iiif.io/api/image/2/level{kind[1]}.json"}
        else:
            resource["@id"] = f"{base}/{kind}/{name}"
        canvases.append({"@id": f"{base}/canvas/{k}", "@type": "sc:Canvas",
                         "label": f"fol. {k + 1}r", "width": 320, "height": 250,
                         "images": [{"@type": "oa:Annotation", "motivation": "sc:painting",
                                     "resource": resource, "on": f"{base}/canvas/{k}"}]})
    return {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": f"{base}/manifests/{label}-{kind}.json", "@type": "sc:Manifest",
        "label": label,
        "metadata": [{"label": "Printer", "value": "Salvestro Marchetti"},
                     {"label": "Place of publication", "value": "Siena"},
                     {"label": "Date", "value": "[ca. 1604]"},
                     {"label": "Author", "value": "<b>Sacrobosco</b>, Johannes de"}],
        "attribution": "Library of Test", "license": "https://creativecommons.org/publicdomain/"
                                                     "mark/1.0/",
        "related": {"@id": "https://library.example/record/1604"},
        "sequences": [{"@type": "sc:Sequence", "canvases": canvases}],
    }


def manifest_v3(base: str, names: list[str], label="Sfera 1604 (v3)") -> dict:
    """A Presentation 3.0 manifest of ``names`` behind the level-0 static tree."""
    items = []
    for k, name in enumerate(names):
        canvas = f"{base}/v3canvas/{k}"
        items.append({"id": canvas, "type": "Canvas", "label": {"none": [f"p. {k + 1}"]},
                      "width": 320, "height": 250, "items": [{
                          "id": f"{canvas}/page", "type": "AnnotationPage", "items": [{
                              "id": f"{canvas}/anno", "type": "Annotation",
                              "motivation": "painting", "target": canvas,
                              "body": {"id": f"{base}/img/{name}", "type": "Image",
                                       "format": "image/jpeg", "width": 320, "height": 250,
                                       "service": [{"id": f"{base}/l0/{name}",
                                                    "type": "ImageService3",
                                                    "profile": "level0"}]}}]}]})
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": f"{base}/manifests/v3.json", "type": "Manifest", "label": {"en": [label]},
        "metadata": [{"label": {"en": ["Publisher"]}, "value": {"none": ["Giunta"]}},
                     {"label": {"en": ["Place"]}, "value": {"none": ["Venezia"]}}],
        "navDate": "1585-01-01T00:00:00Z",
        "requiredStatement": {"label": {"en": ["Attribution"]},
                              "value": {"en": ["Test Library"]}},
        "rights": "http://creativecommons.org/licenses/by/4.0/",
        "homepage": [{"id": "https://library.example/v3", "type": "Text"}],
        "items": items,
    }


@pytest.fixture()
def iiif_server():
    images = {f"page{k:02d}.jpg": body for k, body in enumerate(_page_jpegs(20))}
    images["always.jpg"] = images["page00.jpg"]
    server = IIIFServer(images)
    yield server
    server.close()


def _serve(server: IIIFServer, name: str, manifest: dict) -> str:
    server.manifests[name] = json.dumps(manifest).encode()
    return f"{server.base}/manifests/{name}"


def test_v2_and_v3_manifests_give_pages_image_requests_and_metadata(iiif_server, tmp_path):
    base, names = iiif_server.base, ["page00.jpg", "page01.jpg"]
    cache = DownloadCache(tmp_path / "cache", QUICK)
    v2 = read_manifest(_serve(iiif_server, "v2.json", manifest_v2(base, names)), cache)
    assert v2.book_id.startswith("Sphaera_1604-") and len(v2.book_id) == len("Sphaera_1604-") + 6
    assert [c.label for c in v2.canvases] == ["fol. 1r", "fol. 2r"]
    assert v2.canvases[0].image_urls == (f"{base}/l2/page00.jpg/full/320,/0/default.jpg",
                                         f"{base}/img/page00.jpg")
    assert v2.metadata | {"manifest": ""} == {
        "title": "Sphaera 1604", "manifest": "", "printer": "Salvestro Marchetti",
        "place": "Siena", "year_text": "[ca. 1604]", "author": "Sacrobosco, Johannes de",
        "attribution": "Library of Test",
        "rights": "https://creativecommons.org/publicdomain/mark/1.0/",
        "homepage": "https://library.example/record/1604"}
    v3_file = tmp_path / "v3.json"
    v3_file.write_text(json.dumps(manifest_v3(base, names)))
    v3 = read_manifest(str(v3_file), cache)
    # level 0: the listed size nearest 2000 px (the full 320 px), from info.json
    assert v3.canvases[1].image_urls[0] == f"{base}/l0/page01.jpg/full/320,250/0/default.jpg"
    assert v3.metadata["publisher"] == "Giunta" and v3.metadata["year_text"] == "1585-01-01"
    assert v3.metadata["attribution"] == "Test Library"
    assert v3.metadata["homepage"] == "https://library.example/v3"
    again = read_manifest(str(v3_file), cache)
    assert again.book_id == v3.book_id  # stable ids


def _features(out: Path) -> dict[str, np.ndarray]:
    pages = pd.read_csv(out / "pages.csv", keep_default_na=False)
    ok = pages.loc[pages["status"] == "ok", "page_id"].tolist()
    features = np.load(out / "features.npy")
    return dict(zip(ok, features, strict=True))


def _folder_of(server: IIIFServer, names: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for k, name in enumerate(names):
        (folder / f"{k + 1:04d}.jpg").write_bytes(server.images[name])
    return folder


@pytest.mark.parametrize(("kind", "pages"), [
    ("l2", 4), *(pytest.param(kind, pages, marks=pytest.mark.slow)
                 for kind, pages in [("l0", 4), ("img", 4), ("l2", 20)])])
def test_a_manifest_runs_like_the_same_pages_in_a_folder(iiif_server, tmp_path, kind, pages):
    names = [f"page{k:02d}.jpg" for k in range(pages)]
    url = _serve(iiif_server, "m.json", manifest_v2(iiif_server.base, names, kind))
    from_iiif = run_similarity(url, tmp_path / "iiif run", FAST_RUN)
    folder = _folder_of(iiif_server, names, tmp_path / "folder")
    run_similarity(folder, tmp_path / "folder run", FAST_RUN)
    iiif_features, folder_features = (_features(tmp_path / "iiif run"),
                                      _features(tmp_path / "folder run"))
    assert from_iiif.pages_ok == pages and from_iiif.pages_skipped == 0
    for k, (page_id, vector) in enumerate(sorted(iiif_features.items())):
        assert page_id.endswith(f"/{k + 1:04d} fol._{k + 1}r")
        np.testing.assert_array_equal(vector, folder_features[f"{k + 1:04d}.jpg"])
    rows = pd.read_csv(tmp_path / "iiif run" / "pages.csv", keep_default_na=False)
    assert set(rows["printer"]) == {"Salvestro Marchetti"} and set(rows["year"]) == {1604}
    assert set(rows["year_uncertain"]) == {True}
    assert rows["canvas"].tolist() == [f"{iiif_server.base}/canvas/{k}" for k in range(pages)]
    assert rows["book_id"].nunique() == 1 and rows["book_id"][0].startswith("Sphaera_1604-")


def test_faults_are_retried_or_reported_never_cached_broken(iiif_server, tmp_path):
    base = iiif_server.base
    manifests = {route: manifest_v2(base, [f"{'always' if route.startswith('x') else 'page'}"
                                           f"{'' if route.startswith('x') else '03'}.jpg"],
                                    route.lstrip("x"), label=route)
                 for route in ["fault404", "fault500", "flaky", "slow", "truncated", "xslow",
                               "xtruncated"]}
    urls = [_serve(iiif_server, f"{route}.json", manifest) for route, manifest in manifests.items()]
    gathered = gather_pages(urls, tmp_path / "out", InputSettings(downloads=QUICK))
    status = {s.page_id.split("-")[0]: s.status for s in gathered.skipped}
    ok = sorted(s.page_id.split("-")[0] for s in gathered.sources)
    assert ok == ["flaky", "slow", "truncated"]  # a second try mended them
    assert status["fault404"].startswith("skipped: image download failed: HTTP 404")
    assert status["fault500"].startswith("skipped: image download failed: HTTP 500")
    assert "(after 3 tries)" in status["fault500"]
    assert "did not answer in time" in status["xslow"]
    assert "after 3 tries" in status["xtruncated"]
    assert iiif_server.asked["/fault404/page03.jpg"] == 1  # not there: not asked again
    for source in gathered.sources:  # what was kept is the complete image
        assert Path(source.path).read_bytes() == iiif_server.images["page03.jpg"]


def test_a_run_resumes_after_the_server_went_away_halfway(iiif_server, tmp_path):
    names = [f"page{k:02d}.jpg" for k in range(4)]
    url = _serve(iiif_server, "m.json", manifest_v2(iiif_server.base, names))
    single = DownloadSettings(workers=1, tries=2, backoff_s=0.01, timeout_s=1.0)
    options = SimilarityOptions(min_score=0.0, top_k=3, explain=False, report=False,
                                networks=False, inputs=InputSettings(downloads=single))
    original = iiif_server.answer

    def dies_after_two(handler, path):
        served = sum(1 for p in iiif_server.requests if p.startswith("/l2/"))
        iiif_server.down = served > 2
        original(handler, path)

    iiif_server.answer = dies_after_two
    first = run_similarity(url, tmp_path / "out", options)
    assert (first.pages_ok, first.pages_skipped) == (2, 2)
    status = pd.read_csv(tmp_path / "out" / "pages.csv", keep_default_na=False)["status"]
    assert sum(s.startswith("skipped: image download failed: HTTP 503") for s in status) == 2
    iiif_server.answer, iiif_server.down = original, False
    asked_before = len(iiif_server.requests)
    second = run_similarity(url, tmp_path / "out", options)
    fetched_again = [p for p in iiif_server.requests[asked_before:] if p.startswith("/l2/")]
    assert len(fetched_again) == 2  # only the missing images
    assert (second.pages_ok, second.pages_skipped, second.pages_reused) == (4, 0, 2)
    fresh = run_similarity(url, tmp_path / "fresh", options)
    assert fresh.pages_ok == 4
    for name in ("pages.csv", "matches.csv", "features.npy"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_mixed_inputs_from_a_list_on_the_command_line(iiif_server, tmp_path):
    names = ["page00.jpg", "page01.jpg"]
    v2 = _serve(iiif_server, "v2.json", manifest_v2(iiif_server.base, names))
    (tmp_path / "v3.json").write_text(json.dumps(manifest_v3(iiif_server.base, names)))
    _folder_of(iiif_server, names, tmp_path / "scans")
    (tmp_path / "inputs.txt").write_text(f"# a library's books\n{v2}\nv3.json\n\nscans\n")
    result = CliRunner().invoke(main, ["similarity", str(tmp_path / "inputs.txt"), "-o",
                                       str(tmp_path / "out"), "--no-explanations",
                                       "--no-report", "--quiet"])
    assert result.exit_code == 0, result.output
    pages = pd.read_csv(tmp_path / "out" / "pages.csv", keep_default_na=False)
    assert len(pages) == 6 and set(pages["status"]) == {"ok"}
    assert sorted(pages["page_id"])[-2:] == ["scans/0001.jpg", "scans/0002.jpg"]
    assert pages["book_id"].nunique() == 3
    assert "downloaded 4 page images from IIIF" in result.output


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "cannot fetch the manifest (not JSON"),
    (b'{"hello": "world"}', "not a IIIF Presentation manifest"),
    (None, "cannot fetch the manifest (HTTP 404"),
])
def test_a_bad_manifest_is_reported_and_the_run_goes_on(iiif_server, tmp_path, content,
                                                        reason):
    if content is not None:
        iiif_server.manifests["bad.json"] = content
    bad = f"{iiif_server.base}/manifests/bad.json"
    good = _serve(iiif_server, "good.json", manifest_v2(iiif_server.base, ["page00.jpg"]))
    gathered = gather_pages([bad, good], tmp_path / "out", InputSettings(downloads=QUICK))
    assert len(gathered.sources) == 1
    assert [(s.page_id, s.status.split(": ", 1)[0]) for s in gathered.skipped] == [
        (bad, "skipped")]
    assert reason in gathered.skipped[0].status
    with pytest.raises(ValueError, match="no pages found in"):
        gather_pages([bad], tmp_path / "out2", InputSettings(downloads=QUICK))
