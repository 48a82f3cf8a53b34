"""The corpus run end to end: results-folder contract, conservation, resume, CLI."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from corpus_tools.ingest import safe_name
from corpus_tools.storage import load_sparse
from corpus_tools.synth import generate_corpus
from digit_detector.page import load_page
from digit_detector.weights import load_detector
from sphaera_tables.cells import N_CELL_FEATURES
from sphaera_tables.cli import main
from sphaera_tables.collation import AGREEMENT_POWER
from sphaera_tables.number_links import explain_match
from sphaera_tables.page_analysis import FeatureConfig, PageAnalysis, analyse_page
from sphaera_tables.page_task import cached_analysis_loader
from sphaera_tables.scoring import CorpusStatistics, ScoreModel, page_maps
from sphaera_tables.similarity import SimilarityOptions, results_scoring, run_similarity

FAST = SimilarityOptions(min_score=0.0, top_k=2, networks=False, report=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    generate_corpus(folder, pages=6, seed=11, dpi_range=(150, 150))
    return folder


@pytest.fixture(scope="module")
def results(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    summary = run_similarity(corpus, out, FAST)
    return out, summary


def test_results_folder_follows_the_contract(corpus, results):
    out, summary = results
    pages = pd.read_csv(out / "pages.csv", keep_default_na=False)
    assert len(pages) == 6 and set(pages.status) == {"ok"}
    assert {"page_id", "status", "width", "height", "scale", "book_id", "printer", "place",
            "year"} <= set(pages.columns)
    features = np.load(out / "features.npy", allow_pickle=False)
    assert features.shape == (6, 100) and features.dtype == np.float32
    norms = np.linalg.norm(features, axis=1)
    assert (norms < 1).all()
    cells = load_sparse(out / "cell_features.npz")
    assert cells.shape == (6, N_CELL_FEATURES)
    similarity = np.load(out / "similarity.npy", allow_pickle=False)
    np.testing.assert_allclose(similarity, features @ features.T + (cells @ cells.T).toarray(),
                               atol=1e-5)
    matches = pd.read_csv(out / "matches.csv")
    assert list(matches.columns) == ["page_a", "page_b", "score", "rank", "similarity",
                                     "cells_agree", "cells_differ"]
    assert (matches.page_a != matches.page_b).all()
    for _page_a, group in matches.groupby("page_a"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group.score.is_monotonic_decreasing
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["inputs"]) == set(pages.page_id)
    assert summary.matches == len(matches) and summary.pages_ok == 6


def test_scores_are_dot_products_of_features(results):
    out, _ = results
    pages = pd.read_csv(out / "pages.csv")
    features = np.load(out / "features.npy")
    cells = load_sparse(out / "cell_features.npz")
    row = {p: i for i, p in enumerate(pages.page_id)}
    matches = pd.read_csv(out / "matches.csv")
    assert len(matches) > 0
    for match in matches.itertuples():
        a, b = row[match.page_a], row[match.page_b]
        expected = features[a] @ features[b] + cells[a].multiply(cells[b]).sum()
        assert match.similarity == pytest.approx(expected, abs=1e-5)
        aligned = match.cells_agree + match.cells_differ
        agreement = match.cells_agree / aligned if aligned else 1.0
        assert match.score == pytest.approx(expected * agreement ** AGREEMENT_POWER, abs=1e-5)


def test_every_match_has_a_conservative_explanation(results):
    out, summary = results
    matches = pd.read_csv(out / "matches.csv")
    assert summary.explanations_written == len(matches) > 0
    for match in matches.itertuples():
        key = f"{safe_name(match.page_a)}__{safe_name(match.page_b)}"
        record = json.loads((out / "explanations" / f"{key}.json").read_text())
        assert (out / "explanations" / f"{key}.png").stat().st_size > 1000
        assert record["page_a"] == match.page_a and record["page_b"] == match.page_b
        assert record["explained"] == pytest.approx(match.similarity, abs=1e-5)
        assert record["score"] == pytest.approx(match.score, abs=1e-5)
        assert (record["cells_agree"], record["cells_differ"]) == (match.cells_agree,
                                                                   match.cells_differ)
        assert record["residual"] < 1e-6
        relevances = [link["relevance"] for link in record["links"]]
        assert relevances == sorted(relevances, reverse=True)


def test_rerun_reuses_every_page_and_gives_identical_outputs(corpus, results, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(results[0], out)
    again = run_similarity(corpus, out, FAST)
    assert again.pages_reused == 6 and again.explanations_written == 0
    fresh = tmp_path / "fresh"
    run_similarity(corpus, fresh, SimilarityOptions(min_score=0.0, top_k=2, explain=False,
                                                    networks=False, report=False))
    np.testing.assert_array_equal(np.load(out / "features.npy"), np.load(fresh / "features.npy"))
    assert (out / "matches.csv").read_text() == (fresh / "matches.csv").read_text()


def test_page_analysis_conserves_and_round_trips(corpus, results):
    out, _ = results
    load = cached_analysis_loader(out)
    page_id = pd.read_csv(out / "pages.csv").page_id[1]
    cached = load(page_id)
    np.testing.assert_allclose(cached.factors.sum(axis=1), cached.phi, rtol=1e-9, atol=1e-12)
    fresh = analyse_page(load_page(corpus / page_id), load_detector(), FeatureConfig())
    np.testing.assert_allclose(fresh.phi, cached.phi)
    again = PageAnalysis.from_arrays(fresh.to_arrays())
    pd.testing.assert_frame_equal(again.digits, fresh.digits)
    assert again.page_shape == fresh.page_shape and again.rotation == fresh.rotation


def test_explanation_is_symmetric_and_sums_to_the_score(results):
    out, _ = results
    load = cached_analysis_loader(out)
    ids = pd.read_csv(out / "pages.csv").page_id
    a, b = load(ids[0]), load(ids[1])
    statistics, scoring = results_scoring(out)
    ma = page_maps(a.phi, a.cells.counts(), statistics, scoring)
    mb = page_maps(b.phi, b.cells.counts(), statistics, scoring)
    ab = explain_match(a, ma, b, mb)
    ba = explain_match(b, mb, a, ma)
    np.testing.assert_allclose(ab.relevance, ba.relevance.T)
    similarity = np.load(out / "similarity.npy")
    assert ab.relevance.sum() == pytest.approx(similarity[0, 1], abs=1e-6)
    assert ab.residual < 1e-9


def test_threshold_below_blob_self_overlap_is_refused():
    config = FeatureConfig(threshold=0.05)
    with pytest.raises(ValueError, match="overlap"):
        config.head(load_detector().config)


def test_cli_reports_skipped_pages_with_exit_code_3(corpus, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    first = sorted(corpus.glob("*.jpg"))[0]
    (mixed / first.name).write_bytes(first.read_bytes())
    (mixed / "broken.jpg").write_bytes(b"not an image at all")
    (mixed / "empty.png").write_bytes(b"")
    result = CliRunner().invoke(main, ["similarity", str(mixed), "-o", str(tmp_path / "out"),
                                       "--quiet", "--no-report"])
    assert result.exit_code == 3, result.output
    pages = pd.read_csv(tmp_path / "out" / "pages.csv").set_index("page_id")
    assert pages.loc[first.name, "status"] == "ok"
    assert pages.loc["broken.jpg", "status"].startswith("skipped: not a readable image")
    assert pages.loc["empty.png", "status"] == "skipped: empty file (0 bytes)"
    assert "skipped: 2" in result.output


def test_cli_refuses_a_locked_results_folder(corpus, tmp_path):
    from corpus_tools.storage import folder_lock

    with folder_lock(tmp_path / "out"):
        result = CliRunner().invoke(main, ["similarity", str(corpus), "-o",
                                           str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert "is in use by process" in result.output


def _neutral_score(path_a, path_b) -> float:
    """The score of two pages on their own, from their features (not their explanation)."""
    features = []
    for path in (path_a, path_b):
        analysis = analyse_page(load_page(path), load_detector(), FeatureConfig())
        counts = analysis.cells.counts()
        maps = page_maps(analysis.phi, counts, CorpusStatistics.neutral(), ScoreModel())
        features.append(maps.features(analysis.phi, counts))
    (bigram_a, cells_a), (bigram_b, cells_b) = features
    return float(bigram_a @ bigram_b + cells_a.multiply(cells_b).sum())


def test_explain_command_writes_pictures_and_json(corpus, tmp_path):
    pages = sorted(corpus.glob("*.jpg"))[:2]
    target = tmp_path / "pair.png"
    result = CliRunner().invoke(main, ["explain", str(pages[0]), str(pages[1]), "-o",
                                       str(target), "--no-pixels"])
    assert result.exit_code == 0, result.output
    record = json.loads(target.with_suffix(".json").read_text())
    assert record["residual"] < 1e-6
    assert record["score"] == pytest.approx(_neutral_score(*pages), abs=1e-9)
    assert target.stat().st_size > 1000


def test_explain_command_scores_a_page_with_itself_as_the_model_says(corpus, tmp_path):
    """Known answer of the numbers model with no corpus (every idf 1): a page with n bigrams
    and M cells scores w n / (n + mass_floor) + (1 - w) M / (M + cell_floor) with itself."""
    page = sorted(corpus.glob("*.jpg"))[2]
    target = tmp_path / "self.png"
    result = CliRunner().invoke(main, ["explain", str(page), str(page), "-o", str(target),
                                       "--no-pixels"])
    assert result.exit_code == 0, result.output
    record = json.loads(target.with_suffix(".json").read_text())
    analysis = analyse_page(load_page(page), load_detector(), FeatureConfig())
    n, m = analysis.phi.sum(), analysis.cells.counts().sum()
    model = ScoreModel()
    assert n > 0 and m > 0
    w = model.bigram_weight
    expected = w * n / (n + model.mass_floor) + (1 - w) * m / (m + model.cell_floor)
    assert record["score"] == pytest.approx(expected, rel=1e-9)


def test_pixel_level_explanation_conserves(corpus, tmp_path):
    from PIL import Image

    crops = []
    for n, page in enumerate(sorted(corpus.glob("*.jpg"))[2:4]):  # two table pages
        grey = load_page(page)
        rows, cols = np.nonzero(grey < 128)
        top, left = int(np.median(rows)) - 90, int(np.median(cols)) - 120
        crop = grey[max(top, 0):max(top, 0) + 180, max(left, 0):max(left, 0) + 240]
        crops.append(tmp_path / f"crop{n}.png")
        Image.fromarray(crop).save(crops[-1])
    target = tmp_path / "pair.png"
    result = CliRunner().invoke(main, ["explain", str(crops[0]), str(crops[1]), "-o",
                                       str(target), "--cell", "6"])
    assert result.exit_code == 0, result.output
    record = json.loads(target.with_suffix(".json").read_text())
    assert record["score"] == pytest.approx(_neutral_score(*crops), abs=1e-9)
    assert record["score"] > 0  # the crops share digit pairs: the pixels have a score to explain
    assert record["pixel_residual"] < 1e-3
    assert (tmp_path / "pair_pixels.png").stat().st_size > 1000


def test_report_shows_only_the_best_matches_it_is_asked_for(corpus, results, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(results[0], out)
    # every page's two best matches, however weak: more than one pair to choose from
    options = SimilarityOptions(min_score=-1.0, top_k=2, explain=False, report_matches=1)
    run_similarity(corpus, out, options)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('<article class="match"') == 1
    assert "weaker candidate matches are not shown" in html
