"""Metadata reader: the real Sphaera index, simple columns, per-book rows and bad rows."""

import pandas as pd
import pytest

from corpus_tools.metadata import (
    COLUMNS,
    book_id_from_page,
    metadata_for_pages,
    read_metadata,
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
    assert str(problems[0]) == f"{path}:4: year '15x1' is not a year"
    assert list(metadata["book_id"]) == ["b1", "b2", "b4"]
    assert metadata["year"].tolist()[:2] == [1585, 1551] and pd.isna(metadata["year"].iloc[2])
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
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="cannot read"):
        read_metadata(tmp_path / "binary.csv")
