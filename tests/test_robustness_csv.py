"""Metadata and annotation CSV readers never crash on random or malformed input, and every
rejected row is reported with its physical line number (the header is line 1)."""

import csv
import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from annotations import load_annotations, read_box_csv, validate
from corpus_tools.metadata import read_metadata

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
_counter = itertools.count()

#: Characters that stress a CSV reader: separators, quotes, line breaks, NUL, non-ASCII.
CSV_CHARS = st.sampled_from(list('ab1, ;"\n\r\t\x00é€\ufeff') + ["\u2028"])
CELL_CHARS = st.sampled_from(list('ab1 ,;"\né'))
METADATA_HEADERS = ["page_id,book_id,title,year\n",
                    "page_id,credited_authors,short_title,year_of_publication\n",
                    "book_id,printer,place,year\n", ""]
ANNOTATION_HEADERS = ["page_id,xywh,number\n", "file,x0,y0,x1,y1,digit\n",
                      "page_id,xywh,element_label\n", ""]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder for the generated files, with one 100 x 60 px page image ``p.png``."""
    path = tmp_path_factory.mktemp("csv_fuzz")
    Image.fromarray(np.full((60, 100), 255, np.uint8)).save(path / "p.png")
    return path


def _new_file(folder: Path, data: bytes) -> Path:
    path = folder / f"input{next(_counter)}.csv"
    path.write_bytes(data)
    return path


def _csv_text(rows: list[list[str]]) -> tuple[str, list[int]]:
    """CSV text of ``rows`` (the first is the header) and the line on which each row starts."""
    text, starts, line = "", [], 1
    for row in rows:
        rendered = io.StringIO()
        csv.writer(rendered, lineterminator="\n").writerow(row)
        starts.append(line)
        text += rendered.getvalue()
        line += rendered.getvalue().count("\n")
    return text, starts


def _random_csv(header_choices):
    return st.builds(
        lambda header, body: header.encode() + body,
        st.sampled_from(header_choices),
        st.one_of(st.binary(max_size=400),
                  st.text(CSV_CHARS, max_size=200).map(lambda t: t.encode("utf-8"))),
    )


def _assert_problem_names_file_and_line(problem, path: Path, last_line: int) -> None:
    assert problem.file == str(path)
    assert problem.line is None or 2 <= problem.line <= last_line, problem
    where = str(path) if problem.line is None else f"{path}:{problem.line}"
    assert str(problem).startswith(f"{where}: ") and len(problem.reason) > 0
    assert "\n" not in problem.reason


def _assert_whole_file_error(error, path: Path, data: bytes, usable_headers,
                             *missing_columns: str) -> None:
    """A ``ValueError`` for the whole file is one line naming it, and only for what makes the
    whole file unusable: no text (binary: a NUL byte, or a UTF-16 mark that does not decode),
    no header row, or a header without the needed columns. A row the reader cannot take is a
    problem of that row, never of the file."""
    message = str(error)
    assert message.startswith(f"{path}: ") and "\n" not in message
    reason = message.removeprefix(f"{path}: ")
    with_usable_header = data.startswith(tuple(h.encode() for h in usable_headers))
    if reason.startswith("cannot read as CSV (binary data"):
        assert b"\x00" in data or data.startswith((b"\xff\xfe", b"\xfe\xff")), data
    elif reason == "empty file, expected a header row":
        assert not with_usable_header
        utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
        text = data.decode("utf-16" if utf16 else "utf-8-sig", errors="replace")
        assert text[:1] in ("", "\n", "\r"), data  # the first line is blank
    else:
        assert reason.startswith(missing_columns), reason
        assert not with_usable_header, data


@FUZZ
@given(data=_random_csv(METADATA_HEADERS))
def test_metadata_reader_never_crashes(folder, data):
    path = _new_file(folder, data)
    try:
        frame, problems = read_metadata(path)
    except ValueError as error:  # the whole file is unusable: one line naming it, and why
        _assert_whole_file_error(error, path, data, METADATA_HEADERS[:-1],
                                 "no page_id or book_id column")
        return
    last_line = max(1, data.count(b"\n") + data.count(b"\r") + 1)
    for problem in problems:
        _assert_problem_names_file_and_line(problem, path, last_line)
    assert len(frame) < last_line and len(problems) <= last_line


@FUZZ
@given(data=_random_csv(ANNOTATION_HEADERS))
def test_annotation_readers_never_crash(folder, data):
    path = _new_file(folder, data)
    last_line = max(1, data.count(b"\n") + data.count(b"\r") + 1)
    problems = validate(path)
    for problem in problems:
        _assert_problem_names_file_and_line(problem, path, last_line)
    try:
        loaded = load_annotations(path)
    except ValueError as error:
        _assert_whole_file_error(error, path, data, ANNOTATION_HEADERS[:-1],
                                 "no image column", "no label column", "no box columns")
        assert len(problems) == 1 and problems[0].line is None
        return
    assert [str(p) for p in loaded.problems] == [str(p) for p in problems]
    assert set(loaded.boxes["digit"]) <= set(range(10))


METADATA_ROW_KINDS = ["good", "good", "bad_year", "no_id", "duplicate"]


@FUZZ
@given(kinds=st.lists(st.sampled_from(METADATA_ROW_KINDS), max_size=12),
       titles=st.lists(st.text(CELL_CHARS, max_size=12), min_size=12, max_size=12),
       years=st.lists(st.sampled_from(["1550", "", "1604.0", "1482-01-01"]), min_size=12,
                      max_size=12))
def test_metadata_rejections_name_their_line(folder, kinds, titles, years):
    rows, bad_rows, good = [["page_id", "book_id", "title", "year"]], [], {}
    for k, kind in enumerate(kinds):
        page_id = f"b{k}_p{k}.jpg"
        if kind == "duplicate" and good:
            page_id = next(iter(good))
        elif kind == "duplicate":
            kind = "good"
        rows.append(["" if kind == "no_id" else page_id, "", titles[k],
                     "15x1" if kind == "bad_year" else years[k]])
        if kind in ("good", "bad_year"):  # a year that is no year keeps its row
            good[page_id] = titles[k].strip()
        if kind != "good":
            bad_rows.append(k + 1)
    text, starts = _csv_text(rows)
    path = _new_file(folder, text.encode("utf-8"))
    frame, problems = read_metadata(path)
    assert [p.line for p in problems] == [starts[i] for i in bad_rows]
    assert frame["page_id"].tolist() == list(good)
    assert frame["title"].tolist() == list(good.values())


def test_a_row_the_csv_reader_cannot_take_is_named_by_its_line_and_the_rest_is_kept(tmp_path):
    """A cell beyond the csv module's size limit (131,072 characters: a pasted blob, a quote
    left open across the rest of a large file) loses its own row, not the file."""
    blob = "x" * 200_000
    path = tmp_path / "metadata.csv"
    path.write_text("page_id,title,year\n"
                    "a_p1.jpg,Sphaera,1550\n"
                    f'b_p2.jpg,"{blob}",1551\n'            # line 3: one cell too large
                    "c_p3.jpg,Theoricae,15x1\n"            # line 4: kept without a year
                    f'd_p4.jpg,"{blob[:60_000]}\n{blob[:60_000]}",1552\n'  # lines 5-6: fits
                    "e_p5.jpg,Tabulae,1553\n", encoding="utf-8")
    frame, problems = read_metadata(path)
    assert frame["page_id"].tolist() == ["a_p1.jpg", "c_p3.jpg", "d_p4.jpg", "e_p5.jpg"]
    assert frame["line"].tolist() == [2, 4, 5, 7]
    assert frame["year"].tolist()[:1] + frame["year"].tolist()[2:] == [1550, 1552, 1553]
    assert [(p.line, p.reason.split(" (")[0]) for p in problems] == [
        (3, "cannot read the row as CSV"), (4, "year '15x1' is not a year; the row is kept "
                                               "without a year")]
    assert "field larger than field limit" in problems[0].reason
    assert str(problems[0]).startswith(f"{path}:3: ")


ANNOTATION_ROWS = {
    # kind: (page_id, xywh, number, boxes it yields)
    "good": ("p.png", "10,5,30,20", "123", 3),
    "good_one": ("p.png", "0,0,10,60", "7", 1),
    "negative": ("p.png", "", "", 0),
    "letters": ("p.png", "10,5,30,20", "1a", None),
    "roman": ("p.png", "10,5,30,20", "XII", None),
    "three_numbers": ("p.png", "10,5,30", "12", None),
    "negative_start": ("p.png", "-1,5,30,20", "12", None),
    "too_small": ("p.png", "10,5,2,20", "123", None),
    "not_a_number": ("p.png", "10,5,3.5,20", "1", None),
    "beyond": ("p.png", "90,50,20,20", "12", None),
    "no_label": ("p.png", "10,5,30,20", "", None),
    "missing_image": ("missing{k}.png", "10,5,30,20", "12", None),
    "no_image": ("", "10,5,30,20", "12", None),
}


@pytest.mark.slow  # 5-8 s: runs in `make test-slow` (CI)
@FUZZ
@given(kinds=st.lists(st.sampled_from(sorted(ANNOTATION_ROWS)), max_size=14),
       padding=st.lists(st.sampled_from(["", " ", "\n"]), min_size=14, max_size=14))
def test_annotation_rejections_name_their_line(folder, kinds, padding):
    rows, expected_bad, expected_boxes = [["page_id", "xywh", "number"]], [], 0
    for k, kind in enumerate(kinds):
        page_id, xywh, number, boxes = ANNOTATION_ROWS[kind]
        rows.append([page_id.format(k=k), xywh, number and padding[k] + number + padding[k]])
        if boxes is None:
            expected_bad.append(k + 1)
        else:
            expected_boxes += boxes
    text, starts = _csv_text(rows)
    path = _new_file(folder, text.encode("utf-8"))
    problems = validate(path)
    assert sorted({p.line for p in problems}) == [starts[i] for i in expected_bad]
    loaded = load_annotations(path)
    assert len(loaded.boxes) == expected_boxes
    assert all(0 <= x0 < x1 <= 100 and 0 <= y0 < y1 <= 60 for x0, y0, x1, y1 in
               loaded.boxes[["x0", "y0", "x1", "y1"]].itertuples(index=False))


FORMULA_NAMES = ["=1+1.png", "+49 30.png", "-2.png", "@SUM(A1).png", "\tTab.png",
                 "\rReturn.png", "'quoted.png"]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised_and_read_back(tmp_path):
    from corpus_tools.storage import csv_cell_text, spreadsheet_safe, write_csv_atomic

    frame = pd.DataFrame({"page_id": [*FORMULA_NAMES, "plain.png"],
                          "score": [-0.5] * (len(FORMULA_NAMES) + 1)})
    write_csv_atomic(tmp_path / "x.csv", frame)
    with open(tmp_path / "x.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    assert all(row[0].startswith("'") for row in rows[:-1]) and rows[-1][0] == "plain.png"
    assert [csv_cell_text(row[0]) for row in rows] == frame["page_id"].tolist()
    assert {row[1] for row in rows} == {"-0.5"}  # numbers stay numbers
    assert spreadsheet_safe(3) == 3


@pytest.mark.slow  # 5-8 s: runs in `make test-slow` (CI)
def test_a_corpus_run_writes_no_live_formula(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    real = Path(__file__).parents[2] / "shared" / "data" / "real" / "tables" / \
        "1921_pifferi_sfera_1604_p368.jpg"
    page = Image.open(real).convert("L").crop((200, 400, 520, 640))
    for name in FORMULA_NAMES:
        page.save(corpus / name)
    (corpus / "metadata.csv").write_text(
        'page_id,printer,place,year\n"=1+1.png","=HYPERLINK(""http://x"")",@Venezia,1585\n',
        encoding="utf-8")
    from sphaera_tables.similarity import SimilarityOptions, run_similarity

    run_similarity(corpus, tmp_path / "out", SimilarityOptions(
        min_score=0.0, explain=True, links=3, report=False, networks=False))
    for name in ("pages.csv", "matches.csv", "variants.csv"):
        with open(tmp_path / "out" / name, newline="", encoding="utf-8") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        live = [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))
                or (cell.startswith("-") and not _number(cell))]
        assert live == [], (name, live)
    pages = pd.read_csv(tmp_path / "out" / "pages.csv", keep_default_na=False)
    assert sorted(pages["page_id"]) == sorted("'" + name for name in FORMULA_NAMES)
    row = pages.set_index("page_id").loc["'=1+1.png"]
    assert (row["printer"], row["place"]) == ("'=HYPERLINK(\"http://x\")", "'@Venezia")


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_an_annotation_row_the_csv_reader_cannot_take_is_named_and_the_rest_kept(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text('page_id,xywh,number\np.png,"10,5,30,20",12\n'
                    f'p.png,"{"9" * 200_000}",3\n'        # line 3: a cell too large
                    'q.png,"0,0,10,60",7\n', encoding="utf-8")
    boxes, _, problems = read_box_csv(path)
    assert sorted(boxes["line"].unique().tolist()) == [2, 4]
    assert [(p.line, p.reason.split(" (")[0]) for p in problems] == [
        (3, "cannot read the row as CSV")]
