"""Real print check: the 1604 climate table against a synthetic edition of the same numbers.

Builds a corpus of 100 synthetic pages, the 12 real non-table pages, the real 1604 climate-table
scan and one synthetic edition of its numbers (transcribed in
``corpus_tools/synth/data/climates_pifferi_1604.csv``, set by the generator in a typeface the
detector never saw), runs ``tables similarity`` with the default settings and prints where each
of the two pages ranks the other, the aligned rows and the explanation picture to look at.

Usage: python bench/check_real_climate_table.py [WORK_FOLDER] (default /tmp/real-climate-check);
needs ../shared/data/real beside the repository.
"""

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from corpus_tools.results_folder import pair_key
from corpus_tools.synth.astronomy import transcribed_table
from corpus_tools.synth.corpus import generate_corpus, make_page
from corpus_tools.synth.editions import Book, PagePlan, content_id, random_style
from corpus_tools.synth.pages import TablePrint, column_groups
from sphaera_tables.similarity import SimilarityOptions, run_similarity

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
REAL_PAGE = "1921_pifferi_sfera_1604_p368.jpg"
TRANSCRIPTION = (Path(__file__).resolve().parents[1] / "corpus_tools" / "synth" / "data"
                 / "climates_pifferi_1604.csv")
EDITION_TYPEFACE = "spectral"
SEED = 303


def climate_edition(target: Path) -> None:
    """One synthetic page printing the transcribed 1604 numbers (Italian headers)."""
    content = transcribed_table(TRANSCRIPTION, "climate", {
        "day_hours": ("longest day", "H"), "day_min": ("longest day", "M"),
        "lat_deg": ("latitude", "G"), "lat_min": ("latitude", "M")})
    rng = np.random.default_rng([SEED, 7])
    style = random_style(rng, [EDITION_TYPEFACE], "italian")
    book = Book("edition_1604", "Sfera", "", "", "", "", None, "", 1, style, 200.0)
    table = TablePrint("edition_1604-0", content_id(content), content,
                       tuple(range(len(content.rows))),
                       tuple(range(len(column_groups(content)))))
    image, _, _ = make_page(PagePlan("edition_1604.jpg", book, "table", 348, table), SEED, 0)
    cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main(work: Path) -> None:
    corpus, results = work / "corpus", work / "results"
    if not (corpus / "edition_1604.jpg").exists():
        generate_corpus(corpus, pages=100, seed=SEED)
        real = corpus / "real"
        real.mkdir()
        for page in sorted((REAL / "nontable").iterdir()):
            shutil.copy(page, real / page.name)
        shutil.copy(REAL / "tables" / REAL_PAGE, real / REAL_PAGE)
        climate_edition(corpus / "edition_1604.jpg")
    summary = run_similarity(corpus, results, SimilarityOptions())
    print(f"pages analysed: {summary.pages_ok}, skipped: {summary.pages_skipped}")
    pages = pd.read_csv(results / "pages.csv")
    ok = pages[pages.status == "ok"].page_id.tolist()
    similarity = np.load(results / "similarity.npy")
    np.fill_diagonal(similarity, -np.inf)
    real_id, edition_id = f"real/{REAL_PAGE}", "edition_1604.jpg"
    for query, other in ((real_id, edition_id), (edition_id, real_id)):
        row = similarity[ok.index(query)]
        order = np.argsort(-row)
        rank = int(np.nonzero(order == ok.index(other))[0][0]) + 1
        best = [f"{ok[j]} {row[j]:.3f}" for j in order[:3]]
        print(f"{query}: the other page ranks {rank}; best three: {best}")
    matches = pd.read_csv(results / "matches.csv")
    pair = matches[(matches.page_a == real_id) & (matches.page_b == edition_id)]
    print(f"listed in matches.csv: {not pair.empty}")
    explanation = results / "explanations" / f"{pair_key(real_id, edition_id)}.json"
    if explanation.exists():
        record = json.loads(explanation.read_text(encoding="utf-8"))
        for row in sorted(record["rows"], key=lambda r: r["row_a"]):
            print(f"  row {row['label_a']:>3} of A <-> row {row['label_b']:>3} of B: "
                  f"{row['cells']} cells agree")
        print(f"picture: {explanation.with_suffix('.png')}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/real-climate-check"))
