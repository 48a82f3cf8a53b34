"""Standard exports: the detected digits of every analysed page as PAGE-XML, valid against the
2019 schema shipped with the package, with page ids from user data escaped."""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import xmlschema
from click.testing import CliRunner
from PIL import Image

from corpus_tools.networks import load_results
from corpus_tools.results_folder import ResultsFolder
from sphaera_tables.cli import main
from sphaera_tables.similarity import SimilarityOptions, run_similarity
from sphaera_tables.standard_exports import PAGE_SCHEMA

SHARED = Path(__file__).parents[2] / "shared"
REAL_PAGE = SHARED / "data" / "real" / "tables" / "1921_pifferi_sfera_1604_p368.jpg"
NAMES = ("plain.png", "a&b <c>.png", "=x.png")
FAST = SimilarityOptions(min_score=0.0, explain=False, networks=False, report=False, workers=1)
PC = "{http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15}"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))
    for name, top in zip(NAMES, (300, 560, 820), strict=True):
        Image.fromarray(grey[top: top + 240, 200:520]).save(corpus / name)
    out = tmp_path_factory.mktemp("results")
    run_similarity(corpus, out, FAST)
    return out


def test_export_writes_valid_page_xml_for_every_page(results):
    outcome = CliRunner().invoke(main, ["export", str(results)])
    assert outcome.exit_code == 0, outcome.output
    schema = xmlschema.XMLSchema(PAGE_SCHEMA)
    pages = load_results(results).pages
    for page_id in NAMES:
        path = ResultsFolder(results).page_xml(page_id)
        schema.validate(path)
        page = ET.parse(path).getroot().find(f"{PC}Page")
        assert page.get("imageFilename") == page_id
        assert page.get("imageWidth") == str(pages[page_id]["width"])
        glyphs = page.findall(f".//{PC}Glyph")
        assert len(glyphs) == int(pages[page_id]["digits"]) > 0
        lines = page.findall(f".//{PC}TextLine")
        assert len(lines) == int(pages[page_id]["numbers"])
        for line in lines:
            digits = "".join(glyph.find(f"{PC}TextEquiv/{PC}Unicode").text
                             for glyph in line.iter(f"{PC}Glyph"))
            assert sorted(digits) == sorted(line.find(f"{PC}TextEquiv/{PC}Unicode").text
                                            .replace(".", "").replace("-", ""))
    text = ResultsFolder(results).page_xml("a&b <c>.png").read_text(encoding="utf-8")
    assert 'imageFilename="a&amp;b &lt;c&gt;.png"' in text


def test_export_of_a_folder_that_is_no_results_folder_says_what_to_do(tmp_path):
    outcome = CliRunner().invoke(main, ["export", str(tmp_path)])
    assert outcome.exit_code == 1
    assert "tables similarity" in outcome.output


def test_every_coordinate_lies_on_the_page(results):
    CliRunner().invoke(main, ["export", str(results)])
    for page_id in NAMES:
        page = ET.parse(ResultsFolder(results).page_xml(page_id)).getroot().find(f"{PC}Page")
        width, height = int(page.get("imageWidth")), int(page.get("imageHeight"))
        for coords in page.iter(f"{PC}Coords"):
            for point in coords.get("points").split():
                x, y = map(int, point.split(","))
                assert 0 <= x <= width and 0 <= y <= height


def test_export_removes_the_files_of_pages_no_longer_analysed(results):
    stale = ResultsFolder(results).page_xml("gone.png")
    stale.parent.mkdir(exist_ok=True)
    stale.write_text("<old/>")
    assert CliRunner().invoke(main, ["export", str(results)]).exit_code == 0
    assert not stale.exists()
    assert len(list(stale.parent.glob("*.xml"))) == len(NAMES)
