"""``tables suggest-labels``: the windows the detector is least sure of, spread over the pages,
never overlapping, sorted by uncertainty, written as a patch set and as VIA / Label Studio
projects that point at the written images and come back through the importers."""

import json
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from annotations import load_annotations
from annotations.importers import import_labels
from annotations.suggest import choose_windows, cut_window


@pytest.fixture(scope="module")
def suggested(tmp_path_factory):
    from annotations.suggest_command import suggest_labels_command
    from corpus_tools.synth import generate_corpus

    base = tmp_path_factory.mktemp("suggest")
    corpus = generate_corpus(base / "corpus", pages=3, seed=5, dpi_range=(150, 150))
    out = base / "to_label"
    result = CliRunner().invoke(suggest_labels_command,
                                [str(corpus), "-n", "12", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return corpus, out, result.output


def test_windows_are_sorted_unlabelled_and_apart(suggested):
    corpus, out, output = suggested
    table = pd.read_csv(out / "patches.csv")
    assert "wrote 12 windows from 3 of 3 pages" in output
    assert list(table["file"]) == [f"w{k:04d}.png" for k in range(1, 13)]
    assert table["uncertainty"].is_monotonic_decreasing
    assert table["uncertainty"].between(0, 1).all() and table["digit"].isna().all()
    for page, group in table.groupby("source_page"):
        rows = list(group.itertuples())
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                apart = (a.page_left + a.page_side <= b.page_left
                         or b.page_left + b.page_side <= a.page_left
                         or a.page_top + a.page_side <= b.page_top
                         or b.page_top + b.page_side <= a.page_top)
                assert apart, (page, a.file, b.file)
    for row in table.itertuples():             # each patch is the page's pixels at its place
        patch = Image.open(out / row.file)
        assert patch.size == (row.page_side, row.page_side)
        page = Image.open(corpus / row.source_page).convert("L")
        crop = page.crop((row.page_left, row.page_top, row.page_left + row.page_side,
                          row.page_top + row.page_side))
        assert (np.asarray(patch) == np.asarray(crop)).all()
        assert 0 <= row.x0 < row.x1 <= row.page_side and 0 <= row.y0 < row.y1 <= row.page_side


def test_projects_point_at_the_written_images(suggested):
    _, out, _ = suggested
    table = pd.read_csv(out / "patches.csv")
    project = json.loads((out / "via-project.json").read_text())
    records = project["_via_img_metadata"]
    assert [records[key]["filename"] for key in project["_via_image_id_list"]] == list(
        table["file"])
    for record in records.values():
        assert (out / record["filename"]).stat().st_size == record["size"]
    tasks = json.loads((out / "label-studio-tasks.json").read_text())
    names = [parse_qs(urlparse(t["data"]["image"]).query)["d"][0] for t in tasks]
    assert names == [f"{out.name}/{name}" for name in table["file"]]
    assert all((out.parent / name).is_file() for name in names)
    assert '<Label value="7"/>' in (out / "label-studio-config.xml").read_text()


def test_labelled_windows_come_back_as_written(suggested, tmp_path):
    _, out, _ = suggested
    table = pd.read_csv(out / "patches.csv")
    project = json.loads((out / "via-project.json").read_text())
    for record in project["_via_img_metadata"].values():
        for region in record["regions"]:                # the historian agrees with the guesses
            region["region_attributes"]["digit"] = region["region_attributes"]["suggested"]
    labelled = out / "via-labels.json"
    labelled.write_text(json.dumps(project))
    try:
        loaded = load_annotations(labelled)
    finally:
        labelled.unlink()
    assert loaded.problems == []
    got = sorted((p.rsplit("/", 1)[-1], x0, y0, x1, y1, d) for p, x0, y0, x1, y1, d in
                 loaded.boxes[["image", "x0", "y0", "x1", "y1", "digit"]].itertuples(index=False))
    want = sorted(table[["file", "x0", "y0", "x1", "y1", "suggested"]].itertuples(index=False,
                                                                               name=None))
    assert got == want
    unlabelled = load_annotations(out)                  # the patch set before labelling
    assert len(unlabelled.boxes) == 0 and len(unlabelled.problems) == 12
    assert all("no digit or number label" in p.reason for p in unlabelled.problems)
    assert import_labels(out / "via-project.json").skipped[("no label", "")] == 12


def test_an_existing_folder_is_not_overwritten(suggested):
    from annotations.suggest_command import suggest_labels_command

    corpus, out, _ = suggested
    result = CliRunner().invoke(suggest_labels_command, [str(corpus), "-o", str(out)])
    assert result.exit_code == 1 and "already holds patches.csv" in result.output


def _candidate(page, x, y, uncertainty, side=10):
    return {"page": page, "x": x, "y": y, "digit": 1, "score": 0.4, "second": 0.1,
            "uncertainty": uncertainty, "x0": x - 2, "y0": y - 3, "x1": x + 2, "y1": y + 3,
            "left": x - side // 2, "top": y - side // 2, "side": side, "rotation": 0}


def test_choose_windows_known_answer():
    candidates = pd.DataFrame([
        _candidate(0, 20, 20, 0.95), _candidate(0, 25, 22, 0.9),   # overlaps the 0.95 one
        _candidate(0, 60, 20, 0.8), _candidate(0, 90, 20, 0.7),
        _candidate(1, 20, 20, 0.5), _candidate(1, 26, 20, 0.45),   # overlaps the 0.5 one
        _candidate(1, 20, 40, 0.3)])
    chosen = choose_windows(candidates, 4)
    # round 1: the best of each page (0.95, 0.5); round 2: 0.8 and 0.3 (0.9, 0.45 overlap)
    assert list(zip(chosen["page"], chosen["uncertainty"], strict=True)) == [
        (0, 0.95), (0, 0.8), (1, 0.5), (1, 0.3)]
    assert list(choose_windows(candidates, 3)["uncertainty"]) == [0.95, 0.8, 0.5]
    assert len(choose_windows(candidates, 100)) == 5


def test_window_of_a_turned_page_is_upright():
    grey = (np.arange(100 * 80).reshape(100, 80) % 251).astype(np.uint8)
    row = _candidate(0, 40, 50, 0.5, side=20) | {"x0": 36, "y0": 45, "x1": 42, "y1": 55,
                                                 "rotation": 90}
    window = cut_window(grey, row)
    upright = grey[40:60, 30:50][:, ::-1].T          # turned by 90 degrees counter-clockwise
    assert (window.pixels == upright).all()
    # the box 6..12 x 5..15 of the crop, turned: x from y, y from 20 - x
    assert window.box == (5, 8, 15, 14)
