"""Annotation formats: the real Sphaera files parse, bad rows are reported by line, writers and
readers round-trip, and the shipped patch set is balanced and from training typefaces only."""

import numpy as np
import pandas as pd
import pytest

from annotations import (
    AnnotationProblem,
    default_patch_set,
    detect_format,
    load_annotations,
    make_patches,
    read_box_csv,
    split_number_box,
    validate,
    write_digit_boxes,
    write_number_boxes,
    write_patch_set,
)
from corpus_tools.synth import HELDOUT_TYPEFACES, TRAIN_TYPEFACES


def _real(shared_dir, name):
    return shared_dir / "data" / "real" / "metadata" / name


def test_real_number_boxes_parse(shared_dir):
    path = _real(shared_dir, "numerical_patches.csv")
    boxes, negatives, problems = read_box_csv(path)
    assert problems == [] and negatives == []
    assert len(boxes) == 5208          # 2,494 number boxes holding 5,208 digits
    first = boxes.iloc[:2]             # "352,845,51,36" labelled 24: split in two halves
    assert first[["x0", "y0", "x1", "y1", "digit"]].values.tolist() == [
        [352, 845, 378, 881, 2], [378, 845, 403, 881, 4]]
    loaded = load_annotations(path)
    assert len(loaded.boxes) == 0
    assert len(loaded.problems) == 494
    assert all("image not found" in p.reason for p in loaded.problems)
    assert str(loaded.problems[0]).startswith(f"{path}:2: image not found")


def test_real_digit_boxes_parse(shared_dir):
    path = _real(shared_dir, "digit_page_annotations.csv")
    boxes, _, problems = read_box_csv(path)
    assert problems == [] and len(boxes) == 3563
    assert boxes.iloc[0][["x0", "y0", "x1", "y1", "digit"]].tolist() == [2877, 3644, 2919, 3693, 0]
    assert boxes["image"].str.endswith(".jpg").all()      # URL page ids resolved to file names
    assert [p.reason.split(":")[0] for p in validate(path)] == ["image not found"] * 11


def test_split_number_box_known_answer():
    assert split_number_box((0, 5, 10, 9), "123") == [(0, 5, 3, 9), (3, 5, 7, 9), (7, 5, 10, 9)]
    assert split_number_box((4, 0, 9, 2), "7") == [(4, 0, 9, 2)]


def test_bad_rows_are_reported_with_line_numbers(tmp_path):
    from PIL import Image

    Image.new("L", (100, 50), 255).save(tmp_path / "page.png")
    (tmp_path / "boxes.csv").write_text(
        "page_id,xywh,number,note\n"
        "page.png,\"10,10,20,12\",42,ok\n"          # line 2: fine, two digits
        "page.png,\"10,10,20\",5,x\n"               # line 3: three numbers
        "page.png,\"10,10,20,12\",4a,x\n"           # line 4: not a number
        ",\"10,10,20,12\",5,x\n"                    # line 5: no image
        "page.png,\"-1,10,5,5\",5,x\n"              # line 6: negative x
        "page.png,\"90,10,20,12\",5,x\n"            # line 7: beyond the image
        "page.png,\"1,1,5,5\",\"7\n\",\"two\nlines\"\n"   # lines 8-10: multi-line cells, fine
        "page.png,\"10,10,20,12\",,x\n"             # line 11: box without label
        "gone.png,\"1,1,5,5\",3,x\n"                # line 12: missing image
    )
    loaded = load_annotations(tmp_path / "boxes.csv")
    where = {(p.line, p.reason.split(" ")[0]) for p in loaded.problems}
    assert {line for line, _ in where} == {3, 4, 5, 6, 7, 11, 12}
    assert (7, "box") in where and (12, "image") in where
    assert sorted(loaded.boxes["digit"]) == [2, 4, 7]
    assert all(isinstance(p, AnnotationProblem) for p in loaded.problems)
    assert str(AnnotationProblem("f.csv", None, "bad")) == "f.csv: bad"


def test_digit_box_round_trip(tmp_path):
    from PIL import Image

    for name in ("a.png", "b.png"):
        Image.new("L", (60, 40), 255).save(tmp_path / name)
    boxes = pd.DataFrame({"page_id": ["a.png", "b.png", "b.png"], "x0": [1, 5, 20],
                          "y0": [2, 6, 8], "x1": [9, 15, 30], "y1": [12, 20, 30],
                          "digit": [3, 0, 9]})
    write_digit_boxes(tmp_path / "digits.csv", boxes)
    assert detect_format(tmp_path / "digits.csv") == "page-boxes"
    loaded = load_annotations(tmp_path / "digits.csv")
    assert loaded.problems == []
    got = loaded.boxes.assign(page_id=loaded.boxes["image"].str.rsplit("/", n=1).str[-1])
    assert got[list(boxes.columns)].values.tolist() == boxes.values.tolist()
    assert (loaded.boxes.dtypes[["x0", "y0", "x1", "y1", "digit"]] == "int64").all()


