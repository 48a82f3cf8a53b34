"""The synthetic corpus: folder contract, determinism, and ground truth that is right."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from corpus_tools.synth import HELDOUT_TYPEFACES, TRAIN_TYPEFACES, generate_corpus
from corpus_tools.synth.corpus import make_page, plan_corpus


def _read(corpus):
    truth = corpus / "truth"
    return (pd.read_csv(truth / "pages.csv"), pd.read_csv(truth / "tables.csv", dtype={
        "source_book_id": str}, keep_default_na=False), pd.read_csv(
        truth / "digits.csv", dtype={"instance_id": str, "cell_key": str}, keep_default_na=False))


def _printed_numbers(digits):
    """cell_key -> list of (page_id, printed string) for every number printed in a table."""
    table_digits = digits[digits["cell_key"] != ""].sort_values(["page_id", "number_id",
                                                                  "position"])
    numbers = table_digits.groupby(["page_id", "number_id", "cell_key"])["digit"].apply(
        lambda d: "".join(map(str, d)))
    found = {}
    for (page_id, _, cell_key), text in numbers.items():
        found.setdefault(cell_key, []).append((page_id, text))
    return found


def _undo_misprints(text, cell_key, misprints):
    chars = list(text)
    for key, position, printed, true in misprints:
        if key == cell_key:
            assert chars[position] == str(printed)
            chars[position] = str(true)
    return "".join(chars)


def test_folder_contract(synthetic_corpus):
    pages, tables, digits = _read(synthetic_corpus)
    images = sorted(p.name for p in synthetic_corpus.rglob("*") if p.suffix in (".jpg", ".png"))
    assert images == sorted(pages["page_id"]) and len(images) == 16
    assert all(p.parent == synthetic_corpus for p in synthetic_corpus.rglob("*.jpg"))
    metadata = pd.read_csv(synthetic_corpus / "metadata.csv")
    assert list(metadata.columns) == ["page_id", "book_id", "title", "author", "printer",
                                      "publisher", "place", "year", "handle"]
    assert list(metadata["page_id"]) == list(pages["page_id"])
    assert all(page.startswith(book + "_p") for page, book in
               zip(metadata["page_id"], metadata["book_id"], strict=True))
    assert set(pages["kind"]) <= {"table", "prose", "diagram", "title"}
    assert set(pages["rotation"]) <= {0, 90, -90}
    for row in pages.itertuples():
        with Image.open(synthetic_corpus / row.page_id) as image:
            assert image.size == (row.width, row.height)
    merged = digits.merge(pages, on="page_id", suffixes=("", "_page"))
    assert ((merged["x0"] >= 0) & (merged["y0"] >= 0) & (merged["x1"] <= merged["width"])
            & (merged["y1"] <= merged["height"]) & (merged["x1"] > merged["x0"])
            & (merged["y1"] > merged["y0"])).all()
    assert (merged["typeface"] == merged["typeface_page"]).all()
    assert tables["instance_id"].is_unique
    assert set(tables["page_id"]) == set(pages.loc[pages["kind"] == "table", "page_id"])
    assert set(digits["instance_id"]) - {""} == set(tables["instance_id"])
    letters = pd.read_csv(synthetic_corpus / "truth" / "letters.csv.gz", keep_default_na=False)
    placed = letters.merge(pages, on="page_id", suffixes=("", "_page"))
    assert len(placed) == len(letters) and (placed["typeface"] == placed["typeface_page"]).all()
    assert ((placed["x0"] >= 0) & (placed["y0"] >= 0) & (placed["x1"] <= placed["width"])
            & (placed["y1"] <= placed["height"]) & (placed["x1"] > placed["x0"])).all()
    assert set(pages.page_id) == set(letters.page_id)  # every page prints words
    assert (letters.char.str.len() == 1).all() and not letters.char.str.isspace().any()
    # number ids are unique within a page and positions count from 0 inside each number
    for _, number in digits.groupby(["page_id", "number_id"]):
        assert sorted(number["position"]) == list(range(len(number)))
        assert number["cell_key"].nunique() == 1


def test_same_seed_gives_identical_bytes(tmp_path):
    first = generate_corpus(tmp_path / "a", pages=4, seed=5, dpi_range=(150, 160))
    second = generate_corpus(tmp_path / "b", pages=4, seed=5, dpi_range=(150, 160))
    other = generate_corpus(tmp_path / "c", pages=4, seed=6, dpi_range=(150, 160))
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert len(files) == 4 + 5
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "truth" / "digits.csv").read_bytes() != \
        (other / "truth" / "digits.csv").read_bytes()


def test_digit_boxes_cover_the_ink_of_their_digit(synthetic_corpus, synthetic_corpus_args):
    """Redraw each page with its clean canvas, label every clean pixel of ink with the digit it
    belongs to, send the labels through the page's scan geometry: each digit's ink must land
    in its box of digits.csv, and the saved image must be that page."""
    pages, _, digits = _read(synthetic_corpus)
    args = synthetic_corpus_args
    plans = plan_corpus(args["pages"], args["seed"], dpi_range=args["dpi_range"])
    checked = 0
    for index, plan in enumerate(plans):
        image, geometry, canvas = make_page(plan, args["seed"], index)
        with Image.open(synthetic_corpus / plan.page_id) as opened:
            saved = np.asarray(opened, dtype=np.float32)
        assert saved.shape == image.shape
        assert np.abs(saved - image).mean() < 8          # JPEG loss of a noisy scan only
        rows = digits[digits["page_id"] == plan.page_id]
        assert len(rows) == len(canvas.digits)
        if rows.empty:
            continue
        ink = canvas.ink() > 0.5
        labels = np.zeros(ink.shape, dtype=np.float32)
        for number, record in enumerate(canvas.digits, start=1):
            x0, y0, x1, y1 = record.box
            region = labels[y0:y1, x0:x1]
            region[ink[y0:y1, x0:x1] & (region == 0)] = number
        moved = geometry.frame(geometry.warp(labels, nearest=True), 0).astype(int)
        totals = np.bincount(moved.ravel(), minlength=len(rows) + 1)
        for number, row in enumerate(rows.itertuples(), start=1):
            inside = (moved[row.y0: row.y1, row.x0: row.x1] == number).sum()
            assert totals[number] > 0 and inside / totals[number] > 0.97, (plan.page_id, row)
            assert row.digit == canvas.digits[number - 1].digit
            checked += 1
    assert checked == len(digits)
    # and the saved image has dark ink inside every box
    for page_id, rows in digits.groupby("page_id"):
        with Image.open(synthetic_corpus / page_id) as opened:
            grey = np.asarray(opened.convert("L"), dtype=np.float32)
        paper = np.median(grey)
        for row in rows.itertuples():
            assert paper - grey[row.y0: row.y1, row.x0: row.x1].min() > 50, row


def test_digits_at_150_dpi_are_as_large_as_in_the_real_scan(tmp_path):
    corpus = generate_corpus(tmp_path / "c", pages=6, seed=2, dpi_range=(150, 150))
    pages, _, digits = _read(corpus)
    upright = digits.merge(pages[["page_id", "rotation"]])
    upright = upright[(upright["rotation"] == 0) & (upright["instance_id"] != "")]
    heights = upright["y1"] - upright["y0"]
    assert 10 <= heights.median() <= 14
    assert (pages["dpi"] == 150).all()


def _expected(table_type, params, row, column):
    """The true number of a content cell, recomputed here from the period formulas."""
    eps = math.radians(params.get("obliquity", 0))

    def deg_min(value, index):
        total = round(value * 60)
        return (total // 60, total % 60)[index]

    if table_type == "declination":
        if column == 0:
            return row + 1
        longitude = math.radians(90 * params["signs"] + 30 * ((column - 1) // 2) + row + 1)
        value = abs(math.degrees(math.asin(math.sin(eps) * math.sin(longitude))))
        return deg_min(value, (column - 1) % 2)
    if table_type == "right_ascension":
        if column == 0:
            return row + 1
        longitude = math.radians(90 * params["signs"] + 30 * ((column - 1) // 2) + row + 1)
        value = math.degrees(math.atan2(math.cos(eps) * math.sin(longitude),
                                        math.cos(longitude))) % 360
        return deg_min(value, (column - 1) % 2)
    if table_type == "climate":
        day = 12.5 + 0.5 * row if params["climates"] == 24 else 12.75 + 0.25 * row
        if column == 0:
            return row + 1 if params["climates"] == 24 else 1 + max(0, row - 1) // 2
        if column in (1, 2):
            return deg_min(day, column - 1)
        half_arc = math.radians(day * 7.5)
        latitude = 90 - params["obliquity"] if day >= 24 else math.degrees(
            math.atan(-math.cos(half_arc) / math.tan(eps)))
        return deg_min(latitude, column - 3)
    return None


def test_table_numbers_follow_their_formulas(synthetic_corpus):
    _, tables, digits = _read(synthetic_corpus)
    numbers = _printed_numbers(digits)
    instances = tables.set_index("page_id")
    checked = set()
    for cell_key, printed in numbers.items():
        content_id, row, column = cell_key.rsplit(":", 2)
        for page_id, text in printed:
            record = instances.loc[page_id]
            expected = _expected(record["table_type"], json.loads(record["params"]), int(row),
                                 int(column))
            if expected is None:
                continue
            true_text = _undo_misprints(text, cell_key, json.loads(record["misprints"]))
            assert true_text == str(expected), (cell_key, page_id, text)
            checked.add(record["table_type"])
    assert checked == {"declination", "right_ascension", "climate"}


def test_editions_share_numbers_except_recorded_misprints(synthetic_corpus):
    _, tables, digits = _read(synthetic_corpus)
    misprints = {row.page_id: json.loads(row.misprints) for row in tables.itertuples()}
    shared = 0
    for cell_key, printed in _printed_numbers(digits).items():
        restored = {_undo_misprints(text, cell_key, misprints[page]) for page, text in printed}
        assert len(restored) == 1, (cell_key, printed)
        shared += len(printed) > 1
    assert shared > 30
    recorded = sum(len(m) for m in misprints.values())
    assert recorded > 0


def test_copies_name_an_earlier_book_that_printed_the_table(synthetic_corpus):
    _, tables, _ = _read(synthetic_corpus)
    metadata = pd.read_csv(synthetic_corpus / "metadata.csv").drop_duplicates("book_id")
    year = dict(zip(metadata["book_id"], metadata["year"], strict=True))
    copies = tables[tables["source_book_id"] != ""]
    assert len(copies) >= 2
    for copy in copies.itertuples():
        assert year[copy.source_book_id] <= year[copy.book_id]
        printed_there = tables[(tables["book_id"] == copy.source_book_id)]
        assert copy.content_id in set(printed_there["content_id"])


def test_split_tables_continue_on_the_next_page(synthetic_corpus):
    _, tables, _ = _read(synthetic_corpus)
    parts = tables[tables["part"] > 0]
    assert len(parts) >= 2
    for first in parts[parts["part"] == 1].itertuples():
        number = int(first.page_id.rsplit("_p", 1)[1].split(".")[0])
        second = tables[tables["page_id"] == f"{first.book_id}_p{number + 1:03d}.jpg"].iloc[0]
        assert second["part"] == 2 and second["content_id"] == first.content_id
        rows_1, rows_2 = json.loads(first.rows), json.loads(second["rows"])
        assert rows_1[-1] + 1 == rows_2[0]


def test_real_metadata_gives_real_books(tmp_path, shared_dir):
    index = shared_dir / "data" / "real" / "metadata" / "sphaera_tables_9793.csv"
    corpus = generate_corpus(tmp_path / "c", pages=12, seed=3, metadata_csv=index,
                             dpi_range=(150, 150))
    real = pd.read_csv(index)
    real["book_id"] = real["page_id"].str.replace(r"_p\d+\.jpg$", "", regex=True)
    real = real.drop_duplicates("book_id").set_index("book_id")
    metadata = pd.read_csv(corpus / "metadata.csv")
    for row in metadata.itertuples():
        assert row.book_id in real.index
        assert row.printer == real.loc[row.book_id, "printers"]
        assert row.year == real.loc[row.book_id, "year_of_publication"]
        assert row.handle == real.loc[row.book_id, "handle"]


def test_typeface_selection(tmp_path):
    assert not set(TRAIN_TYPEFACES) & set(HELDOUT_TYPEFACES)
    corpus = generate_corpus(tmp_path / "h", pages=4, seed=1, typefaces="heldout",
                             dpi_range=(150, 150))
    pages, _, digits = _read(corpus)
    assert set(pages["typeface"]) <= set(HELDOUT_TYPEFACES)
    assert set(digits["typeface"]) <= set(HELDOUT_TYPEFACES)
    with pytest.raises(ValueError, match="unknown typeface nosuch"):
        generate_corpus(tmp_path / "x", pages=2, typefaces="cardo,nosuch")


def test_bad_arguments_and_folders(tmp_path):
    with pytest.raises(ValueError, match="pages"):
        generate_corpus(tmp_path / "x", pages=0)
    with pytest.raises(ValueError, match="dpi"):
        generate_corpus(tmp_path / "x", pages=1, dpi_range=(300, 150))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_corpus(busy, pages=1)
    assert (busy / "notes.txt").read_text() == "mine"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        generate_corpus(blocker / "corpus", pages=1)


def test_lining_typefaces_set_figures_as_tall_as_capitals():
    """``-lining`` typefaces print lining figures (cap height), the others old-style figures
    (a 0 of x-height), from the same font files."""
    from corpus_tools.synth.typefaces import digit_height_em, load_font

    def height(font, text):
        box = font.getbbox(text, anchor="ls", features=font.features)
        return (box[3] - box[1]) / 200

    for name in ("spectral", "cormorant-garamond-italic", "eb-garamond"):
        old_style, lining = load_font(name, 200), load_font(f"{name}-lining", 200)
        cap_height = height(old_style, "H")
        assert digit_height_em(f"{name}-lining") == pytest.approx(cap_height, rel=0.06)
        assert height(lining, "0") == pytest.approx(cap_height, rel=0.06)
        assert height(old_style, "0") < 0.9 * cap_height
    assert {"-lining" in name for name in TRAIN_TYPEFACES} == {True, False}
    assert {"-lining" in name for name in HELDOUT_TYPEFACES} == {True, False}


def test_letter_boxes_hold_their_letter_on_the_saved_page(synthetic_corpus, synthetic_corpus_args):
    """Each letter's box, sent through the page's scan geometry, holds that letter's ink: the
    saved image is dark there, and as many letters are recorded as the clean page printed."""
    letters = pd.read_csv(synthetic_corpus / "truth" / "letters.csv.gz", keep_default_na=False)
    args = synthetic_corpus_args
    plans = plan_corpus(args["pages"], args["seed"], dpi_range=args["dpi_range"])
    for index, plan in enumerate(plans[:6]):
        _, _, canvas = make_page(plan, args["seed"], index)
        rows = letters[letters.page_id == plan.page_id]
        assert "".join(rows.char) == "".join(r.char for r in canvas.letters)
        with Image.open(synthetic_corpus / plan.page_id) as opened:
            grey = np.asarray(opened.convert("L"), dtype=np.float32)
        paper = np.median(grey)
        large = rows[(rows.x1 - rows.x0) * (rows.y1 - rows.y0) >= 40]
        dark = [paper - grey[r.y0: r.y1, r.x0: r.x1].min() > 50 for r in large.itertuples()]
        assert np.mean(dark) > 0.99, plan.page_id
