"""Metadata reader: the real Sphaera index, simple columns, per-book rows and bad rows."""

import pandas as pd
import pytest

from corpus_tools.metadata import (
    COLUMNS,
    book_id_from_page,
    metadata_for_pages,
    read_metadata,
    rows_naming_no_page,
)


def test_real_sphaera_index_reads_without_problems(shared_dir):
    path = shared_dir / "data" / "real" / "metadata" / "sphaera_tables_9793.csv"
    metadata, problems = read_metadata(path)
    assert problems == []
    assert list(metadata.columns) == list(COLUMNS)
    assert len(metadata) == 9793 and metadata["book_id"].nunique() == 263
    first = metadata.iloc[0]
    assert first["book_id"] == "1594_beyer_quaestiones_1550"
    assert first["author"] == "Sacrobosco, Johannes de;Beyer, Hartmann"
    assert first["place"] == "Wittenberg" and first["year"] == 1550
    assert first["handle"] == "hdl.handle.net/21.11103/sphaera.101121"
    assert str(metadata["year"].dtype) == "Int64"


def test_book_id_from_page():
    assert book_id_from_page("1594_beyer_quaestiones_1550_p101.jpg") == \
        "1594_beyer_quaestiones_1550"
    assert book_id_from_page("scans/a_b_p7.tif") == "a_b"
    assert book_id_from_page("loose.png") == "loose"
    # a folder per book, pages without a book in their names: the folder is the book
    assert book_id_from_page("Clavius 1585/0001.png") == "Clavius 1585"
    assert book_id_from_page("lib/Clavius 1585/0001.png") == "lib/Clavius 1585"
    assert book_id_from_page("scans/clavius.pdf#p0012") == "clavius"
    assert book_id_from_page("clavius_p3.tif#p0002") == "clavius"


def test_simple_columns_per_book_rows_and_bad_rows(tmp_path):
    path = tmp_path / "metadata.csv"
    path.write_text(
        "page_id,book_id,title,author,printer,publisher,place,year\n"
        "b1_p1.jpg,,\"Sphaera, with notes\",Clavius,Giunta;Ciotti,Giunta,Venice,1585\n"  # 2
        ",b2,Tabulae,Reinhold,Morhart,,Tübingen,1551.0\n"                               # 3
        "b3_p4.jpg,,Opus,Faber,,,Cologne,15x1\n"                                        # 4
        ",,Orphan,,,,,1500\n"                                                           # 5
        "b1_p1.jpg,,Again,,,,,1585\n"                                                   # 6
        "b4_p2.jpg,,Undated,,,,,\n"                                                     # 7
    )
    metadata, problems = read_metadata(path)
    assert [(p.line, p.reason.split(" ")[0]) for p in problems] == [
        (4, "year"), (5, "no"), (6, "duplicate")]
    assert str(problems[0]) == f"{path}:4: year '15x1' is not a year; the row is kept without " \
                               "a year"
    assert list(metadata["book_id"]) == ["b1", "b2", "b3", "b4"]
    assert metadata["year"].tolist()[:2] == [1585, 1551] and pd.isna(metadata["year"].iloc[2])
    assert metadata.loc[2, "place"] == "Cologne" and metadata.loc[2, "year_text"] == "15x1"
    metadata = metadata.drop(index=2).reset_index(drop=True)
    pages = metadata_for_pages(metadata, ["b2_p9.jpg", "b1_p1.jpg", "b9_p1.jpg"])
    assert list(pages["page_id"]) == ["b2_p9.jpg", "b1_p1.jpg", "b9_p1.jpg"]
    assert list(pages["book_id"]) == ["b2", "b1", "b9"]
    assert pages.loc[0, "printer"] == "Morhart" and pages.loc[0, "year"] == 1551
    assert pages.loc[1, "title"] == "Sphaera, with notes"
    assert pages.loc[2, "title"] == "" and pd.isna(pages.loc[2, "year"])