def test_number_box_round_trip_splits_evenly(tmp_path):
    from PIL import Image

    Image.new("L", (200, 100), 255).save(tmp_path / "p.jpg")
    numbers = pd.DataFrame({"page_id": ["p.jpg", "p.jpg"], "x0": [10, 100], "y0": [5, 50],
                            "x1": [40, 120], "y1": [20, 70], "number": ["305", "07"]})
    write_number_boxes(tmp_path / "numbers.csv", numbers)
    text = (tmp_path / "numbers.csv").read_text().splitlines()
    assert text[0] == "page_id,xywh,number" and text[1] == 'p.jpg,"10,5,30,15",305'
    loaded = load_annotations(tmp_path / "numbers.csv")
    assert loaded.problems == []
    assert loaded.boxes[["x0", "x1", "digit"]].values.tolist() == [
        [10, 20, 3], [20, 30, 0], [30, 40, 5], [100, 110, 0], [110, 120, 7]]


def test_patch_set_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = {f"{k}.png": rng.integers(0, 255, (32, 32), dtype=np.uint8) for k in range(3)}
    boxes = pd.DataFrame({"file": ["0.png", "0.png", "1.png"], "x0": [1, 10, 3],
                          "y0": [2, 2, 4], "x1": [8, 18, 9], "y1": [12, 12, 14],
                          "digit": [5, 6, 1]})
    extra = pd.DataFrame({"file": list(images), "typeface": ["a, b", 'c"d', "e"]})
    write_patch_set(tmp_path / "set", images, boxes, extra.set_index("file"))
    assert detect_format(tmp_path / "set") == "patch-set"
    loaded = load_annotations(tmp_path / "set")
    assert loaded.problems == []
    assert [p.name for p in loaded.negatives] == ["2.png"]
    assert loaded.boxes[["x0", "y0", "x1", "y1", "digit"]].values.tolist() == \
        boxes[["x0", "y0", "x1", "y1", "digit"]].values.tolist()
    written = pd.read_csv(tmp_path / "set" / "patches.csv")
    assert list(written["typeface"]) == ["a, b", "a, b", 'c"d', "e"]


def test_synthetic_corpus_is_an_annotation_source(synthetic_corpus):
    loaded = load_annotations(synthetic_corpus)
    digits = pd.read_csv(synthetic_corpus / "truth" / "digits.csv")
    pages = pd.read_csv(synthetic_corpus / "truth" / "pages.csv")
    assert loaded.problems == []
    assert len(loaded.boxes) == len(digits)
    assert loaded.boxes[["x0", "y0", "x1", "y1", "digit"]].values.tolist() == \
        digits[["x0", "y0", "x1", "y1", "digit"]].values.tolist()
    without = set(pages["page_id"]) - set(digits["page_id"])
    assert without and {p.name for p in loaded.negatives} == without
    assert {pages.set_index("page_id").loc[name, "kind"] for name in without} <= \
        {"prose", "diagram", "title"}


def test_not_an_annotation_path(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="not a CSV"):
        load_annotations(tmp_path / "x.txt")
    problems = validate(tmp_path / "missing")
    assert len(problems) == 1 and problems[0].reason == "not found"
    (tmp_path / "header.csv").write_text("a,b\n1,2\n")
    assert "no image column" in validate(tmp_path / "header.csv")[0].reason


def test_shipped_patch_set_is_balanced_and_from_training_typefaces():
    folder = default_patch_set()
    loaded = load_annotations(folder)
    assert loaded.problems == []
    table = pd.read_csv(folder / "patches.csv")
    centred = table[table["file"].str.startswith("d")].drop_duplicates("file")
    assert centred["file"].str[1].astype(int).value_counts().sort_index().tolist() == [30] * 10
    assert len(loaded.negatives) == 150
    assert set(table["typeface"]) <= set(TRAIN_TYPEFACES)
    assert not set(table["typeface"]) & set(HELDOUT_TYPEFACES)
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 4_000_000
    # every patch named after a digit has that digit near its centre (jitter up to 6 px)
    for name, rows in table[table["digit"].notna()].groupby("file"):
        near = (((rows["x0"] + rows["x1"]) / 2 - 32).abs() <= 7) & \
            (((rows["y0"] + rows["y1"]) / 2 - 32).abs() <= 7)
        assert int(name[1]) in set(rows.loc[near, "digit"].astype(int)), name


@pytest.mark.slow  # 5-8 s: runs in `make test-slow` (CI)
def test_make_patches_is_reproducible(tmp_path):
    kwargs = dict(seed=3, per_digit=2, negatives=4, typefaces=("cardo",), pages_per_typeface=8)
    first = make_patches(tmp_path / "a", **kwargs).parent
    second = make_patches(tmp_path / "b", **kwargs).parent
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and len(names) == 2 * 10 + 4 + 1
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    with pytest.raises(ValueError, match="only"):
        make_patches(tmp_path / "c", seed=3, per_digit=500, negatives=0, typefaces=("cardo",),
                     pages_per_typeface=1)
    loaded = load_annotations(first)
    assert loaded.problems == [] and len(loaded.negatives) == 4
    assert ((loaded.boxes[["x0", "y0"]] >= 0).all().all()
            and (loaded.boxes[["x1", "y1"]] <= 64).all().all())