def test_unusable_files(tmp_path):
    (tmp_path / "no_ids.csv").write_text("title,year\nA,1500\n")
    with pytest.raises(ValueError, match="no page_id or book_id column"):
        read_metadata(tmp_path / "no_ids.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty file"):
        read_metadata(tmp_path / "empty.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00bad\x00")
    with pytest.raises(ValueError, match="cannot read"):
        read_metadata(tmp_path / "binary.csv")


#: year as catalogues write it -> (year, uncertain)
YEARS = {
    "1585": (1585, False), "1585?": (1585, True), "[1585]": (1585, True),
    "[ca. 1585]": (1585, True), "ca. 1585": (1585, True), "c1550": (1550, True),
    "circa 1550": (1550, True), "1585-1590": (1585, True), "1585/90": (1585, True),
    "MDCIV": (1604, False), "M.D.C.IV.": (1604, False), "MDL": (1550, False),
    "158-": (1580, True), "15--?": (1500, True), "1604.0": (1604, False),
    "1482-01-01": (1482, False), "": (None, False),
}


def test_years_as_catalogues_write_them_keep_their_rows(tmp_path):
    path = tmp_path / "metadata.csv"
    path.write_text("page_id,printer,place,year\n" + "".join(
        f'b{k}_p1.jpg,Giunta,Venezia,"{text}"\n' for k, text in enumerate(YEARS)),
        encoding="utf-8")
    metadata, problems = read_metadata(path)
    assert problems == []
    assert metadata["year_text"].tolist() == list(YEARS)
    got = [(None if pd.isna(year) else int(year), bool(uncertain))
           for year, uncertain in zip(metadata["year"], metadata["year_uncertain"], strict=True)]
    assert got == list(YEARS.values())
    assert set(metadata["printer"]) == {"Giunta"} and set(metadata["place"]) == {"Venezia"}


ROWS = "Page ID;Printer;Place;Year\nb1_p1.jpg;Ciotti;Venezia;1585\nb2_p1.jpg;Müller;Köln;1590\n"


@pytest.mark.parametrize(("encoding", "separator", "note"), [
    ("utf-8", ";", None), ("utf-8-sig", "\t", None), ("cp1252", ";", "Windows-1252"),
    ("utf-16", ",", "UTF-16"), ("latin-1", "|", "Windows-1252"),
])
def test_encodings_separators_and_header_case(tmp_path, encoding, separator, note):
    path = tmp_path / "metadata.csv"
    path.write_bytes(ROWS.replace(";", separator).encode(encoding))
    metadata, problems = read_metadata(path)
    assert metadata["printer"].tolist() == ["Ciotti", "Müller"]
    assert metadata["place"].tolist() == ["Venezia", "Köln"]
    assert metadata["year"].tolist() == [1585, 1590]
    if note is None:
        assert problems == []
    else:
        assert [p.line for p in problems] == [None]
        assert f"not UTF-8, read as {note}" in problems[0].reason
        assert "save it as UTF-8" in problems[0].reason


def test_a_binary_file_says_how_to_save_the_metadata(tmp_path):
    path = tmp_path / "metadata.csv"
    path.write_bytes(b"page_id,year\n\x00\x01\x02")
    with pytest.raises(ValueError, match="save it as UTF-8") as error:
        read_metadata(path)
    assert str(error.value).startswith(f"{path}: cannot read as CSV")


def test_rows_naming_no_page_are_reported(tmp_path):
    path = tmp_path / "metadata.csv"
    path.write_text("page_id,book_id,year\nb1_p1.jpg,,1585\nmissing_p2.jpg,,1585\n"
                    ",b1,1585\n,gone,1600\n")
    metadata, _ = read_metadata(path)
    problems = rows_naming_no_page(metadata, ["b1_p1.jpg", "b1_p2.jpg"], str(path))
    assert [str(p) for p in problems] == [
        f"{path}:3: page 'missing_p2.jpg' is not in the corpus; the row is not used",
        f"{path}:5: no page of book 'gone' is in the corpus; the row is not used"]
